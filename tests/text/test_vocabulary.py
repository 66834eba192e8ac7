import doctest
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nlpkit.errors import DataFormatError
from nlpkit.text import vocabulary as vocabulary_module
from nlpkit.text.vocabulary import Vocabulary


def test_ids_specials_first():
    vocab = Vocabulary(["the", "cat"])
    assert vocab.tokens == ["<pad>", "<unk>", "the", "cat"]
    assert vocab.pad_id == 0 and vocab.pad_token == "<pad>"
    assert vocab.unk_id == 1
    assert len(vocab) == 4
    assert "cat" in vocab and "<pad>" in vocab and "dog" not in vocab
    assert vocab.bos_id is None and vocab.eos_id is None
    assert vocab.id_of("<unk>") == 1 and vocab.id_of("the") is None


def test_bos_eos_and_custom_unk():
    vocab = Vocabulary(["a"], special_tokens=("[PAD]", "<bos>", "<eos>", "[UNK]"), unk_token="[UNK]")
    assert (vocab.pad_id, vocab.bos_id, vocab.eos_id, vocab.unk_id) == (0, 1, 2, 3)
    assert vocab.lookup("a") == 4
    assert vocab.lookup("zzz") == 3


def test_lookup_encode_decode():
    vocab = Vocabulary(["a", "b"])
    assert vocab.lookup("b") == 3
    assert vocab.lookup("<unk>") == 1
    assert vocab.encode(["a", "x", "b", "<pad>"]) == [2, 1, 3, 0]
    assert vocab.decode([3, 2, 0, 1]) == ["b", "a", "<pad>", "<unk>"]
    assert vocab.decode([]) == []
    assert vocab.encode([]) == []


@pytest.mark.parametrize("bad_id", [4, -1, 100, 1.5, "2", None])
def test_decode_out_of_range(bad_id):
    vocab = Vocabulary(["a", "b"])
    with pytest.raises(ValueError, match=f"id {bad_id!r} is out of range"):
        vocab.decode([2, bad_id])


def test_decode_accepts_integer_like_ids():
    numpy = pytest.importorskip("numpy")
    vocab = Vocabulary(["a", "b"])
    assert vocab.decode(numpy.array([2, 3], dtype=numpy.int32)) == ["a", "b"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tokens": ["a", "b", "a"]}, "'a' is a duplicate"),
        ({"tokens": ["a", "<unk>"]}, "'<unk>' is a special token"),
        ({"tokens": ["a", ""]}, "non-empty"),
        ({"tokens": ["a", 3]}, "int"),
        ({"tokens": "abc"}, "the string 'abc'"),
        ({"tokens": [], "special_tokens": ()}, "at least"),
        ({"tokens": [], "special_tokens": "<pad>"}, "the string"),
        ({"tokens": [], "special_tokens": ("<pad>", "<pad>", "<unk>")}, "duplicates: \\['<pad>'\\]"),
        ({"tokens": [], "special_tokens": ("<pad>",)}, "'<unk>' is not among"),
        ({"tokens": [], "special_tokens": ("<unk>", "<pad>")}, "padding"),
        ({"tokens": [], "unk_token": "[UNK]"}, "'\\[UNK\\]' is not among"),
    ],
)
def test_constructor_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Vocabulary(**kwargs)


def test_build_orders_by_frequency_then_token():
    data = [["b", "a", "c"], ["c", "a", "d"], ["c", "Z"]]
    vocab = Vocabulary.build(data)
    # c:3, then a:2, then the singletons in code point order (uppercase first).
    assert vocab.tokens == ["<pad>", "<unk>", "c", "a", "Z", "b", "d"]


def test_build_is_independent_of_input_order():
    data = [["x", "y", "z", "y"], ["w", "x"]]
    shuffled = [list(reversed(tokens)) for tokens in reversed(data)]
    assert Vocabulary.build(data).tokens == Vocabulary.build(shuffled).tokens


def test_build_min_frequency_and_max_size():
    data = [["a"] * 5 + ["b"] * 3 + ["c"] * 2 + ["d"]]
    assert Vocabulary.build(data, min_frequency=2).tokens[2:] == ["a", "b", "c"]
    assert Vocabulary.build(data, min_frequency=3).tokens[2:] == ["a", "b"]
    sized = Vocabulary.build(data, max_size=4)
    assert len(sized) == 4 and sized.tokens[2:] == ["a", "b"]
    assert Vocabulary.build(data, max_size=2).tokens == ["<pad>", "<unk>"]
    assert len(Vocabulary.build(data, max_size=100)) == 6


def test_build_skips_special_tokens_in_data():
    # PTB writes unknown words as a literal "<unk>"; that must not become a second entry.
    vocab = Vocabulary.build([["the", "<unk>", "<unk>", "<unk>", "<pad>"]])
    assert vocab.tokens == ["<pad>", "<unk>", "the"]


