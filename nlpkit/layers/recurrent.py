"""Shared machinery for nlpkit's recurrent layers: one loop, many cells.

Every recurrent layer in nlpkit splits its work the same way:

1. ``project_inputs``: the input-to-hidden matmul for *all* time steps at once (one large
   matmul instead of T small ones — the biggest single CPU win);
2. ``step``: the recurrent part of one time step, reading weights that were converted to
   tensors *before* the loop. Reading variables outside the loop is what lets the TFLite
   converter freeze them into constants; stock Keras layers read them inside the
   ``while`` body, which leaves a ``READ_VARIABLE`` op that fails at run time on device;
3. ``run_recurrence``: a ``tf.while_loop`` over time with right-padded mask handling.

Training (``training=True``) with the default activations runs the same loop through
`nlpkit.layers.fast_backward`, whose hand-written backward pass replaces autodiff
through the loop.
"""

import keras
import tensorflow as tf
from keras import ops

from nlpkit.layers.fast_backward import fast_recurrence


def run_recurrence(
    step_fn,
    projected,
    initial_states,
    mask=None,
    go_backwards=False,
    return_sequences=False,
    zero_output_for_mask=False,
):
    """Runs ``step_fn`` over the time axis of ``projected``.

    Args:
        step_fn: callable ``(projected_t, states) -> new_states`` where ``new_states[0]``
            is the hidden state that is also the step's output.
        projected: float tensor ``(batch, time, features)``, the projected inputs.
        initial_states: list of ``(batch, units_i)`` tensors.
        mask: optional bool tensor ``(batch, time)``; masked steps keep the previous states.
        go_backwards: process the sequence in reverse; outputs stay in processing order,
            as in Keras.
        return_sequences: also return the output of every step.
        zero_output_for_mask: masked steps output zeros instead of the carried state.

    Returns:
        ``(last_output, outputs_or_None, final_states)``; ``outputs`` is
        ``(batch, time, units)`` when ``return_sequences``.
    """
    steps = tf.transpose(projected, [1, 0, 2])
    step_mask = None
    if mask is not None:
        step_mask = tf.expand_dims(tf.transpose(tf.cast(mask, tf.bool), [1, 0]), -1)
    if go_backwards:
        steps = tf.reverse(steps, [0])
        if step_mask is not None:
            step_mask = tf.reverse(step_mask, [0])

    num_steps = tf.shape(steps)[0]
    states = tuple(initial_states)
    outputs = tf.TensorArray(
        projected.dtype, size=num_steps, element_shape=initial_states[0].shape
    )

    def body(t, states, outputs):
        new_states = step_fn(steps[t], list(states))
        output = new_states[0]
        if step_mask is not None:
            keep = step_mask[t]
            new_states = [tf.where(keep, new, old) for new, old in zip(new_states, states)]
            output = tf.where(keep, output, tf.zeros_like(output)) if zero_output_for_mask else new_states[0]
        if return_sequences:
            outputs = outputs.write(t, output)
        return t + 1, tuple(new_states), outputs

    _, states, outputs = tf.while_loop(
        lambda t, *_: t < num_steps,
        body,
        (tf.constant(0), states, outputs),
        parallel_iterations=32,
    )
    states = list(states)
    sequence = None
    if return_sequences:
        sequence = tf.transpose(outputs.stack(), [1, 0, 2])
    return states[0], sequence, states


def read_weight(variable):
    """Reads a weight into a plain tensor outside any loop.

    The read must happen before ``tf.while_loop``: a loop body that captures the variable
    itself keeps a ``READ_VARIABLE`` op inside the TFLite ``WHILE`` subgraph, which the
    converter does not freeze and which fails on device.
    """
    return tf.identity(tf.convert_to_tensor(variable))


