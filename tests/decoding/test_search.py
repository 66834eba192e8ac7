"""Greedy search, sampling and beam search on a toy step function with known probabilities."""

import itertools
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from nlpkit.decoding import (
    Generation,
    beam_search,
    filter_log_probs,
    generate,
    greedy,
    log_softmax,
    prime,
    sample,
)

VOCABULARY = 5


class MarkovStep:
    """Next-token log-probabilities from a fixed table indexed by the current token.

    The state counts the steps each row has taken, so the tests can check which rows the
    search stepped (and that states follow their rows through beam reordering).
    """

    def __init__(self, seed=0, vocabulary=VOCABULARY, concentration=0.7):
        rng = np.random.default_rng(seed)
        self.table = np.log(rng.dirichlet(np.full(vocabulary, concentration), vocabulary))
        self.calls = []

    def initial_states(self, batch_size):
        return [np.zeros((batch_size, 1), np.float32)]

    def __call__(self, token_ids, states):
        token_ids = np.asarray(token_ids)
        assert token_ids.dtype == np.int32 and len(states[0]) == len(token_ids)
        self.calls.append(len(token_ids))
        return self.table[token_ids], [states[0] + 1]


def path_log_prob(step, first_log_probs, tokens):
    total, log_probs = 0.0, first_log_probs
    for token in tokens:
        total += log_probs[token]
        log_probs = step.table[token]
    return total


def test_greedy_follows_the_most_likely_token():
    step = MarkovStep()
    log_probs, states = prime(step, [[0], [3, 1]], step.initial_states(2))
    result = greedy(step, log_probs, states, max_new_tokens=6)
    assert isinstance(result, Generation)
    for row, last in enumerate([0, 1]):
        expected, token = [], last
        for _ in range(6):
            token = int(np.argmax(step.table[token]))
            expected.append(token)
        assert result.tokens[row] == expected
        assert result.scores[row] == pytest.approx(path_log_prob(step, step.table[last], expected))


def test_greedy_stops_a_row_at_a_stop_token_and_steps_only_live_rows():
    step = MarkovStep()
    first = int(np.argmax(step.table[0]))
    log_probs, states = prime(step, [[0], [0]], step.initial_states(2))
    step.calls.clear()
    stopped = greedy(step, log_probs, states, max_new_tokens=5, stop_ids=first)
    assert stopped.tokens == [[first], [first]]
    assert step.calls == []  # nothing left to step after both rows stopped
    assert greedy(step, log_probs, states, 0).tokens == [[], []]


def test_prime_with_ragged_prompts_equals_priming_each_alone():
    step = MarkovStep(seed=3)
    prompts = [[1, 2, 3, 4], [2], [4, 0]]
    log_probs, states = prime(step, prompts, step.initial_states(3))
    for row, prompt in enumerate(prompts):
        alone_log_probs, alone_states = prime(step, [prompt], step.initial_states(1))
        np.testing.assert_array_equal(log_probs[row], alone_log_probs[0])
        np.testing.assert_array_equal(states[0][row], alone_states[0][0])
        assert states[0][row, 0] == len(prompt)
    with pytest.raises(ValueError, match=r"rows \[1\]"):
        prime(step, [[1], []], step.initial_states(2))
    with pytest.raises(ValueError, match="one row per prompt"):
        prime(step, [[1]], step.initial_states(2))


def test_sampling_is_deterministic_under_a_seed():
    step = MarkovStep(seed=1, concentration=3.0)
    log_probs, states = prime(step, [[0], [1], [2]], step.initial_states(3))
    first = sample(step, log_probs, states, 30, seed=7).tokens
    assert sample(step, log_probs, states, 30, seed=7).tokens == first
    assert sample(step, log_probs, states, 30, seed=8).tokens != first
    assert generate(step, [[0], [1], [2]], step.initial_states(3), 30, method="sample", seed=7).tokens == first


def test_sampling_draws_from_the_filtered_distribution():
    distribution = np.array([0.5, 0.25, 0.15, 0.1, 0.0])
    rows = 40_000
    log_probs = np.tile(np.log(np.maximum(distribution, 1e-300)), (rows, 1))
    step = MarkovStep()
    for options, expected in [
        ({}, distribution),
        ({"top_k": 2}, np.array([2 / 3, 1 / 3, 0, 0, 0])),
        ({"top_p": 0.8}, np.array([0.5, 0.25, 0.15, 0, 0]) / 0.9),
        ({"temperature": 0.5}, distribution**2 / (distribution**2).sum()),
    ]:
        tokens = sample(step, log_probs, step.initial_states(rows), 1, seed=0, **options).tokens
        counts = np.bincount([row[0] for row in tokens], minlength=VOCABULARY) / rows
        np.testing.assert_allclose(counts, expected, atol=0.01, err_msg=str(options))


def test_degenerate_sampling_settings_are_greedy():
    step = MarkovStep(seed=2)
    log_probs, states = prime(step, [[0], [4]], step.initial_states(2))
    expected = greedy(step, log_probs, states, 12).tokens
    assert sample(step, log_probs, states, 12, top_k=1, seed=5).tokens == expected
    assert sample(step, log_probs, states, 12, top_p=1e-6, seed=5).tokens == expected
    assert sample(step, log_probs, states, 12, temperature=1e-4, seed=5).tokens == expected


