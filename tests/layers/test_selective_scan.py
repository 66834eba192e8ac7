"""`selective_scan`: Mamba's recurrence step by step, and its hand-written gradient."""

import numpy as np
import pytest
import tensorflow as tf

from nlpkit.layers.selective_scan import selective_scan

BATCH, TIME, INNER, STATE = 2, 9, 5, 3


def _arguments(seed=0, dtype="float64"):
    rng = np.random.default_rng(seed)
    delta = rng.uniform(0.01, 0.8, size=(BATCH, TIME, INNER))
    delta[1, 6:] = 0.0  # the second sequence is masked after 6 steps
    return [
        tf.constant(value.astype(dtype))
        for value in (
            delta,
            rng.normal(size=(BATCH, TIME, INNER)),
            rng.normal(size=(BATCH, TIME, STATE)),
            rng.normal(size=(BATCH, TIME, STATE)),
            -rng.uniform(0.5, 3.0, size=(INNER, STATE)),
            rng.normal(size=(BATCH, INNER, STATE)),
        )
    ]


def _reference(delta, u, b, c, a, h0):
    """The recurrence as written in the paper, one NumPy step at a time."""
    h = h0.copy()
    outputs = []
    for t in range(delta.shape[1]):
        decay = np.exp(delta[:, t, :, None] * a)
        h = decay * h + (delta[:, t] * u[:, t])[:, :, None] * b[:, t, None, :]
        outputs.append((h * c[:, t, None, :]).sum(-1))
    return np.stack(outputs, axis=1), h


def _autodiff_loop(delta, u, b, c, a, h0):
    """The same recurrence in TensorFlow ops, differentiated by TensorFlow."""
    h, outputs = h0, []
    for t in range(delta.shape[1]):
        decay = tf.exp(delta[:, t, :, None] * a)
        h = decay * h + (delta[:, t] * u[:, t])[:, :, None] * b[:, t, None, :]
        outputs.append(tf.reduce_sum(h * c[:, t, None, :], -1))
    return tf.stack(outputs, axis=1), h


def _loss(y, h):
    # Weights that differ per position, so every gradient entry matters.
    return tf.reduce_sum(y * tf.sin(tf.range(tf.size(y[0, 0]), dtype=y.dtype))) + tf.reduce_sum(h * h)


def _gradients(scan, arguments):
    with tf.GradientTape() as tape:
        tape.watch(arguments)
        loss = _loss(*scan(*arguments))
    return tape.gradient(loss, arguments)


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "xla"])
def test_outputs_and_final_state_follow_the_recurrence(compiled):
    arguments = _arguments()
    scan = tf.function(selective_scan, jit_compile=True) if compiled else selective_scan
    y, h = scan(*arguments)
    expected_y, expected_h = _reference(*(x.numpy() for x in arguments))
    np.testing.assert_allclose(y.numpy(), expected_y, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h.numpy(), expected_h, rtol=1e-10, atol=1e-12)


def test_a_zero_step_size_keeps_the_state():
    arguments = _arguments()
    _, h = selective_scan(*arguments)
    short = [x[1:, :6] if x.shape.rank == 3 else x for x in arguments[:4]] + [
        arguments[4],
        arguments[5][1:],
    ]
    _, h_short = selective_scan(*short)
    np.testing.assert_allclose(h[1:].numpy(), h_short.numpy(), rtol=1e-12)


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "xla"])
def test_the_hand_written_gradient_equals_autodiff(compiled):
    arguments = _arguments(seed=1)
    scan = tf.function(selective_scan, jit_compile=True) if compiled else selective_scan
    got = _gradients(scan, arguments)
    expected = _gradients(_autodiff_loop, arguments)
    for name, got_gradient, expected_gradient in zip(("delta", "u", "b", "c", "a", "h0"), got, expected):
        assert np.abs(expected_gradient.numpy()).max() > 0, name
        np.testing.assert_allclose(
            got_gradient.numpy(), expected_gradient.numpy(), rtol=1e-9, atol=1e-11, err_msg=name
        )


def test_a_loss_on_only_one_of_the_outputs_gets_the_right_gradients():
    arguments = _arguments(seed=2, dtype="float32")
    for pick in (0, 1):
        with tf.GradientTape() as tape:
            tape.watch(arguments)
            loss = tf.reduce_sum(selective_scan(*arguments)[pick])
        with tf.GradientTape() as reference_tape:
            reference_tape.watch(arguments)
            reference = tf.reduce_sum(_autodiff_loop(*arguments)[pick])
        for got, expected in zip(
            tape.gradient(loss, arguments), reference_tape.gradient(reference, arguments)
        ):
            # Autodiff says None where an input cannot reach the loss (C without y).
            expected = np.zeros(got.shape) if expected is None else expected.numpy()
            np.testing.assert_allclose(got.numpy(), expected, rtol=1e-4, atol=1e-5)
