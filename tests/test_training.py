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

from nlpkit.training import ResumableBackup, remove_work_dir, standard_callbacks, training_totals

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
    saved = metadata(backup_dir)
    assert {key: saved[key] for key in ("epoch", "batch", "step", "epochs_completed")} == {
        "epoch": 1, "batch": 0, "step": 5, "epochs_completed": 1,
    }
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
    def backup(callbacks):
        (found,) = [callback for callback in callbacks if isinstance(callback, ResumableBackup)]
        return found

    assert backup(standard_callbacks(tmp_path, backup_steps=50)).save_freq == 50
    assert backup(standard_callbacks(tmp_path)).save_freq == "epoch"
    with pytest.raises(ValueError, match="backup_steps=-1"):
        standard_callbacks(tmp_path, backup_steps=-1)


# ---------------------------------------------------------------------------------------------
# Totals across a resume, the optimizer step over the nlpkit pipelines, the work directory
# ---------------------------------------------------------------------------------------------


class SlowSteps(keras.callbacks.Callback):
    """Makes every training step take at least ``seconds``, so training time is measurable."""

    def __init__(self, seconds=0.02):
        super().__init__()
        self.seconds = seconds

    def on_train_batch_end(self, batch, logs=None):
        time.sleep(self.seconds)


@pytest.mark.parametrize("save_freq, crash, completed", [("epoch", (2, 1), 2), (3, (1, 3), 1)],
                         ids=["epoch_backups", "step_backups"])
def test_resumed_training_counts_the_epochs_and_seconds_of_the_killed_run(tmp_path, save_freq, crash, completed):
    backup_dir = tmp_path / "backup"
    with pytest.raises(Crash):
        tiny_model().fit(*DATA, batch_size=2, epochs=4, verbose=0, shuffle=False,
                         callbacks=[ResumableBackup(backup_dir, save_freq=save_freq), SlowSteps(), CrashAt(*crash)])
    saved = metadata(backup_dir)
    assert saved["epochs_completed"] == completed
    assert saved["seconds_trained"] >= completed * 5 * 0.02  # 5 slow steps per completed epoch

    started = time.perf_counter()
    callbacks = [SlowSteps(), ResumableBackup(backup_dir, save_freq=save_freq)]
    history = tiny_model().fit(*DATA, batch_size=2, epochs=4, verbose=0, shuffle=False, callbacks=callbacks)
    backup = callbacks[1]
    assert len(history.history["loss"]) == 4 - completed  # what the recipes reported before
    assert backup.epochs_completed == 4
    assert backup.earlier_seconds == pytest.approx(saved["seconds_trained"])
    assert backup.seconds_trained >= saved["seconds_trained"] + (4 - completed) * 5 * 0.02
    epochs, seconds = training_totals(started, callbacks)
    assert epochs == 4
    assert seconds >= saved["seconds_trained"] + time.perf_counter() - started - 0.01


def test_a_fresh_fit_totals_its_own_epochs_and_time(tmp_path):
    started = time.perf_counter()
    callbacks = standard_callbacks(tmp_path / "x.work", monitor="loss", patience=10)
    tiny_model().fit(*DATA, batch_size=2, epochs=2, verbose=0, callbacks=callbacks)
    elapsed = time.perf_counter() - started
    epochs, seconds = training_totals(started, callbacks)
    assert epochs == 2 and elapsed <= seconds <= time.perf_counter() - started
    # Two fits (the sentiment recipe's self-training): epochs add up, time is counted once.
    epochs, _ = training_totals(started, callbacks, callbacks)
    assert epochs == 4


def test_training_totals_needs_one_backup_per_callback_list():
    with pytest.raises(ValueError, match=r"exactly one ResumableBackup; received \['EpochLog'\]"):
        training_totals(time.perf_counter(), [EpochLog()])
    with pytest.raises(ValueError, match="at least one fit"):
        training_totals(time.perf_counter())


