"""Every exported .tflite file loads and runs in tflite-runtime 2.14, an older runtime apps ship.

The calls are made on real sentences of the embedded samples (the session's tiny sentiment
and NER bundles, see conftest.py) and compared with `ai_edge_litert`, the runtime that wrote
them: class scores within 1e-5, tags identical. The language-model and translation bundles are
checked the same way in their recipe tests. `tests/runtimes.py` drives the old runtime.
"""

import json

import numpy as np
import pytest

from nlpkit.lite import SequenceTaggerPredictor, TextClassifierPredictor
from nlpkit.manifest import read_manifest
from tests.runtimes import assert_same_outputs, bundle_tflite_files, litert_outputs, run_in_tflite214

pytestmark = pytest.mark.slow


def test_the_manifest_lists_every_tflite_file_with_its_runtime(sentiment_bundle):
    manifest = read_manifest(sentiment_bundle)
    files = manifest["tflite_files"]
    assert sorted(files) == sorted(manifest["tflite_ops"]) == ["model.int8.tflite", "model.tflite"]
    for name, info in files.items():
        assert info["target"] == "litert" and info["signatures"] == ["classify"]
        assert info["quantization"] == ("dynamic_range" if "int8" in name else "float32")
        assert tuple(map(int, info["min_runtime_version"].split("."))) <= (2, 14, 0), info


def test_classifier_files_run_in_tflite_runtime_2_14(sentiment_bundle, sample_test_texts):
    tokenizer = TextClassifierPredictor(sentiment_bundle).tokenizer
    calls = [
        {"file": path, "signature": "classify", "inputs": {"token_ids": np.asarray([tokenizer.encode(text) or [0]], np.int32)}}
        for path, _ in bundle_tflite_files(sentiment_bundle)
        for text in sample_test_texts[:20]
    ]
    assert_same_outputs(litert_outputs(calls), run_in_tflite214(calls), atol=1e-5)


def test_tagger_files_run_in_tflite_runtime_2_14(ner_bundle, ner_test_sentences):
    tokenizer = SequenceTaggerPredictor(ner_bundle).tokenizer
    calls = []
    for path, _ in bundle_tflite_files(ner_bundle):
        for sentence in ner_test_sentences[:15]:
            tokens = list(sentence.tokens)
            word_ids, char_ids = tokenizer.encode_tokens(tokens)
            chars = np.zeros((1, len(tokens), max(map(len, char_ids)) or 1), np.int32)
            for position, ids in enumerate(char_ids):
                chars[0, position, : len(ids)] = ids
            calls.append({"file": path, "signature": "tag",
                          "inputs": {"word_ids": np.asarray([word_ids], np.int32), "char_ids": chars}})
    assert_same_outputs(litert_outputs(calls), run_in_tflite214(calls))


def test_dynamic_range_dense_layers_load_in_runtimes_before_2_17(tmp_path):
    """Per-channel dense quantization (the converter's default) needs FULLY_CONNECTED v12 / runtime 2.17."""
    import keras
    import tensorflow as tf

    from nlpkit.export.tflite import convert, min_runtime_version

    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(128, activation="relu"), keras.layers.Dense(3)])
    model(np.zeros((1, 64), "float32"))
    function = tf.function(lambda features: {"scores": model(features)})
    endpoints = {"score": (function, [tf.TensorSpec([1, 64], tf.float32, name="features")])}
    content = convert(model, endpoints, quantization="dynamic_range")
    assert tuple(map(int, min_runtime_version(content).split("."))) < (2, 14, 0)
    path = tmp_path / "dense.int8.tflite"
    path.write_bytes(content)
    features = np.random.default_rng(0).standard_normal((1, 64)).astype("float32")
    calls = [{"file": path, "signature": "score", "inputs": {"features": features}}]
    assert_same_outputs(litert_outputs(calls), run_in_tflite214(calls), atol=1e-5)
    # The quantization is real: the int8 file differs from float32 by more than rounding.
    assert len(content) < 64 * 128 * 4
