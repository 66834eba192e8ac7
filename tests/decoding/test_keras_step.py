"""KerasStepFunction: a Keras model's step as the numpy step function the searches drive."""

import keras
import numpy as np
import pytest

from nlpkit.decoding import KerasStepFunction, generate, log_softmax
from nlpkit.models import LanguageModel


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(1)
    model = LanguageModel(17, embedding_dim=6, units=8, num_layers=2, cell="gru", stateful=True)
    model(np.zeros((2, 5), "int32"))
    return model


def test_log_probs_follow_the_whole_sequence_call(model):
    step = KerasStepFunction(model)
    tokens = np.random.default_rng(0).integers(1, 17, (3, 6)).astype(np.int32)
    expected = log_softmax(model.to_stateless()(tokens).numpy())
    states = step.initial_states(3)
    assert [s.shape for s in states] == [(3, 8), (3, 6)]
    for t in range(tokens.shape[1]):
        log_probs, states = step(tokens[:, t], states)
        np.testing.assert_allclose(log_probs, expected[:, t], atol=1e-5)
        np.testing.assert_allclose(np.exp(log_probs).sum(-1), 1.0, atol=1e-9)


def test_stepping_leaves_a_stateful_model_alone(model):
    model.reset_states()
    step = KerasStepFunction(model)
    result = generate(step, [[1, 2], [3]], step.initial_states(2), 10)
    assert [len(tokens) for tokens in result.tokens] == [10, 10]
    assert all(np.all(v.numpy() == 0) for layer in model.recurrent_layers for v in layer.states)


def test_a_model_without_step_is_rejected():
    with pytest.raises(ValueError, match="Sequential"):
        KerasStepFunction(keras.Sequential([keras.layers.Dense(2)]))
