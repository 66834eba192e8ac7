"""Pieces every recipe's ``model.fit`` uses: seeding, the standard callbacks, a time budget,
the training totals across resumed runs and the clean-up of the work directory."""

import json
import math
import os
import shutil
import time
from pathlib import Path

import keras

from nlpkit.errors import NlpkitError


class ResumableBackup(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` that records the global step and logs where training resumes.

    Saves the model's weights and optimizer state under ``backup_dir`` at the end of
    every epoch, and every ``save_freq`` steps when that is an int; running the same
    ``fit`` again after a crash loads them, so at most ``save_freq`` steps of work are
    lost. Keras can only restart ``fit`` at an epoch boundary: after a crash mid-epoch,
    training goes on from the saved weights and optimizer state (the optimizer's step
    count included) and replays the interrupted epoch from its first batch.

    Four differences from the Keras callback: every file of the backup is written under
    a temporary name and renamed into place, so a crash while a backup is written leaves
    the previous one loadable; the metadata file also holds the optimizer's
    step count (``"step"``), which ``resumed_from`` reports after a restore; a backup
    taken mid-epoch names the epoch it was taken in, even in the first epoch after a
    restore (Keras only updates its epoch counter at epoch ends, so a second crash in that
    epoch would restart training from epoch 0 with the later weights); and the metadata
    carries the epochs completed and the seconds spent in ``fit`` over every run that led
    to it (``"epochs_completed"``, ``"seconds_trained"``), so that after a resume
    ``epochs_completed`` and ``seconds_trained`` describe the whole training, not only
    the last process (`training_totals` reads them for the recipes). Seconds between a
    process's last backup and its crash are not counted: that work was lost and is redone.

    Args:
        backup_dir: str or Path, the directory of the backup.
        save_freq: "epoch" or int, default "epoch". Steps between backups.
        delete_checkpoint: bool, default True. Remove the backup when ``fit`` ends normally.

    Example:
        >>> backup = ResumableBackup("saved_models/sentiment.work/backup", save_freq=50)
        >>> model.fit(train, epochs=10, callbacks=[backup])
        >>> backup.resumed_from  # None on a fresh start, else {"epoch": 2, "step": 117}
        >>> backup.epochs_completed, round(backup.seconds_trained)  # the killed runs' included
        (10, 84)
    """

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint=True):
        if save_freq != "epoch" and (not isinstance(save_freq, int) or isinstance(save_freq, bool) or save_freq < 1):
            raise ValueError(f"`save_freq` must be 'epoch' or a positive int. Received: save_freq={save_freq!r}")
        super().__init__(str(backup_dir), save_freq=save_freq, delete_checkpoint=delete_checkpoint)
        self.resumed_from = None
        self.epochs_completed = 0
        self.earlier_seconds = 0.0  # spent in the fit of the runs this one resumes
        self._fit_started = self._fit_ended = None

    @property
    def seconds_trained(self):
        """Seconds spent in ``fit`` so far (to its end once it ended), earlier runs' included."""
        if self._fit_started is None:
            return self.earlier_seconds
        return self.earlier_seconds + (self._fit_ended or time.perf_counter()) - self._fit_started

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._fit_started, self._fit_ended = time.perf_counter(), None
        self.resumed_from, self.epochs_completed, self.earlier_seconds = None, 0, 0.0
        path = Path(self._training_metadata_path)
        if path.exists():
            metadata = json.loads(path.read_text())
            self.resumed_from = {"epoch": int(metadata["epoch"]), "step": int(metadata.get("step", -1))}
            # Backups written before these fields existed: every epoch before the one to
            # resume was completed, and their time is unknown.
            self.epochs_completed = int(metadata.get("epochs_completed", metadata["epoch"]))
            self.earlier_seconds = float(metadata.get("seconds_trained", 0.0))
            print(f"resuming from the backup in {self.backup_dir}: epoch {self.resumed_from['epoch']}, "
                  f"optimizer step {int(self.model.optimizer.iterations.numpy())} "
                  f"({self.epochs_completed} epoch(s) and {self.earlier_seconds:.1f} s of training kept)", flush=True)

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        self.epochs_completed += 1  # before the epoch-end backup, which records it
        super().on_epoch_end(epoch, logs)
        if self.save_freq != "epoch":
            self._save_model()  # the step-wise backups also close every epoch

    def on_train_end(self, logs=None):
        self._fit_ended = time.perf_counter()
        if self.delete_checkpoint:
            # The metadata goes first: Keras deletes the backup directory in listing order
            # (weights first on ext4), and a kill between the two left the metadata alone,
            # from which the next run "resumed" at the last epoch with untrained weights.
            Path(self._training_metadata_path).unlink(missing_ok=True)
        super().on_train_end(logs)

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
            "epochs_completed": self.epochs_completed,
            "seconds_trained": round(self.seconds_trained, 3),
        }
        path = Path(self._training_metadata_path)
        partial_metadata = path.with_name(path.name + ".partial")
        partial_metadata.write_text(json.dumps(metadata))
        os.replace(partial_metadata, path)


class TrainingDivergedError(NlpkitError, ArithmeticError):
    """The loss became NaN or infinite during ``fit``; the message names the epoch and step."""


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Raises `TrainingDivergedError` at the first batch whose loss is NaN or infinite.

    Keras' ``TerminateOnNaN`` only sets ``stop_training``: ``fit`` then returns normally and
    a recipe would go on to evaluate and export a model whose every weight is NaN. Raising
    stops the recipe before any of that, and the CLI reports it as an error (exit 2).

    Example:
        >>> model.fit(train, epochs=3, callbacks=[StopOnNonFiniteLoss()])
        Traceback (most recent call last):
        ...
        nlpkit.training.TrainingDivergedError: the training loss is nan at epoch 1, step 3 ...
    """

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise TrainingDivergedError(
                f"the training loss is {float(loss)} at epoch {getattr(self, '_epoch', 0) + 1}, step {batch + 1} "
                f"(optimizer step {int(self.model.optimizer.iterations.numpy())}): training diverged, so no "
                "bundle is written and any bundle already at the output path is kept. Check the learning "
                "rate and the data."
            )


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
        StopOnNonFiniteLoss(),  # first: a NaN step must stop training before anything backs it up
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


def training_totals(started, *callback_lists):
    """``(epochs, seconds)`` of a recipe's training, counting the killed runs a resume went on from.

    ``len(history.history["loss"])`` and a timer started in the process count only the
    last process: after a crash and a resume the bundle would report the epochs and
    seconds of the resumed run alone. Each fit's `ResumableBackup` (in the list
    `standard_callbacks` returned) restores what its backup recorded, so the totals are
    this process's time since ``started`` plus the seconds the earlier runs spent in
    ``fit`` up to their last backup, and every epoch completed in any of them.

    Args:
        started: float, the ``time.perf_counter()`` at which this process's training began.
        *callback_lists: the callback list of every ``model.fit`` the training ran, each
            holding one `ResumableBackup`.

    Example:
        >>> started = time.perf_counter()
        >>> callbacks = standard_callbacks("saved_models/sentiment.work")
        >>> model.fit(train, validation_data=valid, epochs=10, callbacks=callbacks)
        >>> epochs_run, training_seconds = training_totals(started, callbacks)
    """
    if not callback_lists:
        raise ValueError("training_totals needs the callback list of at least one fit; received none.")
    epochs, earlier_seconds = 0, 0.0
    for callbacks in callback_lists:
        backups = [callback for callback in callbacks if isinstance(callback, ResumableBackup)]
        if len(backups) != 1:
            raise ValueError(
                f"each callback list must hold exactly one ResumableBackup; received "
                f"{[type(callback).__name__ for callback in callbacks]}"
            )
        epochs += backups[0].epochs_completed
        earlier_seconds += backups[0].earlier_seconds
    return epochs, time.perf_counter() - started + earlier_seconds


def remove_work_dir(work_dir):
    """Deletes a recipe's ``<output>.work`` directory once its bundle has been written.

    The directory holds what only an unfinished run needs (the crash backup, the
    best-model checkpoint and the TensorBoard logs), so a recipe calls this as its last
    step, after the bundle and its parity report. When training or the export fails the
    call is never reached and the directory stays for the rerun. A name that does not end
    in ``.work`` is refused, so a wrong argument cannot delete a bundle or a data set.

    Example:
        >>> remove_work_dir("saved_models/sentiment.work")
    """
    work_dir = Path(work_dir)
    if not work_dir.name.endswith(".work"):
        raise ValueError(f"a recipe's work directory ends in '.work'; refusing to delete {str(work_dir)!r}")
    if work_dir.exists():
        shutil.rmtree(work_dir)
