"""MinLSTM's math against a numpy transcription of the paper (Feng et al., 2024, Algorithm 6)."""

import numpy as np

from nlpkit.layers import MinLSTM
from tests.layers.test_min_gru import g, sigmoid


def reference_min_lstm(x, kernel, bias, h0):
    """Sequential minLSTM with normalised gates: h = f/(f+i) h + i/(f+i) g(x W_h)."""
    units = kernel.shape[1] // 3
    h, outputs = h0.astype(np.float64), []
    for t in range(x.shape[1]):
        projected = x[:, t] @ kernel + bias
        f, i = sigmoid(projected[:, :units]), sigmoid(projected[:, units : 2 * units])
        h = f / (f + i) * h + i / (f + i) * g(projected[:, 2 * units :])
        outputs.append(h)
    return np.stack(outputs, 1)


def test_matches_the_paper_with_random_weights_and_an_initial_state():
    rng = np.random.default_rng(0)
    layer = MinLSTM(5, return_sequences=True, return_state=True)
    x = rng.normal(size=(2, 140, 3)).astype(np.float32)
    layer(x[:, :1])
    kernel, bias = rng.normal(size=(3, 15)), rng.normal(size=15)
    layer.set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
    h0 = rng.normal(size=(2, 5)).astype(np.float32)
    sequence, h = layer(x, initial_state=[h0])
    expected = reference_min_lstm(x, kernel, bias, h0)
    np.testing.assert_allclose(sequence.numpy(), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(h.numpy(), expected[:, -1], rtol=1e-4, atol=1e-5)


def test_the_state_stays_within_the_range_of_the_candidates():
    # Normalised gates make h a convex combination of h_0 and the candidates: no growth.
    rng = np.random.default_rng(1)
    layer = MinLSTM(8, return_sequences=True)
    x = rng.normal(size=(1, 500, 4)).astype(np.float32)
    layer(x[:, :1])
    kernel = rng.normal(scale=2.0, size=(4, 24)).astype(np.float32)
    layer.set_weights([kernel, np.zeros(24, np.float32)])
    outputs = layer(x).numpy()
    candidates = g((x[0] @ kernel)[:, 16:])
    assert outputs.min() >= 0 and outputs.max() <= candidates.max() + 1e-4
