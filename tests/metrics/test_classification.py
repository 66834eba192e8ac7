"""Classification metrics against hand-computed cases and an independent reference."""

import json

import numpy as np
import pytest

from nlpkit.metrics import classification_report, confusion_matrix, format_report


def _reference_report(y_true, y_pred, names):
    """Per-class counting with plain loops: deliberately shares no code with the module."""
    k = len(names)
    matrix = [[0] * k for _ in range(k)]
    for t, p in zip(y_true, y_pred):
        matrix[t][p] += 1
    per_class = {}
    for c, name in enumerate(names):
        tp = sum(1 for t, p in zip(y_true, y_pred) if t == c and p == c)
        fp = sum(1 for t, p in zip(y_true, y_pred) if t != c and p == c)
        fn = sum(1 for t, p in zip(y_true, y_pred) if t == c and p != c)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {"precision": precision, "recall": recall, "f1": f1, "support": tp + fn}
    correct = sum(1 for t, p in zip(y_true, y_pred) if t == p)
    return {
        "accuracy": correct / len(y_true) if y_true else 0.0,
        "macro_precision": sum(v["precision"] for v in per_class.values()) / k,
        "macro_recall": sum(v["recall"] for v in per_class.values()) / k,
        "macro_f1": sum(v["f1"] for v in per_class.values()) / k,
        "per_class": per_class,
        "confusion_matrix": matrix,
    }


def _assert_close_to_reference(report, reference):
    for key in ("accuracy", "macro_precision", "macro_recall", "macro_f1"):
        assert report[key] == pytest.approx(reference[key], abs=1e-12), key
    assert report["confusion_matrix"] == reference["confusion_matrix"]
    for name, expected in reference["per_class"].items():
        got = report["per_class"][name]
        assert got["support"] == expected["support"], name
        for key in ("precision", "recall", "f1"):
            assert got[key] == pytest.approx(expected[key], abs=1e-12), (name, key)


# ---------------------------------------------------------------- confusion_matrix


def test_confusion_matrix_rows_are_true_columns_are_predicted():
    matrix = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], num_classes=3)
    assert matrix.dtype == np.int64
    np.testing.assert_array_equal(matrix, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])


def test_confusion_matrix_keeps_unseen_classes_and_accepts_numpy_ints():
    matrix = confusion_matrix(np.array([1, 1], np.int32), np.array([1, 0], np.uint8), 4)
    assert matrix.shape == (4, 4)
    assert matrix.sum() == 2 and matrix[1, 1] == 1 and matrix[1, 0] == 1


def test_confusion_matrix_of_empty_inputs_is_all_zero():
    matrix = confusion_matrix([], [], num_classes=2)
    assert matrix.dtype == np.int64
    np.testing.assert_array_equal(matrix, np.zeros((2, 2)))


# ---------------------------------------------------------------- hand-computed reports


def test_binary_report_by_hand():
    y_true = [0, 0, 0, 0, 1, 1, 1, 1, 1, 1]
    y_pred = [0, 0, 0, 1, 1, 1, 1, 1, 0, 0]
    report = classification_report(y_true, y_pred, ["neg", "pos"])
    # neg: tp=3, fp=2, fn=1; pos: tp=4, fp=1, fn=2.
    assert report["confusion_matrix"] == [[3, 1], [2, 4]]
    assert report["accuracy"] == pytest.approx(0.7)
    neg, pos = report["per_class"]["neg"], report["per_class"]["pos"]
    assert neg == pytest.approx({"precision": 0.6, "recall": 0.75, "f1": 2 / 3, "support": 4})
    assert pos == pytest.approx({"precision": 0.8, "recall": 2 / 3, "f1": 8 / 11, "support": 6})
    assert report["macro_precision"] == pytest.approx(0.7)
    assert report["macro_recall"] == pytest.approx((0.75 + 2 / 3) / 2)
    assert report["macro_f1"] == pytest.approx((2 / 3 + 8 / 11) / 2)
    assert report["label_names"] == ["neg", "pos"]
    assert report["num_examples"] == 10


