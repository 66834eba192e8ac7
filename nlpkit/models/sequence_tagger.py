"""Sequence tagger: word + character features -> bidirectional recurrent encoder -> CRF or softmax.

The model owns its tag vocabulary and tag scheme (as flair's tagger does): it trains on
tag ids of ``tags`` in ``scheme`` (BIOES by default, which lets a CRF learn where entities
end) and reads and writes tags in ``output_scheme``, the scheme of the data (BIO for
CoNLL-2003). Conversions go through `nlpkit.text.tag_schemes`, conlleval's chunk rule,
so a converted sequence always has the chunks conlleval reads in the original.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

# keras.src: how Keras' own metrics attach and read masks (as in nlpkit.layers.crf).
from keras.src.backend import set_keras_mask
from keras.src.losses.loss import scale_loss_for_distribution

from nlpkit.layers.crf import OwnLossCompile
from nlpkit.layers import CRF, Bidirectional, CasingFeatures, CharacterCNN, recurrent_layer
from nlpkit.models.task import TaskModel
from nlpkit.text.tag_schemes import (
    chunk_boundary,
    convert_tags,
    normalize_scheme,
    parse_tag,
    validate_tags,
)

HEADS = ("crf", "softmax")
INPUT_NAMES = ("word_ids", "char_ids")


def pad_tagging_batch(word_ids, char_ids):
    """Right-pads a batch of sentences into ``{"word_ids", "char_ids"}`` int32 arrays.

    Args:
        word_ids: list of lists of int, one list per sentence.
        char_ids: list (per sentence) of lists (per token) of lists of int.

    Returns:
        dict with ``word_ids`` ``(batch, time)`` and ``char_ids`` ``(batch, time, chars)``;
        ``time`` and ``chars`` are at least 1, so empty sentences keep a (masked) step.

    Example:
        >>> batch = pad_tagging_batch([[4, 5], []], [[[3, 4], [5]], []])
        >>> batch["word_ids"].tolist(), batch["char_ids"].shape
        ([[4, 5], [0, 0]], (2, 2, 2))
    """
    if len(word_ids) != len(char_ids):
        raise ValueError(f"word_ids and char_ids hold {len(word_ids)} and {len(char_ids)} sentences")
    time = max([1] + [len(sentence) for sentence in word_ids])
    chars = max([1] + [len(token) for sentence in char_ids for token in sentence])
    words = np.zeros((len(word_ids), time), np.int32)
    characters = np.zeros((len(word_ids), time, chars), np.int32)
    for row, (sentence, sentence_chars) in enumerate(zip(word_ids, char_ids)):
        if len(sentence) != len(sentence_chars):
            raise ValueError(
                f"sentence {row} has {len(sentence)} word ids but {len(sentence_chars)} character lists"
            )
        words[row, : len(sentence)] = sentence
        for position, token in enumerate(sentence_chars):
            characters[row, position, : len(token)] = token
    return {"word_ids": words, "char_ids": characters}


class TagConversionTables:
    """Tables that rewrite tag ids of one scheme as tag strings of another, in a graph.

    Whether a chunk starts at a token depends only on the token's tag and the previous one,
    whether it ends there only on the tag and the next one (conlleval's rule,
    `nlpkit.text.tag_schemes.chunk_boundary`). So the tag a token gets in any scheme is a
    function of three adjacent tags, and two pair tables give it: the result equals
    `convert_tags` on every sequence, malformed ones included.

    Args:
        tags: list of str, the tags of the ids, in ``scheme``.
        scheme: str, the scheme of ``tags``.
        output_scheme: str, the scheme to write.

    Example:
        >>> tables = TagConversionTables(["O", "B-PER", "I-PER", "E-PER", "S-PER"], "BIOES", "BIO")
        >>> tables.convert(tf.constant([[1, 3, 4, 0]]), tf.constant([[True, True, True, False]])).numpy()
        array([[b'B-PER', b'I-PER', b'B-PER', b'']], dtype=object)
    """

    _PREFIXES = ("B", "I", "E", "S")

    def __init__(self, tags, scheme, output_scheme):
        self.scheme = normalize_scheme(scheme)
        self.output_scheme = normalize_scheme(output_scheme)
        tags = validate_tags(tags, self.scheme)
        size = len(tags) + 1  # id len(tags): the "O" before and after every sentence
        effective = list(tags) + ["O"]
        self.boundary_id = len(tags)
        self.starts = np.zeros((size, size), bool)
        self.ends = np.zeros((size, size), bool)
        for previous in range(size):
            for current in range(size):
                self.ends[previous, current], self.starts[previous, current] = chunk_boundary(
                    effective[previous], effective[current]
                )
        self.types = sorted({parse_tag(tag)[1] for tag in tags if tag != "O"})
        index = {type_: position for position, type_ in enumerate(self.types)}
        self.type_ids = np.array([-1 if tag == "O" else index[parse_tag(tag)[1]] for tag in effective], np.int32)
        self.output_tags = ["O"] + [f"{prefix}-{type_}" for type_ in self.types for prefix in self._PREFIXES]

    def convert(self, tag_ids, mask):
        """Tag strings ``(batch, time)`` in ``output_scheme``; ``""`` where ``mask`` is false.

        ``mask`` must be right-padded (each row's tokens form a prefix).
        """
        size = self.boundary_id + 1
        ids = tf.where(mask, tf.cast(tag_ids, tf.int32), self.boundary_id)
        edge = tf.fill([tf.shape(ids)[0], 1], self.boundary_id)
        previous = tf.concat([edge, ids[:, :-1]], axis=1)
        following = tf.concat([ids[:, 1:], edge], axis=1)
        starts = tf.gather(tf.constant(self.starts.reshape(-1)), previous * size + ids)
        ends = tf.gather(tf.constant(self.ends.reshape(-1)), ids * size + following)
        type_table = tf.constant(self.type_ids)
        types = tf.gather(type_table, ids)
        begin, inside, end, single = (tf.fill(tf.shape(ids), code) for code in range(4))
        if self.output_scheme == "BIO":
            prefix = tf.where(starts, begin, inside)
        elif self.output_scheme == "IOB1":
            # B only where a chunk of the same type ends right before this one starts.
            after_same_type = tf.equal(tf.gather(type_table, previous), types)
            prefix = tf.where(tf.logical_and(starts, after_same_type), begin, inside)
        else:
            prefix = tf.where(
                tf.logical_and(starts, ends), single, tf.where(starts, begin, tf.where(ends, end, inside))
            )
        index = tf.where(types >= 0, 1 + types * len(self._PREFIXES) + prefix, 0)
        strings = tf.gather(tf.constant(self.output_tags), index)
        return tf.where(mask, strings, tf.constant(""))


@keras.saving.register_keras_serializable(package="nlpkit")
class TaggerMember(keras.layers.Layer):
    """One encoder of a `SequenceTagger`: token features -> bidirectional recurrent stack -> tag scores.

    Joins the word vectors it is given (the tagger's embedding, shared by all members) with
    its own character CNN vector (`nlpkit.layers.CharacterCNN`) and casing vector
    (`nlpkit.layers.CasingFeatures`), applies dropout, ``num_layers`` bidirectional
    recurrent layers from `nlpkit.layers` with dropout between them, dropout again and one
    score per tag. The arguments mean what they mean for `SequenceTagger`.

    Example:
        >>> member = TaggerMember(num_tags=5, char_vocabulary_size=80, char_classes=classes)
        >>> scores = member(word_vectors, char_ids, mask)   # (batch, time, 5)
    """

    # The constructor arguments after ``num_tags``; `SequenceTagger` passes them through.
    ARGUMENTS = (
        "char_vocabulary_size", "char_classes", "char_embedding_dim", "char_filters", "char_kernel_size",
        "casing_dim", "cell", "units", "num_layers", "dropout", "recurrent_dropout", "char_dropout",
    )

    def __init__(
        self,
        num_tags,
        char_vocabulary_size=0,
        char_classes=None,
        char_embedding_dim=30,
        char_filters=50,
        char_kernel_size=3,
        casing_dim=8,
        cell="lstm",
        units=100,
        num_layers=1,
        dropout=0.5,
        recurrent_dropout=0.0,
        char_dropout=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_tags = int(num_tags)
        self.char_vocabulary_size = int(char_vocabulary_size)
        self.char_classes = None if char_classes is None else [int(value) for value in char_classes]
        self.char_embedding_dim = char_embedding_dim
        self.char_filters = char_filters
        self.char_kernel_size = char_kernel_size
        self.casing_dim = int(casing_dim)
        self.cell = cell
        self.units = int(units)
        self.num_layers = int(num_layers)
        self.dropout = float(dropout)
        self.recurrent_dropout = float(recurrent_dropout)
        self.char_dropout = float(char_dropout)

        self.char_encoder = None
        if self.char_vocabulary_size:
            self.char_encoder = CharacterCNN(
                self.char_vocabulary_size,
                embedding_dim=char_embedding_dim,
                filters=char_filters,
                kernel_size=char_kernel_size,
                dropout=self.char_dropout,
                name="char_cnn",
            )
        self.casing = CasingFeatures(self.char_classes, self.casing_dim, name="casing") if self.casing_dim else None
        self.feature_dropout = keras.layers.Dropout(self.dropout, name="feature_dropout")
        self.encoder_layers = []
        self.between_dropouts = []
        for index in range(self.num_layers):
            layer = recurrent_layer(
                cell, self.units, return_sequences=True, recurrent_dropout=self.recurrent_dropout, name=f"{cell}_{index}"
            )
            self.encoder_layers.append(Bidirectional(layer, name=f"bidirectional_{index}"))
            if index < self.num_layers - 1:
                self.between_dropouts.append(keras.layers.Dropout(self.dropout, name=f"dropout_{index}"))
        self.output_dropout = keras.layers.Dropout(self.dropout, name="output_dropout")
        self.scores = keras.layers.Dense(self.num_tags, dtype="float32", name="scores")

    def call(self, word_vectors, char_ids, mask, training=False):
        features = [word_vectors]
        if self.char_encoder is not None:
            features.append(ops.cast(self.char_encoder(char_ids, training=training), word_vectors.dtype))
        if self.casing is not None:
            features.append(ops.cast(self.casing(char_ids), word_vectors.dtype))
        x = ops.concatenate(features, axis=-1) if len(features) > 1 else features[0]
        x = self.feature_dropout(x, training=training)
        for index, layer in enumerate(self.encoder_layers):
            x = layer(x, mask=mask, training=training)
            if index < len(self.between_dropouts):
                x = self.between_dropouts[index](x, training=training)
        x = self.output_dropout(x, training=training)
        return self.scores(x)

    def compute_output_shape(self, word_vectors_shape, char_ids_shape=None, mask_shape=None):
        return tuple(word_vectors_shape[:-1]) + (self.num_tags,)

    def get_config(self):
        config = super().get_config()
        config["num_tags"] = self.num_tags
        config.update({name: getattr(self, name) for name in self.ARGUMENTS})
        return config


@keras.saving.register_keras_serializable(package="nlpkit")
class SequenceTagger(TaskModel, OwnLossCompile, keras.Model):
    """Tags every token of right-padded sentences: BiLSTM/BiGRU over word and character features.

    Each token is the concatenation of a word embedding (ids from a word vocabulary, 0 =
    padding), a character CNN vector (`nlpkit.layers.CharacterCNN`) and a casing vector
    (`nlpkit.layers.CasingFeatures`, computed from the character ids). Dropout, then
    ``num_layers`` bidirectional recurrent layers from `nlpkit.layers`, dropout, and one
    score per tag. The ``"crf"`` head (`nlpkit.layers.CRF`, with the transitions the scheme
    forbids ruled out) trains on the sentence log-likelihood and decodes with Viterbi; the
    ``"softmax"`` head trains on per-token cross-entropy and decodes with argmax.

    With ``ensemble_size=N > 1`` the model holds N independently initialised encoders
    (`TaggerMember`: character CNN, casing, recurrent stack and scores), each with its own
    CRF, over the one word embedding. In training every member learns from its own loss
    (``model(inputs, training=True)`` returns ``(batch, time, N, len(tags))``); the model
    scores with the mean of the members' emissions and of their CRF transitions, so Viterbi
    finds the path with the best mean sentence score. One ``model.fit`` trains them all.

    ``model(inputs)`` returns the per-token scores ``(batch, time, len(tags))`` (CRF
    emissions, or softmax logits; an ensemble's mean); ``predict`` and `decode` return tag ids (int32, 0 at
    padding). Inputs are a dict ``{"word_ids": (batch, time), "char_ids": (batch, time,
    chars)}`` (or the pair in that order). ``fit`` takes tag ids ``(batch, time)`` as
    targets (any value at padding) with ``compile`` given no loss, like `nlpkit.layers.CRFModel`;
    compiled metrics see decoded tag ids. Padding never counts: both sides read ``"O"``
    there (so `nlpkit.metrics.SpanF1` finds no entity in it), the prediction carries the
    padding mask (token accuracy skips it), and ``weighted_metrics`` get zero weight there.

    Args:
        vocabulary_size: int, number of word ids (padding and unknown included).
        tags: list of str, the tag vocabulary in id order, in ``scheme`` (e.g.
            ``scheme_tags(["LOC", "PER"], "BIOES")``).
        scheme: str, default "BIOES". The scheme of ``tags``: "BIO", "IOB1" or "BIOES".
        output_scheme: str or None, default None (= ``scheme``). The scheme `encode_tags`
            reads and `decode_tags` and the SavedModel write.
        char_vocabulary_size: int, default 0. Number of character ids; 0 turns the
            character CNN off.
        char_classes: list of int or None. The class of every character id
            (`nlpkit.layers.character_classes`); needed for casing features.
        word_embedding_dim: int, default 100.
        char_embedding_dim: int, default 30.
        char_filters: int, default 50. Size of each word's character vector.
        char_kernel_size: int, default 3.
        casing_dim: int, default 8. Size of the casing vector; 0 turns casing off.
        cell: "lstm" (default) or "gru".
        units: int, default 100. Hidden size per direction.
        num_layers: int, default 1.
        dropout: float, default 0.5. On the token features, between layers and before the
            output layer (Lample et al. 2016 use 0.5).
        recurrent_dropout: float, default 0.0. Variational dropout inside the recurrence.
        char_dropout: float, default 0.0. Dropout on the character embeddings.
        word_dropout: float, default 0.05. In training, each word id becomes ``unknown_id``
            with this probability, so the unknown-word vector learns to stand for words
            never seen in training.
        unknown_id: int, default 1. The unknown-word id.
        rare_word_start: int, default 0. Word ids from this one up are rare words (with a
            vocabulary ordered by training frequency, the first id of the words seen once:
            Lample et al. 2016 replace those singletons by the unknown word with probability
            0.5); 0 marks none.
        rare_word_dropout: float, default 0.0. In training, a rare word becomes
            ``unknown_id`` with this probability instead of ``word_dropout``.
        head: "crf" (default) or "softmax".
        trainable_embeddings: bool, default True.
        ensemble_size: int, default 1. Number of encoders whose scores are averaged.

    Example:
        >>> tags = ["O", "B-PER", "I-PER", "E-PER", "S-PER"]
        >>> model = SequenceTagger(vocabulary_size=500, tags=tags, scheme="BIOES",
        ...                        output_scheme="BIO", char_vocabulary_size=80,
        ...                        char_classes=character_classes(char_vocabulary.tokens))
        >>> model.compile(optimizer="adam", metrics=[SpanF1(tags, "BIOES")])
        >>> model.fit(dataset, epochs=10)                     # ({"word_ids", "char_ids"}, tag ids)
        >>> model.decode_tags(model.predict(batch)[0][:n])    # ["B-PER", "I-PER", "O", ...]
    """

    OWN_LOSS = "its head's own loss (CRF log-likelihood or token cross-entropy)"
    task = "tagging"

    def __init__(
        self,
        vocabulary_size,
        tags,
        scheme="BIOES",
        output_scheme=None,
        char_vocabulary_size=0,
        char_classes=None,
        word_embedding_dim=100,
        char_embedding_dim=30,
        char_filters=50,
        char_kernel_size=3,
        casing_dim=8,
        cell="lstm",
        units=100,
        num_layers=1,
        dropout=0.5,
        recurrent_dropout=0.0,
        char_dropout=0.0,
        word_dropout=0.05,
        unknown_id=1,
        rare_word_start=0,
        rare_word_dropout=0.0,
        head="crf",
        trainable_embeddings=True,
        ensemble_size=1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.scheme = normalize_scheme(scheme)
        self.output_scheme = self.scheme if output_scheme is None else normalize_scheme(output_scheme)
        if isinstance(tags, str) or not tags:
            raise ValueError(f"`tags` must be a non-empty list of str. Received: tags={tags!r}")
        tags = list(validate_tags(list(tags), self.scheme))
        if len(set(tags)) != len(tags):
            raise ValueError(f"`tags` must be unique. Received: tags={tags!r}")
        if head not in HEADS:
            raise ValueError(f"`head` must be one of {HEADS}. Received: head={head!r}")
        for name, value in (("vocabulary_size", vocabulary_size), ("units", units), ("num_layers", num_layers),
                            ("word_embedding_dim", word_embedding_dim), ("ensemble_size", ensemble_size)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
        for name, value in (("char_vocabulary_size", char_vocabulary_size), ("casing_dim", casing_dim)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"`{name}` must be an int >= 0. Received: {name}={value!r}")
        for name, rate in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout),
                           ("char_dropout", char_dropout), ("word_dropout", word_dropout),
                           ("rare_word_dropout", rare_word_dropout)):
            if not 0.0 <= rate < 1.0:
                raise ValueError(f"`{name}` must be in [0, 1). Received: {name}={rate!r}")
        if (isinstance(rare_word_start, bool) or not isinstance(rare_word_start, (int, np.integer))
                or rare_word_start < 0):
            raise ValueError(f"`rare_word_start` must be an int >= 0. Received: rare_word_start={rare_word_start!r}")
        if casing_dim and char_classes is None:
            raise ValueError(
                "casing features need `char_classes` (nlpkit.layers.character_classes of the "
                f"character vocabulary); pass them or set casing_dim=0. Received: casing_dim={casing_dim}"
            )
        self.vocabulary_size = int(vocabulary_size)
        self.tags = tags
        self.char_vocabulary_size = int(char_vocabulary_size)
        self.char_classes = None if char_classes is None else [int(value) for value in char_classes]
        self.word_embedding_dim = int(word_embedding_dim)
        self.char_embedding_dim = char_embedding_dim
        self.char_filters = char_filters
        self.char_kernel_size = char_kernel_size
        self.casing_dim = int(casing_dim)
        self.cell = cell
        self.units = int(units)
        self.num_layers = int(num_layers)
        self.dropout = float(dropout)
        self.recurrent_dropout = float(recurrent_dropout)
        self.char_dropout = float(char_dropout)
        self.word_dropout = float(word_dropout)
        self.unknown_id = int(unknown_id)
        self.rare_word_start = int(rare_word_start)
        self.rare_word_dropout = float(rare_word_dropout)
        self.head = head
        self.trainable_embeddings = bool(trainable_embeddings)
        self.ensemble_size = int(ensemble_size)
        self._tag_index = {tag: index for index, tag in enumerate(tags)}

        self.word_embedding = keras.layers.Embedding(
            self.vocabulary_size, self.word_embedding_dim, trainable=self.trainable_embeddings, name="word_embedding"
        )
        member_arguments = {name: getattr(self, name) for name in TaggerMember.ARGUMENTS}
        self.members = [
            TaggerMember(len(tags), name=f"member_{index}", **member_arguments) for index in range(self.ensemble_size)
        ]
        self.crfs = []
        if head == "crf":
            self.crfs = [CRF.from_tags(tags, self.scheme, name=f"crf_{index}") for index in range(self.ensemble_size)]
            for crf in self.crfs:
                # The CRFs are not called in `call`; their weights must exist before fit
                # builds the optimizer and before a reloaded model receives its weights.
                crf.build((None, None, len(tags)))
        self._drops_rare_words = bool(self.rare_word_start and self.rare_word_dropout)
        if self.word_dropout or self._drops_rare_words:
            self.seed_generator = keras.random.SeedGenerator()

    # -- inputs ----------------------------------------------------------------------------------

    @staticmethod
    def _unpack(inputs):
        if isinstance(inputs, dict):
            missing = [name for name in INPUT_NAMES if name not in inputs]
            if missing:
                raise ValueError(f"SequenceTagger inputs need keys {list(INPUT_NAMES)}; missing {missing}")
            return inputs["word_ids"], inputs["char_ids"]
        if isinstance(inputs, (list, tuple)) and len(inputs) == 2:
            return inputs[0], inputs[1]
        raise ValueError(
            "SequenceTagger takes {'word_ids': (batch, time), 'char_ids': (batch, time, chars)} "
            f"or the pair (word_ids, char_ids). Received: {type(inputs).__name__}"
        )

    def padding_mask(self, inputs):
        """True at real tokens, ``(batch, time)``: word id 0 is padding."""
        return ops.not_equal(self._unpack(inputs)[0], 0)

    # -- forward ---------------------------------------------------------------------------------

    def call(self, inputs, training=False):
        word_ids, char_ids = self._unpack(inputs)
        word_ids = ops.cast(word_ids, "int32")
        mask = ops.not_equal(word_ids, 0)
        if training and (self.word_dropout or self._drops_rare_words):
            noise = keras.random.uniform(ops.shape(word_ids), seed=self.seed_generator)
            rate = self.word_dropout
            if self._drops_rare_words:
                rate = ops.where(ops.greater_equal(word_ids, self.rare_word_start), self.rare_word_dropout, rate)
            replace = ops.logical_and(mask, ops.less(noise, rate))
            word_ids = ops.where(replace, ops.full_like(word_ids, self.unknown_id), word_ids)
        word_vectors = self.word_embedding(word_ids)
        scores = [member(word_vectors, char_ids, mask, training=training) for member in self.members]
        if len(scores) == 1:
            return scores[0]
        if training:
            return ops.stack(scores, axis=2)  # (batch, time, members, tags): one loss per member
        return ops.mean(ops.stack(scores, axis=0), axis=0)

    def compute_output_shape(self, input_shape):
        word_shape = input_shape["word_ids"] if isinstance(input_shape, dict) else input_shape[0]
        return tuple(word_shape) + (len(self.tags),)

    # -- training --------------------------------------------------------------------------------

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        mask = self.padding_mask(x)
        y = ops.cast(y, "int32")
        if len(y_pred.shape) == 4:
            # Training an ensemble: each member learns from its own loss (a loss on the
            # averaged scores would let members co-adapt); the model's loss is their mean.
            losses = [
                self._head_loss(y_pred[:, :, index], y, mask, sample_weight, self.crfs[index] if self.crfs else None)
                for index in range(self.ensemble_size)
            ]
            loss = ops.mean(ops.stack(losses))
        else:
            loss = self._head_loss(y_pred, y, mask, sample_weight, self.crfs[0] if self.crfs else None,
                                   self.transition_scores())
        for extra in self.losses:
            loss = loss + ops.cast(extra, loss.dtype)
        # Under tf.distribute each replica's gradients are summed: Keras' own losses divide
        # by the number of replicas, so a custom loss must too (a no-op on one device).
        return scale_loss_for_distribution(loss)

    def _head_loss(self, scores, y, mask, sample_weight, crf, transition_scores=None):
        """The head's loss on ``(batch, time, tags)`` scores: CRF negative log-likelihood or token cross-entropy."""
        if crf is not None:
            return crf.negative_log_likelihood(
                scores, y, mask=mask, sample_weight=sample_weight, transition_scores=transition_scores
            )
        # Padding targets may hold anything (-1, say); they get zero weight below.
        targets = ops.clip(y, 0, len(self.tags) - 1)
        losses = keras.losses.sparse_categorical_crossentropy(targets, scores, from_logits=True)
        weights = ops.cast(mask, losses.dtype)
        if sample_weight is not None:
            weights = weights * ops.reshape(ops.cast(sample_weight, losses.dtype), (-1, 1))
        return ops.sum(losses * weights) / ops.maximum(ops.sum(ops.cast(mask, losses.dtype)), 1.0)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        if getattr(self, "_compile_metrics", None) is None:
            return super().compute_metrics(x, y, y_pred, sample_weight)
        if len(y_pred.shape) == 4:
            y_pred = ops.mean(y_pred, axis=2)  # the ensemble's scores
        mask = self.padding_mask(x)
        paths = self.decode_scores(y_pred, mask)
        if "O" in self._tag_index:
            # Keras gives `metrics` no sample weights (only `weighted_metrics`), so padding
            # must be harmless by itself: "O" on both sides starts and ends no entity.
            outside = self._tag_index["O"]
            y = ops.where(mask, ops.cast(y, "int32"), outside)
            paths = ops.where(mask, paths, outside)
        # Token metrics (Accuracy) read the prediction's mask and skip padding.
        set_keras_mask(paths, mask)
        weights = ops.cast(mask, "float32")
        if sample_weight is not None:
            weights = weights * ops.reshape(ops.cast(sample_weight, "float32"), (-1, 1))
        return super().compute_metrics(x, y, paths, sample_weight=weights)

    # -- decoding --------------------------------------------------------------------------------

    def transition_scores(self):
        """The CRF's ``(transitions, start, end)`` (`nlpkit.layers.CRF.transition_scores`);
        for an ensemble the mean over the members' CRFs. None for the softmax head.

        Decoding the members' mean emissions with these is Viterbi on the mean of the
        members' sentence scores: the ensemble's best path.
        """
        if not self.crfs:
            return None
        member_scores = [crf.transition_scores() for crf in self.crfs]
        if len(member_scores) == 1:
            return member_scores[0]
        return tuple(ops.mean(ops.stack(parts), axis=0) for parts in zip(*member_scores))

    def decode_scores(self, scores, mask):
        """Tag ids ``(batch, time)`` from the per-token scores: Viterbi (CRF) or argmax; 0 at padding."""
        if self.crfs:
            return self.crfs[0].viterbi_decode(scores, mask=mask, transition_scores=self.transition_scores())[0]
        # tf.argmax, not ops.argmax: Keras' version adds a BitwiseAnd (for signed zeros)
        # that TFLite has no built-in kernel for.
        ids = tf.argmax(scores, axis=-1, output_type=tf.int32)
        return ops.where(mask, ids, ops.zeros_like(ids))

    def decode(self, inputs):
        """Tag ids ``(batch, time)`` of the inputs (int32, 0 at padding)."""
        return self.decode_scores(self(inputs, training=False), self.padding_mask(inputs))

    def predict_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self.decode(x)

    # -- tags ------------------------------------------------------------------------------------

    def encode_tags(self, tags):
        """Tag ids of one sentence's tags given in ``output_scheme`` (converted to ``scheme``).

        Raises:
            TagSchemeError: a tag is not in ``output_scheme``.
            ValueError: a converted tag is not in the model's tag vocabulary (an entity type
                the model does not know); the message names it.
        """
        ids = []
        for tag in convert_tags(tags, self.output_scheme, self.scheme):
            if tag not in self._tag_index:
                raise ValueError(f"tag {tag!r} is not one of the model's tags {self.tags}")
            ids.append(self._tag_index[tag])
        return ids

    def decode_tags(self, tag_ids):
        """Tags in ``output_scheme`` of one sentence's tag ids (padding already removed)."""
        return convert_tags([self.tags[int(index)] for index in tag_ids], self.scheme, self.output_scheme)

    def conversion_tables(self, output_scheme=None):
        """`TagConversionTables` from the model's tags to ``output_scheme`` (default: its own)."""
        return TagConversionTables(self.tags, self.scheme, output_scheme or self.output_scheme)

    def predict_tags(self, token_lists, tokenizer, batch_size=64):
        """Tags in ``output_scheme`` for pre-tokenized sentences, through the Keras model.

        Sentences are batched by length (fast, little padding); the result keeps the input
        order. An empty sentence gets ``[]``.

        Args:
            token_lists: list of lists of str.
            tokenizer: the `nlpkit.text.PythonTaggingTokenizer` the model was trained with.
            batch_size: int, default 64.
        """
        encoded = [tokenizer.encode_tokens(tokens) for tokens in token_lists]
        order = sorted(range(len(encoded)), key=lambda index: len(encoded[index][0]))
        results = [None] * len(encoded)
        # One trace for every batch shape; predict_on_batch would retrace per new shape.
        signature = {
            "word_ids": tf.TensorSpec([None, None], tf.int32),
            "char_ids": tf.TensorSpec([None, None, None], tf.int32),
        }
        decode = tf.function(self.decode, input_signature=[signature])
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            batch = pad_tagging_batch([encoded[i][0] for i in chunk], [encoded[i][1] for i in chunk])
            paths = decode(batch).numpy()
            for row, index in enumerate(chunk):
                results[index] = self.decode_tags(paths[row, : len(encoded[index][0])])
        return results

    # -- export ----------------------------------------------------------------------------------

    def tflite_endpoints(self):
        """The TFLite signature ``tag``: word ids ``[1, n]`` + char ids ``[1, n, chars]`` -> ``tags``.

        ``tags`` are int32 ids of ``self.tags`` ``[1, n]``, decoded inside the model (Viterbi
        for the CRF head). The batch is 1, both lengths are dynamic.
        """

        def tag(word_ids, char_ids):
            return {"tags": self.decode({"word_ids": word_ids, "char_ids": char_ids})}

        signature = [
            tf.TensorSpec([1, None], tf.int32, name="word_ids"),
            tf.TensorSpec([1, None, None], tf.int32, name="char_ids"),
        ]
        return {"tag": (tag, signature)}

    def manifest_section(self, tokenizer):
        """The tag scheme the tags are in and the scheme predictions are given in."""
        del tokenizer
        return {"tag_scheme": self.scheme, "output_scheme": self.output_scheme}

    def serving_endpoints(self, tokenizer, label_names=None):
        """SavedModel signatures: ``serving_default`` (texts) and ``tag_tokens`` (pre-tokenized).

        ``serving_default`` takes ``text``, a batch of UTF-8 sentences, splits them at
        whitespace with ``tokenizer`` (an `nlpkit.text.TaggingTokenizer`) inside the graph
        and returns ``tokens`` and ``tags`` ``[N, T]`` strings (``""`` at padding; tags in
        ``output_scheme``) and ``lengths`` ``[N]``. ``tag_tokens`` takes ``tokens``
        ``[N, T]`` strings, right-padded with ``""`` (a sentence ends at its first ``""``),
        and returns the same outputs. ``label_names`` is ignored: the model owns its tags.
        """
        conversion = self.conversion_tables()

        def tag_ragged(tokens):
            word_ids, char_ids = tokenizer.encode_tokens(tokens)
            # One extra (masked) step: an empty batch or empty sentences keep a time axis.
            word_ids = tf.pad(word_ids.to_tensor(default_value=0), [[0, 0], [0, 1]])
            char_ids = tf.pad(char_ids.to_tensor(default_value=0), [[0, 0], [0, 1], [0, 1]])
            paths = self.decode({"word_ids": word_ids, "char_ids": char_ids})
            lengths = tf.cast(tokens.row_lengths(), tf.int32)
            width = tf.reduce_max(tf.concat([lengths, [0]], axis=0))
            mask = tf.sequence_mask(lengths, width)
            return {
                "tokens": tokens.to_tensor(default_value=""),
                "tags": conversion.convert(paths[:, :width], mask),
                "lengths": lengths,
            }

        def serve(text):
            return tag_ragged(tokenizer.tokenize(text))

        def tag_tokens(tokens):
            present = tf.cast(tf.not_equal(tokens, ""), tf.int32)
            lengths = tf.reduce_sum(tf.math.cumprod(present, axis=1), axis=1)
            return tag_ragged(tf.RaggedTensor.from_tensor(tokens, lengths=lengths))

        return {
            "serving_default": (serve, [tf.TensorSpec([None], tf.string, name="text")]),
            "tag_tokens": (tag_tokens, [tf.TensorSpec([None, None], tf.string, name="tokens")]),
        }

    def set_embeddings(self, matrix):
        """Initialises the word embedding table from a ``(vocabulary_size, word_embedding_dim)`` array."""
        if tuple(matrix.shape) != (self.vocabulary_size, self.word_embedding_dim):
            raise ValueError(
                f"Embedding matrix shape {tuple(matrix.shape)} does not match "
                f"({self.vocabulary_size}, {self.word_embedding_dim})."
            )
        if not self.word_embedding.built:
            self.word_embedding.build((None, None))
        self.word_embedding.embeddings.assign(matrix)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "tags": list(self.tags),
                "scheme": self.scheme,
                "output_scheme": self.output_scheme,
                "word_embedding_dim": self.word_embedding_dim,
                "word_dropout": self.word_dropout,
                "unknown_id": self.unknown_id,
                "rare_word_start": self.rare_word_start,
                "rare_word_dropout": self.rare_word_dropout,
                "head": self.head,
                "trainable_embeddings": self.trainable_embeddings,
                "ensemble_size": self.ensemble_size,
            }
        )
        config.update({name: value for name, value in self.members[0].get_config().items()
                       if name in TaggerMember.ARGUMENTS})
        return config
