"""Tests for nlpkit.lite.StreamingRunner: states carried, reset, saved and resumed.

The step models are written by `nlpkit.export.StreamingStack` once per module: a language
model shaped stack (token id in, logits out) and a float-input LSTM.
"""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import nlpkit
from nlpkit.export import StreamingStack, convert
from nlpkit.lite import StreamingRunner, load_signature_runner

VOCABULARY_SIZE = 40
UNITS = 8
STEPS = 200


def randomize(layers, seed):
    rng = np.random.default_rng(seed)
    for layer in layers:
        layer.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32) for w in layer.get_weights()])


@pytest.fixture(scope="module")
def language_model(tmp_path_factory):
    """(Keras model, path of its step model): Embedding -> GRU -> LSTM -> Dense."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((None,), dtype="int32"),
        keras.layers.Embedding(VOCABULARY_SIZE, UNITS),
        nlpkit.layers.GRU(UNITS, return_sequences=True),
        nlpkit.layers.LSTM(UNITS, return_sequences=True),
        keras.layers.Dense(VOCABULARY_SIZE),
    ])
    randomize(model.layers, 0)
    stack = StreamingStack(model, output_name="logits")
    path = tmp_path_factory.mktemp("streaming") / "step.tflite"
    # A task model converts its own endpoints: the stack's step is one of them.
    path.write_bytes(convert(model, stack.tflite_endpoints()))
    return model, path


@pytest.fixture(scope="module")
def tokens():
    return np.random.default_rng(1).integers(0, VOCABULARY_SIZE, STEPS).astype(np.int32)


@pytest.fixture(scope="module")
def expected_logits(language_model, tokens):
    model, _ = language_model
    logits = model(tokens[None], training=False)[0].numpy()
    assert logits.std(axis=0).mean() > 0.1, "logits barely depend on the input"
    return logits


def test_runner_finds_the_input_states_and_output(language_model):
    _, path = language_model
    runner = StreamingRunner(path)
    assert runner.input_name == "token_id"
    assert runner.state_names == ("state_0_h", "state_1_c", "state_1_h")
    assert runner.output_names == ("logits",)
    assert all(not value.any() and value.shape == (1, UNITS) for value in runner.states.values())


def test_run_matches_the_keras_full_sequence_for_200_steps(language_model, tokens, expected_logits):
    _, path = language_model
    logits = StreamingRunner(path).run(tokens)
    assert logits.shape == (STEPS, VOCABULARY_SIZE) and logits.dtype == np.float32
    np.testing.assert_allclose(logits, expected_logits, rtol=0, atol=1e-4)


def test_two_sessions_carrying_states_equal_one_session(language_model, tokens):
    _, path = language_model
    whole = StreamingRunner(path).run(tokens)

    first = StreamingRunner(path)
    head = first.run(tokens[:100])
    saved = first.states
    del first
    second = StreamingRunner(path, states=saved)
    tail = np.stack([second.step(int(token)) for token in tokens[100:]])

    np.testing.assert_array_equal(np.concatenate([head, tail]), whole)
    np.testing.assert_array_equal(tail, whole[100:])


def test_reset_returns_to_zero_states_and_repeats_the_stream(language_model, tokens, expected_logits):
    _, path = language_model
    runner = StreamingRunner(path)
    first = runner.run(tokens[:30])
    assert any(value.any() for value in runner.states.values())
    runner.reset()
    assert not any(value.any() for value in runner.states.values())
    np.testing.assert_array_equal(runner.run(tokens[:30]), first)
    # Without a reset the stream continues: the same tokens now give other logits.
    assert np.abs(runner.run(tokens[:30]) - first).max() > 1e-3
    runner.reset()
    np.testing.assert_allclose(runner.step(tokens[0]), expected_logits[0], rtol=0, atol=1e-4)


def test_reset_to_given_states_resumes_there(language_model, tokens):
    _, path = language_model
    runner = StreamingRunner(path)
    runner.run(tokens[:50])
    saved = runner.states
    after = runner.run(tokens[50:60])
    runner.run(tokens[:7])
    runner.reset(saved)
    np.testing.assert_array_equal(runner.run(tokens[50:60]), after)


def test_states_are_copies(language_model, tokens):
    _, path = language_model
    runner = StreamingRunner(path)
    runner.run(tokens[:5])
    states = runner.states
    for value in states.values():
        value[...] = 123.0
    assert all(np.abs(value).max() < 100 for value in runner.states.values())


def test_bad_states_and_inputs_are_refused(language_model):
    _, path = language_model
    with pytest.raises(ValueError, match=r"exactly the keys \['state_0_h', 'state_1_c', 'state_1_h'\]"):
        StreamingRunner(path, states={"state_0_h": np.zeros((1, UNITS))})
    runner = StreamingRunner(path)
    states = runner.states
    with pytest.raises(ValueError, match=r"'state_1_c' must hold \(1, 8\) values. Received shape \(3,\)"):
        runner.reset({**states, "state_1_c": np.zeros(3)})
    with pytest.raises(ValueError, match=r"'token_id' takes .* Received shape \(2,\)"):
        runner.step([1, 2])
    with pytest.raises(ValueError, match="at least one time step"):
        runner.run([])
    with pytest.raises(ValueError, match="num_threads=0"):
        StreamingRunner(path, num_threads=0)
    with pytest.raises(KeyError, match=r"no signature 'decode'.*\['step'\]"):
        StreamingRunner(path, signature="decode")


def test_a_signature_without_states_is_not_a_stream():
    import tensorflow as tf

    dense = keras.layers.Dense(3)
    dense.build((None, 4))
    endpoints = {"step": (lambda x: {"y": dense(x)}, [tf.TensorSpec([1, 4], tf.float32, name="x")])}
    content = convert(dense, endpoints)
    with pytest.raises(ValueError, match=r"not a streaming step.*inputs are \['x'\]"):
        StreamingRunner(content)
    # The plain signature runner still opens it, from bytes as from a path.
    assert load_signature_runner(content, "step")(x=np.ones((1, 4), np.float32))["y"].shape == (1, 3)


def test_float_input_stream_takes_feature_vectors():
    keras.utils.set_random_seed(2)
    layer = nlpkit.layers.LSTM(UNITS, return_sequences=True)
    frames = np.random.default_rng(3).normal(size=(40, 3)).astype(np.float32)
    expected = layer(frames[None])[0].numpy()
    stack = StreamingStack(layer)
    runner = StreamingRunner(convert(stack, stack.tflite_endpoints()))
    assert runner.input_name == "inputs" and runner.output_names == ("output",)
    np.testing.assert_allclose(runner.run(frames), expected, rtol=0, atol=1e-4)
    # The final hidden state is the last output.
    np.testing.assert_allclose(runner.states["state_0_h"][0], expected[-1], rtol=0, atol=1e-4)


def test_streaming_does_not_import_tensorflow(language_model, tokens, expected_logits):
    _, path = language_model
    script = textwrap.dedent(
        """
        import sys

        import numpy as np

        from nlpkit.lite import StreamingRunner

        runner = StreamingRunner(sys.argv[1])
        logits = runner.run([int(token) for token in sys.argv[2:]])
        resumed = StreamingRunner(sys.argv[1], states=runner.states).step(3)
        heavy = sorted(name for name in ("tensorflow", "keras", "tf_keras") if name in sys.modules)
        assert not heavy, heavy
        print(" ".join(str(int(i)) for i in logits.argmax(-1)), resumed.shape)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(path), *map(str, tokens[:20])],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr
    *predicted, shape = result.stdout.split(" (")
    assert shape.strip() == f"{VOCABULARY_SIZE},)"
    assert [int(i) for i in predicted[0].split()] == list(expected_logits[:20].argmax(-1))
