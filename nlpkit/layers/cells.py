"""Recurrent cells: the weights and the math of one SimpleRNN, LSTM or GRU time step.

A cell owns its weights (``kernel``, ``recurrent_kernel``, ``bias`` in the layout and order
of the stock Keras cells, then the layer-normalisation gains and biases) and describes its
computation in the pieces nlpkit's layers need to run a fast loop:

- ``project_inputs(inputs)``: the input matmul, for one step ``(batch, features)`` or for a
  whole sequence ``(batch, time, features)`` at once;
- ``forward_step(...)``: the math of one step, written once per cell; it can also save the
  gate activations that the cell's backward step reads;
- ``make_step(recurrent_dropout_mask, compiled)``: ``forward_step`` as a function
  ``(projected_t, states) -> new_states``, with every weight read *before* it is
  returned so that a loop calling it never reads a variable (see
  `nlpkit.layers.recurrent.read_weight`); an LSTM step for a loop that XLA compiles computes
  its sigmoid gates through ``tanh`` (`nlpkit.layers.tanh_gates`);
- ``backward_step(...)``: the gate deltas of one step for the hand-written backward pass
  ("fast backward": `nlpkit.layers.fast_backward`, which runs the loops around it), and
  ``fast_backward_inputs()``: the cell and the tensors that pass takes, or None when the
  configuration has none (``fast_backward_reason()`` says why).

Each cell also implements the Keras cell API (``call(inputs, states, training)``,
``state_size``, ``output_size``, ``get_initial_state``, per-sequence dropout masks), so it
runs inside stock ``keras.layers.RNN`` as well.

Layer normalisation (Ba et al., 2016, "Layer Normalization", §3.1) normalises the input
projection and the recurrent projection separately, each over its full ``gates * units``
width with its own gain and bias, before the stock bias is added; the LSTM also normalises
the cell state before the output activation (the carried cell state stays unnormalised).
"""

import keras
import tensorflow as tf
from keras import ops

# Keras' RNN layer prepares (and afterwards clears) per-sequence dropout masks only for
# cells that are instances of this class, and it is not exported under `keras.layers`.
from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell

# The backend's whole-sequence LSTM/GRU kernels (cuDNN under TensorFlow on a GPU), which the
# stock Keras layers call the same way; they raise NotImplementedError where they cannot run.
from keras.src import backend as keras_backend

from nlpkit.layers.fast_backward import flat, recurrent_kernel_gradient
from nlpkit.layers.recurrent import read_weight
from nlpkit.layers.tanh_gates import lstm_gate_activations

# The epsilon of `keras.layers.LayerNormalization`; it keeps an all-equal projection (e.g.
# zero inputs with no bias) finite.
LAYER_NORM_EPSILON = 1e-3


def layer_normalize(x, gain, bias):
    """Normalises ``x`` over its last axis to zero mean and unit variance, then scales."""
    mean = ops.mean(x, axis=-1, keepdims=True)
    variance = ops.mean(ops.square(x - mean), axis=-1, keepdims=True)
    return (x - mean) * ops.rsqrt(variance + LAYER_NORM_EPSILON) * gain + bias


