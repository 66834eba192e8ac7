"""classification_dataset with a real graph tokenizer, and bucket_boundaries."""

import collections
import doctest

import numpy as np
import pytest

from nlpkit.data import pipelines
from nlpkit.data.pipelines import bucket_boundaries, classification_dataset
from nlpkit.text import PythonWordTokenizer, TextNormalizer, Vocabulary, WordTokenizer

WORDS = "the a film plot actor scene score music dull fine great boring long short".split()


def make_texts(count, seed=0):
    """Texts of 0 to 12 words (some empty), some words left out of the vocabulary."""
    rng = np.random.default_rng(seed)
    texts = []
    for index in range(count):
        length = 0 if index % 17 == 0 else int(rng.integers(1, 13))
        words = rng.choice(WORDS + ["unseen", "Film!"], size=length)
        texts.append(" ".join(words))
    return texts


@pytest.fixture(scope="module")
def twin():
    normalizer = TextNormalizer()
    return PythonWordTokenizer(Vocabulary.build([WORDS]), normalizer)


@pytest.fixture(scope="module")
def tokenizer(twin):
    return WordTokenizer.from_python(twin)


@pytest.fixture(scope="module")
def corpus():
    texts = make_texts(70)
    # Every (text, label) pair distinct, so a multiset comparison pins each example down.
    labels = list(range(len(texts)))
    return texts, labels


def examples(dataset):
    """All ``(ids without right padding, label)`` pairs, in order, checking the padding."""
    found = []
    for ids, labels in dataset:
        ids, labels = ids.numpy(), labels.numpy()
        assert ids.dtype == np.int32 and ids.ndim == 2 and ids.shape[1] >= 1
        assert len(ids) == len(labels)
        for row, label in zip(ids, labels):
            length = int(np.count_nonzero(row))
            # Right padding only: every id after the first 0 is 0.
            assert np.all(row[:length] != 0) and np.all(row[length:] == 0), row
            found.append((tuple(row[:length].tolist()), int(label)))
    return found


def expected_examples(twin, texts, labels):
    return [(tuple(twin.encode(text)), label) for text, label in zip(texts, labels)]


def batch_sizes(dataset):
    return [int(labels.shape[0]) for _, labels in dataset]


@pytest.mark.parametrize("num_buckets", [1, 4], ids=["no_buckets", "buckets"])
def test_every_example_once_with_its_label(num_buckets, tokenizer, twin, corpus):
    texts, labels = corpus
    dataset = classification_dataset(
        texts, labels, tokenizer, batch_size=8, num_buckets=num_buckets
    )
    expected = collections.Counter(expected_examples(twin, texts, labels))
    for _ in range(2):
        assert collections.Counter(examples(dataset)) == expected


def test_without_bucketing_order_is_kept_and_batches_are_full(tokenizer, twin, corpus):
    texts, labels = corpus
    dataset = classification_dataset(
        texts, labels, tokenizer, batch_size=16, num_buckets=1, cache=False
    )
    assert examples(dataset) == expected_examples(twin, texts, labels)
    assert batch_sizes(dataset) == [16, 16, 16, 16, 6]
    # Each batch is padded to its own longest sequence, not to a global length.
    for ids, _ in dataset:
        assert np.count_nonzero(ids.numpy(), axis=1).max() == ids.shape[1] or ids.shape[1] == 1


def test_buckets_respect_batch_size_and_group_lengths(tokenizer, corpus):
    texts, labels = corpus
    lengths = [len(text.split()) for text in texts]
    edges = bucket_boundaries(lengths, 4)
    dataset = classification_dataset(texts, labels, tokenizer, batch_size=8, num_buckets=4)
    sizes = batch_sizes(dataset)
    assert sum(sizes) == len(texts) and max(sizes) <= 8
    bounds = [0] + edges + [np.inf]
    for ids, _ in dataset:
        row_lengths = np.maximum(np.count_nonzero(ids.numpy(), axis=1), 1)
        buckets = {int(np.searchsorted(bounds, length, side="right")) for length in row_lengths}
        assert len(buckets) == 1, (row_lengths, edges)


def test_shuffle_changes_order_between_epochs_but_not_content(tokenizer, twin, corpus):
    texts, labels = corpus
    dataset = classification_dataset(
        texts, labels, tokenizer, batch_size=8, shuffle=True, seed=3, num_buckets=1
    )
    epochs = [examples(dataset) for _ in range(3)]
    expected = collections.Counter(expected_examples(twin, texts, labels))
    for epoch in epochs:
        assert collections.Counter(epoch) == expected
    assert epochs[0] != epochs[1] and epochs[1] != epochs[2]
    assert epochs[0] != expected_examples(twin, texts, labels)


