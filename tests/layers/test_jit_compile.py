"""`jit_compile` of nlpkit's recurrent layers: XLA gives the same results, and "auto" picks it only where it pays."""

import functools
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from nlpkit.layers import GRU, LSTM, Bidirectional, Mamba, MinGRU, MinLSTM, SimpleRNN
from nlpkit.layers.export_context import portable_trace

# 75 steps: three chunks of the scan layers' chunked scan, so its pass over the chunk totals runs.
BATCH, TIME, FEATURES, UNITS = 3, 75, 5, 4

LAYERS = {
    "lstm": lambda **options: LSTM(UNITS, **options),
    "gru": lambda **options: GRU(UNITS, **options),
    "gru_reset_before": lambda **options: GRU(UNITS, reset_after=False, **options),
    "simple_rnn": lambda **options: SimpleRNN(UNITS, **options),
    "lstm_layer_norm": lambda **options: LSTM(UNITS, layer_norm=True, **options),
    "mingru": lambda **options: MinGRU(UNITS, **options),
    "minlstm": lambda **options: MinLSTM(UNITS, **options),
    "mamba": lambda **options: Mamba(UNITS, d_state=3, **options),
}


def _inputs_and_mask(seed=0):
    rng = np.random.default_rng(seed)
    inputs = rng.normal(size=(BATCH, TIME, FEATURES)).astype("float32")
    lengths = np.array([TIME, 40, 2])
    mask = np.arange(TIME)[None, :] < lengths[:, None]
    return tf.constant(inputs), tf.constant(mask)


def _twin(layer, jit_compile):
    """A layer with ``layer``'s configuration and weights, but the given ``jit_compile``."""
    config = layer.get_config()
    config["jit_compile"] = jit_compile
    twin = type(layer).from_config(config)
    twin.build(layer.input_shape if hasattr(layer, "input_shape") else (BATCH, TIME, FEATURES))
    twin.set_weights(layer.get_weights())
    return twin


def _initial_states(layer, seed=2):
    rng = np.random.default_rng(seed)
    return [tf.constant(rng.normal(size=(BATCH, size)).astype("float32")) for size in layer.state_size]


def _outputs_and_gradients(layer, inputs, mask, initial_states, training, compile_whole=False):
    """Outputs, then gradients for the inputs, the initial states and the weights.

    ``compile_whole``: trace them in one ``tf.function(jit_compile=True)``, as a Keras model
    compiled with ``jit_compile=True`` does.
    """

    @functools.partial(tf.function, jit_compile=True if compile_whole else None)
    def run(inputs, mask, initial_states):
        with tf.GradientTape() as tape:
            tape.watch([inputs, *initial_states])
            outputs = layer(inputs, mask=mask, initial_state=initial_states, training=training)
            # Every output counts: the sequence and each final state.
            loss = sum(
                tf.reduce_sum(output * tf.cos(tf.range(output.shape[-1], dtype=output.dtype)) * (index + 1))
                for index, output in enumerate(outputs)
            )
        gradients = tape.gradient(loss, [inputs, *initial_states] + layer.trainable_weights)
        return outputs, gradients

    return run(inputs, mask, initial_states)


