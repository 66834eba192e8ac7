"""Long short-term memory layer with a loop that is fast on CPU and converts to TFLite."""

import keras
from keras import ops

from nlpkit.layers.fused_lstm import fused_call
from nlpkit.layers.recurrent import RecurrentLayer, read_weight


@keras.saving.register_keras_serializable(package="nlpkit")
class LSTM(RecurrentLayer):
    """LSTM (Hochreiter & Schmidhuber, 1997) with the weight layout of ``keras.layers.LSTM``.

    Gate order in the kernels is ``[i, f, c, o]``; states are ``[h, c]``.

    Args:
        units: int, size of the hidden and cell states.
        recurrent_activation: default "sigmoid". Gate activation.
        unit_forget_bias: bool, default True. Initialise the forget-gate bias to 1.
        **kwargs: see `nlpkit.layers.recurrent.RecurrentLayer` (activation, use_bias,
            initializers, dropout, ...).

    Example:
        >>> layer = nlpkit.layers.LSTM(32, return_state=True)
        >>> output, h, c = layer(np.zeros((2, 7, 16), "float32"))
        >>> c.shape
        (2, 32)
    """

    def __init__(self, units, recurrent_activation="sigmoid", unit_forget_bias=True, **kwargs):
        super().__init__(units, **kwargs)
        self.recurrent_activation = keras.activations.get(recurrent_activation)
        self.unit_forget_bias = unit_forget_bias

    @property
    def state_size(self):
        return [self.units, self.units]

    def build(self, input_shape):
        units = self.units
        initializer = None
        if self.unit_forget_bias:
            base = self.bias_initializer

            def initializer(shape, dtype=None):
                return ops.concatenate(
                    [
                        base((units,), dtype=dtype),
                        ops.ones((units,), dtype=dtype),
                        base((2 * units,), dtype=dtype),
                    ]
                )

        self.add_recurrent_weights(input_shape[-1], gates=4, bias_initializer=initializer)

    def call(self, inputs, mask=None, initial_state=None, training=False):
        # TFLite export may ask for the form the converter fuses into one built-in op.
        fused = None if training else fused_call(self, inputs, mask, initial_state)
        if fused is not None:
            return fused
        return super().call(inputs, mask=mask, initial_state=initial_state, training=training)

    def project_inputs(self, inputs):
        projected = ops.matmul(inputs, self.kernel)
        if self.use_bias:
            projected = projected + self.bias
        return projected

    def make_step(self, recurrent_dropout_mask):
        units = self.units
        recurrent_kernel = read_weight(self.recurrent_kernel)
        activation, gate = self.activation, self.recurrent_activation

        def step(x_t, states):
            h, c = states
            h_in = h if recurrent_dropout_mask is None else h * recurrent_dropout_mask
            z = x_t + ops.matmul(h_in, recurrent_kernel)
            i = gate(z[:, :units])
            f = gate(z[:, units : 2 * units])
            c = f * c + i * activation(z[:, 2 * units : 3 * units])
            o = gate(z[:, 3 * units :])
            return [o * activation(c), c]

        return step

    def fast_cell(self):
        if (
            self.activation is not keras.activations.tanh
            or self.recurrent_activation is not keras.activations.sigmoid
        ):
            return None
        return "lstm", read_weight(self.recurrent_kernel), None

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "recurrent_activation": keras.activations.serialize(self.recurrent_activation),
                "unit_forget_bias": self.unit_forget_bias,
            }
        )
        return config
