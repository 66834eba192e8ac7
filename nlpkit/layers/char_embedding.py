"""Word features from characters: a character CNN (Ma & Hovy, 2016) and casing classes.

Both layers read character ids shaped ``(batch, words, chars)``, right-padded with 0 on
both axes, and give one vector per word. They convert to TFLite built-in ops with any
number of words: a character *LSTM* would run its loop over a batch of "all words of the
sentence", a dynamic batch, and the converter refuses the TensorList that loop needs
(``TensorListReserve ... element_shape to be static``, measured here), so nlpkit's
character encoder is convolutional.
"""

import keras
import numpy as np
from keras import ops

# Character classes that casing is computed from.
CHAR_OTHER, CHAR_UPPER, CHAR_LOWER, CHAR_DIGIT = 0, 1, 2, 3

# Word casing classes, in id order (Reimers & Gurevych 2017 use a similar set).
CASINGS = (
    "padding",  # no characters: a padding position
    "numeric",  # only digits: "1996"
    "mainly_numeric",  # more than half digits: "1996-08-22"
    "contains_digit",  # some digits: "F16"
    "no_letters",  # no letters or digits: ",", "--"
    "all_upper",  # letters, none lowercase: "EU", "U.S."
    "initial_upper",  # first character uppercase, some lowercase: "Peter", "McDonald"
    "all_lower",  # letters, none uppercase: "rejects"
    "mixed",  # anything else: "iPhone"
)


def character_classes(characters):
    """The class of each character of a vocabulary, for `CasingFeatures`.

    Args:
        characters: list of str, the character vocabulary in id order (special tokens such
            as ``"<pad>"`` and ``"<unk>"`` included; anything longer than one character is
            class "other").

    Returns:
        list of int: ``CHAR_UPPER`` (1), ``CHAR_LOWER`` (2), ``CHAR_DIGIT`` (3) or
        ``CHAR_OTHER`` (0) per id.

    Example:
        >>> character_classes(["<pad>", "<unk>", "A", "b", "7", "."])
        [0, 0, 1, 2, 3, 0]
    """
    classes = []
    for character in characters:
        if len(character) != 1:
            classes.append(CHAR_OTHER)
        elif character.isdigit():
            classes.append(CHAR_DIGIT)
        elif character.isupper():
            classes.append(CHAR_UPPER)
        elif character.islower():
            classes.append(CHAR_LOWER)
        else:
            classes.append(CHAR_OTHER)
    return classes


def _flatten_words(char_ids):
    """``(batch, words, chars)`` -> ``(batch * words + 1, chars + 1)``: one word per row.

    One padding word and one padding character are added, so neither axis is ever empty
    (an empty sentence or a batch of padding words must still pass the convolution, which
    fails on an empty batch on CPU); `_unflatten_words` drops the extra word again.
    """
    char_ids = ops.cast(char_ids, "int32")
    shape = ops.shape(char_ids)
    # No -1 in the shape: with zero characters per word it would be ambiguous.
    flat = ops.reshape(char_ids, (shape[0] * shape[1], shape[2]))
    return ops.pad(flat, [[0, 1], [0, 1]]), shape


def _unflatten_words(values, shape):
    """Per-word values ``(batch * words + 1, ...)`` back to ``(batch, words, ...)``."""
    kept = values[: shape[0] * shape[1]]
    return ops.reshape(kept, (shape[0], shape[1]) + tuple(kept.shape[1:]))


