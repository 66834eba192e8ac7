"""Shared machinery for nlpkit's recurrent layers: one loop, many cells.

A cell (`nlpkit.layers.cells`) does one step, a layer runs the loop (DESIGN.md §4). Every
recurrent layer in nlpkit splits its work the same way:

1. ``cell.project_inputs``: the input-to-hidden matmul for *all* time steps at once (one
   large matmul instead of T small ones — the biggest single CPU win);
2. ``cell.make_step``: the recurrent part of one time step, reading weights that were
   converted to tensors *before* the loop. Reading variables outside the loop is what
   lets the TFLite converter freeze them into constants; stock Keras layers read them
   inside the ``while`` body, which leaves a ``READ_VARIABLE`` op that fails at run time
   on device;
3. ``run_recurrence``: a ``tf.while_loop`` over time with right-padded mask handling.

Training (``training=True``) with the default activations and no layer normalisation
runs the same loop through `nlpkit.layers.fast_backward`, whose hand-written backward
pass replaces autodiff through the loop.

On a GPU, LSTM and GRU layers whose configuration cuDNN supports run the backend's cuDNN
kernel instead (``use_cudnn="auto"``), as the stock Keras layers do.

Which of these runs (and whether XLA compiles it) is decided in one place: every call of a
`RecurrentLayer` computes an `nlpkit.layers.ExecutionPlan` (`RecurrentLayer.execution_plan`)
and runs it.
"""

import contextlib
import dataclasses
import functools
import logging

import keras
import tensorflow as tf
from keras import ops
# keras.src: the autocast scope ``Layer.__call__`` enters (see `compute_dtype_scope`).
from keras.src import backend as keras_backend
# tensorflow.python: the XLA-context test of `inside_xla_compilation` (no public API).
from tensorflow.python.ops import control_flow_util

from nlpkit.layers.execution_plan import choose
from nlpkit.layers.export_context import portable_trace_active, unrolled_trace_active
from nlpkit.layers.fast_backward import fast_backward_recurrence

# Each call's `ExecutionPlan` is logged here at debug level.
LOGGER = logging.getLogger("nlpkit.layers")


