"""Tests for nlpkit.layers.scan: the chunked parallel scan against a plain loop, values and gradients."""

import numpy as np
import pytest
import tensorflow as tf

from nlpkit.layers.scan import (
    chunked_scan,
    combine_linear,
    linear_recurrence,
    log_sigmoid,
    softplus,
)


def linear_scan(a, b, chunk):
    """``(running products of a, h)`` from `chunked_scan`, differentiated by TensorFlow."""
    return chunked_scan(combine_linear, (a, b), (1.0, 0.0), chunk)


def loop(a, b, h0=None):
    """``h_t = a_t h_{t-1} + b_t`` step by step (numpy, float64)."""
    h = np.zeros_like(b[:, 0], dtype=np.float64) if h0 is None else h0.astype(np.float64)
    out = []
    for t in range(a.shape[1]):
        h = a[:, t] * h + b[:, t]
        out.append(h)
    return np.stack(out, 1)


# Lengths around the chunk boundaries (chunk 8 here, 64 by default) and several chunks long.
@pytest.mark.parametrize("length", [1, 7, 8, 9, 16, 65, 300])
def test_linear_scan_matches_the_loop(length):
    rng = np.random.default_rng(length)
    a = rng.uniform(0.0, 1.0, (2, length, 3, 2)).astype(np.float32)
    b = rng.normal(size=(2, length, 3, 2)).astype(np.float32)
    cumulative, h = linear_scan(a, b, chunk=8)
    np.testing.assert_allclose(h.numpy(), loop(a, b), rtol=0, atol=1e-5)
    np.testing.assert_allclose(cumulative.numpy(), np.cumprod(a, axis=1), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("length", [1, 9, 65, 300])
def test_static_shape_scan_compiles_with_xla_and_matches_the_loop(length):
    rng = np.random.default_rng(length)
    a = rng.uniform(0.0, 1.0, (2, length, 3)).astype(np.float32)
    b = rng.normal(size=(2, length, 3)).astype(np.float32)
    compiled = tf.function(
        lambda a, b: chunked_scan(combine_linear, (a, b), (1.0, 0.0), 8, static_shapes=True),
        jit_compile=True,
    )
    cumulative, h = compiled(a, b)
    np.testing.assert_allclose(h.numpy(), loop(a, b), rtol=0, atol=1e-5)
    np.testing.assert_allclose(cumulative.numpy(), np.cumprod(a, axis=1), rtol=1e-5, atol=1e-7)
    # The default shift slices by a loop-dependent length, which XLA cannot compile.
    if length > 8:
        with pytest.raises(tf.errors.InvalidArgumentError):
            tf.function(lambda a, b: linear_scan(a, b, chunk=8), jit_compile=True)(a, b)


@pytest.mark.parametrize("static_shapes", [False, True])
@pytest.mark.parametrize("length", [1, 7, 8, 9, 65, 300])
def test_reverse_scan_runs_the_recurrence_from_the_last_step(length, static_shapes):
    # h_t = a_t h_{t+1} + b_t, from h_{T+1} = 0: the loop over the flipped sequence, flipped back.
    rng = np.random.default_rng(length)
    a = rng.uniform(0.0, 1.0, (2, length, 3)).astype(np.float32)
    b = rng.normal(size=(2, length, 3)).astype(np.float32)
    scan = tf.function(
        lambda a, b: chunked_scan(
            combine_linear, (a, b), (1.0, 0.0), 8, static_shapes=static_shapes, reverse=True
        ),
        jit_compile=static_shapes,
    )
    cumulative, h = scan(a, b)
    np.testing.assert_allclose(h.numpy(), loop(a[:, ::-1], b[:, ::-1])[:, ::-1], rtol=0, atol=1e-5)
    expected_cumulative = np.cumprod(a[:, ::-1], axis=1)[:, ::-1]
    np.testing.assert_allclose(cumulative.numpy(), expected_cumulative, rtol=1e-5, atol=1e-7)


SCANS = {
    "linear_scan": lambda a, b: linear_scan(a, b, chunk=8)[1],
    "linear_recurrence": lambda a, b: linear_recurrence(a, b, chunk=8),  # hand-written backward
    "linear_recurrence_default_chunk": linear_recurrence,
}


@pytest.mark.parametrize("length", [1, 37, 100])
@pytest.mark.parametrize("name", sorted(SCANS))
def test_the_gradient_equals_the_loops_gradient(name, length):
    rng = np.random.default_rng(length)
    # a = 0 at some steps: a full reset, which the hand-written backward must pass through.
    a = rng.uniform(0.2, 1.0, (2, length, 3)).astype(np.float32)
    a[:, ::11] = 0.0
    a = tf.constant(a)
    b = tf.constant(rng.normal(size=(2, length, 3)).astype(np.float32))
    weights = tf.constant(rng.normal(size=(2, length, 3)).astype(np.float32))

    def sequential(a, b):
        h, out = tf.zeros_like(b[:, 0]), []
        for t in range(a.shape[1]):
            h = a[:, t] * h + b[:, t]
            out.append(h)
        return tf.stack(out, 1)

    gradients = []
    values = []
    for scan in (SCANS[name], sequential):
        with tf.GradientTape() as tape:
            tape.watch([a, b])
            h = scan(a, b)
            loss = tf.reduce_sum(h * weights)
        values.append(h.numpy())
        gradients.append([g.numpy() for g in tape.gradient(loss, [a, b])])
    np.testing.assert_allclose(values[0], values[1], rtol=1e-5, atol=1e-5)
    for ours, reference in zip(*gradients):
        np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-5)


