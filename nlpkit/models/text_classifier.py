"""Recurrent text classifier: embedding -> recurrent encoder -> pooling -> softmax."""

import keras
import tensorflow as tf
from keras import ops

from nlpkit.layers import Bidirectional, MaskedPooling, recurrent_layer
from nlpkit.models.task import TaskModel


@keras.saving.register_keras_serializable(package="nlpkit")
class ClassifierMember(keras.layers.Layer):
    """One recurrent encoder with its own output layer: embedded tokens in, probabilities out.

    `TextClassifier` holds ``ensemble_size`` of these over one shared embedding. Each has
    ``num_layers`` stacked recurrent layers (optionally bidirectional), mask-aware pooling
    (or the final states), dropout, an optional ReLU layer and a softmax output.

    Example:
        >>> member = ClassifierMember(num_classes=2, units=16)
        >>> scores = member(keras.random.normal((4, 7, 8)), mask=np.ones((4, 7), bool))
    """

    def __init__(
        self,
        num_classes,
        units=128,
        cell="gru",
        num_layers=1,
        bidirectional=True,
        pooling="max_mean",
        dropout=0.3,
        recurrent_dropout=0.0,
        hidden_dim=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.supports_masking = True  # reads the padding mask; the pooled output has none
        self.num_classes = num_classes
        self.units = units
        self.cell = cell
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.pooling = pooling
        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout
        self.hidden_dim = hidden_dim
        self.encoder_layers = []
        self.between_dropouts = []
        for index in range(num_layers):
            last = index == num_layers - 1
            layer = recurrent_layer(
                cell,
                units,
                return_sequences=not (last and pooling == "last"),
                recurrent_dropout=recurrent_dropout,
                name=f"{cell}_{index}",
            )
            if bidirectional:
                layer = Bidirectional(layer, name=f"bidirectional_{index}")
            self.encoder_layers.append(layer)
            if not last:
                self.between_dropouts.append(keras.layers.Dropout(dropout, name=f"dropout_{index}"))
        self.pool = None if pooling == "last" else MaskedPooling(pooling, name="pooling")
        self.output_dropout = keras.layers.Dropout(dropout, name="output_dropout")
        self.hidden = (
            keras.layers.Dense(hidden_dim, activation="relu", name="hidden") if hidden_dim else None
        )
        self.classifier = keras.layers.Dense(
            num_classes, activation="softmax", dtype="float32", name="scores"
        )

    def call(self, x, mask=None, training=False):
        for index, layer in enumerate(self.encoder_layers):
            x = layer(x, mask=mask, training=training)
            if index < len(self.between_dropouts):
                x = self.between_dropouts[index](x, training=training)
        if self.pool is not None:
            x = self.pool(x, mask=mask)
        x = self.output_dropout(x, training=training)
        if self.hidden is not None:
            x = self.output_dropout(self.hidden(x), training=training)
        return self.classifier(x)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "units": self.units,
                "cell": self.cell,
                "num_layers": self.num_layers,
                "bidirectional": self.bidirectional,
                "pooling": self.pooling,
                "dropout": self.dropout,
                "recurrent_dropout": self.recurrent_dropout,
                "hidden_dim": self.hidden_dim,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="nlpkit")
