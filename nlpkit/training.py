"""Pieces every recipe's ``model.fit`` uses: seeding, the standard callbacks and a time budget."""

import time
from pathlib import Path

import keras


def standard_callbacks(work_dir, monitor="val_loss", mode="min", patience=2):
    """Early stopping, best-model checkpointing, TensorBoard logs and crash recovery.

    ``BackupAndRestore`` saves the training state at the end of each epoch under
    ``work_dir/backup``; running the same command again after a crash resumes from there
    (Keras deletes the backup when training finishes normally).

    Args:
        work_dir: directory for ``best.keras``, ``logs/`` and ``backup/``.
        monitor / mode: the validation metric that selects the model, e.g. "val_accuracy"/"max".
        patience: epochs without improvement before stopping.

    Example:
        >>> model.fit(train, validation_data=valid, epochs=10,
        ...           callbacks=standard_callbacks("saved_models/sentiment.work", "val_accuracy", "max"))
    """
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    return [
        keras.callbacks.BackupAndRestore(str(work_dir / "backup")),
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
