"""Span F1 against seqeval as an oracle; the Keras metric against the function, also in fit."""

import doctest
import json
import random
import warnings

import keras
import numpy as np
import pytest
from seqeval.metrics import f1_score, precision_score, recall_score
from seqeval.metrics.sequence_labeling import precision_recall_fscore_support
from seqeval.metrics.v1 import precision_recall_fscore_support as strict_prfs
from seqeval.scheme import IOBES

from nlpkit.metrics import entity_spans as span_f1_module
from nlpkit.metrics.entity_spans import SpanF1, format_span_report, span_f1
from nlpkit.text.tag_schemes import TagSchemeError, scheme_tags, spans_to_tags

TYPES = ("PER", "LOC", "ORG", "MISC")
PREFIXES = {"IOB1": "BI", "BIO": "BI", "BIOES": "BIES"}


def _random_tag(rng, scheme):
    if rng.random() < 0.45:
        return "O"
    return f"{rng.choice(PREFIXES[scheme])}-{rng.choice(TYPES)}"


def _perturb(rng, tags, scheme, rate):
    """A 'prediction': the gold tags with some replaced, so that many entities still match."""
    return [_random_tag(rng, scheme) if rng.random() < rate else tag for tag in tags]


def _well_formed_tags(rng, length, scheme):
    spans, position = [], 0
    while position < length:
        end = min(length, position + rng.randint(1, 3))
        if rng.random() < 0.5:
            spans.append((rng.choice(TYPES), position, end))
        position = end
    return spans_to_tags(spans, length, scheme)


def _random_corpus(rng, scheme, well_formed=False):
    """1-8 sentences, a third of them empty; tags mostly malformed unless ``well_formed``."""
    sentences = []
    for _ in range(rng.randint(1, 8)):
        length = rng.choice([0, rng.randint(1, 15), rng.randint(1, 15)])
        if well_formed:
            sentences.append(_well_formed_tags(rng, length, scheme))
        else:
            sentences.append([_random_tag(rng, scheme) for _ in range(length)])
    return sentences


