"""The pinned stack installs together and imports: a broken pin should fail here first."""

import importlib

import pytest


@pytest.mark.parametrize(
    "module",
    ["tensorflow", "keras", "keras_hub", "keras_nlp", "tensorflow_text", "ai_edge_litert.interpreter",
     "sentencepiece", "sacrebleu", "scipy.sparse.linalg"],
)
def test_dependency_imports(module):
    assert importlib.import_module(module) is not None


def test_versions_are_the_pinned_ones():
    import keras
    import tensorflow as tf

    assert tf.__version__.startswith("2.21.")
    assert keras.__version__.startswith("3.")
    assert keras.config.backend() == "tensorflow"


def test_keras_nlp_still_resolves_to_keras_hub_tokenizers():
    import keras_hub
    import keras_nlp

    assert hasattr(keras_nlp, "tokenizers")
    assert hasattr(keras_hub.tokenizers, "WordPieceTokenizer")
