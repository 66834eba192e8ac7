"""Additive and multiplicative attention: layer checks, numpy references, masking, step form."""

import numpy as np
import pytest

from nlpkit.layers import AdditiveAttention, MultiplicativeAttention
from tests.layer_checks import run_layer_checks

RNG = np.random.default_rng(7)
QUERY_2D = RNG.normal(size=(3, 4)).astype("float32")
QUERY_3D = RNG.normal(size=(3, 2, 4)).astype("float32")
MEMORY = RNG.normal(size=(3, 5, 6)).astype("float32")
MASK = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], bool)


def _softmax_masked(scores, mask):
    scores = np.where(mask, scores, -np.inf)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    return weights / weights.sum(-1, keepdims=True)


def test_additive_layer_checks(tmp_path):
    run_layer_checks(
        lambda: AdditiveAttention(8, name="additive"), [QUERY_2D, MEMORY], tmp_path, mask=MASK,
        expected_output_shape=(3, 6),
    )


def test_multiplicative_layer_checks(tmp_path):
    run_layer_checks(
        lambda: MultiplicativeAttention(name="general"), [QUERY_3D, MEMORY], tmp_path, mask=MASK,
        expected_output_shape=(3, 2, 6),
    )
    query = RNG.normal(size=(3, 2, 6)).astype("float32")
    run_layer_checks(
        lambda: MultiplicativeAttention("dot", name="dot"), [query, MEMORY], tmp_path, mask=MASK,
        expected_output_shape=(3, 2, 6), expect_weights=False,
    )


def test_additive_matches_numpy_reference():
    layer = AdditiveAttention(8)
    context, weights = layer([QUERY_2D, MEMORY], mask=MASK, return_attention_scores=True)
    wq, wm, b, v = (w.numpy() for w in (layer.query_kernel, layer.memory_kernel, layer.bias, layer.score_vector))
    hidden = np.tanh((QUERY_2D @ wq)[:, None, :] + MEMORY @ wm + b)
    expected_weights = _softmax_masked((hidden @ v)[..., 0], MASK)
    np.testing.assert_allclose(weights, expected_weights, atol=1e-6)
    np.testing.assert_allclose(context, np.einsum("bt,btd->bd", expected_weights, MEMORY), atol=1e-5)
    assert np.all(np.asarray(weights)[~MASK] == 0.0)


def test_multiplicative_matches_numpy_reference_and_step_form():
    layer = MultiplicativeAttention()
    context, weights = layer([QUERY_3D, MEMORY], mask=MASK, return_attention_scores=True)
    kernel = layer.kernel.numpy()
    scores = np.einsum("bsq,btm,mq->bst", QUERY_3D, MEMORY, kernel)
    expected_weights = _softmax_masked(scores, MASK[:, None, :])
    np.testing.assert_allclose(weights, expected_weights, atol=1e-6)
    np.testing.assert_allclose(context, expected_weights @ MEMORY, atol=1e-5)
    # One decoder step at a time gives the same as all steps at once.
    keys = layer.project_memory(MEMORY)
    for step in range(QUERY_3D.shape[1]):
        step_context, step_weights = layer.attend(QUERY_3D[:, step], MEMORY, keys, MASK)
        np.testing.assert_allclose(step_context, np.asarray(context)[:, step], atol=1e-5)
        np.testing.assert_allclose(step_weights, np.asarray(weights)[:, step], atol=1e-6)


@pytest.mark.parametrize("layer", [AdditiveAttention(4), MultiplicativeAttention()], ids=["additive", "multiplicative"])
def test_fully_masked_row_gives_zero_context_not_nan(layer):
    mask = MASK.copy()
    mask[2] = False
    context, weights = layer([QUERY_2D, MEMORY], mask=mask, return_attention_scores=True)
    context, weights = np.asarray(context), np.asarray(weights)
    assert np.all(np.isfinite(context))
    assert np.all(context[2] == 0.0) and np.all(weights[2] == 0.0)
    np.testing.assert_allclose(weights[:2].sum(-1), 1.0, atol=1e-6)
    # Without a mask every position counts.
    unmasked = np.asarray(layer([QUERY_2D, MEMORY], return_attention_scores=True)[1])
    assert np.all(unmasked > 0)


def test_arguments_are_validated_with_the_value():
    with pytest.raises(ValueError, match="units=0"):
        AdditiveAttention(0)
    with pytest.raises(ValueError, match="score='concat'"):
        MultiplicativeAttention("concat")
    with pytest.raises(ValueError, match="query width 4 and memory width 6"):
        MultiplicativeAttention("dot")([QUERY_2D, MEMORY])
    with pytest.raises(ValueError, match=r"\[query, memory\]"):
        AdditiveAttention(4)(MEMORY)
