"""Graph tokenizers: word and character tokenization as TensorFlow ops.

They run eagerly, inside ``tf.data.Dataset.map`` and inside a SavedModel, and give exactly the
ids of their pure-Python twins in ``nlpkit.text.python_tokenizers``: both apply the same explicit
normalization table (see ``nlpkit.text.normalization``) and split on " " only, so neither ICU
case folding nor RE2 character classes are involved.
"""

import tensorflow as tf

from nlpkit.text.python_tokenizers import (
    PythonCharTokenizer,
    PythonWordTokenizer,
    check_components,
    check_max_length,
    load_tokenizer,
    token_id_map,
)

__all__ = ["WordTokenizer", "CharTokenizer", "load_graph_tokenizer"]

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


_GRAPH_TYPES = {PythonWordTokenizer: WordTokenizer, PythonCharTokenizer: CharTokenizer}


def load_graph_tokenizer(directory, spec=None):
    """Builds the graph tokenizer from the files ``save_tokenizer`` wrote into ``directory``.

    Args:
        directory: str or Path holding ``tokenizer.json``, ``vocabulary.json`` and
            ``normalization.json``.
        spec: optional dict, default None (read ``directory/tokenizer.json``).
    """
    twin = load_tokenizer(directory, spec=spec)
    return _GRAPH_TYPES[type(twin)].from_python(twin)
