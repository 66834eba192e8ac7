"""Tests for nlpkit.layers.fused_lstm: LSTM exported as TFLite's UNIDIRECTIONAL_SEQUENCE_LSTM.

Two kinds of test. Trace tests run the fusable form in TensorFlow (the function body is
nlpkit's loop there), which checks the slicing, padding and state logic around the op for
every combination of options in milliseconds. Conversion tests run the real fused op in
LiteRT at realistic sizes (T up to 100, E=64, H=128) against Keras, where the layers run
their own loop.
"""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from nlpkit.export import audit_ops, convert, count_ops
from nlpkit.layers import LSTM
from nlpkit.layers.fused_lstm import (
    AUTO_FUSED_MAX_UNITS,
    FUSED_OP,
    _fusable_lstm,
    final_cell_state,
    lstm_export_form,
)
from nlpkit.lite.runtime import load_signature_runner
from nlpkit.models import TextClassifier

EMBED, UNITS = 64, 128
ATOL = 1e-4


def padded(valid, padding, features=EMBED, seed=0):
    """One sequence of ``valid`` random steps followed by ``padding`` zero steps."""
    x = np.random.default_rng(seed).normal(size=(1, valid + padding, features)).astype("float32")
    x[:, valid:] = 0.0
    return x


def endpoint(model, features=EMBED):
    return {
        "encode": (
            lambda x: {"y": model(x, training=False)},
            [tf.TensorSpec([1, None, features], tf.float32, name="x")],
        )
    }


def keras_reference(model, features=EMBED):
    return tf.function(
        lambda x: model(x, training=False), input_signature=[tf.TensorSpec([1, None, features])]
    )


def encoder_model():
    """Bidirectional LSTM, then a backward LSTM with states: stacked, masked, go_backwards."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, EMBED), batch_size=1)
    x = keras.layers.Masking()(inputs)
    x = keras.layers.Bidirectional(LSTM(UNITS, return_sequences=True))(x)
    output, h, c = LSTM(UNITS, return_state=True, go_backwards=True)(x)
    return keras.Model(inputs, keras.layers.Concatenate()([output, h, c]))


def initial_state_model():
    """An LSTM whose final states start a second LSTM that returns every step."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((None, EMBED), batch_size=1)
    x = keras.layers.Masking()(inputs)
    _, h, c = LSTM(UNITS, return_state=True)(x)
    return keras.Model(inputs, LSTM(UNITS, return_sequences=True)(x, initial_state=[h, c]))


@pytest.fixture(scope="module")
def encoder():
    model = encoder_model()
    return model, convert(model, endpoint(model), lstm="fused")


# ---------------------------------------------------------------------------------------------
# Conversion: the fused op, built-ins only, parity with Keras
# ---------------------------------------------------------------------------------------------

# (valid steps, padding steps): unpadded, padded, one valid step, nothing valid.
CASES = [(50, 0), (100, 0), (60, 40), (1, 49), (0, 10)]


@pytest.mark.slow
def test_fused_encoder_has_one_fused_op_per_lstm_and_only_builtins(encoder):
    _, content = encoder
    audit = audit_ops(content)
    print(audit.builtin)
    assert audit.builtin_only and audit.custom == ()
    assert count_ops(content, FUSED_OP) == 3  # forward, backward, then the stacked layer
    assert count_ops(content, "WHILE") == 0


@pytest.mark.slow
def test_fused_encoder_matches_keras_with_and_without_padding(encoder):
    model, content = encoder
    reference = keras_reference(model)
    runner = Interpreter(model_content=content, num_threads=1).get_signature_runner("encode")
    outputs = {}
    for valid, padding in CASES:
        x = padded(valid, padding, seed=valid)
        expected = reference(x).numpy()
        actual = runner(x=x)["y"]
        assert actual.shape == (1, 3 * UNITS)  # output, h, c
        np.testing.assert_allclose(actual, expected, rtol=0, atol=ATOL, err_msg=f"{valid}+{padding}")
        outputs[valid, padding] = actual
    # Padding must not change the outputs, and the outputs must depend on the input.
    np.testing.assert_allclose(outputs[60, 40], keras_reference(model)(padded(60, 0, seed=60)), atol=ATOL)
    assert np.abs(outputs[50, 0] - outputs[100, 0]).max() > 1e-2
    np.testing.assert_array_equal(outputs[0, 10], 0.0)


