"""Classification metrics: confusion matrix, per-class and macro scores, a text report.

Pure numpy and the standard library (no TensorFlow), so evaluation code, the CLI
and ``nlpkit.lite`` can score predictions without loading a model framework.
Conventions follow scikit-learn with ``zero_division=0``: a ratio whose
denominator is zero (no predicted or no true examples of a class) is 0.0.
"""

import numbers

import numpy as np

__all__ = ["confusion_matrix", "classification_report", "format_report"]

_REPORT_KEYS = (
    "accuracy",
    "macro_f1",
    "macro_precision",
    "macro_recall",
    "per_class",
    "confusion_matrix",
    "label_names",
    "num_examples",
)


def _check_num_classes(num_classes):
    # bool is an int subclass; True as a class count is always a mistake.
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral):
        raise TypeError(f"num_classes must be an int, got {num_classes!r}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    return int(num_classes)


def _as_labels(values, name, num_classes):
    """Return ``values`` as a 1-D int64 array after checking type, rank and range."""
    array = np.asarray(values)
    if array.size == 0:
        # np.asarray([]) is float64; an empty label list is still a valid input.
        array = array.astype(np.int64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        # Floats are refused even when integral: they usually mean scores or
        # probabilities were passed where argmax labels were meant.
        first = array[0].item() if array.size else None
        raise TypeError(
            f"{name} must hold integer labels, got dtype {array.dtype} "
            f"(first value {first!r})"
        )
    bad = np.flatnonzero((array < 0) | (array >= num_classes))
    if bad.size:
        index = int(bad[0])
        raise ValueError(
            f"{name} has label {array[index].item()} at index {index}, "
            f"outside [0, {num_classes})"
        )
    return array.astype(np.int64, copy=False)


def _check_pair(y_true, y_pred, num_classes):
    true = _as_labels(y_true, "y_true", num_classes)
    pred = _as_labels(y_pred, "y_pred", num_classes)
    if true.shape[0] != pred.shape[0]:
        raise ValueError(
            f"y_true and y_pred must have the same length, got {true.shape[0]} and {pred.shape[0]}"
        )
    return true, pred


def _safe_ratio(numerator, denominator):
    """Elementwise numerator / denominator, with 0.0 where the denominator is 0."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.zeros_like(numerator)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def confusion_matrix(y_true, y_pred, num_classes):
    """Count how often each true class was predicted as each class.

    Args:
        y_true: sequence or 1-D array of int. Gold class ids in ``[0, num_classes)``.
        y_pred: sequence or 1-D array of int. Predicted class ids, same length.
        num_classes: int. Number of classes; fixes the matrix size even when
            some classes never occur.

    Returns:
        ``np.ndarray`` of dtype int64 and shape ``(num_classes, num_classes)``;
        entry ``[i, j]`` counts examples of true class ``i`` predicted as ``j``.

    Raises:
        TypeError: labels are not integers, or ``num_classes`` is not an int.
        ValueError: lengths differ, an array is not 1-D, or a label is out of range.

    Example:
        >>> confusion_matrix([0, 1, 1, 2], [0, 2, 1, 2], num_classes=3)
        array([[1, 0, 0],
               [0, 1, 1],
               [0, 0, 1]])
    """
    num_classes = _check_num_classes(num_classes)
    true, pred = _check_pair(y_true, y_pred, num_classes)
    # One bincount over flattened (true, pred) cells is a single pass in C.
    counts = np.bincount(true * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64, copy=False)


def classification_report(y_true, y_pred, label_names):
    """Accuracy, per-class and macro-averaged precision/recall/F1, as plain Python data.

    Macro averages weight every class in ``label_names`` equally, including
    classes absent from both ``y_true`` and ``y_pred`` (which score 0.0), so
    the numbers do not depend on which classes a small evaluation set happens
    to contain. Everything in the result is a plain ``float``, ``int``,
    ``str``, ``list`` or ``dict``, so ``json.dumps`` works on it directly.

    Args:
        y_true: sequence or 1-D array of int. Gold class ids.
        y_pred: sequence or 1-D array of int. Predicted class ids, same length.
        label_names: sequence of str. Name of class ``i`` at position ``i``;
            its length is the number of classes. Names must be unique.

    Returns:
        dict with keys ``accuracy``, ``macro_f1``, ``macro_precision``,
        ``macro_recall`` (floats), ``per_class`` (``{name: {"precision",
        "recall", "f1", "support"}}``, in label order), ``confusion_matrix``
        (nested lists of int, rows = true, columns = predicted),
        ``label_names`` (list of str) and ``num_examples`` (int). With no
        examples at all, every score is 0.0.

    Raises:
        TypeError: a label name is not a str, or labels are not integers.
        ValueError: no or duplicate label names, lengths differ, or a label
            is out of range.

    Example:
        >>> report = classification_report([0, 1, 1, 0], [0, 1, 0, 0], ["neg", "pos"])
        >>> report["accuracy"], report["per_class"]["pos"]["recall"]
        (0.75, 0.5)
    """
    names = list(label_names)
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"label_names must be strings, got {name!r}")
    if not names:
        raise ValueError("label_names must name at least one class, got an empty sequence")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"label_names must be unique, got duplicates {duplicates}")

    matrix = confusion_matrix(y_true, y_pred, len(names))
    true_positives = np.diag(matrix)
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    precision = _safe_ratio(true_positives, predicted)
    recall = _safe_ratio(true_positives, support)
    # 2tp / (2tp + fp + fn) equals the harmonic mean of precision and recall
    # wherever that is defined, and is 0 exactly where sklearn's zero_division=0
    # gives 0, without a second division by a possibly-zero sum.
    f1 = _safe_ratio(2 * true_positives, support + predicted)
    num_examples = int(matrix.sum())

    per_class = {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(names)
    }
    return {
        "accuracy": float(_safe_ratio(true_positives.sum(), num_examples)),
        "macro_f1": float(f1.mean()),
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "per_class": per_class,
        "confusion_matrix": matrix.tolist(),
        "label_names": names,
        "num_examples": num_examples,
    }


def format_report(report):
    """Render a ``classification_report`` dict as readable fixed-width text.

    Works on the dict straight from ``classification_report`` or on one that
    went through ``json.dumps``/``json.loads``.

    Args:
        report: dict. The output of ``classification_report``.

    Returns:
        str. A per-class table (precision, recall, F1, support), accuracy,
        macro averages and the confusion matrix with label names as row
        (true) and column (predicted) headers. No trailing newline.

    Raises:
        ValueError: ``report`` lacks one of the keys ``classification_report`` writes.

    Example:
        >>> report = classification_report([0, 1, 1], [0, 1, 0], ["neg", "pos"])
        >>> print(format_report(report))
        label  precision  recall      f1  support
        neg        0.500   1.000   0.667        1
        pos        1.000   0.500   0.667        2
        <BLANKLINE>
        accuracy         0.6667  (3 examples)
        macro precision  0.7500
        macro recall     0.7500
        macro F1         0.6667
        <BLANKLINE>
        confusion matrix (rows = true, columns = predicted):
               neg  pos
        neg      1    0
        pos      1    1
    """
    missing = [key for key in _REPORT_KEYS if key not in report]
    if missing:
        raise ValueError(
            f"report is missing keys {missing}; pass the dict from classification_report"
        )
    names = [str(name) for name in report["label_names"]]
    per_class = report["per_class"]

    name_width = max(len("label"), *(len(name) for name in names))
    lines = [
        f"{'label':<{name_width}}  {'precision':>9}  {'recall':>6}  {'f1':>6}  {'support':>7}"
    ]
    for name in names:
        scores = per_class[name]
        lines.append(
            f"{name:<{name_width}}  {scores['precision']:>9.3f}  {scores['recall']:>6.3f}  "
            f"{scores['f1']:>6.3f}  {scores['support']:>7d}"
        )
    lines += [
        "",
        f"accuracy         {report['accuracy']:.4f}  ({report['num_examples']} examples)",
        f"macro precision  {report['macro_precision']:.4f}",
        f"macro recall     {report['macro_recall']:.4f}",
        f"macro F1         {report['macro_f1']:.4f}",
        "",
        "confusion matrix (rows = true, columns = predicted):",
    ]
    matrix = report["confusion_matrix"]
    # Each column is as wide as its header or its largest count, whichever is wider.
    widths = [
        max(len(name), *(len(str(row[j])) for row in matrix)) for j, name in enumerate(names)
    ]
    lines.append(
        " " * name_width + "".join(f"  {name:>{width}}" for name, width in zip(names, widths))
    )
    for name, row in zip(names, matrix):
        cells = "".join(f"  {count:>{width}}" for count, width in zip(row, widths))
        lines.append(f"{name:<{name_width}}{cells}")
    return "\n".join(lines)