class RecurrentCell(keras.layers.Layer, DropoutRNNCell):
    """Base class of nlpkit's cells: one time step with the Keras cell API.

    Subclasses set ``gates`` (the width of the projections in units of ``units``) and
    implement ``forward_step``; they may implement ``backward_step`` (the hand-written
    backward pass) and override ``state_size``, ``bias_shape``, ``bias_initial_value``,
    ``input_bias``, ``recurrent_bias`` and ``norm_widths``.

    Args:
        units: int, size of the hidden state.
        activation: default "tanh". Candidate/output activation.
        use_bias: bool, default True.
        kernel_initializer: default "glorot_uniform". Initializer of ``kernel``.
        recurrent_initializer: default "orthogonal". Initializer of ``recurrent_kernel``.
        bias_initializer: default "zeros". Initializer of ``bias``.
        kernel_regularizer: default None. Regularizer of ``kernel``.
        recurrent_regularizer: default None. Regularizer of ``recurrent_kernel``.
        bias_regularizer: default None. Regularizer of ``bias``.
        kernel_constraint: default None. Constraint of ``kernel``.
        recurrent_constraint: default None. Constraint of ``recurrent_kernel``.
        bias_constraint: default None. Constraint of ``bias``.
        dropout: float in [0, 1), default 0. Dropout on the inputs; one mask per sequence
            when run by a layer (Keras' RNN layer caches it for the whole sequence too).
        recurrent_dropout: float in [0, 1), default 0. Variational dropout on the hidden
            state fed into the recurrent matmul, one mask per sequence.
        seed: optional int for the dropout masks.
        layer_norm: bool, default False. Layer-normalise the input and recurrent
            projections (and the LSTM cell state) with learned gains and biases, which are
            weights placed after the stock ones.
        **kwargs: `keras.layers.Layer` arguments (name, dtype, trainable).

    Example:
        >>> cell = nlpkit.layers.GRUCell(8)
        >>> output, states = cell(np.zeros((2, 4), "float32"), cell.get_initial_state(2))
        >>> output.shape, len(states)
        ((2, 8), 1)
    """

    gates = 1

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
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        layer_norm=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(units, bool) or not isinstance(units, int) or units <= 0:
            raise ValueError(f"`units` must be a positive int. Received: units={units!r}")
        for name, rate in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not 0.0 <= rate < 1.0:
                raise ValueError(f"`{name}` must be in [0, 1). Received: {name}={rate!r}")
        if not isinstance(layer_norm, bool):
            raise ValueError(f"`layer_norm` must be a bool. Received: layer_norm={layer_norm!r}")
        self.units = units
        self.activation = keras.activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = keras.regularizers.get(recurrent_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.recurrent_constraint = keras.constraints.get(recurrent_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.dropout = float(dropout)
        self.recurrent_dropout = float(recurrent_dropout)
        self.seed = seed
        self.layer_norm = layer_norm
        if dropout or recurrent_dropout:
            self.seed_generator = keras.random.SeedGenerator(seed)

    @property
    def state_size(self):
        """One size per state, hidden state first (a list, as Keras' RNN accepts)."""
        return [self.units]

    @property
    def output_size(self):
        return self.units

    def bias_shape(self):
        return (self.gates * self.units,)

    def bias_initial_value(self):
        """The initializer of ``bias``; the LSTM's adds its forget-gate ones."""
        return self.bias_initializer

    def norm_widths(self):
        """``(name, width)`` of each normalised quantity, in weight order."""
        width = self.gates * self.units
        return [("input", width), ("recurrent", width)]

    def build(self, input_shape):
        width = self.gates * self.units
        self.kernel = self.add_weight(
            shape=(input_shape[-1], width),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
            name="kernel",
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, width),
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
            name="recurrent_kernel",
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=self.bias_shape(),
                initializer=self.bias_initial_value(),
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
                name="bias",
            )
        # Created after the stock weights so that a stock cell's weight list is a prefix.
        if self.layer_norm:
            for name, size in self.norm_widths():
                for part, initializer in (("gain", "ones"), ("bias", "zeros")):
                    weight = self.add_weight(
                        shape=(size,), initializer=initializer, name=f"{name}_norm_{part}"
                    )
                    setattr(self, f"{name}_norm_{part}", weight)

    def read_norm(self, name):
        """``(gain, bias)`` of a normalisation read into tensors, or None without one."""
        if not self.layer_norm:
            return None
        return (
            read_weight(getattr(self, f"{name}_norm_gain")),
            read_weight(getattr(self, f"{name}_norm_bias")),
        )

    def input_bias(self):
        return self.bias

    def project_inputs(self, inputs):
        """The input part of the pre-activations, for one step or a whole sequence.

        Args:
            inputs: float tensor ``(..., input_dim)``.

        Returns:
            ``(..., gates * units)``: ``inputs @ kernel`` (normalised with ``layer_norm``)
            plus the input bias.
        """
        projected = ops.matmul(inputs, self.kernel)
        if self.layer_norm:
            projected = layer_normalize(projected, *self.read_norm("input"))
        bias = self.input_bias()
        return projected if bias is None else projected + bias

    def recurrent_bias(self):
        """The bias added after the recurrent matmul (the reset-after GRU's), or None."""
        return None

    def make_step(self, recurrent_dropout_mask, compiled=False):
        """The recurrent part of a step: ``(projected_t, states) -> new_states``.

        Weights are read here, once, so the returned function holds tensors only.

        Args:
            recurrent_dropout_mask: optional ``(batch, units)`` multiplier on the hidden
                state before the recurrent matmul.
            compiled: bool, default False. The step runs in a loop that XLA compiles: the
                LSTM then computes its default gates through one ``tanh``, which XLA runs
                faster on a CPU (`nlpkit.layers.tanh_gates`).
        """
        bias = self.recurrent_bias()
        # The input normalisation belongs to `project_inputs`, outside the step.
        norms = {name: self.read_norm(name) for name, _ in self.norm_widths() if name != "input"}
        step = self.forward_step(
            read_weight(self.recurrent_kernel),
            None if bias is None else read_weight(bias),
            recurrent_dropout_mask,
            norms if self.layer_norm else None,
            compiled=compiled,
        )

        def new_states(x_t, states):
            return step(x_t, states)[0]

        return new_states

    def forward_step(
        self, recurrent_kernel, recurrent_bias=None, recurrent_dropout_mask=None, norms=None,
        compiled=False, saving=False,
    ):
        """The step math of this cell, written once: ``(projected_t, states) -> (new_states, saved)``.

        `make_step` (every loop, the Keras cell API) and the hand-written backward pass
        (`nlpkit.layers.fast_backward`, with ``saving=True``) both run this function.

        Args:
            recurrent_kernel: tensor ``(units, gates * units)``, read before the loop.
            recurrent_bias: tensor or None, see `recurrent_bias`.
            recurrent_dropout_mask: optional ``(batch, units)`` multiplier on ``h``.
            norms: dict or None. ``{name: (gain, bias)}`` of the normalisations in the step.
            compiled: bool, default False. See `make_step`.
            saving: bool, default False. Also return what `backward_step` reads (the gate
                activations); otherwise ``saved`` is None.
        """
        raise NotImplementedError

    # Whether `backward_step` reads gate activations that `forward_step` saves.
    saves_gates = True

    def backward_step(self, recurrent_kernel, forward, dropout_mask):
        """The hand-written backward pass of this cell's step (default activations).

        Args:
            recurrent_kernel: the tensor the forward pass used.
            forward: what the forward pass kept, time-major ``(time, batch, width)``:
                ``gates`` (the saved gate activations), ``states`` (``h`` after each step),
                ``cells`` and ``c_prev`` (the LSTM's ``c`` after and before each step, else
                None), ``h_prev`` (``h`` before each step) and ``h_in`` (``h_prev`` with
                the recurrent dropout mask applied).
            dropout_mask: the recurrent dropout mask, or None.

        Returns:
            ``(step, finish, record_width)``. ``step(t, dh, dc) -> (record, dh_prev,
            dc_prev)`` runs inside the reverse loop (``dc`` is None but for the LSTM);
            ``finish(records)`` takes the stacked ``(time, batch, record_width)`` records
            and returns ``(d_projected, d_recurrent_kernel, d_recurrent_bias_or_None)``.
        """
        raise NotImplementedError

    def uses_default_activations(self):
        """Whether the activations are ``tanh`` and (for the gates) ``sigmoid``."""
        gate = getattr(self, "recurrent_activation", keras.activations.sigmoid)
        return self.activation is keras.activations.tanh and gate is keras.activations.sigmoid

    def default_math_reason(self):
        """Why this cell's step is not the textbook one, or None if it is.

        The textbook step (``tanh``, ``sigmoid`` gates, no layer normalisation) is the one
        that the hand-written backward pass, cuDNN and the fused TFLite LSTM implement.
        """
        if self.layer_norm:
            return "layer_norm=True"
        if self.activation is not keras.activations.tanh:
            return f"activation {keras.activations.serialize(self.activation)!r} is not tanh"
        gate = getattr(self, "recurrent_activation", keras.activations.sigmoid)
        if gate is not keras.activations.sigmoid:
            return f"recurrent_activation {keras.activations.serialize(gate)!r} is not sigmoid"
        return None

    def fast_backward_reason(self):
        """Why training cannot take the hand-written backward pass, or None if it can."""
        if type(self).backward_step is RecurrentCell.backward_step:
            return f"no hand-written backward pass for {type(self).__name__}"
        return self.default_math_reason()

    def cudnn_reason(self):
        """Why the cuDNN kernel cannot run this cell, or None to offer it to the backend.

        The backend still declines where no GPU is visible or Keras' ``cudnn_ok`` refuses
        the configuration (e.g. a GRU with ``reset_after=False``).
        """
        if type(self).cudnn_recurrence is RecurrentCell.cudnn_recurrence:
            return f"cuDNN has no {type(self).__name__} kernel"
        return self.default_math_reason()

    def fast_backward_inputs(self):
        """``(cell, recurrent_kernel, recurrent_bias)`` for `fast_backward_recurrence`, or None.

        None means there is no hand-written backward pass for this configuration (another
        activation, or layer normalisation; `fast_backward_reason` says which) and
        training uses autodiff through the loop.
        """
        if self.fast_backward_reason() is not None:
            return None
        bias = self.recurrent_bias()
        return self, read_weight(self.recurrent_kernel), None if bias is None else read_weight(bias)

    # The earlier name of `fast_backward_inputs` (`nlpkit.models.seq2seq` calls it).

    def cudnn_recurrence(self, inputs, states, mask, go_backwards, return_sequences):
        """The whole sequence through the backend's fused kernel (cuDNN on a GPU).

        Returns ``(last_output, sequence, final_states)`` like
        `nlpkit.layers.recurrent.run_recurrence`, or raises ``NotImplementedError`` where
        the kernel cannot run this cell (no GPU, SimpleRNN, layer normalisation, other
        activations, GRU with ``reset_after=False``); the layer then runs its own loop.
        """
        raise NotImplementedError

    def call(self, inputs, states, training=False):
        states = list(states) if isinstance(states, (list, tuple)) else [states]
        if training and self.dropout > 0:
            inputs = inputs * self.get_dropout_mask(inputs)
        recurrent_mask = None
        if training and self.recurrent_dropout > 0:
            recurrent_mask = self.get_recurrent_dropout_mask(states[0])
        new_states = self.make_step(recurrent_mask)(self.project_inputs(inputs), states)
        return new_states[0], new_states

    def load_own_variables(self, store):
        # See `RecurrentLayer.load_own_variables`: a file from before layers held cells.
        if len(store.keys()) == 0 and getattr(self, "loaded_by_layer", False):
            return
        super().load_own_variables(store)

    def get_initial_state(self, batch_size=None):
        """Zero states, one ``(batch_size, size)`` tensor per entry of ``state_size``."""
        return [ops.zeros((batch_size, size), dtype=self.compute_dtype) for size in self.state_size]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "activation": keras.activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
                "recurrent_regularizer": keras.regularizers.serialize(self.recurrent_regularizer),
                "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
                "kernel_constraint": keras.constraints.serialize(self.kernel_constraint),
                "recurrent_constraint": keras.constraints.serialize(self.recurrent_constraint),
                "bias_constraint": keras.constraints.serialize(self.bias_constraint),
                "dropout": self.dropout,
                "recurrent_dropout": self.recurrent_dropout,
                "seed": self.seed,
                "layer_norm": self.layer_norm,
            }
        )
        return config


