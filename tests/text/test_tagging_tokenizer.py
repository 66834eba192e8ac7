"""The tagging tokenizer (whitespace tokens -> word ids + character ids): twins, files, errors."""

import functools

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nlpkit.data import read_conll
from nlpkit.errors import DataFormatError
from nlpkit.samples import sample_path
from nlpkit.text import (
    PythonTaggingTokenizer,
    PythonWordTokenizer,
    TaggingTokenizer,
    TextNormalizer,
    Vocabulary,
    build_table,
    load_graph_tokenizer,
    load_tokenizer,
    save_tokenizer,
)

PIECES = ["Maria", "U.S.", "1996-08-22", "İstanbul", "ÉTÉ", " ", "  ", "\t", "\n", "\x00", "\u00a0", "\u3000",
          "\ufffd", "😀", "<pad>", "<unk>", "(", "'s", "a", "A"]


def word_normalizer():
    table = build_table(lowercase=True, split_punctuation=False)
    table.update({digit: "0" for digit in "123456789"})
    return TextNormalizer(split_punctuation=False, table=table)


@functools.lru_cache(maxsize=None)
def twins(max_length=None, max_word_length=6):
    """``(python twin, graph tokenizer)`` over the sample's vocabulary (cached: hypothesis reruns)."""
    normalizer = word_normalizer()
    sentences = read_conll(sample_path("ner_train.txt"))
    words = Vocabulary.build([[normalizer.normalize(token) for token in s.tokens] for s in sentences])
    chars = Vocabulary.build([list(token) for s in sentences for token in s.tokens] + [["İ", "😀"]])
    twin = PythonTaggingTokenizer(words, normalizer, chars, max_length=max_length, max_word_length=max_word_length)
    return twin, TaggingTokenizer.from_python(twin)


def assert_twins_agree(twin, graph, texts):
    word_ids, char_ids = graph(texts)
    tokens = graph.tokenize(texts)
    expected = [twin.encode_tokens(twin.tokenize(text)) for text in texts]
    assert word_ids.to_list() == [words for words, _ in expected]
    assert char_ids.to_list() == [chars for _, chars in expected]
    assert [[t.decode("utf-8") for t in row] for row in tokens.to_list()] == [twin.tokenize(t) for t in texts]


def test_tokens_split_at_whitespace_only_and_keep_case():
    twin, _ = twins()
    assert twin.tokenize("Peter  Blackburn (U.S.)\tsaid\n1996-08-22 .") == [
        "Peter", "Blackburn", "(U.S.)", "said", "1996-08-22", "."
    ]
    assert twin.tokenize("") == [] and twin.tokenize(" \t\n ") == []


def test_word_ids_use_the_normalized_form_and_chars_the_original():
    twin, _ = twins()
    words, chars = twin.encode_tokens(["Oslo", "OSLO", "2019", "1988", "Ωzyx"])
    assert words[0] == words[1] == twin.vocabulary.lookup("oslo") != twin.vocabulary.unk_id
    assert words[2] == words[3]  # both read "0000"
    assert words[4] == twin.vocabulary.unk_id
    assert chars[0] != chars[1]  # case is kept for the characters
    assert chars[0] == [twin.char_vocabulary.lookup(c) for c in "Oslo"]
    assert all(len(token_chars) <= 6 for token_chars in chars)
    assert chars[4][0] == twin.char_vocabulary.unk_id  # "Ω" never occurs in the sample


def test_max_length_truncates_text_but_not_given_tokens():
    twin, graph = twins(max_length=3)
    assert twin.tokenize("a b c d e") == ["a", "b", "c"]
    assert len(twin.encode_tokens(["a"] * 5)[0]) == 5
    words, chars = graph(["a b c d e"])
    assert words.to_list() == [twin.encode("a b c d e")]


def test_graph_encode_tokens_matches_the_twin_on_pre_tokenized_text():
    twin, graph = twins()
    token_lists = [s.tokens for s in read_conll(sample_path("ner_test.txt"))][:20] + [[], ["<pad>", "😀", "x y"]]
    words, chars = graph.encode_tokens(tf.ragged.constant(token_lists, dtype=tf.string, ragged_rank=1))
    expected = [twin.encode_tokens(tokens) for tokens in token_lists]
    assert words.to_list() == [w for w, _ in expected]
    assert chars.to_list() == [c for _, c in expected]


