"""``stateful=True``: nlpkit's layers against stock Keras over consecutive calls, and export."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from nlpkit.export import audit_ops, convert
from nlpkit.layers import GRU, LSTM
from tests.layers.test_recurrent import (
    OURS,
    STOCK,
    VARIANT_IDS,
    VARIANTS,
    assert_close,
    randomize,
    right_padded,
)

UNITS = 5
FEATURES = 4
BATCH = 3
TIME = 6



def stateful_pair(cell, options, **kwargs):
    stock = STOCK[cell](UNITS, stateful=True, **options, **kwargs)
    ours = OURS[cell](UNITS, stateful=True, **options, **kwargs)
    for layer in (stock, ours):
        layer.build((BATCH, None, FEATURES))
    randomize(stock, seed=1)
    ours.set_weights(stock.get_weights())
    return stock, ours


def chunks(count=3):
    """Consecutive chunks of three streams; the middle one ends early (or is all padding)."""
    result = []
    for k in range(count):
        inputs, mask = right_padded([TIME, 0 if k == 1 else 2 + k, TIME - 1], seed=10 + k)
        result.append((inputs, mask))
    return result


@pytest.mark.parametrize("cell,options", VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backward"])
def test_consecutive_calls_match_stock_keras(cell, options, go_backwards):
    stock, ours = stateful_pair(
        cell, options, return_sequences=True, return_state=True, go_backwards=go_backwards
    )
    # The states are variables outside the weights, so get_weights() is the stock list.
    assert len(ours.get_weights()) == len(stock.get_weights())
    assert all(not variable.trainable for variable in ours.states)
    first = None
    for inputs, mask in chunks():
        expected = stock(inputs, mask=mask)
        actual = ours(inputs, mask=mask)
        assert_close(actual, expected)
        # The final states (masked steps keep the state) are what the layer now holds.
        assert_close([v.numpy() for v in ours.states], [v.numpy() for v in stock.states])
        first = actual if first is None else first
    assert not np.allclose(np.asarray(actual[0]), np.asarray(ours(*chunks(1)[0])[0]), atol=1e-3)

    stock.reset_state()
    ours.reset_states()
    assert all(np.all(v.numpy() == 0.0) for v in ours.states)
    inputs, mask = chunks(1)[0]
    assert_close(ours(inputs, mask=mask), first)


def test_training_call_carries_the_same_states_as_inference():
    # training=True takes the hand-written backward path; it must write the states too.
    layers = []
    for _ in range(2):
        layer = LSTM(UNITS, stateful=True, return_sequences=True)
        layer.build((BATCH, None, FEATURES))
        layers.append(layer)
    randomize(layers[0], seed=2)
    layers[1].set_weights(layers[0].get_weights())
    for inputs, mask in chunks():
        assert_close(layers[0](inputs, mask=mask, training=True), layers[1](inputs, mask=mask))
    assert_close([v.numpy() for v in layers[0].states], [v.numpy() for v in layers[1].states])


def test_explicit_initial_state_wins_and_is_carried_on():
    stock, ours = stateful_pair("gru", {}, return_sequences=True)
    inputs, mask = chunks(1)[0]
    start = np.full((BATCH, UNITS), 0.5, "float32")
    assert_close(ours(inputs, initial_state=[start]), stock(inputs, initial_state=[start]))
    assert_close(ours(inputs), stock(inputs))


def test_stateful_model_fits_and_keeps_its_states_out_of_the_weights():
    model = keras.Sequential(
        [
            keras.Input((None, FEATURES), batch_size=BATCH),
            keras.layers.Bidirectional(GRU(UNITS, return_sequences=True, stateful=True)),
            LSTM(UNITS, stateful=True),
        ]
    )
    model.compile(keras.optimizers.SGD(0.1), "mse")
    inputs, _ = chunks(1)[0]
    targets = np.zeros((BATCH, UNITS), "float32")
    model.fit(inputs, targets, batch_size=BATCH, epochs=2, shuffle=False, verbose=0)
    lstm = model.layers[-1]
    assert np.any(lstm.states[0].numpy() != 0.0)
    assert len(model.weights) == 3 * 3
    model.layers[0].reset_state()
    assert all(np.all(v.numpy() == 0.0) for v in model.layers[0].states)


def test_stateful_needs_a_static_batch_and_names_the_layer():
    with pytest.raises(ValueError, match="'memory'.*stateful=True.*static batch"):
        keras.Sequential([keras.Input((None, FEATURES)), LSTM(UNITS, stateful=True, name="memory")])


def test_a_batch_of_another_size_is_refused():
    _, ours = stateful_pair("simple_rnn", {})
    inputs = np.zeros((BATCH + 1, TIME, FEATURES), "float32")
    with pytest.raises(ValueError, match=f"batch of {BATCH}.*batch of {BATCH + 1}"):
        ours(inputs)


def test_stateful_is_in_the_config():
    layer = GRU(UNITS, stateful=True)
    config = layer.get_config()
    assert config["stateful"] is True
    assert GRU.from_config(config).stateful is True
    with pytest.raises(ValueError, match="stateful='yes'"):
        GRU(UNITS, stateful="yes")


def encoder(stateful):
    inputs = keras.Input((None, FEATURES), batch_size=1)
    outputs = LSTM(UNITS, stateful=stateful, return_sequences=True)(inputs)
    return keras.Model(inputs, outputs)


def endpoints(model):
    def encode(sequence):
        return {"outputs": model(sequence, training=False)}

    return {"encode": (encode, [tf.TensorSpec([1, None, FEATURES], tf.float32, name="sequence")])}


def test_tflite_keeps_a_stateful_layers_state_between_invokes_and_a_copy_keeps_none():
    stateful = encoder(True)
    randomize(stateful, seed=3)
    stateless = encoder(False)
    stateless.set_weights(stateful.get_weights())
    rng = np.random.default_rng(4)
    sequences = [rng.normal(size=(1, length, FEATURES)).astype("float32") for length in (5, 2, 7)]

    # The stateful form converts with built-in resource-variable ops and carries its
    # states from one invoke() to the next, as the Keras layer does between calls.
    content = convert(stateful, endpoints(stateful))
    assert {"VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE"} <= set(audit_ops(content).builtin)
    runner = Interpreter(model_content=content).get_signature_runner("encode")
    for sequence in sequences:
        np.testing.assert_allclose(
            runner(sequence=sequence)["outputs"], stateful(sequence), atol=1e-4, rtol=0
        )

    # A copy built with stateful=False exports without variables and keeps no state.
    content = convert(stateless, endpoints(stateless))
    assert "VAR_HANDLE" not in audit_ops(content).builtin
    runner = Interpreter(model_content=content).get_signature_runner("encode")
    for sequence in sequences + sequences[:1]:
        np.testing.assert_allclose(
            runner(sequence=sequence)["outputs"], stateless(sequence), atol=1e-4, rtol=0
        )
