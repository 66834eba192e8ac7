"""`nlpkit.layers.tanh_gates`: LSTM gates through one tanh give the activations they replace."""

import numpy as np
import tensorflow as tf

from nlpkit.layers import GRU, LSTM
from nlpkit.layers.tanh_gates import lstm_gate_activations


def _wide_range(shape, seed=0):
    """Pre-activations from ordinary values to saturating ones (|x| up to 60)."""
    rng = np.random.default_rng(seed)
    values = rng.normal(size=shape) * rng.choice([0.5, 3.0, 20.0], size=shape)
    values.flat[:4] = [60.0, -60.0, 0.0, 1e-8]
    return tf.constant(values.astype("float32"))


def test_lstm_gate_activations_match_the_four_activations():
    units = 7
    z = _wide_range((5, 4 * units), seed=1)
    i, f, g, o = (block.numpy() for block in lstm_gate_activations(z))
    blocks = np.split(z.numpy(), 4, axis=-1)
    expected = [tf.sigmoid(blocks[0]), tf.sigmoid(blocks[1]), tf.tanh(blocks[2]), tf.sigmoid(blocks[3])]
    for got, want in zip((i, f, g, o), expected):
        assert got.shape == (5, units)
        np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)


def test_lstm_gate_activations_keep_the_input_dtype():
    gates = lstm_gate_activations(tf.zeros((2, 8), tf.float16))
    assert all(gate.dtype == tf.float16 for gate in gates)
    np.testing.assert_array_equal(gates[0], np.full((2, 2), 0.5, np.float16))


def _compiled_and_plain_outputs(layer, inputs):
    """The layer's inference outputs through its XLA loop and through TensorFlow's kernels."""
    plain = type(layer).from_config({**layer.get_config(), "jit_compile": False})
    plain.build(inputs.shape)
    plain.set_weights(layer.get_weights())
    compiled = tf.function(lambda x: layer(x, training=False))(inputs)
    return compiled, tf.function(lambda x: plain(x, training=False))(inputs)


def test_compiled_loops_with_tanh_gates_match_the_plain_loops_over_long_sequences():
    rng = np.random.default_rng(2)
    inputs = tf.constant(rng.normal(size=(4, 200, 16)).astype("float32"))
    # go_backwards: the compiled loop reads the projection in place, from the last step.
    for layer in (
        LSTM(24, return_sequences=True, jit_compile=True),
        LSTM(24, return_sequences=True, jit_compile=True, go_backwards=True),
        GRU(24, return_sequences=True, jit_compile=True, go_backwards=True),
    ):
        layer.build(inputs.shape)
        compiled, plain = _compiled_and_plain_outputs(layer, inputs)
        np.testing.assert_allclose(compiled, plain, atol=1e-5, rtol=0)
