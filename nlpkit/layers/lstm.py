"""Long short-term memory layer with a loop that is fast on CPU and converts to TFLite."""

import keras

from nlpkit.layers.cells import LSTMCell
from nlpkit.layers.fused_lstm import fused_call
from nlpkit.layers.recurrent import RecurrentLayer, cell_attribute, split_cell_arguments


@keras.saving.register_keras_serializable(package="nlpkit")
class LSTM(RecurrentLayer):
    """LSTM (Hochreiter & Schmidhuber, 1997) with the weight layout of ``keras.layers.LSTM``.

    Runs an `nlpkit.layers.LSTMCell` (``self.cell``). Gate order in the kernels is
    ``[i, f, c, o]``; states are ``[h, c]``.

    Args:
        units: int, size of the hidden and cell states.
        recurrent_activation: default "sigmoid". Gate activation.
        unit_forget_bias: bool, default True. Initialise the forget-gate bias to 1.
        **kwargs: cell arguments (activation, use_bias, initializers, dropout,
            recurrent_dropout, seed, layer_norm: see `nlpkit.layers.cells.RecurrentCell`) and
            layer arguments (return_sequences, return_state, go_backwards, stateful,
            zero_output_for_mask, fast_backward, use_cudnn, jit_compile: see
            `nlpkit.layers.recurrent.RecurrentLayer`).

    Example:
        >>> layer = nlpkit.layers.LSTM(32, return_state=True, layer_norm=True)
        >>> output, h, c = layer(np.zeros((2, 7, 16), "float32"))
        >>> c.shape
        (2, 32)
    """

    recurrent_activation = cell_attribute("recurrent_activation")
    unit_forget_bias = cell_attribute("unit_forget_bias")

    def __init__(self, units, recurrent_activation="sigmoid", unit_forget_bias=True, **kwargs):
        cell_kwargs, kwargs = split_cell_arguments(kwargs)
        cell = LSTMCell(
            units,
            recurrent_activation=recurrent_activation,
            unit_forget_bias=unit_forget_bias,
            name="lstm_cell",
            **cell_kwargs,
        )
        super().__init__(cell, **kwargs)

    def call(self, inputs, mask=None, initial_state=None, training=False):
        # TFLite export may ask for the form the converter fuses into one built-in op.
        fused = None if training else fused_call(self, inputs, mask, initial_state)
        if fused is not None:
            return fused
        return super().call(inputs, mask=mask, initial_state=initial_state, training=training)
