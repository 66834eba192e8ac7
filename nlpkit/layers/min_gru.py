"""MinGRU (Feng et al., 2024, "Were RNNs All We Needed?"): a GRU that trains with a parallel scan.

The gates depend on the input only, never on ``h_{t-1}``, so the recurrence
``h_t = a_t * h_{t-1} + b_t`` is linear with coefficients known for every step before it
starts, and a parallel scan computes all steps at once (`nlpkit.layers.scan`). The
candidate goes through the paper's ``g(x) = x + 0.5 if x >= 0 else sigmoid(x)`` (§3.1,
Appendix B). The paper scans in log space because its scan is a cumulative sum of logs;
`nlpkit.layers.scan.linear_recurrence` multiplies coefficients ``0 <= a <= 1``, which only
shrink, so it runs on ``(a, b)`` directly, with a hand-written backward pass, which measured several
times faster for forward + backward than the log-space scan differentiated by TensorFlow
(figures on the docs' benchmarks page; ``python benchmarks/parallel_scan_speed.py --layers
lstm,mingru`` measures the layer). The single-step form
(`step`) computes the same recurrence one token at a time, which is what streaming export
runs.
"""

import keras
import tensorflow as tf
from keras import ops

from nlpkit.layers.recurrent import RecurrentLayerBase, compute_dtype_scope, read_weight
from nlpkit.layers.scan import linear_recurrence, log_sigmoid


def positive_activation(x):
    """The paper's ``g``: ``x + 0.5`` for ``x >= 0``, ``sigmoid(x)`` below; always > 0.

    Written as ``maximum(x + 0.5, sigmoid(x))``, the same function: the two branches meet
    only at 0 (both 0.5), ``x + 0.5`` is the larger above and ``sigmoid(x)`` below, and at
    0 the gradient goes to ``x + 0.5`` as ``x >= 0`` selects it. Three ops instead of four
    (compare, add, sigmoid, select), which a TFLite streaming step pays on every token.
    """
    return tf.maximum(x + 0.5, tf.sigmoid(x))


def log_positive_activation(x):
    """``log g(x)``, computed without forming ``g`` (no ``log`` of tiny sigmoids)."""
    # The unselected branch of tf.where still gets a gradient; maximum() keeps it finite.
    return tf.where(x >= 0, tf.math.log(tf.maximum(x, 0.0) + 0.5), log_sigmoid(x))


