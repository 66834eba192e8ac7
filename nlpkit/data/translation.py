"""Translation data: sentence pairs -> subword ids -> teacher-forcing batches.

The conventions every translation component shares (`nlpkit.models.Seq2Seq`, the recipe,
the SavedModel and `nlpkit.lite`):

- a source is its subword ids followed by the end id (so even an empty source has one
  position to attend to);
- the decoder input is the start id followed by the target ids, and the labels are the
  target ids followed by the end id;
- padding is id 0, on the right.

Everything here is numpy and the standard library except `translation_dataset`, which
imports TensorFlow when called.
"""

import numpy as np

from nlpkit.text.subword import BOS_ID, EOS_ID


def encode_source(tokenizer, text, max_length=None):
    """Source ids: ``tokenizer.encode(text)`` (at most ``max_length - 1`` of them) then the end id.

    Example:
        >>> encode_source(tokenizer, "")  # doctest: +SKIP
        [3]
    """
    ids = tokenizer.encode(text)
    if max_length is not None:
        ids = ids[: max(max_length - 1, 0)]
    return ids + [EOS_ID]


def encode_pairs(tokenizer, pairs, max_length=None):
    """``(sources, targets)``: source ids (`encode_source`) and target ids per pair.

    Args:
        tokenizer: a subword tokenizer with ``encode`` (one shared by both languages).
        pairs: sequence of ``(source, target)`` strings (e.g. `nlpkit.data.ParallelPair`).
        max_length: optional int; sources keep at most this many ids (end id included),
            targets at most ``max_length - 1`` (the end or start id makes them full).

    Example:
        >>> sources, targets = encode_pairs(tokenizer, [("Ein Hund.", "A dog.")])  # doctest: +SKIP
    """
    sources, targets = [], []
    for source, target in pairs:
        sources.append(encode_source(tokenizer, source, max_length))
        ids = tokenizer.encode(target)
        targets.append(ids[: max(max_length - 1, 0)] if max_length is not None else ids)
    return sources, targets


def pad_ids(sequences, min_length=1):
    """Right-pads lists of ids with 0 into an int32 array ``(len(sequences), max(length, min_length))``.

    Example:
        >>> pad_ids([[5, 3], [3]]).tolist()
        [[5, 3], [3, 0]]
    """
    width = max([min_length] + [len(sequence) for sequence in sequences])
    array = np.zeros((len(sequences), width), np.int32)
    for row, sequence in enumerate(sequences):
        array[row, : len(sequence)] = sequence
    return array


def teacher_forcing_arrays(sources, targets):
    """``(inputs, labels)`` for ``Seq2Seq.fit``: padded source ids, decoder inputs and labels.

    Example:
        >>> inputs, labels = teacher_forcing_arrays([[7, 8, 3]], [[9, 10]])
        >>> inputs["decoder_input_ids"].tolist(), labels.tolist()
        ([[2, 9, 10]], [[9, 10, 3]])
    """
    if len(sources) != len(targets):
        raise ValueError(f"sources and targets differ in length: {len(sources)} != {len(targets)}")
    inputs = {
        "source_ids": pad_ids(sources),
        "decoder_input_ids": pad_ids([[BOS_ID] + list(target) for target in targets]),
    }
    return inputs, pad_ids([list(target) + [EOS_ID] for target in targets])


def translation_dataset(sources, targets, batch_size=32, shuffle=False, seed=None, num_buckets=8):
    """A ``tf.data`` dataset of teacher-forcing batches, bucketed by source length.

    Pairs of similar source length are batched together and padded to the longest in the
    batch, so little time goes into padding; with ``shuffle`` the pairs are reshuffled
    every epoch before bucketing.

    Args:
        sources, targets: lists of id lists (`encode_pairs`).
        batch_size: int, default 32.
        shuffle: bool, default False.
        seed: optional int for the shuffle.
        num_buckets: int, default 8 (1 disables bucketing).

    Returns:
        ``tf.data.Dataset`` of ``({"source_ids", "decoder_input_ids"}, labels)``.

    Example:
        >>> dataset = translation_dataset(sources, targets, batch_size=64, shuffle=True)  # doctest: +SKIP
        >>> model.fit(dataset, epochs=10)  # doctest: +SKIP
    """
    import tensorflow as tf

    from nlpkit.data.pipelines import bucket_boundaries, bucket_by_length, prefetch_without_autotuner

    if len(sources) != len(targets):
        raise ValueError(f"sources and targets differ in length: {len(sources)} != {len(targets)}")
    if not sources:
        raise ValueError("translation_dataset needs at least one pair; received none.")
    columns = (
        [list(source) for source in sources],
        [[BOS_ID] + list(target) for target in targets],
        [list(target) + [EOS_ID] for target in targets],
    )
    # Every column as one flat array and its row offsets: slicing them per example gives
    # dense 1-D tensors, which bucketing (padded_batch) needs; ragged slices stay ragged.
    flats, offsets = [], []
    for column in columns:
        flats.append(tf.constant(np.fromiter((i for row in column for i in row), np.int32)))
        offsets.append(tf.constant(np.cumsum([0] + [len(row) for row in column]), tf.int64))

    def example(index):
        return tuple(flat[offset[index] : offset[index + 1]] for flat, offset in zip(flats, offsets))

    dataset = tf.data.Dataset.range(len(sources))
    if shuffle:
        dataset = dataset.shuffle(len(sources), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.map(example)
    source_lengths = [len(source) for source in sources]
    boundaries = bucket_boundaries(source_lengths, num_buckets) if num_buckets > 1 else []
    dataset = bucket_by_length(
        dataset, source_lengths, lambda source, decoder_input, labels: tf.shape(source)[0], boundaries, batch_size
    )
    dataset = dataset.map(
        lambda source, decoder_input, labels: ({"source_ids": source, "decoder_input_ids": decoder_input}, labels)
    )
    return prefetch_without_autotuner(dataset)
