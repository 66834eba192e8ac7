"""Pure-Python tokenizers: the twins of the graph tokenizers in ``nlpkit.text.tokenizers``.

``nlpkit.lite`` tokenizes with these, then feeds the ids to a TFLite model, so they must give
exactly the ids the graph tokenizer gives inside the SavedModel (tested on real text). Standard
library only: importing this module never imports TensorFlow.
"""

import functools
import json
import unicodedata
from pathlib import Path

from nlpkit.errors import DataFormatError
from nlpkit.manifest import resolve_inside
from nlpkit.text.normalization import TextNormalizer, read_json
from nlpkit.text.vocabulary import Vocabulary

__all__ = [
    "PythonWordTokenizer",
    "PythonCharTokenizer",
    "PythonTaggingTokenizer",
    "save_tokenizer",
    "load_tokenizer",
    "check_max_length",
    "TOKENIZER_FILE",
    "VOCABULARY_FILE",
    "NORMALIZATION_FILE",
]

TOKENIZER_FILE = "tokenizer.json"
VOCABULARY_FILE = "vocabulary.json"
NORMALIZATION_FILE = "normalization.json"
CHAR_VOCABULARY_FILE = "char_vocabulary.json"


def check_max_length(max_length):
    """Returns ``max_length`` if it is None or an int >= 1, else raises ``ValueError`` naming it."""
    if max_length is None:
        return None
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise ValueError(f"`max_length` must be None or an int >= 1, received max_length={max_length!r}")
    return max_length


def check_components(vocabulary, normalizer):
    """Raises ``TypeError`` unless the arguments are a ``Vocabulary`` and a ``TextNormalizer``."""
    if not isinstance(vocabulary, Vocabulary):
        raise TypeError(f"`vocabulary` must be a nlpkit Vocabulary, received {type(vocabulary).__name__}")
    if not isinstance(normalizer, TextNormalizer):
        raise TypeError(
            f"`normalizer` must be a nlpkit TextNormalizer, received {type(normalizer).__name__}"
        )


def token_id_map(vocabulary):
    """Returns the token -> id dict tokenizers use: every token except padding.

    A text that happens to contain the padding token ("<pad>" with ``split_punctuation=False``)
    must not produce id 0 mid-sequence: Keras would mask it, and right-padding-only fast paths
    (cuDNN) reject such masks. So the padding token reads as unknown; the graph tokenizer leaves
    it out of its hash table for the same result.
    """
    ids = {token: index for index, token in enumerate(vocabulary.tokens)}
    del ids[vocabulary.pad_token]
    return ids


class _PythonTokenizer:
    kind = None

    def __init__(self, vocabulary, normalizer, max_length=None):
        check_components(vocabulary, normalizer)
        self.vocabulary = vocabulary
        self.normalizer = normalizer
        self.max_length = check_max_length(max_length)
        self._ids = token_id_map(vocabulary)
        self._unk_id = vocabulary.unk_id

    def all_tokens(self, text):
        """Every token of ``text``, before ``max_length`` cuts them."""
        raise NotImplementedError

    def tokenize(self, text):
        """The tokens of ``text``, at most ``max_length`` of them."""
        tokens = self.all_tokens(text)
        return tokens if self.max_length is None else tokens[: self.max_length]

    def truncates(self, text):
        """``(kept, total)`` token counts of ``text``: the model sees ``kept`` of ``total`` tokens.

        Example:
            >>> vocab = Vocabulary.build([["a", "b", "c"]])
            >>> PythonWordTokenizer(vocab, TextNormalizer(), max_length=2).truncates("a b c")
            (2, 3)
        """
        total = len(self.all_tokens(text))
        return (total if self.max_length is None else min(total, self.max_length)), total

    def encode(self, text):
        """Returns the token ids of ``text`` (str, or UTF-8 bytes decoded with replacement)."""
        ids = self._ids
        unk = self._unk_id
        return [ids.get(token, unk) for token in self.tokenize(text)]

    def encode_batch(self, texts):
        """Returns ``[encode(text) for text in texts]``."""
        if isinstance(texts, (str, bytes)):
            raise TypeError(
                "`texts` must be a list of texts, "
                f"received a single {type(texts).__name__}: {texts!r:.80}"
            )
        return [self.encode(text) for text in texts]

    def to_spec(self):
        """Returns the JSON-able description stored as ``tokenizer.json`` (without file names)."""
        return {"type": self.kind, "max_length": self.max_length}

    def save_extra_files(self, directory):
        """Writes files beyond the vocabulary and normalizer; returns their ``tokenizer.json`` entries."""
        return {}

    @classmethod
    def from_files(cls, directory, spec, vocabulary, normalizer, max_length):
        """Builds the tokenizer ``load_tokenizer`` found in ``directory`` (spec already checked)."""
        return cls(vocabulary, normalizer, max_length=max_length)

    def __repr__(self):
        return (
            f"{type(self).__name__}(vocabulary={self.vocabulary!r}, normalizer={self.normalizer!r}, "
            f"max_length={self.max_length})"
        )


