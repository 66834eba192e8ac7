"""Mamba (Gu & Dao, 2023, "Mamba: Linear-Time Sequence Modeling with Selective State Spaces").

The selective state-space block (the paper's Figure 3 and Algorithm 2): the input is
projected to ``x`` and a gate ``z``; ``x`` runs through a causal depthwise convolution and
SiLU; from it come the input-dependent step size ``Δ = softplus(dt_proj(x_proj(x)))`` (a
low-rank projection), ``B`` and ``C``; the diagonal state ``h`` (``d_state`` values per
channel) follows ``h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t x_t`` with ``A = -exp(A_log)``; the
output ``y_t = C_t h_t + D x_t`` is gated by ``SiLU(z)`` and projected back.

Every coefficient of that recurrence is known before it runs, so the full-sequence form
can compute it with a parallel scan (`nlpkit.layers.scan.linear_recurrence`; ``exp(Δ A) <= 1``
keeps the linear-space scan stable, and ``Δ B x`` is signed, which rules out the log-space
form): it does so in eager calls and exports. Where the layer compiles its sequence
computation with XLA (``jit_compile``), it runs `nlpkit.layers.selective_scan` instead, one
cache-resident pass over time that never materialises the ``(batch, time, d_inner,
d_state)`` coefficients (several times faster for forward + backward at T=1000 on a CPU;
``python benchmarks/parallel_scan_speed.py --layers lstm,mamba`` measures the layer).
The step form carries two states per sequence, flattened to ``(batch, size)`` as every
nlpkit state is: the convolution window (the last ``d_conv - 1`` conv inputs, oldest first)
and the SSM state ``(d_inner, d_state)`` — O(1) work per token.
"""

import math

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from nlpkit.layers.recurrent import RecurrentLayerBase, compute_dtype_scope, read_weight
from nlpkit.layers.scan import linear_recurrence, softplus
from nlpkit.layers.selective_scan import selective_scan


def _silu(x):
    return x * tf.sigmoid(x)


def _inverse_softplus(y):
    return y + np.log(-np.expm1(-y))


