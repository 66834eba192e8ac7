"""MaskedPooling against a numpy reference on random masked inputs."""

import doctest

import keras
import numpy as np
import pytest

from nlpkit.layers import MaskedPooling
from nlpkit.layers import pooling as pooling_module
from tests.layer_checks import run_layer_checks


def numpy_pool(inputs, mask, mode):
    """Reference pooling written the slow, obvious way: one row at a time."""
    rows = []
    for values, valid in zip(inputs, mask):
        kept = values[valid]
        if len(kept):
            maxed, mean = kept.max(axis=0), kept.mean(axis=0)
        else:
            maxed = mean = np.zeros(values.shape[-1], values.dtype)
        rows.append({"max": maxed, "mean": mean, "max_mean": np.concatenate([maxed, mean])}[mode])
    return np.stack(rows)


@pytest.fixture(scope="module")
def masked_batch():
    rng = np.random.default_rng(0)
    # Negative values everywhere: a max over padding zeros (or -1e9) would show up.
    inputs = (rng.normal(size=(6, 7, 3)) - 2.0).astype("float32")
    mask = rng.random((6, 7)) < 0.6
    mask[0] = True
    mask[1] = False
    mask[2] = False
    mask[2, 4] = True  # a single valid step in the middle
    # Huge values at masked steps must not leak into either statistic.
    inputs[~mask] = 1e4
    return inputs, mask


@pytest.mark.parametrize("mode", MaskedPooling.MODES)
def test_matches_numpy(mode, masked_batch):
    inputs, mask = masked_batch
    pooled = np.asarray(MaskedPooling(mode)(inputs, mask=mask))
    np.testing.assert_allclose(pooled, numpy_pool(inputs, mask, mode), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("mode", MaskedPooling.MODES)
def test_row_without_valid_steps_pools_to_zeros(mode, masked_batch):
    inputs, mask = masked_batch
    pooled = np.asarray(MaskedPooling(mode)(inputs, mask=mask))
    assert np.all(pooled[1] == 0.0)
    assert np.all(np.isfinite(pooled))


@pytest.mark.parametrize("mode", MaskedPooling.MODES)
def test_no_mask_pools_every_step(mode, masked_batch):
    inputs, _ = masked_batch
    everything = np.ones(inputs.shape[:2], bool)
    pooled = np.asarray(MaskedPooling(mode)(inputs))
    np.testing.assert_allclose(pooled, numpy_pool(inputs, everything, mode), rtol=1e-6, atol=1e-6)


def test_mask_from_an_embedding_is_used():
    # In a Sequential model the mask arrives implicitly from Embedding(mask_zero=True).
    ids = np.array([[3, 1, 2, 0, 0], [0, 0, 0, 0, 0], [4, 4, 4, 4, 1]], "int32")
    embedding = keras.layers.Embedding(5, 2, mask_zero=True)
    model = keras.Sequential(
        [keras.Input((None,), dtype="int32"), embedding, MaskedPooling("max_mean")]
    )
    vectors = np.asarray(embedding(ids))
    expected = numpy_pool(vectors, ids != 0, "max_mean")
    np.testing.assert_allclose(np.asarray(model(ids)), expected, atol=1e-6)


@pytest.mark.parametrize("mode,features", [("mean", 3), ("max", 3), ("max_mean", 6)])
def test_output_shape_and_mask(mode, features):
    layer = MaskedPooling(mode)
    assert layer.compute_output_shape((None, None, 3)) == (None, features)
    assert layer.compute_mask(np.zeros((1, 2, 3)), np.ones((1, 2), bool)) is None


def test_layer_checks(masked_batch, tmp_path):
    inputs, mask = masked_batch
    layer = run_layer_checks(
        lambda: MaskedPooling("max_mean"),
        inputs,
        tmp_path,
        mask=mask,
        expected_output_shape=(6, 6),
        expect_weights=False,
    )
    assert layer.get_config()["mode"] == "max_mean"


@pytest.mark.parametrize("mode", ["sum", "MEAN", None])
def test_invalid_mode_names_the_value(mode):
    with pytest.raises(ValueError, match="mode") as info:
        MaskedPooling(mode)
    assert repr(mode) in str(info.value)


def test_docstring_example():
    finder = doctest.DocTestFinder()
    globs = {"np": np, "MaskedPooling": MaskedPooling}
    (test,) = finder.find(MaskedPooling, "MaskedPooling", globs=globs)
    result = doctest.DocTestRunner().run(test)
    assert result.failed == 0 and result.attempted > 0
    assert pooling_module.MaskedPooling is MaskedPooling