def test_filter_log_probs_keeps_ties_at_lower_ids_and_validates():
    probs = filter_log_probs(np.log([[0.3, 0.3, 0.2, 0.2]]), top_k=3)
    np.testing.assert_allclose(probs, [[0.375, 0.375, 0.25, 0.0]])
    assert filter_log_probs(np.log([[0.5, 0.3, 0.2]]), top_p=0.7).round(3).tolist() == [[0.625, 0.375, 0.0]]
    for options, match in [({"temperature": 0}, "temperature=0"), ({"top_k": -1}, "top_k=-1"),
                           ({"top_p": 1.5}, "top_p=1.5"), ({"top_p": 0}, "top_p=0")]:
        with pytest.raises(ValueError, match=match):
            filter_log_probs(np.zeros((1, 3)), **options)


def brute_force(step, first_log_probs, max_new_tokens, stop, length_penalty):
    """Best length-normalised hypothesis over every possible continuation."""
    best = None
    for length in range(1, max_new_tokens + 1):
        for tokens in itertools.product(range(VOCABULARY), repeat=length):
            if any(token == stop for token in tokens[:-1]):
                continue
            if length < max_new_tokens and tokens[-1] != stop:
                continue
            score = path_log_prob(step, first_log_probs, tokens) / length**length_penalty
            if best is None or score > best[1]:
                best = (list(tokens), score)
    return best


@pytest.mark.parametrize("length_penalty", [0.0, 0.5, 1.0])
def test_wide_beam_search_finds_the_exact_optimum(length_penalty):
    step = MarkovStep(seed=4)
    stop = 3
    log_probs, states = prime(step, [[0], [2]], step.initial_states(2))
    result = beam_search(step, log_probs, states, 4, beam_width=VOCABULARY**3, length_penalty=length_penalty,
                         stop_ids=[stop])
    for row in range(2):
        tokens, score = brute_force(step, log_probs[row], 4, stop, length_penalty)
        assert result.tokens[row] == tokens
        assert result.scores[row] == pytest.approx(score)
        ranked = [score for _, score in result.hypotheses[row]]
        assert ranked == sorted(ranked, reverse=True)


def test_beam_search_keeps_states_with_their_beams():
    step = MarkovStep(seed=5)
    log_probs, states = prime(step, [[1]], step.initial_states(1))
    # Every step's log-probabilities are checked against the table for the beam's last
    # token inside MarkovStep; here the result must also be a real path of the chain.
    result = beam_search(step, log_probs, states, 6, beam_width=3)
    for tokens, score in result.hypotheses[0]:
        assert len(tokens) == 6
        assert score == pytest.approx(path_log_prob(step, log_probs[0], tokens) / 6)


def test_beam_width_one_is_greedy_and_length_penalty_changes_the_winner():
    step = MarkovStep(seed=9)
    log_probs, states = prime(step, [[0], [1], [4]], step.initial_states(3))
    assert beam_search(step, log_probs, states, 8, beam_width=1).tokens == greedy(step, log_probs, states, 8).tokens
    # Without normalisation short hypotheses win; normalised by length, longer ones do.
    winners = {
        penalty: beam_search(step, log_probs, states, 6, beam_width=5, length_penalty=penalty, stop_ids=[2]).tokens
        for penalty in (0.0, 1.0)
    }
    assert sum(map(len, winners[1.0])) > sum(map(len, winners[0.0]))
    with pytest.raises(ValueError, match="beam_width=0"):
        beam_search(step, log_probs, states, 3, beam_width=0)
    with pytest.raises(ValueError, match="length_penalty=-1"):
        beam_search(step, log_probs, states, 3, length_penalty=-1)


def test_generate_rejects_unknown_methods_and_log_softmax_normalises():
    step = MarkovStep()
    with pytest.raises(ValueError, match="method='nucleus'"):
        generate(step, [[0]], step.initial_states(1), 3, method="nucleus")
    log_probs = log_softmax(np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 1000.0]], np.float32))
    np.testing.assert_allclose(np.exp(log_probs).sum(-1), 1.0)
    assert np.isfinite(log_probs).all()


def test_searches_import_no_tensorflow():
    import subprocess

    code = "import sys, nlpkit.decoding; assert 'tensorflow' not in sys.modules, sorted(sys.modules)"
    # Run from the repository root so that `import nlpkit` is this checkout's.
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(Path(__file__).resolve().parents[2]))


@pytest.mark.parametrize("method", ["greedy", "beam"])
def test_per_row_limits_equal_running_each_row_alone(method):
    # Translation limits the output by the source length: one limit per row.
    step = MarkovStep(seed=3)
    prompts, limits = [[0], [1], [2], [4]], [3, 0, 6, 1]
    search = greedy if method == "greedy" else (lambda *a, **k: beam_search(*a, beam_width=3, **k))
    log_probs, states = prime(step, prompts, step.initial_states(len(prompts)))
    together = search(step, log_probs, states, limits, stop_ids=[2])
    for row, limit in enumerate(limits):
        alone = search(step, log_probs[row : row + 1], [states[0][row : row + 1]], limit, stop_ids=[2])
        assert together.tokens[row] == alone.tokens[0], row
        assert together.scores[row] == pytest.approx(alone.scores[0])
        assert len(together.tokens[row]) <= limit
    with pytest.raises(ValueError, match="2 limits for 4 rows"):
        search(step, log_probs, states, [1, 2])
    with pytest.raises(ValueError, match="max_new_tokens=-1"):
        search(step, log_probs, states, [1, 2, -1, 3])
