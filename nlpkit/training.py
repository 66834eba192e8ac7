"""Pieces every recipe's ``model.fit`` uses: seeding, the standard callbacks and a time budget."""

import json
import os
import time
from pathlib import Path

import keras


class ResumableBackup(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` that records the global step and logs where training resumes.

    Saves the model's weights and optimizer state under ``backup_dir`` at the end of
    every epoch, and every ``save_freq`` steps when that is an int; running the same
    ``fit`` again after a crash loads them, so at most ``save_freq`` steps of work are
    lost. Keras can only restart ``fit`` at an epoch boundary: after a crash mid-epoch,
    training goes on from the saved weights and optimizer state (the optimizer's step
    count included) and replays the interrupted epoch from its first batch.

    Three differences from the Keras callback: every file of the backup is written under
    a temporary name and renamed into place, so a crash while a backup is written leaves
    the previous one loadable; the metadata file also holds the optimizer's
    step count (``"step"``), which ``resumed_from`` reports after a restore; and a backup
    taken mid-epoch names the epoch it was taken in, even in the first epoch after a
    restore (Keras only updates its epoch counter at epoch ends, so a second crash in that
    epoch would restart training from epoch 0 with the later weights).

    Args:
        backup_dir: str or Path, the directory of the backup.
        save_freq: "epoch" or int, default "epoch". Steps between backups.
        delete_checkpoint: bool, default True. Remove the backup when ``fit`` ends normally.

    Example:
        >>> backup = ResumableBackup("saved_models/sentiment.work/backup", save_freq=50)
        >>> model.fit(train, epochs=10, callbacks=[backup])
        >>> backup.resumed_from  # None on a fresh start, else {"epoch": 2, "step": 117}
    """

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint=True):
        if save_freq != "epoch" and (not isinstance(save_freq, int) or isinstance(save_freq, bool) or save_freq < 1):
            raise ValueError(f"`save_freq` must be 'epoch' or a positive int. Received: save_freq={save_freq!r}")
        super().__init__(str(backup_dir), save_freq=save_freq, delete_checkpoint=delete_checkpoint)
        self.resumed_from = None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        path = Path(self._training_metadata_path)
        if path.exists():
            metadata = json.loads(path.read_text())
            self.resumed_from = {"epoch": int(metadata["epoch"]), "step": int(metadata.get("step", -1))}
            print(f"resuming from the backup in {self.backup_dir}: epoch {self.resumed_from['epoch']}, "
                  f"optimizer step {int(self.model.optimizer.iterations.numpy())}", flush=True)

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if self.save_freq != "epoch":
            self._save_model()  # the step-wise backups also close every epoch

    def _save_model(self):
        # Keras writes the backup in place, so a crash while it writes (a kill landed in
        # the weights file here) leaves a truncated file that the next run cannot load.
        # Each file is written under another name and renamed over the old one instead:
        # a rename is atomic, so a crash leaves the previous backup or the new one.
        backup_dir = Path(self.backup_dir)
        backup_dir.mkdir(parents=True, exist_ok=True)
        weights = Path(self._weights_path)
        partial_weights = weights.with_name("partial.weights.h5")
        self.model.save_weights(str(partial_weights), overwrite=True)
        os.replace(partial_weights, weights)
        metadata = {
            "epoch": self._current_epoch,
            "batch": self._last_batch_seen,
            "step": int(self.model.optimizer.iterations.numpy()),
        }
        path = Path(self._training_metadata_path)
        partial_metadata = path.with_name(path.name + ".partial")
        partial_metadata.write_text(json.dumps(metadata))
        os.replace(partial_metadata, path)


def standard_callbacks(work_dir, monitor="val_loss", mode="min", patience=2, backup_steps=0):
    """Early stopping, best-model checkpointing, TensorBoard logs and crash recovery.

    `ResumableBackup` saves the training state under ``work_dir/backup`` at the end of
    each epoch, and every ``backup_steps`` steps when that is positive; running the same
    command again after a crash resumes from there (the backup is deleted when training
    finishes normally). Early stopping and the best-model checkpoint start their
    comparisons afresh after a resume.

    Args:
        work_dir: directory for ``best.keras``, ``logs/`` and ``backup/``.
        monitor / mode: the validation metric that selects the model, e.g. "val_accuracy"/"max".
        patience: epochs without improvement before stopping.
        backup_steps: int, default 0. Also back up every that many steps (0: at epoch ends only).

    Example:
        >>> model.fit(train, validation_data=valid, epochs=10,
        ...           callbacks=standard_callbacks("saved_models/sentiment.work", "val_accuracy", "max"))
    """
    if not isinstance(backup_steps, int) or isinstance(backup_steps, bool) or backup_steps < 0:
        raise ValueError(f"`backup_steps` must be an int >= 0. Received: backup_steps={backup_steps!r}")
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    return [
        ResumableBackup(work_dir / "backup", save_freq=backup_steps or "epoch"),
        keras.callbacks.EarlyStopping(
            monitor=monitor, mode=mode, patience=patience, restore_best_weights=True, verbose=1
        ),
        keras.callbacks.ModelCheckpoint(
            str(work_dir / "best.keras"), monitor=monitor, mode=mode, save_best_only=True
        ),
        keras.callbacks.TensorBoard(str(work_dir / "logs"), write_graph=False, profile_batch=0),
    ]


def set_seed(seed):
    """Seeds Python, NumPy and the backend so a run repeats on the same machine."""
    if seed is not None:
        keras.utils.set_random_seed(seed)


def time_budget_callback(minutes):
    """A callback that stops ``fit`` once the next epoch would end after ``minutes`` of training.

    Checked after every epoch (is there time for one more, at the last epoch's pace?) and,
    as a hard limit, after every batch once the budget is spent. Shared by the recipes.

    Example:
        >>> model.fit(train, epochs=100, callbacks=[time_budget_callback(60)])  # doctest: +SKIP
    """

    class TimeBudget(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.started = self.epoch_started = time.perf_counter()

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch_started = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            if time.perf_counter() - self.started > minutes * 60:
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            now = time.perf_counter()
            if (now - self.started) + (now - self.epoch_started) > minutes * 60:
                print(f"time budget: {(now - self.started) / 60:.1f} of {minutes} min spent and an "
                      f"epoch takes {(now - self.epoch_started) / 60:.1f}; stopping")
                self.model.stop_training = True

    return TimeBudget()
