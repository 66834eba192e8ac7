"""Perplexity, nats and bits per token, exact over a whole evaluation stream.

A language model's perplexity on a corpus is ``exp(total negative log-likelihood / number of
predicted tokens)`` — one average over every token of the stream. The mean of per-batch
perplexities is a different (and larger, by Jensen's inequality) number, and so is a mean of
per-batch losses when batches hold different numbers of real tokens (the padded last window
of `nlpkit.data.stream_windows`). Everything here therefore accumulates the summed
log-likelihood and the summed token weight, and divides once at the end.

Per-character figures are the same quantities on a character stream: ``nats_per_token``
is the cross-entropy in nats (what Keras reports as the loss), ``bits_per_token`` is it
divided by ``ln 2`` (the "bpc" of character-level papers).

Unlike most metric modules this one imports Keras, for the metric classes; the functions
(`compute_perplexity`, `token_log_likelihood`, `perplexity_from_nll`, `nats_from_nll`,
`bits_from_nll`) are numpy.
"""

import math

import keras
import numpy as np
from keras import ops

__all__ = [
    "token_log_likelihood",
    "compute_perplexity",
    "perplexity_from_nll",
    "nats_from_nll",
    "bits_from_nll",
    "LanguageModelMetric",
    "Perplexity",
    "NatsPerToken",
    "BitsPerToken",
]

_UNITS = ("perplexity", "nats", "bits")


def _log_softmax(logits):
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def token_log_likelihood(predictions, targets, weights=None, from_logits=True):
    """Summed negative log-likelihood of ``targets`` and the summed token weight (numpy).

    Args:
        predictions: float array ``(..., vocabulary_size)``: logits (``from_logits``) or
            probabilities.
        targets: int array ``(...)``, the next-token ids.
        weights: optional float array ``(...)``; 0 leaves a position out (padding).
        from_logits: bool, default True.

    Returns:
        ``(total_nll, total_weight)`` as Python floats, in float64. Sum these over all
        batches of a stream and pass them to `perplexity_from_nll` & co.

    Example:
        >>> nll, count = token_log_likelihood(np.zeros((2, 3, 4)), np.ones((2, 3), int))
        >>> round(perplexity_from_nll(nll, count), 6)  # uniform over 4 tokens
        4.0
    """
    predictions = np.asarray(predictions)
    targets = np.asarray(targets)
    if predictions.shape[:-1] != targets.shape:
        raise ValueError(
            f"`predictions` must have the shape of `targets` plus a vocabulary axis. Received "
            f"predictions shape {predictions.shape} and targets shape {targets.shape}"
        )
    if from_logits:
        log_probs = _log_softmax(predictions)
    else:
        log_probs = np.log(np.clip(predictions.astype(np.float64), 1e-300, None))
    picked = np.take_along_axis(log_probs, targets[..., None].astype(np.int64), axis=-1)[..., 0]
    weights = np.ones(targets.shape) if weights is None else np.asarray(weights, dtype=np.float64)
    if weights.shape != targets.shape:
        raise ValueError(
            f"`weights` must have the shape of `targets` {targets.shape}. Received {weights.shape}"
        )
    return float(-(picked * weights).sum()), float(weights.sum())


def _mean_nll(total_nll, total_weight):
    if total_weight <= 0:
        raise ValueError(
            f"No tokens to average over: total_weight={total_weight!r} must be positive."
        )
    return total_nll / total_weight


def nats_from_nll(total_nll, total_weight):
    """Cross-entropy in nats per token: ``total_nll / total_weight``."""
    return _mean_nll(total_nll, total_weight)


def bits_from_nll(total_nll, total_weight):
    """Cross-entropy in bits per token (bits per character on a character stream)."""
    return _mean_nll(total_nll, total_weight) / math.log(2.0)


def perplexity_from_nll(total_nll, total_weight):
    """``exp(total_nll / total_weight)``, the perplexity of the whole stream.

    Example:
        >>> round(perplexity_from_nll(2 * math.log(10.0), 2), 9)
        10.0
    """
    return math.exp(_mean_nll(total_nll, total_weight))


def compute_perplexity(predictions, targets, weights=None, from_logits=True):
    """Perplexity, nats and bits per token of next-token predictions (numpy, float64).

    One average over every weighted token of the arrays: pass a whole stream (e.g. every
    window of `nlpkit.data.stream_windows` stacked) to score it exactly. For streams too
    large to hold at once, sum `token_log_likelihood` over batches instead.

    Args:
        predictions: float array ``(..., vocabulary_size)``, logits or probabilities.
        targets: int array ``(...)``.
        weights: optional float array ``(...)``; 0 leaves a position out.
        from_logits: bool, default True.

    Returns:
        dict with ``perplexity``, ``nats_per_token``, ``bits_per_token`` and ``tokens``
        (the summed weight).

    Example:
        >>> compute_perplexity(np.zeros((1, 2, 8)), np.array([[3, 5]]))["bits_per_token"]
        3.0
    """
    total_nll, total_weight = token_log_likelihood(predictions, targets, weights, from_logits)
    return {
        "perplexity": perplexity_from_nll(total_nll, total_weight),
        "nats_per_token": nats_from_nll(total_nll, total_weight),
        "bits_per_token": bits_from_nll(total_nll, total_weight),
        "tokens": total_weight,
    }


