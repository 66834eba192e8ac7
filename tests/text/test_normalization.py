import doctest
import json
import time
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nlpkit.errors import DataFormatError
from nlpkit.text import normalization
from nlpkit.text.normalization import TextNormalizer, build_table


@pytest.fixture(scope="module")
def normalizer():
    return TextNormalizer()


def test_default_table_entries(normalizer):
    table = normalizer.table
    assert table["A"] == "a"
    assert table["!"] == " ! "
    assert table["$"] == " $ "  # symbols (S*) split like punctuation
    assert table["\t"] == " "
    assert table["\x00"] == " "  # control characters count as spaces
    assert table["\u3000"] == " "
    assert table["\u0130"] == "i\u0307"  # full lowercase mapping, two characters
    assert table["\u24b6"] == " \u24d0 "  # a symbol with a lowercase form: lowered, then split
    assert "a" not in table and "é" not in table and " " not in table


def test_table_follows_unicodedata_for_every_code_point(normalizer):
    table = normalizer.table
    for code_point in range(0x110000):
        if 0xD800 <= code_point < 0xE000:
            assert chr(code_point) not in table
            continue
        ch = chr(code_point)
        category = unicodedata.category(ch)
        if ch.isspace() or category == "Cc":
            expected = " "
        elif category[0] in "PS":
            expected = " " + ch.lower() + " "
        else:
            expected = ch.lower()
        assert table.get(ch, ch) == expected, (hex(code_point), category)


@pytest.mark.parametrize(
    ("flags", "text", "expected"),
    [
        ({}, "Hello,\tWORLD!", "hello ,  world ! "),
        ({"lowercase": False}, "Hello, WORLD", "Hello ,  WORLD"),
        ({"split_punctuation": False}, "Hello,\tWORLD!", "hello, world!"),
        ({"normalize_whitespace": False}, "A,\tB\n", "a , \tb\n"),
        (dict(lowercase=False, split_punctuation=False, normalize_whitespace=False), "A,\tB", "A,\tB"),
    ],
)
def test_flags(flags, text, expected):
    assert TextNormalizer(**flags).normalize(text) == expected


def test_tokenize(normalizer):
    assert normalizer.tokenize("Hello,\tWORLD!") == ["hello", ",", "world", "!"]
    assert normalizer.tokenize("it's 3.5$") == ["it", "'", "s", "3", ".", "5", "$"]
    assert normalizer.tokenize("Größe ÜBER") == ["größe", "über"]
    assert normalizer.tokenize("") == []
    assert normalizer.tokenize(" \t\n\u00a0\u2028 ") == []


def test_lowercase_is_per_character_not_contextual(normalizer):
    # str.lower() turns a word-final capital sigma into "ς"; a per-character table cannot see
    # context, and the graph cannot either, so both give "σ".
    assert "ΟΔΟΣ".lower() == "οδος"
    assert normalizer.normalize("ΟΔΟΣ") == "οδοσ"


def test_bytes_are_decoded_with_replacement(normalizer):
    assert normalizer.tokenize("Ärger".encode("utf-8")) == ["ärger"]
    # U+FFFD is a symbol (So), so the default normalizer splits it off like punctuation.
    assert normalizer.normalize(b"a\xffb") == "a \ufffd b"
    assert normalizer.tokenize(b"\xed\xa0\x80") == ["\ufffd"] * 3
    assert normalizer.tokenize(bytearray(b"X Y")) == ["x", "y"]


def test_non_text_input_is_rejected(normalizer):
    with pytest.raises(TypeError, match="int"):
        normalizer.normalize(42)


def test_dict_round_trip_keeps_table_and_flags(normalizer):
    config = normalizer.to_dict()
    assert config["unidata_version"] == unicodedata.unidata_version
    assert config["lowercase"] is True
    json.dumps(config)
    restored = TextNormalizer.from_dict(json.loads(json.dumps(config)))
    assert restored == normalizer
    assert restored.table == normalizer.table


def test_stored_table_wins_over_local_unicode_data(tmp_path):
    # A bundle written with another Unicode version must behave as written, not as rebuilt here.
    path = tmp_path / "normalization.json"
    TextNormalizer().save(path)
    config = json.loads(path.read_text())
    config["table"]["x"] = "y"
    del config["table"]["Q"]
    path.write_text(json.dumps(config))
    loaded = TextNormalizer.load(path)
    assert loaded.normalize("xQ") == "yQ"
    assert loaded != TextNormalizer()


def test_save_load_round_trip_ascii_file(tmp_path):
    path = tmp_path / "n.json"
    original = TextNormalizer(split_punctuation=False)
    original.save(path)
    raw = path.read_bytes()
    assert raw.isascii()
    loaded = TextNormalizer.load(path)
    assert loaded == original
    assert loaded.split_punctuation is False
    assert loaded.normalize("İ,\x00") == original.normalize("İ,\x00")


def test_custom_table():
    normalizer = TextNormalizer(table={"-": " ", "x": "X", "a": "a"})
    assert normalizer.normalize("a-x") == "a X"
    assert normalizer.table == {"-": " ", "x": "X"}  # identity entries dropped
    assert normalizer.tokenize("a-x") == ["a", "X"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lowercase": 1}, "lowercase=1"),
        ({"table": {"ab": "c"}}, "'ab'"),
        ({"table": {"a": 1}}, "1"),
        ({"table": {"\ud800": "a"}}, "surrogate"),
        ({"table": [("a", "b")]}, "list"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TextNormalizer(**kwargs)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty normalizer file"),
        ("  \n", "empty normalizer file"),
        ('{"table": {', "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"lowercase": true}', "no 'table'"),
        ('{"format": "nlpkit.vocabulary", "table": {}}', "not a text normalizer"),
        ('{"table": {"ab": "c"}}', "'ab'"),
    ],
)
def test_load_errors_name_the_file(tmp_path, content, message):
    path = tmp_path / "broken.json"
    path.write_text(content)
    with pytest.raises(DataFormatError, match=message) as info:
        TextNormalizer.load(path)
    assert str(path) in str(info.value)


def test_load_non_utf8_file(tmp_path):
    path = tmp_path / "binary.json"
    path.write_bytes(b"\xff\xfe{}")
    with pytest.raises(DataFormatError, match="not UTF-8"):
        TextNormalizer.load(path)


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        TextNormalizer.load(tmp_path / "nope.json")


def test_table_is_cached_and_copies_are_independent():
    TextNormalizer(lowercase=False)
    start = time.perf_counter()
    for _ in range(5):
        TextNormalizer(lowercase=False)
    assert time.perf_counter() - start < 2.0
    first = build_table()
    first["a"] = "b"
    assert "a" not in build_table()


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_normalize_applies_the_table_character_by_character(text):
    normalizer = TextNormalizer()
    expected = "".join(normalizer.table.get(ch, ch) for ch in text)
    assert normalizer.normalize(text) == expected
    tokens = normalizer.tokenize(text)
    assert all(token and not any(ch.isspace() for ch in token) for token in tokens)
    assert normalizer.tokenize(text.encode("utf-8")) == tokens


def test_docstring_examples():
    failures, _ = doctest.testmod(normalization, raise_on_error=False)
    assert failures == 0