@keras.saving.register_keras_serializable(package="nlpkit")
class Mamba(RecurrentLayerBase):
    """The Mamba selective state-space block as an nlpkit recurrent layer.

    Maps ``(batch, time, input_dim)`` to ``(batch, time, units)`` (or the last step's
    output) through an inner width ``d_inner = expand * units``. There is no residual
    connection or normalisation inside: stack blocks with your own (the input width may
    differ from ``units``). Initialisation follows the reference implementation: ``A`` is
    S4D-real (``A_log[:, n] = log(n + 1)``), ``D`` is one, and the ``dt_proj`` bias is the
    inverse softplus of step sizes drawn log-uniformly from ``[dt_min, dt_max]``.

    Masks must be right-padded; masked steps keep both states (the convolution window does
    not slide over them) and repeat the previous output (zeros before the first real step,
    or with ``zero_output_for_mask``). ``go_backwards`` with a mask reads each sequence's
    real steps in reverse, as the Keras layers do.

    Args:
        units: int, output width (``d_model`` in the paper).
        d_state: int, default 16. State size per channel (``N``).
        d_conv: int >= 2, default 4. Width of the causal depthwise convolution.
        expand: int, default 2. ``d_inner = expand * units``.
        dt_rank: int or None, default None. Rank of the ``Δ`` projection; None means
            ``ceil(units / 16)``.
        dt_min: float, default 0.001. Smallest initial step size.
        dt_max: float, default 0.1. Largest initial step size.
        dt_init_floor: float, default 1e-4. Lower clamp of the initial step sizes.
        use_bias: bool, default False. Biases on the input and output projections.
        use_conv_bias: bool, default True. Bias on the convolution.
        kernel_initializer: default "glorot_uniform". Initializer of the input, ``x_proj``
            and output projections.
        dropout: float in [0, 1), default 0. Dropout on the inputs, one mask per sequence.
        seed: optional int, seed of the dropout masks and of the ``dt_proj`` initialisation.
        **kwargs: return_sequences, return_state, go_backwards, stateful,
            zero_output_for_mask (see `nlpkit.layers.recurrent.RecurrentLayerBase`) and
            `keras.layers.Layer` arguments.

    Example:
        >>> layer = nlpkit.layers.Mamba(32, return_sequences=True)
        >>> x = np.random.normal(size=(1, 200, 8)).astype("float32")
        >>> full = layer(x)  # parallel scan, (1, 200, 32)
        >>> states = layer.get_initial_state(1)  # [conv window, ssm state]
        >>> [int(s.shape[1]) for s in states]
        [192, 1024]
        >>> y, states = layer.step(x[:, 0], states)  # y == full[:, 0]
    """

    # Names of the two states in streaming signatures (`nlpkit.export.StreamingStack`).
    state_parts = ("conv", "ssm")

    def __init__(
        self,
        units,
        d_state=16,
        d_conv=4,
        expand=2,
        dt_rank=None,
        dt_min=0.001,
        dt_max=0.1,
        dt_init_floor=1e-4,
        use_bias=False,
        use_conv_bias=True,
        kernel_initializer="glorot_uniform",
        dropout=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value, smallest in (
            ("units", units, 1),
            ("d_state", d_state, 1),
            ("d_conv", d_conv, 2),
            ("expand", expand, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < smallest:
                raise ValueError(f"`{name}` must be an int >= {smallest}. Received: {name}={value!r}")
        if dt_rank is not None and (
            isinstance(dt_rank, bool) or not isinstance(dt_rank, int) or dt_rank < 1
        ):
            raise ValueError(f"`dt_rank` must be None or a positive int. Received: dt_rank={dt_rank!r}")
        if not 0.0 < dt_min <= dt_max:
            raise ValueError(
                f"Need 0 < dt_min <= dt_max. Received: dt_min={dt_min!r}, dt_max={dt_max!r}"
            )
        if not dt_init_floor > 0.0:
            raise ValueError(f"`dt_init_floor` must be > 0. Received: dt_init_floor={dt_init_floor!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be a float in [0, 1). Received: dropout={dropout!r}")
        for name, value in (("use_bias", use_bias), ("use_conv_bias", use_conv_bias)):
            if not isinstance(value, bool):
                raise ValueError(f"`{name}` must be a bool. Received: {name}={value!r}")
        self.units = units
        self.d_state = d_state
        self.d_conv = d_conv
        self.expand = expand
        self.dt_rank = dt_rank
        self.dt_min = float(dt_min)
        self.dt_max = float(dt_max)
        self.dt_init_floor = float(dt_init_floor)
        self.use_bias = use_bias
        self.use_conv_bias = use_conv_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.dropout = float(dropout)
        self.seed = seed
        self.d_inner = expand * units
        self.resolved_dt_rank = dt_rank if dt_rank is not None else math.ceil(units / 16)
        if self.dropout:
            self.seed_generator = keras.random.SeedGenerator(seed)

    @property
    def state_size(self):
        """``[(d_conv - 1) * d_inner, d_inner * d_state]``: conv window, then SSM state."""
        return [(self.d_conv - 1) * self.d_inner, self.d_inner * self.d_state]

    # -- weights ------------------------------------------------------------------------------

    def build(self, input_shape):
        inner, rank, state = self.d_inner, self.resolved_dt_rank, self.d_state
        self.in_kernel = self.add_weight(
            shape=(input_shape[-1], 2 * inner), initializer=self.kernel_initializer, name="in_kernel"
        )
        self.in_bias = (
            self.add_weight(shape=(2 * inner,), initializer="zeros", name="in_bias")
            if self.use_bias
            else None
        )
        # PyTorch's Conv1d default, as in the reference: uniform(+-1/sqrt(fan_in)), fan_in = d_conv.
        bound = 1.0 / math.sqrt(self.d_conv)
        self.conv_kernel = self.add_weight(
            shape=(self.d_conv, inner),
            initializer=keras.initializers.RandomUniform(-bound, bound, seed=self.seed),
            name="conv_kernel",
        )
        self.conv_bias = (
            self.add_weight(
                shape=(inner,),
                initializer=keras.initializers.RandomUniform(-bound, bound, seed=self.seed),
                name="conv_bias",
            )
            if self.use_conv_bias
            else None
        )
        self.x_kernel = self.add_weight(
            shape=(inner, rank + 2 * state), initializer=self.kernel_initializer, name="x_kernel"
        )
        dt_bound = rank**-0.5
        self.dt_kernel = self.add_weight(
            shape=(rank, inner),
            initializer=keras.initializers.RandomUniform(-dt_bound, dt_bound, seed=self.seed),
            name="dt_kernel",
        )
        self.dt_bias = self.add_weight(shape=(inner,), initializer=self._dt_bias_initial, name="dt_bias")
        self.A_log = self.add_weight(shape=(inner, state), initializer=self._a_log_initial, name="A_log")
        self.D = self.add_weight(shape=(inner,), initializer="ones", name="D")
        self.out_kernel = self.add_weight(
            shape=(inner, self.units), initializer=self.kernel_initializer, name="out_kernel"
        )
        self.out_bias = (
            self.add_weight(shape=(self.units,), initializer="zeros", name="out_bias")
            if self.use_bias
            else None
        )
        super().build(input_shape)

    def _dt_bias_initial(self, shape, dtype=None):
        # Step sizes log-uniform in [dt_min, dt_max], so that softplus(bias) starts there.
        rng = np.random.default_rng(self.seed)
        log_dt = rng.uniform(math.log(self.dt_min), math.log(self.dt_max), size=shape)
        dt = np.maximum(np.exp(log_dt), self.dt_init_floor)
        return ops.convert_to_tensor(_inverse_softplus(dt), dtype=dtype or "float32")

    def _a_log_initial(self, shape, dtype=None):
        # S4D-real: A[:, n] = -(n + 1) for every channel.
        values = np.log(np.broadcast_to(np.arange(1, shape[1] + 1, dtype=np.float64), shape))
        return ops.convert_to_tensor(values, dtype=dtype or "float32")

    def _read_weights(self):
        # Read once, outside any loop (see `nlpkit.layers.recurrent.read_weight`).
        names = (
            "in_kernel", "in_bias", "conv_kernel", "conv_bias", "x_kernel", "dt_kernel",
            "dt_bias", "A_log", "D", "out_kernel", "out_bias",
        )
        weights = {}
        for name in names:
            weight = getattr(self, name)
            weights[name] = None if weight is None else read_weight(weight)
        return weights

    # -- the pieces shared by both forms ------------------------------------------------------

    @staticmethod
    def _dense(x, kernel, bias):
        y = ops.matmul(x, kernel)
        return y if bias is None else y + bias

    def _selection(self, w, u):
        """``(Δ, B, C)`` from the conv output ``u`` (``(..., d_inner)``)."""
        rank, state = self.resolved_dt_rank, self.d_state
        projected = self._dense(u, w["x_kernel"], None)
        low_rank = projected[..., :rank]
        b = projected[..., rank : rank + state]
        c = projected[..., rank + state :]
        delta = softplus(self._dense(low_rank, w["dt_kernel"], w["dt_bias"]))
        return delta, b, c

    def _output(self, w, y, u, z):
        y = (y + w["D"] * u) * _silu(z)
        return self._dense(y, w["out_kernel"], w["out_bias"])

    # -- one step -----------------------------------------------------------------------------

    def step(self, inputs_t, states):
        with compute_dtype_scope(self):
            inputs_t = ops.cast(inputs_t, self.compute_dtype)
            states = [ops.cast(state, self.compute_dtype) for state in states]
            return self._step_in_compute_dtype(inputs_t, states)

    def _step_in_compute_dtype(self, inputs_t, states):
        w = self._read_weights()
        inner, state = self.d_inner, self.d_state
        window = tf.reshape(states[0], [-1, self.d_conv - 1, inner])
        h = tf.reshape(states[1], [-1, inner, state])
        xz = self._dense(inputs_t, w["in_kernel"], w["in_bias"])
        x, z = xz[:, :inner], xz[:, inner:]
        taps = tf.concat([window, tf.expand_dims(x, 1)], axis=1)
        conv = tf.reduce_sum(taps * w["conv_kernel"], axis=1)
        if w["conv_bias"] is not None:
            conv = conv + w["conv_bias"]
        u = _silu(conv)
        delta, b, c = self._selection(w, u)
        a = -tf.exp(w["A_log"])
        decay = tf.exp(tf.expand_dims(delta, -1) * a)
        h = decay * h + tf.expand_dims(delta * u, -1) * tf.expand_dims(b, 1)
        y = tf.reduce_sum(h * tf.expand_dims(c, 1), axis=-1)
        output = self._output(w, y, u, z)
        new_states = [
            tf.reshape(taps[:, 1:], [-1, (self.d_conv - 1) * inner]),
            tf.reshape(h, [-1, inner * state]),
        ]
        return output, new_states

    # -- the whole sequence -------------------------------------------------------------------

    def call(self, inputs, mask=None, initial_state=None, training=False):
        if training and self.dropout > 0:
            keep = keras.random.dropout(
                ops.ones_like(inputs[:, :1, :]), self.dropout, seed=self.seed_generator
            )
            inputs = inputs * keep
        states = self._initial_states(inputs, initial_state, inputs.dtype)
        from_states = initial_state is not None or self.stateful
        outputs, final_states = self._call_compiled_where_chosen(
            self._scan, inputs, mask, states, from_states
        )
        return self._finish(
            outputs[:, -1],
            outputs if self.return_sequences else None,
            list(final_states),
            mask,
            initial_state,
        )

    def _scan(self, inputs, mask, states, from_states, static_shapes):
        """``(outputs, [final window, final state])`` from the (dropped-out) inputs and states."""
        window_0, h_0 = states
        w = self._read_weights()
        inner, state, taps = self.d_inner, self.d_state, self.d_conv
        time = tf.shape(inputs)[1]
        lengths = None
        if mask is not None:
            lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
        # Everything below reads the real steps first (right-padded): backwards, each
        # sequence's real steps are reversed in place and the outputs put back at the end.
        if self.go_backwards:
            if lengths is None:
                inputs = tf.reverse(inputs, [1])
            else:
                inputs = tf.reverse_sequence(inputs, lengths, seq_axis=1, batch_axis=0)
        valid = None
        if lengths is not None:
            valid = tf.expand_dims(tf.range(time), 0) < tf.expand_dims(lengths, 1)

        xz = self._dense(inputs, w["in_kernel"], w["in_bias"])
        x, z = xz[..., :inner], xz[..., inner:]
        # Causal depthwise convolution over [previous window, x]: output t reads the
        # d_conv inputs ending at t.
        extended = tf.concat([tf.reshape(window_0, [-1, taps - 1, inner]), x], axis=1)
        conv = extended[:, : time] * w["conv_kernel"][0]
        for k in range(1, taps):
            conv = conv + extended[:, k : k + time] * w["conv_kernel"][k]
        if w["conv_bias"] is not None:
            conv = conv + w["conv_bias"]
        u = _silu(conv)
        delta, b, c = self._selection(w, u)
        a = -tf.exp(w["A_log"])
        if static_shapes:
            # Compiled by XLA: one pass over time with the state in cache, instead of the
            # parallel scan's (batch, time, d_inner, d_state) tensors (see
            # `nlpkit.layers.selective_scan`). A masked step is a step with Δ = 0.
            if valid is not None:
                delta = tf.where(valid[:, :, None], delta, tf.zeros_like(delta))
            y, final_h = selective_scan(
                delta, u, b, c, a, tf.reshape(h_0, [-1, inner, state])
            )
        else:
            y, final_h = self._parallel_scan(delta, u, b, c, a, h_0, valid, from_states)
        outputs = self._output(w, y, u, z)

        final_h = tf.reshape(final_h, [-1, inner * state])
        if lengths is None:
            final_window = extended[:, -(taps - 1) :]
        else:
            # The last d_conv - 1 conv inputs up to each sequence's last real step.
            positions = tf.expand_dims(lengths, 1) + tf.range(taps - 1)[None]
            final_window = tf.gather(extended, positions, axis=1, batch_dims=1)
        final_window = tf.reshape(final_window, [-1, (taps - 1) * inner])

        if lengths is not None:
            # Masked steps repeat the output of the last real step before them.
            last_real = tf.maximum(lengths - 1, 0)
            held = tf.gather(outputs, last_real, axis=1, batch_dims=1)
            outputs = tf.where(tf.expand_dims(valid, -1), outputs, tf.expand_dims(held, 1))
            outputs = tf.where(
                tf.reshape(lengths > 0, [-1, 1, 1]), outputs, tf.zeros_like(outputs)
            )
            if self.go_backwards:
                # Back to processing order: the padding comes first there, with zero outputs.
                outputs = tf.reverse(tf.reverse_sequence(outputs, lengths, seq_axis=1, batch_axis=0), [1])
                started = tf.expand_dims(tf.range(time), 0) >= tf.expand_dims(time - lengths, 1)
                outputs = tf.where(tf.expand_dims(started, -1), outputs, tf.zeros_like(outputs))
            if self.zero_output_for_mask:
                processing_mask = tf.cast(mask, tf.bool)
                if self.go_backwards:
                    processing_mask = tf.reverse(processing_mask, [1])
                outputs = tf.where(
                    tf.expand_dims(processing_mask, -1), outputs, tf.zeros_like(outputs)
                )
        return outputs, [final_window, final_h]

    def _parallel_scan(self, delta, u, b, c, a, h_0, valid, from_states):
        """``(y, final state)`` of the recurrence with `linear_recurrence`, any length, no XLA."""
        inner, state = self.d_inner, self.d_state
        log_decay = tf.expand_dims(delta, -1) * a
        drive = tf.expand_dims(delta * u, -1) * tf.expand_dims(b, 2)
        if valid is not None:
            # Masked steps keep the state: decay 1, drive 0.
            keep = valid[:, :, None, None]
            log_decay = tf.where(keep, log_decay, tf.zeros_like(log_decay))
            drive = tf.where(keep, drive, tf.zeros_like(drive))
        h = linear_recurrence(tf.exp(log_decay), drive)
        if from_states:
            # h_0's share: the running product of the decays, summed in log space.
            cumulative_decay = tf.exp(tf.cumsum(log_decay, axis=1))
            h = h + cumulative_decay * tf.expand_dims(tf.reshape(h_0, [-1, inner, state]), 1)
        y = tf.reduce_sum(h * tf.expand_dims(c, 2), axis=-1)
        return y, h[:, -1]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "d_state": self.d_state,
                "d_conv": self.d_conv,
                "expand": self.expand,
                "dt_rank": self.dt_rank,
                "dt_min": self.dt_min,
                "dt_max": self.dt_max,
                "dt_init_floor": self.dt_init_floor,
                "use_bias": self.use_bias,
                "use_conv_bias": self.use_conv_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "dropout": self.dropout,
                "seed": self.seed,
            }
        )
        return config
