"""Gated recurrent unit layer with a loop that is fast on CPU and converts to TFLite."""

import keras
from keras import ops

from nlpkit.layers.recurrent import RecurrentLayer, read_weight


@keras.saving.register_keras_serializable(package="nlpkit")
class GRU(RecurrentLayer):
    """GRU (Cho et al., 2014) with the weight layout of ``keras.layers.GRU``.

    Gate order in the kernels is ``[z, r, h]``. With ``reset_after=True`` (the Keras
    default, and the cuDNN form) the reset gate is applied after the recurrent matmul and
    there are separate input and recurrent biases, stored as a ``(2, 3 * units)`` bias.

    Args:
        units: int, size of the hidden state.
        reset_after: bool, default True. Apply the reset gate after the recurrent matmul.
        recurrent_activation: default "sigmoid". Gate activation.
        **kwargs: see `nlpkit.layers.recurrent.RecurrentLayer` (return_sequences,
            return_state, go_backwards, dropout, recurrent_dropout, activation, use_bias,
            initializers, ...).

    Example:
        >>> inputs = keras.Input((None,), dtype="int32")
        >>> x = keras.layers.Embedding(1000, 64, mask_zero=True)(inputs)
        >>> x = keras.layers.Bidirectional(nlpkit.layers.GRU(32))(x)
        >>> keras.Model(inputs, x).output.shape
        (None, 64)
    """

    def __init__(self, units, reset_after=True, recurrent_activation="sigmoid", **kwargs):
        super().__init__(units, **kwargs)
        self.reset_after = reset_after
        self.recurrent_activation = keras.activations.get(recurrent_activation)

    def build(self, input_shape):
        bias_shape = (2, 3 * self.units) if self.reset_after else (3 * self.units,)
        self.add_recurrent_weights(input_shape[-1], gates=3, bias_shape=bias_shape)

    def project_inputs(self, inputs):
        projected = ops.matmul(inputs, self.kernel)
        if self.use_bias:
            projected = projected + (self.bias[0] if self.reset_after else self.bias)
        return projected

    def make_step(self, recurrent_dropout_mask):
        units = self.units
        recurrent_kernel = read_weight(self.recurrent_kernel)
        recurrent_bias = None
        if self.use_bias and self.reset_after:
            recurrent_bias = read_weight(self.bias[1])
        activation, gate = self.activation, self.recurrent_activation
        reset_after = self.reset_after

        def step(x_t, states):
            h = states[0]
            h_in = h if recurrent_dropout_mask is None else h * recurrent_dropout_mask
            x_z, x_r, x_h = x_t[:, :units], x_t[:, units : 2 * units], x_t[:, 2 * units :]
            if reset_after:
                rec = ops.matmul(h_in, recurrent_kernel)
                if recurrent_bias is not None:
                    rec = rec + recurrent_bias
                z = gate(x_z + rec[:, :units])
                r = gate(x_r + rec[:, units : 2 * units])
                candidate = activation(x_h + r * rec[:, 2 * units :])
            else:
                rec = ops.matmul(h_in, recurrent_kernel[:, : 2 * units])
                z = gate(x_z + rec[:, :units])
                r = gate(x_r + rec[:, units:])
                candidate = activation(x_h + ops.matmul(r * h_in, recurrent_kernel[:, 2 * units :]))
            return [z * h + (1.0 - z) * candidate]

        return step

    def fast_cell(self):
        if (
            self.activation is not keras.activations.tanh
            or self.recurrent_activation is not keras.activations.sigmoid
        ):
            return None
        if not self.reset_after:
            return "gru_reset_before", read_weight(self.recurrent_kernel), None
        recurrent_bias = read_weight(self.bias[1]) if self.use_bias else None
        return "gru", read_weight(self.recurrent_kernel), recurrent_bias

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "reset_after": self.reset_after,
                "recurrent_activation": keras.activations.serialize(self.recurrent_activation),
            }
        )
        return config
