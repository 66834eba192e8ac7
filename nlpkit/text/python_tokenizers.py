"""Pure-Python tokenizers: the twins of the graph tokenizers in ``nlpkit.text.tokenizers``.

``nlpkit.lite`` tokenizes with these, then feeds the ids to a TFLite model, so they must give
exactly the ids the graph tokenizer gives inside the SavedModel (tested on real text). Standard
library only: importing this module never imports TensorFlow.
"""

import json
from pathlib import Path

from nlpkit.errors import DataFormatError
from nlpkit.text.normalization import TextNormalizer, read_json
from nlpkit.text.vocabulary import Vocabulary

__all__ = [
    "PythonWordTokenizer",
    "PythonCharTokenizer",
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

    def tokenize(self, text):
        raise NotImplementedError

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

    def tokenize(self, text):
        """Returns the word tokens of ``text``, at most ``max_length`` of them."""
        tokens = self.normalizer.tokenize(text)
        return tokens if self.max_length is None else tokens[: self.max_length]

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

    def tokenize(self, text):
        """Returns the characters of the normalized ``text``, at most ``max_length`` of them."""
        chars = list(self.normalizer.normalize(text))
        return chars if self.max_length is None else chars[: self.max_length]

    def decode(self, ids):
        """Returns the characters of ``ids`` joined, padding ids dropped."""
        pad = self.vocabulary.pad_id
        return "".join(self.vocabulary.decode([i for i in ids if i != pad]))


_TOKENIZER_TYPES = {"word": PythonWordTokenizer, "char": PythonCharTokenizer}


def save_tokenizer(tokenizer, directory):
    """Writes ``vocabulary.json``, ``normalization.json`` and ``tokenizer.json`` into ``directory``.

    Accepts a Python twin or anything with ``to_python()`` (the graph tokenizers). Returns the
    spec dict that ``tokenizer.json`` holds, ready to embed in a bundle's ``nlpkit.json``.
    """
    if not isinstance(tokenizer, _PythonTokenizer) and hasattr(tokenizer, "to_python"):
        tokenizer = tokenizer.to_python()
    if not isinstance(tokenizer, _PythonTokenizer):
        raise TypeError(f"`tokenizer` must be a nlpkit tokenizer, received {type(tokenizer).__name__}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer.vocabulary.save(directory / VOCABULARY_FILE)
    tokenizer.normalizer.save(directory / NORMALIZATION_FILE)
    spec = dict(tokenizer.to_spec(), vocabulary=VOCABULARY_FILE, normalization=NORMALIZATION_FILE)
    text = json.dumps(spec, ensure_ascii=True, indent=1)
    (directory / TOKENIZER_FILE).write_text(text + "\n", encoding="utf-8")
    return spec


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
        spec = read_json(spec_path, "tokenizer spec")
    elif not isinstance(spec, dict):
        raise TypeError(f"`spec` must be a dict, received {type(spec).__name__}: {spec!r:.80}")
    kind = spec.get("type")
    if kind not in _TOKENIZER_TYPES:
        message = f"tokenizer 'type' must be one of {sorted(_TOKENIZER_TYPES)}, found {kind!r}"
        raise DataFormatError(message, path=spec_path)
    try:
        max_length = check_max_length(spec.get("max_length"))
    except ValueError as error:
        raise DataFormatError(str(error), path=spec_path) from error
    vocabulary = Vocabulary.load(directory / spec.get("vocabulary", VOCABULARY_FILE))
    normalizer = TextNormalizer.load(directory / spec.get("normalization", NORMALIZATION_FILE))
    return _TOKENIZER_TYPES[kind](vocabulary, normalizer, max_length=max_length)
