"""Language-modelling data: tokenization into one stream, parallel BPTT windows, tf.data."""

import doctest

import numpy as np
import pytest

from nlpkit.data import language_model as language_model_data
from nlpkit.data.language_model import (
    build_lm_tokenizer,
    detokenize,
    display_tokens,
    encode_stream,
    lm_dataset,
    lm_normalizer,
    start_token_id,
    stream_windows,
    tokenizer_level,
)
from nlpkit.data import read_text
from nlpkit.samples import sample_path
from nlpkit.text import CharTokenizer, WordTokenizer


@pytest.fixture(scope="module")
def word_tokenizer():
    return build_lm_tokenizer(["a cat sat", "a dog sat"], "word")


def test_docstring_examples(word_tokenizer):
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner()
    for test in finder.find(language_model_data, globs={"np": np, "tokenizer": word_tokenizer, **vars(language_model_data)}):
        runner.run(test)
    assert runner.failures == 0 and runner.tries >= 6


@pytest.mark.parametrize("size, batch_size, seq_len", [(2, 1, 1), (11, 2, 3), (100, 7, 5), (101, 4, 25), (5, 8, 3)])
def test_stream_windows_cover_every_pair_once_in_order(size, batch_size, seq_len):
    ids = np.arange(1, size + 1, dtype=np.int32)  # id i+1 follows id i: pairs are recognisable
    inputs, targets, weights = stream_windows(ids, batch_size, seq_len)
    assert inputs.shape == targets.shape == weights.shape
    assert inputs.shape[1:] == (batch_size, seq_len) and inputs.dtype == np.int32
    real = weights == 1
    assert real.sum() == size - 1 and set(np.unique(weights)) <= {0.0, 1.0}
    np.testing.assert_array_equal(targets[real], inputs[real] + 1)
    assert sorted(inputs[real].tolist()) == list(range(1, size))
    assert np.all(inputs[~real] == 0) and np.all(targets[~real] == 0)
    # Row i of window k+1 continues row i of window k, and the streams are contiguous.
    streams = inputs.transpose(1, 0, 2).reshape(batch_size, -1)
    stream_weights = weights.transpose(1, 0, 2).reshape(batch_size, -1)
    lengths = stream_weights.sum(axis=1).astype(int)
    assert lengths.max() - lengths.min() <= 1 and list(lengths) == sorted(lengths, reverse=True)
    concatenated = np.concatenate([row[:length] for row, length in zip(streams, lengths)])
    np.testing.assert_array_equal(concatenated, ids[:-1])
    for row, length in zip(stream_weights, lengths):
        assert np.all(row[:length] == 1) and np.all(row[length:] == 0)


@pytest.mark.parametrize("ids, batch_size, seq_len, match", [
    ([1], 2, 3, "at least 2 tokens"),
    ([[1, 2], [3, 4]], 1, 2, "1-D"),
    ([1, 2, 3], 0, 2, "batch_size=0"),
    ([1, 2, 3], 2, True, "seq_len=True"),
])
def test_stream_windows_rejects_bad_arguments(ids, batch_size, seq_len, match):
    with pytest.raises(ValueError, match=match):
        stream_windows(ids, batch_size, seq_len)


def test_lm_dataset_keeps_order_and_static_shapes():
    ids = np.arange(1, 60, dtype=np.int32)
    dataset = lm_dataset(ids, batch_size=3, seq_len=4)
    expected = stream_windows(ids, 3, 4)
    assert [spec.shape.as_list() for spec in dataset.element_spec] == [[3, 4]] * 3
    batches = list(dataset.as_numpy_iterator())
    assert len(batches) == len(expected[0])
    for k, batch in enumerate(batches):
        for part, array in zip(batch, expected):
            np.testing.assert_array_equal(part, array[k])


def test_word_stream_ends_every_line_with_eos_and_skips_blank_lines(word_tokenizer):
    vocabulary = word_tokenizer.vocabulary
    assert vocabulary.special_tokens == ("<pad>", "<unk>", "<eos>")
    ids = encode_stream(word_tokenizer, "a cat sat\n\n  \na bird\n")
    eos = vocabulary.eos_id
    assert ids.dtype == np.int32
    assert vocabulary.decode(ids) == ["a", "cat", "sat", "<eos>", "a", "<unk>", "<eos>"]
    # A list of lines (what load("ptb") returns) gives the same stream as the joined text.
    np.testing.assert_array_equal(encode_stream(word_tokenizer, ["a cat sat", "", "a bird"]), ids)
    assert start_token_id(vocabulary) == eos


def test_ptb_style_tokens_survive_the_default_word_normalizer():
    lines = [" the <unk> rose N % to N ", " mr. <unk> said "]
    tokenizer = build_lm_tokenizer(lines, "word")
    assert tokenizer.tokenize(lines[0]) == ["the", "<unk>", "rose", "N", "%", "to", "N"]
    ids = encode_stream(tokenizer, lines)
    assert tokenizer.vocabulary.decode(ids).count("<unk>") == 2
    assert "<unk>" not in tokenizer.vocabulary.tokens[3:]  # a special token, not counted


def test_char_stream_keeps_case_punctuation_and_newlines():
    text = "Ab, c!\nAb\n"
    tokenizer = build_lm_tokenizer(text, "char")
    assert tokenizer_level(tokenizer) == "char"
    assert tokenizer.vocabulary.special_tokens == ("<pad>", "<unk>")
    ids = encode_stream(tokenizer, text)
    assert "".join(tokenizer.vocabulary.decode(ids)) == text
    assert tokenizer.vocabulary.decode([start_token_id(tokenizer.vocabulary)]) == ["\n"]
    np.testing.assert_array_equal(encode_stream(tokenizer, ["Ab, c!", "Ab"]), ids)


def test_min_frequency_and_max_size_shape_the_vocabulary():
    text = "a a a b b c"
    assert build_lm_tokenizer(text, "word", min_frequency=2).vocabulary.tokens[3:] == ["a", "b"]
    assert len(build_lm_tokenizer(text, "word", max_size=4).vocabulary) == 4


def test_graph_twins_give_the_stream_ids_on_the_sample():
    text = read_text(sample_path("lm_valid.txt"))
    for level, graph_class in (("word", WordTokenizer), ("char", CharTokenizer)):
        twin = build_lm_tokenizer(read_text(sample_path("lm_train.txt")), level, lm_normalizer(level, True, True))
        graph = graph_class.from_python(twin)
        lines = text.split("\n")
        assert graph(lines).to_list() == [twin.encode(line) for line in lines], level


def test_detokenize_words_and_characters(word_tokenizer):
    vocabulary = word_tokenizer.vocabulary
    ids = vocabulary.encode(["a", "cat", "<eos>", "<unk>", "sat", "<eos>"]) + [vocabulary.pad_id]
    assert detokenize(word_tokenizer, ids) == "a cat\n<unk> sat\n"
    shown = display_tokens(vocabulary)
    assert shown[vocabulary.eos_id] == "\n" and shown[vocabulary.pad_id] == ""
    chars = build_lm_tokenizer("ab\n", "char")
    assert detokenize(chars, chars.encode("b\nab")) == "b\nab"


def test_bad_level_and_bad_text_are_rejected():
    with pytest.raises(ValueError, match="level='subword'"):
        build_lm_tokenizer("a b", "subword")
    with pytest.raises(TypeError, match="int"):
        build_lm_tokenizer(5, "word")
