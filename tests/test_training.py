"""Tests for nlpkit.training: the resumable backup and the standard callbacks.

The kill-and-resume test runs the sentiment recipe in a subprocess, SIGKILLs it once a
backup exists, runs the same command again and checks that it resumes from the backup.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from nlpkit.training import ResumableBackup, standard_callbacks

ROOT = Path(__file__).resolve().parents[1]


class Crash(Exception):
    """Raised by `CrashAt` to stand in for a killed process."""


class CrashAt(keras.callbacks.Callback):
    """Raises `Crash` at the end of step ``batch`` of epoch ``epoch``."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.epoch, self.batch, self.current = epoch, batch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.current, batch) == (self.epoch, self.batch):
            raise Crash(f"crash at epoch {self.epoch}, step {batch}")


class EpochLog(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


def tiny_model():
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    return model


DATA = (np.arange(40, dtype="float32").reshape(10, 4) / 40, np.ones((10, 2), "float32"))  # 5 steps of 2


def metadata(backup_dir):
    return json.loads((Path(backup_dir) / "training_metadata.json").read_text())


def test_backup_mid_epoch_records_epoch_and_step_and_resume_restores_them(tmp_path):
    backup_dir = tmp_path / "backup"
    with pytest.raises(Crash):
        tiny_model().fit(*DATA, batch_size=2, epochs=4, verbose=0, shuffle=False,
                         callbacks=[ResumableBackup(backup_dir, save_freq=3), CrashAt(epoch=1, batch=3)])
    # Backups at steps 3, 5 (end of epoch 0), 6 and 9: the crash comes right after the
    # backup of step 9 (epoch 1, its fourth batch).
    saved = metadata(backup_dir)
    assert saved["epoch"] == 1 and saved["step"] == 9

    model, log = tiny_model(), EpochLog()
    backup = ResumableBackup(backup_dir, save_freq=3)
    model.fit(*DATA, batch_size=2, epochs=4, verbose=0, shuffle=False, callbacks=[backup, log])
    assert backup.resumed_from == {"epoch": 1, "step": 9}
    assert log.epochs == [1, 2, 3]  # the interrupted epoch is replayed, earlier ones are not
    # 9 restored steps + 3 epochs of 5: the optimizer went on counting from the backup.
    assert int(model.optimizer.iterations.numpy()) == 9 + 15
    assert not backup_dir.exists()  # a finished run removes its backup


def test_second_crash_in_the_resumed_epoch_resumes_that_epoch_again(tmp_path):
    backup_dir = tmp_path / "backup"
    with pytest.raises(Crash):
        tiny_model().fit(*DATA, batch_size=2, epochs=4, verbose=0, shuffle=False,
                         callbacks=[ResumableBackup(backup_dir, save_freq=2), CrashAt(epoch=2, batch=1)])
    assert metadata(backup_dir)["epoch"] == 2
    # Resumed in epoch 2 and crashed again after a mid-epoch backup there: Keras' own
    # callback would record epoch 0 for that backup (its counter moves at epoch ends only).
    with pytest.raises(Crash):
        tiny_model().fit(*DATA, batch_size=2, epochs=4, verbose=0, shuffle=False,
                         callbacks=[ResumableBackup(backup_dir, save_freq=2), CrashAt(epoch=2, batch=3)])
    assert metadata(backup_dir)["epoch"] == 2


class CrashWhileSaving(ResumableBackup):
    """Dies halfway through writing its ``crash_at``-th backup, as a killed process would."""

    def __init__(self, backup_dir, save_freq, crash_at):
        super().__init__(backup_dir, save_freq=save_freq)
        self.crash_at, self.saves = crash_at, 0

    def _save_model(self):
        self.saves += 1
        if self.saves == self.crash_at:
            original = self.model.save_weights

            def truncated_write(filepath, overwrite=True):
                original(filepath, overwrite=overwrite)
                with open(filepath, "r+b") as file:
                    file.truncate(96)
                raise Crash("killed while writing the backup")

            self.model.save_weights = truncated_write
        super()._save_model()


def test_a_crash_while_a_backup_is_written_leaves_the_previous_backup_loadable(tmp_path):
    backup_dir = tmp_path / "backup"
    with pytest.raises(Crash, match="writing the backup"):
        tiny_model().fit(*DATA, batch_size=2, epochs=4, verbose=0, shuffle=False,
                         callbacks=[CrashWhileSaving(backup_dir, save_freq=3, crash_at=3)])
    # Backups at steps 3 and 5 were written; the one of step 6 died halfway.
    assert metadata(backup_dir) == {"epoch": 1, "batch": 0, "step": 5}
    assert sorted(path.name for path in backup_dir.iterdir()) == [
        "latest.weights.h5", "partial.weights.h5", "training_metadata.json",
    ]

    model = tiny_model()
    backup = ResumableBackup(backup_dir, save_freq=3)
    model.fit(*DATA, batch_size=2, epochs=4, verbose=0, shuffle=False, callbacks=[backup])
    assert backup.resumed_from == {"epoch": 1, "step": 5}
    assert int(model.optimizer.iterations.numpy()) == 5 + 15


def test_fresh_start_reports_no_resume(tmp_path):
    backup = ResumableBackup(tmp_path / "backup")
    tiny_model().fit(*DATA, batch_size=2, epochs=1, verbose=0, callbacks=[backup])
    assert backup.resumed_from is None


@pytest.mark.parametrize("save_freq", [0, -3, 2.5, "step", True])
def test_backup_frequency_is_validated(tmp_path, save_freq):
    with pytest.raises(ValueError, match=f"save_freq={save_freq!r}"):
        ResumableBackup(tmp_path, save_freq=save_freq)


def test_standard_callbacks_back_up_every_n_steps_when_asked(tmp_path):
    backup = standard_callbacks(tmp_path, backup_steps=50)[0]
    assert isinstance(backup, ResumableBackup) and backup.save_freq == 50
    assert standard_callbacks(tmp_path)[0].save_freq == "epoch"
    with pytest.raises(ValueError, match="backup_steps=-1"):
        standard_callbacks(tmp_path, backup_steps=-1)


# ---------------------------------------------------------------------------------------------
# SIGKILL mid-training, then the same command again (subprocess)
# ---------------------------------------------------------------------------------------------

RECIPE_TIMEOUT = 240


def recipe_command(output):
    flags = ["--epochs", "3", "--units", "8", "--embedding-dim", "8", "--batch-size", "16", "--learning-rate", "0.01",
             "--backup-steps", "4", "--no-int8", "--parity-texts", "10", "--output-dir", str(output)]
    return [sys.executable, "-m", "recipes.sentiment_gru", *flags]


def recipe_env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}