class PythonWordTokenizer(_PythonTokenizer):
    """Word tokenizer in pure Python: normalize, split on spaces, look up ids.

    Args:
        vocabulary: Vocabulary. Unknown words (and the padding token itself) map to ``unk_id``.
        normalizer: TextNormalizer. Decides lowercasing, punctuation splitting and which
            characters count as spaces.
        max_length: optional int, default None. Keep only the first ``max_length`` tokens.

    Example:
        >>> from nlpkit.text import TextNormalizer, Vocabulary
        >>> normalizer = TextNormalizer()
        >>> vocab = Vocabulary.build([normalizer.tokenize("A fine film. A fine cast.")])
        >>> vocab.tokens
        ['<pad>', '<unk>', '.', 'a', 'fine', 'cast', 'film']
        >>> tokenizer = PythonWordTokenizer(vocab, normalizer, max_length=3)
        >>> tokenizer.tokenize("A FINE mess!")
        ['a', 'fine', 'mess']
        >>> tokenizer.encode("A FINE mess!")
        [3, 4, 1]
    """

    kind = "word"

    def all_tokens(self, text):
        """Returns the word tokens of ``text`` (`tokenize` keeps at most ``max_length``)."""
        return self.normalizer.tokenize(text)

    def decode(self, ids):
        """Returns the tokens of ``ids`` joined by spaces, padding ids dropped."""
        pad = self.vocabulary.pad_id
        return " ".join(self.vocabulary.decode([i for i in ids if i != pad]))


class PythonCharTokenizer(_PythonTokenizer):
    """Character tokenizer in pure Python: every character of the normalized text is a token.

    With ``normalize_whitespace=True`` spaces stay as " " tokens; for a character language model
    use ``TextNormalizer(False, False, False)`` so newlines and case survive.

    Args:
        vocabulary: Vocabulary of single characters. Unknown characters map to ``unk_id``.
        normalizer: TextNormalizer applied before splitting into characters.
        max_length: optional int, default None. Keep only the first ``max_length`` characters.

    Example:
        >>> from nlpkit.text import TextNormalizer, Vocabulary
        >>> vocab = Vocabulary(["a", "b", " "])
        >>> tokenizer = PythonCharTokenizer(vocab, TextNormalizer(split_punctuation=False))
        >>> tokenizer.encode("Ab\\tc")
        [2, 3, 4, 1]
    """

    kind = "char"

    def all_tokens(self, text):
        """Returns the characters of the normalized ``text`` (`tokenize` keeps at most ``max_length``)."""
        return list(self.normalizer.normalize(text))

    def decode(self, ids):
        """Returns the characters of ``ids`` joined, padding ids dropped."""
        pad = self.vocabulary.pad_id
        return "".join(self.vocabulary.decode([i for i in ids if i != pad]))


def check_max_word_length(max_word_length):
    """Returns ``max_word_length`` if it is an int >= 1, else raises ``ValueError`` naming it."""
    if isinstance(max_word_length, bool) or not isinstance(max_word_length, int) or max_word_length < 1:
        raise ValueError(f"`max_word_length` must be an int >= 1, received max_word_length={max_word_length!r}")
    return max_word_length


def _splits_words(normalizer):
    """The characters that ``normalizer`` maps to text with a space, other than whitespace."""
    return sorted(
        key
        for key, value in normalizer.table.items()
        if " " in value and not (key.isspace() or unicodedata.category(key) == "Cc")
    )


@functools.lru_cache(maxsize=1)
def whitespace_normalizer():
    """The normalizer that finds a tagger's tokens: whitespace and control characters -> " ".

    Only whitespace separates tokens, never punctuation, so "U.S." stays one token as in
    CoNLL files.
    """
    return TextNormalizer(lowercase=False, split_punctuation=False, normalize_whitespace=True)


