"""Graph tokenizers: word and character tokenization as TensorFlow ops.

They run eagerly, inside ``tf.data.Dataset.map`` and inside a SavedModel, and give exactly the
ids of their pure-Python twins in ``nlpkit.text.python_tokenizers``: both apply the same explicit
normalization table (see ``nlpkit.text.normalization``) and split on " " only, so neither ICU
case folding nor RE2 character classes are involved.
"""

import tensorflow as tf

from nlpkit.text.normalization import TextNormalizer
from nlpkit.text.python_tokenizers import (
    PythonCharTokenizer,
    PythonTaggingTokenizer,
    PythonWordTokenizer,
    check_components,
    check_max_length,
    load_tokenizer,
    token_id_map,
    whitespace_normalizer,
)
from nlpkit.text.regex_tokenizer import DEFAULT_DELIMITER_PATTERN, PythonRegexTokenizer
from nlpkit.text.vocabulary import Vocabulary

__all__ = [
    "WordTokenizer",
    "CharTokenizer",
    "TaggingTokenizer",
    "SentencePieceTokenizer",
    "RegexTokenizer",
    "load_graph_tokenizer",
]

# Table values are valid UTF-8, so an invalid byte can never be a real replacement string.
_UNMAPPED = b"\xff"


def _to_batch(texts):
    """Returns ``(texts as a [N] tf.string tensor, whether the input was a scalar)``."""
    texts = tf.convert_to_tensor(texts, dtype=tf.string)
    rank = texts.shape.rank
    if rank is None:
        raise ValueError(
            "tokenizer input must have a known rank of 0 or 1, received a tensor of unknown rank; "
            "give the tf.function an input_signature such as tf.TensorSpec([None], tf.string)"
        )
    if rank > 1:
        raise ValueError(
            f"tokenizer input must be a scalar or a vector of strings, received shape {texts.shape}"
        )
    if rank == 0:
        return tf.expand_dims(texts, 0), True
    return texts, False


class _GraphTokenizer(tf.Module):
    _twin_class = None

    def __init__(self, vocabulary, normalizer, max_length=None, name=None):
        super().__init__(name=name)
        check_components(vocabulary, normalizer)
        self._vocabulary = vocabulary
        self._normalizer = normalizer
        self.max_length = check_max_length(max_length)
        # The tables are attributes of the module so that tf.saved_model.save tracks and saves
        # them; they are built once here, never per call.
        table = normalizer.table
        if table:
            self._normalizer_table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant([key.encode("utf-8") for key in table], dtype=tf.string),
                    tf.constant([value.encode("utf-8") for value in table.values()], dtype=tf.string),
                ),
                default_value=tf.constant(_UNMAPPED, dtype=tf.string),
            )
        else:
            self._normalizer_table = None
        ids = token_id_map(vocabulary)
        self._vocabulary_table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant([token.encode("utf-8") for token in ids], dtype=tf.string),
                tf.constant(list(ids.values()), dtype=tf.int64),
            ),
            default_value=tf.constant(vocabulary.unk_id, dtype=tf.int64),
        )

    @property
    def vocabulary(self):
        """The ``Vocabulary`` the ids come from."""
        return self._vocabulary

    @property
    def normalizer(self):
        """The ``TextNormalizer`` whose table the graph applies."""
        return self._normalizer

    @classmethod
    def from_python(cls, twin):
        """Builds the graph tokenizer equivalent to a pure-Python twin."""
        if not isinstance(twin, cls._twin_class):
            raise TypeError(
                f"{cls.__name__}.from_python expects a {cls._twin_class.__name__}, "
                f"received {type(twin).__name__}"
            )
        return cls(twin.vocabulary, twin.normalizer, max_length=twin.max_length)

    def to_python(self):
        """Returns the pure-Python twin (same vocabulary, normalizer and max_length)."""
        return self._twin_class(self._vocabulary, self._normalizer, max_length=self.max_length)

    def to_spec(self):
        """Returns the same spec dict as the twin's ``to_spec()``."""
        return self.to_python().to_spec()

    def _normalize(self, texts):
        """[N] strings -> [N] normalized strings; invalid UTF-8 becomes U+FFFD like Python's decoder."""
        chars = tf.strings.unicode_split(texts, "UTF-8", errors="replace")
        if self._normalizer_table is not None:
            flat = chars.flat_values
            mapped = self._normalizer_table.lookup(flat)
            chars = chars.with_flat_values(tf.where(tf.equal(mapped, _UNMAPPED), flat, mapped))
        return tf.strings.reduce_join(chars, axis=-1)

    def _split(self, normalized):
        raise NotImplementedError

    def _tokenize_batch(self, texts):
        tokens = self._split(self._normalize(texts))
        if self.max_length is not None:
            tokens = tokens[:, : self.max_length]
        return tokens

    def tokenize(self, texts):
        """Returns string tokens: 1-D for a scalar input, a RaggedTensor [N, None] for a batch."""
        batch, scalar = _to_batch(texts)
        tokens = self._tokenize_batch(batch)
        return tokens[0] if scalar else tokens

    def __call__(self, texts):
        """Returns int32 ids: a 1-D tensor for a scalar input, a RaggedTensor [N, None] for a batch."""
        batch, scalar = _to_batch(texts)
        tokens = self._tokenize_batch(batch)
        flat_ids = self._vocabulary_table.lookup(tokens.flat_values)
        ids = tokens.with_flat_values(tf.cast(flat_ids, tf.int32))
        return ids[0] if scalar else ids


