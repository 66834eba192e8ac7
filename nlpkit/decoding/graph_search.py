"""Beam search (and greedy search, its width-1 case) as one TensorFlow graph, for SavedModel serving.

The numpy searches (`nlpkit.decoding.search`) serve Keras and TFLite; a SavedModel's
``serving_default`` needs the search inside the graph. This is the fixed-width form used by
graph decoders (e.g. the retired tensorflow-addons ``BeamSearchDecoder``): a finished
hypothesis stays in its beam, extended only by padding (id 0) at no cost, so every row
keeps exactly ``beam_width`` hypotheses; at the end each row returns the one with the best
length-normalised score, ``sum log p / length ** length_penalty`` (length counts the end id,
as in `nlpkit.decoding.beam_search`). With ``beam_width=1`` it is greedy search and gives the
numpy `greedy` tokens (lowest id on ties in both). A hypothesis also ends at its row's limit.
"""

import tensorflow as tf

_NEG_INF = float("-inf")


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
    batch = tf.shape(states[0])[0]
    limits = tf.cast(limits, tf.int32)
    states = [tf.repeat(state, width, axis=0) for state in states]
    first = tf.concat([[0.0], tf.fill([width - 1], _NEG_INF)], 0)
    scores = tf.tile(first[None, :], [batch, 1])
    finished = tf.zeros([batch, width], tf.bool)
    lengths = tf.zeros([batch, width], tf.int32)
    tokens = tf.fill([batch * width], tf.constant(bos_id, tf.int32))
    # Only padding (id 0), at no cost: how a finished hypothesis goes on, unchanged.
    pad_only = tf.where(tf.range(vocabulary) == 0, 0.0, _NEG_INF)
    max_steps = tf.reduce_max(limits)
    token_history = tf.TensorArray(tf.int32, size=0, dynamic_size=True, element_shape=[None, width])
    parent_history = tf.TensorArray(tf.int32, size=0, dynamic_size=True, element_shape=[None, width])

    def body(t, tokens, states, scores, finished, lengths, token_history, parent_history):
        logits, new_states = step(tokens, states)
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
        log_probs = tf.where(tf.reshape(finished, [-1, 1]), pad_only, log_probs)
        total = tf.expand_dims(scores, -1) + tf.reshape(log_probs, [batch, width, vocabulary])
        top_scores, flat = tf.math.top_k(tf.reshape(total, [batch, width * vocabulary]), k=width)
        parents, chosen = flat // vocabulary, flat % vocabulary
        was_finished = tf.gather(finished, parents, batch_dims=1)
        lengths = tf.gather(lengths, parents, batch_dims=1) + tf.cast(tf.logical_not(was_finished), tf.int32)
        # A hypothesis ends at the end id or at its row's limit (like `beam_search`).
        at_limit = tf.expand_dims(t + 1 >= limits, -1)
        finished = was_finished | tf.equal(chosen, eos_id) | at_limit
        flat_parents = tf.reshape(parents + tf.expand_dims(tf.range(batch) * width, -1), [-1])
        states = [tf.gather(state, flat_parents) for state in new_states]
        token_history = token_history.write(t, chosen)
        parent_history = parent_history.write(t, parents)
        return t + 1, tf.reshape(chosen, [-1]), states, top_scores, finished, lengths, token_history, parent_history

    def running(t, tokens, states, scores, finished, *_):
        return tf.logical_and(t < max_steps, tf.logical_not(tf.reduce_all(finished)))

    steps, _, _, scores, finished, lengths, token_history, parent_history = tf.while_loop(
        running,
        body,
        (tf.constant(0), tokens, states, scores, finished, lengths, token_history, parent_history),
    )
    normalized = scores / tf.pow(tf.cast(tf.maximum(lengths, 1), tf.float32), length_penalty)
    best = tf.argmax(normalized, axis=-1, output_type=tf.int32)
    chosen_tokens = token_history.stack()  # (steps, batch, width)
    chosen_parents = parent_history.stack()

    # Follow the parents back from the last step to read out each row's best hypothesis.
    def backtrack(t, beam, collected):
        token = tf.gather(chosen_tokens[t], beam, batch_dims=1)
        collected = collected.write(t, token)
        return t - 1, tf.gather(chosen_parents[t], beam, batch_dims=1), collected

    _, _, collected = tf.while_loop(
        lambda t, *_: t >= 0,
        backtrack,
        (steps - 1, best, tf.TensorArray(tf.int32, size=steps, element_shape=[None])),
    )
    return tf.cond(
        steps > 0,
        lambda: tf.transpose(tf.reshape(collected.stack(), [steps, batch])),
        lambda: tf.zeros([batch, 0], tf.int32),
    )