def test_three_class_report_with_a_class_never_predicted():
    y_true = [0, 0, 1, 1, 2, 2, 2]
    y_pred = [0, 2, 0, 2, 2, 2, 0]
    report = classification_report(y_true, y_pred, ["negative", "neutral", "positive"])
    assert report["confusion_matrix"] == [[1, 0, 1], [1, 0, 1], [1, 0, 2]]
    assert report["accuracy"] == pytest.approx(3 / 7)
    per_class = report["per_class"]
    assert list(per_class) == ["negative", "neutral", "positive"]
    assert per_class["negative"] == pytest.approx(
        {"precision": 1 / 3, "recall": 0.5, "f1": 0.4, "support": 2}
    )
    # Never predicted: precision is 0/0, reported as 0.0 like zero_division=0.
    assert per_class["neutral"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert per_class["positive"] == pytest.approx(
        {"precision": 0.5, "recall": 2 / 3, "f1": 4 / 7, "support": 3}
    )
    assert report["macro_precision"] == pytest.approx(5 / 18)
    assert report["macro_recall"] == pytest.approx(7 / 18)
    assert report["macro_f1"] == pytest.approx((0.4 + 4 / 7) / 3)


def test_class_predicted_but_never_true_and_class_absent_from_both():
    report = classification_report([0, 1, 1, 0], [0, 2, 1, 0], ["a", "b", "c", "d"])
    # c: predicted once, never true -> precision 0/1, recall 0/0; d: absent everywhere.
    assert report["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert report["per_class"]["d"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert report["per_class"]["b"] == pytest.approx(
        {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2}
    )
    # Macro averages count all four named classes, including the empty ones.
    assert report["macro_recall"] == pytest.approx((1.0 + 0.5) / 4)


def test_perfect_predictions():
    labels = [2, 0, 1, 1, 2, 0, 2]
    report = classification_report(labels, labels, ["x", "y", "z"])
    assert report["accuracy"] == 1.0
    assert report["macro_f1"] == report["macro_precision"] == report["macro_recall"] == 1.0
    assert all(scores["f1"] == 1.0 for scores in report["per_class"].values())
    assert report["confusion_matrix"] == [[2, 0, 0], [0, 2, 0], [0, 0, 3]]


def test_all_wrong_predictions():
    y_true = [0, 1, 1, 0, 1]
    report = classification_report(y_true, [1 - y for y in y_true], ["neg", "pos"])
    assert report["accuracy"] == 0.0
    assert report["macro_f1"] == report["macro_precision"] == report["macro_recall"] == 0.0
    assert report["confusion_matrix"] == [[0, 2], [3, 0]]
    assert report["per_class"]["pos"]["support"] == 3


def test_empty_inputs_score_zero():
    report = classification_report([], [], ["neg", "pos"])
    assert report["num_examples"] == 0
    assert report["accuracy"] == report["macro_f1"] == 0.0
    assert report["confusion_matrix"] == [[0, 0], [0, 0]]


# ---------------------------------------------------------------- invalid inputs


def test_length_mismatch_names_both_lengths():
    with pytest.raises(ValueError, match=r"same length, got 3 and 2"):
        confusion_matrix([0, 1, 1], [0, 1], num_classes=2)
    with pytest.raises(ValueError, match=r"3 and 2"):
        classification_report([0, 1, 1], [0, 1], ["a", "b"])


@pytest.mark.parametrize(
    "y_true, y_pred, message",
    [
        ([0, 1, 3], [0, 1, 1], r"y_true has label 3 at index 2, outside \[0, 3\)"),
        ([0, 1, 2], [0, -1, 1], r"y_pred has label -1 at index 1, outside \[0, 3\)"),
    ],
)
def test_out_of_range_label_is_named(y_true, y_pred, message):
    with pytest.raises(ValueError, match=message):
        confusion_matrix(y_true, y_pred, num_classes=3)
    with pytest.raises(ValueError, match=message):
        classification_report(y_true, y_pred, ["a", "b", "c"])


def test_non_integer_labels_are_refused():
    with pytest.raises(TypeError, match=r"y_pred must hold integer labels.*float64.*0\.9"):
        confusion_matrix([0, 1], [0.9, 0.2], num_classes=2)
    with pytest.raises(TypeError, match=r"y_true.*bool"):
        confusion_matrix([True, False], [0, 1], num_classes=2)
    with pytest.raises(TypeError, match=r"y_true.*'neg'"):
        confusion_matrix(["neg", "pos"], [0, 1], num_classes=2)


def test_labels_must_be_one_dimensional():
    with pytest.raises(ValueError, match=r"y_true must be 1-D, got shape \(2, 2\)"):
        confusion_matrix([[0, 1], [1, 0]], [0, 1, 1, 0], num_classes=2)


@pytest.mark.parametrize(
    "num_classes, error",
    [(0, ValueError), (-2, ValueError), (True, TypeError), (2.0, TypeError)],
)
def test_bad_num_classes_is_named(num_classes, error):
    with pytest.raises(error, match=repr(num_classes).replace(".", r"\.")):
        confusion_matrix([0], [0], num_classes=num_classes)


def test_bad_label_names():
    with pytest.raises(ValueError, match=r"duplicates \['pos'\]"):
        classification_report([0], [0], ["pos", "neg", "pos"])
    with pytest.raises(ValueError, match="at least one class"):
        classification_report([], [], [])
    with pytest.raises(TypeError, match="label_names must be strings, got 1"):
        classification_report([0], [0], ["neg", 1])


# ---------------------------------------------------------------- serialisation and text


def _assert_plain_python(value, where="report"):
    # json.dumps accepts np.float64 (a float subclass), so check the exact types.
    if isinstance(value, dict):
        for key, item in value.items():
            assert type(key) is str, where
            _assert_plain_python(item, f"{where}[{key!r}]")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _assert_plain_python(item, f"{where}[{i}]")
    else:
        assert type(value) in (float, int, str), f"{where} is {type(value).__name__}"


def test_report_survives_json_round_trip():
    y_true = np.array([0, 1, 2, 2, 1, 0, 2])
    y_pred = np.array([0, 2, 2, 2, 0, 0, 1])
    report = classification_report(y_true, y_pred, ("negative", "neutral", "positive"))
    _assert_plain_python(report)
    assert type(report["accuracy"]) is float and type(report["num_examples"]) is int
    loaded = json.loads(json.dumps(report))
    assert loaded == report
    assert format_report(loaded) == format_report(report)


def test_format_report_shows_table_scores_and_labelled_matrix():
    report = classification_report(
        [0, 0, 1, 1, 2, 2, 2], [0, 2, 0, 2, 2, 2, 0], ["neg", "neutral", "pos"]
    )
    text = format_report(report)
    lines = text.splitlines()
    assert lines[0].split() == ["label", "precision", "recall", "f1", "support"]
    assert lines[1].split() == ["neg", "0.333", "0.500", "0.400", "2"]
    assert lines[2].split() == ["neutral", "0.000", "0.000", "0.000", "2"]
    assert "accuracy         0.4286  (7 examples)" in lines
    assert "macro F1         0.3238" in lines
    header = lines.index("confusion matrix (rows = true, columns = predicted):")
    assert lines[header + 1].split() == ["neg", "neutral", "pos"]
    assert [line.split() for line in lines[header + 2 :]] == [
        ["neg", "1", "0", "1"],
        ["neutral", "1", "0", "1"],
        ["pos", "1", "0", "2"],
    ]
    # Columns line up: every matrix row is as wide as its header row.
    assert len({len(line) for line in lines[header + 1 :]}) == 1


def test_format_report_names_missing_keys():
    with pytest.raises(ValueError, match=r"missing keys \['macro_precision', 'per_class'"):
        format_report({"accuracy": 1.0, "macro_f1": 1.0, "macro_recall": 1.0})


# ---------------------------------------------------------------- randomized


def test_matches_independent_reference_on_random_labels():
    rng = np.random.default_rng(1234)
    for trial in range(300):
        num_classes = int(rng.integers(1, 7))
        length = int(rng.integers(0, 60))
        # Skewed class weights make absent and never-predicted classes common.
        weights = rng.dirichlet(np.full(num_classes, 0.5))
        y_true = rng.choice(num_classes, size=length, p=weights).tolist()
        # Mostly-correct predictions exercise the diagonal as well as the errors.
        noise = rng.choice(num_classes, size=length).tolist()
        keep = rng.random(length) < rng.random()
        y_pred = [t if k else n for t, n, k in zip(y_true, noise, keep)]
        names = [f"class_{i}" for i in range(num_classes)]

        report = classification_report(y_true, y_pred, names)
        reference = _reference_report(y_true, y_pred, names)
        try:
            _assert_close_to_reference(report, reference)
        except AssertionError as error:
            raise AssertionError(f"trial {trial}: {y_true=} {y_pred=}") from error
        assert report["num_examples"] == length
        np.testing.assert_array_equal(
            confusion_matrix(y_true, y_pred, num_classes), reference["confusion_matrix"]
        )


def test_matches_sklearn_zero_division_0():
    metrics = pytest.importorskip(
        "sklearn.metrics", reason="scikit-learn (pulled in by seqeval) not installed"
    )
    rng = np.random.default_rng(99)
    for _ in range(30):
        num_classes = int(rng.integers(2, 6))
        y_true = rng.integers(0, num_classes, size=40)
        y_pred = rng.integers(0, num_classes - 1, size=40)  # the last class is never predicted
        labels = list(range(num_classes))
        report = classification_report(y_true, y_pred, [str(i) for i in labels])
        precision, recall, f1, support = metrics.precision_recall_fscore_support(
            y_true, y_pred, labels=labels, zero_division=0
        )
        got = report["per_class"]
        np.testing.assert_allclose([got[str(i)]["precision"] for i in labels], precision)
        np.testing.assert_allclose([got[str(i)]["recall"] for i in labels], recall)
        np.testing.assert_allclose([got[str(i)]["f1"] for i in labels], f1)
        assert [got[str(i)]["support"] for i in labels] == support.tolist()
        assert report["macro_f1"] == pytest.approx(
            metrics.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
        )
        np.testing.assert_array_equal(
            report["confusion_matrix"], metrics.confusion_matrix(y_true, y_pred, labels=labels)
        )