class WordTokenizer(_GraphTokenizer):
    """Word tokenizer as TensorFlow ops; the graph twin of ``PythonWordTokenizer``.

    Normalizes with the ``TextNormalizer`` table (a string -> string hash table over the UTF-8
    characters), splits on " ", drops empty pieces, keeps the first ``max_length`` tokens and
    looks up int32 ids. Unknown words and the padding token itself map to ``unk_id``.

    Args:
        vocabulary: Vocabulary. Id 0 is padding.
        normalizer: TextNormalizer. Its explicit table is copied into the graph.
        max_length: optional int, default None. Keep only the first ``max_length`` tokens.
        name: optional str, the tf.Module name.

    Example:
        >>> from nlpkit.text import TextNormalizer, Vocabulary
        >>> normalizer = TextNormalizer()
        >>> vocab = Vocabulary.build([normalizer.tokenize("a fine film , a fine cast")])
        >>> tokenizer = WordTokenizer(vocab, normalizer)
        >>> tokenizer(["A fine mess!", ""]).to_list()
        [[2, 3, 1, 1], []]
        >>> tokenizer("Fine FILM").numpy().tolist()
        [3, 6]
    """

    _twin_class = PythonWordTokenizer

    def _split(self, normalized):
        pieces = tf.strings.split(normalized, sep=" ")
        return tf.ragged.boolean_mask(pieces, tf.strings.length(pieces) > 0)


class CharTokenizer(_GraphTokenizer):
    """Character tokenizer as TensorFlow ops; the graph twin of ``PythonCharTokenizer``.

    Every Unicode character of the normalized text is a token (spaces included), truncated to
    ``max_length``; unknown characters map to ``unk_id``.

    Args:
        vocabulary: Vocabulary of single characters. Id 0 is padding.
        normalizer: TextNormalizer applied first; use ``TextNormalizer(False, False, False)``
            to keep case, punctuation and newlines untouched (character language models).
        max_length: optional int, default None. Keep only the first ``max_length`` characters.
        name: optional str, the tf.Module name.

    Example:
        >>> from nlpkit.text import TextNormalizer, Vocabulary
        >>> tokenizer = CharTokenizer(Vocabulary(["a", "b", "\\n"]), TextNormalizer(False, False, False))
        >>> tokenizer(["ab\\nc", "B"]).to_list()
        [[2, 3, 4, 1], [1]]
    """

    _twin_class = PythonCharTokenizer

    def _split(self, normalized):
        return tf.strings.unicode_split(normalized, "UTF-8", errors="replace")