class MinimalRecurrentLayer(RecurrentLayerBase):
    """Shared machinery of `MinGRU` and `MinLSTM`: one input projection, then a scan.

    Subclasses set ``gates`` (how many ``units``-wide projections of the input there are)
    and implement `log_coefficients` (the scan's ``(log a, log b)`` from the projection,
    all steps at once) and `coefficients` (``(a, b)`` for one step, for `step`).

    Args:
        units: int, size of the hidden state (and of the output).
        use_bias: bool, default True.
        kernel_initializer: default "glorot_uniform". Initializer of ``kernel``.
        bias_initializer: default "zeros". Initializer of ``bias``.
        dropout: float in [0, 1), default 0. Dropout on the inputs, one mask per sequence.
        seed: optional int, seed of the dropout masks.
        **kwargs: `nlpkit.layers.recurrent.RecurrentLayerBase` arguments (return_sequences,
            return_state, go_backwards, stateful, zero_output_for_mask) and
            `keras.layers.Layer` arguments (name, dtype, trainable).

    Example:
        >>> layer = nlpkit.layers.MinGRU(16, return_sequences=True)
        >>> layer(np.zeros((2, 5, 8), "float32")).shape
        (2, 5, 16)
    """

    gates = 1

    def __init__(
        self,
        units,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        dropout=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(units, bool) or not isinstance(units, int) or units <= 0:
            raise ValueError(f"`units` must be a positive int. Received: units={units!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be a float in [0, 1). Received: dropout={dropout!r}")
        if not isinstance(use_bias, bool):
            raise ValueError(f"`use_bias` must be a bool. Received: use_bias={use_bias!r}")
        self.units = units
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.dropout = float(dropout)
        self.seed = seed
        if self.dropout:
            self.seed_generator = keras.random.SeedGenerator(seed)

    @property
    def state_size(self):
        return [self.units]

    def build(self, input_shape):
        width = self.gates * self.units
        self.kernel = self.add_weight(
            shape=(input_shape[-1], width), initializer=self.kernel_initializer, name="kernel"
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(shape=(width,), initializer=self.bias_initializer, name="bias")
        super().build(input_shape)

    def project_inputs(self, inputs):
        """``inputs @ kernel + bias`` for one step ``(batch, features)`` or a whole sequence."""
        projected = ops.matmul(inputs, read_weight(self.kernel))
        return projected if self.bias is None else projected + read_weight(self.bias)

    def log_coefficients(self, projected):
        """``(log a, log b)``, each ``(batch, time, units)``, from the projected inputs.

        The sequence form uses ``log a`` for the share of an initial state.
        """
        raise NotImplementedError

    def coefficients(self, projected_t):
        """``(a, b)`` with ``h_t = a * h_{t-1} + b``, for one step or a whole sequence."""
        raise NotImplementedError

    def step(self, inputs_t, states):
        with compute_dtype_scope(self):
            projected = self.project_inputs(ops.cast(inputs_t, self.compute_dtype))
            h = self.next_state(projected, ops.cast(states[0], self.compute_dtype))
        return h, [h]

    def next_state(self, projected_t, h):
        """``h_t`` from one step's projected inputs and ``h_{t-1}``: ``a h + b``."""
        a, b = self.coefficients(projected_t)
        return a * h + b

    def call(self, inputs, mask=None, initial_state=None, training=False):
        if training and self.dropout > 0:
            keep = keras.random.dropout(
                ops.ones_like(inputs[:, :1, :]), self.dropout, seed=self.seed_generator
            )
            inputs = inputs * keep
        states = self._initial_states(inputs, initial_state, inputs.dtype)
        from_states = initial_state is not None or self.stateful
        last, sequence = self._call_compiled_where_chosen(self._scan, inputs, mask, states, from_states)
        return self._finish(
            last, sequence if self.return_sequences else None, [last], mask, initial_state
        )

    def _scan(self, inputs, mask, states, from_states, static_shapes):
        """``(last, sequence)`` of the layer from its (dropped-out) inputs and states."""
        step_mask = None
        if mask is not None:
            step_mask = ops.expand_dims(ops.cast(mask, "bool"), -1)
        if self.go_backwards:
            inputs = ops.flip(inputs, axis=1)
            step_mask = None if step_mask is None else ops.flip(step_mask, axis=1)
        projected = self.project_inputs(inputs)
        a, b = self.coefficients(projected)
        if step_mask is not None:
            # A masked step keeps the state: a = 1, b = 0.
            a = tf.where(step_mask, a, tf.ones_like(a))
            b = tf.where(step_mask, b, tf.zeros_like(b))
        sequence = linear_recurrence(a, b, static_shapes=static_shapes)
        if from_states:
            # h_0's share of h_t is (a_1 ... a_t) h_0, the product summed in log space (no
            # underflow, and its gradient has no division by a); zero states skip it.
            log_a = self.log_coefficients(projected)[0]
            if step_mask is not None:
                log_a = tf.where(step_mask, log_a, tf.zeros_like(log_a))
            decay = tf.exp(tf.cumsum(log_a, axis=1))
            sequence = sequence + decay * ops.expand_dims(states[0], 1)
        last = sequence[:, -1]
        if self.zero_output_for_mask and step_mask is not None:
            sequence = tf.where(step_mask, sequence, tf.zeros_like(sequence))
        return last, sequence

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "dropout": self.dropout,
                "seed": self.seed,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="nlpkit")
class MinGRU(MinimalRecurrentLayer):
    """MinGRU (Feng et al., 2024): ``h_t = (1 - z_t) h_{t-1} + z_t g(W_h x_t)``, ``z_t = sigmoid(W_z x_t)``.

    No gate reads ``h_{t-1}``, so training runs a parallel scan over time instead of a
    loop (see the module docstring); `step` is the recurrent form, one token
    at a time. The kernel is ``(input_dim, 2 * units)`` with columns ``[z, h]``; there is
    no recurrent kernel, so no recurrent dropout.

    Args:
        units: int, size of the hidden state (and of the output).
        use_bias: bool, default True.
        kernel_initializer: default "glorot_uniform".
        bias_initializer: default "zeros".
        dropout: float in [0, 1), default 0. Input dropout, one mask per sequence.
        seed: optional int, seed of the dropout masks.
        **kwargs: return_sequences, return_state, go_backwards, stateful,
            zero_output_for_mask (see `nlpkit.layers.recurrent.RecurrentLayerBase`) and
            `keras.layers.Layer` arguments.

    Example:
        >>> layer = nlpkit.layers.MinGRU(32, return_sequences=True)
        >>> x = np.random.normal(size=(2, 300, 8)).astype("float32")
        >>> full = layer(x)  # parallel scan
        >>> h = layer.get_initial_state(2)
        >>> for t in range(300):
        ...     y, h = layer.step(x[:, t], h)  # y == full[:, t] to ~1e-6
    """

    gates = 2

    def log_coefficients(self, projected):
        gate, candidate = projected[..., : self.units], projected[..., self.units :]
        # log(1 - sigmoid(k)) = log_sigmoid(-k).
        return log_sigmoid(-gate), log_sigmoid(gate) + log_positive_activation(candidate)

    def coefficients(self, projected_t):
        gate, candidate = tf.split(projected_t, 2, axis=-1)
        # sigmoid(-k), not 1 - sigmoid(k): exact where the gate saturates.
        return tf.sigmoid(-gate), tf.sigmoid(gate) * positive_activation(candidate)

    def next_state(self, projected_t, h):
        # h + z (g - h): the same state as (1 - z) h + z g with one sigmoid less; a TFLite
        # step then runs 8 ops after the projection instead of 12
        # (benchmarks/streaming_step.py measures the step).
        gate, candidate = tf.split(projected_t, 2, axis=-1)
        return h + tf.sigmoid(gate) * (positive_activation(candidate) - h)