def bucketed_sentences():
    """A bucketed, shuffled sentiment-style pipeline (unknown to tf.data how many batches
    bucketing makes, before the pipelines asserted it) and its number of batches."""
    from nlpkit.data import classification_dataset
    from nlpkit.text import PythonWordTokenizer, TextNormalizer, Vocabulary, WordTokenizer

    words = "the a film plot actor scene score music dull fine great boring".split()
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(words, size=int(rng.integers(1, 12)))) for _ in range(100)]
    twin = PythonWordTokenizer(Vocabulary.build([words]), TextNormalizer())
    dataset = classification_dataset(texts, [len(text) % 2 for text in texts], WordTokenizer.from_python(twin),
                                      batch_size=8, shuffle=True, seed=1, num_buckets=4)
    return dataset, len(twin.vocabulary), sum(1 for _ in dataset)


def sentence_model(vocabulary_size):
    keras.utils.set_random_seed(3)
    model = keras.Sequential([
        keras.Input((None,), dtype="int32"),
        keras.layers.Embedding(vocabulary_size, 4, mask_zero=True),
        keras.layers.GlobalAveragePooling1D(),
        keras.layers.Dense(2),
    ])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def test_resume_message_reports_the_steps_trained_over_a_bucketed_pipeline(tmp_path, capsys):
    # After an epoch of n batches the backup and the resume message said step n + 1:
    # over a dataset of unknown length Keras ends each epoch with one more training call
    # that finds no data, and the optimizer still counts it as a step.
    dataset, vocabulary_size, steps = bucketed_sentences()
    backup_dir = tmp_path / "backup"
    model = sentence_model(vocabulary_size)
    with pytest.raises(Crash):
        model.fit(dataset, epochs=3, verbose=0, shuffle=False,
                  callbacks=[ResumableBackup(backup_dir), CrashAt(epoch=1, batch=2)])
    assert int(model.optimizer.iterations.numpy()) == steps + 3  # one epoch and three batches
    assert metadata(backup_dir)["step"] == steps  # the epoch-end backup

    model, backup = sentence_model(vocabulary_size), ResumableBackup(backup_dir)
    model.fit(dataset, epochs=3, verbose=0, shuffle=False, callbacks=[backup])
    assert f"epoch 1, optimizer step {steps} " in capsys.readouterr().out
    assert backup.resumed_from == {"epoch": 1, "step": steps}
    assert int(model.optimizer.iterations.numpy()) == 3 * steps


def test_remove_work_dir_deletes_the_work_directory_only(tmp_path):
    work_dir = tmp_path / "bundle.work"
    (work_dir / "backup").mkdir(parents=True)
    (work_dir / "backup" / "latest.weights.h5").write_bytes(b"weights")
    (work_dir / "best.keras").write_bytes(b"model")
    remove_work_dir(work_dir)
    assert not work_dir.exists()
    remove_work_dir(work_dir)  # already gone: nothing to do
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    with pytest.raises(ValueError, match=f"refusing to delete '{bundle}'"):
        remove_work_dir(bundle)
    assert bundle.is_dir()


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
    # Only the epochs left after the backup's epoch ran in the second process; the bundle
    # counts the killed process's completed epochs and training time as well.
    assert f"({saved['epochs_completed']} epoch(s) and " in rerun.stdout
    assert manifest["metrics"]["epochs_run"] == 3
    assert manifest["metrics"]["training_seconds"] >= saved["seconds_trained"] > 0
    assert manifest["parity"]["label_agreement"]["tflite"] == 1.0
    assert (output / "model.tflite").is_file() and (output / "saved_model" / "saved_model.pb").is_file()
    assert not backup.parent.parent.exists()  # the whole work directory, once the bundle is written


def test_a_non_finite_loss_stops_fit_naming_the_epoch_and_step():
    import numpy as np

    from nlpkit.training import StopOnNonFiniteLoss, TrainingDivergedError

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    features, targets = np.ones((8, 2), "float32"), np.ones((8, 1), "float32")
    features[5] = np.nan  # in the third batch of two
    with pytest.raises(TrainingDivergedError, match=r"loss is nan at epoch 1, step 3 \(optimizer step 3\)"):
        model.fit(features, targets, batch_size=2, epochs=2, shuffle=False, callbacks=[StopOnNonFiniteLoss()],
                  verbose=0)


def test_the_standard_callbacks_check_the_loss_before_anything_is_backed_up(tmp_path):
    from nlpkit.training import ResumableBackup, StopOnNonFiniteLoss

    callbacks = standard_callbacks(tmp_path / "x.work")
    assert isinstance(callbacks[0], StopOnNonFiniteLoss)
    assert any(isinstance(callback, ResumableBackup) for callback in callbacks[1:])
