"""graph_beam_search: the TensorFlow-graph search gives the tokens of the numpy searches."""

import numpy as np
import pytest
import tensorflow as tf

from nlpkit.decoding import beam_search, greedy, log_softmax
from nlpkit.decoding.graph_search import graph_beam_search

BOS, EOS = 0, 1


class OffsetMarkov:
    """Logits from a fixed table row chosen by ``(token + row offset) % vocabulary``.

    The state is each row's offset, so rows follow different chains and the searches must
    carry states through their beam reordering. A numpy step for the numpy searches and a
    TensorFlow step for the graph search read the same float32 table.
    """

    def __init__(self, seed, vocabulary, concentration):
        rng = np.random.default_rng(seed)
        table = np.log(rng.dirichlet(np.full(vocabulary, concentration), vocabulary))
        self.table = table.astype(np.float32)
        self.vocabulary = vocabulary

    def rows(self, token_ids, offsets):
        return (np.asarray(token_ids) + offsets[:, 0].astype(np.int64)) % self.vocabulary

    def __call__(self, token_ids, states):
        return log_softmax(self.table[self.rows(token_ids, states[0])]), [states[0]]

    def graph_step(self, token_ids, states):
        rows = (token_ids + tf.cast(states[0][:, 0], tf.int32)) % self.vocabulary
        return tf.gather(tf.constant(self.table), rows), [states[0]]

    def numpy_search(self, offsets, limits, width, length_penalty):
        states = [offsets]
        log_probs, states = self(np.full(len(offsets), BOS, np.int32), states)
        if width == 1:
            return greedy(self, log_probs, states, limits, stop_ids=[EOS]).tokens
        return beam_search(self, log_probs, states, limits, width, length_penalty, stop_ids=[EOS]).tokens

    def graph_search(self, offsets, limits, width, length_penalty):
        tokens = graph_beam_search(
            self.graph_step, [tf.constant(offsets)], BOS, EOS, tf.constant(limits, tf.int32),
            self.vocabulary, width, length_penalty,
        )
        return tokens.numpy().tolist()


def padded(rows):
    """Right-pads token lists with 0 to the longest, as the graph search returns them."""
    length = max(map(len, rows), default=0)
    return [list(row) + [0] * (length - len(row)) for row in rows]


@pytest.mark.parametrize("width", [1, 2, 3, 5])
@pytest.mark.parametrize("length_penalty", [0.0, 0.6, 1.0])
def test_graph_search_returns_the_numpy_search_tokens(width, length_penalty):
    rng = np.random.default_rng(width * 10 + int(length_penalty * 10))
    for seed in range(12):
        markov = OffsetMarkov(seed, vocabulary=int(rng.integers(4, 9)), concentration=float(rng.uniform(0.3, 2.0)))
        rows = int(rng.integers(1, 6))
        offsets = rng.integers(0, markov.vocabulary, (rows, 1)).astype(np.float32)
        limits = rng.integers(0, 9, rows).astype(np.int32)
        expected = markov.numpy_search(offsets, limits, width, length_penalty)
        found = markov.graph_search(offsets, limits, width, length_penalty)
        assert found == padded(expected), (seed, limits.tolist())


def test_rows_with_no_tokens_to_generate_and_rows_that_hit_their_limit():
    markov = OffsetMarkov(3, vocabulary=6, concentration=1.0)
    markov.table[:, EOS] = -50.0  # the end id never wins: every row runs to its limit
    offsets = np.zeros((3, 1), np.float32)
    limits = np.array([0, 1, 4], np.int32)
    found = markov.graph_search(offsets, limits, 3, 1.0)
    expected = markov.numpy_search(offsets, limits, 3, 1.0)
    assert [len(row) for row in expected] == [0, 1, 4]
    assert found == padded(expected)
    assert markov.graph_search(offsets, np.zeros(3, np.int32), 2, 1.0) == [[], [], []]


def test_beam_width_is_checked():
    markov = OffsetMarkov(0, vocabulary=4, concentration=1.0)
    with pytest.raises(ValueError, match="beam_width"):
        markov.graph_search(np.zeros((1, 1), np.float32), np.ones(1, np.int32), 0, 1.0)
