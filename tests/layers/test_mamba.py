"""Mamba's math against a numpy transcription of the selective SSM (Gu & Dao, 2023, Algorithm 2)."""

import numpy as np
import pytest

from nlpkit.layers import Mamba


def softplus(x):
    return np.logaddexp(0.0, x)


def silu(x):
    return x / (1.0 + np.exp(-x))


def reference_mamba(layer, x):
    """The block step by step in float64, read from the layer's weights by name."""
    w = {weight.name: weight.numpy().astype(np.float64) for weight in layer.weights}
    inner, state, taps, rank = layer.d_inner, layer.d_state, layer.d_conv, layer.resolved_dt_rank
    batch, time, _ = x.shape
    xz = x @ w["in_kernel"]
    xs, z = xz[..., :inner], xz[..., inner:]
    padded = np.concatenate([np.zeros((batch, taps - 1, inner)), xs], axis=1)
    a = -np.exp(w["A_log"])
    h = np.zeros((batch, inner, state))
    outputs = []
    for t in range(time):
        u = silu((padded[:, t : t + taps] * w["conv_kernel"]).sum(1) + w["conv_bias"])
        projected = u @ w["x_kernel"]
        delta = softplus(projected[:, :rank] @ w["dt_kernel"] + w["dt_bias"])
        b, c = projected[:, rank : rank + state], projected[:, rank + state :]
        h = np.exp(delta[..., None] * a) * h + (delta * u)[..., None] * b[:, None, :]
        y = (h * c[:, None, :]).sum(-1) + w["D"] * u
        outputs.append((y * silu(z[:, t])) @ w["out_kernel"])
    return np.stack(outputs, 1), h


def test_matches_the_selective_scan_reference():
    rng = np.random.default_rng(0)
    layer = Mamba(6, d_state=3, d_conv=3, expand=2, dt_rank=2, return_sequences=True,
                  return_state=True, seed=0)
    x = rng.normal(size=(2, 150, 5)).astype(np.float32)
    layer(x[:, :1])
    # Larger steps than the initialisation, so the state decays and the inputs matter.
    layer.dt_bias.assign(rng.uniform(-1.0, 1.0, layer.dt_bias.shape).astype(np.float32))
    sequence, window, ssm = layer(x)
    expected, h = reference_mamba(layer, x)
    assert np.abs(expected).max() > 0.1
    np.testing.assert_allclose(sequence.numpy(), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ssm.numpy(), h.reshape(2, -1), rtol=1e-4, atol=1e-5)
    # The window holds the last d_conv - 1 conv inputs (x after the input projection).
    last_inputs = (x[:, -2:] @ layer.in_kernel.numpy())[..., : layer.d_inner]
    np.testing.assert_allclose(window.numpy(), last_inputs.reshape(2, -1), rtol=1e-5, atol=1e-5)


def test_weights_are_initialised_as_in_the_reference():
    layer = Mamba(32, d_state=8, seed=1, dt_min=0.002, dt_max=0.05)
    layer.build((None, None, 10))
    assert layer.d_inner == 64 and layer.resolved_dt_rank == 2
    shapes = {weight.name: tuple(weight.shape) for weight in layer.weights}
    assert shapes == {
        "in_kernel": (10, 128), "conv_kernel": (4, 64), "conv_bias": (64,),
        "x_kernel": (64, 2 + 16), "dt_kernel": (2, 64), "dt_bias": (64,),
        "A_log": (64, 8), "D": (64,), "out_kernel": (64, 32),
    }
    # S4D-real: A = -(n + 1) in every channel.
    np.testing.assert_allclose(-np.exp(layer.A_log.numpy()), -np.tile(np.arange(1, 9), (64, 1)), rtol=1e-6)
    np.testing.assert_array_equal(layer.D.numpy(), 1.0)
    dt = softplus(layer.dt_bias.numpy().astype(np.float64))
    assert dt.min() >= 0.002 * 0.999 and dt.max() <= 0.05 * 1.001
    assert layer.state_size == [3 * 64, 64 * 8]


def test_the_state_names_and_config():
    layer = Mamba(8, d_state=4, d_conv=2, expand=3, dt_rank=5, use_bias=True, dropout=0.1, seed=2)
    assert layer.state_parts == ("conv", "ssm")
    config = layer.get_config()
    for key, value in dict(units=8, d_state=4, d_conv=2, expand=3, dt_rank=5, use_bias=True,
                           dropout=0.1, seed=2).items():
        assert config[key] == value, key
    assert Mamba.from_config(config).get_config() == config


@pytest.mark.parametrize(
    "arguments, match",
    [
        ({"d_conv": 1}, "d_conv=1"),
        ({"d_state": 0}, "d_state=0"),
        ({"dt_rank": 0}, "dt_rank=0"),
        ({"dt_min": 0.5, "dt_max": 0.1}, "dt_min=0.5, dt_max=0.1"),
        ({"use_conv_bias": 1}, "use_conv_bias=1"),
    ],
)
def test_invalid_arguments_name_the_value(arguments, match):
    with pytest.raises(ValueError, match=match):
        Mamba(8, **arguments)