class TaggingTokenizer(tf.Module):
    """A sequence tagger's tokenizer as TensorFlow ops; the graph twin of ``PythonTaggingTokenizer``.

    Splits texts at whitespace (and control characters) only, then gives every token a word
    id (token normalized, looked up in the word vocabulary) and the ids of its first
    ``max_word_length`` characters, case kept. Ids equal the twin's on any input.

    Args:
        vocabulary: Vocabulary of normalized word forms. Id 0 is padding.
        normalizer: TextNormalizer applied to each token before the word lookup; it must not
            split tokens (``split_punctuation=False``).
        char_vocabulary: Vocabulary of single characters. Id 0 is padding.
        max_length: optional int, default None. Keep only the first ``max_length`` tokens.
        max_word_length: int, default 20. Characters kept per token.
        name: optional str, the tf.Module name.

    Example:
        >>> from nlpkit.text import TextNormalizer, Vocabulary
        >>> tokenizer = TaggingTokenizer(Vocabulary(["the", "u.s."]), TextNormalizer(split_punctuation=False),
        ...                              Vocabulary(list("TheU.S")))
        >>> word_ids, char_ids = tokenizer(["The U.S.", ""])
        >>> word_ids.to_list(), char_ids.to_list()
        ([[2, 3], []], [[[2, 3, 4], [5, 6, 7, 6]], []])
    """

    _twin_class = PythonTaggingTokenizer

    def __init__(self, vocabulary, normalizer, char_vocabulary, max_length=None, max_word_length=20, name=None):
        super().__init__(name=name)
        # The twin validates every argument, and holds the settings this module mirrors.
        self._twin = PythonTaggingTokenizer(
            vocabulary, normalizer, char_vocabulary, max_length=max_length, max_word_length=max_word_length
        )
        self.max_length = self._twin.max_length
        self.max_word_length = self._twin.max_word_length
        self._splitter = WordTokenizer(Vocabulary([]), whitespace_normalizer(), max_length=max_length)
        self._words = WordTokenizer(vocabulary, normalizer)
        keep_characters = TextNormalizer(False, False, False, table={})
        self._chars = CharTokenizer(char_vocabulary, keep_characters, max_length=max_word_length)

    @property
    def vocabulary(self):
        """The word ``Vocabulary``."""
        return self._twin.vocabulary

    @property
    def normalizer(self):
        """The ``TextNormalizer`` applied to each token before the word lookup."""
        return self._twin.normalizer

    @property
    def char_vocabulary(self):
        """The character ``Vocabulary``."""
        return self._twin.char_vocabulary

    @classmethod
    def from_python(cls, twin):
        """Builds the graph tokenizer equivalent to a ``PythonTaggingTokenizer``."""
        if not isinstance(twin, PythonTaggingTokenizer):
            raise TypeError(f"TaggingTokenizer.from_python expects a PythonTaggingTokenizer, received {type(twin).__name__}")
        return cls(twin.vocabulary, twin.normalizer, twin.char_vocabulary, twin.max_length, twin.max_word_length)

    def to_python(self):
        """Returns the pure-Python twin."""
        return self._twin

    def to_spec(self):
        """Returns the same spec dict as the twin's ``to_spec()``."""
        return self._twin.to_spec()

    def tokenize(self, texts):
        """Tokens of a batch of texts, case kept: a RaggedTensor ``[N, None]`` of strings.

        A scalar text gives a 1-D tensor of its tokens.
        """
        return self._splitter.tokenize(texts)

    def encode_tokens(self, tokens):
        """``(word_ids, char_ids)`` of a RaggedTensor ``[N, None]`` of tokens.

        Returns int32 RaggedTensors ``[N, None]`` and ``[N, None, None]``. Tokens are taken
        as they are (not split again, ``max_length`` not applied).
        """
        flat = tokens.flat_values
        words = self._words
        word_ids = tf.cast(words._vocabulary_table.lookup(words._normalize(flat)), tf.int32)
        char_ids = self._chars(flat)
        return tokens.with_flat_values(word_ids), tokens.with_flat_values(char_ids)

    def __call__(self, texts):
        """``(word_ids, char_ids)`` of a batch of texts ``[N]``, as in `encode_tokens`."""
        batch, scalar = _to_batch(texts)
        word_ids, char_ids = self.encode_tokens(self.tokenize(batch))
        return (word_ids[0], char_ids[0]) if scalar else (word_ids, char_ids)


