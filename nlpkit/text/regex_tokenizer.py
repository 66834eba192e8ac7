"""The RegexTokenizer of MediaPipe Tasks' TextClassifier, in pure Python (standard library only).

A classifier that MediaPipe runs unmodified gets its ids from MediaPipe's own tokenizer, so the
model must be trained on exactly those ids. This twin reproduces
``mediapipe/tasks/cc/text/tokenizers/regex_tokenizer.cc`` and
``mediapipe/calculators/tensor/regex_preprocessor_calculator.cc``:

- the text is read as a C string: everything from the first NUL character on is ignored
  (``absl::string_view leftover(input.data())``);
- ``RE2::FindAndConsume`` finds the next delimiter match in what is left, the text before it
  is a token if it is not empty, and the search goes on *in the rest of the text only* (so
  ``^`` matches again after every delimiter); what follows the last delimiter is the last
  token. Delimiters are dropped. There is no lowercasing or other normalization;
- ids come from the vocabulary file (``token id`` lines) as they are: a token that equals a
  vocabulary entry gets its id, the special ones included (a literal ``<PAD>`` is id 0),
  every other token gets the id of ``<UNKNOWN>``;
- if the vocabulary holds ``<START>``, its id comes first; the ids are cut to the model's
  input length and padded with the id of ``<PAD>``.

MediaPipe matches with RE2, this twin with Python's ``re``; `python_pattern` translates a
pattern between the two where their meanings differ (``\\s``, ``$``, ``\\z``, ``\\x{...}``;
``\\w``, ``\\d`` and ``\\b`` are ASCII-only in RE2, hence ``re.ASCII``) and refuses the
constructs whose meaning it cannot keep. The graph twin (`nlpkit.text.RegexTokenizer`)
splits with RE2 itself (tensorflow-text's ``regex_split``); the two are tested against each
other and against MediaPipe.
"""

import re
from pathlib import Path

from nlpkit.errors import DataFormatError
from nlpkit.text.normalization import TextNormalizer, _as_str
from nlpkit.text.python_tokenizers import TOKENIZER_FILE, _PythonTokenizer, check_max_length
from nlpkit.text.vocabulary import Vocabulary

__all__ = [
    "PythonRegexTokenizer",
    "DEFAULT_DELIMITER_PATTERN",
    "PAD_TOKEN",
    "UNKNOWN_TOKEN",
    "START_TOKEN",
    "REGEX_SPECIAL_TOKENS",
    "python_pattern",
]

# The default of tflite-support's and MediaPipe Model Maker's text classifiers: anything but
# ASCII letters, digits, "_" and "'" separates tokens (RE2's \w is ASCII-only, so every
# non-ASCII character is a delimiter too: "café" gives the token "caf").
DEFAULT_DELIMITER_PATTERN = r"[^\w']+"
# The names MediaPipe looks up in the vocabulary file (regex_tokenizer.cc).
PAD_TOKEN = "<PAD>"
UNKNOWN_TOKEN = "<UNKNOWN>"
START_TOKEN = "<START>"
REGEX_SPECIAL_TOKENS = (PAD_TOKEN, UNKNOWN_TOKEN)

_RE2_SPACE = r"\t\n\f\r "  # RE2's \s; Python's ASCII \s also has \v
_KEPT_ESCAPES = set("dDwWaftnrv")  # same meaning in RE2 and Python's re with re.ASCII
_PROBES = ("", "a", " ", "a b", "ab, cd. ef!", "\n", "x\ty\n", "'", "<PAD>", "1 2", "é ü")


def _refuse(pattern, position, what):
    raise ValueError(
        f"delimiter pattern {pattern!r}: {what} at position {position} is not supported (RE2 and Python's re "
        "would not split the same way, so the pure-Python twin could not give MediaPipe's ids)"
    )


