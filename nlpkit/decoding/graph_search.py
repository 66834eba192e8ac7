"""Beam search (and greedy search, its width-1 case) as one TensorFlow graph, for SavedModel serving.

The numpy searches (`nlpkit.decoding.search`) serve Keras and TFLite; a SavedModel's
``serving_default`` needs the search inside the graph. This is the same search as
`nlpkit.decoding.beam_search`, step for step, in fixed-size tensors: each row keeps
``beam_width`` open hypotheses (by summed log-probability, in float64 like the numpy side)
and a pool of the ``beam_width`` best finished ones (by ``sum log p / length **
length_penalty``, the end id counted). Per step, the best ``2 * beam_width`` extensions are
read in order (ties: lower beam, then lower id, as in the numpy search); one that ends with
the end id joins the pool, the others fill the open beam until it is full. A row stops once
its pool is full and no open hypothesis, normalised at the current length, ranks above the
pool's worst; at its length limit its open hypotheses join the pool. So the graph returns
the tokens `beam_search` returns (and, with ``beam_width=1``, those of `greedy`).

Finished hypotheses are kept as pointers (the step they ended at, the open beam they grew
from, their last token) into the per-step history of the open beams, and read back at the
end by following the parents.
"""

import tensorflow as tf

_NEG_INF = float("-inf")


def _select(values, index):
    """``values[b, index[b, k]]`` for a ``(batch, n)`` tensor and ``(batch, k)`` indices."""
    return tf.gather(values, index, batch_dims=1)


def _merge_into_pool(pool, scores, ends, parents, tokens, width):
    """The ``width`` best of the pool and the new finished hypotheses (``-inf``: none).

    ``pool`` is ``(scores, ends, parents, tokens)``, best first. On equal scores the pool's
    entries come first, then the new ones in their given order (a stable sort, as in
    `nlpkit.decoding.beam_search`).
    """
    merged = [tf.concat([old, new], axis=1) for old, new in zip(pool, (scores, ends, parents, tokens))]
    best_scores, order = tf.math.top_k(merged[0], k=width)
    return (best_scores, *(_select(part, order) for part in merged[1:]))