class SentencePieceTokenizer(tf.Module):
    """SentencePiece subword tokenization as TensorFlow ops (tensorflow-text), for SavedModels.

    Runs the model proto of a `nlpkit.text.subword.PythonSentencePieceTokenizer` through
    ``tensorflow_text.SentencepieceTokenizer`` (the same C++ library), so it gives the
    twin's ids: tested on real text, empty strings, characters never seen in training and
    invalid UTF-8 (replaced by U+FFFD first, as the twin's decoder does). A SavedModel
    that uses it needs ``import tensorflow_text`` before loading, which registers the op.

    Args:
        model_proto: bytes of the SentencePiece model.
        max_length: optional int >= 1; keep at most this many ids per text.
        name: optional module name.

    Example:
        >>> from nlpkit.text.subword import PythonSentencePieceTokenizer
        >>> twin = PythonSentencePieceTokenizer.train(["Ein Hund läuft.", "A dog runs."], vocabulary_size=40)
        >>> graph = SentencePieceTokenizer.from_python(twin)
        >>> graph(tf.constant(["Ein Hund.", ""])).to_list() == twin.encode_batch(["Ein Hund.", ""])
        True
    """

    def __init__(self, model_proto, max_length=None, name=None):
        super().__init__(name=name)
        import tensorflow_text

        from nlpkit.text.subword import PythonSentencePieceTokenizer

        # Validates the proto and its special ids once, in Python.
        self._twin = PythonSentencePieceTokenizer(model_proto, max_length=max_length)
        self.max_length = self._twin.max_length
        self._tokenizer = tensorflow_text.SentencepieceTokenizer(model=self._twin.model_proto, out_type=tf.int32)

    @classmethod
    def from_python(cls, twin):
        """The graph tokenizer of a `PythonSentencePieceTokenizer`."""
        from nlpkit.text.subword import PythonSentencePieceTokenizer

        if not isinstance(twin, PythonSentencePieceTokenizer):
            raise TypeError(
                f"SentencePieceTokenizer.from_python expects a PythonSentencePieceTokenizer, "
                f"received {type(twin).__name__}"
            )
        return cls(twin.model_proto, max_length=twin.max_length)

    def to_python(self):
        """The pure-Python twin (same model and max_length)."""
        return self._twin

    def to_spec(self):
        return self._twin.to_spec()

    @property
    def vocabulary_size(self):
        return self._twin.vocabulary_size

    def _ids(self, batch):
        valid = tf.strings.unicode_transcode(
            batch, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD
        )
        ids = self._tokenizer.tokenize(valid)
        if self.max_length is not None:
            ids = ids[:, : self.max_length]
        return ids

    def __call__(self, texts):
        """int32 ids: 1-D for a scalar input, a RaggedTensor ``[N, None]`` for a batch."""
        batch, scalar = _to_batch(texts)
        ids = self._ids(batch)
        return ids[0] if scalar else ids

    def tokenize(self, texts):
        """The pieces as strings, shaped like `__call__`'s ids."""
        batch, scalar = _to_batch(texts)
        pieces = self._tokenizer.id_to_string(self._ids(batch))
        return pieces[0] if scalar else pieces

    def detokenize(self, ids):
        """Texts of int ids ``[N, None]`` (ragged or dense); padding, start and end ids are dropped."""
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.RaggedTensor.from_tensor(tf.convert_to_tensor(ids))
        ids = tf.cast(ids, tf.int32)
        # Pad, bos and eos (0, 2, 3) are dropped as the twin's decode drops them; <unk> (1) stays.
        flat = ids.flat_values
        keep = tf.logical_or(flat > 3, tf.equal(flat, 1))
        ids = tf.ragged.boolean_mask(ids, ids.with_flat_values(keep))
        return self._tokenizer.detokenize(ids)


