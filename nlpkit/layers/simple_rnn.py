"""Fully-connected (Elman) recurrent layer with a loop that converts to TFLite."""

import keras

from nlpkit.layers.cells import SimpleRNNCell
from nlpkit.layers.recurrent import RecurrentLayer, split_cell_arguments


@keras.saving.register_keras_serializable(package="nlpkit")
class SimpleRNN(RecurrentLayer):
    """Elman RNN, ``h_t = activation(x_t W + h_{t-1} U + b)``, laid out like Keras'.

    Runs an `nlpkit.layers.SimpleRNNCell` (``self.cell``).

    Args:
        units: int, size of the hidden state.
        **kwargs: cell arguments (activation, use_bias, initializers, dropout,
            recurrent_dropout, seed, layer_norm: see `nlpkit.layers.cells.RecurrentCell`) and
            layer arguments (return_sequences, return_state, go_backwards, stateful,
            zero_output_for_mask, fast_backward, use_cudnn, jit_compile: see
            `nlpkit.layers.recurrent.RecurrentLayer`).

    Example:
        >>> nlpkit.layers.SimpleRNN(8)(np.zeros((3, 4, 5), "float32")).shape
        (3, 8)
    """

    def __init__(self, units, **kwargs):
        cell_kwargs, kwargs = split_cell_arguments(kwargs)
        super().__init__(SimpleRNNCell(units, name="simple_rnn_cell", **cell_kwargs), **kwargs)
