"""A recurrence with a hand-written backward pass, for training on CPU.

TensorFlow's autodiff through a ``tf.while_loop`` keeps one small op per gate per step
and stacks every intermediate it might need, which makes forward+backward about five
times the forward alone (DESIGN.md §5). Here the forward loop saves only the gate
activations and the states, and the backward is a reverse loop that carries ``dh`` (and
``dc`` for the LSTM) and emits the gradient of the projected inputs at each step. The
recurrent-kernel gradient is then one matmul over all steps, ``[T*B, H]^T @ [T*B, G*H]``,
instead of T small ones inside the loop.

Only the default activations are written out by hand: ``tanh`` for the candidate and
``sigmoid`` for the gates. Layers with any other activation use the autodiff loop in
`nlpkit.layers.recurrent.run_recurrence`.
"""

import tensorflow as tf

# Per-cell width of the projected inputs in units of ``units``.
GATES = {"lstm": 4, "gru": 3, "gru_reset_before": 3, "simple_rnn": 1}


def _time_major(tensor, go_backwards):
    steps = tf.transpose(tensor, [1, 0, 2])
    return tf.reverse(steps, [0]) if go_backwards else steps


def _batch_major(steps, go_backwards):
    if go_backwards:
        steps = tf.reverse(steps, [0])
    return tf.transpose(steps, [1, 0, 2])


def _previous(states, initial):
    """The state before each step: the initial state, then every state but the last."""
    return tf.concat([initial[None], states[:-1]], axis=0)


def _flat(tensor):
    return tf.reshape(tensor, [-1, tf.shape(tensor)[-1]])


def _forward_step(cell, x_t, h, c, recurrent_kernel, recurrent_bias, dropout_mask, units):
    """One step; returns ``(new_h, new_c, saved)`` where ``saved`` is what backward reads."""
    h_in = h if dropout_mask is None else h * dropout_mask
    if cell == "lstm":
        # Splits instead of slices, and the GRU gates in one sigmoid: the loop's cost on a
        # CPU is largely the number of ops per step.
        i, f, g, o = tf.split(x_t + tf.matmul(h_in, recurrent_kernel), 4, axis=1)
        i, f, g, o = tf.sigmoid(i), tf.sigmoid(f), tf.tanh(g), tf.sigmoid(o)
        new_c = f * c + i * g
        return o * tf.tanh(new_c), new_c, tf.concat([i, f, g, o], axis=1)
    if cell == "gru":
        rec = tf.matmul(h_in, recurrent_kernel)
        if recurrent_bias is not None:
            rec = rec + recurrent_bias
        x_zr, x_h = tf.split(x_t, [2 * units, units], axis=1)
        rec_zr, rec_h = tf.split(rec, [2 * units, units], axis=1)
        zr = tf.sigmoid(x_zr + rec_zr)
        z, r = tf.split(zr, 2, axis=1)
        n = tf.tanh(x_h + r * rec_h)
        return z * h + (1.0 - z) * n, None, tf.concat([zr, n, rec_h], axis=1)
    if cell == "gru_reset_before":
        rec = tf.matmul(h_in, recurrent_kernel[:, : 2 * units])
        z = tf.sigmoid(x_t[:, :units] + rec[:, :units])
        r = tf.sigmoid(x_t[:, units : 2 * units] + rec[:, units:])
        n = tf.tanh(x_t[:, 2 * units :] + tf.matmul(r * h_in, recurrent_kernel[:, 2 * units :]))
        return z * h + (1.0 - z) * n, None, tf.concat([z, r, n], axis=1)
    # The SimpleRNN's output is its only activation, and the state sequence holds it.
    new_h = tf.tanh(x_t + tf.matmul(h_in, recurrent_kernel))
    return new_h, None, None


