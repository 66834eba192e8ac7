import doctest
import functools
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nlpkit.text
from nlpkit.errors import DataFormatError
from nlpkit.text import python_tokenizers, subword, tokenizers
from nlpkit.text.normalization import TextNormalizer
from nlpkit.text.python_tokenizers import (
    PythonCharTokenizer,
    PythonWordTokenizer,
    load_tokenizer,
    save_tokenizer,
)
from nlpkit.text.tokenizers import CharTokenizer, WordTokenizer, load_graph_tokenizer
from nlpkit.text.vocabulary import Vocabulary

REPO_ROOT = Path(__file__).resolve().parents[2]

NORMALIZERS = {
    "default": dict(),
    "cased": dict(lowercase=False),
    "raw": dict(lowercase=False, split_punctuation=False, normalize_whitespace=False),
}

# Pieces that exercise the interesting table entries; hypothesis glues them into texts next to
# arbitrary st.text(), which alone would almost never hit a vocabulary entry.
PIECES = [
    "a", "b", "A", "B", "ab", "AB", "Ab", " ", "  ", "\t", "\n", "\r\n", "\x00", "\x1f", "!", ",",
    ".", "İ", "Σ", "σ", "ς", "ß", "Ⓐ", "ⓐ", "\u3000", "\u2028", "\u00a0", "\ufffd", "😀", "<pad>",
    "<unk>", "é", "É",
]


def _word_vocabulary():
    words = {x + y for x in "abAB" for y in ["", "a", "b", "A", "B"]}
    words |= {"!", ",", ".", "ⓐ", "Ⓐ", "i\u0307", "İ", "ß", "σ", "Σ", "ς", "\ufffd", "😀", "é", "a\tb"}
    words |= {"<", ">", "pad"}
    return Vocabulary(sorted(words))


def _char_vocabulary():
    return Vocabulary(sorted(set("abAB !,.\t\n\x00ⓐⒶiİ\u0307ßσΣς\ufffdé<>pd")))


@functools.lru_cache(maxsize=None)
def _pair(kind, normalizer_name, max_length):
    """Returns ``(graph tokenizer, twin)``; cached because hypothesis reruns the test body."""
    normalizer = TextNormalizer(**NORMALIZERS[normalizer_name])
    if kind == "word":
        twin = PythonWordTokenizer(_word_vocabulary(), normalizer, max_length=max_length)
        return WordTokenizer.from_python(twin), twin
    twin = PythonCharTokenizer(_char_vocabulary(), normalizer, max_length=max_length)
    return CharTokenizer.from_python(twin), twin


def _as_str_lists(tokens):
    return [[token.decode("utf-8") for token in row] for row in tokens.to_list()]


def _assert_twins_agree(graph, twin, texts):
    assert graph(texts).to_list() == twin.encode_batch(texts)
    assert _as_str_lists(graph.tokenize(texts)) == [twin.tokenize(text) for text in texts]


def _padded(rows):
    width = max((len(row) for row in rows), default=0)
    padded = [row + [0] * (width - len(row)) for row in rows]
    return np.array(padded, dtype=np.int32).reshape(len(rows), width)


# ---------------------------------------------------------------- pure-Python twins


@pytest.fixture(scope="module")
def normalizer():
    return TextNormalizer()


@pytest.fixture(scope="module")
def word_twin(normalizer):
    vocab = Vocabulary.build([normalizer.tokenize("The film is good. The cast is great!")])
    return PythonWordTokenizer(vocab, normalizer)


def test_word_twin_tokenize_and_encode(word_twin):
    assert word_twin.vocabulary.tokens == [
        "<pad>", "<unk>", "is", "the", "!", ".", "cast", "film", "good", "great"
    ]
    assert word_twin.tokenize("The FILM is bad!") == ["the", "film", "is", "bad", "!"]
    assert word_twin.encode("The FILM is bad!") == [3, 7, 2, 1, 4]
    assert word_twin.encode("") == [] and word_twin.encode(" \t\n ") == []
    assert word_twin.encode("The film".encode("utf-8")) == [3, 7]
    assert word_twin.encode_batch(["good", "", "great ."]) == [[8], [], [9, 5]]
    assert word_twin.decode([3, 7, 0, 0]) == "the film"


def test_word_twin_max_length(word_twin):
    short = PythonWordTokenizer(word_twin.vocabulary, word_twin.normalizer, max_length=2)
    assert short.encode("the film is good") == [3, 7]
    assert short.encode("good") == [8]
    assert short.to_spec() == {"type": "word", "max_length": 2}