def test_killed_recipe_resumes_from_its_backup_and_writes_a_bundle(tmp_path):
    output = tmp_path / "bundle"
    backup = tmp_path / "bundle.work" / "backup" / "training_metadata.json"
    process = subprocess.Popen(recipe_command(output), cwd=ROOT, env=recipe_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + RECIPE_TIMEOUT
        while not backup.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert backup.exists(), "no backup appeared before the recipe ended or timed out"
        # Let the first backup finish writing (weights first, then this file) and
        # training go on a little, so the kill lands mid-training.
        time.sleep(0.5)
        assert process.poll() is None, "the recipe finished before it could be killed"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not output.exists()  # killed before the export
    saved = json.loads(backup.read_text())
    assert saved["step"] >= 4

    rerun = subprocess.run(recipe_command(output), cwd=ROOT, env=recipe_env(), capture_output=True, text=True,
                           timeout=RECIPE_TIMEOUT)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    expected = f"epoch {saved['epoch']}, optimizer step {saved['step']}"
    assert expected in rerun.stdout, rerun.stdout[-3000:]
    manifest = json.loads((output / "nlpkit.json").read_text())
    # Only the epochs left after the backup's epoch ran in the second process.
    assert manifest["metrics"]["epochs_run"] == 3 - saved["epoch"]
    assert manifest["parity"]["label_agreement"]["tflite"] == 1.0
    assert (output / "model.tflite").is_file() and (output / "saved_model" / "saved_model.pb").is_file()
    assert not backup.parent.exists()
