"""Tests for nlpkit.export.tflite: conversion of every encoder, op audit, quantization.

The parity tests use untrained models with unit-scale word vectors: the default embedding
initializer (uniform +-0.05) makes every text score about 1/num_classes, so a broken
recurrence could hide under the 1e-4 tolerance. Each test also checks that the scores really
depend on the input.
"""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from nlpkit.export import NonBuiltinOpsError, OpAudit, assert_builtin_only, audit_ops, convert
from nlpkit.models import TextClassifier

VOCABULARY_SIZE = 50
NUM_CLASSES = 3
LENGTHS = (1, 7, 64, 400)

ENCODERS = [
    pytest.param(
        cell, bidirectional, num_layers, pooling,
        id=f"{cell}-{'bi' if bidirectional else 'uni'}-{num_layers}layer-{pooling}",
    )
    for cell, bidirectional, num_layers, pooling in itertools.product(
        ("gru", "lstm", "simple_rnn"), (True, False), (1, 2), ("max_mean", "last")
    )
]


def build_classifier(cell="gru", bidirectional=True, num_layers=1, pooling="max_mean",
                     vocabulary_size=VOCABULARY_SIZE, embedding_dim=8, units=8, seed=0):
    keras.utils.set_random_seed(seed)
    model = TextClassifier(
        vocabulary_size=vocabulary_size,
        num_classes=NUM_CLASSES,
        embedding_dim=embedding_dim,
        units=units,
        cell=cell,
        bidirectional=bidirectional,
        num_layers=num_layers,
        pooling=pooling,
    )
    model(np.zeros((1, 1), np.int32))
    vectors = np.random.default_rng(seed).normal(size=(vocabulary_size, embedding_dim))
    model.set_embeddings(vectors.astype(np.float32))
    return model


def keras_reference(model):
    """The model's inference call compiled once for any length (eager loops are slow)."""
    return tf.function(
        lambda token_ids: model(token_ids, training=False),
        input_signature=[tf.TensorSpec([1, None], tf.int32)],
    )


def classify_runner(content):
    return Interpreter(model_content=content, num_threads=1).get_signature_runner("classify")


def flex_model_content():
    """A TFLite model that needs a Flex op: string ops have no built-in TFLite kernel."""

    class StringLength(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def count(self, text):
            return {"length": tf.strings.length(text)}

    module = StringLength()
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.count.get_concrete_function()], module
    )
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS,
        tf.lite.OpsSet.SELECT_TF_OPS,
    ]
    return converter.convert()


# ---------------------------------------------------------------------------------------------
# Every encoder: converts to built-in ops, matches Keras, keeps no state between calls
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("cell, bidirectional, num_layers, pooling", ENCODERS)
def test_encoder_converts_with_builtin_ops_and_matches_keras(cell, bidirectional, num_layers, pooling):
    model = build_classifier(cell, bidirectional, num_layers, pooling)
    content = convert(model, model.tflite_endpoints())

    audit = audit_ops(content)
    print(f"{cell} bidirectional={bidirectional} layers={num_layers} pooling={pooling}: {audit.builtin}")
    assert audit.custom == () and audit.flex == () and audit.builtin_only
    if cell == "lstm":
        # Narrow LSTMs export as the fused op by default (lstm="auto"): no loop at all.
        assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in audit.builtin and "WHILE" not in audit.builtin
    else:
        assert "WHILE" in audit.builtin
        # The gate activations live only in the WHILE body subgraph, so the audit must read it.
        gate = "TANH" if cell == "simple_rnn" else "LOGISTIC"
        assert gate in audit.builtin

    interpreter = Interpreter(model_content=content, num_threads=1)
    assert interpreter.get_signature_list() == {
        "classify": {"inputs": ["token_ids"], "outputs": ["scores"]}
    }
    runner = interpreter.get_signature_runner("classify")
    reference = keras_reference(model)
    rng = np.random.default_rng(1)
    inputs = {length: rng.integers(1, VOCABULARY_SIZE, size=(1, length), dtype=np.int32)
              for length in LENGTHS}
    expected = {length: reference(ids).numpy() for length, ids in inputs.items()}
    assert np.abs(expected[7] - expected[64]).max() > 1e-3, "scores barely depend on the input"

    first = {}
    for length, ids in inputs.items():
        scores = runner(token_ids=ids)["scores"]
        assert scores.shape == (1, NUM_CLASSES) and scores.dtype == np.float32
        np.testing.assert_allclose(scores, expected[length], rtol=0, atol=1e-4,
                                   err_msg=f"TFLite vs Keras at length {length}")
        first[length] = scores.copy()

    # The same interpreter again, lengths in reverse and each twice in a row: a state kept
    # from the previous call, or a buffer still sized for the previous length, would show.
    for length in reversed(LENGTHS):
        for _ in range(2):
            np.testing.assert_array_equal(runner(token_ids=inputs[length])["scores"], first[length],
                                          err_msg=f"repeat at length {length}")

    # Right padding (id 0) is masked in TFLite exactly as in Keras.
    padded = np.concatenate([inputs[7], np.zeros((1, 5), np.int32)], axis=1)
    np.testing.assert_allclose(runner(token_ids=padded)["scores"], reference(padded).numpy(),
                               rtol=0, atol=1e-4)


