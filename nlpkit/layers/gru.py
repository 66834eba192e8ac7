"""Gated recurrent unit layer with a loop that is fast on CPU and converts to TFLite."""

import keras

from nlpkit.layers.cells import GRUCell
from nlpkit.layers.recurrent import RecurrentLayer, cell_attribute


@keras.saving.register_keras_serializable(package="nlpkit")
class GRU(RecurrentLayer):
    """GRU (Cho et al., 2014) with the weight layout of ``keras.layers.GRU``.

    Runs an `nlpkit.layers.GRUCell` (``self.cell``). Gate order in the kernels is
    ``[z, r, h]``. With ``reset_after=True`` (the Keras default, and the cuDNN form) the
    reset gate is applied after the recurrent matmul and there are separate input and
    recurrent biases, stored as a ``(2, 3 * units)`` bias. The arguments are those of
    ``keras.layers.GRU`` plus nlpkit's own (``layer_norm``, ``zero_output_for_mask``,
    ``fast_backward``, ``jit_compile``); `execution_plan` tells which path a call runs.

    Args:
        units: int, size of the hidden state.
        activation: str or callable, default "tanh". Candidate activation.
        recurrent_activation: str or callable, default "sigmoid". Gate activation.
        use_bias: bool, default True.
        kernel_initializer: str or initializer, default "glorot_uniform".
        recurrent_initializer: str or initializer, default "orthogonal".
        bias_initializer: str or initializer, default "zeros".
        kernel_regularizer: regularizer or None, default None.
        recurrent_regularizer: regularizer or None, default None.
        bias_regularizer: regularizer or None, default None.
        activity_regularizer: regularizer or None, default None. Applied to the output.
        kernel_constraint: constraint or None, default None.
        recurrent_constraint: constraint or None, default None.
        bias_constraint: constraint or None, default None.
        dropout: float in [0, 1), default 0. Dropout on the inputs, one mask per sequence.
        recurrent_dropout: float in [0, 1), default 0. Variational dropout on the hidden
            state fed into the recurrent matmul, one mask per sequence.
        seed: int or None, default None. Seed of the dropout masks.
        layer_norm: bool, default False. Layer-normalise the input and recurrent
            projections (`nlpkit.layers.cells`).
        return_sequences: bool, default False. Return the output at every step.
        return_state: bool, default False. Also return the final state ``h``.
        go_backwards: bool, default False. Process the sequence in reverse.
        stateful: bool, default False. Carry the final states of a batch into the next
            call (needs a static batch size; ``reset_state()`` zeroes them).
        unroll: bool, default False. Run the steps as straight-line code where the
            sequence length is static (the ``"unrolled"`` path); the loop otherwise.
        reset_after: bool, default True. Apply the reset gate after the recurrent matmul.
        zero_output_for_mask: bool, default False. Masked steps output zeros.
        fast_backward: bool, default True. Train through the hand-written backward pass
            (default activations, no layer normalisation).
        use_cudnn: "auto", True or False, default "auto". Run the cuDNN kernel on a GPU
            where the configuration allows it; True raises where it cannot.
        jit_compile: "auto", True or False, default "auto". Compile the time loop with
            XLA (see `nlpkit.layers.RecurrentLayer`).
        **kwargs: `keras.layers.Layer` arguments (name, dtype, trainable).

    Example:
        >>> inputs = keras.Input((None,), dtype="int32")
        >>> x = keras.layers.Embedding(1000, 64, mask_zero=True)(inputs)
        >>> x = keras.layers.Bidirectional(nlpkit.layers.GRU(32))(x)
        >>> keras.Model(inputs, x).output.shape
        (None, 64)
    """

    reset_after = cell_attribute("reset_after")
    recurrent_activation = cell_attribute("recurrent_activation")

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        layer_norm=False,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        reset_after=True,
        zero_output_for_mask=False,
        fast_backward=True,
        use_cudnn="auto",
        jit_compile="auto",
        **kwargs,
    ):
        # First, while the arguments are the only local names.
        cell, arguments = self.cell_and_layer_arguments(GRUCell, locals(), name="gru_cell")
        super().__init__(cell, **arguments)