def _escape(pattern, i, in_class):
    """The Python form of the RE2 escape at ``pattern[i]`` (a backslash), and the index after it."""
    if i + 1 >= len(pattern):
        _refuse(pattern, i, "a trailing backslash")
    c = pattern[i + 1]
    if c == "s":
        return (_RE2_SPACE if in_class else f"[{_RE2_SPACE}]"), i + 2
    if c == "S" and not in_class:
        return f"[^{_RE2_SPACE}]", i + 2
    if c in _KEPT_ESCAPES or (not in_class and c in "bBA"):
        return "\\" + c, i + 2
    if c == "z" and not in_class:
        return r"\Z", i + 2
    if c == "x":
        if pattern.startswith("{", i + 2):
            end = pattern.find("}", i + 3)
            digits = pattern[i + 3 : end] if end > 0 else ""
            if not digits or any(d not in "0123456789abcdefABCDEF" for d in digits) or int(digits, 16) > 0x10FFFF:
                _refuse(pattern, i, "a malformed \\x{...} escape")
            return f"\\U{int(digits, 16):08x}", end + 1
        digits = pattern[i + 2 : i + 4]
        if len(digits) != 2 or any(d not in "0123456789abcdefABCDEF" for d in digits):
            _refuse(pattern, i, "a malformed \\x escape")
        return "\\x" + digits, i + 4
    if not c.isalnum() and c.isascii():
        return "\\" + c, i + 2
    _refuse(pattern, i, f"the escape \\{c}")


def _char_class(pattern, i):
    """The Python form of the RE2 character class starting at ``pattern[i]`` ("["), and the index after it."""
    start = i
    out = ["["]
    i += 1
    if pattern.startswith("^", i):
        out.append("^")
        i += 1
    if pattern.startswith("]", i):  # a "]" first is a literal in both
        out.append(r"\]")
        i += 1
    while i < len(pattern):
        c = pattern[i]
        if c == "]":
            out.append("]")
            return "".join(out), i + 1
        if c == "\\":
            piece, i = _escape(pattern, i, in_class=True)
            out.append(piece)
            continue
        if c == "[":
            if pattern.startswith("[:", i):
                _refuse(pattern, i, "a POSIX class [:...:]")
            out.append(r"\[")  # literal in RE2; Python warns of a nested set
        elif c in "&~|":
            out.append("\\" + c)  # literal in both; Python warns of set operations when doubled
        else:
            out.append(c)
        i += 1
    _refuse(pattern, start, "an unterminated character class")


def python_pattern(pattern):
    """The Python ``re`` pattern (to compile with ``re.ASCII``) that matches what RE2 matches for ``pattern``.

    Raises ``ValueError`` naming the construct for patterns whose RE2 meaning Python cannot
    reproduce: ``\\p{..}`` classes, POSIX ``[:alpha:]`` classes, flags and group kinds other
    than ``(?:...)`` and ``(?P<name>...)``, octal escapes and backreferences, ``{,n}``,
    possessive quantifiers, ``\\S`` inside a class, ``\\C``, ``\\Q...\\E``.

    Example:
        >>> print(python_pattern(r"[\\s,]+|$"))
        [\\t\\n\\f\\r ,]+|\\Z
    """
    if not isinstance(pattern, str) or not pattern:
        raise ValueError(f"`delimiter_pattern` must be a non-empty string, received {pattern!r}")
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            piece, i = _escape(pattern, i, in_class=False)
            out.append(piece)
            continue
        if c == "[":
            piece, i = _char_class(pattern, i)
            out.append(piece)
            continue
        if c == "(" and pattern.startswith("(?", i) and not pattern.startswith(("(?:", "(?P<"), i):
            _refuse(pattern, i, "a flag or group kind other than (?:...) and (?P<name>...)")
        if c == "{" and pattern.startswith("{,", i):
            _refuse(pattern, i, "the repetition {,n}")
        if c in "*+?}" and pattern.startswith("+", i + 1):
            _refuse(pattern, i, "a possessive quantifier")
        out.append(r"\Z" if c == "$" else c)  # RE2's $ (no multi-line flag) is the end of the text only
        i += 1
    return "".join(out)


def compile_delimiter_pattern(pattern):
    """The compiled Python twin of the RE2 delimiter ``pattern``; ``ValueError`` if it is unusable.

    A pattern that can match the empty string is refused: ``RE2::FindAndConsume`` consumes
    nothing on an empty match, so MediaPipe's loop would never end.
    """
    translated = python_pattern(pattern)
    try:
        compiled = re.compile(translated, re.ASCII)
    except re.error as error:
        raise ValueError(f"delimiter pattern {pattern!r} does not compile: {error}") from error
    for probe in _PROBES:
        if any(match.end() == match.start() for match in compiled.finditer(probe)):
            raise ValueError(
                f"delimiter pattern {pattern!r} matches the empty string (in {probe!r}); MediaPipe's "
                "tokenizer would loop forever on it. Use a pattern that always consumes a character, e.g. "
                "'\\s+' rather than '\\s*'."
            )
    return compiled


