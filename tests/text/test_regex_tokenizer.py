"""The regex tokenizer: MediaPipe's RegexTokenizer rules, the pure-Python twin against the RE2 graph twin.

The twin against MediaPipe itself is in tests/export/test_mediapipe_target.py.
"""

import doctest
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nlpkit.errors import DataFormatError
from nlpkit.samples import sample_path
from nlpkit.text import PythonRegexTokenizer, TextNormalizer, Vocabulary, load_tokenizer, save_tokenizer
from nlpkit.text import regex_tokenizer
from nlpkit.text.regex_tokenizer import REGEX_SPECIAL_TOKENS, UNKNOWN_TOKEN, python_pattern

# Delimiter patterns whose RE2 and Python meanings differ unless translated (\s, $, \x{..},
# classes with "[" and "&"), plus the default.
PATTERNS = [
    r"[^\w']+",
    r"\s+",
    r"[\s,.!?;:]+",
    r"[^a-z]+",
    r",|\s+",
    r"^\s+|\s+$|\s+",
    r"\W+",
    r"(?:--|[\s\x{2014}&\[])+",
    r"\b'\b|[^\w']+",
]


def sample_texts():
    lines = []
    for name in ("sentiment_train.tsv", "sentiment_test.tsv"):
        with open(sample_path(name), encoding="utf-8") as handle:
            lines += [line.split("\t")[0] for line in handle.read().splitlines()[1:]]
    return lines


TRICKY = [
    "",
    " ",
    "It's a <PAD> film\x00 and this is never read",
    "\x00",
    "Café naïve — “quoted” … 日本語 😀 ok",
    "tab\there\vvertical\fform\rreturn\nnew",
    "don't can't 'quoted' rock'n'roll",
    "--double--dash & [brackets]",
    "  leading and trailing  ",
    "GOOD good Good gOOD",
]


def test_docstring_examples():
    failures, _ = doctest.testmod(regex_tokenizer, raise_on_error=False)
    assert failures == 0


def test_mediapipe_rules():
    tokenizer = PythonRegexTokenizer.build(["It's a fine film", "fine FINE <PAD>"])
    ids = {token: i for i, token in enumerate(tokenizer.vocabulary.tokens)}
    assert tokenizer.vocabulary.tokens[:2] == ["<PAD>", "<UNKNOWN>"]
    # Case kept, delimiters dropped, apostrophes part of words, unknown words -> <UNKNOWN>.
    assert tokenizer.tokenize("It's a FINE, fine... film!") == ["It's", "a", "FINE", "fine", "film"]
    assert tokenizer.encode("a Film") == [ids["a"], 1]
    # Nothing after a NUL exists (MediaPipe reads a C string).
    assert tokenizer.tokenize("fine\x00film") == ["fine"]
    # "<" and ">" are delimiters under the default pattern, so "<PAD>" is the word "PAD".
    assert tokenizer.tokenize("<PAD>") == ["PAD"]
    assert tokenizer.encode_padded("fine film", 4) == [ids["fine"], ids["film"], 0, 0]


def test_special_tokens_are_looked_up_as_mediapipe_does():
    vocabulary = Vocabulary(["<START>", "a", "b"], special_tokens=REGEX_SPECIAL_TOKENS, unk_token=UNKNOWN_TOKEN)
    tokenizer = PythonRegexTokenizer(vocabulary, r"\s+", max_length=3)
    # <START> first, the literal <PAD> is id 0 as in MediaPipe's vocabulary map, ids cut to 3.
    assert tokenizer.encode("a <PAD> b a") == [2, 3, 0]
    assert tokenizer.tokenize("a <PAD> b a") == ["a", "<PAD>"]
    assert tokenizer.truncates("a <PAD> b a") == (2, 4)
    assert tokenizer.encode("") == [2]