def _masked(h, recurrent_dropout_mask):
    return h if recurrent_dropout_mask is None else h * recurrent_dropout_mask


def _gradients_through_one_matmul(forward):
    """The ``finish`` of a cell whose records are d(projected) and whose kernel multiplies ``h_in``."""

    def finish(records):
        return records, recurrent_kernel_gradient(forward.h_in, records), None

    return finish


def lstm_state_update(pre_activations, c, activation=keras.activations.tanh,
                      gate=keras.activations.sigmoid, one_tanh=False, state_norm=None):
    """The LSTM's gates and state update from its pre-activations ``[i, f, c, o]``.

    The one place this math is written: `LSTMCell` steps with it and the fused TFLite form's
    reference body (`nlpkit.layers.fused_lstm`) too.

    Returns:
        ``(h, c, (i, f, g, o))``.
    """
    if one_tanh:
        i, f, g, o = lstm_gate_activations(pre_activations)
    else:
        # One split op instead of four slices: per-step op count is what costs on CPU.
        i, f, g, o = ops.split(pre_activations, 4, axis=-1)
        i, f, g, o = gate(i), gate(f), activation(g), gate(o)
    c = f * c + i * g
    shown = c if state_norm is None else layer_normalize(c, *state_norm)
    return o * activation(shown), c, (i, f, g, o)


