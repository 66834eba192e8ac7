"""Attention over masked encoder states, for recurrent decoders: additive and multiplicative.

Both layers split their work the way a decoder step needs it:

- ``project_memory(memory)``: the part of the score that depends on the encoder states
  only, computed once per source sentence (the "keys");
- ``attend(query, memory, keys, memory_mask)``: one decoder step (query ``(batch, dim)``) or
  all steps at once (query ``(batch, steps, dim)``), giving the context vectors and the
  attention weights.

Called as a layer, ``layer([query, memory], mask=memory_mask)`` does both and returns the
context (and the weights with ``return_attention_scores=True``), which is what a model
without a step loop (Luong attention without input feeding) uses.

Masked encoder positions get weight exactly 0. A row whose positions are all masked (an
empty source) gets all-zero weights and a zero context instead of NaNs.
"""

import keras
from keras import ops

# Added to the scores of masked positions before the softmax; finite, so an all-masked
# row stays finite too (its weights are then zeroed explicitly).
_MASKED_SCORE = -1e9


def _memory_mask(mask):
    # Keras hands a list of per-input masks to a layer called on a list.
    if isinstance(mask, (list, tuple)):
        return mask[1] if len(mask) > 1 else None
    return mask


class _Attention(keras.layers.Layer):
    """Shared call, masking and softmax of the attention layers; subclasses compute the scores."""

    def __init__(self, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.supports_masking = True

    def project_memory(self, memory):
        """``(batch, time, key_dim)``: what the scores need of the memory, once per sentence."""
        raise NotImplementedError

    def compute_scores(self, query, keys):
        """Unnormalised scores: ``(batch, time)`` for a 2-D query, ``(batch, steps, time)`` for 3-D."""
        raise NotImplementedError

    def attend(self, query, memory, keys, memory_mask=None):
        """Context vectors and attention weights for ``query``.

        Args:
            query: ``(batch, query_dim)`` (one decoder step) or ``(batch, steps, query_dim)``.
            memory: ``(batch, time, memory_dim)``, the encoder states.
            keys: ``project_memory(memory)``.
            memory_mask: optional ``(batch, time)``, true (or 1) at real positions.

        Returns:
            ``(context, weights)``: ``(batch, [steps,] memory_dim)`` and ``(batch, [steps,] time)``.
        """
        scores = self.compute_scores(query, keys)
        step_axis = len(query.shape) == 3
        if memory_mask is not None:
            keep = ops.cast(memory_mask, "bool")
            if step_axis:
                keep = ops.expand_dims(keep, 1)
            scores = ops.where(keep, scores, ops.full_like(scores, _MASKED_SCORE))
            weights = ops.softmax(scores, axis=-1)
            weights = ops.where(keep, weights, ops.zeros_like(weights))
        else:
            weights = ops.softmax(scores, axis=-1)
        if step_axis:
            context = ops.matmul(weights, memory)
        else:
            context = ops.squeeze(ops.matmul(ops.expand_dims(weights, 1), memory), 1)
        return context, weights

    def call(self, inputs, mask=None, return_attention_scores=False):
        query, memory = inputs
        context, weights = self.attend(query, memory, self.project_memory(memory), _memory_mask(mask))
        return (context, weights) if return_attention_scores else context

    def compute_mask(self, inputs, mask=None):
        # The context has one vector per query step: it inherits the query's mask.
        if isinstance(mask, (list, tuple)):
            return mask[0]
        return None

    def compute_output_shape(self, input_shape):
        query_shape, memory_shape = input_shape
        return tuple(query_shape[:-1]) + (memory_shape[-1],)

    def get_config(self):
        config = super().get_config()
        config["kernel_initializer"] = keras.initializers.serialize(self.kernel_initializer)
        return config


def _check_shapes(layer, input_shape):
    if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 2 or not isinstance(input_shape[0], (list, tuple)):
        raise ValueError(
            f"{type(layer).__name__} is called on [query, memory]. Received input shape {input_shape!r}"
        )
    query_shape, memory_shape = input_shape
    if len(query_shape) not in (2, 3) or len(memory_shape) != 3:
        raise ValueError(
            f"{type(layer).__name__} needs a query (batch, [steps,] dim) and a memory (batch, time, dim). "
            f"Received query shape {tuple(query_shape)} and memory shape {tuple(memory_shape)}"
        )
    return query_shape, memory_shape


@keras.saving.register_keras_serializable(package="nlpkit")
class AdditiveAttention(_Attention):
    """Additive attention (Bahdanau, Cho & Bengio 2015): ``v . tanh(W_q q + W_m m_j + b)``.

    In a Bahdanau decoder the query is the previous decoder state and the context feeds
    the next recurrent step; the memory projection ``W_m m_j + b`` is computed once per
    sentence (`project_memory`).

    Args:
        units: int, width of the hidden scoring layer.
        kernel_initializer: default "glorot_uniform". Initializer of ``W_q``, ``W_m`` and ``v``.
        **kwargs: `keras.layers.Layer` arguments (name, dtype).

    Example:
        >>> attention = AdditiveAttention(16)
        >>> query, memory = np.zeros((2, 8), "float32"), np.ones((2, 5, 6), "float32")
        >>> mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
        >>> context, weights = attention([query, memory], mask=mask, return_attention_scores=True)
        >>> context.shape, weights.shape
        ((2, 6), (2, 5))
    """

    def __init__(self, units, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(kernel_initializer=kernel_initializer, **kwargs)
        if isinstance(units, bool) or not isinstance(units, int) or units < 1:
            raise ValueError(f"`units` must be a positive int. Received: units={units!r}")
        self.units = units

    def build(self, input_shape):
        query_shape, memory_shape = _check_shapes(self, input_shape)
        self.query_kernel = self.add_weight(
            shape=(query_shape[-1], self.units), initializer=self.kernel_initializer, name="query_kernel"
        )
        self.memory_kernel = self.add_weight(
            shape=(memory_shape[-1], self.units), initializer=self.kernel_initializer, name="memory_kernel"
        )
        self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")
        self.score_vector = self.add_weight(
            shape=(self.units, 1), initializer=self.kernel_initializer, name="score_vector"
        )

    def project_memory(self, memory):
        return ops.matmul(memory, self.memory_kernel) + self.bias

    def compute_scores(self, query, keys):
        projected = ops.matmul(query, self.query_kernel)
        if len(query.shape) == 3:
            hidden = ops.tanh(ops.expand_dims(projected, 2) + ops.expand_dims(keys, 1))
        else:
            hidden = ops.tanh(ops.expand_dims(projected, 1) + keys)
        return ops.squeeze(ops.matmul(hidden, self.score_vector), -1)

    def get_config(self):
        config = super().get_config()
        config["units"] = self.units
        return config


MULTIPLICATIVE_SCORES = ("general", "dot")


@keras.saving.register_keras_serializable(package="nlpkit")
class MultiplicativeAttention(_Attention):
    """Multiplicative attention (Luong, Pham & Manning 2015): ``q . W m_j`` ("general") or ``q . m_j`` ("dot").

    In a Luong decoder the query is the current decoder state, and the context joins it in
    the attentional vector ``tanh(W_c [context; h])``, which "input feeding" passes to the
    next step's input (`nlpkit.models.Seq2Seq` does both). ``project_memory`` computes
    ``m_j W^T`` once per sentence, so a step costs one batched matmul.

    Args:
        score: "general" (default, a learned ``query_dim x memory_dim`` matrix) or "dot"
            (no weights; query and memory must have the same width).
        kernel_initializer: default "glorot_uniform". Initializer of ``W``.
        **kwargs: `keras.layers.Layer` arguments (name, dtype).

    Example:
        >>> attention = MultiplicativeAttention()
        >>> query, memory = np.zeros((2, 3, 8), "float32"), np.ones((2, 5, 6), "float32")
        >>> attention([query, memory]).shape
        (2, 3, 6)
    """

    def __init__(self, score="general", kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(kernel_initializer=kernel_initializer, **kwargs)
        if score not in MULTIPLICATIVE_SCORES:
            raise ValueError(f"`score` must be one of {MULTIPLICATIVE_SCORES}. Received: score={score!r}")
        self.score = score

    def build(self, input_shape):
        query_shape, memory_shape = _check_shapes(self, input_shape)
        self.kernel = None
        if self.score == "general":
            self.kernel = self.add_weight(
                shape=(memory_shape[-1], query_shape[-1]), initializer=self.kernel_initializer, name="kernel"
            )
        elif query_shape[-1] != memory_shape[-1]:
            raise ValueError(
                f'score="dot" needs query and memory of the same width. Received query width '
                f"{query_shape[-1]} and memory width {memory_shape[-1]}"
            )

    def project_memory(self, memory):
        return memory if self.kernel is None else ops.matmul(memory, self.kernel)

    def compute_scores(self, query, keys):
        if len(query.shape) == 3:
            return ops.matmul(query, ops.transpose(keys, (0, 2, 1)))
        return ops.squeeze(ops.matmul(keys, ops.expand_dims(query, -1)), -1)

    def get_config(self):
        config = super().get_config()
        config["score"] = self.score
        return config