def _seqeval_reference(true, predicted, **kwargs):
    """seqeval's micro scores and per-type arrays; zero_division=0 is its default minus the warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        micro = (
            precision_score(true, predicted, zero_division=0, **kwargs),
            recall_score(true, predicted, zero_division=0, **kwargs),
            f1_score(true, predicted, zero_division=0, **kwargs),
        )
        if kwargs.get("mode") == "strict":
            per_type = strict_prfs(
                true, predicted, average=None, zero_division=0, scheme=kwargs["scheme"]
            )
        else:
            per_type = precision_recall_fscore_support(
                true, predicted, average=None, zero_division=0
            )
    return micro, per_type


def _assert_equals_seqeval(report, true, predicted, **kwargs):
    (precision, recall, f1), (type_precision, type_recall, type_f1, support) = _seqeval_reference(
        true, predicted, **kwargs
    )
    # Same arithmetic in the same order, so equal floats, not just close ones.
    assert (report["precision"], report["recall"], report["f1"]) == (precision, recall, f1)
    # seqeval's per-type arrays follow the sorted union of gold and predicted types.
    assert list(report["per_type"]) == sorted(report["per_type"])
    rows = [
        (entry["precision"], entry["recall"], entry["f1"], entry["support"])
        for entry in report["per_type"].values()
    ]
    assert rows == list(zip(type_precision, type_recall, type_f1, support))


def test_doctests():
    assert doctest.testmod(span_f1_module).failed == 0


@pytest.mark.parametrize("scheme", ["BIO", "IOB1", "BIOES"])
def test_equals_seqeval_default_mode_on_random_malformed_tags(scheme):
    """Thousands of sentences, mostly malformed: I- starts, type switches, stray E-/S-, empties."""
    rng = random.Random(f"seqeval-{scheme}")
    sentences = 0
    for _ in range(400):
        true = _random_corpus(rng, scheme)
        predicted = [_perturb(rng, tags, scheme, rng.choice([0.0, 0.1, 0.3, 1.0])) for tags in true]
        report = span_f1(true, predicted, scheme=scheme)
        _assert_equals_seqeval(report, true, predicted)
        sentences += len(true)
    assert sentences > 1500


def test_well_formed_bioes_equals_seqeval_strict_mode():
    """On well-formed BIOES, conlleval's reading and seqeval's strict IOBES mode agree."""
    rng = random.Random("strict")
    for _ in range(200):
        true = _random_corpus(rng, "BIOES", well_formed=True)
        predicted = [
            tags if rng.random() < 0.4 else _well_formed_tags(rng, len(tags), "BIOES")
            for tags in true
        ]
        report = span_f1(true, predicted, scheme="BIOES")
        _assert_equals_seqeval(report, true, predicted, mode="strict", scheme=IOBES)


def test_hand_computed_report():
    true = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"], []]
    # A PER I- start (still the same chunk), a LOC->ORG type switch, and a missed ORG.
    predicted = [["I-PER", "I-PER", "O", "B-ORG"], ["O", "O"], []]
    report = span_f1(true, predicted)
    assert report["num_true"] == 3 and report["num_predicted"] == 2 and report["num_correct"] == 1
    assert report["precision"] == 0.5
    assert report["recall"] == pytest.approx(1 / 3)
    assert report["f1"] == pytest.approx(0.4)
    assert report["num_tokens"] == 6 and report["accuracy"] == 0.5
    assert report["per_type"] == {
        "LOC": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1, "predicted": 0, "correct": 0},
        "ORG": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1, "predicted": 1, "correct": 0},
        "PER": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1, "predicted": 1, "correct": 1},
    }


def test_iob1_adjacent_chunks():
    true = [["I-PER", "I-PER", "B-PER", "O"]]
    assert span_f1(true, true, scheme="IOB1")["num_true"] == 2
    # Without the B- the two chunks merge into one, which matches neither.
    merged = span_f1(true, [["I-PER", "I-PER", "I-PER", "O"]], scheme="IOB1")
    assert merged["num_predicted"] == 1 and merged["num_correct"] == 0


@pytest.mark.parametrize("true, predicted", [([["O", "O"]], [["O", "O"]]), ([], []), ([[]], [[]])])
def test_nothing_to_find_scores_zero(true, predicted):
    report = span_f1(true, predicted)
    assert (report["precision"], report["recall"], report["f1"]) == (0.0, 0.0, 0.0)
    assert report["per_type"] == {}


def test_errors_name_the_problem():
    with pytest.raises(TagSchemeError, match="predicted sentence 1: tag 'S-PER' at position 0"):
        span_f1([["O"], ["O"]], [["O"], ["S-PER"]], scheme="BIO")
    with pytest.raises(ValueError, match="sentence 0 has 2 gold tags but 1 predicted"):
        span_f1([["O", "O"]], [["O"]])
    with pytest.raises(ValueError, match="2 and 1"):
        span_f1([["O"], ["O"]], [["O"]])
    with pytest.raises(TypeError, match="wrap a single sentence"):
        span_f1(["B-PER", "O"], ["B-PER", "O"])
    with pytest.raises(TagSchemeError, match="BILOU"):
        span_f1([["O"]], [["O"]], scheme="BILOU")


def test_format_span_report_survives_json():
    report = span_f1([["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "I-PER", "O", "B-LOC"]])
    text = format_span_report(json.loads(json.dumps(report)))
    assert text.splitlines()[0] == "processed 4 tokens with 2 entities; found: 2 entities; correct: 2."
    assert text.splitlines()[-1].split() == ["overall", "100.00", "100.00", "100.00", "2", "2"]
    with pytest.raises(ValueError, match="per_type"):
        format_span_report({key: value for key, value in report.items() if key != "per_type"})


# ---------------------------------------------------------------- Keras metric

BIO_TAGS = ["<pad>", *scheme_tags(TYPES[:3], "BIO")]


def _ids_to_sentences(ids, lengths, tags):
    # A predicted padding id at a real token reads as "O" (see SpanF1's docstring).
    return [["O" if i == 0 else tags[i] for i in row[:length]] for row, length in zip(ids, lengths)]


def _random_batch(rng, tags, batch, time):
    lengths = rng.integers(0, time + 1, size=batch)
    true = rng.integers(1, len(tags), size=(batch, time))
    noise = rng.integers(0, len(tags), size=(batch, time))
    predicted = np.where(rng.random((batch, time)) < 0.3, noise, true)
    true[np.arange(time)[None, :] >= lengths[:, None]] = 0
    return true, predicted, lengths


@pytest.mark.parametrize("scheme", ["BIO", "BIOES"])
def test_metric_counts_equal_the_function(scheme):
    tags = ["<pad>", *scheme_tags(TYPES, scheme)]
    rng = np.random.default_rng(0)
    metric = SpanF1(tags, scheme=scheme, padding_id=0)
    all_true, all_predicted = [], []
    for _ in range(6):
        true, predicted, lengths = _random_batch(rng, tags, batch=16, time=int(rng.integers(1, 14)))
        metric.update_state(true, predicted)
        all_true += _ids_to_sentences(true, lengths, tags)
        all_predicted += _ids_to_sentences(predicted, lengths, tags)
    expected = span_f1(all_true, all_predicted, scheme=scheme)
    assert expected["num_predicted"] > 50 and 0 < expected["num_correct"] < expected["num_true"]
    assert metric.report() == expected
    assert float(metric.result()) == pytest.approx(expected["f1"], rel=1e-6)
    metric.reset_state()
    assert metric.report()["num_tokens"] == 0 and float(metric.result()) == 0.0


def test_metric_takes_scores_sample_weights_and_a_trailing_axis():
    rng = np.random.default_rng(1)
    true, predicted, lengths = _random_batch(rng, BIO_TAGS, batch=12, time=9)
    scores = keras.ops.one_hot(predicted, len(BIO_TAGS)) + rng.random((12, 9, len(BIO_TAGS))) * 0.1
    expected = span_f1(
        _ids_to_sentences(true, lengths, BIO_TAGS), _ids_to_sentences(predicted, lengths, BIO_TAGS)
    )
    by_scores = SpanF1(BIO_TAGS, padding_id=0)
    by_scores.update_state(true[..., None], scores)
    assert by_scores.report() == expected
    # Without a padding id, a (batch, time) sample weight masks the same tokens. The tag
    # list then has no "<pad>": ids shift down by one, and a predicted pad becomes "O".
    weights = (np.arange(9)[None, :] < lengths[:, None]).astype("float32")
    by_weights = SpanF1(BIO_TAGS[1:])
    by_weights.update_state(
        np.maximum(true - 1, 0), np.maximum(predicted - 1, 0)[..., None], sample_weight=weights
    )
    assert by_weights.report() == expected
    # A (batch,) weight drops whole sentences.
    keep = np.array([1, 0] * 6, dtype="float32")
    by_row = SpanF1(BIO_TAGS, padding_id=0)
    by_row.update_state(true, predicted, sample_weight=keep)
    assert by_row.report() == span_f1(
        _ids_to_sentences(true[::2], lengths[::2], BIO_TAGS),
        _ids_to_sentences(predicted[::2], lengths[::2], BIO_TAGS),
    )


def _tagger(num_words, num_tags):
    inputs = keras.Input(shape=(None,), dtype="int32")
    hidden = keras.layers.Embedding(num_words, 8)(inputs)
    outputs = keras.layers.Dense(num_tags)(hidden)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_metric_in_fit_and_evaluate_equals_the_function(jit_compile):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(2)
    batch, time = 40, 10
    words = rng.integers(1, 30, size=(batch, time)).astype("int32")
    model = _tagger(30, len(BIO_TAGS))
    lengths = rng.integers(0, time + 1, size=batch)
    predicted = np.argmax(model.predict(words, verbose=0), axis=-1)
    # Gold = the model's own predictions, partly replaced (much more in the first batch of
    # 8): plenty of hits and misses, and batch F1s far apart.
    rate = np.where(np.arange(batch) < 8, 0.8, 0.1)[:, None]
    noise = rng.integers(1, len(BIO_TAGS), (batch, time))
    true = np.where(rng.random((batch, time)) < rate, noise, predicted)
    true = np.where(true == 0, 1, true)
    true[np.arange(time)[None, :] >= lengths[:, None]] = 0
    expected = span_f1(
        _ids_to_sentences(true, lengths, BIO_TAGS), _ids_to_sentences(predicted, lengths, BIO_TAGS)
    )
    assert 0 < expected["num_correct"] < min(expected["num_true"], expected["num_predicted"])

    # A zero learning rate keeps the predictions fixed while fit counts over the epoch.
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[SpanF1(BIO_TAGS, padding_id=0)],
        jit_compile=jit_compile,
    )
    history = model.fit(words, true, batch_size=8, epochs=1, shuffle=False, verbose=0)
    assert history.history["span_f1"][0] == pytest.approx(expected["f1"], rel=1e-5)
    logs = model.evaluate(words, true, batch_size=16, verbose=0, return_dict=True)
    assert logs["span_f1"] == pytest.approx(expected["f1"], rel=1e-5)
    metric = next(m for m in model.metrics[1].metrics if isinstance(m, SpanF1))
    assert metric.report() == expected

    # The epoch value is not the mean of batch F1s (which would differ here).
    batch_f1 = [
        span_f1(
            _ids_to_sentences(true[i : i + 8], lengths[i : i + 8], BIO_TAGS),
            _ids_to_sentences(predicted[i : i + 8], lengths[i : i + 8], BIO_TAGS),
        )["f1"]
        for i in range(0, batch, 8)
    ]
    assert abs(np.mean(batch_f1) - expected["f1"]) > 1e-3


def test_metric_serializes():
    metric = SpanF1(["O", "B-PER", "I-PER", "E-PER", "S-PER"], scheme="iobes", name="ner_f1")
    config = metric.get_config()
    assert config["tags"] == ["O", "B-PER", "I-PER", "E-PER", "S-PER"]
    assert (config["scheme"], config["padding_id"], config["name"]) == ("BIOES", None, "ner_f1")
    restored = keras.metrics.deserialize(keras.metrics.serialize(metric))
    assert isinstance(restored, SpanF1) and restored.get_config() == config


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"tags": ["O", "B-PER", "E-PER"]}, TagSchemeError, r"tags\[2\]: tag 'E-PER'"),
        ({"tags": ["O", "B-PER", "O"]}, ValueError, "duplicates"),
        ({"tags": ["<pad>", "O"], "padding_id": 0}, ValueError, "no entity type"),
        ({"tags": ["O", "B-PER"], "padding_id": 2}, ValueError, r"\[0, 2\), got 2"),
        ({"tags": ["O", "B-PER"], "padding_id": True}, ValueError, "got True"),
        ({"tags": "O B-PER"}, TypeError, "sequence of str"),
        ({"tags": ["O", "B-PER"], "scheme": "BILOU"}, TagSchemeError, "BILOU"),
    ],
)
def test_metric_validates_its_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        SpanF1(**kwargs)


def test_metric_refuses_bad_shapes():
    metric = SpanF1(["O", "B-PER", "I-PER"])
    with pytest.raises(ValueError, match="3 tag columns"):
        metric.update_state(np.zeros((2, 4), "int32"), np.zeros((2, 4, 5), "float32"))
    with pytest.raises(ValueError, match=r"y_true must be tag ids of shape \(batch, time\)"):
        metric.update_state(np.zeros((4,), "int32"), np.zeros((4,), "int32"))


def test_compiled_metric_survives_keras_save_and_safe_load(tmp_path):
    keras.utils.set_random_seed(1)
    model = _tagger(10, len(BIO_TAGS))
    model.compile(
        optimizer="sgd",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[SpanF1(BIO_TAGS, padding_id=0)],
    )
    words = np.random.default_rng(3).integers(1, 10, size=(6, 5))
    tags = np.random.default_rng(4).integers(0, len(BIO_TAGS), size=(6, 5))
    before = model.evaluate(words, tags, verbose=0, return_dict=True)
    model.save(tmp_path / "tagger.keras")
    loaded = keras.models.load_model(tmp_path / "tagger.keras", safe_mode=True)
    assert loaded.evaluate(words, tags, verbose=0, return_dict=True) == before
    assert before["span_f1"] > 0


def test_package_exports_the_function_even_after_the_metric_was_imported():
    import nlpkit.metrics

    assert nlpkit.metrics.SpanF1 is SpanF1
    assert nlpkit.metrics.span_f1 is span_f1  # the module has another name, so nothing shadows it