@keras.saving.register_keras_serializable(package="nlpkit")
class SimpleRNNCell(RecurrentCell):
    """Elman cell, ``h_t = activation(x_t W + h_{t-1} U + b)``, laid out like Keras'.

    With ``layer_norm``: ``h_t = activation(LN(x_t W) + LN(h_{t-1} U) + b)``.

    Args:
        units: int, size of the hidden state.
        **kwargs: see `RecurrentCell` (activation, use_bias, initializers, dropout,
            recurrent_dropout, seed, layer_norm).

    Example:
        >>> rnn = keras.layers.RNN(nlpkit.layers.SimpleRNNCell(8))
        >>> rnn(np.zeros((3, 4, 5), "float32")).shape
        (3, 8)
    """

    # The output is the only activation, and the state sequence holds it.
    saves_gates = False

    def forward_step(
        self, recurrent_kernel, recurrent_bias=None, recurrent_dropout_mask=None, norms=None,
        compiled=False, saving=False,
    ):
        norm = (norms or {}).get("recurrent")
        activation = self.activation

        def step(x_t, states):
            recurrent = ops.matmul(_masked(states[0], recurrent_dropout_mask), recurrent_kernel)
            if norm is not None:
                recurrent = layer_normalize(recurrent, *norm)
            return [activation(x_t + recurrent)], None

        return step

    def backward_step(self, recurrent_kernel, forward, dropout_mask):
        kernel_t = tf.transpose(recurrent_kernel)
        from_h = 1.0 - tf.square(forward.states)

        def step(t, dh, dc):
            dz = dh * from_h[t]
            return dz, _masked(tf.matmul(dz, kernel_t), dropout_mask), None

        return step, _gradients_through_one_matmul(forward), recurrent_kernel.shape[-1]


