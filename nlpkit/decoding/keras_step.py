"""The step function of a Keras model that has ``step(token_ids, states)`` (TensorFlow backend)."""

import numpy as np
import tensorflow as tf

from nlpkit.decoding.search import log_softmax


class KerasStepFunction:
    """Wraps a model's ``step`` as the numpy step function `nlpkit.decoding` searches drive.

    The model must have ``step(token_ids, states) -> (logits, new_states)`` and
    ``state_sizes`` (as `nlpkit.models.LanguageModel` has). The step runs as one
    ``tf.function`` (traced once per batch size), in inference mode, so it never touches a
    stateful model's own state variables; log-probabilities come from the same
    `nlpkit.decoding.log_softmax` as the TFLite twin (`nlpkit.lite.TFLiteStepFunction`).

    Args:
        model: the Keras model.

    Example:
        >>> step = KerasStepFunction(model)
        >>> result = generate(step, [[start, 12, 7]], step.initial_states(1), 50)
    """

    def __init__(self, model):
        for attribute in ("step", "state_sizes"):
            if not hasattr(model, attribute):
                raise ValueError(
                    f"`model` must have `{attribute}` (e.g. nlpkit.models.LanguageModel). "
                    f"Received: {type(model).__name__}"
                )
        self.model = model
        self._step = tf.function(self._traced_step, reduce_retracing=True)

    def _traced_step(self, token_ids, states):
        logits, new_states = self.model.step(token_ids, states)
        return logits, new_states

    def initial_states(self, batch_size):
        """Zero float32 states, one ``(batch_size, size)`` array per entry of ``state_sizes``."""
        return [np.zeros((batch_size, size), np.float32) for size in self.model.state_sizes]

    def logits(self, token_ids, states):
        """``(logits, new_states)`` as numpy arrays."""
        logits, new_states = self._step(
            tf.convert_to_tensor(np.asarray(token_ids, np.int32)),
            [tf.convert_to_tensor(np.asarray(state, np.float32)) for state in states],
        )
        return logits.numpy(), [state.numpy() for state in new_states]

    def __call__(self, token_ids, states):
        logits, new_states = self.logits(token_ids, states)
        return log_softmax(logits), new_states


class KerasDecoderStep:
    """A `nlpkit.models.Seq2Seq` as the encoder plus step function that translation searches drive.

    ``encode(sources)`` runs the encoder on a batch of source id lists and returns the
    initial decoding states (`Seq2Seq.decoding_states`: recurrent states, then the encoder
    memory, its attention keys and mask, all batch first); calling the object steps the
    decoder, ``(token_ids, states) -> (log_probs, new_states)``. Both run as
    ``tf.function`` in inference mode; log-probabilities come from
    `nlpkit.decoding.log_softmax`, as on the TFLite side (`nlpkit.lite.TFLiteDecoderStep`).

    Args:
        model: the Keras model (with ``decoding_states`` and ``step``).

    Example:
        >>> step = KerasDecoderStep(model)
        >>> result = translate_ids(step, [[41, 7, 3]], bos_id=2, eos_id=3)
    """

    def __init__(self, model):
        for attribute in ("decoding_states", "step"):
            if not hasattr(model, attribute):
                raise ValueError(
                    f"`model` must have `{attribute}` (e.g. nlpkit.models.Seq2Seq). "
                    f"Received: {type(model).__name__}"
                )
        self.model = model
        self._encode = tf.function(lambda ids: model.decoding_states(ids), reduce_retracing=True)
        self._step = tf.function(lambda ids, states: model.step(ids, states), reduce_retracing=True)

    def encode(self, sources):
        """Initial decoding states (numpy) for a list of source id lists (end id included)."""
        from nlpkit.data.translation import pad_ids

        states = self._encode(tf.convert_to_tensor(pad_ids(sources)))
        return [state.numpy() for state in states]

    def logits(self, token_ids, states):
        logits, new_states = self._step(
            tf.convert_to_tensor(np.asarray(token_ids, np.int32)),
            [tf.convert_to_tensor(np.asarray(state, np.float32)) for state in states],
        )
        return logits.numpy(), [state.numpy() for state in new_states]

    def __call__(self, token_ids, states):
        logits, new_states = self.logits(token_ids, states)
        return log_softmax(logits), new_states