def check_vocabulary(vocabulary):
    """Raises ``ValueError`` unless ``vocabulary`` fits MediaPipe's vocabulary file (see `PythonRegexTokenizer`)."""
    if not isinstance(vocabulary, Vocabulary):
        raise TypeError(f"`vocabulary` must be a nlpkit Vocabulary, received {type(vocabulary).__name__}")
    if vocabulary.pad_token != PAD_TOKEN or vocabulary.unk_token != UNKNOWN_TOKEN:
        raise ValueError(
            f"a regex tokenizer's vocabulary must have {PAD_TOKEN!r} first (id 0) and {UNKNOWN_TOKEN!r} as its "
            f"unknown token, as MediaPipe looks them up by name; received pad {vocabulary.pad_token!r}, unknown "
            f"{vocabulary.unk_token!r}. Build it with special_tokens={REGEX_SPECIAL_TOKENS!r}, "
            f"unk_token={UNKNOWN_TOKEN!r} (PythonRegexTokenizer.build does)"
        )
    bad = [token for token in vocabulary.tokens if not writable_token(token)]
    if bad:
        raise ValueError(
            f"vocabulary tokens {bad[:5]!r} cannot be written to MediaPipe's vocabulary file (one 'token id' "
            "line each, split at spaces): tokens must not contain spaces, line breaks or NUL"
        )


def writable_token(token):
    """Whether ``token`` survives a MediaPipe vocabulary file line and can come out of its tokenizer."""
    return not any(c in token for c in " \n\r\0")