@keras.saving.register_keras_serializable(package="nlpkit")
class LSTMCell(RecurrentCell):
    """LSTM cell (Hochreiter & Schmidhuber, 1997) with the weight layout of Keras'.

    Gate order in the kernels is ``[i, f, c, o]``; states are ``[h, c]``. With
    ``layer_norm`` the pre-activations are ``LN(x_t W) + LN(h_{t-1} U) + b`` and the output
    is ``o * activation(LN(c_t))``; the cell state itself is carried unnormalised.

    Args:
        units: int, size of the hidden and cell states.
        recurrent_activation: default "sigmoid". Gate activation.
        unit_forget_bias: bool, default True. Initialise the forget-gate bias to 1.
        **kwargs: see `RecurrentCell` (activation, use_bias, initializers, dropout,
            recurrent_dropout, seed, layer_norm).

    Example:
        >>> rnn = keras.layers.RNN(nlpkit.layers.LSTMCell(8), return_state=True)
        >>> output, h, c = rnn(np.zeros((3, 4, 5), "float32"))
        >>> c.shape
        (3, 8)
    """

    gates = 4

    def __init__(self, units, recurrent_activation="sigmoid", unit_forget_bias=True, **kwargs):
        super().__init__(units, **kwargs)
        self.recurrent_activation = keras.activations.get(recurrent_activation)
        self.unit_forget_bias = unit_forget_bias

    @property
    def state_size(self):
        return [self.units, self.units]

    def norm_widths(self):
        return super().norm_widths() + [("state", self.units)]

    def bias_initial_value(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        units, base = self.units, self.bias_initializer

        def initializer(shape, dtype=None):
            return ops.concatenate(
                [
                    base((units,), dtype=dtype),
                    ops.ones((units,), dtype=dtype),
                    base((2 * units,), dtype=dtype),
                ]
            )

        return initializer

    def forward_step(
        self, recurrent_kernel, recurrent_bias=None, recurrent_dropout_mask=None, norms=None,
        compiled=False, saving=False,
    ):
        norms = norms or {}
        recurrent_norm, state_norm = norms.get("recurrent"), norms.get("state")
        activation, gate = self.activation, self.recurrent_activation
        one_tanh = compiled and self.uses_default_activations()

        def step(x_t, states):
            h, c = states
            recurrent = ops.matmul(_masked(h, recurrent_dropout_mask), recurrent_kernel)
            if recurrent_norm is not None:
                recurrent = layer_normalize(recurrent, *recurrent_norm)
            h, c, gates = lstm_state_update(
                x_t + recurrent, c, activation, gate, one_tanh=one_tanh, state_norm=state_norm
            )
            return [h, c], ops.concatenate(gates, axis=1) if saving else None

        return step

    def backward_step(self, recurrent_kernel, forward, dropout_mask):
        units = recurrent_kernel.shape[0]
        kernel_t = tf.transpose(recurrent_kernel)
        i, f, g, o = (forward.gates[:, :, k * units : (k + 1) * units] for k in range(4))
        tanh_c = tf.tanh(forward.cells)
        from_h = o * (1.0 - tf.square(tanh_c))
        # d(pre-activation) = [dc, dc, dc, dh] * these, gate by gate.
        gate_factors = tf.concat(
            [
                g * i * (1.0 - i),
                forward.c_prev * f * (1.0 - f),
                i * (1.0 - tf.square(g)),
                tanh_c * o * (1.0 - o),
            ],
            axis=2,
        )

        def step(t, dh, dc):
            dc = dc + dh * from_h[t]
            dz = tf.concat([dc, dc, dc, dh], axis=1) * gate_factors[t]
            return dz, _masked(tf.matmul(dz, kernel_t), dropout_mask), dc * f[t]

        return step, _gradients_through_one_matmul(forward), 4 * units

    def cudnn_recurrence(self, inputs, states, mask, go_backwards, return_sequences):
        if self.cudnn_reason() is not None:
            raise NotImplementedError
        last, sequence, final_states = keras_backend.lstm(
            inputs, states[0], states[1], mask,
            kernel=self.kernel, recurrent_kernel=self.recurrent_kernel, bias=self.bias,
            activation=self.activation, recurrent_activation=self.recurrent_activation,
            return_sequences=return_sequences, go_backwards=go_backwards,
        )
        return last, sequence, list(final_states)


    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "recurrent_activation": keras.activations.serialize(self.recurrent_activation),
                "unit_forget_bias": self.unit_forget_bias,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="nlpkit")