def fast_recurrence(
    cell,
    projected,
    initial_states,
    recurrent_kernel,
    recurrent_bias=None,
    mask=None,
    recurrent_dropout_mask=None,
    go_backwards=False,
    return_sequences=False,
    zero_output_for_mask=False,
):
    """Same contract as `nlpkit.layers.recurrent.run_recurrence`, with a custom gradient.

    Args:
        cell: one of ``"lstm"``, ``"gru"`` (reset after), ``"gru_reset_before"``,
            ``"simple_rnn"``.
        projected: float tensor ``(batch, time, gates * units)``, inputs already multiplied
            by the input kernel (and input bias added).
        initial_states: list of ``(batch, units)`` tensors, ``[h]`` or ``[h, c]`` for LSTM.
        recurrent_kernel: tensor ``(units, gates * units)`` read from the layer's weight.
        recurrent_bias: optional ``(gates * units,)`` tensor, the GRU ``reset_after``
            recurrent bias; ``None`` for every other cell.
        mask: optional bool ``(batch, time)``; masked steps carry the states unchanged.
        recurrent_dropout_mask: optional ``(batch, units)`` multiplier on the hidden state
            fed to the recurrent matmul; treated as a constant.
        go_backwards / return_sequences / zero_output_for_mask: as in ``run_recurrence``.

    Returns:
        ``(last_output, outputs_or_None, final_states)``.

    Example:
        >>> last, seq, states = fast_recurrence("simple_rnn", tf.zeros((2, 3, 4)),
        ...     [tf.zeros((2, 4))], tf.eye(4), return_sequences=True)
        >>> seq.shape
        TensorShape([2, 3, 4])
    """
    if cell not in GATES:
        raise ValueError(f"Unknown cell {cell!r}; choose one of {sorted(GATES)}.")
    is_lstm = cell == "lstm"
    units = recurrent_kernel.shape[0]
    dtype = projected.dtype
    steps_mask = None
    if mask is not None:
        steps_mask = _time_major(tf.cast(mask, tf.bool)[:, :, None], go_backwards)
    inputs = [projected, initial_states[0], recurrent_kernel]
    if is_lstm:
        inputs.append(initial_states[1])
    if recurrent_bias is not None:
        inputs.append(recurrent_bias)

    @tf.custom_gradient
    def recurrence(*args):
        projected, h0, kernel = args[0], args[1], args[2]
        c0 = args[3] if is_lstm else None
        bias = args[-1] if recurrent_bias is not None else None
        steps = _time_major(projected, go_backwards)
        num_steps = tf.shape(steps)[0]
        state_shape = h0.shape
        h_seq = tf.TensorArray(dtype, size=num_steps, element_shape=state_shape)
        c_seq = None
        if is_lstm:
            c_seq = tf.TensorArray(dtype, size=num_steps, element_shape=state_shape)
        saves_gates = cell != "simple_rnn"
        gate_seq = tf.TensorArray(dtype, size=num_steps) if saves_gates else None

        def body(t, h, c, h_seq, c_seq, gate_seq):
            new_h, new_c, saved = _forward_step(
                cell, steps[t], h, c, kernel, bias, recurrent_dropout_mask, units
            )
            if steps_mask is not None:
                keep = steps_mask[t]
                new_h = tf.where(keep, new_h, h)
                if is_lstm:
                    new_c = tf.where(keep, new_c, c)
            h_seq = h_seq.write(t, new_h)
            if is_lstm:
                c_seq = c_seq.write(t, new_c)
            if saves_gates:
                gate_seq = gate_seq.write(t, saved)
            return t + 1, new_h, new_c if is_lstm else c, h_seq, c_seq, gate_seq

        # TensorArrays cannot be None inside loop variables; an empty tuple stands in.
        loop_vars = (
            tf.constant(0),
            h0,
            c0 if is_lstm else (),
            h_seq,
            c_seq if is_lstm else (),
            gate_seq if saves_gates else (),
        )
        _, h_last, c_last, h_seq, c_seq, gate_seq = tf.while_loop(
            lambda t, *_: t < num_steps, body, loop_vars, parallel_iterations=32
        )
        states_all = h_seq.stack()
        cells_all = c_seq.stack() if is_lstm else None
        gates_all = gate_seq.stack() if saves_gates else None

        outputs = [h_last]
        if is_lstm:
            outputs.append(c_last)
        if return_sequences:
            sequence = states_all
            if zero_output_for_mask and steps_mask is not None:
                sequence = tf.where(steps_mask, sequence, tf.zeros_like(sequence))
            # Keras keeps a backwards layer's outputs in processing order.
            outputs.append(tf.transpose(sequence, [1, 0, 2]))

        def grad(*upstream):
            upstream = [
                tf.zeros_like(out) if up is None else up for up, out in zip(upstream, outputs)
            ]
            d_h_last = upstream[0]
            d_c_last = upstream[1] if is_lstm else None
            d_sequence = None
            if return_sequences:
                d_sequence = tf.transpose(upstream[-1], [1, 0, 2])
            return _backward(
                cell,
                units,
                steps,
                h0,
                c0,
                kernel,
                states_all,
                cells_all,
                gates_all,
                steps_mask,
                recurrent_dropout_mask,
                d_h_last,
                d_c_last,
                d_sequence,
                zero_output_for_mask,
                go_backwards,
                bias is not None,
            )

        return outputs, grad

    outputs = recurrence(*inputs)
    final_states = [outputs[0], outputs[1]] if is_lstm else [outputs[0]]
    sequence = outputs[-1] if return_sequences else None
    return final_states[0], sequence, final_states