@pytest.mark.slow
def test_while_form_has_no_fused_op_and_matches_keras():
    inputs = keras.Input((None, 4), batch_size=1)
    model = keras.Model(inputs, keras.layers.Bidirectional(LSTM(8))(keras.layers.Masking()(inputs)))
    content = convert(model, endpoint(model, features=4), lstm="while")
    assert count_ops(content, FUSED_OP) == 0 and count_ops(content, "WHILE") == 2
    x = padded(20, 5, features=4)
    output = Interpreter(model_content=content).get_signature_runner("encode")(x=x)["y"]
    np.testing.assert_allclose(output, keras_reference(model, features=4)(x), rtol=0, atol=ATOL)


def fused_cell_clips(content):
    """The ``cell_clip`` option of every fused LSTM op of a TFLite model."""
    from tensorflow.lite.python import schema_py_generated as schema

    from nlpkit.export.tflite import _operator_name

    flatbuffer = schema.Model.GetRootAsModel(content, 0)
    clips = []
    for s in range(flatbuffer.SubgraphsLength()):
        subgraph = flatbuffer.Subgraphs(s)
        for o in range(subgraph.OperatorsLength()):
            operator = subgraph.Operators(o)
            if _operator_name(flatbuffer.OperatorCodes(operator.OpcodeIndex())) == FUSED_OP:
                options = schema.UnidirectionalSequenceLSTMOptions()
                options.Init(operator.BuiltinOptions().Bytes, operator.BuiltinOptions().Pos)
                clips.append(options.CellClip())
    return clips


def test_fused_op_does_not_clip_a_cell_state_past_10():
    # One unit whose gates are all but open: the cell adds tanh(3 x) = +-0.995 each step, so
    # 20 steps of +1 take it to 19.9 and 15 of -1 back to 5.0. The converter's cell_clip of
    # 10 would stop it at 10 and end at -4.9, with the output's sign flipped.
    inputs = keras.Input((None, 1), batch_size=1)
    layer = LSTM(1, return_sequences=True)
    model = keras.Model(inputs, layer(inputs))
    layer.set_weights([np.array([[0.0, 0.0, 3.0, 0.0]], "float32"), np.zeros((1, 4), "float32"),
                       np.array([10.0, 10.0, 0.0, 10.0], "float32")])
    x = np.concatenate([np.ones(20), -np.ones(15)]).astype("float32").reshape(1, 35, 1)
    reference = keras_reference(model, features=1)(x).numpy()
    assert reference[0, -1, 0] > 0.99  # tanh(5.0): the unclipped cell state
    content = convert(model, endpoint(model, features=1), lstm="fused")
    assert fused_cell_clips(content) == [0.0]
    output = Interpreter(model_content=content).get_signature_runner("encode")(x=x)["y"]
    np.testing.assert_allclose(output, reference, rtol=0, atol=ATOL)


@pytest.mark.slow
def test_initial_state_from_another_lstm_is_fed_to_the_fused_op():
    model = initial_state_model()
    content = convert(model, endpoint(model), lstm="fused")
    assert count_ops(content, FUSED_OP) == 2 and audit_ops(content).builtin_only
    reference = keras_reference(model)
    runner = Interpreter(model_content=content).get_signature_runner("encode")
    for valid, padding in CASES:
        x = padded(valid, padding, seed=valid + 1)
        np.testing.assert_allclose(runner(x=x)["y"], reference(x).numpy(), rtol=0, atol=ATOL,
                                   err_msg=f"{valid}+{padding}")


# ---------------------------------------------------------------------------------------------
# No state survives invoke()
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_repeated_calls_of_one_interpreter_equal_a_fresh_interpreter(encoder, tmp_path):
    _, content = encoder
    path = tmp_path / "encoder.tflite"
    path.write_bytes(content)
    first, second = padded(50, 0, seed=3), padded(50, 0, seed=4)  # same length: no reallocation
    used = load_signature_runner(path, "encode")
    used(x=first)
    after_first = used(x=second)["y"].copy()
    again = used(x=second)["y"].copy()
    fresh = load_signature_runner(path, "encode")(x=second)["y"]
    np.testing.assert_array_equal(after_first, fresh)
    np.testing.assert_array_equal(again, fresh)


@pytest.mark.slow
def test_a_constant_initial_state_would_leak_between_calls():
    # Why the graph computes the op's states: with constant zeros the converter makes them
    # variables that the op overwrites, and the next call of the same length starts from
    # the previous call's final state. If this ever stops failing, the workaround can go.
    rng = np.random.default_rng(0)
    kernel, recurrent, bias = (tf.constant(rng.normal(scale=0.3, size=shape), tf.float32)
                               for shape in ((4, 32), (8, 32), (32,)))
    fused = _fusable_lstm()

    @tf.function(input_signature=[tf.TensorSpec([1, None, 4], tf.float32)])
    def run(x):
        zeros = tf.zeros([1, 8])
        return {"y": fused(x, zeros, zeros, kernel, recurrent, bias)[1]}

    module = tf.Module()
    module.run = run
    converter = tf.lite.TFLiteConverter.from_concrete_functions([run.get_concrete_function()], module)
    content = converter.convert()
    assert count_ops(content, FUSED_OP) == 1
    runner = Interpreter(model_content=content).get_signature_runner()
    x = rng.normal(size=(1, 5, 4)).astype("float32")
    once, twice = runner(x=x)["y"].copy(), runner(x=x)["y"].copy()
    assert np.abs(once - twice).max() > 1e-3