@keras.saving.register_keras_serializable(package="nlpkit")
class LanguageModelMetric(keras.metrics.Metric):
    """Keras metric accumulating the log-likelihood of next-token predictions over a stream.

    ``update_state(targets, logits, sample_weight)`` adds the summed negative
    log-likelihood and the summed weight (float64 accumulators, so a long evaluation stream
    loses no precision); ``result()`` turns the totals into the chosen unit. Reset it once
    per evaluation (Keras does) and the result is exact over the whole stream, with padding
    left out through zero weights.

    Args:
        unit: "perplexity" (default), "nats" or "bits" (per token).
        from_logits: bool, default True. Whether predictions are logits or probabilities.
        name: metric name, default the unit's.
        dtype: dtype of the result.

    Example:
        >>> metric = LanguageModelMetric("bits")
        >>> metric.update_state(np.array([[1]]), np.zeros((1, 1, 4)))
        >>> float(metric.result())
        2.0
    """

    def __init__(self, unit="perplexity", from_logits=True, name=None, dtype=None):
        if unit not in _UNITS:
            raise ValueError(f"`unit` must be one of {_UNITS}. Received: unit={unit!r}")
        if not isinstance(from_logits, bool):
            raise ValueError(f"`from_logits` must be a bool. Received: from_logits={from_logits!r}")
        super().__init__(name=name or _DEFAULT_NAMES[unit], dtype=dtype)
        self.unit = unit
        self.from_logits = from_logits
        self.total_nll = self.add_variable(shape=(), initializer="zeros", dtype="float64", name="total_nll")
        self.total_weight = self.add_variable(shape=(), initializer="zeros", dtype="float64", name="total_weight")

    def update_state(self, y_true, y_pred, sample_weight=None):
        targets = ops.cast(y_true, "int32")
        if len(targets.shape) == len(y_pred.shape):
            targets = ops.squeeze(targets, -1)  # (..., 1) targets, as Keras sometimes passes them
        nll = keras.losses.sparse_categorical_crossentropy(
            targets, ops.cast(y_pred, "float32"), from_logits=self.from_logits
        )
        nll = ops.cast(nll, "float64")
        if sample_weight is None:
            weights = ops.ones_like(nll)
        else:
            weights = ops.broadcast_to(ops.cast(sample_weight, "float64"), ops.shape(nll))
        self.total_nll.assign_add(ops.sum(nll * weights))
        self.total_weight.assign_add(ops.sum(weights))

    def result(self):
        mean = ops.divide_no_nan(self.total_nll, self.total_weight)
        if self.unit == "perplexity":
            value = ops.exp(mean)
        elif self.unit == "bits":
            value = mean / math.log(2.0)
        else:
            value = mean
        return ops.cast(value, self.dtype)

    def get_config(self):
        config = super().get_config()
        config.update({"unit": self.unit, "from_logits": self.from_logits})
        return config


_DEFAULT_NAMES = {"perplexity": "perplexity", "nats": "nats_per_token", "bits": "bits_per_token"}


@keras.saving.register_keras_serializable(package="nlpkit")
class Perplexity(LanguageModelMetric):
    """Perplexity over the whole evaluation stream, ``exp(summed NLL / summed weight)``.

    Args:
        from_logits: bool, default True.
        name: default "perplexity".
        dtype: dtype of the result.

    Example:
        >>> model.compile(optimizer, loss, metrics=[nlpkit.metrics.Perplexity()])
        >>> model.evaluate(nlpkit.data.lm_dataset(ids, 20, 35), return_dict=True)["perplexity"]
    """

    def __init__(self, from_logits=True, name="perplexity", dtype=None):
        super().__init__("perplexity", from_logits=from_logits, name=name, dtype=dtype)

    def get_config(self):
        config = super().get_config()
        del config["unit"]
        return config


@keras.saving.register_keras_serializable(package="nlpkit")
class NatsPerToken(LanguageModelMetric):
    """Cross-entropy in nats per token over the whole stream (per character on characters).

    Args:
        from_logits: bool, default True.
        name: default "nats_per_token".
        dtype: dtype of the result.

    Example:
        >>> metrics = [nlpkit.metrics.NatsPerToken(name="nats_per_char")]
    """

    def __init__(self, from_logits=True, name="nats_per_token", dtype=None):
        super().__init__("nats", from_logits=from_logits, name=name, dtype=dtype)

    def get_config(self):
        config = super().get_config()
        del config["unit"]
        return config


@keras.saving.register_keras_serializable(package="nlpkit")
class BitsPerToken(LanguageModelMetric):
    """Cross-entropy in bits per token over the whole stream (bits per character, "bpc").

    Args:
        from_logits: bool, default True.
        name: default "bits_per_token".
        dtype: dtype of the result.

    Example:
        >>> metrics = [nlpkit.metrics.BitsPerToken(name="bpc")]
    """

    def __init__(self, from_logits=True, name="bits_per_token", dtype=None):
        super().__init__("bits", from_logits=from_logits, name=name, dtype=dtype)

    def get_config(self):
        config = super().get_config()
        del config["unit"]
        return config
