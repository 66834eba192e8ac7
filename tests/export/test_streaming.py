"""Tests for nlpkit.export.streaming: the TFLite ``step`` signature of recurrent stacks.

Every model gets random weights of unit-ish scale (the default initializers with
small inputs give outputs near zero, under which a broken recurrence could hide) and is fed
200 steps. The TFLite signature runs through the raw LiteRT signature runner here, with the
states carried by hand, so the test pins the signature contract itself; `nlpkit.lite`'s
runner has its own tests in tests/lite/test_streaming.py.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

import nlpkit
from nlpkit.errors import NotStreamableError
from nlpkit.export import STEP_SIGNATURE, StreamingStack, audit_ops, convert

STEPS = 200
FEATURES = 5
UNITS = 8
VOCABULARY_SIZE = 64
# Big enough for dynamic-range quantization, which leaves tensors under 1024 values in float.
STACK_UNITS = 16

LAYERS = {
    "simple_rnn": lambda: nlpkit.layers.SimpleRNN(UNITS, return_sequences=True),
    "lstm": lambda: nlpkit.layers.LSTM(UNITS, return_sequences=True),
    "gru_reset_after": lambda: nlpkit.layers.GRU(UNITS, return_sequences=True, reset_after=True),
    "gru_reset_before": lambda: nlpkit.layers.GRU(UNITS, return_sequences=True, reset_after=False),
}
STATE_NAMES = {
    "simple_rnn": ("state_0_h",),
    "lstm": ("state_0_h", "state_0_c"),
    "gru_reset_after": ("state_0_h",),
    "gru_reset_before": ("state_0_h",),
}


def randomize(layers, seed, scale=0.5):
    """Overwrites every weight with normal noise, so each gate and bias matters."""
    rng = np.random.default_rng(seed)
    for layer in layers:
        layer.set_weights([rng.normal(0, scale, w.shape).astype(np.float32) for w in layer.get_weights()])


def build_layer(kind, seed=0):
    keras.utils.set_random_seed(seed)
    layer = LAYERS[kind]()
    layer(np.zeros((1, 1, FEATURES), np.float32))
    randomize([layer], seed)
    return layer


def stack_layers(seed=0):
    """Embedding -> LSTM -> Dropout -> GRU (reset_after=False) -> Dense: token id in, logits out."""
    keras.utils.set_random_seed(seed)
    return [
        keras.layers.Embedding(VOCABULARY_SIZE, STACK_UNITS),
        nlpkit.layers.LSTM(STACK_UNITS, return_sequences=True),
        keras.layers.Dropout(0.5),
        nlpkit.layers.GRU(STACK_UNITS, return_sequences=True, reset_after=False),
        keras.layers.Dense(VOCABULARY_SIZE),
    ]


def build_stack_model(seed=0):
    model = keras.Sequential([keras.Input((None,), dtype="int32"), *stack_layers(seed)])
    randomize(model.layers, seed)
    return model


def run_step_signature(content, inputs, state_names):
    """Feeds ``inputs`` (time first) one step per invoke, carrying the states by hand."""
    runner = Interpreter(model_content=content, num_threads=1).get_signature_runner(STEP_SIGNATURE)
    details = runner.get_input_details()
    states = {name: np.zeros(details[name]["shape"], np.float32) for name in state_names}
    input_name = next(name for name in details if name not in state_names)
    outputs = []
    for inputs_t in inputs:
        result = runner(**{input_name: inputs_t[None]}, **states)
        states = {name: result[name] for name in state_names}
        outputs.append(result["output"][0] if "output" in result else result["logits"][0])
    return np.stack(outputs), states


def float_sequence(seed=1):
    return np.random.default_rng(seed).normal(size=(STEPS, FEATURES)).astype(np.float32)


def token_sequence(seed=1):
    return np.random.default_rng(seed).integers(0, VOCABULARY_SIZE, STEPS).astype(np.int32)


def assert_varied(outputs):
    # A recurrence stuck at zero or saturated at +-1 would match anything.
    assert np.abs(outputs).max() > 0.1 and outputs.std(axis=0).mean() > 0.05


@pytest.fixture(scope="module")
def single_layers():
    """kind -> (layer, float32 content): each converted once for the module."""
    converted = {}
    for kind in LAYERS:
        layer = build_layer(kind)
        stack = StreamingStack(layer)
        converted[kind] = (layer, convert(stack, stack.tflite_endpoints()))
    return converted


@pytest.fixture(scope="module")
def stack_model():
    model = build_stack_model()
    stack = StreamingStack(model, output_name="logits")
    return (
        model,
        convert(stack, stack.tflite_endpoints()),
        convert(stack, stack.tflite_endpoints(), quantization="dynamic_range"),
    )


# ---------------------------------------------------------------------------------------------
# One layer: SimpleRNN, LSTM, GRU (reset_after both ways)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(LAYERS))
def test_tflite_step_matches_the_full_sequence_for_200_steps(kind, single_layers):
    layer, content = single_layers[kind]
    inputs = float_sequence()
    expected = layer(inputs[None], training=False)[0].numpy()
    assert_varied(expected)

    outputs, _ = run_step_signature(content, inputs, STATE_NAMES[kind])
    np.testing.assert_allclose(outputs, expected, rtol=0, atol=1e-4)


@pytest.mark.parametrize("kind", list(LAYERS))
def test_keras_layer_step_loop_matches_the_full_sequence(kind, single_layers):
    layer, _ = single_layers[kind]
    inputs = float_sequence(seed=2)
    expected = layer(inputs[None], training=False)[0].numpy()
    step = tf.function(layer.step)
    states = layer.get_initial_state(1)
    assert [tuple(state.shape) for state in states] == [(1, UNITS)] * len(STATE_NAMES[kind])
    outputs = []
    for inputs_t in inputs:
        output, states = step(inputs_t[None], states)
        outputs.append(output[0].numpy())
    np.testing.assert_allclose(np.stack(outputs), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("kind", list(LAYERS))
def test_step_signature_is_builtin_ops_without_a_loop(kind, single_layers):
    _, content = single_layers[kind]
    audit = audit_ops(content)
    assert audit.builtin_only and "WHILE" not in audit.builtin
    assert "FULLY_CONNECTED" in audit.builtin
    signature = Interpreter(model_content=content).get_signature_list()
    names = STATE_NAMES[kind]
    assert signature == {
        "step": {"inputs": sorted(("inputs",) + names), "outputs": sorted(("output",) + names)}
    }


def test_step_signature_keeps_no_state_between_invokes(single_layers):
    _, content = single_layers["lstm"]
    runner = Interpreter(model_content=content, num_threads=1).get_signature_runner("step")
    feed = {
        "inputs": float_sequence()[:1],
        "state_0_h": np.full((1, UNITS), 0.3, np.float32),
        "state_0_c": np.full((1, UNITS), -0.2, np.float32),
    }
    first = {name: value.copy() for name, value in runner(**feed).items()}
    for _ in range(3):
        again = runner(**feed)
        for name, value in first.items():
            np.testing.assert_array_equal(again[name], value, err_msg=name)
    # The states in really are used: other states in, other output out.
    other = runner(**{**feed, "state_0_c": np.zeros((1, UNITS), np.float32)})
    assert np.abs(other["output"] - first["output"]).max() > 1e-3


def test_step_signature_starts_from_given_states(single_layers):
    layer, content = single_layers["gru_reset_after"]
    inputs = float_sequence(seed=3)
    expected = layer(inputs[None], training=False)[0].numpy()
    runner = Interpreter(model_content=content, num_threads=1).get_signature_runner("step")
    state = {"state_0_h": np.zeros((1, UNITS), np.float32)}
    for t in range(120):
        state = {"state_0_h": runner(inputs=inputs[t][None], **state)["state_0_h"]}
    np.testing.assert_allclose(state["state_0_h"][0], expected[119], rtol=0, atol=1e-4)
    # Continuing from the carried state with a fresh interpreter gives the rest of the sequence.
    fresh = Interpreter(model_content=content, num_threads=1).get_signature_runner("step")
    output = fresh(inputs=inputs[120][None], **state)["output"][0]
    np.testing.assert_allclose(output, expected[120], rtol=0, atol=1e-4)


# ---------------------------------------------------------------------------------------------
# A language-model shaped stack: Embedding -> LSTM -> Dropout -> GRU -> Dense
# ---------------------------------------------------------------------------------------------


def test_stack_step_signature_matches_the_full_sequence_for_200_steps(stack_model):
    model, content, _ = stack_model
    ids = token_sequence()
    expected = model(ids[None], training=False)[0].numpy()
    assert_varied(expected)

    signature = Interpreter(model_content=content).get_signature_list()["step"]
    names = ("state_0_c", "state_0_h", "state_1_h")
    assert signature == {"inputs": sorted(("token_id",) + names), "outputs": sorted(("logits",) + names)}
    outputs, states = run_step_signature(content, ids, names)
    np.testing.assert_allclose(outputs, expected, rtol=0, atol=1e-4)
    assert states["state_0_c"].shape == (1, STACK_UNITS)


def test_stack_keras_step_loop_matches_the_full_sequence(stack_model):
    model, _, _ = stack_model
    stack = StreamingStack(model, output_name="logits")
    ids = token_sequence(seed=4)
    expected = model(ids[None], training=False)[0].numpy()
    step = tf.function(stack.step)
    states = stack.initial_states()
    outputs = []
    for token in ids:
        output, states = step(tf.constant([token]), states)
        outputs.append(output[0].numpy())
    np.testing.assert_allclose(np.stack(outputs), expected, rtol=0, atol=1e-5)


def test_stack_step_is_builtin_ops_without_a_loop(stack_model):
    _, content, int8_content = stack_model
    for model in (content, int8_content):
        audit = audit_ops(model)
        assert audit.builtin_only and "WHILE" not in audit.builtin
        assert {"GATHER", "FULLY_CONNECTED", "LOGISTIC", "TANH"} <= set(audit.builtin)


def test_int8_stack_step_runs_and_stays_close(stack_model):
    model, content, int8_content = stack_model
    print(f"step model: float32 {len(content)} bytes, int8 {len(int8_content)} bytes")
    int8_tensors = [
        detail["name"] for detail in Interpreter(model_content=int8_content).get_tensor_details()
        if detail["dtype"] == np.int8
    ]
    # Embedding, both LSTM kernels and the Dense kernel hold >= 1024 values each.
    assert len(int8_tensors) >= 4, int8_tensors
    assert len(int8_content) < 0.75 * len(content)
    ids = token_sequence(seed=5)
    expected = model(ids[None], training=False)[0].numpy()
    outputs, _ = run_step_signature(int8_content, ids, ("state_0_c", "state_0_h", "state_1_h"))
    error = np.abs(outputs - expected)
    print(f"int8 vs Keras over {STEPS} steps: max {error.max():.4f}, mean {error.mean():.5f}, "
          f"output std {expected.std():.3f}")
    assert error.mean() < 0.05 * expected.std()
    assert error.max() < 0.25 * expected.std()
    # The most likely next token agrees at nearly every step.
    assert (outputs.argmax(-1) == expected.argmax(-1)).mean() >= 0.9


# ---------------------------------------------------------------------------------------------
# The StreamingStack: the forms a stack can be given in, names, errors
# ---------------------------------------------------------------------------------------------


def test_sequential_functional_and_list_forms_are_the_same_stack(stack_model):
    model, _, _ = stack_model
    inputs = keras.Input((None,), dtype="int32")
    x = inputs
    for layer in model.layers:
        x = layer(x)
    functional = keras.Model(inputs, x)
    forms = [StreamingStack(form) for form in (model, functional, list(model.layers))]
    for stack in forms:
        assert stack.layers == tuple(model.layers)
        assert stack.state_names == ("state_0_h", "state_0_c", "state_1_h")
        assert stack.state_sizes == (STACK_UNITS,) * 3
        assert stack.input_name == "token_id" and stack.output_name == "output"
        assert [spec.name for spec in stack.input_signature()] == ["token_id", *stack.state_names]
    # A nested Sequential unrolls into the same chain.
    nested = keras.Sequential([keras.Input((None,), dtype="int32"),
                               keras.Sequential(model.layers[:2]), *model.layers[2:]])
    assert StreamingStack(nested).layers == tuple(model.layers)


def test_float_inputs_and_time_distributed_layers_stream():
    keras.utils.set_random_seed(3)
    inputs = keras.Input((None, FEATURES))
    x = keras.layers.Dense(6, activation="relu")(inputs)
    x = nlpkit.layers.LSTM(UNITS, return_sequences=True)(x)
    x = keras.layers.TimeDistributed(keras.layers.Dense(3))(x)
    x = keras.layers.Softmax()(x)
    model = keras.Model(inputs, x)
    randomize(model.layers, 3)
    stack = StreamingStack(model, input_name="frame", output_name="probabilities")
    assert stack.input_signature()[0] == tf.TensorSpec([1, FEATURES], tf.float32, name="frame")
    sequence = float_sequence()[:20]
    expected = model(sequence[None])[0].numpy()
    states, outputs = stack.initial_states(), []
    for inputs_t in sequence:
        output, states = stack.step(inputs_t[None], states)
        outputs.append(output[0])
    np.testing.assert_allclose(np.stack(outputs), expected, rtol=0, atol=1e-5)


def test_a_last_layer_without_return_sequences_streams_its_running_output():
    keras.utils.set_random_seed(4)
    layer = nlpkit.layers.GRU(UNITS)
    sequence = float_sequence()[:12]
    final = layer(sequence[None]).numpy()[0]
    stack = StreamingStack([layer])
    states = stack.initial_states()
    for inputs_t in sequence:
        output, states = stack.step(inputs_t[None], states)
    np.testing.assert_allclose(output[0], final, rtol=0, atol=1e-5)


def test_layers_marked_per_time_step_are_accepted():
    class Scale(keras.layers.Layer):
        applies_per_time_step = True

        def call(self, inputs):
            return 2.0 * inputs

    layer = nlpkit.layers.SimpleRNN(4)
    layer(np.zeros((1, 1, 3), np.float32))
    scale = Scale()
    scale.build((None, None, 4))
    stack = StreamingStack([layer, scale])
    output, _ = stack.step(np.ones((1, 3), np.float32), stack.initial_states())
    expected, _ = layer.step(np.ones((1, 3), np.float32), layer.get_initial_state(1))
    np.testing.assert_allclose(output, 2.0 * expected.numpy(), atol=1e-6)


def built(layer, shape=(1, 2, FEATURES), dtype="float32"):
    layer(np.zeros(shape, dtype))
    return layer


def test_bidirectional_layer_raises_naming_the_layer():
    wrapped = built(keras.layers.Bidirectional(nlpkit.layers.LSTM(4, return_sequences=True),
                                               name="bi_encoder"))
    with pytest.raises(NotStreamableError, match=r"bi_encoder \(Bidirectional\) is bidirectional"):
        StreamingStack([built(nlpkit.layers.GRU(8, return_sequences=True)), wrapped])
    inputs = keras.Input((None, FEATURES))
    model = keras.Model(inputs, keras.layers.Bidirectional(nlpkit.layers.GRU(4), name="bi")(inputs))
    with pytest.raises(NotStreamableError, match="bi .*bidirectional"):
        StreamingStack(model)


@pytest.mark.parametrize(
    "layers, match",
    [
        (lambda: [built(nlpkit.layers.LSTM(4, go_backwards=True, name="rev"))], r"rev .*go_backwards"),
        (lambda: [built(keras.layers.LSTM(4, name="stock"))], r"stock \(LSTM\) is a stock Keras"),
        (lambda: [built(nlpkit.layers.LSTM(4, return_sequences=True)),
                  built(keras.layers.GlobalAveragePooling1D(name="pool"), (1, 2, 4))],
         r"pool \(GlobalAveragePooling1D\) is not known to act on each time step"),
        (lambda: [built(nlpkit.layers.LSTM(4, return_sequences=True)),
                  built(keras.layers.Embedding(10, 4, name="late"), (1, 2), "int32")],
         r"late \(Embedding\) is at position 1"),
        (lambda: [nlpkit.layers.GRU(4, name="fresh")], r"fresh \(GRU\) is not built"),
        (lambda: [built(keras.layers.Dense(4, name="lonely"))], r"\['lonely'\] has no recurrent layer"),
        (lambda: [], "Nothing to stream"),
    ],
    ids=["go_backwards", "stock_keras", "pooling", "late_embedding", "unbuilt", "no_rnn", "empty"],
)
def test_unstreamable_stacks_raise_naming_the_layer(layers, match):
    with pytest.raises(NotStreamableError, match=match):
        StreamingStack(layers())


def test_functional_models_that_are_not_chains_are_refused():
    inputs = keras.Input((None, FEATURES))
    x = nlpkit.layers.GRU(FEATURES, return_sequences=True)(inputs)
    skip = keras.layers.Add(name="skip")([x, inputs])
    with pytest.raises(NotStreamableError, match=r"skip \(Add\) .* takes 2 tensors"):
        StreamingStack(keras.Model(inputs, skip))


def test_subclassed_models_must_be_given_as_layer_lists():
    model = nlpkit.models.TextClassifier(vocabulary_size=20, num_classes=2, embedding_dim=4,
                                         units=4, bidirectional=False)
    model(np.zeros((1, 3), np.int32))
    with pytest.raises(NotStreamableError, match="subclassed model .* list"):
        StreamingStack(model)
    with pytest.raises(TypeError, match="Received: 'lstm'"):
        StreamingStack("lstm")


def test_names_are_validated():
    layer = built(nlpkit.layers.LSTM(4))
    with pytest.raises(ValueError, match="state_0_c"):
        StreamingStack(layer, output_name="state_0_c")
    with pytest.raises(ValueError, match="Received: output_name=''"):
        StreamingStack(layer, output_name="")
    stack = StreamingStack(layer)
    with pytest.raises(ValueError, match="carries 2 states .* received 1"):
        stack.step(np.zeros((1, FEATURES), np.float32), [np.zeros((1, 4), np.float32)])


def test_endpoints_merge_with_other_signatures_under_any_name(stack_model):
    model, _, _ = stack_model
    stack = StreamingStack(model, output_name="logits")
    endpoints = {**stack.tflite_endpoints(name="decode_step")}
    function, signature = endpoints["decode_step"]
    states = [np.zeros((1, STACK_UNITS), np.float32)] * 3
    result = function(tf.constant([3]), *states)
    assert sorted(result) == ["logits", "state_0_c", "state_0_h", "state_1_h"]
    assert [spec.shape.as_list() for spec in signature] == [[1]] + [[1, STACK_UNITS]] * 3
