"""Text normalization as an explicit character table. Pure Python (standard library only).

TensorFlow's case folding (ICU) and Python's ``str.lower`` disagree on some characters and
follow different Unicode versions, and RE2 and ``re`` disagree on ``\\w``. So nlpkit never asks
either engine what "lowercase" or "punctuation" means at tokenization time: the table is built
once here from ``unicodedata``, saved with the tokenizer, and applied character by character both
by the pure-Python twin and by the graph tokenizer. Identical ids by construction.
"""

import functools
import json
import unicodedata
from pathlib import Path

from nlpkit.errors import DataFormatError

__all__ = ["TextNormalizer", "build_table"]

_FORMAT = "nlpkit.text_normalizer"
_FORMAT_VERSION = 1
_SURROGATES = range(0xD800, 0xE000)


@functools.lru_cache(maxsize=8)
def _cached_table(lowercase, split_punctuation, normalize_whitespace):
    category = unicodedata.category
    table = {}
    for code_point in range(0x110000):
        if code_point in _SURROGATES:
            continue
        ch = chr(code_point)
        cat = category(ch)
        if normalize_whitespace and (cat == "Cc" or ch.isspace()):
            table[ch] = " "
            continue
        # Lowercase first, then pad: a few symbols (circled letters, So) have a lowercase form,
        # and "split and lowercase" should give the same token as lowercasing the split token.
        out = ch.lower() if lowercase else ch
        if split_punctuation and cat[0] in "PS":
            out = " " + out + " "
        if out != ch:
            table[ch] = out
    return table


def build_table(lowercase=True, split_punctuation=True, normalize_whitespace=True):
    """Returns a new ``dict[str, str]`` normalization table built from ``unicodedata``.

    Only characters that change are listed; every other character maps to itself. Built once
    per flag combination and process (about 0.4 s), then copied from a cache.

    Args:
        lowercase: bool, default True. Map every character whose ``ch.lower()`` differs to
            that full lowercase mapping (may be several characters, e.g. "İ" -> "i̇").
        split_punctuation: bool, default True. Surround characters of category P* and S* with
            spaces so they become tokens of their own.
        normalize_whitespace: bool, default True. Map whitespace (``ch.isspace()``) and control
            characters (category Cc) to a single space.

    Example:
        >>> build_table()["A"], build_table()["!"], build_table()["\\t"]
        ('a', ' ! ', ' ')
    """
    return dict(_cached_table(bool(lowercase), bool(split_punctuation), bool(normalize_whitespace)))


def _check_flag(name, value):
    if not isinstance(value, bool):
        raise ValueError(f"`{name}` must be a bool, received {name}={value!r}")
    return value


def _check_table(table):
    if not isinstance(table, dict):
        raise ValueError(
            f"`table` must be a dict[str, str], received {type(table).__name__}: {table!r:.80}"
        )
    for key, value in table.items():
        if not isinstance(key, str) or len(key) != 1:
            raise ValueError(f"`table` keys must be single characters, received key {key!r}")
        if not isinstance(value, str):
            raise ValueError(f"`table` values must be strings, received {value!r} for key {key!r}")
        if 0xD800 <= ord(key) < 0xE000 or any(0xD800 <= ord(c) < 0xE000 for c in value):
            # A lone surrogate cannot be encoded as UTF-8, so the graph could never see it.
            raise ValueError(f"`table` must not contain surrogates, received {key!r}: {value!r}")
    return table


