"""Pieces every recipe's ``model.fit`` uses: seeding and the standard callbacks."""

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