class GRUCell(RecurrentCell):
    """GRU cell (Cho et al., 2014) with the weight layout of Keras'.

    Gate order in the kernels is ``[z, r, h]``. With ``reset_after=True`` (the Keras
    default, and the cuDNN form) the reset gate is applied after the recurrent matmul and
    there are separate input and recurrent biases, stored as a ``(2, 3 * units)`` bias.
    With ``layer_norm`` the recurrent projection is normalised before the recurrent bias is
    added; with ``reset_after=False`` its two matmuls (``h U_zr`` and ``(r * h) U_h``) are
    normalised separately, with the matching slices of one gain and bias.

    Args:
        units: int, size of the hidden state.
        reset_after: bool, default True. Apply the reset gate after the recurrent matmul.
        recurrent_activation: default "sigmoid". Gate activation.
        **kwargs: see `RecurrentCell` (activation, use_bias, initializers, dropout,
            recurrent_dropout, seed, layer_norm).

    Example:
        >>> rnn = keras.layers.RNN(nlpkit.layers.GRUCell(8, layer_norm=True))
        >>> rnn(np.zeros((3, 4, 5), "float32")).shape
        (3, 8)
    """

    gates = 3

    def __init__(self, units, reset_after=True, recurrent_activation="sigmoid", **kwargs):
        super().__init__(units, **kwargs)
        self.reset_after = reset_after
        self.recurrent_activation = keras.activations.get(recurrent_activation)

    def bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def input_bias(self):
        if self.bias is not None and self.reset_after:
            return self.bias[0]
        return self.bias

    def recurrent_bias(self):
        if self.use_bias and self.reset_after:
            return self.bias[1]
        return None

    def forward_step(
        self, recurrent_kernel, recurrent_bias=None, recurrent_dropout_mask=None, norms=None,
        compiled=False, saving=False,
    ):
        units = self.units
        norm = (norms or {}).get("recurrent")
        activation, gate = self.activation, self.recurrent_activation
        if self.reset_after:

            def step(x_t, states):
                h = states[0]
                recurrent = ops.matmul(_masked(h, recurrent_dropout_mask), recurrent_kernel)
                if norm is not None:
                    recurrent = layer_normalize(recurrent, *norm)
                if recurrent_bias is not None:
                    recurrent = recurrent + recurrent_bias
                # Both gates in one activation, and splits instead of slices: fewer ops per step.
                x_zr, x_h = ops.split(x_t, [2 * units], axis=-1)
                recurrent_zr, recurrent_h = ops.split(recurrent, [2 * units], axis=-1)
                zr = gate(x_zr + recurrent_zr)
                z, r = ops.split(zr, 2, axis=-1)
                candidate = activation(x_h + r * recurrent_h)
                saved = ops.concatenate([zr, candidate, recurrent_h], axis=1) if saving else None
                return [z * h + (1.0 - z) * candidate], saved

            return step

        kernel_zr, kernel_h = recurrent_kernel[:, : 2 * units], recurrent_kernel[:, 2 * units :]
        norm_zr = norm_h = None
        if norm is not None:
            norm_zr = tuple(weight[: 2 * units] for weight in norm)
            norm_h = tuple(weight[2 * units :] for weight in norm)

        def step(x_t, states):
            h = states[0]
            h_in = _masked(h, recurrent_dropout_mask)
            recurrent = ops.matmul(h_in, kernel_zr)
            if norm_zr is not None:
                recurrent = layer_normalize(recurrent, *norm_zr)
            z = gate(x_t[:, :units] + recurrent[:, :units])
            r = gate(x_t[:, units : 2 * units] + recurrent[:, units:])
            recurrent_h = ops.matmul(r * h_in, kernel_h)
            if norm_h is not None:
                recurrent_h = layer_normalize(recurrent_h, *norm_h)
            candidate = activation(x_t[:, 2 * units :] + recurrent_h)
            saved = ops.concatenate([z, r, candidate], axis=1) if saving else None
            return [z * h + (1.0 - z) * candidate], saved

        return step

    def backward_step(self, recurrent_kernel, forward, dropout_mask):
        units = recurrent_kernel.shape[0]
        z, r, n = (forward.gates[:, :, k * units : (k + 1) * units] for k in range(3))
        # d(new h)/d(pre-activation) of the update gate and of the candidate.
        z_factor = (forward.h_prev - n) * z * (1.0 - z)
        n_factor = (1.0 - z) * (1.0 - tf.square(n))
        if self.reset_after:
            return self._backward_reset_after(recurrent_kernel, forward, dropout_mask, z, r, z_factor, n_factor)
        r_factor = forward.h_in * r * (1.0 - r)
        kernel_zr_t = tf.transpose(recurrent_kernel[:, : 2 * units])
        kernel_h_t = tf.transpose(recurrent_kernel[:, 2 * units :])

        def step(t, dh, dc):
            da_n = dh * n_factor[t]
            d_reset_h = tf.matmul(da_n, kernel_h_t)
            d_zr = tf.concat([dh * z_factor[t], d_reset_h * r_factor[t]], axis=1)
            dh_in = _masked(tf.matmul(d_zr, kernel_zr_t) + d_reset_h * r[t], dropout_mask)
            return tf.concat([d_zr, da_n], axis=1), dh * z[t] + dh_in, None

        def finish(records):
            h_in = forward.h_in
            d_kernel = tf.concat(
                [
                    tf.matmul(flat(h_in), flat(records[:, :, : 2 * units]), transpose_a=True),
                    tf.matmul(flat(r * h_in), flat(records[:, :, 2 * units :]), transpose_a=True),
                ],
                axis=1,
            )
            return records, d_kernel, None

        return step, finish, 3 * units

    def _backward_reset_after(self, recurrent_kernel, forward, dropout_mask, z, r, z_factor, n_factor):
        # The record of a step is its dh; the input gradient is rebuilt after the loop.
        units = recurrent_kernel.shape[0]
        kernel_t = tf.transpose(recurrent_kernel)
        recurrent_h = forward.gates[:, :, 3 * units :]
        r_factor = n_factor * recurrent_h * r * (1.0 - r)
        recurrent_factors = tf.concat([z_factor, r_factor, n_factor * r], axis=2)

        def step(t, dh, dc):
            d_recurrent = tf.concat([dh, dh, dh], axis=1) * recurrent_factors[t]
            dh_in = _masked(tf.matmul(d_recurrent, kernel_t), dropout_mask)
            return dh, dh * z[t] + dh_in, None

        def finish(records):
            dh_all = tf.concat([records] * 3, axis=2)
            d_recurrent_all = dh_all * recurrent_factors
            d_projected = dh_all * tf.concat([z_factor, r_factor, n_factor], axis=2)
            d_kernel = tf.matmul(flat(forward.h_in), flat(d_recurrent_all), transpose_a=True)
            return d_projected, d_kernel, tf.reduce_sum(flat(d_recurrent_all), axis=0)

        return step, finish, units

    def cudnn_recurrence(self, inputs, states, mask, go_backwards, return_sequences):
        if self.cudnn_reason() is not None:
            raise NotImplementedError
        last, sequence, final_states = keras_backend.gru(
            inputs, states[0], mask,
            kernel=self.kernel, recurrent_kernel=self.recurrent_kernel, bias=self.bias,
            activation=self.activation, recurrent_activation=self.recurrent_activation,
            return_sequences=return_sequences, go_backwards=go_backwards, reset_after=self.reset_after,
        )
        return last, sequence, list(final_states)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "reset_after": self.reset_after,
                "recurrent_activation": keras.activations.serialize(self.recurrent_activation),
            }
        )
        return config
