"""Perplexity and nats/bits per token: numpy functions, the Keras metrics, and exactness over a stream."""

import math

import keras
import numpy as np
import pytest

from nlpkit.data import stream_windows
from nlpkit.metrics import (
    BitsPerToken,
    LanguageModelMetric,
    NatsPerToken,
    Perplexity,
    bits_from_nll,
    compute_perplexity,
    nats_from_nll,
    perplexity_from_nll,
    token_log_likelihood,
)

VOCABULARY = 11


def reference_nll(logits, targets):
    """Per-token negative log-likelihood, written out with the standard library."""
    out = np.zeros(targets.shape)
    for index in np.ndindex(targets.shape):
        row = [float(value) for value in logits[index]]
        top = max(row)
        log_sum = top + math.log(sum(math.exp(value - top) for value in row))
        out[index] = log_sum - row[targets[index]]
    return out


@pytest.fixture(scope="module")
def batches():
    """Windows of a 300-token stream in 4 streams of 16 steps, with padding at the end, and logits."""
    rng = np.random.default_rng(0)
    ids = rng.integers(1, VOCABULARY, 300)
    inputs, targets, weights = stream_windows(ids, 4, 16)
    logits = rng.normal(0, 2, targets.shape + (VOCABULARY,)).astype(np.float32)
    return logits, targets, weights


def test_numpy_functions_match_a_direct_computation(batches):
    logits, targets, weights = batches
    nll = reference_nll(logits, targets)
    expected_mean = (nll * weights).sum() / weights.sum()
    total, count = token_log_likelihood(logits, targets, weights)
    assert count == 299
    assert total == pytest.approx((nll * weights).sum(), rel=1e-12)
    scores = compute_perplexity(logits, targets, weights)
    assert scores["tokens"] == 299
    assert scores["nats_per_token"] == pytest.approx(expected_mean, rel=1e-12)
    assert scores["perplexity"] == pytest.approx(math.exp(expected_mean), rel=1e-12)
    assert scores["bits_per_token"] == pytest.approx(expected_mean / math.log(2), rel=1e-12)
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    from_probs = compute_perplexity(probabilities, targets, weights, from_logits=False)
    assert from_probs["perplexity"] == pytest.approx(scores["perplexity"], rel=1e-5)


def test_uniform_predictions_give_the_vocabulary_size():
    scores = compute_perplexity(np.zeros((3, 5, 8)), np.ones((3, 5), int))
    assert scores["perplexity"] == pytest.approx(8.0)
    assert scores["bits_per_token"] == pytest.approx(3.0)
    assert perplexity_from_nll(2 * math.log(10), 2) == pytest.approx(10.0)
    assert nats_from_nll(3.0, 2.0) == 1.5 and bits_from_nll(math.log(2), 1) == pytest.approx(1.0)


@pytest.mark.parametrize("metric_class, key", [(Perplexity, "perplexity"), (NatsPerToken, "nats_per_token"),
                                               (BitsPerToken, "bits_per_token")])
def test_keras_metric_is_exact_over_the_stream_not_a_mean_of_batches(batches, metric_class, key):
    logits, targets, weights = batches
    metric = metric_class()
    for k in range(len(targets)):
        metric.update_state(targets[k], logits[k], sample_weight=weights[k])
    expected = compute_perplexity(logits, targets, weights)[key]
    assert float(metric.result()) == pytest.approx(expected, rel=1e-5)
    # The last window holds fewer real tokens: a mean of per-window figures differs.
    per_window = [compute_perplexity(logits[k], targets[k], weights[k])[key] for k in range(len(targets))]
    assert abs(np.mean(per_window) - expected) > 1e-3 * expected
    metric.reset_state()
    assert float(metric.result()) == pytest.approx(1.0 if key == "perplexity" else 0.0)


def test_metric_without_weights_counts_every_position_and_accepts_column_targets():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 6, VOCABULARY)).astype(np.float32)
    targets = rng.integers(0, VOCABULARY, (2, 6))
    metric = Perplexity()
    metric.update_state(targets[..., None], logits)
    assert float(metric.result()) == pytest.approx(compute_perplexity(logits, targets)["perplexity"], rel=1e-5)


def test_metric_in_evaluate_is_exact_with_weighted_metrics(batches):
    logits, targets, weights = batches
    # A model that outputs fixed logits per window position: evaluate() must reproduce the
    # exact stream perplexity, padding excluded, whatever the batching.
    inputs = np.arange(len(targets))[:, None, None] * np.ones(targets.shape, np.int32)
    table = keras.layers.Embedding(len(targets), int(np.prod(logits.shape[1:])))
    table.build((None,))
    table.embeddings.assign(logits.reshape(len(targets), -1))
    token = keras.Input((4, 16), dtype="int32")
    output = keras.layers.Reshape((4, 16, VOCABULARY))(table(token[:, 0, 0]))
    model = keras.Model(token, output)
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  weighted_metrics=[Perplexity(), BitsPerToken()])
    results = model.evaluate(inputs, targets, sample_weight=weights, batch_size=2, return_dict=True, verbose=0)
    expected = compute_perplexity(logits, targets, weights)
    assert results["perplexity"] == pytest.approx(expected["perplexity"], rel=1e-5)
    assert results["bits_per_token"] == pytest.approx(expected["bits_per_token"], rel=1e-5)


def test_config_round_trip_and_validation():
    for metric in (Perplexity(name="ppl"), NatsPerToken(from_logits=False), BitsPerToken(), LanguageModelMetric("bits")):
        clone = type(metric).from_config(metric.get_config())
        assert clone.get_config() == metric.get_config()
    with pytest.raises(ValueError, match="unit='loss'"):
        LanguageModelMetric("loss")
    with pytest.raises(ValueError, match="from_logits=1"):
        Perplexity(from_logits=1)
    with pytest.raises(ValueError, match="targets shape"):
        token_log_likelihood(np.zeros((2, 3, 4)), np.zeros((2, 2), int))
    with pytest.raises(ValueError, match="total_weight=0"):
        perplexity_from_nll(1.0, 0)