def test_twins_agree_on_the_sample_text():
    twin, graph = twins()
    texts = [" ".join(s.tokens) for s in read_conll(sample_path("ner_valid.txt"))]
    assert_twins_agree(twin, graph, texts)
    scalar_words, scalar_chars = graph(texts[0])
    assert scalar_words.numpy().tolist() == twin.encode(texts[0])
    assert scalar_chars.to_list() == twin.encode_tokens(twin.tokenize(texts[0]))[1]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=6)), max_size=8).map("".join),
                min_size=1, max_size=4))
def test_twins_agree_on_arbitrary_text(texts):
    twin, graph = twins(max_length=5, max_word_length=4)
    assert_twins_agree(twin, graph, texts)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.binary(max_size=12), min_size=1, max_size=3))
def test_twins_agree_on_arbitrary_bytes(data):
    twin, graph = twins()
    word_ids, char_ids = graph(data)
    expected = [twin.encode_tokens(twin.tokenize(item)) for item in data]
    assert word_ids.to_list() == [words for words, _ in expected]
    assert char_ids.to_list() == [chars for _, chars in expected]


def test_save_and_load_both_ways(tmp_path):
    twin, graph = twins(max_length=40, max_word_length=7)
    spec = save_tokenizer(graph, tmp_path)
    assert spec["type"] == "tagging" and spec["max_word_length"] == 7 and spec["char_vocabulary"]
    loaded = load_tokenizer(tmp_path)
    assert isinstance(loaded, PythonTaggingTokenizer)
    assert loaded.char_vocabulary == twin.char_vocabulary and loaded.vocabulary == twin.vocabulary
    assert (loaded.max_length, loaded.max_word_length) == (40, 7)
    assert loaded.encode_tokens(["Maria", "Oslo"]) == twin.encode_tokens(["Maria", "Oslo"])
    graph_loaded = load_graph_tokenizer(tmp_path)
    assert isinstance(graph_loaded, TaggingTokenizer)
    assert_twins_agree(loaded, graph_loaded, ["Maria Keller flew to Oslo ."])


def test_inside_a_saved_model(tmp_path):
    twin, graph = twins()
    module = tf.Module()
    module.tokenizer = graph
    module.encode = tf.function(
        lambda text: {"word_ids": graph(text)[0].to_tensor(), "char_ids": graph(text)[1].to_tensor()},
        input_signature=[tf.TensorSpec([None], tf.string)],
    )
    tf.saved_model.save(module, str(tmp_path / "saved"))
    restored = tf.saved_model.load(str(tmp_path / "saved"))
    outputs = restored.encode(tf.constant(["Maria Keller", "Oslo"]))
    np.testing.assert_array_equal(outputs["word_ids"].numpy(), [twin.encode("Maria Keller"), twin.encode("Oslo") + [0]])


def test_bad_spec_values_name_the_file(tmp_path):
    twin, _ = twins()
    save_tokenizer(twin, tmp_path)
    spec_file = tmp_path / "tokenizer.json"
    spec_file.write_text(spec_file.read_text().replace('"max_word_length": 6', '"max_word_length": 0'))
    with pytest.raises(DataFormatError, match=r"tokenizer\.json.*max_word_length=0"):
        load_tokenizer(tmp_path)
    (tmp_path / "char_vocabulary.json").unlink()
    spec_file.write_text(spec_file.read_text().replace('"max_word_length": 0', '"max_word_length": 6'))
    with pytest.raises(FileNotFoundError):
        load_tokenizer(tmp_path)


def test_arguments_are_checked():
    twin, _ = twins()
    with pytest.raises(ValueError, match=r"split_punctuation=False"):
        PythonTaggingTokenizer(twin.vocabulary, TextNormalizer(), twin.char_vocabulary)
    with pytest.raises(ValueError, match="max_word_length=0"):
        PythonTaggingTokenizer(twin.vocabulary, twin.normalizer, twin.char_vocabulary, max_word_length=0)
    with pytest.raises(TypeError, match="char_vocabulary"):
        PythonTaggingTokenizer(twin.vocabulary, twin.normalizer, ["a", "b"])
    with pytest.raises(TypeError, match="single str"):
        twin.encode_tokens("Oslo")
    with pytest.raises(TypeError, match="PythonTaggingTokenizer"):
        TaggingTokenizer.from_python(PythonWordTokenizer(twin.vocabulary, twin.normalizer))