class PythonTaggingTokenizer(_PythonTokenizer):
    """A sequence tagger's tokenizer in pure Python: whitespace tokens, word ids and character ids.

    A text is split into tokens at whitespace (and control characters) only, so punctuation
    stays attached as in CoNLL-style pre-tokenized text. Each token gets one word id (the
    token passed through ``normalizer``, e.g. lowercased with digits mapped to 0, then looked
    up in ``vocabulary``) and one character id per character of the *original* token, case
    kept, at most ``max_word_length`` of them (looked up in ``char_vocabulary``). Unknown
    words and characters map to the vocabularies' ``unk_id``. The graph twin is
    `nlpkit.text.TaggingTokenizer`.

    Args:
        vocabulary: Vocabulary of normalized word forms.
        normalizer: TextNormalizer applied to each token before the word lookup. It must not
            split tokens (no table entry other than whitespace may produce a space), so use
            ``split_punctuation=False``.
        char_vocabulary: Vocabulary of single characters.
        max_length: optional int, default None. Keep only the first ``max_length`` tokens.
        max_word_length: int, default 20. Characters kept per token (CoNLL-2003 has 99.9% of
            its tokens at 15 characters or fewer).

    Example:
        >>> from nlpkit.text import TextNormalizer, Vocabulary
        >>> words = Vocabulary(["the", "u.s.", "visit"])
        >>> chars = Vocabulary(list("TheU.S"))
        >>> tokenizer = PythonTaggingTokenizer(words, TextNormalizer(split_punctuation=False), chars)
        >>> tokenizer.tokenize("The U.S.  visit")
        ['The', 'U.S.', 'visit']
        >>> tokenizer.encode_tokens(["The", "U.S."])
        ([2, 3], [[2, 3, 4], [5, 6, 7, 6]])
    """

    kind = "tagging"

    def __init__(self, vocabulary, normalizer, char_vocabulary, max_length=None, max_word_length=20):
        super().__init__(vocabulary, normalizer, max_length=max_length)
        if not isinstance(char_vocabulary, Vocabulary):
            raise TypeError(
                f"`char_vocabulary` must be a nlpkit Vocabulary, received {type(char_vocabulary).__name__}"
            )
        splitting = _splits_words(normalizer)
        if splitting:
            raise ValueError(
                "a tagging tokenizer's `normalizer` must keep every token whole, but it maps "
                f"{splitting[:10]!r} to text with spaces; build it with split_punctuation=False"
            )
        self.char_vocabulary = char_vocabulary
        self.max_word_length = check_max_word_length(max_word_length)
        self._char_ids = token_id_map(char_vocabulary)
        self._char_unk_id = char_vocabulary.unk_id

    def all_tokens(self, text):
        """Returns the whitespace-separated tokens of ``text``, case kept (`tokenize` keeps ``max_length``)."""
        return whitespace_normalizer().tokenize(text)

    def word_form(self, token):
        """The normalized form of one token that the word vocabulary is looked up with."""
        return self.normalizer.normalize(token)

    def encode(self, text):
        """Returns the word ids of the tokens of ``text``."""
        return self.encode_tokens(self.tokenize(text))[0]

    def encode_tokens(self, tokens):
        """Returns ``(word_ids, char_ids)`` of already split tokens: one int and one list per token.

        Tokens are taken as they are (not split again, ``max_length`` not applied), which is
        what pre-tokenized data such as CoNLL files needs.
        """
        if isinstance(tokens, (str, bytes)):
            raise TypeError(
                f"`tokens` must be a list of tokens, received a single {type(tokens).__name__}: {tokens!r:.80}"
            )
        words, unk = self._ids, self._unk_id
        chars, char_unk = self._char_ids, self._char_unk_id
        word_ids, char_ids = [], []
        for token in tokens:
            if isinstance(token, (bytes, bytearray, memoryview)):
                token = bytes(token).decode("utf-8", errors="replace")
            word_ids.append(words.get(self.normalizer.normalize(token), unk))
            char_ids.append([chars.get(char, char_unk) for char in token[: self.max_word_length]])
        return word_ids, char_ids

    def to_spec(self):
        return dict(super().to_spec(), max_word_length=self.max_word_length)

    def save_extra_files(self, directory):
        self.char_vocabulary.save(Path(directory) / CHAR_VOCABULARY_FILE)
        return {"char_vocabulary": CHAR_VOCABULARY_FILE}

    @classmethod
    def from_files(cls, directory, spec, vocabulary, normalizer, max_length):
        path = Path(directory) / TOKENIZER_FILE
        try:
            max_word_length = check_max_word_length(spec.get("max_word_length", 20))
        except ValueError as error:
            raise DataFormatError(str(error), path=path) from error
        char_vocabulary = Vocabulary.load(spec_file(directory, spec, "char_vocabulary", CHAR_VOCABULARY_FILE))
        try:
            return cls(vocabulary, normalizer, char_vocabulary, max_length=max_length, max_word_length=max_word_length)
        except ValueError as error:
            raise DataFormatError(str(error), path=path) from error

    def __repr__(self):
        return (
            f"{type(self).__name__}(vocabulary={self.vocabulary!r}, normalizer={self.normalizer!r}, "
            f"char_vocabulary={self.char_vocabulary!r}, max_length={self.max_length}, "
            f"max_word_length={self.max_word_length})"
        )


