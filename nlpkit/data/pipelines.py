"""tf.data pipelines: tokenize -> cache -> shuffle -> bucket by length -> pad right -> prefetch."""

import numpy as np
import tensorflow as tf


def bucket_boundaries(lengths, num_buckets=8):
    """Bucket edges at length quantiles, so each bucket holds a similar number of examples.

    Example:
        >>> bucket_boundaries([3, 5, 8, 13, 21, 34], num_buckets=3)
        [8, 17]
    """
    lengths = np.asarray(list(lengths))
    if lengths.size == 0:
        return []
    quantiles = np.quantile(lengths, np.linspace(0, 1, num_buckets + 1)[1:-1])
    edges = sorted({int(np.ceil(q)) + 1 for q in quantiles})
    return [edge for edge in edges if edge > 1]


def classification_dataset(
    texts,
    label_ids,
    tokenizer,
    batch_size=32,
    shuffle=False,
    seed=None,
    num_buckets=8,
    cache=True,
):
    """Builds a padded, length-bucketed ``(token_ids, label_id)`` dataset for ``model.fit``.

    Tokenization runs once (the tokenized examples are cached in memory); shuffling happens
    after the cache so every epoch sees a new order. Batches are padded on the right with
    id 0, the mask value, to the longest sequence in the batch, and sequences of similar
    length are batched together so little time is spent on padding.

    Args:
        texts: sequence of str.
        label_ids: sequence of int class indices, same length as ``texts``.
        tokenizer: a graph tokenizer from `nlpkit.text` (scalar string -> 1-D int32 ids).
        batch_size: int, default 32.
        shuffle: bool, default False. Shuffle examples each epoch.
        seed: optional int for the shuffle.
        num_buckets: int, default 8. Number of length buckets (1 disables bucketing).
        cache: bool, default True. Keep tokenized examples in memory.

    Example:
        >>> dataset = classification_dataset(["good film", "bad"], [1, 0], tokenizer)
        >>> ids, labels = next(iter(dataset))
    """
    texts = list(texts)
    label_ids = np.asarray(list(label_ids), dtype=np.int32)
    if len(texts) != len(label_ids):
        raise ValueError(
            f"texts and label_ids differ in length: {len(texts)} != {len(label_ids)}."
        )
    dataset = tf.data.Dataset.from_tensor_slices((tf.constant(texts, tf.string), label_ids))
    dataset = dataset.batch(1024).map(
        lambda text, label: (_pad_to_one(tokenizer(text)), label),
        num_parallel_calls=tf.data.AUTOTUNE,
    ).unbatch()
    # unbatch() loses the example count; without it the batches below have an unknown
    # count too (see `bucket_by_length` for what that costs in `model.fit`).
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(len(texts)))
    dataset = dataset.map(lambda ids, label: (_strip_padding(ids), label))
    if cache:
        dataset = dataset.cache()
    bucketed = num_buckets > 1 and len(texts) > batch_size
    if bucketed:
        # An example's bucket depends on its token count, which only the graph tokenizer
        # knows, and `bucket_by_length` needs every count: one pass reads them. Over the
        # cached dataset that pass also fills the cache, so the texts are still tokenized once.
        token_lengths = np.concatenate(
            [np.zeros(0, np.int32)]
            + [batch.numpy() for batch in dataset.map(lambda ids, label: tf.shape(ids)[0]).batch(4096)]
        )
    if shuffle:
        dataset = dataset.shuffle(min(len(texts), 100_000), seed=seed, reshuffle_each_iteration=True)
    if bucketed:
        edges = bucket_boundaries([len(text.split()) for text in texts], num_buckets)
        dataset = bucket_by_length(
            dataset, token_lengths, lambda ids, label: tf.shape(ids)[0], edges, batch_size,
            padded_shapes=([None], []), padding_values=(0, 0),
        )
    else:
        dataset = dataset.padded_batch(batch_size, padded_shapes=([None], []))
    return prefetch_without_autotuner(dataset)


def _pad_to_one(ragged_ids):
    # Batched tokenization yields a ragged batch; densify with right padding (id 0) plus one
    # extra padding column. Without it a chunk of only empty texts is zero columns wide:
    # unbatching that crashes TensorFlow (segfault) and leaves _strip_padding nothing to keep.
    return tf.pad(ragged_ids.to_tensor(default_value=0), [[0, 0], [0, 1]])


def _strip_padding(ids):
    # After unbatching, drop the padding added to fit the tokenization batch, but keep at
    # least one position so an empty text still yields a (fully masked) sequence.
    length = tf.maximum(tf.reduce_sum(tf.cast(ids != 0, tf.int32)), 1)
    return ids[:length]


