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

"Fast backward" is the one name of this idea: the layer argument ``fast_backward``, the
execution-plan path ``"fast_backward"``, this module and `fast_backward_recurrence`. The
step math is the cell's (`nlpkit.layers.cells`): its ``forward_step`` (saving the gate
activations) and its ``backward_step`` (the gate deltas); this module runs the two loops
around them, the masks and the carried gradients.
"""

import types

import tensorflow as tf


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


def flat(tensor):
    """``(time, batch, width)`` as ``(time * batch, width)``."""
    return tf.reshape(tensor, [-1, tf.shape(tensor)[-1]])


def recurrent_kernel_gradient(h_in, d_pre_activations):
    """The recurrent kernel's gradient over all steps as one matmul, ``h_in^T @ d``."""
    return tf.matmul(flat(h_in), flat(d_pre_activations), transpose_a=True)


def fast_backward_recurrence(
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
        cell: the nlpkit cell (`nlpkit.layers.cells.RecurrentCell`) whose ``forward_step``
            and ``backward_step`` run; `RecurrentCell.fast_backward_inputs` gives it with
            the two weight tensors below.
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
        >>> cell = nlpkit.layers.SimpleRNNCell(4)
        >>> last, seq, states = fast_backward_recurrence(cell, tf.zeros((2, 3, 4)),
        ...     [tf.zeros((2, 4))], tf.eye(4), return_sequences=True)
        >>> seq.shape
        TensorShape([2, 3, 4])
    """
    if not callable(getattr(cell, "backward_step", None)):
        raise ValueError(
            "`cell` must be an nlpkit cell with a hand-written backward step (e.g. "
            f"nlpkit.layers.LSTMCell). Received: cell={cell!r}"
        )
    # The LSTM carries a cell state next to h.
    is_lstm = len(cell.state_size) == 2
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
        saves_gates = cell.saves_gates
        gate_seq = tf.TensorArray(dtype, size=num_steps) if saves_gates else None
        step = cell.forward_step(kernel, bias, recurrent_dropout_mask, saving=True)

        def body(t, h, c, h_seq, c_seq, gate_seq):
            new_states, saved = step(steps[t], [h, c] if is_lstm else [h])
            new_h, new_c = new_states[0], new_states[1] if is_lstm else None
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
    is_lstm = cells_all is not None
    num_steps = tf.shape(steps)[0]
    h_prev_all = _previous(states_all, h0)
    h_in_all = h_prev_all if dropout_mask is None else h_prev_all * dropout_mask
    forward = types.SimpleNamespace(
        gates=gates_all,
        states=states_all,
        cells=cells_all,
        c_prev=_previous(cells_all, c0) if is_lstm else None,
        h_prev=h_prev_all,
        h_in=h_in_all,
    )
    # The cell computes what does not depend on the carried gradient once over all steps
    # (a few large ops); its step keeps only what needs the carried dh (and dc). Masked
    # rows arrive at the step as zeros.
    cell_backward, finish, record_width = cell.backward_step(kernel, forward, dropout_mask)
    d_steps = tf.TensorArray(
        steps.dtype, size=num_steps, element_shape=[steps.shape[1], record_width]
    )

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
    d_steps_all, d_kernel, d_bias = finish(d_steps.stack())

    grads = [_batch_major(d_steps_all, go_backwards), dh0, d_kernel]
    if is_lstm:
        grads.append(dc0)
    if has_recurrent_bias:
        grads.append(d_bias)
    return grads