def test_shuffle_with_buckets_keeps_content(tokenizer, twin, corpus):
    texts, labels = corpus
    dataset = classification_dataset(
        texts, labels, tokenizer, batch_size=8, shuffle=True, seed=1, num_buckets=3
    )
    first, second = examples(dataset), examples(dataset)
    assert collections.Counter(first) == collections.Counter(second)
    assert collections.Counter(first) == collections.Counter(expected_examples(twin, texts, labels))
    assert first != second


def test_empty_text_is_one_padding_position(tokenizer):
    dataset = classification_dataset(["", "   "], [1, 0], tokenizer, batch_size=2)
    ((ids, labels),) = list(dataset)
    assert ids.numpy().tolist() == [[0], [0]]
    assert labels.numpy().tolist() == [1, 0]


def test_tokenization_chunk_of_only_empty_texts(tokenizer):
    # Texts are tokenized 1024 at a time; a last chunk holding only empty texts once came out
    # zero columns wide, which crashed TensorFlow's unbatch.
    texts = ["fine film"] * 1024 + ["", ""]
    labels = [1] * 1024 + [0, 0]
    dataset = classification_dataset(texts, labels, tokenizer, batch_size=512, num_buckets=1)
    *_, (ids, labels) = list(dataset)
    assert ids.numpy().tolist() == [[0], [0]]
    assert labels.numpy().tolist() == [0, 0]


def test_empty_text_next_to_a_long_one_is_all_padding(tokenizer, twin):
    texts = ["", "the fine film", "dull"]
    dataset = classification_dataset(texts, [0, 1, 2], tokenizer, batch_size=4, num_buckets=1)
    ((ids, labels),) = list(dataset)
    ids = ids.numpy()
    assert ids.shape == (3, 3)
    assert ids.tolist() == [[0, 0, 0], twin.encode("the fine film"), twin.encode("dull") + [0, 0]]
    assert labels.numpy().tolist() == [0, 1, 2]


def test_labels_accept_numpy_and_keep_dtype(tokenizer):
    labels = np.array([1, 0], np.int64)
    dataset = classification_dataset(["fine", "dull"], labels, tokenizer, batch_size=2)
    ((_, labels),) = list(dataset)
    assert labels.dtype.name == "int32"
    assert labels.numpy().tolist() == [1, 0]


@pytest.mark.parametrize("label_count", [2, 4])
def test_length_mismatch_names_both_lengths(tokenizer, label_count):
    with pytest.raises(ValueError, match=f"3 != {label_count}"):
        classification_dataset(["a", "b", "c"], list(range(label_count)), tokenizer)


# ---------------------------------------------------------------- bucket_boundaries


def test_bucket_boundaries_split_into_equal_groups():
    lengths = [3, 5, 8, 13, 21, 34]
    edges = bucket_boundaries(lengths, num_buckets=3)
    # tf.data buckets hold lengths in [edge_i, edge_i+1): two examples in each here.
    groups = collections.Counter(int(np.searchsorted(edges, n, side="right")) for n in lengths)
    assert sorted(groups.values()) == [2, 2, 2]
    assert edges == sorted(set(edges))


@pytest.mark.parametrize(
    "lengths,num_buckets,expected",
    [
        ([], 4, []),
        ([5] * 10, 4, [6]),  # equal quantiles collapse into one edge
        (list(range(1, 101)), 4, [27, 52, 77]),
        (list(range(1, 101)), 1, []),
        ([1, 1, 1, 1], 3, [2]),
    ],
)
def test_bucket_boundaries_cases(lengths, num_buckets, expected):
    assert bucket_boundaries(lengths, num_buckets) == expected


def test_bucket_boundaries_are_increasing_and_above_one():
    rng = np.random.default_rng(0)
    for _ in range(20):
        lengths = rng.integers(0, 60, size=int(rng.integers(1, 200)))
        edges = bucket_boundaries(lengths.tolist(), int(rng.integers(1, 10)))
        assert edges == sorted(set(edges)) and all(edge > 1 for edge in edges)
        # Every edge lies just above some quantile, so never beyond the longest length + 2.
        assert all(edge <= lengths.max() + 2 for edge in edges)


def test_bucket_boundaries_accepts_generators():
    assert bucket_boundaries((n for n in [2, 4, 6, 8]), 2) == bucket_boundaries([2, 4, 6, 8], 2)