class TextNormalizer:
    """Character-table text normalizer shared by the graph tokenizers and their Python twins.

    ``normalize`` replaces every character found in ``table`` by its replacement string and
    keeps every other character. ``tokenize`` splits the result on " " and drops empty pieces.
    Bytes are decoded as UTF-8 with ``errors="replace"`` (one U+FFFD per maximal invalid
    subsequence), which is exactly what ``tf.strings.unicode_split(..., errors="replace")``
    does in the graph.

    Args:
        lowercase: bool, default True. Lowercase with Python's full per-character mapping.
        split_punctuation: bool, default True. Make punctuation and symbols (P*, S*) separate
            tokens.
        normalize_whitespace: bool, default True. Map whitespace and control characters to " ".
        table: optional dict[str, str], default None. An explicit table (single character ->
            replacement). When given, the three flags are kept for information only. When None,
            it is built from the flags with the running Python's ``unicodedata``.

    Example:
        >>> normalizer = TextNormalizer()
        >>> normalizer.tokenize("Hello,\\tWORLD!")
        ['hello', ',', 'world', '!']
        >>> TextNormalizer.from_dict(normalizer.to_dict()) == normalizer
        True
    """

    def __init__(self, lowercase=True, split_punctuation=True, normalize_whitespace=True, table=None):
        self.lowercase = _check_flag("lowercase", lowercase)
        self.split_punctuation = _check_flag("split_punctuation", split_punctuation)
        self.normalize_whitespace = _check_flag("normalize_whitespace", normalize_whitespace)
        if table is None:
            table = build_table(lowercase, split_punctuation, normalize_whitespace)
        else:
            table = dict(_check_table(table))
        # Identity entries change nothing; dropping them keeps saved files and graph tables small.
        self.table = {key: value for key, value in table.items() if key != value}
        self._translation = {ord(key): value for key, value in self.table.items()}

    def normalize(self, text):
        """Returns ``text`` (str, or bytes decoded as UTF-8 with replacement) with the table applied."""
        return _as_str(text).translate(self._translation)

    def tokenize(self, text):
        """Returns the non-empty pieces of ``normalize(text)`` split on " "."""
        return [piece for piece in self.normalize(text).split(" ") if piece]

    def to_dict(self):
        """Returns a JSON-able dict holding the explicit table, the flags and the Unicode version."""
        return {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "lowercase": self.lowercase,
            "split_punctuation": self.split_punctuation,
            "normalize_whitespace": self.normalize_whitespace,
            "unidata_version": unicodedata.unidata_version,
            "table": dict(sorted(self.table.items())),
        }

    @classmethod
    def from_dict(cls, config):
        """Rebuilds a normalizer from ``to_dict()`` output; the stored table is used as is."""
        if not isinstance(config, dict):
            raise ValueError(f"normalizer config must be a dict, received {type(config).__name__}")
        if "table" not in config:
            raise ValueError(f"normalizer config has no 'table' entry, keys are {sorted(config)}")
        return cls(
            lowercase=config.get("lowercase", True),
            split_punctuation=config.get("split_punctuation", True),
            normalize_whitespace=config.get("normalize_whitespace", True),
            table=config["table"],
        )

    def save(self, path):
        """Writes ``to_dict()`` as ASCII-only JSON to ``path``."""
        text = json.dumps(self.to_dict(), ensure_ascii=True, indent=1)
        Path(path).write_text(text + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path):
        """Reads a normalizer written by ``save``; malformed files raise ``DataFormatError``."""
        config = read_json(path, "normalizer")
        if config.get("format", _FORMAT) != _FORMAT:
            raise DataFormatError(
                f"not a text normalizer file (format={config.get('format')!r})", path=path
            )
        try:
            return cls.from_dict(config)
        except ValueError as error:
            raise DataFormatError(str(error), path=path) from error

    def __eq__(self, other):
        if not isinstance(other, TextNormalizer):
            return NotImplemented
        return self.table == other.table

    __hash__ = None

    def __repr__(self):
        return (
            f"TextNormalizer(lowercase={self.lowercase}, split_punctuation={self.split_punctuation}, "
            f"normalize_whitespace={self.normalize_whitespace}, table=<{len(self.table)} entries>)"
        )


def _as_str(text):
    if isinstance(text, str):
        return text
    if isinstance(text, (bytes, bytearray, memoryview)):
        return bytes(text).decode("utf-8", errors="replace")
    raise TypeError(f"expected str or bytes, received {type(text).__name__}: {text!r:.80}")


def read_json(path, what):
    """Reads a JSON object from ``path``; empty, invalid or non-object files raise ``DataFormatError``.

    Shared by the vocabulary, normalizer and tokenizer-spec loaders so that every malformed file
    is reported the same way: path, line when known, and what was expected.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        message = f"{what} file is not UTF-8 text ({error.reason} at byte {error.start})"
        raise DataFormatError(message, path=path) from error
    if not text.strip():
        raise DataFormatError(f"empty {what} file", path=path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        message = f"{what} file is not valid JSON: {error.msg}"
        raise DataFormatError(message, path=path, line=error.lineno) from error
    except RecursionError:
        raise DataFormatError(f"{what} file is not valid JSON: nested too deeply", path=path) from None
    if not isinstance(data, dict):
        message = f"{what} file must hold a JSON object, found {type(data).__name__}"
        raise DataFormatError(message, path=path)
    return data
