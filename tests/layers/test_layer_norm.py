"""Layer-normalised cells and layers (Ba et al., 2016): math, gradients, saving, TFLite."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from nlpkit.export import audit_ops, convert
from nlpkit.layers import GRU, LSTM, SimpleRNN
from nlpkit.layers.cells import LAYER_NORM_EPSILON
from tests.layer_checks import run_layer_checks
from tests.layers.test_fast_gradients import VARIANT_IDS, VARIANTS
from tests.layers.test_recurrent import STOCK, assert_close, right_padded

UNITS = 3
FEATURES = 2
TIME = 4

NORM_WEIGHTS = {
    LSTM: ["input", "recurrent", "state"],
    GRU: ["input", "recurrent"],
    SimpleRNN: ["input", "recurrent"],
}
STOCK_NAMES = {LSTM: "lstm", GRU: "gru", SimpleRNN: "simple_rnn"}


# ---------------------------------------------------------------- a NumPy reference


def ln(x, gain, bias):
    mean = x.mean(-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + LAYER_NORM_EPSILON) * gain + bias


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def reference_step(cls, options, weights, x, states):
    """One layer-normalised step written out from the paper's equations."""
    kernel, recurrent_kernel, bias, gain_x, bias_x, gain_h, bias_h = weights[:7]
    h = states[0]
    if cls is SimpleRNN:
        recurrent = ln(h @ recurrent_kernel, gain_h, bias_h)
        return [np.tanh(ln(x @ kernel, gain_x, bias_x) + bias + recurrent)]
    if cls is LSTM:
        gain_c, bias_c = weights[7:]
        z = ln(x @ kernel, gain_x, bias_x) + bias + ln(h @ recurrent_kernel, gain_h, bias_h)
        i, f, g, o = np.split(z, 4, axis=-1)
        c = sigmoid(f) * states[1] + sigmoid(i) * np.tanh(g)
        return [sigmoid(o) * np.tanh(ln(c, gain_c, bias_c)), c]
    n = UNITS
    if options["reset_after"]:
        x_proj = ln(x @ kernel, gain_x, bias_x) + bias[0]
        h_proj = ln(h @ recurrent_kernel, gain_h, bias_h) + bias[1]
        z = sigmoid(x_proj[:, :n] + h_proj[:, :n])
        r = sigmoid(x_proj[:, n : 2 * n] + h_proj[:, n : 2 * n])
        candidate = np.tanh(x_proj[:, 2 * n :] + r * h_proj[:, 2 * n :])
    else:
        x_proj = ln(x @ kernel, gain_x, bias_x) + bias
        h_zr = ln(h @ recurrent_kernel[:, : 2 * n], gain_h[: 2 * n], bias_h[: 2 * n])
        z = sigmoid(x_proj[:, :n] + h_zr[:, :n])
        r = sigmoid(x_proj[:, n : 2 * n] + h_zr[:, n:])
        h_h = ln((r * h) @ recurrent_kernel[:, 2 * n :], gain_h[2 * n :], bias_h[2 * n :])
        candidate = np.tanh(x_proj[:, 2 * n :] + h_h)
    return [z * h + (1.0 - z) * candidate]


def randomize_normalised(layer, seed):
    # Gains around 1 and non-zero norm biases, so every normalisation weight matters.
    rng = np.random.default_rng(seed)
    layer.set_weights(
        [
            (1.0 if "gain" in w.path else 0.0) + rng.normal(scale=0.5, size=w.shape)
            for w in layer.weights
        ]
    )


def normalised_layer(cls, options, seed=1, dtype="float32", **kwargs):
    layer = cls(UNITS, layer_norm=True, dtype=dtype, **options, **kwargs)
    layer.build((None, None, FEATURES))
    randomize_normalised(layer, seed)
    return layer


@pytest.mark.parametrize("cls,options", VARIANTS, ids=VARIANT_IDS)
def test_matches_the_equations_of_the_paper(cls, options):
    layer = normalised_layer(cls, options, return_sequences=True, return_state=True)
    inputs, mask = right_padded([TIME, 2], time=TIME, features=FEATURES)
    weights = [w.astype("float64") for w in layer.get_weights()]
    states = [np.zeros((2, UNITS)) for _ in layer.state_size]
    expected = []
    for t in range(TIME):
        new_states = reference_step(cls, options, weights, inputs[:, t].astype("float64"), states)
        keep = mask[:, t : t + 1]
        states = [np.where(keep, new, old) for new, old in zip(new_states, states)]
        expected.append(states[0])
    outputs = layer(inputs, mask=mask)
    assert_close(outputs, [np.stack(expected, axis=1)] + states)


@pytest.mark.parametrize("cls,options", VARIANTS, ids=VARIANT_IDS)
def test_norm_weights_come_after_the_stock_weights(cls, options):
    stock = STOCK[STOCK_NAMES[cls]](UNITS, **options)
    stock.build((None, None, FEATURES))
    layer = cls(UNITS, layer_norm=True, **options)
    layer.build((None, None, FEATURES))
    names = [w.path.split("/")[-1] for w in layer.weights]
    stock_names = [w.path.split("/")[-1] for w in stock.weights]
    assert names[: len(stock_names)] == stock_names
    assert names[len(stock_names) :] == [
        f"{name}_norm_{part}" for name in NORM_WEIGHTS[cls] for part in ("gain", "bias")
    ]
    stock_shapes = [w.shape for w in stock.get_weights()]
    assert [w.shape for w in layer.get_weights()[: len(stock_shapes)]] == stock_shapes
    # Identity normalisation at initialisation: gains one, biases zero.
    for weight in layer.weights[len(stock_names) :]:
        expected = 1.0 if weight.path.endswith("gain") else 0.0
        assert np.all(weight.numpy() == expected)
    assert layer.cell.fast_backward_inputs() is None


