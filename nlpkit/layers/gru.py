"""Gated recurrent unit layer with a loop that is fast on CPU and converts to TFLite."""

import keras

from nlpkit.layers.cells import GRUCell
from nlpkit.layers.recurrent import RecurrentLayer, cell_attribute, split_cell_arguments


@keras.saving.register_keras_serializable(package="nlpkit")
class GRU(RecurrentLayer):
    """GRU (Cho et al., 2014) with the weight layout of ``keras.layers.GRU``.

    Runs an `nlpkit.layers.GRUCell` (``self.cell``). Gate order in the kernels is
    ``[z, r, h]``. With ``reset_after=True`` (the Keras default, and the cuDNN form) the
    reset gate is applied after the recurrent matmul and there are separate input and
    recurrent biases, stored as a ``(2, 3 * units)`` bias.

    Args:
        units: int, size of the hidden state.
        reset_after: bool, default True. Apply the reset gate after the recurrent matmul.
        recurrent_activation: default "sigmoid". Gate activation.
        **kwargs: cell arguments (activation, use_bias, initializers, dropout,
            recurrent_dropout, seed, layer_norm: see `nlpkit.layers.cells.RecurrentCell`) and
            layer arguments (return_sequences, return_state, go_backwards, stateful,
            zero_output_for_mask, fast_backward, use_cudnn, jit_compile: see
            `nlpkit.layers.recurrent.RecurrentLayer`).

    Example:
        >>> inputs = keras.Input((None,), dtype="int32")
        >>> x = keras.layers.Embedding(1000, 64, mask_zero=True)(inputs)
        >>> x = keras.layers.Bidirectional(nlpkit.layers.GRU(32))(x)
        >>> keras.Model(inputs, x).output.shape
        (None, 64)
    """

    reset_after = cell_attribute("reset_after")
    recurrent_activation = cell_attribute("recurrent_activation")

    def __init__(self, units, reset_after=True, recurrent_activation="sigmoid", **kwargs):
        cell_kwargs, kwargs = split_cell_arguments(kwargs)
        cell = GRUCell(
            units,
            reset_after=reset_after,
            recurrent_activation=recurrent_activation,
            name="gru_cell",
            **cell_kwargs,
        )
        super().__init__(cell, **kwargs)
