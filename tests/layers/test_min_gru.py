"""MinGRU's math against a numpy transcription of the paper (Feng et al., 2024, Algorithm 2/4)."""

import keras
import numpy as np
import tensorflow as tf

from nlpkit.layers import MinGRU
from nlpkit.layers.min_gru import log_positive_activation, positive_activation


def g(x):
    return np.where(x >= 0, x + 0.5, 1.0 / (1.0 + np.exp(-x)))


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def reference_min_gru(x, kernel, bias, h0):
    """Sequential minGRU: z = sigmoid(x W_z), h~ = g(x W_h), h = (1 - z) h + z h~."""
    units = kernel.shape[1] // 2
    h, outputs = h0.astype(np.float64), []
    for t in range(x.shape[1]):
        projected = x[:, t] @ kernel + bias
        z, candidate = sigmoid(projected[:, :units]), g(projected[:, units:])
        h = (1 - z) * h + z * candidate
        outputs.append(h)
    return np.stack(outputs, 1)


def test_matches_the_paper_with_fixed_weights():
    layer = MinGRU(
        3,
        return_sequences=True,
        kernel_initializer=keras.initializers.Constant(0.3),
        bias_initializer=keras.initializers.Constant(-0.2),
    )
    x = np.linspace(-2, 2, 2 * 50 * 2).reshape(2, 50, 2).astype(np.float32)
    h0 = np.array([[1.0, -1.0, 0.0], [0.5, 2.0, -3.0]], np.float32)
    ours = layer(x, initial_state=[h0]).numpy()
    assert layer.kernel.shape == (2, 6) and layer.bias.shape == (6,)
    expected = reference_min_gru(x, np.full((2, 6), 0.3), np.full(6, -0.2), h0)
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)


def test_random_weights_and_zero_start_match_the_paper():
    rng = np.random.default_rng(0)
    layer = MinGRU(5, return_sequences=True)
    x = rng.normal(size=(3, 130, 4)).astype(np.float32)
    layer(x[:, :1])
    kernel, bias = rng.normal(size=(4, 10)), rng.normal(size=10)
    layer.set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
    expected = reference_min_gru(x, kernel, bias, np.zeros((3, 5)))
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-4, atol=1e-5)


def test_g_is_positive_and_continuous_and_its_log_is_exact():
    x = np.array([-80.0, -3.0, -1e-6, 0.0, 1e-6, 2.0, 1e4], np.float32)
    values = positive_activation(x).numpy()
    assert np.all(values > 0)
    np.testing.assert_allclose(values[2:5], 0.5, atol=1e-6)
    np.testing.assert_allclose(log_positive_activation(x).numpy(), np.log(g(x.astype(np.float64))), rtol=1e-6)


def test_no_recurrent_kernel_and_the_config_holds_every_argument():
    layer = MinGRU(4, use_bias=False, dropout=0.2, seed=3, go_backwards=True, stateful=False)
    layer.build((None, None, 7))
    assert [w.name for w in layer.weights] == ["kernel"]
    config = layer.get_config()
    assert {k: config[k] for k in ("units", "use_bias", "dropout", "seed", "go_backwards")} == {
        "units": 4, "use_bias": False, "dropout": 0.2, "seed": 3, "go_backwards": True
    }
    assert MinGRU.from_config(config).get_config() == config


def test_g_as_a_maximum_equals_the_papers_two_branches_with_their_gradients():
    x = tf.constant(np.concatenate([np.linspace(-30, 30, 20001), [0.0, -1e-7, 1e-7]]).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        values = positive_activation(x)
    gradient = tape.gradient(values, x).numpy()
    branches = tf.where(x >= 0, x + 0.5, tf.sigmoid(x)).numpy()
    np.testing.assert_array_equal(values.numpy(), branches)
    s = tf.sigmoid(x).numpy()
    np.testing.assert_allclose(gradient, np.where(x.numpy() >= 0, 1.0, s * (1 - s)), rtol=1e-6, atol=1e-12)