def _backward(
    cell,
    units,
    steps,
    h0,
    c0,
    kernel,
    states_all,
    cells_all,
    gates_all,
    steps_mask,
    dropout_mask,
    d_h_last,
    d_c_last,
    d_sequence,
    zero_output_for_mask,
    go_backwards,
    has_recurrent_bias,
):
    """The reverse loop; returns gradients in the order of ``recurrence``'s inputs."""
    is_lstm = cell == "lstm"
    num_steps = tf.shape(steps)[0]
    h_prev_all = _previous(states_all, h0)
    h_in_all = h_prev_all if dropout_mask is None else h_prev_all * dropout_mask
    # Elementwise work that does not depend on the carried gradient runs once over all
    # steps as a few large ops; the loop keeps only what needs the carried dh (and dc).
    kernel_t = tf.transpose(kernel)
    if is_lstm:
        i, f, g, o = (gates_all[:, :, k * units : (k + 1) * units] for k in range(4))
        tanh_c = tf.tanh(cells_all)
        c_prev_all = _previous(cells_all, c0)
        from_h = o * (1.0 - tf.square(tanh_c))
        # d(pre-activation) = [dc, dc, dc, dh] * these, gate by gate.
        gate_factors = tf.concat(
            [
                g * i * (1.0 - i),
                c_prev_all * f * (1.0 - f),
                i * (1.0 - tf.square(g)),
                tanh_c * o * (1.0 - o),
            ],
            axis=2,
        )
    elif cell == "simple_rnn":
        from_h = 1.0 - tf.square(states_all)
    else:
        z, r, n = (gates_all[:, :, k * units : (k + 1) * units] for k in range(3))
        # d(new h)/d(pre-activation) of the update gate and of the candidate.
        z_factor = (h_prev_all - n) * z * (1.0 - z)
        n_factor = (1.0 - z) * (1.0 - tf.square(n))
        if cell == "gru":
            rec_h = gates_all[:, :, 3 * units :]
            r_factor = n_factor * rec_h * r * (1.0 - r)
            rec_factors = tf.concat([z_factor, r_factor, n_factor * r], axis=2)
        else:
            r_factor = h_in_all * r * (1.0 - r)
            kernel_zr_t = tf.transpose(kernel[:, : 2 * units])
            kernel_h_t = tf.transpose(kernel[:, 2 * units :])
    record_width = units if cell == "gru" else steps.shape[-1]
    d_steps = tf.TensorArray(
        steps.dtype, size=num_steps, element_shape=[steps.shape[1], record_width]
    )

    def cell_backward(t, dh, dc):
        """``(record, dh_prev, dc_prev)`` for one step; masked rows arrive as zeros.

        ``record`` is d(projected inputs) of the step, except for the reset-after GRU
        where it is ``dh`` and the input gradient is rebuilt after the loop.
        """
        if is_lstm:
            dc = dc + dh * from_h[t]
            dz = tf.concat([dc, dc, dc, dh], axis=1) * gate_factors[t]
            dh_in = tf.matmul(dz, kernel_t)
            if dropout_mask is not None:
                dh_in = dh_in * dropout_mask
            return dz, dh_in, dc * f[t]
        if cell == "simple_rnn":
            dz = dh * from_h[t]
            dh_in = tf.matmul(dz, kernel_t)
            return dz, (dh_in if dropout_mask is None else dh_in * dropout_mask), None
        if cell == "gru":
            d_rec = tf.concat([dh, dh, dh], axis=1) * rec_factors[t]
            dh_in = tf.matmul(d_rec, kernel_t)
            record = dh
        else:
            da_n = dh * n_factor[t]
            d_reset_h = tf.matmul(da_n, kernel_h_t)
            d_zr = tf.concat([dh * z_factor[t], d_reset_h * r_factor[t]], axis=1)
            dh_in = tf.matmul(d_zr, kernel_zr_t) + d_reset_h * r[t]
            record = tf.concat([d_zr, da_n], axis=1)
        if dropout_mask is not None:
            dh_in = dh_in * dropout_mask
        return record, dh * z[t] + dh_in, None

    def body(done, dh_carry, dc_carry, d_steps):
        t = num_steps - 1 - done
        # Without zero_output_for_mask a step's output is its carried state, so the
        # output gradient joins the carry; with it, masked steps output constant zeros.
        d_state = dh_carry
        d_new = dh_carry
        if d_sequence is not None:
            if zero_output_for_mask:
                d_new = dh_carry + d_sequence[t]
            else:
                d_state = dh_carry + d_sequence[t]
                d_new = d_state
        dc_new = dc_carry
        if steps_mask is not None:
            keep = steps_mask[t]
            zeros = tf.zeros_like(dh_carry)
            d_new = tf.where(keep, d_new, zeros)
            passthrough = tf.where(keep, zeros, d_state)
            if is_lstm:
                dc_new = tf.where(keep, dc_carry, zeros)
                dc_passthrough = tf.where(keep, zeros, dc_carry)
        dz, dh_prev, dc_prev = cell_backward(t, d_new, dc_new)
        if steps_mask is not None:
            dh_prev = dh_prev + passthrough
            if is_lstm:
                dc_prev = dc_prev + dc_passthrough
        d_steps = d_steps.write(t, dz)
        return done + 1, dh_prev, dc_prev if is_lstm else dc_carry, d_steps

    _, dh0, dc0, d_steps = tf.while_loop(
        lambda t, *_: t < num_steps,
        body,
        (tf.constant(0), d_h_last, d_c_last if is_lstm else (), d_steps),
        parallel_iterations=32,
    )
    d_steps_all = d_steps.stack()

    if cell == "gru":
        dh_all = tf.concat([d_steps_all] * 3, axis=2)
        d_rec_all = dh_all * rec_factors
        d_steps_all = dh_all * tf.concat([z_factor, r_factor, n_factor], axis=2)
        d_kernel = tf.matmul(_flat(h_in_all), _flat(d_rec_all), transpose_a=True)
        d_bias = tf.reduce_sum(_flat(d_rec_all), axis=0)
    elif cell == "gru_reset_before":
        d_kernel = tf.concat(
            [
                tf.matmul(
                    _flat(h_in_all), _flat(d_steps_all[:, :, : 2 * units]), transpose_a=True
                ),
                tf.matmul(
                    _flat(r * h_in_all), _flat(d_steps_all[:, :, 2 * units :]), transpose_a=True
                ),
            ],
            axis=1,
        )
    else:
        d_kernel = tf.matmul(_flat(h_in_all), _flat(d_steps_all), transpose_a=True)

    grads = [_batch_major(d_steps_all, go_backwards), dh0, d_kernel]
    if is_lstm:
        grads.append(dc0)
    if has_recurrent_bias:
        grads.append(d_bias)
    return grads
