"""Fully-connected (Elman) recurrent layer with a loop that converts to TFLite."""

import keras
from keras import ops

from nlpkit.layers.recurrent import RecurrentLayer, read_weight


@keras.saving.register_keras_serializable(package="nlpkit")
class SimpleRNN(RecurrentLayer):
    """Elman RNN, ``h_t = activation(x_t W + h_{t-1} U + b)``, laid out like Keras'.

    Args:
        units: int, size of the hidden state.
        activation: default "tanh".
        use_bias: bool, default True.
        kernel_initializer / recurrent_initializer / bias_initializer: default
            "glorot_uniform" / "orthogonal" / "zeros".
        **kwargs: see `nlpkit.layers.recurrent.RecurrentLayer`.

    Example:
        >>> nlpkit.layers.SimpleRNN(8)(np.zeros((3, 4, 5), "float32")).shape
        (3, 8)
    """

    def __init__(
        self,
        units,
        activation="tanh",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(units, **kwargs)
        self.activation = keras.activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape):
        self.kernel = self.add_weight(
            shape=(input_shape[-1], self.units), initializer=self.kernel_initializer, name="kernel"
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, self.units),
            initializer=self.recurrent_initializer,
            name="recurrent_kernel",
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(self.units,), initializer=self.bias_initializer, name="bias"
            )
        self.built = True

    def project_inputs(self, inputs):
        projected = ops.matmul(inputs, self.kernel)
        return projected + self.bias if self.use_bias else projected

    def make_step(self, recurrent_dropout_mask):
        recurrent_kernel = read_weight(self.recurrent_kernel)
        activation = self.activation

        def step(x_t, states):
            h = states[0]
            h_in = h if recurrent_dropout_mask is None else h * recurrent_dropout_mask
            return [activation(x_t + ops.matmul(h_in, recurrent_kernel))]

        return step

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "activation": keras.activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config
