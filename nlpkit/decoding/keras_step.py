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