def test_linear_recurrence_trains_with_a_dynamic_length_inside_a_function():
    @tf.function(input_signature=[tf.TensorSpec([None, None, 2])] * 2)
    def value_and_gradient(a, b):
        with tf.GradientTape() as tape:
            tape.watch([a, b])
            loss = tf.reduce_sum(linear_recurrence(a, b, chunk=4))
        return loss, tape.gradient(loss, [a, b])

    rng = np.random.default_rng(2)
    for length in (3, 4, 13):
        a = rng.uniform(0, 1, (1, length, 2)).astype(np.float32)
        b = rng.normal(size=(1, length, 2)).astype(np.float32)
        loss, (grad_a, grad_b) = value_and_gradient(a, b)
        np.testing.assert_allclose(loss.numpy(), loop(a, b).sum(), rtol=1e-5)
        # dL/db_t = 1 + a_{t+1} + a_{t+1} a_{t+2} + ...: how much of b_t survives to each later step.
        survive = [sum(np.prod(a[:, t + 1 : u + 1], axis=1) for u in range(t, length)) for t in range(length)]
        np.testing.assert_allclose(grad_b.numpy(), np.stack(survive, 1), rtol=1e-5)
    assert len(value_and_gradient._list_all_concrete_functions()) == 1


def test_dynamic_length_inside_a_function():
    # One trace serves every length: the chunk count is computed in the graph.
    scan = tf.function(
        lambda a, b: chunked_scan(combine_linear, (a, b), (1.0, 0.0), chunk=4)[1],
        input_signature=[tf.TensorSpec([None, None, 2])] * 2,
    )
    rng = np.random.default_rng(1)
    for length in (3, 4, 13):
        a = rng.uniform(0, 1, (1, length, 2)).astype(np.float32)
        b = rng.normal(size=(1, length, 2)).astype(np.float32)
        np.testing.assert_allclose(scan(a, b).numpy(), loop(a, b), atol=1e-5)
    assert len(scan._list_all_concrete_functions()) == 1


@pytest.mark.parametrize("chunk", [1, 5, 32])
def test_any_chunk_length_gives_the_same_scan(chunk):
    rng = np.random.default_rng(chunk)
    a = rng.uniform(0.0, 1.0, (2, 23, 3)).astype(np.float32)
    b = rng.normal(size=(2, 23, 3)).astype(np.float32)
    np.testing.assert_allclose(linear_recurrence(a, b, chunk=chunk).numpy(), loop(a, b), atol=1e-5)


@pytest.mark.parametrize("chunk", [0, 2.0, True])
def test_chunk_must_be_a_positive_int(chunk):
    with pytest.raises(ValueError, match=f"Received: chunk={chunk!r}"):
        linear_recurrence(np.ones((1, 3, 1), np.float32), np.ones((1, 3, 1), np.float32), chunk=chunk)


def test_activations_are_stable_and_exact():
    x = np.array([-200.0, -5.0, 0.0, 3.0, 200.0], np.float32)
    np.testing.assert_allclose(softplus(x).numpy(), np.logaddexp(0, x.astype(np.float64)), rtol=1e-6, atol=1e-30)
    np.testing.assert_allclose(log_sigmoid(x).numpy(), -np.logaddexp(0, -x.astype(np.float64)), rtol=1e-6, atol=1e-30)