def test_build_with_generators_and_extra_specials():
    vocab = Vocabulary.build(
        (sentence.split() for sentence in ["a b", "b c"]),
        special_tokens=("<pad>", "<unk>", "<bos>", "<eos>"),
    )
    assert vocab.tokens == ["<pad>", "<unk>", "<bos>", "<eos>", "b", "a", "c"]
    assert (vocab.bos_id, vocab.eos_id) == (2, 3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_frequency": 0}, "min_frequency"),
        ({"min_frequency": 1.5}, "1.5"),
        ({"max_size": 1}, "max_size"),
        ({"max_size": True}, "True"),
        ({"unk_token": "<oov>"}, "'<oov>'"),
    ],
)
def test_build_argument_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Vocabulary.build([["a"]], **kwargs)


def test_build_rejects_bare_strings():
    with pytest.raises(ValueError, match="the string 'hello'"):
        Vocabulary.build(["hello", "world"])


ODD_TOKENS = [" ", "\n", "\r\n", "\t", "\x00", '"', "\\", "\u2028", "\ufeff", "😀", "İ", "a b", "{}", "["]
ODD_TOKENS.append("\ud7ff")


def test_save_load_round_trip_odd_tokens(tmp_path):
    vocab = Vocabulary(ODD_TOKENS, special_tokens=("<pad>", "<unk>", "<eos>"))
    path = tmp_path / "vocabulary.json"
    vocab.save(path)
    assert path.read_bytes().isascii()
    data = json.loads(path.read_text())
    assert data["special_tokens"] == ["<pad>", "<unk>", "<eos>"]
    assert data["unk_token"] == "<unk>"
    assert data["tokens"] == ODD_TOKENS
    loaded = Vocabulary.load(path)
    assert loaded == vocab
    assert loaded.tokens == vocab.tokens
    assert loaded.eos_id == 2


def test_save_load_empty_vocabulary(tmp_path):
    vocab = Vocabulary([])
    vocab.save(tmp_path / "v.json")
    assert Vocabulary.load(tmp_path / "v.json") == vocab


def test_dict_round_trip():
    vocab = Vocabulary(["x", "y"], special_tokens=("<pad>", "<oov>"), unk_token="<oov>")
    config = vocab.to_dict()
    assert config["tokens"] == ["x", "y"]
    restored = Vocabulary.from_dict(json.loads(json.dumps(config)))
    assert restored == vocab and restored.unk_id == 1


_HEAD = '{"special_tokens": ["<pad>", "<unk>"], "unk_token": "<unk>", '


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty vocabulary file"),
        ("{", "not valid JSON"),
        ('{"tokens": ["a"],\n"unk_token": }', r"json:2: vocabulary file is not valid JSON"),
        ('["a", "b"]', "JSON object"),
        ('{"tokens": ["a"]}', r"missing \['special_tokens', 'unk_token'\]"),
        (_HEAD + '"tokens": "ab"}', "'tokens' must be a list"),
        (_HEAD + '"tokens": ["a", "a"]}', "'a' is a duplicate"),
        ('{"format": "other", "special_tokens": [], "tokens": []}', "not a vocabulary file"),
    ],
)
def test_load_errors_name_the_file(tmp_path, content, message):
    path = tmp_path / "vocab.json"
    path.write_text(content)
    with pytest.raises(DataFormatError, match=message) as info:
        Vocabulary.load(path)
    assert str(path) in str(info.value)


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.json"):
        Vocabulary.load(tmp_path / "missing.json")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.text(min_size=1, max_size=3), max_size=8), max_size=6), st.integers(1, 3))
def test_build_properties(token_lists, min_frequency):
    vocab = Vocabulary.build(token_lists, min_frequency=min_frequency)
    counts = {}
    for tokens in token_lists:
        for token in tokens:
            counts[token] = counts.get(token, 0) + 1
    regular = vocab.tokens[2:]
    kept = {t for t, n in counts.items() if n >= min_frequency and t not in ("<pad>", "<unk>")}
    assert set(regular) == kept
    assert regular == sorted(regular, key=lambda t: (-counts[t], t))
    for tokens in token_lists:
        assert vocab.decode(vocab.encode(tokens)) == [t if t in vocab else "<unk>" for t in tokens]
    assert Vocabulary.from_dict(json.loads(json.dumps(vocab.to_dict()))) == vocab


def test_docstring_examples():
    failures, _ = doctest.testmod(vocabulary_module, raise_on_error=False)
    assert failures == 0


def test_extended_appends_new_tokens_once_within_max_size():
    base = Vocabulary(["a", "b"])
    grown = base.extended(["b", "c", "", "c", "d", "e"], max_size=6)
    assert grown.tokens == ["<pad>", "<unk>", "a", "b", "c", "d"]
    assert grown.special_tokens == base.special_tokens and grown.unk_token == base.unk_token
    assert base.extended(["x"]).tokens[-1] == "x"
    assert base.tokens == ["<pad>", "<unk>", "a", "b"]  # the original is unchanged