def run_recurrence(
    step_fn,
    projected,
    initial_states,
    mask=None,
    go_backwards=False,
    return_sequences=False,
    zero_output_for_mask=False,
    compiled=False,
    unroll=False,
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
        compiled: bool, default False. XLA compiles the loop: each step reads its slice of
            the batch-major ``projected`` in place, where TensorFlow's kernels (and the
            TFLite converter) get a time-major copy to index (a strided read of
            ``projected[:, t]`` costs nothing under XLA, while the copy of the whole
            projection was a measurable part of a compiled LSTM forward pass; see
            ``benchmarks/rnn_speed.py``).
        unroll: bool, default False. Write the steps out as straight-line code when the
            length is static, as inside `nlpkit.layers.export_context.unrolled_trace`.

    Returns:
        ``(last_output, outputs_or_None, final_states)``; ``outputs`` is
        ``(batch, time, units)`` when ``return_sequences``.
    """
    step_mask = None
    if mask is not None:
        step_mask = tf.expand_dims(tf.transpose(tf.cast(mask, tf.bool), [1, 0]), -1)
        if go_backwards:
            step_mask = tf.reverse(step_mask, [0])
    num_steps = tf.shape(projected)[1]
    if compiled:

        def step_input(t):
            return projected[:, num_steps - 1 - t if go_backwards else t]

    else:
        steps = tf.transpose(projected, [1, 0, 2])
        if go_backwards:
            steps = tf.reverse(steps, [0])

        def step_input(t):
            return steps[t]

    if (unroll or unrolled_trace_active()) and projected.shape[1] is not None:
        return _unrolled_recurrence(
            step_fn, projected, initial_states, step_mask, go_backwards, return_sequences, zero_output_for_mask
        )
    states = tuple(initial_states)
    outputs = tf.TensorArray(
        projected.dtype, size=num_steps, element_shape=initial_states[0].shape
    )

    def body(t, states, outputs):
        new_states = step_fn(step_input(t), list(states))
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
        # A static bound lets XLA size the lists that autodiff keeps of every step (it
        # cannot differentiate the loop inside a compiled model without it).
        maximum_iterations=projected.shape[1],
    )
    states = list(states)
    sequence = None
    if return_sequences:
        sequence = tf.transpose(outputs.stack(), [1, 0, 2])
    return states[0], sequence, states


def _unrolled_recurrence(step_fn, projected, initial_states, step_mask, go_backwards, return_sequences,
                         zero_output_for_mask):
    # The same step as `run_recurrence`'s loop body, written out once per step (see
    # `nlpkit.layers.export_context.unrolled_trace`): no WHILE op, one subgraph.
    num_steps = projected.shape[1]
    states, outputs = list(initial_states), []
    for t in range(num_steps):
        index = num_steps - 1 - t if go_backwards else t
        new_states = step_fn(projected[:, index], list(states))
        output = new_states[0]
        if step_mask is not None:
            keep = step_mask[t]
            new_states = [tf.where(keep, new, old) for new, old in zip(new_states, states)]
            output = tf.where(keep, output, tf.zeros_like(output)) if zero_output_for_mask else new_states[0]
        states = list(new_states)
        outputs.append(output)
    sequence = tf.stack(outputs, axis=1) if return_sequences else None
    return states[0], sequence, states


def zero_outputs_before_first_step(mask, last, sequence, go_backwards):
    """Zeroes the outputs of masked steps that come before a sequence's first unmasked one.

    Keras' loop carries the previous *output* through masked steps, starting from zeros;
    `run_recurrence` carries the state. The two agree except before the first unmasked
    step (processing order: with ``go_backwards`` the right padding comes first) when the
    initial state is not zero, so callers apply this only when it may not be.

    Returns:
        ``(last, sequence)``; ``last`` is zero for a fully masked sequence.
    """
    steps = ops.cast(mask, "int32")
    if go_backwards:
        steps = ops.flip(steps, axis=1)
    seen = ops.expand_dims(ops.cumsum(steps, axis=1) > 0, -1)
    last = ops.where(seen[:, -1], last, ops.zeros_like(last))
    if sequence is not None:
        sequence = ops.where(seen, sequence, ops.zeros_like(sequence))
    return last, sequence


def inside_xla_compilation():
    """Whether the graph being traced is compiled by XLA as a whole.

    True inside a ``tf.function(jit_compile=True)`` (such as a Keras model compiled with
    ``jit_compile=True``). A layer there must use its static-shape forms (XLA cannot compile
    the dynamic ones), and must not wrap them in a ``tf.function`` of its own: a nested
    compiled function whose gradient is taken and whose variables are then updated in the
    same step made XLA take the variables as constants and compile again on every step
    (a training step then took over a hundred times longer; ``tests/layers/test_jit_compile.py``
    covers models compiled whole).

    TensorFlow has no public API for this; ``control_flow_util`` is what its own
    control-flow code asks.
    """
    if tf.executing_eagerly():
        return False
    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


def compute_dtype_scope(layer):
    """The context a method of ``layer`` needs to run outside ``__call__`` under mixed precision.

    ``Layer.__call__`` reads float32 variables as the compute dtype (bfloat16 / float16) inside
    Keras' autocast scope; methods called directly — the one-step forms that generation and
    streaming export use — would otherwise mix float32 weights with low-precision activations.
    A no-op when the layer's compute and variable dtypes agree.
    """
    if layer.compute_dtype == layer.variable_dtype:
        return contextlib.nullcontext()
    return keras_backend.AutocastScope(layer.compute_dtype)


def read_weight(variable):
    """Reads a weight into a plain tensor outside any loop.

    The read must happen before ``tf.while_loop``: a loop body that captures the variable
    itself keeps a ``READ_VARIABLE`` op inside the TFLite ``WHILE`` subgraph, which the
    converter does not freeze and which fails on device.
    """
    return tf.identity(tf.convert_to_tensor(variable))




def cell_attribute(name):
    """A read-only layer attribute that reads the cell's, as Keras' RNN layers do."""
    return property(lambda self: getattr(self.cell, name), doc=f"The cell's ``{name}``.")


class RecurrentLayerBase(keras.layers.Layer):
    """The contract every nlpkit recurrent layer keeps, whatever runs its time axis.

    Keras RNN semantics: right-padded masks (masked steps keep the states),
    ``go_backwards`` (outputs stay in processing order), ``return_sequences``,
    ``return_state`` (the final states follow the output), ``initial_state``,
    ``stateful`` (states kept in non-trainable variables between calls) and
    ``zero_output_for_mask``; plus the single-step form that streaming export and decoding
    build on: ``state_size`` (a list, one ``(batch, size)`` tensor per entry),
    ``get_initial_state(batch_size)`` and ``step(inputs_t, states)``.

    `RecurrentLayer` runs a cell in a loop; `nlpkit.layers.MinGRU`, `MinLSTM` and `Mamba`
    run a parallel scan. Subclasses set ``units`` (the output width), implement
    ``state_size``, ``step`` and ``call`` (using `_initial_states` and `_finish`), create
    their weights in ``build`` and then call this class's ``build``.

    Args:
        return_sequences: bool, default False. Return the output at every step.
        return_state: bool, default False. Also return the final states.
        go_backwards: bool, default False. Process the sequence in reverse.
        stateful: bool, default False. Keep the final states of each batch in
            non-trainable variables and start the next call from them (sample ``i`` of a
            batch continues sample ``i`` of the previous one). Needs a static batch size;
            ``reset_state()`` sets the states back to zeros.
        zero_output_for_mask: bool, default False. Masked steps output zeros (set by
            ``keras.layers.Bidirectional`` when it returns sequences).
        jit_compile: "auto" (default), True or False. Compile the layer's sequence
            computation with XLA, one cluster per input shape. "auto" does so inside a
            traced function (``model.fit``, ``predict``, a ``tf.function``) when no GPU is
            visible and the batch and time sizes are static there, so that a new sequence
            length never waits for a compile; True in every traced call; False never.
            Eager calls and exports (a TFLite file holds built-in ops only) never compile.
            Subclasses may narrow "auto" (`RecurrentLayer` does). Inside a function that
            XLA compiles as a whole (``model.compile(jit_compile=True)``), every setting
            runs the static-shape form without a compiled function of its own
            (`inside_xla_compilation`).
        **kwargs: `keras.layers.Layer` arguments (name, dtype, trainable).

    Example:
        >>> layer = nlpkit.layers.MinGRU(16, return_state=True)
        >>> output, h = layer(np.zeros((2, 5, 8), "float32"))
        >>> output.shape, layer.state_size
        ((2, 16), [16])
    """

    def __init__(
        self,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        zero_output_for_mask=False,
        jit_compile="auto",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if jit_compile not in ("auto", True, False):
            raise ValueError(
                f'`jit_compile` must be "auto", True or False. Received: jit_compile={jit_compile!r}'
            )
        self.jit_compile = jit_compile if jit_compile == "auto" else bool(jit_compile)
        for name, value in (
            ("return_sequences", return_sequences),
            ("return_state", return_state),
            ("go_backwards", go_backwards),
            ("stateful", stateful),
            ("zero_output_for_mask", zero_output_for_mask),
        ):
            if not isinstance(value, bool):
                raise ValueError(f"`{name}` must be a bool. Received: {name}={value!r}")
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.go_backwards = go_backwards
        self.stateful = stateful
        self.zero_output_for_mask = zero_output_for_mask
        self.supports_masking = True
        self.input_spec = keras.InputSpec(ndim=3)
        self._set_states(None)

    @property
    def state_size(self):
        """One size per carried state (a list)."""
        raise NotImplementedError

    def _set_states(self, variables):
        # Untracked, as in Keras' RNN layer: the states are not weights, so get_weights()
        # and saved files stay those of the stock layer (and set_weights between them works).
        object.__setattr__(self, "states", variables)

    def build(self, input_shape):
        if self.stateful and self.states is None:
            batch_size = input_shape[0]
            if batch_size is None:
                raise ValueError(
                    f"Layer {self.name!r} has stateful=True, which needs a static batch size, "
                    f"but its input shape is {tuple(input_shape)}. Give the model a fixed batch "
                    "(e.g. keras.Input(shape, batch_size=32)) or call the layer on a batch."
                )
            self._set_states(
                [
                    keras.Variable(
                        initializer="zeros",
                        shape=(batch_size, size),
                        dtype=self.variable_dtype,
                        trainable=False,
                        name=f"state_{index}",
                    )
                    for index, size in enumerate(self.state_size)
                ]
            )

    def reset_state(self):
        """Sets the states of a stateful layer back to zeros (no-op without states)."""
        for variable in self.states or ():
            variable.assign(ops.zeros_like(variable))

    def reset_states(self):
        """Alias of `reset_state` (the Keras 2 name)."""
        self.reset_state()

    def get_initial_state(self, batch_size):
        """Zero states, one ``(batch_size, size)`` tensor per entry of ``state_size``."""
        return [ops.zeros((batch_size, size), dtype=self.compute_dtype) for size in self.state_size]

    def step(self, inputs_t, states):
        """One time step in inference mode: ``(batch, input_dim)`` and states in.

        Returns ``(output_t, new_states)``; running it over a sequence gives the same
        outputs as calling the layer on the whole sequence (without a mask, forwards).
        This is the single-step form that streaming export builds on; it never reads or
        writes the variables of a stateful layer.
        """
        raise NotImplementedError

    def _initial_states(self, inputs, initial_state, dtype):
        if initial_state is not None:
            states = initial_state
            states = list(states) if isinstance(states, (list, tuple)) else [states]
            if len(states) != len(self.state_size):
                raise ValueError(
                    f"{self.name} expects {len(self.state_size)} initial state tensor(s); "
                    f"received {len(states)}."
                )
            return states
        if not self.stateful:
            batch = ops.shape(inputs)[0]
            return [ops.zeros((batch, size), dtype=dtype) for size in self.state_size]
        expected, received = self.states[0].shape[0], inputs.shape[0]
        if received is not None and received != expected:
            raise ValueError(
                f"Stateful layer {self.name!r} holds states for a batch of {expected}; it "
                f"received a batch of {received} (inputs shape {tuple(inputs.shape)})."
            )
        # Read before the loop, like the weights, so the loop body holds tensors only.
        return [ops.cast(variable, dtype) for variable in self.states]

    def _xla_reason(self, inputs_shape, traced):
        """Why a call on ``inputs_shape`` does not compile with XLA (``jit_compile``), or None.

        ``traced``: the call is traced (``fit``, ``predict``, a ``tf.function``), not eager.
        """
        if portable_trace_active():
            return "exports trace portable graphs (a TFLite file holds built-in ops only)"
        # Eager calls never compile: the compiled function is made per trace (a cell may
        # hold tensors of the trace that calls it: the language model's DropConnect swaps
        # a dropped tensor in for the recurrent kernel), so every eager call would compile.
        if not traced:
            return "eager calls never compile"
        if self.jit_compile is True or inside_xla_compilation():
            return None
        if self.jit_compile is False:
            return "jit_compile=False"
        if inputs_shape[0] is None or inputs_shape[1] is None:
            return "jit_compile='auto' compiles static batch and time sizes only"
        if tf.config.list_logical_devices("GPU"):
            return "jit_compile='auto' does not compile where a GPU is visible"
        return None

    def _compiles_with_xla(self, inputs):
        """Whether this call compiles its sequence computation (see ``jit_compile``)."""
        return self._xla_reason(inputs.shape, not tf.executing_eagerly()) is None

    def _call_compiled_where_chosen(self, function, inputs, *arguments):
        """``function(inputs, *arguments, compiled)``, compiled by XLA where ``jit_compile`` says.

        ``compiled`` tells ``function`` whether it runs under XLA (which needs every shape
        in a loop fixed, e.g. `nlpkit.layers.scan.linear_recurrence`'s ``static_shapes``).
        """
        compiled = self._compiles_with_xla(inputs)
        if compiled and not inside_xla_compilation():
            function = tf.function(function, jit_compile=True, autograph=False)
        return function(inputs, *arguments, compiled)

    def _finish(self, last, sequence, final_states, mask, initial_state):
        if mask is not None and (initial_state is not None or self.stateful):
            last, sequence = zero_outputs_before_first_step(mask, last, sequence, self.go_backwards)
        if self.stateful:
            for variable, state in zip(self.states, final_states):
                variable.assign(ops.cast(state, variable.dtype))
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
                "return_sequences": self.return_sequences,
                "return_state": self.return_state,
                "go_backwards": self.go_backwards,
                "stateful": self.stateful,
                "zero_output_for_mask": self.zero_output_for_mask,
                "jit_compile": self.jit_compile,
            }
        )
        return config


class RecurrentLayer(RecurrentLayerBase):
    """Base class of nlpkit's SimpleRNN, LSTM and GRU layers (Keras RNN semantics).

    The contract (masks, states, the single step) is `RecurrentLayerBase`'s. The layer holds ``self.cell`` (an `nlpkit.layers.cells.RecurrentCell`, which owns the
    weights and the math of one step) and runs the loop around it: masks,
    ``go_backwards``, ``return_sequences``, ``return_state``, ``initial_state``,
    ``stateful``, per-sequence dropout masks, and the choice of the path that runs it:
    one `ExecutionPlan` per call (`execution_plan`) picks among the fused TFLite form, the
    unrolled steps, cuDNN, the hand-written backward pass and the plain loop, compiled by
    XLA or not, and ``call`` runs that plan. Subclasses build their cell from their constructor
    arguments; the cell's arguments are readable on the layer too (``layer.units``,
    ``layer.dropout``, ``layer.kernel``, ...).

    Args:
        cell: the `RecurrentCell` to run.
        return_sequences: bool, default False. Return the output at every step.
        return_state: bool, default False. Also return the final states.
        go_backwards: bool, default False. Process the sequence in reverse.
        stateful: bool, default False. Keep the final states of each batch in
            non-trainable variables and start the next call from them (sample ``i`` of a
            batch continues sample ``i`` of the previous one). Needs a static batch size;
            ``reset_state()`` sets the states back to zeros.
        unroll: bool, default False. Run the steps as straight-line code (no ``while``
            loop) where the sequence length is static, as Keras' ``unroll`` does; training
            then differentiates them by autodiff. Dynamic lengths keep the loop.
        zero_output_for_mask: bool, default False. Masked steps output zeros (set by
            ``keras.layers.Bidirectional`` when it returns sequences).
        fast_backward: bool, default True. Train through the hand-written backward pass
            where the cell has one (default activations, no layer normalisation).
        use_cudnn: "auto" (default), True or False, as in Keras. "auto" runs the cuDNN
            kernel when a GPU is visible and the configuration allows it (LSTM, or GRU
            with ``reset_after=True``; default activations; no layer normalisation; no
            recurrent dropout while training; masked sequences returned in full only
            with ``zero_output_for_mask``, because cuDNN zeroes padded outputs) and the
            nlpkit loop otherwise; True raises where it cannot; False never uses it.
        jit_compile: "auto" (default), True or False. Compile the time loop (forward and
            the hand-written backward) with XLA, as `RecurrentLayerBase` describes; "auto"
            also needs training to take the hand-written backward pass (not autodiff:
            layer normalisation, other activations). XLA fuses each step's element-wise
            ops and removes the per-op dispatch of the loop, which is most of a step's
            cost at small batches (README, "Recurrent-layer speed").
        **kwargs: `keras.layers.Layer` arguments (name, dtype, trainable).

    Example:
        >>> layer = nlpkit.layers.GRU(16, return_sequences=True)
        >>> layer(np.zeros((2, 5, 8), "float32")).shape
        (2, 5, 16)
    """

    units = cell_attribute("units")
    activation = cell_attribute("activation")
    use_bias = cell_attribute("use_bias")
    kernel_initializer = cell_attribute("kernel_initializer")
    recurrent_initializer = cell_attribute("recurrent_initializer")
    bias_initializer = cell_attribute("bias_initializer")
    dropout = cell_attribute("dropout")
    recurrent_dropout = cell_attribute("recurrent_dropout")
    seed = cell_attribute("seed")
    layer_norm = cell_attribute("layer_norm")
    kernel = cell_attribute("kernel")
    recurrent_kernel = cell_attribute("recurrent_kernel")
    bias = cell_attribute("bias")
    kernel_regularizer = cell_attribute("kernel_regularizer")
    recurrent_regularizer = cell_attribute("recurrent_regularizer")
    bias_regularizer = cell_attribute("bias_regularizer")
    kernel_constraint = cell_attribute("kernel_constraint")
    recurrent_constraint = cell_attribute("recurrent_constraint")
    bias_constraint = cell_attribute("bias_constraint")

    def __init__(
        self,
        cell,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        zero_output_for_mask=False,
        fast_backward=True,
        use_cudnn="auto",
        **kwargs,
    ):
        super().__init__(
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            zero_output_for_mask=zero_output_for_mask,
            **kwargs,
        )
        if use_cudnn not in ("auto", True, False):
            raise ValueError(f'`use_cudnn` must be "auto", True or False. Received: use_cudnn={use_cudnn!r}')
        if not isinstance(unroll, bool):
            raise ValueError(f"`unroll` must be a bool. Received: unroll={unroll!r}")
        for method in ("project_inputs", "make_step", "fast_backward_inputs", "get_initial_state"):
            if not callable(getattr(cell, method, None)):
                raise ValueError(
                    "`cell` must be an nlpkit recurrent cell (e.g. nlpkit.layers.LSTMCell). "
                    f"Received: cell={cell!r}, which has no `{method}` method"
                )
        self.cell = cell
        self.unroll = unroll
        self.fast_backward = bool(fast_backward)
        self.use_cudnn = use_cudnn

    # Constructor arguments of the layer itself; a subclass's others configure its cell.
    LAYER_ARGUMENTS = (
        "activity_regularizer",
        "return_sequences",
        "return_state",
        "go_backwards",
        "stateful",
        "unroll",
        "zero_output_for_mask",
        "fast_backward",
        "use_cudnn",
        "jit_compile",
    )

    @classmethod
    def cell_and_layer_arguments(cls, cell_class, arguments, **cell_options):
        """``(cell, layer_arguments)`` from a subclass constructor's arguments (``locals()``).

        The subclasses list every argument in their signatures (what ``help()``, IDEs and
        the config check read); this hands each to the cell or the layer. The cell holds
        the weights, so it also takes the layer's dtype policy and ``trainable``.

        Example:
            >>> cell, rest = RecurrentLayer.cell_and_layer_arguments(
            ...     nlpkit.layers.GRUCell, {"units": 4, "dropout": 0.1, "go_backwards": True,
            ...     "kwargs": {"name": "g"}}, name="gru_cell")
            >>> cell.dropout, rest
            (0.1, {'go_backwards': True, 'name': 'g'})
        """
        arguments = {name: value for name, value in arguments.items() if name not in ("self", "__class__")}
        kwargs = arguments.pop("kwargs", {})
        layer_arguments = {name: arguments.pop(name) for name in cls.LAYER_ARGUMENTS if name in arguments}
        shared = {name: kwargs[name] for name in ("dtype", "trainable") if name in kwargs}
        cell = cell_class(**arguments, **cell_options, **shared)
        return cell, {**layer_arguments, **kwargs}

    @property
    def state_size(self):
        return self.cell.state_size

    def build(self, input_shape):
        if not self.cell.built:
            self.cell.build((input_shape[0], input_shape[-1]))
        super().build(input_shape)

    def load_own_variables(self, store):
        # `.keras` files written before layers held cells keep the weights on the layer
        # itself, in the order the cell creates them; they go to the cell, which then
        # accepts the empty entry that such files have in its place.
        if len(store.keys()) == 0:
            return super().load_own_variables(store)
        weights = self.cell.weights
        if len(store.keys()) != len(weights):
            raise ValueError(
                f"Layer {self.name!r} expected {len(weights)} variables, but the file holds "
                f"{len(store.keys())} for it."
            )
        for index, weight in enumerate(weights):
            weight.assign(store[str(index)])
        self.cell.loaded_by_layer = True

    def get_initial_state(self, batch_size):
        """Zero states, one ``(batch_size, size)`` tensor per entry of ``state_size``."""
        return self.cell.get_initial_state(batch_size)

    def step(self, inputs_t, states):
        """One time step in inference mode: ``(batch, input_dim)`` and states in.

        Returns ``(output_t, new_states)``; running it over a sequence gives the same
        outputs as calling the layer on the whole sequence (without a mask, forwards).
        This is the single-step form that streaming export builds on; it never reads or
        writes the variables of a stateful layer.
        """
        with compute_dtype_scope(self):
            inputs_t = ops.cast(inputs_t, self.compute_dtype)
            states = [ops.cast(state, self.compute_dtype) for state in states]
            return self.cell.call(inputs_t, states, training=False)

    def execution_plan(self, inputs_shape=None, training=False, masked=False, traced=None):
        """The path a call runs, and why it runs no other (an `nlpkit.layers.ExecutionPlan`).

        ``call`` computes the same plan and runs it (and logs it at debug level on the
        ``nlpkit.layers`` logger), so this answers what a call with these arguments would
        do here: inside an export context, in a traced function, on this machine's devices.
        The paths are described in `nlpkit.layers.execution_plan`.

        Args:
            inputs_shape: tuple ``(batch, time, features)`` or None, default None. None
                entries (or None for the whole) are sizes not known when tracing.
            training: bool, default False.
            masked: bool, default False. Whether the call passes a mask.
            traced: bool or None, default None. Whether the call is traced (``fit``,
                ``predict``, a ``tf.function``) rather than eager; None: as here.

        Returns:
            An `nlpkit.layers.ExecutionPlan`.

        Example:
            >>> layer = nlpkit.layers.GRU(8, layer_norm=True)
            >>> plan = layer.execution_plan((32, 20, 16), training=True, traced=True)
            >>> plan.path, plan.fallback, plan.reasons["fast_backward"]
            ('while_loop', None, 'layer_norm=True')
        """
        shape = (None, None, None) if inputs_shape is None else tuple(inputs_shape)
        traced = not tf.executing_eagerly() if traced is None else bool(traced)
        return self._plan(shape, self.compute_dtype, bool(masked), bool(training), traced)

    def _plan(self, inputs_shape, dtype, masked, training, traced):
        fast_backward = self._fast_backward_reason(training)
        xla = self._xla_reason(inputs_shape, traced)
        if xla is None and training and fast_backward is not None and self.jit_compile is not True:
            # A compiled loop differentiated by autodiff would run the loop twice (see
            # `_compiled_time_loop_call`).
            xla = "training through autodiff compiles only with jit_compile=True"
        plan = choose(
            [
                ("fused_tflite", self._fused_reason(inputs_shape, dtype, masked, training)),
                ("unrolled", self._unrolled_reason(inputs_shape)),
                ("cudnn", self._cudnn_reason(masked, training)),
                ("fast_backward", fast_backward),
                ("while_loop", None),
            ],
            compiled=xla is None,
            xla_reason=xla,
        )
        if plan.path == "cudnn" and not tf.config.list_logical_devices("GPU"):
            plan = dataclasses.replace(
                plan, notes=(f"no GPU is visible, so the backend will decline and {plan.fallback} runs",)
            )
        return plan

    def _fused_reason(self, inputs_shape, dtype, masked, training):
        """Why the call does not take the fused TFLite form (`nlpkit.layers.LSTM` has one)."""
        return "only the LSTM has a fused TFLite op"

    def _fused_call(self, inputs, mask, initial_state):
        raise NotImplementedError(f"{type(self).__name__} has no fused TFLite form")

    def _unrolled_reason(self, inputs_shape):
        if not (self.unroll or unrolled_trace_active()):
            return "unroll=False (and no export_context.unrolled_trace)"
        if inputs_shape[1] is None:
            return "the sequence length is not static"
        return None

    def _cudnn_reason(self, masked, training):
        if self.use_cudnn is False:
            return "use_cudnn=False"
        if portable_trace_active():
            return "exports trace the portable loop (export_context)"
        reason = self.cell.cudnn_reason()
        if reason is not None:
            return reason
        if training and self.cell.recurrent_dropout > 0:
            return "recurrent dropout while training"
        if masked and self.return_sequences and not self.zero_output_for_mask:
            return (
                "masked sequences are returned in full (cuDNN zeroes padded outputs; "
                "zero_output_for_mask=True allows it)"
            )
        return None

    def _fast_backward_reason(self, training):
        if not training:
            # Inference (and TFLite export, which calls with training=False) keeps the plain
            # loop, which converts to built-in ops. Whether a tape is watching cannot be
            # known in graph mode, so `training` decides; the saving forward measured only
            # 1-3% slower than the plain one (B=32, T=64, H=512), so a gradient taken with
            # training=False stays correct through autodiff, just slower.
            return "inference (training=False) runs the plain loop"
        if not self.fast_backward:
            return "fast_backward=False"
        return self.cell.fast_backward_reason()

    def _planned(self, plan, training):
        """Called with the plan of every call before it runs."""
        LOGGER.debug("%s %r: %s", type(self).__name__, self.name, plan)

    def _cudnn_refused(self, reason):
        return ValueError(
            f"Layer {self.name!r} has use_cudnn=True, but cuDNN cannot run it here: {reason}. "
            "Pass use_cudnn='auto' to fall back."
        )

    def call(self, inputs, mask=None, initial_state=None, training=False):
        training = bool(training)
        plan = self._plan(inputs.shape, inputs.dtype, mask is not None, training, not tf.executing_eagerly())
        self._planned(plan, training)
        if plan.path == "fused_tflite":
            return self._fused_call(inputs, mask, initial_state)
        if self.use_cudnn is True and plan.path != "cudnn":
            raise self._cudnn_refused(plan.reasons["cudnn"])
        cell = self.cell
        if training and cell.dropout > 0:
            inputs = inputs * ops.expand_dims(cell.get_dropout_mask(inputs[:, 0, :]), 1)
        states = self._initial_states(inputs, initial_state, inputs.dtype)
        if plan.path == "cudnn":
            result = self._cudnn_call(inputs, states, mask)
            if result is not None:
                cell.reset_dropout_mask()
                return self._finish(*result, mask, initial_state)
        projected = cell.project_inputs(inputs)
        recurrent_mask = None
        if training and cell.recurrent_dropout > 0:
            recurrent_mask = cell.get_recurrent_dropout_mask(states[0])
        # One mask per sequence: the next call draws new ones.
        cell.reset_dropout_mask()
        cell.reset_recurrent_dropout_mask()
        arguments = (plan.loop, projected, tuple(states), mask, recurrent_mask)
        if plan.compiled:
            last, sequence, final_states = self._compiled_time_loop_call(*arguments)
        else:
            last, sequence, final_states = self._time_loop(*arguments)
        return self._finish(last, sequence, list(final_states), mask, initial_state)

    def _time_loop(self, path, projected, states, mask, recurrent_mask, compiled=False):
        """``(last, sequence, final_states)``: the cell run over the projected inputs.

        ``path`` is the plan's loop: "fast_backward", "while_loop" or "unrolled".
        ``compiled`` says that XLA compiles this loop: the inference loop then reads the
        projection in place and the LSTM computes its gates through one ``tanh``
        (`nlpkit.layers.tanh_gates`; the training loop measured the same either way).
        """
        cell = self.cell
        options = dict(
            mask=mask,
            go_backwards=self.go_backwards,
            return_sequences=self.return_sequences,
            zero_output_for_mask=self.zero_output_for_mask,
        )
        if path == "fast_backward":
            _, recurrent_kernel, recurrent_bias = cell.fast_backward_inputs()
            return fast_backward_recurrence(
                cell,
                projected,
                list(states),
                recurrent_kernel,
                recurrent_bias,
                recurrent_dropout_mask=recurrent_mask,
                **options,
            )
        return run_recurrence(
            cell.make_step(recurrent_mask, compiled=compiled),
            projected,
            list(states),
            compiled=compiled,
            unroll=path == "unrolled",
            **options,
        )

    def _compiled_time_loop_call(self, path, projected, states, mask, recurrent_mask):
        """`_time_loop` compiled by XLA, differentiable whichever path it takes."""
        compiled = tf.function(
            functools.partial(self._time_loop, path, compiled=True), jit_compile=True, autograph=False
        )
        arguments = (mask, recurrent_mask)
        if path == "fast_backward":
            return compiled(projected, states, *arguments)
        returns_sequence = self.return_sequences

        def flat(result):
            last, sequence, final_states = result
            return [last] + ([sequence] if returns_sequence else []) + list(final_states)

        # Autodiff through a compiled while loop would pass the loop's saved intermediates
        # (TensorLists) out of the XLA cluster, which TensorFlow cannot do. A gradient is
        # rare on these paths (inference, or an explicit jit_compile=True with layer
        # normalisation or other activations), so it runs the plain loop again under a tape.
        @tf.custom_gradient
        def loop(projected, *states):
            outputs = flat(compiled(projected, states, *arguments))

            def gradient(*upstream, variables=None):
                sources = [projected, *states]
                variables = list(variables or [])
                with tf.GradientTape() as tape:
                    tape.watch(sources)
                    again = flat(self._time_loop(path, projected, states, *arguments))
                upstream = [
                    tf.zeros_like(output) if given is None else given
                    for output, given in zip(again, upstream)
                ]
                gradients = tape.gradient(again, sources + variables, output_gradients=upstream)
                return gradients[: len(sources)], gradients[len(sources) :]

            return outputs, gradient

        outputs = loop(projected, *states)
        sequence = outputs[1] if returns_sequence else None
        return outputs[0], sequence, outputs[1 + int(returns_sequence) :]

    def _cudnn_call(self, inputs, states, mask):
        """``(last, sequence, states)`` from the cuDNN kernel, or None where the backend declines."""
        try:
            return self.cell.cudnn_recurrence(inputs, states, mask, self.go_backwards, self.return_sequences)
        except NotImplementedError:
            if self.use_cudnn is True:
                raise self._cudnn_refused(
                    "the backend declined the kernel (it needs a GPU, and an LSTM or a GRU "
                    "with reset_after=True and a bias)"
                ) from None
            return None

    def get_config(self):
        config = super().get_config()
        # The cell's arguments are the layer's own constructor arguments (flat, as before
        # layers held cells), so configs from older nlpkit versions still load.
        cell_config = self.cell.get_config()
        for key in ("name", "trainable", "dtype"):
            cell_config.pop(key, None)
        config.update(cell_config)
        config.update(
            {
                "activity_regularizer": keras.regularizers.serialize(self.activity_regularizer),
                "unroll": self.unroll,
                "fast_backward": self.fast_backward,
                "use_cudnn": self.use_cudnn,
            }
        )
        return config
