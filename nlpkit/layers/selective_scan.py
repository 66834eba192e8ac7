"""Mamba's selective scan as one sequential pass over time, with a hand-written backward pass.

The recurrence (Gu & Dao, 2023, Algorithm 2), per sequence, channel ``d`` and state ``n``::

    h_t[d, n] = exp(Δ_t[d] A[d, n]) h_{t-1}[d, n] + Δ_t[d] u_t[d] B_t[n]
    y_t[d]    = sum_n C_t[n] h_t[d, n]

Written as a parallel scan (`nlpkit.layers.scan.linear_recurrence`), every coefficient and
every state is a ``(batch, time, d_inner, d_state)`` tensor in memory: at B=8, T=1000,
d_inner=256, d_state=16 that is 131 MB per tensor, and a training step reads and writes
dozens of them. Gu & Dao's CUDA kernel avoids exactly this by keeping the state in on-chip
memory and never writing the expanded coefficients; `selective_scan` is that idea for a CPU,
where a parallel scan buys nothing over a sequential one on two cores: one loop over time
whose state ``(batch, d_state, d_inner)`` (128 KB at those sizes) stays in cache, computing
the decay, the state and ``y_t`` step by step. Its backward pass is a reverse loop with the
closed-form gradient (`_backward`); it reads the state saved before each step (the one
state-sized tensor per step this keeps, written once) and recomputes the decays.

The state is laid out ``(batch, d_state, d_inner)``, with ``d_inner`` innermost, so every
step's operations run along contiguous memory: that layout measured well ahead of
``(batch, d_inner, d_state)``, and both well ahead of the materialised parallel scan.
Unrolling several steps per loop iteration was slower under XLA. The timings are on the
docs' benchmarks page; ``python benchmarks/parallel_scan_speed.py --layers lstm,mamba``
measures the Mamba layer that uses this loop.

It is meant to run compiled by XLA (`nlpkit.layers.Mamba` uses it when the layer compiles
its sequence computation); an uncompiled loop pays TensorFlow's per-op overhead on every
step, and exports keep the parallel scan.
"""

import tensorflow as tf


def _time_major(tensor):
    return tf.transpose(tensor, [1, 0, 2])


def _forward(delta_t, drive_t, b_t, c_t, a_t, h):
    """Time-major ``(y, final state, state before every step)``; states ``(batch, n, d)``."""
    steps = tf.shape(delta_t)[0]

    def step(t, h, outputs, states_before):
        states_before = states_before.write(t, h)
        decay = tf.exp(delta_t[t][:, None, :] * a_t)
        h = decay * h + drive_t[t][:, None, :] * b_t[t][:, :, None]
        outputs = outputs.write(t, tf.reduce_sum(h * c_t[t][:, :, None], axis=1))
        return t + 1, h, outputs, states_before

    per_step = lambda: tf.TensorArray(delta_t.dtype, size=steps)  # noqa: E731
    _, h, outputs, states_before = tf.while_loop(
        lambda t, *_: t < steps, step, (tf.constant(0), h, per_step(), per_step())
    )
    return outputs.stack(), h, states_before.stack()