@pytest.mark.parametrize("cls,options", VARIANTS, ids=VARIANT_IDS)
def test_gradients_match_finite_differences(cls, options):
    layer = normalised_layer(
        cls, options, dtype="float64", return_sequences=True, return_state=True
    )
    inputs, mask = right_padded([TIME, 2], time=TIME, features=FEATURES)
    inputs = tf.constant(inputs.astype("float64"))
    rng = np.random.default_rng(2)
    output_weights = [tf.constant(rng.normal(size=(UNITS,))) for _ in range(3)]

    @tf.function
    def loss_fn(inputs):
        outputs = layer(inputs, mask=mask, training=True)
        return sum(
            tf.reduce_sum(tf.sin(output * weight))
            for output, weight in zip(outputs, output_weights)
        )

    with tf.GradientTape() as tape:
        tape.watch(inputs)
        loss = loss_fn(inputs)
    analytic = tape.gradient(loss, [inputs] + layer.trainable_weights)

    delta = 1e-6
    numeric_inputs = np.zeros(inputs.shape)
    base = inputs.numpy()
    for index in np.ndindex(base.shape):
        shifted = [base.copy(), base.copy()]
        shifted[0][index] += delta
        shifted[1][index] -= delta
        numeric_inputs[index] = (loss_fn(shifted[0]) - loss_fn(shifted[1])).numpy() / (2 * delta)
    numeric = [numeric_inputs]
    for weight in layer.trainable_weights:
        value = weight.numpy()
        gradient = np.zeros(value.shape)
        for index in np.ndindex(value.shape):
            losses = []
            for sign in (1.0, -1.0):
                moved = value.copy()
                moved[index] += sign * delta
                weight.assign(moved)
                losses.append(loss_fn(inputs).numpy())
            gradient[index] = (losses[0] - losses[1]) / (2 * delta)
        weight.assign(value)
        numeric.append(gradient)
    assert len(analytic) == len(numeric) == 1 + len(layer.trainable_weights)
    names = ["inputs"] + [w.path for w in layer.trainable_weights]
    for a, n, name in zip(analytic, numeric, names):
        np.testing.assert_allclose(np.asarray(a), n, atol=1e-6, rtol=1e-5, err_msg=name)


@pytest.mark.parametrize(
    "factory",
    [
        lambda: LSTM(UNITS, layer_norm=True, return_sequences=True),
        lambda: GRU(UNITS, layer_norm=True, reset_after=False, go_backwards=True),
        lambda: SimpleRNN(UNITS, layer_norm=True, dropout=0.2, recurrent_dropout=0.2, seed=3),
    ],
    ids=["lstm", "gru_reset_before", "simple_rnn_dropout"],
)
def test_layer_checks(factory, tmp_path):
    inputs, mask = right_padded([TIME, 3, 1], time=TIME, features=FEATURES)
    layer = run_layer_checks(factory, inputs, tmp_path, mask=mask)
    assert layer.get_config()["layer_norm"] is True


def test_tflite_conversion_is_built_in_and_matches_keras():
    ids = keras.Input((None,), batch_size=1, dtype="int32")
    x = keras.layers.Embedding(20, FEATURES, mask_zero=True)(ids)
    x = GRU(UNITS, layer_norm=True, return_sequences=True)(x)
    x = GRU(UNITS, layer_norm=True, reset_after=False, go_backwards=True, return_sequences=True)(x)
    x = SimpleRNN(UNITS, layer_norm=True, return_sequences=True)(x)
    x = LSTM(UNITS, layer_norm=True)(x)
    model = keras.Model(ids, x)
    randomize_normalised(model, seed=5)

    def encode(token_ids):
        return {"encoding": model(token_ids, training=False)}

    signature = [tf.TensorSpec([1, None], tf.int32, name="token_ids")]
    content = convert(model, {"encode": (encode, signature)})
    audit = audit_ops(content)
    assert audit.builtin_only and "WHILE" in audit.builtin
    # The normalisation's reductions run inside the loop body, so the audit reads it too.
    assert {"MEAN", "RSQRT"} <= set(audit.builtin)

    runner = Interpreter(model_content=content).get_signature_runner("encode")
    reference = tf.function(lambda token_ids: model(token_ids, training=False))
    rng = np.random.default_rng(6)
    for length in (1, 9, 40):
        token_ids = rng.integers(1, 20, size=(1, length)).astype("int32")
        padded = np.concatenate([token_ids, np.zeros((1, 3), "int32")], axis=1)
        for sequence in (token_ids, padded):
            np.testing.assert_allclose(
                runner(token_ids=sequence)["encoding"],
                reference(sequence).numpy(),
                atol=1e-4,
                rtol=0,
                err_msg=f"length {sequence.shape[1]}",
            )