# ---------------------------------------------------------------------------------------------
# A realistic classifier: float32 parity and int8 sanity
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_lstm_text_classifier_exports_fused_by_default_in_float32_and_int8():
    vocabulary = 1000
    keras.utils.set_random_seed(0)
    model = TextClassifier(vocabulary_size=vocabulary, num_classes=3, embedding_dim=EMBED,
                           units=UNITS, cell="lstm", bidirectional=False, pooling="max_mean")
    model(np.zeros((1, 1), np.int32))
    # Unit-scale word vectors, so that scores really depend on the text.
    model.set_embeddings(np.random.default_rng(0).normal(size=(vocabulary, EMBED)).astype("float32"))
    reference = tf.function(lambda ids: model(ids, training=False),
                            input_signature=[tf.TensorSpec([1, None], tf.int32)])
    rng = np.random.default_rng(5)
    texts = [rng.integers(1, vocabulary, size=(1, length), dtype=np.int32)
             for length in rng.integers(1, 100, size=20)]
    texts.append(np.concatenate([texts[0], np.zeros((1, 7), np.int32)], axis=1))
    expected = np.concatenate([reference(ids).numpy() for ids in texts])
    assert expected.argmax(-1).min() != expected.argmax(-1).max(), "every text got one label"

    scores = {}
    for precision, quantization in (("float32", None), ("int8", "dynamic_range")):
        content = convert(model, model.tflite_endpoints(), quantization=quantization)
        assert count_ops(content, FUSED_OP) == 1 and count_ops(content, "WHILE") == 0
        runner = Interpreter(model_content=content).get_signature_runner("classify")
        scores[precision] = np.concatenate([runner(token_ids=ids)["scores"] for ids in texts])
    np.testing.assert_allclose(scores["float32"], expected, rtol=0, atol=ATOL)
    # int8 weights move the scores a little, and rarely a label.
    assert np.abs(scores["int8"] - expected).max() < 0.05
    assert (scores["int8"].argmax(-1) == expected.argmax(-1)).mean() >= 0.9


# ---------------------------------------------------------------------------------------------
# Trace tests: the logic around the op, run in TensorFlow
# ---------------------------------------------------------------------------------------------

TRACE_UNITS, TRACE_FEATURES, TRACE_TIME = 16, 8, 30
SEQUENCE_OPTIONS = [  # (return_sequences, zero_output_for_mask)
    (False, False), (True, False), (True, True)
]


def random_lstm(seed, **options):
    layer = LSTM(TRACE_UNITS, return_state=True, **options)
    layer.build((1, None, TRACE_FEATURES))
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.normal(scale=0.5, size=w.shape).astype("float32") for w in layer.get_weights()])
    return layer


def trace_fused(layer, mask, initial_state):
    """The layer's call traced in the fused form, as a function of its inputs."""
    spec = [tf.TensorSpec([1, None, TRACE_FEATURES])]
    call = lambda x: layer(x, mask=None if mask is None else tf.constant(mask),  # noqa: E731
                           initial_state=initial_state, training=False)
    with lstm_export_form("fused") as export:
        concrete = tf.function(call, input_signature=spec).get_concrete_function()
    assert set(export.fused) == {layer.name} and export.kept_while == []
    return concrete


@pytest.mark.parametrize(
    "go_backwards, masked, sequence_options",
    list(itertools.product((False, True), (False, True), SEQUENCE_OPTIONS)),
)
def test_fused_form_gives_the_loop_outputs(go_backwards, masked, sequence_options):
    return_sequences, zero_output_for_mask = sequence_options
    # Half the cases start from given states; every option meets both kinds of start.
    initial = go_backwards != masked
    layer = random_lstm(1, go_backwards=go_backwards, return_sequences=return_sequences,
                        zero_output_for_mask=zero_output_for_mask)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(1, TRACE_TIME, TRACE_FEATURES)).astype("float32")
    mask = None
    if masked:
        mask = np.arange(TRACE_TIME)[None] < 17
        x[~mask] = 50.0  # junk in the padding must not leak into any output
    initial_state = None
    if initial:
        initial_state = [tf.constant(rng.normal(size=(1, TRACE_UNITS)), tf.float32) for _ in range(2)]

    fused = trace_fused(layer, mask, initial_state)(tf.constant(x))
    loop = layer(x, mask=mask, initial_state=initial_state, training=False)
    assert len(fused) == len(loop) == 3
    for name, a, b in zip(("output", "h", "c"), fused, loop):
        assert tuple(a.shape) == tuple(b.shape), name
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=1e-5, err_msg=name)