def test_padding_token_in_text_reads_as_unknown():
    vocab = Vocabulary(["a"], special_tokens=("<pad>", "<unk>", "<eos>"))
    twin = PythonWordTokenizer(vocab, TextNormalizer(split_punctuation=False))
    # A mid-sequence id 0 would be masked by Keras; other special tokens keep their ids.
    assert twin.encode("a <pad> <unk> <eos>") == [3, 1, 1, 2]
    graph = WordTokenizer.from_python(twin)
    assert graph("a <pad> <unk> <eos>").numpy().tolist() == [3, 1, 1, 2]


def test_char_twin():
    vocab = Vocabulary(list("ab \n"))
    raw = PythonCharTokenizer(vocab, TextNormalizer(False, False, False))
    assert raw.tokenize("aB\n") == ["a", "B", "\n"]
    assert raw.encode("aB\n") == [2, 1, 5]
    assert raw.decode([2, 5, 0]) == "a\n"
    default = PythonCharTokenizer(vocab, TextNormalizer(), max_length=4)
    assert default.tokenize("A!\nb") == ["a", " ", "!", " "]
    assert default.encode("A!\nb") == [2, 4, 1, 4]
    assert default.to_spec() == {"type": "char", "max_length": 4}
    assert default.encode(b"\xff") == [4, 1, 4]


@pytest.mark.parametrize("max_length", [0, -3, True, 2.0, "5"])
def test_max_length_is_validated(max_length, word_twin):
    for cls in (PythonWordTokenizer, PythonCharTokenizer, WordTokenizer, CharTokenizer):
        with pytest.raises(ValueError, match=f"max_length={max_length!r}"):
            cls(word_twin.vocabulary, word_twin.normalizer, max_length=max_length)


def test_components_are_type_checked(word_twin):
    with pytest.raises(TypeError, match="list"):
        PythonWordTokenizer(["a"], word_twin.normalizer)
    with pytest.raises(TypeError, match="dict"):
        CharTokenizer(word_twin.vocabulary, {})
    with pytest.raises(TypeError, match="str"):
        word_twin.encode_batch("one text")
    with pytest.raises(TypeError, match="PythonCharTokenizer"):
        CharTokenizer.from_python(word_twin)


def test_save_and_load_tokenizer(tmp_path, word_twin):
    twin = PythonWordTokenizer(word_twin.vocabulary, TextNormalizer(lowercase=False), max_length=7)
    spec = save_tokenizer(twin, tmp_path / "tok")
    assert spec == {
        "type": "word",
        "max_length": 7,
        "vocabulary": "vocabulary.json",
        "normalization": "normalization.json",
    }
    assert json.loads((tmp_path / "tok" / "tokenizer.json").read_text()) == spec
    loaded = load_tokenizer(tmp_path / "tok")
    assert isinstance(loaded, PythonWordTokenizer)
    assert loaded.vocabulary == twin.vocabulary and loaded.normalizer == twin.normalizer
    assert loaded.max_length == 7
    # A spec kept elsewhere (a bundle's nlpkit.json) overrides tokenizer.json.
    (tmp_path / "tok" / "tokenizer.json").unlink()
    loaded = load_tokenizer(tmp_path / "tok", spec={"type": "char", "max_length": None})
    assert isinstance(loaded, PythonCharTokenizer) and loaded.max_length is None


def test_save_graph_tokenizer_and_load_both_ways(tmp_path):
    vocab = Vocabulary(list("abc "), special_tokens=("<pad>", "<unk>", "<bos>", "<eos>"))
    graph = CharTokenizer(vocab, TextNormalizer(split_punctuation=False), max_length=5)
    save_tokenizer(graph, tmp_path)
    twin = load_tokenizer(tmp_path)
    restored = load_graph_tokenizer(tmp_path)
    assert isinstance(restored, CharTokenizer) and restored.max_length == 5
    assert restored.to_spec() == graph.to_spec() == twin.to_spec()
    texts = ["ABC d", "", "cab\tbac"]
    assert restored(texts).to_list() == graph(texts).to_list() == twin.encode_batch(texts)
    assert twin.vocabulary.eos_id == 3


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "subword"}, "'subword'"),
        ({"max_length": 3}, "None"),
        ({"type": "word", "max_length": -1}, "max_length=-1"),
    ],
)
def test_load_tokenizer_bad_spec(tmp_path, word_twin, spec, message):
    save_tokenizer(word_twin, tmp_path)
    (tmp_path / "tokenizer.json").write_text(json.dumps(spec))
    with pytest.raises(DataFormatError, match=message) as info:
        load_tokenizer(tmp_path)
    assert "tokenizer.json" in str(info.value)