# ---------------------------------------------------------------------------------------------
# Op audit
# ---------------------------------------------------------------------------------------------


def test_audit_ops_names_flex_ops():
    audit = audit_ops(flex_model_content())
    print(audit)
    assert audit.custom == ("FlexStringLength",)
    assert audit.flex == ("FlexStringLength",)
    assert not audit.builtin_only


def test_assert_builtin_only_raises_naming_the_flex_op():
    with pytest.raises(NonBuiltinOpsError, match="FlexStringLength"):
        assert_builtin_only(flex_model_content())


def test_non_builtin_ops_error_is_a_value_error():
    assert issubclass(NonBuiltinOpsError, ValueError)


def test_audit_reads_files_and_bytes_alike(tmp_path):
    model = build_classifier(bidirectional=False)
    content = convert(model, model.tflite_endpoints())
    path = tmp_path / "model.tflite"
    path.write_bytes(content)
    assert audit_ops(str(path)) == audit_ops(path) == audit_ops(bytearray(content))
    returned = assert_builtin_only(path)
    assert isinstance(returned, OpAudit) and returned.builtin_only


def test_convert_refuses_an_endpoint_that_needs_flex_ops():
    model = build_classifier(bidirectional=False)
    endpoints = {
        "count": (lambda text: {"length": tf.strings.length(text)},
                  [tf.TensorSpec([None], tf.string, name="text")])
    }
    with pytest.raises(Exception, match="StringLength"):
        convert(model, endpoints)


# ---------------------------------------------------------------------------------------------
# Quantization
# ---------------------------------------------------------------------------------------------


def test_dynamic_range_quantization_gives_a_smaller_builtin_model():
    # Dynamic-range quantization skips small tensors, so the weights must be big enough.
    model = build_classifier(vocabulary_size=1000, embedding_dim=32, units=32)
    float_content = convert(model, model.tflite_endpoints())
    int8_content = convert(model, model.tflite_endpoints(), quantization="dynamic_range")
    print(f"float32 {len(float_content)} bytes, int8 {len(int8_content)} bytes")
    assert len(int8_content) < 0.6 * len(float_content)
    assert assert_builtin_only(int8_content).builtin_only

    ids = np.random.default_rng(2).integers(1, 1000, size=(1, 30), dtype=np.int32)
    float_scores = classify_runner(float_content)(token_ids=ids)["scores"]
    int8_scores = classify_runner(int8_content)(token_ids=ids)["scores"]
    np.testing.assert_allclose(int8_scores, float_scores, atol=0.05)


def test_unknown_quantization_is_rejected_by_name():
    model = build_classifier(bidirectional=False)
    with pytest.raises(ValueError, match="'float16'"):
        convert(model, model.tflite_endpoints(), quantization="float16")