def test_graph_twin_gives_the_same_ids_on_real_text():
    from nlpkit.text import RegexTokenizer

    texts = sample_texts() + TRICKY
    for pattern in PATTERNS:
        twin = PythonRegexTokenizer.build(texts[:200], pattern, max_length=40)
        graph = RegexTokenizer.from_python(twin)
        assert graph(texts).to_list() == twin.encode_batch(texts), pattern
        assert [[t.decode() for t in row] for row in graph.tokenize(texts).to_list()] == [
            twin.tokenize(text) for text in texts
        ], pattern
    # Invalid UTF-8 reads as U+FFFD in both.
    raw = [b"caf\xc3\xa9 \xff good \xe2\x82", b"ok\x00\xff"]
    assert graph(raw).to_list() == twin.encode_batch(raw)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(PATTERNS),
    st.lists(st.text(alphabet=st.sampled_from(list("ab' ,.-&[]\t\n\v\x00<>_1éー😀A")) | st.characters(), max_size=30),
             min_size=1, max_size=8),
)
def test_graph_twin_matches_the_twin_on_any_text(pattern, texts):
    from nlpkit.text import RegexTokenizer

    texts = [text.encode("utf-8", errors="replace").decode("utf-8") for text in texts]  # no lone surrogates
    twin = PythonRegexTokenizer.build(texts[: len(texts) // 2] + ["a b ab"], pattern, max_length=12)
    assert RegexTokenizer.from_python(twin)(texts).to_list() == twin.encode_batch(texts)


def test_save_and_load_round_trip(tmp_path):
    from nlpkit.text.tokenizers import RegexTokenizer, load_graph_tokenizer

    twin = PythonRegexTokenizer.build(sample_texts(), r"[\s,.]+", max_length=16)
    spec = save_tokenizer(RegexTokenizer.from_python(twin), tmp_path)
    assert spec["type"] == "regex" and spec["delimiter_pattern"] == r"[\s,.]+"
    loaded = load_tokenizer(tmp_path)
    assert loaded.vocabulary == twin.vocabulary and loaded.to_spec() == twin.to_spec()
    texts = sample_texts()[:50]
    assert loaded.encode_batch(texts) == twin.encode_batch(texts)
    assert load_graph_tokenizer(tmp_path)(texts).to_list() == twin.encode_batch(texts)
    # A lowercasing normalizer would silently disagree with MediaPipe: refused.
    TextNormalizer().save(tmp_path / spec["normalization"])
    with pytest.raises(DataFormatError, match="normalizes nothing"):
        load_tokenizer(tmp_path)
    twin.normalizer.save(tmp_path / spec["normalization"])
    spec_path = tmp_path / "tokenizer.json"
    bad = dict(spec, delimiter_pattern=r"\s*")
    spec_path.write_text(json.dumps(bad))
    with pytest.raises(DataFormatError, match="empty string"):
        load_tokenizer(tmp_path)


@pytest.mark.parametrize(
    "pattern, message",
    [
        (r"\s*", "empty string"),
        (r"\b", "empty string"),
        (r"\pL+", r"\\p"),
        (r"(?i)x", "flag"),
        (r"[[:space:]]+", "POSIX"),
        (r"(a)\1", r"\\1"),
        (r"a{,3}", "{,n}"),
        (r"a++", "possessive"),
        (r"[\S]", r"\\S"),
        ("", "non-empty"),
    ],
)
def test_unsupported_patterns_are_refused(pattern, message):
    vocabulary = Vocabulary([], special_tokens=REGEX_SPECIAL_TOKENS, unk_token=UNKNOWN_TOKEN)
    with pytest.raises(ValueError, match=message):
        PythonRegexTokenizer(vocabulary, pattern)


def test_translation_keeps_re2_meaning():
    assert python_pattern(r"\s+") == r"[\t\n\f\r ]+"  # RE2's \s has no \v
    assert python_pattern(r"a$") == r"a\Z"  # RE2's $ is the end of the text only
    assert python_pattern(r"\x{2014}") == r"\U00002014"
    tokenizer = PythonRegexTokenizer(
        Vocabulary([], special_tokens=REGEX_SPECIAL_TOKENS, unk_token=UNKNOWN_TOKEN), r"\s+")
    assert tokenizer.tokenize("a\vb c") == ["a\vb", "c"]


def test_vocabularies_mediapipe_cannot_read_are_refused():
    with pytest.raises(ValueError, match="<PAD>"):
        PythonRegexTokenizer(Vocabulary(["a"]))
    with pytest.raises(ValueError, match="spaces"):
        PythonRegexTokenizer(Vocabulary(["a b"], special_tokens=REGEX_SPECIAL_TOKENS, unk_token=UNKNOWN_TOKEN))
    # build leaves tokens with spaces out (the pattern does not split at spaces).
    assert "a b" not in PythonRegexTokenizer.build(["a b,c"], r",").vocabulary


def test_vocab_file_is_token_id_lines():
    tokenizer = PythonRegexTokenizer.build(["b a b"])
    assert tokenizer.vocab_file_text() == "<PAD> 0\n<UNKNOWN> 1\nb 2\na 3\n"
