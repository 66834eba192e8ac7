"""MinLSTM (Feng et al., 2024, "Were RNNs All We Needed?"): an LSTM that trains with a parallel scan."""

import keras
import tensorflow as tf

from nlpkit.layers.min_gru import (
    MinimalRecurrentLayer,
    log_positive_activation,
    positive_activation,
)
from nlpkit.layers.scan import log_sigmoid, softplus


@keras.saving.register_keras_serializable(package="nlpkit")
class MinLSTM(MinimalRecurrentLayer):
    """MinLSTM (Feng et al., 2024): ``h_t = f'_t h_{t-1} + i'_t g(W_h x_t)``.

    The forget and input gates ``f = sigmoid(W_f x)``, ``i = sigmoid(W_i x)`` depend on the
    input only and are normalised, ``f' = f / (f + i)``, ``i' = i / (f + i)``, which makes
    the state's scale independent of time (the paper's length-independence, §3.2). There is
    no cell state and no output gate: the hidden state is the output. Training runs a
    parallel scan (``f' = sigmoid(softplus(-k_i) - softplus(-k_f))``, stable when both
    gates saturate); `step` is the recurrent form. The kernel is ``(input_dim, 3 * units)`` with columns
    ``[f, i, h]``; there is no recurrent kernel, so no recurrent dropout.

    Args:
        units: int, size of the hidden state (and of the output).
        use_bias: bool, default True.
        kernel_initializer: default "glorot_uniform".
        bias_initializer: default "zeros".
        dropout: float in [0, 1), default 0. Input dropout, one mask per sequence.
        seed: optional int, seed of the dropout masks.
        **kwargs: return_sequences, return_state, go_backwards, stateful,
            zero_output_for_mask (see `nlpkit.layers.recurrent.RecurrentLayerBase`) and
            `keras.layers.Layer` arguments.

    Example:
        >>> layer = nlpkit.layers.MinLSTM(32, return_state=True)
        >>> output, h = layer(np.zeros((2, 7, 8), "float32"))
        >>> output.shape, h.shape
        ((2, 32), (2, 32))
    """

    gates = 3

    def _split(self, projected):
        units = self.units
        return projected[..., :units], projected[..., units : 2 * units], projected[..., 2 * units :]

    def log_coefficients(self, projected):
        forget, write, candidate = self._split(projected)
        difference = softplus(-forget) - softplus(-write)
        # log f' = log f - log(f + i) = -softplus(difference); log i' likewise.
        return -softplus(difference), log_sigmoid(difference) + log_positive_activation(candidate)

    def coefficients(self, projected_t):
        forget, write, candidate = self._split(projected_t)
        # f' = f / (f + i) = sigmoid(-difference), i' = sigmoid(difference): no 0 / 0 when
        # both gates underflow.
        difference = softplus(-forget) - softplus(-write)
        return tf.sigmoid(-difference), tf.sigmoid(difference) * positive_activation(candidate)