def test_load_tokenizer_missing_files(tmp_path, word_twin):
    with pytest.raises(FileNotFoundError, match="tokenizer.json"):
        load_tokenizer(tmp_path)
    save_tokenizer(word_twin, tmp_path)
    (tmp_path / "vocabulary.json").write_text("")
    with pytest.raises(DataFormatError, match="empty vocabulary file"):
        load_tokenizer(tmp_path)
    with pytest.raises(TypeError, match="str"):
        load_tokenizer(tmp_path, spec="word")


# ---------------------------------------------------------------- graph tokenizers


def test_graph_eager_shapes_and_values(word_twin):
    graph = WordTokenizer.from_python(word_twin)
    single = graph("The FILM is bad!")
    assert isinstance(single, tf.Tensor) and single.dtype == tf.int32 and single.shape.rank == 1
    assert single.numpy().tolist() == [3, 7, 2, 1, 4]
    batch = graph(tf.constant(["good", "", "great ."]))
    assert isinstance(batch, tf.RaggedTensor) and batch.dtype == tf.int32
    assert batch.to_list() == [[8], [], [9, 5]]
    assert graph(["The film".encode("utf-8")]).to_list() == [[3, 7]]
    assert graph.tokenize("A film!").numpy().tolist() == [b"a", b"film", b"!"]
    assert graph([]).to_list() == []
    twin = graph.to_python()
    assert isinstance(twin, PythonWordTokenizer) and twin.vocabulary is word_twin.vocabulary


@pytest.mark.parametrize("kind", ["word", "char"])
@pytest.mark.parametrize("text", ["", " ", " \t\n\r\x0b\x0c\u3000\u2028\x00 "])
def test_empty_and_whitespace_only_give_no_ids(kind, text):
    graph, twin = _pair(kind, "default", None)
    if kind == "word":
        assert graph(text).shape == (0,)
        assert graph([text, text]).to_list() == [[], []]
    else:
        # A char tokenizer keeps spaces as tokens, so only the empty string is empty.
        assert graph(text).numpy().tolist() == twin.encode(text)
    assert graph([text, "ab"]).to_list() == twin.encode_batch([text, "ab"])


MALFORMED_UTF8 = [
    b"\xff",
    b"\xc3",  # truncated 2-byte sequence
    b"\xe2\x82",  # truncated 3-byte sequence
    b"\xf0\x9f\x98",  # truncated 4-byte sequence
    b"\xed\xa0\x80",  # encoded surrogate
    b"\xed\xbf\xbf",
    b"\xc0\xaf",  # overlong "/"
    b"\xe0\x80\xaf",
    b"\xf0\x80\x80\xaf",
    b"\xf4\x90\x80\x80",  # above U+10FFFF
    b"\xf5\x80\x80\x80",
    b"\xf8\x88\x80\x80\x80",  # 5-byte form
    b"\x80\x80",  # stray continuation bytes
    b"\xfe\xff",
    b"\xc3(",
    b"\xe2(\xa1",
    b"\xf0(\x8c(",
    b"\xf0\x90(\xbc",
    b"\xe1\x80\xc2\x80",
    b"ab\xe2\x82cd",
    b"\xef\xbb\xbfBOM first",
]


@pytest.mark.parametrize("data", MALFORMED_UTF8, ids=lambda data: data.hex())
def test_malformed_utf8_matches_python_replacement(data):
    # TensorFlow's decoder and Python's both replace each maximal invalid subsequence with one
    # U+FFFD; these cases cover the classes where decoders historically differ.
    expected = data.decode("utf-8", errors="replace")
    chars = tf.strings.unicode_split(data, "UTF-8", errors="replace").numpy()
    assert b"".join(chars).decode("utf-8") == expected
    assert expected.count("\ufffd") == sum(char == "\ufffd".encode("utf-8") for char in chars)
    for kind in ("word", "char"):
        graph, twin = _pair(kind, "raw", None)
        assert graph(data).numpy().tolist() == twin.encode(data)
        assert graph([data, b"x" + data]).to_list() == twin.encode_batch([data, b"x" + data])


@pytest.mark.parametrize("max_length", [None, 128])
def test_ten_thousand_words(max_length):
    rng = np.random.default_rng(0)
    words = ["a", "B", "ab", "zz", "ß", "!", "İ", "Σ", "\ufffd", "q,r"]
    text = " ".join(words[i] for i in rng.integers(0, len(words), size=10_000))
    graph, twin = _pair("word", "default", max_length)
    ids = graph(text).numpy().tolist()
    assert ids == twin.encode(text)
    assert len(ids) == (128 if max_length else len(twin.normalizer.tokenize(text)))
    assert graph([text, text[:1000]]).to_list() == twin.encode_batch([text, text[:1000]])
    char_graph, char_twin = _pair("char", "default", max_length)
    assert char_graph(text).numpy().tolist() == char_twin.encode(text)


