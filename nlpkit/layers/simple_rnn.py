"""Fully-connected (Elman) recurrent layer with a loop that converts to TFLite."""

import keras
from keras import ops

from nlpkit.layers.recurrent import RecurrentLayer, read_weight


@keras.saving.register_keras_serializable(package="nlpkit")
class SimpleRNN(RecurrentLayer):
    """Elman RNN, ``h_t = activation(x_t W + h_{t-1} U + b)``, laid out like Keras'.

    Args:
        units: int, size of the hidden state.
        **kwargs: see `nlpkit.layers.recurrent.RecurrentLayer` (activation, use_bias,
            initializers, dropout, ...).

    Example:
        >>> nlpkit.layers.SimpleRNN(8)(np.zeros((3, 4, 5), "float32")).shape
        (3, 8)
    """

    def build(self, input_shape):
        self.add_recurrent_weights(input_shape[-1], gates=1)

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

    def fast_cell(self):
        if self.activation is not keras.activations.tanh:
            return None
        return "simple_rnn", read_weight(self.recurrent_kernel), None
