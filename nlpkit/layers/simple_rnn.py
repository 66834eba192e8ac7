"""Fully-connected (Elman) recurrent layer with a loop that converts to TFLite."""

import keras

from nlpkit.layers.cells import SimpleRNNCell
from nlpkit.layers.recurrent import RecurrentLayer


@keras.saving.register_keras_serializable(package="nlpkit")
class SimpleRNN(RecurrentLayer):
    """Elman RNN, ``h_t = activation(x_t W + h_{t-1} U + b)``, laid out like Keras'.

    Runs an `nlpkit.layers.SimpleRNNCell` (``self.cell``). The arguments are those of
    ``keras.layers.SimpleRNN`` plus nlpkit's own (``layer_norm``, ``zero_output_for_mask``,
    ``fast_backward``, ``use_cudnn``, ``jit_compile``); `execution_plan` tells which path a
    call runs.

    Args:
        units: int, size of the hidden state.
        activation: str or callable, default "tanh". Output activation.
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
        zero_output_for_mask: bool, default False. Masked steps output zeros.
        fast_backward: bool, default True. Train through the hand-written backward pass
            (default activations, no layer normalisation).
        use_cudnn: "auto", True or False, default "auto". Accepted as by the other
            layers; cuDNN has no SimpleRNN kernel, so True raises and "auto" runs the loop.
        jit_compile: "auto", True or False, default "auto". Compile the time loop with
            XLA (see `nlpkit.layers.RecurrentLayer`).
        **kwargs: `keras.layers.Layer` arguments (name, dtype, trainable).

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
        zero_output_for_mask=False,
        fast_backward=True,
        use_cudnn="auto",
        jit_compile="auto",
        **kwargs,
    ):
        # First, while the arguments are the only local names.
        cell, arguments = self.cell_and_layer_arguments(SimpleRNNCell, locals(), name="simple_rnn_cell")
        super().__init__(cell, **arguments)