class RecurrentLayer(keras.layers.Layer):
    """Base class of nlpkit's SimpleRNN, LSTM and GRU layers (Keras RNN semantics).

    Subclasses define ``state_size`` (a list of sizes, hidden state first), ``build``,
    ``project_inputs(inputs)`` and ``make_step(training)`` which returns the per-step
    function. The base class handles masks, ``go_backwards``, ``return_sequences``,
    ``return_state``, ``initial_state`` and input/recurrent dropout.

    Args:
        units: int, size of the hidden state.
        return_sequences: bool, default False. Return the output at every step.
        return_state: bool, default False. Also return the final states.
        go_backwards: bool, default False. Process the sequence in reverse.
        dropout: float in [0, 1), default 0. Dropout on the inputs, one mask per sequence.
        recurrent_dropout: float in [0, 1), default 0. Variational dropout on the hidden
            state fed back into the recurrence, one mask per sequence.
        zero_output_for_mask: bool, default False. Masked steps output zeros (set by
            ``keras.layers.Bidirectional`` when it returns sequences).
        seed: optional int for the dropout masks.
        activation: default "tanh". Candidate/output activation.
        use_bias: bool, default True.
        kernel_initializer / recurrent_initializer / bias_initializer: default
            "glorot_uniform" / "orthogonal" / "zeros".

    Example:
        >>> layer = nlpkit.layers.GRU(16, return_sequences=True)
        >>> layer(np.zeros((2, 5, 8), "float32")).shape
        (2, 5, 16)
    """

    def __init__(
        self,
        units,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        dropout=0.0,
        recurrent_dropout=0.0,
        zero_output_for_mask=False,
        seed=None,
        activation="tanh",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        fast_backward=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(units, int) or units <= 0:
            raise ValueError(f"`units` must be a positive int. Received: units={units!r}")
        for name, rate in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not 0.0 <= rate < 1.0:
                raise ValueError(f"`{name}` must be in [0, 1). Received: {name}={rate!r}")
        self.units = units
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.go_backwards = go_backwards
        self.dropout = float(dropout)
        self.recurrent_dropout = float(recurrent_dropout)
        self.zero_output_for_mask = zero_output_for_mask
        self.seed = seed
        self.activation = keras.activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.fast_backward = bool(fast_backward)
        self.stateful = False
        self.supports_masking = True
        self.input_spec = keras.InputSpec(ndim=3)
        if dropout or recurrent_dropout:
            self.seed_generator = keras.random.SeedGenerator(seed)

    @property
    def state_size(self):
        return [self.units]

    def add_recurrent_weights(self, input_dim, gates, bias_shape=None, bias_initializer=None):
        """Creates ``kernel``, ``recurrent_kernel`` and (if ``use_bias``) ``bias``.

        Shapes follow Keras: ``(input_dim, gates * units)``, ``(units, gates * units)`` and
        ``bias_shape`` (default ``(gates * units,)``).
        """
        width = gates * self.units
        self.kernel = self.add_weight(
            shape=(input_dim, width), initializer=self.kernel_initializer, name="kernel"
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, width), initializer=self.recurrent_initializer, name="recurrent_kernel"
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=bias_shape or (width,),
                initializer=bias_initializer or self.bias_initializer,
                name="bias",
            )
        self.built = True

    def project_inputs(self, inputs):
        raise NotImplementedError

    def make_step(self, recurrent_dropout_mask):
        raise NotImplementedError

    def fast_cell(self):
        """``(cell_name, recurrent_kernel, recurrent_bias)`` for `fast_recurrence`, or None.

        None means the layer has no hand-written backward pass for its configuration
        (e.g. a non-default activation) and training uses autodiff through the loop.
        """
        return None

    def get_initial_state(self, batch_size):
        """Zero states, one ``(batch_size, size)`` tensor per entry of ``state_size``."""
        return [ops.zeros((batch_size, size), dtype=self.compute_dtype) for size in self.state_size]

    def step(self, inputs_t, states):
        """One time step in inference mode: ``(batch, input_dim)`` and states in.

        Returns ``(output_t, new_states)``; running it over a sequence gives the same
        outputs as calling the layer on the whole sequence (without a mask, forwards).
        This is the single-step form that streaming export builds on.
        """
        projected = self.project_inputs(ops.expand_dims(inputs_t, 1))[:, 0]
        new_states = self.make_step(None)(projected, list(states))
        return new_states[0], new_states

    def _dropout_mask(self, like, rate):
        ones = ops.ones_like(like)
        return keras.random.dropout(ones, rate, seed=self.seed_generator)

    def call(self, inputs, mask=None, initial_state=None, training=False):
        if training and self.dropout > 0:
            inputs = inputs * ops.expand_dims(
                self._dropout_mask(inputs[:, 0, :], self.dropout), 1
            )
        projected = self.project_inputs(inputs)
        batch = ops.shape(inputs)[0]
        if initial_state is None:
            states = [ops.zeros((batch, size), dtype=projected.dtype) for size in self.state_size]
        else:
            states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
            if len(states) != len(self.state_size):
                raise ValueError(
                    f"{self.name} expects {len(self.state_size)} initial state tensor(s); "
                    f"received {len(states)}."
                )
        recurrent_mask = None
        if training and self.recurrent_dropout > 0:
            recurrent_mask = self._dropout_mask(states[0], self.recurrent_dropout)
        options = dict(
            mask=mask,
            go_backwards=self.go_backwards,
            return_sequences=self.return_sequences,
            zero_output_for_mask=self.zero_output_for_mask,
        )
        # Inference (and TFLite export, which calls with training=False) keeps the plain
        # loop, which converts to built-in ops. Whether a tape is watching cannot be
        # known in graph mode, so `training` decides; the saving forward measured only
        # 1-3% slower than the plain one (B=32, T=64, H=512), so a gradient taken with
        # training=False stays correct through autodiff, just slower.
        fast = self.fast_cell() if training and self.fast_backward else None
        if fast is not None:
            cell, recurrent_kernel, recurrent_bias = fast
            last, sequence, final_states = fast_recurrence(
                cell,
                projected,
                states,
                recurrent_kernel,
                recurrent_bias,
                recurrent_dropout_mask=recurrent_mask,
                **options,
            )
        else:
            last, sequence, final_states = run_recurrence(
                self.make_step(recurrent_mask), projected, states, **options
            )
        output = sequence if self.return_sequences else last
        if self.return_state:
            return [output] + final_states
        return output

    def compute_mask(self, inputs, mask=None):
        if mask is None or not self.return_sequences:
            return [None] * (1 + len(self.state_size)) if self.return_state else None
        output_mask = mask
        if self.return_state:
            return [output_mask] + [None] * len(self.state_size)
        return output_mask

    def compute_output_shape(self, inputs_shape, initial_state_shape=None):
        batch, time = inputs_shape[0], inputs_shape[1]
        output_shape = (batch, time, self.units) if self.return_sequences else (batch, self.units)
        if self.return_state:
            return [output_shape] + [(batch, size) for size in self.state_size]
        return output_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "return_sequences": self.return_sequences,
                "return_state": self.return_state,
                "go_backwards": self.go_backwards,
                "dropout": self.dropout,
                "recurrent_dropout": self.recurrent_dropout,
                "zero_output_for_mask": self.zero_output_for_mask,
                "seed": self.seed,
                "activation": keras.activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "fast_backward": self.fast_backward,
            }
        )
        return config