def test_bucket_boundaries_docstring():
    finder = doctest.DocTestFinder()
    globs = {"bucket_boundaries": bucket_boundaries}
    (test,) = finder.find(bucket_boundaries, "bucket_boundaries", globs=globs)
    assert doctest.DocTestRunner().run(test).failed == 0
    assert pipelines.bucket_boundaries is bucket_boundaries


@pytest.mark.parametrize("shuffle", [False, True])
def test_classification_and_translation_datasets_keep_the_autotuner_off(tokenizer, corpus, shuffle):
    # As in the tagger's: with the autotuner on, 2 of 8 SST-2 epochs of the sentiment recipe
    # took 41 s instead of 24-27 s on 2 cores; with it off, none of 8 (21-29 s).
    from nlpkit.data.translation import translation_dataset

    texts, labels = corpus
    datasets = [
        (classification_dataset(texts, labels, tokenizer, batch_size=8, shuffle=shuffle, seed=1), len(texts)),
        (translation_dataset([[5, 6], [7]], [[8], [9, 10]], batch_size=2, shuffle=shuffle, seed=1), 2),
    ]
    for dataset, examples_in in datasets:
        assert dataset.options().autotune.enabled is False
        assert sum(batch_sizes(dataset)) == examples_in  # every example still comes out once


def test_prefetch_without_autotuner_doctest():
    finder = doctest.DocTestFinder()
    globs = {"prefetch_without_autotuner": pipelines.prefetch_without_autotuner, "tf": pipelines.tf}
    (test,) = finder.find(pipelines.prefetch_without_autotuner, "prefetch_without_autotuner", globs=globs)
    assert doctest.DocTestRunner().run(test).failed == 0


# ---------------------------------------------------------------- known number of batches


def every_pipeline(tokenizer, corpus):
    """``{name: dataset}`` for each batching path of the three pipelines, shuffled where it can be."""
    from nlpkit.data.pipelines import tagging_dataset
    from nlpkit.data.translation import translation_dataset

    texts, labels = corpus
    words, chars, tags = tagging_corpus(70)
    rng = np.random.default_rng(5)
    sources = [list(rng.integers(3, 40, int(rng.integers(1, 15)))) for _ in range(70)]
    targets = [list(rng.integers(3, 40, int(rng.integers(1, 15)))) for _ in range(70)]
    return {
        "classification_buckets": classification_dataset(texts, labels, tokenizer, batch_size=8, num_buckets=4,
                                                          shuffle=True, seed=2),
        "classification_buckets_no_cache": classification_dataset(texts, labels, tokenizer, batch_size=8,
                                                                   num_buckets=4, cache=False),
        "classification_no_buckets": classification_dataset(texts, labels, tokenizer, batch_size=8, num_buckets=1),
        "tagging_buckets": tagging_dataset(words, chars, tags, batch_size=8, shuffle=True, seed=2, num_buckets=4),
        "tagging_no_buckets": tagging_dataset(words, chars, tags, batch_size=8, num_buckets=1),
        "translation_buckets": translation_dataset(sources, targets, batch_size=8, shuffle=True, seed=2),
        "translation_no_buckets": translation_dataset(sources, targets, batch_size=8, num_buckets=1),
    }


def test_every_pipeline_knows_its_number_of_batches(tokenizer, corpus):
    # An unknown count is what makes `model.fit` run off the end of every epoch (warning,
    # and one phantom optimizer step per epoch); a wrong one would fail the epoch.
    for name, dataset in every_pipeline(tokenizer, corpus).items():
        count = int(dataset.cardinality())
        assert count > 0, (name, count)
        for _ in range(2):  # a reshuffled epoch makes the same number of batches
            assert sum(1 for _ in dataset) == count, name


def test_bucket_by_length_counts_batches_per_bucket_and_checks_lengths():
    tf = pipelines.tf
    lengths = [1, 1, 1, 5, 9, 9]
    dataset = tf.data.Dataset.from_tensor_slices(lengths).map(lambda n: tf.ones([n], tf.int32))
    batches = pipelines.bucket_by_length(dataset, lengths, lambda ids: tf.shape(ids)[0], [2, 6], batch_size=2)
    # Buckets [0, 2): 3 rows -> 2 batches, [2, 6): 1 row -> 1, [6, inf): 2 rows -> 1.
    assert int(batches.cardinality()) == 4 == len(list(batches))
    with pytest.raises(ValueError, match="holds 5 lengths but the dataset holds 6 examples"):
        pipelines.bucket_by_length(dataset, lengths[:5], lambda ids: tf.shape(ids)[0], [2, 6], batch_size=2)