_TOKENIZER_TYPES = {"word": PythonWordTokenizer, "char": PythonCharTokenizer, "tagging": PythonTaggingTokenizer}
# Kinds whose twins live in modules that import this one (found when loaded).
_LATER_TYPES = ("regex", "sentencepiece")


def save_tokenizer(tokenizer, directory):
    """Writes ``vocabulary.json``, ``normalization.json`` and ``tokenizer.json`` into ``directory``.

    Accepts a Python twin or anything with ``to_python()`` (the graph tokenizers). Returns the
    spec dict that ``tokenizer.json`` holds, ready to embed in a bundle's ``nlpkit.json``.
    """
    if not isinstance(tokenizer, _PythonTokenizer) and hasattr(tokenizer, "to_python"):
        tokenizer = tokenizer.to_python()
    if getattr(tokenizer, "kind", None) == "sentencepiece":
        # A subword model is one file of its own, with no vocabulary or normalization JSON.
        return tokenizer.save(directory)
    if not isinstance(tokenizer, _PythonTokenizer):
        raise TypeError(f"`tokenizer` must be a nlpkit tokenizer, received {type(tokenizer).__name__}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer.vocabulary.save(directory / VOCABULARY_FILE)
    tokenizer.normalizer.save(directory / NORMALIZATION_FILE)
    spec = dict(tokenizer.to_spec(), vocabulary=VOCABULARY_FILE, normalization=NORMALIZATION_FILE)
    spec.update(tokenizer.save_extra_files(directory))
    text = json.dumps(spec, ensure_ascii=True, indent=1)
    (directory / TOKENIZER_FILE).write_text(text + "\n", encoding="utf-8")
    return spec


def spec_file(directory, spec, key, default):
    """The file a tokenizer spec names under ``key``, refused if it lies outside ``directory``.

    Example:
        >>> spec_file("saved_models/sentiment/assets", {"vocabulary": "vocabulary.json"}, "vocabulary", VOCABULARY_FILE)
        PosixPath('saved_models/sentiment/assets/vocabulary.json')
    """
    return resolve_inside(directory, spec.get(key, default), f"{TOKENIZER_FILE} {key!r}")


def load_tokenizer(directory, spec=None):
    """Builds the Python twin saved by ``save_tokenizer``.

    Args:
        directory: str or Path holding the files.
        spec: optional dict, default None (read ``directory/tokenizer.json``). A spec stored
            elsewhere, e.g. in a bundle's ``nlpkit.json``.
    """
    directory = Path(directory)
    spec_path = directory / TOKENIZER_FILE
    if spec is None:
        spec = read_json(resolve_inside(directory, TOKENIZER_FILE, TOKENIZER_FILE), "tokenizer spec")
    elif not isinstance(spec, dict):
        raise TypeError(f"`spec` must be a dict, received {type(spec).__name__}: {spec!r:.80}")
    kind = spec.get("type")
    if not isinstance(kind, str) or (kind not in _TOKENIZER_TYPES and kind not in _LATER_TYPES):
        message = f"tokenizer 'type' must be one of {sorted([*_TOKENIZER_TYPES, *_LATER_TYPES])}, found {kind!r}"
        raise DataFormatError(message, path=spec_path)
    try:
        max_length = check_max_length(spec.get("max_length"))
    except ValueError as error:
        raise DataFormatError(str(error), path=spec_path) from error
    if kind == "sentencepiece":
        # Imported here: nlpkit.text.subword imports this module.
        from nlpkit.text.subword import PythonSentencePieceTokenizer

        return PythonSentencePieceTokenizer.from_files(directory, spec, max_length)
    vocabulary = Vocabulary.load(spec_file(directory, spec, "vocabulary", VOCABULARY_FILE))
    normalizer = TextNormalizer.load(spec_file(directory, spec, "normalization", NORMALIZATION_FILE))
    if kind == "regex":
        # Imported here: nlpkit.text.regex_tokenizer imports this module.
        from nlpkit.text.regex_tokenizer import PythonRegexTokenizer

        return PythonRegexTokenizer.from_files(directory, spec, vocabulary, normalizer, max_length)
    return _TOKENIZER_TYPES[kind].from_files(directory, spec, vocabulary, normalizer, max_length)