@pytest.mark.parametrize("kind", ["word", "char"])
def test_inside_tf_data(kind):
    graph, twin = _pair(kind, "default", 6)
    texts = ["A b!", "", "  ", "İΣ ß,ab", "\x00x", "ab AB ab AB ab AB ab"]
    scalars = tf.data.Dataset.from_tensor_slices(texts).map(graph)
    assert [ids.tolist() for ids in scalars.as_numpy_iterator()] == twin.encode_batch(texts)
    batches = tf.data.Dataset.from_tensor_slices(texts).batch(4).map(graph)
    rows = [row for batch in batches for row in batch.to_list()]
    assert rows == twin.encode_batch(texts)
    padded = tf.data.Dataset.from_tensor_slices(texts).batch(4).map(lambda t: graph(t).to_tensor())
    got = [row.tolist() for batch in padded.as_numpy_iterator() for row in batch]
    expected = []
    for start in range(0, len(texts), 4):
        expected.extend(_padded(twin.encode_batch(texts[start : start + 4])).tolist())
    assert got == expected


def test_input_rank_errors():
    graph, _ = _pair("word", "default", None)
    with pytest.raises(ValueError, match=r"\(1, 2\)"):
        graph([["a", "b"]])

    @tf.function(input_signature=[tf.TensorSpec(None, tf.string)])
    def unknown_rank(texts):
        return graph(texts).flat_values

    with pytest.raises(ValueError, match="unknown rank"):
        unknown_rank.get_concrete_function()


class _Served(tf.Module):
    def __init__(self, tokenizer):
        super().__init__()
        self.tokenizer = tokenizer

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="texts")])
    def serve(self, texts):
        return {"ids": self.tokenizer(texts).to_tensor(default_value=0)}

    @tf.function(input_signature=[tf.TensorSpec([], tf.string, name="text")])
    def serve_one(self, text):
        return self.tokenizer(text)


@pytest.mark.parametrize("kind", ["word", "char"])
def test_saved_model_round_trip(tmp_path, kind):
    graph, twin = _pair(kind, "default", 5 if kind == "char" else None)
    module = _Served(graph)
    path = str(tmp_path / "saved")
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
    del module
    loaded = tf.saved_model.load(path)
    texts = ["A b! ab", "", " \t ", "İΣ ß,AB ab", b"a\xffb \xed\xa0\x80", "ab " * 30]
    expected = _padded(twin.encode_batch(texts))
    np.testing.assert_array_equal(loaded.serve(tf.constant(texts))["ids"].numpy(), expected)
    served = loaded.signatures["serving_default"](texts=tf.constant(texts))["ids"].numpy()
    np.testing.assert_array_equal(served, expected)
    assert loaded.serve_one(tf.constant(texts[3])).numpy().tolist() == twin.encode(texts[3])


# ---------------------------------------------------------------- twin equality, property based

TEXTS = st.one_of(st.text(), st.lists(st.sampled_from(PIECES), max_size=12).map("".join))
CONFIGS = [
    (kind, normalizer_name, max_length)
    for kind in ("word", "char")
    for normalizer_name in NORMALIZERS
    for max_length in (None, 3)
]


@pytest.mark.parametrize(("kind", "normalizer_name", "max_length"), CONFIGS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(TEXTS, max_size=6))
def test_twins_agree_on_arbitrary_text(kind, normalizer_name, max_length, texts):
    graph, twin = _pair(kind, normalizer_name, max_length)
    _assert_twins_agree(graph, twin, texts)
    if texts:
        assert graph(texts[0]).numpy().tolist() == twin.encode(texts[0])


@pytest.mark.parametrize("kind", ["word", "char"])
@settings(max_examples=40, deadline=None)
@given(data=st.lists(st.binary(max_size=16), max_size=6))
def test_twins_agree_on_arbitrary_bytes(kind, data):
    graph, twin = _pair(kind, "default", None)
    _assert_twins_agree(graph, twin, data)


# ---------------------------------------------------------------- twin equality, real text


def _data_dir():
    root = os.environ.get("NLPKIT_DATA")
    if not root:
        pytest.skip("NLPKIT_DATA is not set; twin equality on real text needs the shared datasets")
    path = Path(root)
    if not path.is_dir():
        pytest.skip(f"NLPKIT_DATA={root} is not a directory")
    return path


def _require(path):
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    return path