def _backward(delta_t, u_t, drive_t, b_t, c_t, a_t, states_before, dy_t, g):
    """Time-major gradients of `selective_scan`, from ``g = dL/dh_T`` back to ``dL/dh_0``.

    ``g`` is carried backwards: ``g_{t-1} = decay_t g_t + C_{t-1} dy_{t-1}``. With it,
    ``dC_t = sum_d dy_t h_t``; ``dlog(decay_t) = g_t h_{t-1} decay_t`` gives ``dA`` (times
    ``Δ``, summed over batch and time) and part of ``dΔ`` (times ``A``, summed over n);
    ``d(drive_t) = g_t`` gives ``dB_t`` (times ``Δu``, summed over d) and, through
    ``sum_n g_t B_t``, the rest of ``dΔ`` (times ``u``) and ``du`` (times ``Δ``).
    """
    steps = tf.shape(delta_t)[0]

    def step(index, g, grad_a, grad_delta, grad_u, grad_b, grad_c):
        t = steps - 1 - index
        h_before = states_before[t]
        decay = tf.exp(delta_t[t][:, None, :] * a_t)
        h = decay * h_before + drive_t[t][:, None, :] * b_t[t][:, :, None]
        grad_c = grad_c.write(t, tf.reduce_sum(dy_t[t][:, None, :] * h, axis=2))
        g = g + dy_t[t][:, None, :] * c_t[t][:, :, None]
        grad_log_decay = g * h_before * decay
        grad_a = grad_a + tf.reduce_sum(grad_log_decay * delta_t[t][:, None, :], axis=0)
        through_b = tf.reduce_sum(g * b_t[t][:, :, None], axis=1)
        grad_delta = grad_delta.write(
            t, tf.reduce_sum(grad_log_decay * a_t, axis=1) + through_b * u_t[t]
        )
        grad_u = grad_u.write(t, through_b * delta_t[t])
        grad_b = grad_b.write(t, tf.reduce_sum(g * drive_t[t][:, None, :], axis=2))
        return index + 1, g * decay, grad_a, grad_delta, grad_u, grad_b, grad_c

    per_step = lambda: tf.TensorArray(delta_t.dtype, size=steps)  # noqa: E731
    _, g, grad_a, grad_delta, grad_u, grad_b, grad_c = tf.while_loop(
        lambda index, *_: index < steps,
        step,
        (tf.constant(0), g, tf.zeros_like(a_t), per_step(), per_step(), per_step(), per_step()),
    )
    return grad_delta.stack(), grad_u.stack(), grad_b.stack(), grad_c.stack(), grad_a, g


def selective_scan(delta, u, b, c, a, h0):
    """``(y, h_T)`` of Mamba's selective state space recurrence, sequentially over time.

    Masked steps are steps with ``Δ = 0``: the decay is 1 and nothing is added, so the
    state is kept (set ``delta`` to 0 there).

    Args:
        delta: float ``(batch, time, d_inner)``, the step sizes ``Δ``.
        u: float ``(batch, time, d_inner)``, the scanned inputs.
        b: float ``(batch, time, d_state)``, the input projections ``B``.
        c: float ``(batch, time, d_state)``, the output projections ``C``.
        a: float ``(d_inner, d_state)``, the (negative) diagonal ``A``.
        h0: float ``(batch, d_inner, d_state)``, the state before the first step.

    Returns:
        ``y`` ``(batch, time, d_inner)`` (without the ``D u`` skip term) and the final
        state ``(batch, d_inner, d_state)``.

    Example:
        >>> y, h = selective_scan(delta, u, b, c, a, tf.zeros([batch, d_inner, d_state]))
    """

    @tf.custom_gradient
    def scan(delta, u, b, c, a, h0):
        # Time-major inputs; the state is (batch, d_state, d_inner), d_inner innermost.
        delta_t, u_t, b_t, c_t = (_time_major(x) for x in (delta, u, b, c))
        drive_t = delta_t * u_t
        a_t = tf.transpose(a)
        y_t, h_final, states_before = _forward(
            delta_t, drive_t, b_t, c_t, a_t, tf.transpose(h0, [0, 2, 1])
        )

        def gradient(dy, dh_final):
            dy_t = tf.zeros_like(y_t) if dy is None else _time_major(dy)
            g = tf.zeros_like(h_final) if dh_final is None else tf.transpose(dh_final, [0, 2, 1])
            grad_delta, grad_u, grad_b, grad_c, grad_a, grad_h0 = _backward(
                delta_t, u_t, drive_t, b_t, c_t, a_t, states_before, dy_t, g
            )
            return (
                _time_major(grad_delta),
                _time_major(grad_u),
                _time_major(grad_b),
                _time_major(grad_c),
                tf.transpose(grad_a),
                tf.transpose(grad_h0, [0, 2, 1]),
            )

        return (_time_major(y_t), tf.transpose(h_final, [0, 2, 1])), gradient

    return scan(*(tf.convert_to_tensor(x) for x in (delta, u, b, c, a, h0)))