class RegexTokenizer(tf.Module):
    """MediaPipe's RegexTokenizer as TensorFlow ops; the graph twin of `PythonRegexTokenizer`.

    Splits with RE2 (tensorflow-text's ``regex_split``, the engine and loop MediaPipe uses),
    after cutting each text at its first NUL character and replacing invalid UTF-8 by U+FFFD
    as the twin's decoder does; then looks every token up as it is (no normalization),
    puts the ``<START>`` id first when the vocabulary has one and keeps ``max_length`` ids.
    A SavedModel that uses it needs ``import tensorflow_text`` before loading.

    Args:
        vocabulary: Vocabulary with special tokens ``("<PAD>", "<UNKNOWN>")``.
        delimiter_pattern: str, default ``r"[^\\w']+"``. RE2 pattern of the text between tokens.
        max_length: optional int, default None.
        name: optional str, the tf.Module name.

    Example:
        >>> from nlpkit.text import PythonRegexTokenizer
        >>> twin = PythonRegexTokenizer.build(["A fine film.", "A fine, fine cast!"])
        >>> RegexTokenizer.from_python(twin)(["a FINE film...", ""]).to_list()
        [[1, 1, 5], []]
    """

    def __init__(self, vocabulary, delimiter_pattern=DEFAULT_DELIMITER_PATTERN, max_length=None, name=None):
        super().__init__(name=name)
        import tensorflow_text

        # The twin validates every argument and holds the settings this module mirrors.
        self._twin = PythonRegexTokenizer(vocabulary, delimiter_pattern, max_length=max_length)
        self.max_length = self._twin.max_length
        self.delimiter_pattern = delimiter_pattern
        self._regex_split = tensorflow_text.regex_split
        try:  # RE2 rejects some patterns Python accepts; say so now, not at the first call
            tf.strings.regex_full_match("", delimiter_pattern)
        except tf.errors.InvalidArgumentError as error:
            raise ValueError(f"delimiter pattern {delimiter_pattern!r} is not a valid RE2 pattern: {error.message}") from None
        tokens = vocabulary.tokens
        self._vocabulary_table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant([token.encode("utf-8") for token in tokens], dtype=tf.string),
                tf.range(len(tokens), dtype=tf.int64),
            ),
            default_value=tf.constant(vocabulary.unk_id, dtype=tf.int64),
        )

    @property
    def vocabulary(self):
        return self._twin.vocabulary

    @classmethod
    def from_python(cls, twin):
        """The graph tokenizer of a `PythonRegexTokenizer`."""
        if not isinstance(twin, PythonRegexTokenizer):
            raise TypeError(f"RegexTokenizer.from_python expects a PythonRegexTokenizer, received {type(twin).__name__}")
        return cls(twin.vocabulary, twin.delimiter_pattern, max_length=twin.max_length)

    def to_python(self):
        """The pure-Python twin."""
        return self._twin

    def to_spec(self):
        return self._twin.to_spec()

    def _tokens(self, batch):
        valid = tf.strings.unicode_transcode(batch, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD)
        # MediaPipe reads the text as a C string: nothing after the first NUL exists.
        before_nul = tf.strings.regex_replace(valid, r"(?s)\x00.*", "", replace_global=False)
        return self._regex_split(before_nul, self.delimiter_pattern)

    def _ids(self, batch):
        tokens = self._tokens(batch)
        ids = tokens.with_flat_values(tf.cast(self._vocabulary_table.lookup(tokens.flat_values), tf.int32))
        start_id = self._twin.start_id
        if start_id is not None:
            start = tf.fill([ids.nrows(), 1], tf.constant(start_id, tf.int32))
            ids = tf.concat([start, ids], axis=1)
        if self.max_length is not None:
            ids = ids[:, : self.max_length]
        return ids

    def tokenize(self, texts):
        """String tokens (the start token not included): 1-D for a scalar, RaggedTensor ``[N, None]`` for a batch."""
        batch, scalar = _to_batch(texts)
        tokens = self._tokens(batch)
        if self.max_length is not None:
            tokens = tokens[:, : max(self.max_length - (self._twin.start_id is not None), 0)]
        return tokens[0] if scalar else tokens

    def __call__(self, texts):
        """int32 ids: 1-D for a scalar input, a RaggedTensor ``[N, None]`` for a batch."""
        batch, scalar = _to_batch(texts)
        ids = self._ids(batch)
        return ids[0] if scalar else ids


_GRAPH_TYPES = {
    PythonWordTokenizer: WordTokenizer,
    PythonCharTokenizer: CharTokenizer,
    PythonTaggingTokenizer: TaggingTokenizer,
    PythonRegexTokenizer: RegexTokenizer,
}


def load_graph_tokenizer(directory, spec=None):
    """Builds the graph tokenizer from the files ``save_tokenizer`` wrote into ``directory``.

    Args:
        directory: str or Path holding ``tokenizer.json``, ``vocabulary.json`` and
            ``normalization.json``.
        spec: optional dict, default None (read ``directory/tokenizer.json``).
    """
    twin = load_tokenizer(directory, spec=spec)
    if twin.kind == "sentencepiece":
        return SentencePieceTokenizer.from_python(twin)
    return _GRAPH_TYPES[type(twin)].from_python(twin)