class PythonRegexTokenizer(_PythonTokenizer):
    """MediaPipe's RegexTokenizer in pure Python: split at RE2 delimiter matches, look up ids as they are.

    Gives the ids MediaPipe Tasks' ``TextClassifier`` feeds a model whose metadata holds this
    tokenizer (see the module docstring for the rules and the C++ files they come from).
    Nothing is lowercased: "Great" and "great" are different tokens, so a vocabulary built
    from mixed-case text is larger and rare capitalized forms read as unknown (the price of
    a runtime that applies no normalization).

    Args:
        vocabulary: Vocabulary with special tokens ``("<PAD>", "<UNKNOWN>")`` (pad id 0) and
            ``unk_token="<UNKNOWN>"``; may also hold ``"<START>"``, whose id MediaPipe puts
            first. Tokens must not contain spaces, line breaks or NUL. See `build`.
        delimiter_pattern: str, default ``r"[^\\w']+"``. RE2 pattern of the text between tokens
            (see `python_pattern` for what is supported). Must not match the empty string.
        max_length: optional int, default None. Keep only the first ``max_length`` ids (the
            start id included), as MediaPipe keeps the model's input length.

    Example:
        >>> tokenizer = PythonRegexTokenizer.build(["A fine film.", "A fine, fine cast!"])
        >>> tokenizer.vocabulary.tokens
        ['<PAD>', '<UNKNOWN>', 'fine', 'A', 'cast', 'film']
        >>> tokenizer.tokenize("a FINE film...")
        ['a', 'FINE', 'film']
        >>> tokenizer.encode("a FINE film...")
        [1, 1, 5]
    """

    kind = "regex"

    def __init__(self, vocabulary, delimiter_pattern=DEFAULT_DELIMITER_PATTERN, max_length=None):
        check_vocabulary(vocabulary)
        # MediaPipe normalizes nothing; the identity normalizer keeps the shared save/load path.
        super().__init__(vocabulary, identity_normalizer(), max_length=max_length)
        self.delimiter_pattern = delimiter_pattern
        self._delimiter = compile_delimiter_pattern(delimiter_pattern)
        # Every entry of the vocabulary file, the special ones included, as MediaPipe reads it.
        self._ids = {token: index for index, token in enumerate(vocabulary.tokens)}
        self.start_id = self._ids.get(START_TOKEN)

    @classmethod
    def build(cls, texts, delimiter_pattern=DEFAULT_DELIMITER_PATTERN, min_frequency=1, max_size=None,
              max_length=None):
        """A tokenizer whose vocabulary holds the tokens of ``texts`` (see `Vocabulary.build`).

        Tokens a MediaPipe vocabulary file cannot hold (with spaces, when the pattern does not
        split at spaces) are left out, so they read as unknown.
        """
        splitter = cls(Vocabulary([], special_tokens=REGEX_SPECIAL_TOKENS, unk_token=UNKNOWN_TOKEN),
                       delimiter_pattern)
        vocabulary = Vocabulary.build(
            ([token for token in splitter.all_tokens(text) if writable_token(token)] for text in texts),
            min_frequency=min_frequency,
            max_size=max_size,
            special_tokens=REGEX_SPECIAL_TOKENS,
            unk_token=UNKNOWN_TOKEN,
        )
        return cls(vocabulary, delimiter_pattern, max_length=max_length)

    def all_tokens(self, text):
        """The tokens of ``text`` as MediaPipe's ``RegexTokenizer::Tokenize`` finds them."""
        text = _as_str(text).split("\0", 1)[0]
        tokens = []
        search = self._delimiter.search
        while True:
            # RE2 sees only the rest of the text after each match, so ^ and \b start afresh.
            match = search(text)
            if match is None:
                break
            if match.start() > 0:
                tokens.append(text[: match.start()])
            text = text[match.end() :]
        if text:
            tokens.append(text)
        return tokens

    def tokenize(self, text):
        """The tokens of ``text`` whose ids `encode` keeps (the start token, if any, not included)."""
        tokens = self.all_tokens(text)
        if self.max_length is None:
            return tokens
        return tokens[: max(self.max_length - (self.start_id is not None), 0)]

    def truncates(self, text):
        """``(kept, total)`` token counts of ``text`` (the start token not counted)."""
        return len(self.tokenize(text)), len(self.all_tokens(text))

    def encode(self, text):
        """The ids MediaPipe feeds the model for ``text``, before padding."""
        ids, unk = self._ids, self._unk_id
        start = [] if self.start_id is None else [self.start_id]
        return start + [ids.get(token, unk) for token in self.tokenize(text)]

    def encode_padded(self, text, length):
        """``encode(text)`` cut or padded with id 0 to ``length``: MediaPipe's input tensor row."""
        ids = self.encode(text)[:length]
        return ids + [self.vocabulary.pad_id] * (length - len(ids))

    def decode(self, ids):
        """The tokens of ``ids`` joined by spaces, padding and start ids dropped."""
        skip = {self.vocabulary.pad_id, self.start_id}
        return " ".join(self.vocabulary.decode([i for i in ids if i not in skip]))

    def vocab_file_text(self):
        """MediaPipe's vocabulary file: one ``token id`` line per token, in id order."""
        return "".join(f"{token} {index}\n" for index, token in enumerate(self.vocabulary.tokens))

    def to_spec(self):
        return dict(super().to_spec(), delimiter_pattern=self.delimiter_pattern)

    @classmethod
    def from_files(cls, directory, spec, vocabulary, normalizer, max_length):
        path = Path(directory) / TOKENIZER_FILE
        if normalizer != identity_normalizer():
            raise DataFormatError(
                "a regex tokenizer normalizes nothing (MediaPipe does not), but its normalization file "
                f"holds {len(normalizer.table)} table entries",
                path=path,
            )
        pattern = spec.get("delimiter_pattern")
        if not isinstance(pattern, str):
            raise DataFormatError(f"a regex tokenizer spec needs a 'delimiter_pattern' string, found {pattern!r}",
                                  path=path)
        try:
            return cls(vocabulary, pattern, max_length=check_max_length(max_length))
        except ValueError as error:
            raise DataFormatError(str(error), path=path) from error

    def __repr__(self):
        return (
            f"{type(self).__name__}(vocabulary={self.vocabulary!r}, delimiter_pattern={self.delimiter_pattern!r}, "
            f"max_length={self.max_length})"
        )



def identity_normalizer():
    """The normalizer that changes nothing (a new object; the table is shared and empty)."""
    return TextNormalizer(lowercase=False, split_punctuation=False, normalize_whitespace=False, table={})
