"""LanguageModel: serialization and training checks, one-step form, stateful BPTT, regularisation."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from nlpkit.decoding import KerasStepFunction, greedy, prime
from nlpkit.models import LanguageModel, ResetStatesCallback, TiedOutput
from tests.layer_checks import run_model_checks

VOCABULARY = 23
NO_DROPOUT = dict(embedding_dropout=0.0, input_dropout=0.0, dropout=0.0, output_dropout=0.0, weight_dropout=0.0)


def small(**kwargs):
    options = dict(vocabulary_size=VOCABULARY, embedding_dim=6, units=10, num_layers=2, seed=3)
    options.update(kwargs)
    return LanguageModel(**options)


def token_ids(batch=3, time=7, seed=0):
    return np.random.default_rng(seed).integers(1, VOCABULARY, (batch, time)).astype("int32")


@pytest.mark.parametrize("options", [
    {},
    {"cell": "gru", "tie_weights": False, "num_layers": 1},
    {"cell": "simple_rnn", "num_layers": 3},
    # The scan layers have no recurrent kernel: the default weight dropout passes them by.
    {"cell": "mingru"},
    {"cell": "mamba", "num_layers": 1},
], ids=["lstm-tied", "gru-untied", "simple_rnn-3", "mingru-tied", "mamba-1"])
def test_model_checks(options, tmp_path):
    inputs = token_ids()
    model, reloaded = run_model_checks(
        lambda: small(**options), inputs, token_ids(seed=1), tmp_path,
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    assert model(inputs).shape == (3, 7, VOCABULARY)
    if model.tie_weights:
        # The tie survives loading: the output reads the loaded embedding matrix.
        assert isinstance(reloaded.output_layer, TiedOutput)
        assert reloaded.output_layer._embedding is reloaded.embedding
        assert len(reloaded.weights) == len(model.weights)


def test_tied_output_is_the_transposed_embedding():
    model = small(**NO_DROPOUT)
    inputs = token_ids()
    model(inputs)
    assert model.recurrent_layers[-1].units == model.embedding_dim and model.recurrent_layers[0].units == 10
    hidden = np.random.default_rng(0).normal(size=(2, 4, 6)).astype("float32")
    bias = np.random.default_rng(1).normal(size=VOCABULARY).astype("float32")
    model.output_layer.bias.assign(bias)
    expected = hidden @ model.embedding.embeddings.numpy().T + bias
    np.testing.assert_allclose(model.output_layer(hidden), expected, atol=1e-5)
    np.testing.assert_allclose(model.output_layer(hidden[:, 0]), expected[:, 0], atol=1e-5)
    # Only the bias is the output layer's own weight.
    assert [w.name for w in model.output_layer.weights] == ["bias"]
    with pytest.raises(ValueError, match="not tied"):
        TiedOutput()(hidden)


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple_rnn", "mingru", "minlstm", "mamba"])
def test_step_by_step_equals_the_whole_sequence(cell):
    model = small(cell=cell)
    inputs = token_ids()
    expected = model(inputs, training=False)
    states = model.initial_states(3)
    assert [s.shape for s in states] == [(3, size) for size in model.state_sizes]
    outputs = []
    for t in range(inputs.shape[1]):
        logits, states = model.step(inputs[:, t], states)
        outputs.append(logits)
    np.testing.assert_allclose(np.stack(outputs, axis=1), expected, atol=1e-5)
    assert [layer.name for layer in model.streaming_layers()] == (
        ["embedding"] + [layer.name for layer in model.recurrent_layers] + [model.output_layer.name])


def test_stateful_model_carries_states_across_calls_until_reset():
    stateless = small(**NO_DROPOUT)
    inputs = token_ids(batch=2, time=12)
    whole = stateless(inputs)
    stateful = small(stateful=True, **NO_DROPOUT)
    stateful(inputs[:, :4])
    stateful.set_weights(stateless.get_weights())
    stateful.reset_states()
    pieces = [stateful(inputs[:, start : start + 4]) for start in range(0, 12, 4)]
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), whole, atol=1e-5)
    callback = ResetStatesCallback()
    callback.set_model(stateful)
    callback.on_epoch_begin(0)
    np.testing.assert_allclose(stateful(inputs[:, :4]), whole[:, :4], atol=1e-5)
    callback.on_test_begin()
    assert all(np.all(v.numpy() == 0) for layer in stateful.recurrent_layers for v in layer.states)
    with pytest.raises(ValueError, match="batch of 5"):
        stateful(token_ids(batch=5, time=4))
    copy = stateful.to_stateless()
    assert not copy.stateful
    np.testing.assert_allclose(copy(token_ids(batch=5, time=4)), stateless(token_ids(batch=5, time=4)), atol=1e-6)


def test_fit_with_reset_callback_learns_a_cycle():
    # Predicting the next token of a repeating cycle needs no long context but does need
    # the recurrent stack, the tie and the stateful pipeline to work together.
    from nlpkit.data import lm_dataset

    keras.utils.set_random_seed(0)
    ids = np.tile(np.arange(2, 12), 60)
    model = LanguageModel(12, embedding_dim=8, units=16, num_layers=2, stateful=True, seed=0, **NO_DROPOUT)
    model(np.zeros((4, 10), "int32"))
    model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(lm_dataset(ids, 4, 10), epochs=6, shuffle=False, verbose=0, callbacks=[ResetStatesCallback()])
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]


def test_weight_dropout_masks_the_recurrent_kernel_per_call_and_keeps_the_fast_backward():
    inputs = token_ids(batch=2, time=9)
    models = []
    for fast in (True, False):
        model = small(weight_dropout=0.5, embedding_dropout=0.0, input_dropout=0.0, dropout=0.0,
                      output_dropout=0.0, seed=11)
        model(inputs)
        for layer in model.recurrent_layers:
            layer.fast_backward = fast
        models.append(model)
    models[1].set_weights(models[0].get_weights())
    kernel = models[0].recurrent_layers[0].cell.recurrent_kernel
    inference = models[0](inputs, training=False)
    gradients = []
    for model in models:
        with tf.GradientTape() as tape:
            outputs = model(inputs, training=True)
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(inputs, outputs, from_logits=True))
        gradients.append(tape.gradient(loss, model.trainable_variables))
        assert not np.allclose(outputs, inference, atol=1e-4)  # the mask changed the recurrence
    # The variable is back in place, and equal seeds drew equal masks: the hand-written
    # backward pass (taking the masked kernel as its input) matches autodiff.
    assert models[0].recurrent_layers[0].cell.recurrent_kernel is kernel
    for fast, slow, variable in zip(*gradients, models[0].trainable_variables):
        np.testing.assert_allclose(fast, slow, atol=1e-5, err_msg=variable.path)
    recurrent_gradient = gradients[0][2].numpy()  # lstm_0 recurrent kernel
    zero_fraction = np.mean(recurrent_gradient == 0)
    assert 0.3 < zero_fraction < 0.7, zero_fraction  # dropped weights get no gradient


def test_embedding_dropout_drops_word_types_consistently():
    model = small(embedding_dropout=0.5, **{k: v for k, v in NO_DROPOUT.items() if k != "embedding_dropout"})
    ids = np.array([[1, 2, 1, 3, 2, 1, 4, 5, 6, 7] * 3], "int32")
    model(ids)
    vectors = np.ones((1, 30, 6), "float32")
    dropped = np.asarray(model._drop_word_types(vectors, ids))[0, :, 0]
    for token in np.unique(ids):
        values = set(dropped[ids[0] == token].tolist())
        assert len(values) == 1 and values <= {0.0, 2.0}, (token, values)


def test_greedy_graph_equals_the_numpy_greedy_search():
    model = small(**NO_DROPOUT)
    model(token_ids())
    rng = np.random.default_rng(5)
    for weight in model.weights:
        weight.assign(rng.normal(0, 0.6, weight.shape).astype("float32"))
    prompts = [[2, 5, 9, 1], [2], [2, 7]]
    padded = np.zeros((3, 4), "int32")
    for row, prompt in enumerate(prompts):
        padded[row, : len(prompt)] = prompt
    graph_tokens = model.greedy_continuation(padded, [4, 1, 2], tf.constant(15)).numpy()
    step = KerasStepFunction(model)
    log_probs, states = prime(step, prompts, step.initial_states(3))
    assert graph_tokens.tolist() == greedy(step, log_probs, states, 15).tokens
    assert model.greedy_continuation(padded, [4, 1, 2], tf.constant(0)).shape == (3, 0)


@pytest.mark.parametrize("options, match", [
    ({"cell": "transformer"}, "cell='transformer'"),
    ({"dropout": 1.0}, "dropout=1.0"),
    ({"units": 0}, "units=0"),
    ({"tie_weights": "yes"}, "tie_weights='yes'"),
    ({"vocabulary_size": 2.5}, "vocabulary_size=2.5"),
])
def test_invalid_arguments_name_the_value(options, match):
    with pytest.raises(ValueError, match=match):
        small(**options)