@keras.saving.register_keras_serializable(package="nlpkit")
class CharacterCNN(keras.layers.Layer):
    """One vector per word from its characters: embedding -> convolution -> masked max.

    The layer of Ma & Hovy (2016, "End-to-end sequence labeling via bi-directional
    LSTM-CNNs-CRF"): characters are embedded, a 1-D convolution with ``"same"`` padding
    runs over each word, and the maximum over the word's real characters is its vector.
    Padding characters are zeroed before the convolution and left out of the maximum, so a
    word's vector does not depend on how much padding its batch has. A word without
    characters (a padding word) gets zeros.

    Args:
        vocabulary_size: int, number of character ids (id 0 is padding).
        embedding_dim: int, default 30. Size of the character embeddings.
        filters: int, default 50. Size of the word vectors (convolution filters).
        kernel_size: int, default 3. Characters each filter sees.
        activation: default "tanh". Applied to the convolution; bounded outputs also keep
            int8 quantization of the following layers accurate.
        dropout: float in [0, 1), default 0.0. Dropout on the character embeddings.
        seed: optional int for the dropout.

    Example:
        >>> layer = CharacterCNN(vocabulary_size=60, filters=16)
        >>> char_ids = np.array([[[5, 6, 7, 0], [8, 0, 0, 0], [0, 0, 0, 0]]])  # 3 words
        >>> tuple(layer(char_ids).shape)
        (1, 3, 16)
    """

    def __init__(
        self,
        vocabulary_size,
        embedding_dim=30,
        filters=50,
        kernel_size=3,
        activation="tanh",
        dropout=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (
            ("vocabulary_size", vocabulary_size),
            ("embedding_dim", embedding_dim),
            ("filters", filters),
            ("kernel_size", kernel_size),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout!r}")
        self.vocabulary_size = int(vocabulary_size)
        self.embedding_dim = int(embedding_dim)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.activation = keras.activations.get(activation)
        self.dropout = float(dropout)
        self.seed = seed
        self.embedding = keras.layers.Embedding(self.vocabulary_size, self.embedding_dim, name="char_embedding")
        self.embedding_dropout = keras.layers.Dropout(self.dropout, seed=seed, name="char_dropout")
        self.convolution = keras.layers.Conv1D(
            self.filters, self.kernel_size, padding="same", activation=activation, name="char_convolution"
        )

    def build(self, char_ids_shape):
        self.embedding.build((None, None))
        self.convolution.build((None, None, self.embedding_dim))
        self.built = True

    def call(self, char_ids, training=False):
        flat, shape = _flatten_words(char_ids)
        real = ops.not_equal(flat, 0)
        vectors = self.embedding(flat)
        vectors = self.embedding_dropout(vectors, training=training)
        # Zeros at padding: "same" padding then sees what it would at the end of a word.
        vectors = vectors * ops.expand_dims(ops.cast(real, vectors.dtype), -1)
        features = self.convolution(vectors)
        # The activation is bounded below by -1 (tanh) or 0 (relu); -1e4 is below any of them
        # and stays finite in float16.
        features = ops.where(ops.expand_dims(real, -1), features, ops.full_like(features, -1e4))
        pooled = ops.max(features, axis=1)
        has_chars = ops.any(real, axis=1, keepdims=True)
        pooled = ops.where(has_chars, pooled, ops.zeros_like(pooled))
        return _unflatten_words(pooled, shape)

    def compute_output_shape(self, char_ids_shape):
        return (char_ids_shape[0], char_ids_shape[1], self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "embedding_dim": self.embedding_dim,
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "activation": keras.activations.serialize(self.activation),
                "dropout": self.dropout,
                "seed": self.seed,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="nlpkit")
class CasingFeatures(keras.layers.Layer):
    """A learned vector per word casing class ("all_upper", "initial_upper", "numeric", ...).

    Words are classed from their character ids through ``char_classes`` (the class of each
    character id, from `character_classes`), so the casing survives a lowercased word
    vocabulary and needs no input besides the character ids. The classes are listed in
    `CASINGS`; a word's class is the first that applies, in that order.

    Args:
        char_classes: list of int, the class (``CHAR_*``) of every character id.
        output_dim: int, default 8. Size of each casing vector.

    Example:
        >>> classes = character_classes(["<pad>", "<unk>", "E", "U", "e", "1"])
        >>> layer = CasingFeatures(classes, output_dim=4)
        >>> np.asarray(layer.casing_ids(np.array([[[2, 3], [2, 4], [5, 0]]]))).tolist()  # EU, Ee, 1
        [[5, 6, 1]]
    """

    def __init__(self, char_classes, output_dim=8, **kwargs):
        super().__init__(**kwargs)
        classes = np.asarray(char_classes)
        if classes.ndim != 1 or classes.size == 0 or not np.isin(classes, (0, 1, 2, 3)).all():
            raise ValueError(
                "`char_classes` must be a non-empty list of character classes 0-3 (one per "
                f"character id). Received: char_classes={char_classes!r:.200}"
            )
        if isinstance(output_dim, bool) or not isinstance(output_dim, (int, np.integer)) or output_dim < 1:
            raise ValueError(f"`output_dim` must be a positive int. Received: output_dim={output_dim!r}")
        self.char_classes = [int(value) for value in classes]
        self.output_dim = int(output_dim)
        self.embedding = keras.layers.Embedding(len(CASINGS), self.output_dim, name="casing_embedding")

    def build(self, char_ids_shape):
        self.embedding.build((None, None))
        self.built = True

    def casing_ids(self, char_ids):
        """The casing class id (index into `CASINGS`) of every word, ``(batch, words)``."""
        flat, shape = _flatten_words(char_ids)
        # Ids the table does not know (a larger vocabulary than the model's) are "other".
        known = ops.less(flat, len(self.char_classes))
        classes = ops.take(ops.convert_to_tensor(np.asarray(self.char_classes, np.int32)), ops.where(known, flat, 0))
        real = ops.not_equal(flat, 0)

        def count(kind):
            return ops.sum(ops.cast(ops.logical_and(real, ops.equal(classes, kind)), "int32"), axis=1)

        length = ops.sum(ops.cast(real, "int32"), axis=1)
        upper, lower, digits = count(CHAR_UPPER), count(CHAR_LOWER), count(CHAR_DIGIT)
        first_upper = ops.equal(classes[:, 0], CHAR_UPPER)
        letters = upper + lower
        # The first matching rule wins: apply them in reverse so earlier rules overwrite.
        rules = [
            (ops.equal(length, 0), 0),
            (ops.equal(digits, length), 1),
            (ops.greater(2 * digits, length), 2),
            (ops.greater(digits, 0), 3),
            (ops.equal(letters, 0), 4),
            (ops.equal(lower, 0), 5),
            (first_upper, 6),
            (ops.equal(upper, 0), 7),
        ]
        casing = ops.full_like(length, 8)
        for condition, value in reversed(rules):
            casing = ops.where(condition, ops.full_like(casing, value), casing)
        return _unflatten_words(casing, shape)

    def call(self, char_ids):
        return self.embedding(self.casing_ids(char_ids))

    def compute_output_shape(self, char_ids_shape):
        return (char_ids_shape[0], char_ids_shape[1], self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update({"char_classes": list(self.char_classes), "output_dim": self.output_dim})
        return config