def tagging_dataset(
    word_ids,
    char_ids,
    tag_ids,
    batch_size=32,
    shuffle=False,
    seed=None,
    num_buckets=8,
):
    """Builds a padded, length-bucketed ``({"word_ids", "char_ids"}, tag_ids)`` dataset.

    The input of `nlpkit.models.SequenceTagger.fit`. Sentences of similar length are
    batched together; word ids, character ids and tags are right-padded with 0 (word id 0
    marks the padding the model masks; character padding is 0 too).

    Args:
        word_ids: list (per sentence) of lists of int.
        char_ids: list (per sentence) of lists (per token) of lists of int.
        tag_ids: list (per sentence) of lists of int, one per token.
        batch_size: int, default 32.
        shuffle: bool, default False. Shuffle sentences each epoch (before bucketing).
        seed: optional int for the shuffle.
        num_buckets: int, default 8. Number of length buckets (1 disables bucketing).

    Example:
        >>> dataset = tagging_dataset([[4, 5]], [[[3, 4], [5]]], [[1, 0]], batch_size=8)
        >>> inputs, tags = next(iter(dataset))
        >>> inputs["char_ids"].shape
        TensorShape([1, 2, 2])
    """
    if not len(word_ids) == len(char_ids) == len(tag_ids):
        raise ValueError(
            f"word_ids, char_ids and tag_ids hold {len(word_ids)}, {len(char_ids)} and "
            f"{len(tag_ids)} sentences; they must hold the same number."
        )
    for index, (words, chars, tags) in enumerate(zip(word_ids, char_ids, tag_ids)):
        if not len(words) == len(chars) == len(tags):
            raise ValueError(
                f"sentence {index} has {len(words)} word ids, {len(chars)} character lists "
                f"and {len(tags)} tags; they must match."
            )
    sentence_lengths = np.array([len(words) for words in word_ids], np.int64)
    word_lengths = np.array([len(chars) for sentence in char_ids for chars in sentence], np.int64)

    def flat(values, dtype):
        values = list(values)
        return np.fromiter(values, dtype, len(values))

    words = tf.RaggedTensor.from_row_lengths(
        flat((i for sentence in word_ids for i in sentence), np.int32), sentence_lengths
    )
    tags = tf.RaggedTensor.from_row_lengths(
        flat((i for sentence in tag_ids for i in sentence), np.int32), sentence_lengths
    )
    chars = tf.RaggedTensor.from_nested_row_lengths(
        flat((i for sentence in char_ids for token in sentence for i in token), np.int32),
        [sentence_lengths, word_lengths],
    )
    dataset = tf.data.Dataset.from_tensor_slices((words, chars, tags))
    dataset = dataset.map(
        lambda w, c, t: ({"word_ids": w, "char_ids": c.to_tensor(default_value=0)}, t),
        num_parallel_calls=tf.data.AUTOTUNE,
    ).cache()
    if shuffle:
        dataset = dataset.shuffle(min(len(word_ids), 100_000) or 1, seed=seed, reshuffle_each_iteration=True)
    padded_shapes = ({"word_ids": [None], "char_ids": [None, None]}, [None])
    if num_buckets > 1 and len(word_ids) > batch_size:
        edges = bucket_boundaries(sentence_lengths, num_buckets)
        dataset = bucket_by_length(
            dataset, sentence_lengths, lambda inputs, _: tf.shape(inputs["word_ids"])[0], edges, batch_size,
            padded_shapes=padded_shapes,
        )
    else:
        dataset = dataset.padded_batch(batch_size, padded_shapes=padded_shapes)
    return prefetch_without_autotuner(dataset)


def bucket_by_length(dataset, lengths, length_fn, boundaries, batch_size, padded_shapes=None, padding_values=None):
    """``dataset.bucket_by_sequence_length`` with a number of batches that tf.data knows.

    How many batches bucketing makes depends on every example's length, so tf.data marks
    the bucketed dataset's cardinality unknown. ``model.fit`` then finds an epoch's end
    only by running off it: every epoch, and every validation pass, ends with Keras'
    "Your input ran out of data; interrupting training" warning, and the empty training
    call at the end still advances the optimizer's step counter (13 batches count as 14
    steps, which shifts Adam's bias correction and step-based schedules). The count is
    known in advance from the lengths: each bucket yields ceil(its examples / batch_size)
    batches in any order, since the leftovers of every bucket are flushed at the end.

    Args:
        dataset: an unbatched ``tf.data.Dataset``.
        lengths: sequence of int, every example's length as ``length_fn`` computes it.
        length_fn: callable, element -> scalar int32 tensor, the bucketing key.
        boundaries: list of int, the increasing upper length bounds of the buckets
            (`bucket_boundaries`); ``len(boundaries) + 1`` buckets.
        batch_size: int, the batch size of every bucket.
        padded_shapes, padding_values: as for ``tf.data.Dataset.bucket_by_sequence_length``.

    Example:
        >>> dataset = tf.data.Dataset.range(1, 8).map(lambda n: tf.range(n))
        >>> batches = bucket_by_length(dataset, range(1, 8), lambda ids: tf.shape(ids)[0], [4], batch_size=2)
        >>> int(batches.cardinality())  # lengths 1-3: 2 batches; lengths 4-7: 2 batches
        4
    """
    lengths = np.asarray(list(lengths), np.int64)
    examples = int(dataset.cardinality())
    if examples >= 0 and lengths.size != examples:
        raise ValueError(f"`lengths` holds {lengths.size} lengths but the dataset holds {examples} examples.")
    buckets = np.searchsorted(np.asarray(boundaries, np.int64), lengths, side="right")
    batches = int(sum(-(-count // batch_size) for count in np.bincount(buckets)))
    dataset = dataset.bucket_by_sequence_length(
        length_fn,
        bucket_boundaries=list(boundaries),
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        padded_shapes=padded_shapes,
        padding_values=padding_values,
    )
    # Checked by tf.data as the batches are read: a wrong count fails loudly, not silently.
    return dataset.apply(tf.data.experimental.assert_cardinality(batches))


def prefetch_without_autotuner(dataset):
    """``dataset`` with prefetching and tf.data's autotuner turned off.

    With the autotuner on, creating and dropping the per-epoch iterators that ``model.fit``
    makes stalled 9-40 s in about a third of the epochs of the CoNLL-2003 tagger on 2 cores
    (mean epoch 57 s -> 44 s, measured in the 2-member BiLSTM-CRF recipe). These pipelines
    are cheap next to the models they feed, so fixed prefetching loses nothing.

    Example:
        >>> dataset = prefetch_without_autotuner(tf.data.Dataset.range(3))
        >>> dataset.options().autotune.enabled
        False
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(options)