def graph_beam_search(step, states, bos_id, eos_id, limits, vocabulary_size, beam_width=1, length_penalty=1.0):
    """Batched beam search over ``step(token_ids, states) -> (logits, new_states)`` in TensorFlow.

    Args:
        step: the decoder step (e.g. `nlpkit.models.Seq2Seq.step`).
        states: list of tensors, batch first (``Seq2Seq.decoding_states``).
        bos_id, eos_id: python ints.
        limits: int32 ``(batch,)``, the most tokens each row may generate (end id included).
        vocabulary_size: python int, width of the logits.
        beam_width: python int >= 1 (1: greedy search).
        length_penalty: python float >= 0.

    Returns:
        int32 ``(batch, steps)``: the best hypothesis of each row, end id included (where it
        ended with one), 0 after it.

    Example:
        >>> tokens = graph_beam_search(model.step, model.decoding_states(ids), 2, 3, limits, 8000, 4)
    """
    if isinstance(beam_width, bool) or not isinstance(beam_width, int) or beam_width < 1:
        raise ValueError(f"`beam_width` must be a positive int. Received: beam_width={beam_width!r}")
    width, vocabulary = beam_width, vocabulary_size
    candidates = min(2 * width, width * vocabulary)
    batch = tf.shape(states[0])[0]
    limits = tf.cast(limits, tf.int32)
    states = [tf.repeat(state, width, axis=0) for state in states]
    slots = tf.range(width)
    negative_infinity = tf.constant(_NEG_INF, tf.float64)
    # At first only beam 0 is open, with the empty hypothesis.
    open_sums = tf.tile(tf.where(slots == 0, 0.0, _NEG_INF)[None, :], [batch, 1])
    open_sums = tf.cast(open_sums, tf.float64)
    tokens = tf.fill([batch * width], tf.constant(bos_id, tf.int32))
    # A row with nothing to generate is done at once, with the empty hypothesis (score 0).
    done = limits <= 0
    empty = tf.logical_and(done[:, None], slots[None, :] == 0)
    pool = (
        tf.where(empty, tf.constant(0.0, tf.float64), negative_infinity),
        tf.fill([batch, width], -1),  # the step of the last token (-1: the empty hypothesis)
        tf.zeros([batch, width], tf.int32),  # the open beam it grew from, one step earlier
        tf.zeros([batch, width], tf.int32),  # its last token
    )
    token_history = tf.TensorArray(tf.int32, size=0, dynamic_size=True, element_shape=[None, width])
    parent_history = tf.TensorArray(tf.int32, size=0, dynamic_size=True, element_shape=[None, width])

    def body(t, tokens, states, open_sums, done, pool, token_history, parent_history):
        logits, new_states = step(tokens, states)
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float64), axis=-1)
        total = tf.expand_dims(open_sums, -1) + tf.reshape(log_probs, [batch, width, vocabulary])
        top_scores, flat = tf.math.top_k(tf.reshape(total, [batch, width * vocabulary]), k=candidates)
        parents, chosen = flat // vocabulary, flat % vocabulary
        live = tf.logical_and(tf.math.is_finite(top_scores), tf.logical_not(done)[:, None])
        stops = tf.equal(chosen, eos_id)
        extends = tf.logical_and(live, tf.logical_not(stops))
        # Candidates are read in order until `width` of them extend the open beam.
        extensions_before = tf.cumsum(tf.cast(extends, tf.int32), axis=1, exclusive=True)
        read = tf.logical_and(live, extensions_before < width)
        kept = tf.logical_and(read, tf.logical_not(stops))
        finishing = tf.logical_and(read, stops)

        # The k-th kept extension becomes open beam k.
        slot_match = tf.logical_and(kept[:, None, :], tf.equal(extensions_before[:, None, :], slots[None, :, None]))
        filled = tf.reduce_any(slot_match, axis=-1)
        source = tf.argmax(tf.cast(slot_match, tf.int32), axis=-1, output_type=tf.int32)
        next_sums = tf.where(filled, _select(top_scores, source), negative_infinity)
        next_parents = tf.where(filled, _select(parents, source), 0)
        next_tokens = tf.where(filled, _select(chosen, source), 0)

        norm = tf.pow(tf.cast(t + 1, tf.float64), length_penalty)
        steps_now = tf.fill(tf.shape(chosen), t)
        pool = _merge_into_pool(
            pool, tf.where(finishing, top_scores / norm, negative_infinity), steps_now, parents, chosen, width
        )
        # Done: the pool is full and no open hypothesis would rank above its worst.
        pool_full = tf.reduce_all(tf.math.is_finite(pool[0]), axis=1)
        best_open = tf.reduce_max(next_sums, axis=1) / norm
        stopped = tf.logical_and(tf.logical_not(done), tf.logical_and(pool_full, best_open <= pool[0][:, -1]))
        # At its limit a row's open hypotheses join the pool and it steps no further.
        at_limit = tf.logical_and(tf.logical_not(tf.logical_or(done, stopped)), tf.equal(t + 1, limits))
        closing = tf.logical_and(at_limit[:, None], tf.math.is_finite(next_sums))
        pool = _merge_into_pool(
            pool, tf.where(closing, next_sums / norm, negative_infinity), steps_now[:, :width], next_parents, next_tokens, width
        )
        done = done | stopped | at_limit
        next_sums = tf.where(done[:, None], negative_infinity, next_sums)

        flat_parents = tf.reshape(next_parents + tf.expand_dims(tf.range(batch) * width, -1), [-1])
        states = [tf.gather(state, flat_parents) for state in new_states]
        token_history = token_history.write(t, next_tokens)
        parent_history = parent_history.write(t, next_parents)
        return t + 1, tf.reshape(next_tokens, [-1]), states, next_sums, done, pool, token_history, parent_history

    def running(t, tokens, states, open_sums, done, *_):
        return tf.logical_and(t < tf.reduce_max(limits), tf.logical_not(tf.reduce_all(done)))

    _, _, _, _, _, pool, token_history, parent_history = tf.while_loop(
        running,
        body,
        (tf.constant(0), tokens, states, open_sums, done, pool, token_history, parent_history),
    )
    return _read_best(pool, token_history, parent_history)


def _read_best(pool, token_history, parent_history):
    """The tokens of each row's best pool entry, right-padded with 0 (``(batch, length)``)."""
    scores, ends, parents, last_tokens = (part[:, 0] for part in pool)
    # A row whose pool stayed empty returns no tokens.
    ends = tf.where(tf.math.is_finite(scores), ends, -1)
    length = tf.reduce_max(ends) + 1
    batch = tf.shape(ends)[0]

    def no_tokens():
        return tf.zeros([batch, 0], tf.int32)

    def backtrack():
        history_tokens = token_history.stack()  # (steps, batch, width)
        history_parents = parent_history.stack()

        def read(s, beam, collected):
            own = tf.gather(history_tokens[s], beam[:, None], batch_dims=1)[:, 0]
            token = tf.where(s > ends, 0, tf.where(tf.equal(s, ends), last_tokens, own))
            earlier = tf.gather(history_parents[s], beam[:, None], batch_dims=1)[:, 0]
            beam = tf.where(tf.equal(s, ends), parents, tf.where(s < ends, earlier, beam))
            return s - 1, beam, collected.write(s, token)

        _, _, collected = tf.while_loop(
            lambda s, *_: s >= 0,
            read,
            (length - 1, tf.zeros_like(ends), tf.TensorArray(tf.int32, size=length, element_shape=[None])),
        )
        return tf.transpose(tf.reshape(collected.stack(), [length, batch]))

    # length > 0 only when some row ended at a step, so the history is not empty then.
    return tf.cond(length > 0, backtrack, no_tokens)