def _compiled_calls(function, *specs):
    """How many XLA-compiled calls (``_XlaMustCompile``) the traced graph of ``function`` makes."""
    graph = tf.function(function).get_concrete_function(*specs).graph
    count = 0
    for operation in graph.get_operations():
        if operation.type in ("PartitionedCall", "StatefulPartitionedCall"):
            attribute = operation.node_def.attr.get("_XlaMustCompile")
            count += int(attribute is not None and attribute.b)
    return count


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forwards", "backwards"])
@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
def test_the_compiled_loop_gives_the_plain_loops_outputs_and_gradients(name, go_backwards, training):
    keras.utils.set_random_seed(7)  # the same weights in every run
    inputs, mask = _inputs_and_mask()
    plain = LAYERS[name](
        return_sequences=True, return_state=True, go_backwards=go_backwards, jit_compile=False
    )
    plain(inputs)
    compiled = _twin(plain, True)

    states = _initial_states(plain)
    expected_outputs, expected_gradients = _outputs_and_gradients(plain, inputs, mask, states, training)
    outputs, gradients = _outputs_and_gradients(compiled, inputs, mask, states, training)

    specs = [tf.TensorSpec(inputs.shape), tf.TensorSpec(mask.shape, tf.bool)]
    call = lambda layer: lambda x, m: layer(x, mask=m, training=training)  # noqa: E731
    assert _compiled_calls(call(compiled), *specs) == 1
    assert _compiled_calls(call(plain), *specs) == 0
    assert len(outputs) == len(expected_outputs)
    # Layer norm over 4 units divides by a standard deviation that can be small, which
    # magnifies the float32 rounding differences of XLA's exp/tanh, step after step: over
    # 12 weight draws the largest output difference was 3.9e-5 with layer norm, at most
    # 3.6e-7 for the plain LSTM and GRU.
    output_tolerance = 5e-5 if name == "lstm_layer_norm" else 1e-5
    for got, expected in zip(outputs, expected_outputs):
        np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=output_tolerance)
    assert len(gradients) == len(expected_gradients) > 1 + len(states)
    assert all(gradient is not None for gradient in gradients)
    # Sums over every step and sequence: float32 summation order differs under XLA.
    for got, expected in zip(gradients, expected_gradients):
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize("jit_compile", ["auto", False], ids=["auto", "off"])
def test_layers_train_inside_a_function_that_xla_compiles_whole(name, jit_compile):
    # model.compile(jit_compile=True): every layer setting must compile there (the scan
    # layers' dynamic-length forms and autodiff through an unbounded loop cannot).
    keras.utils.set_random_seed(7)
    inputs, mask = _inputs_and_mask()
    plain = LAYERS[name](return_sequences=True, return_state=True, jit_compile=False)
    plain(inputs)
    layer = _twin(plain, jit_compile)
    states = _initial_states(plain)
    expected_outputs, expected_gradients = _outputs_and_gradients(plain, inputs, mask, states, True)
    outputs, gradients = _outputs_and_gradients(layer, inputs, mask, states, True, compile_whole=True)
    output_tolerance = 5e-5 if name == "lstm_layer_norm" else 1e-5
    for got, expected in zip(outputs, expected_outputs):
        np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=output_tolerance)
    assert len(gradients) == len(expected_gradients) > 1 + len(states)
    for got, expected in zip(gradients, expected_gradients):
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-4, atol=1e-4)


# A training step compiled whole, run three times; XLA writes one module per compilation.
_WHOLE_STEP_SCRIPT = """
import numpy as np, tensorflow as tf
from nlpkit.layers import MinGRU
layer = MinGRU(8, return_sequences=True)
inputs = tf.constant(np.random.default_rng(0).normal(size=(2, 40, 3)).astype("float32"))
layer(inputs)
@tf.function(jit_compile=True)
def train_step(inputs):
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(inputs, training=True) ** 2)
    for variable, gradient in zip(layer.trainable_variables, tape.gradient(loss, layer.trainable_variables)):
        variable.assign_sub(0.01 * gradient)
    return loss
for _ in range(3):
    train_step(inputs).numpy()
"""


def test_a_step_compiled_whole_compiles_once_while_its_weights_change(tmp_path):
    # A compiled function of the layer's own nested in the step made XLA take the weights
    # as constants and compile again after every update.
    environment = dict(os.environ, XLA_FLAGS=f"--xla_dump_to={tmp_path}", TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_WHOLE_STEP_SCRIPT)],
        check=True, env=environment, capture_output=True, timeout=300,
    )
    modules = [path.name for path in tmp_path.iterdir() if "train_step" in path.name
               and path.name.endswith("before_optimizations.txt")]
    assert len(modules) == 1, modules


