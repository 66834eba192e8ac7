"""Tests for nlpkit.data.long_range: the synthetic tasks hold the dependency they claim to."""

import numpy as np
import pytest

from nlpkit.data.long_range import (
    RECALL_CLASSES,
    SELECTIVE_TOKENS,
    SELECTIVE_VOCABULARY,
    TASKS,
    adding_batch,
    delayed_recall_batch,
    selective_copy_batch,
)


@pytest.mark.parametrize("name", sorted(TASKS))
@pytest.mark.parametrize("length", [8, 50, 1000])
def test_shapes_and_input_width_match_the_task(name, length):
    task = TASKS[name]
    inputs, answers = task.batch(np.random.default_rng(0), 5, length)
    assert inputs.shape == (5, length, task.input_dim) and inputs.dtype == np.float32
    expected = (5, task.answer_steps, 1) if task.is_regression else (5, task.answer_steps)
    assert answers.shape == expected


def test_adding_marks_one_value_in_each_half_and_answers_their_sum():
    inputs, sums = adding_batch(np.random.default_rng(1), 200, 51)
    values, markers = inputs[..., 0], inputs[..., 1]
    assert (markers.sum(axis=1) == 2).all()
    assert (markers[:, :25].sum(axis=1) == 1).all() and (markers[:, 25:].sum(axis=1) == 1).all()
    np.testing.assert_allclose(sums[:, 0, 0], (values * markers).sum(axis=1), rtol=1e-6)
    # Predicting the mean scores about the variance of a sum of two uniforms: the chance level.
    assert abs(np.mean((sums - 1.0) ** 2) - TASKS["adding"].chance) < 0.05


def test_selective_copy_answers_are_the_data_tokens_in_order():
    inputs, tokens = selective_copy_batch(np.random.default_rng(2), 50, 40)
    symbols = inputs.argmax(axis=-1)
    assert (symbols[:, -SELECTIVE_TOKENS:] == SELECTIVE_VOCABULARY + 1).all()  # the queries
    for row in range(50):
        data = symbols[row, :-SELECTIVE_TOKENS]
        np.testing.assert_array_equal(data[data > 0] - 1, tokens[row])
    assert tokens.min() >= 0 and tokens.max() < SELECTIVE_VOCABULARY


def test_delayed_recall_shows_the_class_only_at_the_first_step():
    inputs, classes = delayed_recall_batch(np.random.default_rng(3), 100, 30)
    symbols = inputs.argmax(axis=-1)
    np.testing.assert_array_equal(symbols[:, 0], classes[:, 0])
    assert (symbols[:, 1:] >= RECALL_CLASSES).all()  # only distractors afterwards


def test_same_seed_same_batch_and_solved_thresholds():
    first = TASKS["adding"].batch(np.random.default_rng(4), 3, 20)
    second = TASKS["adding"].batch(np.random.default_rng(4), 3, 20)
    np.testing.assert_array_equal(first[0], second[0])
    assert TASKS["adding"].solved(0.009) and not TASKS["adding"].solved(0.05)
    assert TASKS["delayed_recall"].solved(0.97) and not TASKS["delayed_recall"].solved(0.5)


@pytest.mark.parametrize("generate, length", [(adding_batch, 1), (selective_copy_batch, 7)])
def test_too_short_sequences_are_refused_with_the_length(generate, length):
    with pytest.raises(ValueError, match=f"length={length}"):
        generate(np.random.default_rng(0), 2, length)
