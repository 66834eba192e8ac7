"""TFLite export of the parallel-scan layers (MinGRU, MinLSTM, Mamba): both forms, built-in ops only.

The full-sequence form (the scan, a short ``WHILE`` over chunk totals) goes through a
`TextClassifier`'s ``classify`` signature (batch 1, dynamic length, masks from padding ids,
bidirectional); the streaming ``step`` signature goes through `StreamingStack`, fed 200
steps with the states carried by hand, as tests/export/test_streaming.py does for the loop
layers. Every model gets weights of unit-ish scale so a broken recurrence cannot hide.
"""

import keras
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

import nlpkit
from nlpkit.export import STEP_SIGNATURE, StreamingStack, audit_ops, convert
from tests.export.test_streaming import STEPS, run_step_signature, token_sequence
from tests.export.test_tflite import (
    NUM_CLASSES,
    VOCABULARY_SIZE,
    build_classifier,
    classify_runner,
    keras_reference,
)
from tests.layers.test_scan_layers import randomize

LENGTHS = (1, 7, 64, 300)
STACK_VOCABULARY = 64


@pytest.mark.parametrize(
    "cell, bidirectional, pooling",
    [("mingru", True, "max_mean"), ("minlstm", False, "last"), ("mamba", True, "max_mean")],
)
def test_classifier_full_sequence_signature_is_builtin_and_matches_keras(cell, bidirectional, pooling):
    model = build_classifier(cell, bidirectional, num_layers=1, pooling=pooling)
    for layer in model.members[0].encoder_layers:
        for half in (layer.forward_layer, layer.backward_layer) if bidirectional else (layer,):
            randomize(half, seed=3)
    content = convert(model, model.tflite_endpoints())
    audit = audit_ops(content)
    assert audit.builtin_only, audit.custom
    # The scan's across-chunk loop is a WHILE; the gates are LOGISTIC (Mamba's decay is EXP).
    assert {"WHILE", "LOGISTIC" if cell != "mamba" else "EXP"} <= set(audit.builtin)

    runner = classify_runner(content)
    reference = keras_reference(model)
    rng = np.random.default_rng(1)
    results = {}
    for length in LENGTHS:
        ids = rng.integers(1, VOCABULARY_SIZE, size=(1, length), dtype=np.int32)
        expected = reference(ids).numpy()
        scores = runner(token_ids=ids)["scores"]
        assert scores.shape == (1, NUM_CLASSES)
        np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-4, err_msg=f"length {length}")
        results[length] = expected
        if length == 7:
            # Right padding (id 0) is masked in TFLite exactly as in Keras.
            padded = np.concatenate([ids, np.zeros((1, 5), np.int32)], axis=1)
            np.testing.assert_allclose(runner(token_ids=padded)["scores"], reference(padded).numpy(),
                                       rtol=0, atol=1e-4)
    assert np.abs(results[7] - results[64]).max() > 1e-3, "scores barely depend on the input"


def build_stack(seed=0):
    """Embedding -> MinGRU -> Mamba -> MinLSTM -> Dense: token id in, logits out."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((None,), dtype="int32"),
        keras.layers.Embedding(STACK_VOCABULARY, 8),
        nlpkit.layers.MinGRU(8, return_sequences=True),
        nlpkit.layers.Mamba(8, d_state=4, return_sequences=True),
        nlpkit.layers.MinLSTM(8, return_sequences=True),
        keras.layers.Dense(STACK_VOCABULARY),
    ])
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, nlpkit.layers.RecurrentLayerBase):
            randomize(layer, seed)
        else:
            layer.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in layer.get_weights()])
    return model


@pytest.fixture(scope="module")
def stack():
    model = build_stack()
    streaming = StreamingStack(model, output_name="logits")
    return model, streaming, convert(streaming, streaming.tflite_endpoints())


STACK_STATES = ("state_0_h", "state_1_conv", "state_1_ssm", "state_2_h")


def test_step_signature_reproduces_the_full_sequence_for_200_steps(stack):
    model, streaming, content = stack
    assert streaming.state_names == STACK_STATES
    mamba = model.layers[2]
    assert streaming.state_sizes == (8, 3 * mamba.d_inner, mamba.d_inner * 4, 8)
    signature = Interpreter(model_content=content).get_signature_list()[STEP_SIGNATURE]
    assert signature == {"inputs": sorted(("token_id",) + STACK_STATES),
                         "outputs": sorted(("logits",) + STACK_STATES)}
    ids = token_sequence()[:STEPS] % STACK_VOCABULARY
    expected = model(ids[None], training=False)[0].numpy()
    assert np.abs(expected).max() > 0.1 and expected.std(axis=0).mean() > 0.05
    outputs, states = run_step_signature(content, ids, STACK_STATES)
    np.testing.assert_allclose(outputs, expected, rtol=0, atol=1e-4)
    assert states["state_1_ssm"].shape == (1, mamba.d_inner * 4)


def test_step_signature_is_builtin_ops_without_a_loop(stack):
    _, _, content = stack
    audit = audit_ops(content)
    assert audit.builtin_only and "WHILE" not in audit.builtin
    assert {"FULLY_CONNECTED", "LOGISTIC", "EXP"} <= set(audit.builtin)


def test_step_signature_keeps_no_state_between_invokes(stack):
    _, _, content = stack
    runner = Interpreter(model_content=content, num_threads=1).get_signature_runner(STEP_SIGNATURE)
    details = runner.get_input_details()
    rng = np.random.default_rng(0)
    feed = {name: rng.normal(size=details[name]["shape"]).astype(np.float32) for name in STACK_STATES}
    feed["token_id"] = np.array([5], np.int32)
    first = {name: value.copy() for name, value in runner(**feed).items()}
    again = runner(**feed)
    for name, value in first.items():
        np.testing.assert_array_equal(again[name], value, err_msg=name)
    # The conv window really is read: another window in, another output out.
    other = runner(**{**feed, "state_1_conv": np.zeros_like(feed["state_1_conv"])})
    assert np.abs(other["logits"] - first["logits"]).max() > 1e-3