def test_the_compiled_loop_keeps_dropout_and_stateful_states():
    inputs, _ = _inputs_and_mask(seed=1)
    layer = LSTM(UNITS, stateful=True, recurrent_dropout=0.3, seed=4, jit_compile=True)
    twin = LSTM(UNITS, stateful=True, recurrent_dropout=0.3, seed=4, jit_compile=False)
    layer(inputs)
    twin(inputs)
    twin.set_weights(layer.get_weights())
    layer.reset_state()
    twin.reset_state()
    compiled_call, plain_call = tf.function(lambda x: layer(x)), tf.function(lambda x: twin(x))
    for _ in range(2):  # the second call starts from the states the first one left
        np.testing.assert_allclose(compiled_call(inputs).numpy(), plain_call(inputs).numpy(), atol=1e-5)
    assert _compiled_calls(lambda x: layer(x), tf.TensorSpec(inputs.shape)) == 1
    # Training with recurrent dropout draws masks; both layers still learn through them.
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.function(lambda x: layer(x, training=True))(inputs))
    gradients = tape.gradient(loss, layer.trainable_weights)
    assert all(gradient is not None and np.isfinite(gradient.numpy()).all() for gradient in gradients)


def test_auto_compiles_in_traced_functions_with_static_shapes_only():
    static = tf.TensorSpec((BATCH, TIME, FEATURES))
    layer = GRU(UNITS, return_sequences=True)
    assert layer.jit_compile == "auto"

    assert _compiled_calls(lambda x: layer(x), static) == 1
    bidirectional = Bidirectional(LSTM(UNITS, return_sequences=True))
    assert _compiled_calls(lambda x: bidirectional(x), static) == 2
    # A dynamic length or batch: the plain loop, so varied batches compile nothing.
    assert _compiled_calls(lambda x: layer(x), tf.TensorSpec((BATCH, None, FEATURES))) == 0
    assert _compiled_calls(lambda x: layer(x), tf.TensorSpec((None, TIME, FEATURES))) == 0
    # Exports trace the portable loop (TFLite holds built-in ops only).
    with portable_trace():
        assert _compiled_calls(lambda x: layer(x), static) == 0
    # Training compiles where the backward pass is written out, not through autodiff.
    assert _compiled_calls(lambda x: layer(x, training=True), static) == 1
    normalised = GRU(UNITS, layer_norm=True)
    assert _compiled_calls(lambda x: normalised(x, training=True), static) == 0
    assert _compiled_calls(lambda x: normalised(x), static) == 1
    scan = MinGRU(UNITS, return_sequences=True)
    assert _compiled_calls(lambda x: scan(x, training=True), static) == 1
    assert _compiled_calls(lambda x: scan(x), tf.TensorSpec((BATCH, None, FEATURES))) == 0
    never = GRU(UNITS, jit_compile=False)
    assert _compiled_calls(lambda x: never(x), static) == 0
    always = GRU(UNITS, jit_compile=True)
    assert _compiled_calls(lambda x: always(x), tf.TensorSpec((None, None, FEATURES))) == 1


def test_jit_compile_is_validated_and_kept_in_the_config():
    with pytest.raises(ValueError, match="jit_compile='sometimes'"):
        LSTM(UNITS, jit_compile="sometimes")
    with pytest.raises(ValueError, match="jit_compile='never'"):
        Mamba(UNITS, jit_compile="never")
    for value in ("auto", True, False):
        for kind in (LSTM, MinGRU):
            layer = kind(UNITS, jit_compile=value)
            assert layer.get_config()["jit_compile"] == value
            assert kind.from_config(layer.get_config()).jit_compile == value
    # Configs written before the argument existed load with the default.
    config = LSTM(UNITS).get_config()
    del config["jit_compile"]
    assert LSTM.from_config(config).jit_compile == "auto"