class TextClassifier(TaskModel, keras.Model):
    """Classifies padded token-id sequences (id 0 = padding) into ``num_classes`` classes.

    Embedding with a padding mask, ``num_layers`` stacked recurrent layers from
    `nlpkit.layers` (optionally bidirectional), mask-aware pooling over time, dropout, an
    optional hidden layer and a softmax output. Binary tasks use ``num_classes=2`` and read
    the positive-class probability from ``scores[:, 1]``.

    With ``ensemble_size=N > 1`` the model holds N independently initialised encoders
    (`ClassifierMember`) over one shared embedding and predicts the mean of their class
    probabilities. The members train independently within one ``model.fit``: in training
    mode the model returns every member's probabilities, shaped ``(batch, N, classes)``, and
    `compute_loss` averages the members' own losses (a loss on the averaged probabilities
    would let members co-adapt and lose the ensemble's variance reduction); metrics see the
    averaged probabilities. With a frozen embedding, each extra member costs only its
    recurrent weights.

    Args:
        vocabulary_size: int, number of token ids (including padding and unknown).
        num_classes: int >= 2.
        embedding_dim: int, default 128.
        units: int, default 128. Hidden size of each recurrent layer (per direction).
        cell: "gru" (default), "lstm" or "simple_rnn".
        num_layers: int, default 1.
        bidirectional: bool, default True.
        pooling: "max_mean" (default), "max", "mean" or "last" (final states).
        dropout: float, default 0.3. Dropout before the output layer and between layers.
        embedding_dropout: float, default 0.1. Drops whole word vectors during training.
        recurrent_dropout: float, default 0.0. Variational dropout inside the recurrence.
        hidden_dim: int, default 0. Size of a ReLU layer before the output (0 = none).
        trainable_embeddings: bool, default True. False keeps the embedding table fixed
            (e.g. pretrained vectors shared with words never seen in the labelled data).
        ensemble_size: int, default 1. Number of encoders whose probabilities are averaged.

    Example:
        >>> model = TextClassifier(vocabulary_size=5000, num_classes=2)
        >>> model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        >>> scores = model(np.array([[4, 27, 9, 0, 0]]))  # (1, 2) class probabilities
    """

    POOLINGS = ("max_mean", "max", "mean", "last")
    task = "classification"

    def __init__(
        self,
        vocabulary_size,
        num_classes,
        embedding_dim=128,
        units=128,
        cell="gru",
        num_layers=1,
        bidirectional=True,
        pooling="max_mean",
        dropout=0.3,
        embedding_dropout=0.1,
        recurrent_dropout=0.0,
        hidden_dim=0,
        trainable_embeddings=True,
        ensemble_size=1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if ensemble_size < 1:
            raise ValueError(f"`ensemble_size` must be >= 1. Received: ensemble_size={ensemble_size}")
        if num_classes < 2:
            raise ValueError(f"`num_classes` must be >= 2. Received: num_classes={num_classes}")
        if pooling not in self.POOLINGS:
            raise ValueError(f"`pooling` must be one of {self.POOLINGS}. Received: {pooling!r}")
        if num_layers < 1:
            raise ValueError(f"`num_layers` must be >= 1. Received: num_layers={num_layers}")
        self.vocabulary_size = vocabulary_size
        self.num_classes = num_classes
        self.embedding_dim = embedding_dim
        self.units = units
        self.cell = cell
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.pooling = pooling
        self.dropout = dropout
        self.embedding_dropout = embedding_dropout
        self.recurrent_dropout = recurrent_dropout
        self.hidden_dim = hidden_dim
        self.trainable_embeddings = trainable_embeddings
        self.ensemble_size = ensemble_size

        self.embedding = keras.layers.Embedding(
            vocabulary_size, embedding_dim, mask_zero=True, trainable=trainable_embeddings, name="embedding"
        )
        self.word_dropout = keras.layers.Dropout(
            embedding_dropout, noise_shape=(None, None, 1), name="word_dropout"
        )
        self.members = [
            ClassifierMember(
                num_classes,
                units=units,
                cell=cell,
                num_layers=num_layers,
                bidirectional=bidirectional,
                pooling=pooling,
                dropout=dropout,
                recurrent_dropout=recurrent_dropout,
                hidden_dim=hidden_dim,
                name=f"member_{index}",
            )
            for index in range(ensemble_size)
        ]

    def call(self, token_ids, training=False):
        mask = ops.not_equal(token_ids, 0)
        x = self.embedding(token_ids)
        x = self.word_dropout(x, training=training)
        scores = [member(x, mask=mask, training=training) for member in self.members]
        if len(scores) == 1:
            return scores[0]
        if training:
            return ops.stack(scores, axis=1)  # (batch, members, classes): one loss per member
        return ops.mean(ops.stack(scores, axis=0), axis=0)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if y_pred is not None and len(y_pred.shape) == 3:
            # Row b*N + m holds member m's prediction for example b; the labels and weights
            # are repeated to match, so the loss is the mean of the members' losses.
            y_pred = ops.reshape(y_pred, (-1, self.num_classes))
            y = ops.repeat(y, self.ensemble_size, axis=0)
            if sample_weight is not None:
                sample_weight = ops.repeat(sample_weight, self.ensemble_size, axis=0)
        return super().compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        if len(y_pred.shape) == 3:
            y_pred = ops.mean(y_pred, axis=1)  # the ensemble's prediction
        return super().compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    @property
    def encoder_layers(self):
        """The recurrent layers of the first member (all members share one structure)."""
        return self.members[0].encoder_layers

    def set_embeddings(self, matrix):
        """Initialises the embedding table from a ``(vocabulary_size, embedding_dim)`` array."""
        if tuple(matrix.shape) != (self.vocabulary_size, self.embedding_dim):
            raise ValueError(
                f"Embedding matrix shape {tuple(matrix.shape)} does not match "
                f"({self.vocabulary_size}, {self.embedding_dim})."
            )
        if not self.embedding.built:
            self.embedding.build((None, None))
        self.embedding.embeddings.assign(matrix)

    def tflite_endpoints(self):
        """The TFLite signatures of this model: name -> (function, input signature).

        ``classify`` takes one right-padded sequence of token ids (batch 1, any length) and
        returns the class probabilities as ``scores``.
        """

        def classify(token_ids):
            return {"scores": self(token_ids, training=False)}

        return {"classify": (classify, [tf.TensorSpec([1, None], tf.int32, name="token_ids")])}

    def serving_endpoints(self, tokenizer, label_names):
        """``serving_default`` for SavedModel: raw UTF-8 strings in, labels and scores out.

        Tokenization runs inside the graph through ``tokenizer`` (an `nlpkit.text` graph
        tokenizer); an empty text becomes one padding token, which the mask then ignores.
        """
        label_table = tf.constant(list(label_names))

        def serve(text):
            ids = tokenizer(text).to_tensor(default_value=0)
            ids = tf.pad(ids, [[0, 0], [0, 1]])  # keep at least one (padding) step
            scores = self(ids, training=False)
            return {"labels": tf.gather(label_table, tf.argmax(scores, axis=-1)), "scores": scores}

        return {"serving_default": (serve, [tf.TensorSpec([None], tf.string, name="text")])}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "num_classes": self.num_classes,
                "embedding_dim": self.embedding_dim,
                "units": self.units,
                "cell": self.cell,
                "num_layers": self.num_layers,
                "bidirectional": self.bidirectional,
                "pooling": self.pooling,
                "dropout": self.dropout,
                "embedding_dropout": self.embedding_dropout,
                "recurrent_dropout": self.recurrent_dropout,
                "hidden_dim": self.hidden_dim,
                "trainable_embeddings": self.trainable_embeddings,
                "ensemble_size": self.ensemble_size,
            }
        )
        return config