def test_fully_masked_sequence_keeps_the_initial_state():
    layer = random_lstm(3, return_sequences=True)
    mask = np.zeros((1, 5), bool)
    initial_state = [tf.fill([1, TRACE_UNITS], 0.5), tf.fill([1, TRACE_UNITS], -0.25)]
    x = np.ones((1, 5, TRACE_FEATURES), np.float32)
    output, h, c = trace_fused(layer, mask, initial_state)(tf.constant(x))
    np.testing.assert_array_equal(h.numpy(), 0.5)
    np.testing.assert_array_equal(c.numpy(), -0.25)
    np.testing.assert_array_equal(output.numpy(), 0.5)  # masked steps repeat the state


def test_final_cell_state_matches_the_recurrence_over_100_steps():
    layer = LSTM(UNITS, return_sequences=True, return_state=True)
    layer.build((1, None, EMBED))
    x = tf.constant(padded(100, 0, seed=7))
    initial_state = [tf.random.normal([1, UNITS], seed=1), tf.random.normal([1, UNITS], seed=2)]
    outputs, _, c = layer(x, initial_state=initial_state)
    rebuilt = final_cell_state(x, outputs, *initial_state, layer.kernel, layer.recurrent_kernel, layer.bias)
    np.testing.assert_allclose(rebuilt.numpy(), c.numpy(), rtol=0, atol=1e-5)


def test_auto_fuses_narrow_layers_and_keeps_the_loop_for_wide_ones():
    narrow, wide = LSTM(AUTO_FUSED_MAX_UNITS), LSTM(AUTO_FUSED_MAX_UNITS + 1)
    spec = tf.TensorSpec([1, None, 4])
    with lstm_export_form("auto") as export:
        tf.function(lambda x: [narrow(x), wide(x)], input_signature=[spec]).get_concrete_function()
    assert set(export.fused) == {narrow.name}
    assert export.unfused_layers() == {wide.name: "the WHILE loop measured faster for this layer"}


def test_outside_an_export_the_layer_runs_its_own_loop():
    layer = LSTM(4)
    with lstm_export_form("while") as export:
        tf.function(layer, input_signature=[tf.TensorSpec([1, None, 3])]).get_concrete_function()
    assert export.fused == [] and export.kept_while == []
    graph = tf.function(layer, input_signature=[tf.TensorSpec([1, None, 3])]).get_concrete_function().graph
    assert any("While" in op.type for op in graph.get_operations())


@pytest.mark.parametrize(
    "options, input_shape, masked, reason",
    [
        ({"activation": "relu"}, (1, None, 4), False, "activation 'relu' is not tanh"),
        ({"recurrent_activation": "hard_sigmoid"}, (1, None, 4), False, "recurrent_activation"),
        ({}, (None, None, 4), False, "batch size is not static"),
        ({}, (2, None, 4), True, "masked inputs need batch 1"),
        ({"layer_norm": True}, (1, None, 4), False, "layer_norm=True"),
        ({"stateful": True}, (1, None, 4), False, "stateful"),
    ],
)
def test_layers_that_cannot_be_fused_keep_the_loop_and_say_why(options, input_shape, masked, reason):
    layer = LSTM(4, **options)
    spec = tf.TensorSpec(input_shape)

    def call(x):
        return layer(x, mask=tf.reduce_any(x != 0, axis=-1) if masked else None)

    with lstm_export_form("fused") as export:
        tf.function(call, input_signature=[spec]).get_concrete_function()
    assert export.fused == []
    assert reason in export.unfused_layers()[layer.name]


def test_convert_fused_names_the_layer_that_cannot_be_fused():
    inputs = keras.Input((None, 4), batch_size=1)
    model = keras.Model(inputs, LSTM(4, activation="relu", name="relu_lstm")(inputs))
    with pytest.raises(ValueError, match="relu_lstm.*activation 'relu' is not tanh"):
        convert(model, endpoint(model, features=4), lstm="fused")


def test_unknown_form_is_rejected_by_name():
    with pytest.raises(ValueError, match="'unrolled'"):
        with lstm_export_form("unrolled"):
            pass
    inputs = keras.Input((None, 4), batch_size=1)
    model = keras.Model(inputs, LSTM(4)(inputs))
    with pytest.raises(ValueError, match="lstm='unrolled'"):
        convert(model, endpoint(model, features=4), lstm="unrolled")