def test_bucket_by_length_doctest():
    finder = doctest.DocTestFinder()
    globs = {"bucket_by_length": pipelines.bucket_by_length, "tf": pipelines.tf}
    (test,) = finder.find(pipelines.bucket_by_length, "bucket_by_length", globs=globs)
    assert doctest.DocTestRunner().run(test).failed == 0


def test_recipe_style_fit_runs_clean_epochs(tokenizer, twin, corpus):
    # The sentiment recipe's fit: shuffled, bucketed training batches and bucketed
    # validation batches. Before the pipelines had a known batch count, Keras warned
    # "Your input ran out of data" after the first epoch and after every validation pass,
    # and counted one optimizer step more per epoch than it trained.
    import warnings

    import keras

    texts, labels = corpus
    labels = [label % 2 for label in labels]
    train = classification_dataset(texts, labels, tokenizer, batch_size=8, num_buckets=4, shuffle=True, seed=1)
    valid = classification_dataset(texts[:30], labels[:30], tokenizer, batch_size=8, num_buckets=4)
    keras.utils.set_random_seed(1)
    model = keras.Sequential([
        keras.Input((None,), dtype="int32"),
        keras.layers.Embedding(len(twin.vocabulary), 4, mask_zero=True),
        keras.layers.GlobalAveragePooling1D(),
        keras.layers.Dense(2),
    ])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(train, validation_data=valid, epochs=3, shuffle=False, verbose=0)
    assert not [str(warning.message) for warning in caught if "ran out of data" in str(warning.message)]
    assert int(model.optimizer.iterations.numpy()) == 3 * sum(1 for _ in train)


# ---------------------------------------------------------------------------------------------
# tagging_dataset
# ---------------------------------------------------------------------------------------------


def tagging_corpus(count, seed=0):
    """Sentences of 1-12 tokens with 1-6 characters each; every token id unique."""
    rng = np.random.default_rng(seed)
    words, chars, tags = [], [], []
    next_id = 2
    for _ in range(count):
        length = int(rng.integers(1, 13))
        words.append(list(range(next_id, next_id + length)))
        next_id += length
        chars.append([[int(c) for c in rng.integers(1, 50, int(rng.integers(1, 7)))] for _ in range(length)])
        tags.append([int(t) for t in rng.integers(0, 9, length)])
    return words, chars, tags


@pytest.mark.parametrize("num_buckets", [1, 4], ids=["no_buckets", "buckets"])
def test_tagging_dataset_yields_every_sentence_once_padded_right(num_buckets):
    from nlpkit.data.pipelines import tagging_dataset

    words, chars, tags = tagging_corpus(70)
    dataset = tagging_dataset(words, chars, tags, batch_size=8, shuffle=True, seed=3, num_buckets=num_buckets)
    seen = {}
    for inputs, batch_tags in dataset:
        word_ids, char_ids, batch_tags = (inputs["word_ids"].numpy(), inputs["char_ids"].numpy(), batch_tags.numpy())
        assert word_ids.dtype == np.int32 and char_ids.dtype == np.int32
        assert char_ids.shape[:2] == word_ids.shape == batch_tags.shape and len(word_ids) <= 8
        for row in range(len(word_ids)):
            length = int(np.count_nonzero(word_ids[row]))
            assert not word_ids[row, length:].any() and not char_ids[row, length:].any()
            assert not batch_tags[row, length:].any()
            first = int(word_ids[row, 0])
            seen[first] = (
                word_ids[row, :length].tolist(),
                [token[token != 0].tolist() for token in char_ids[row, :length]],
                batch_tags[row, :length].tolist(),
            )
    assert sorted(seen) == sorted(sentence[0] for sentence in words)
    for sentence_words, sentence_chars, sentence_tags in zip(words, chars, tags):
        assert seen[sentence_words[0]] == (sentence_words, sentence_chars, sentence_tags)
    # The autotuner stays off (its iterator stalls cost a third of the tagger's epochs on 2 cores).
    assert dataset.options().autotune.enabled is False


def test_tagging_dataset_checks_lengths():
    from nlpkit.data.pipelines import tagging_dataset

    with pytest.raises(ValueError, match="2, 1 and 2 sentences"):
        tagging_dataset([[1], [2]], [[[1]]], [[0], [0]])
    with pytest.raises(ValueError, match="sentence 0 has 2 word ids, 1 character lists and 2 tags"):
        tagging_dataset([[1, 2]], [[[1]]], [[0, 0]])


def test_tagging_dataset_doctest():
    from nlpkit.data.pipelines import tagging_dataset

    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner()
    for test in finder.find(tagging_dataset, "tagging_dataset", globs=vars(pipelines)):
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