def _real_texts(root):
    texts = []
    for split in ("dev", "test"):
        with open(_require(root / "sst2" / f"{split}.tsv"), encoding="utf-8", newline="\n") as handle:
            assert next(handle).rstrip("\n") == "sentence\tlabel"
            texts.extend(line.rstrip("\n").rsplit("\t", 1)[0] for line in handle if line.strip())
    imdb = _require(root / "imdb" / "train.tsv.gz")
    with gzip.open(imdb, "rt", encoding="utf-8", newline="\n") as handle:
        assert next(handle).rstrip("\n") == "label\trating\tid\ttext"
        for _, line in zip(range(2000), handle):
            texts.append(line.rstrip("\n").split("\t", 3)[3])
    with open(_require(root / "multi30k" / "train.de"), encoding="utf-8", newline="\n") as handle:
        texts.extend(line.rstrip("\n") for _, line in zip(range(2000), handle))
    sentences, current = [], []
    with open(_require(root / "conll2003" / "valid.txt"), encoding="utf-8") as handle:
        for line in handle:
            fields = line.split()
            if not fields:
                if current:
                    sentences.append(" ".join(current))
                    current = []
                if len(sentences) == 300:
                    break
            elif fields[0] != "-DOCSTART-":
                current.append(fields[0])
    texts.extend(sentences)
    return texts


@pytest.fixture(scope="module")
def real_texts():
    texts = _real_texts(_data_dir())
    assert len(texts) > 6500  # 872 + 1821 SST-2, 2000 IMDB, 2000 Multi30k, 300 CoNLL
    assert any("ä" in text for text in texts) and any("<br />" in text for text in texts)
    return texts


@pytest.mark.parametrize(
    ("kind", "normalizer_name", "max_length"),
    [("word", "default", None), ("word", "cased", 64), ("char", "default", None), ("char", "raw", 300)],
)
def test_twins_agree_on_real_text(real_texts, kind, normalizer_name, max_length):
    normalizer = TextNormalizer(**NORMALIZERS[normalizer_name])
    if kind == "word":
        vocab = Vocabulary.build((normalizer.tokenize(text) for text in real_texts), min_frequency=2)
        twin = PythonWordTokenizer(vocab, normalizer, max_length=max_length)
    else:
        chars = (list(normalizer.normalize(text)) for text in real_texts)
        vocab = Vocabulary.build(chars, min_frequency=3)
        twin = PythonCharTokenizer(vocab, normalizer, max_length=max_length)
    graph = WordTokenizer.from_python(twin) if kind == "word" else CharTokenizer.from_python(twin)
    unknown = 0
    for start in range(0, len(real_texts), 1024):
        chunk = real_texts[start : start + 1024]
        got = graph(chunk).to_list()
        expected = twin.encode_batch(chunk)
        for offset, (graph_ids, twin_ids) in enumerate(zip(got, expected)):
            assert graph_ids == twin_ids, f"text {start + offset} differs: {chunk[offset][:200]!r}"
            unknown += twin_ids.count(vocab.unk_id)
        assert len(got) == len(expected)
    assert unknown > 0  # min_frequency left some tokens out, so the unknown path was exercised


# ---------------------------------------------------------------- imports and docs


def test_pure_python_modules_do_not_import_tensorflow():
    code = (
        "import sys\n"
        "import nlpkit.text.python_tokenizers, nlpkit.text.vocabulary, nlpkit.text.normalization\n"
        "import nlpkit.text\n"
        "assert 'WordTokenizer' in dir(nlpkit.text)\n"
        "vocab, normalizer = nlpkit.text.Vocabulary(['a']), nlpkit.text.TextNormalizer()\n"
        "t = nlpkit.text.PythonWordTokenizer(vocab, normalizer)\n"
        "assert t.encode('A b') == [2, 1]\n"
        "sp = nlpkit.text.PythonSentencePieceTokenizer.train(['Ein Hund.', 'A dog.'], vocabulary_size=30)\n"
        "assert sp.decode(sp.encode('Ein Hund.')) == 'Ein Hund.'\n"
        "loaded = sorted(m for m in sys.modules if 'tensorflow' in m)\n"
        "assert not loaded, loaded[:5]\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_lazy_graph_names():
    assert nlpkit.text.WordTokenizer is WordTokenizer
    assert nlpkit.text.CharTokenizer is CharTokenizer
    assert nlpkit.text.load_graph_tokenizer is load_graph_tokenizer
    with pytest.raises(AttributeError, match="Nope"):
        nlpkit.text.Nope  # noqa: B018


@pytest.mark.parametrize("module", [python_tokenizers, tokenizers, subword], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    failures, _ = doctest.testmod(module, raise_on_error=False)
    assert failures == 0
