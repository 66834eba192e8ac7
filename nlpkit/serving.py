"""One predictor interface over the three exported forms of a bundle.

``keras`` and ``saved_model`` need TensorFlow; ``tflite`` runs through `nlpkit.lite`
(numpy + LiteRT only). All three return the same objects (`ClassPrediction` for a text
classifier, `TagPrediction` for a sequence tagger), which is what lets
`nlpkit predict --format ...` and the parity tests compare them directly.
"""

from pathlib import Path

import numpy as np

from nlpkit.lite import ClassPrediction, SequenceTaggerPredictor, TextClassifierPredictor, tag_prediction
from nlpkit.manifest import ASSETS_DIR, bundle_file, read_manifest
from nlpkit.text.python_tokenizers import load_tokenizer

FORMATS = ("tflite", "keras", "saved_model")


class _TensorFlowClassifier:
    task = "text_classification"

    def __init__(self, bundle_dir):
        self.bundle_dir = Path(bundle_dir)
        self.manifest = read_manifest(self.bundle_dir, task=self.task)
        self.labels = list(self.manifest["labels"])

    def predict(self, texts):
        if isinstance(texts, (str, bytes)):
            texts = [texts]
        texts = [text.decode("utf-8", "replace") if isinstance(text, bytes) else text for text in texts]
        if not texts:
            return []
        scores = self.batch_scores(texts)
        return [
            ClassPrediction(
                label=self.labels[int(np.argmax(row))],
                scores={label: float(value) for label, value in zip(self.labels, row)},
            )
            for row in scores
        ]


class KerasClassifier(_TensorFlowClassifier):
    """Predicts with ``model.keras`` and the bundle's Python tokenizer.

    Example:
        >>> KerasClassifier("saved_models/sentiment").predict(["what a film"])[0].label
    """

    def __init__(self, bundle_dir):
        from nlpkit.models import load_keras_model

        super().__init__(bundle_dir)
        self.tokenizer = load_tokenizer(self.bundle_dir / ASSETS_DIR)
        self.model = load_keras_model(bundle_file(self.bundle_dir, self.manifest, "keras"))

    def batch_scores(self, texts):
        ids = [self.tokenizer.encode(text) or [0] for text in texts]
        batch = np.zeros((len(ids), max(map(len, ids))), np.int32)
        for row, sequence in enumerate(ids):
            batch[row, : len(sequence)] = sequence
        return self.model.predict_on_batch(batch)


class SavedModelClassifier(_TensorFlowClassifier):
    """Predicts with the SavedModel's ``serving_default`` (raw strings, in-graph tokenizer).

    Example:
        >>> SavedModelClassifier("saved_models/sentiment").predict(["what a film"])[0].label
    """

    def __init__(self, bundle_dir):
        import tensorflow as tf

        super().__init__(bundle_dir)
        self._tf = tf
        loaded = tf.saved_model.load(str(bundle_file(self.bundle_dir, self.manifest, "saved_model")))
        self._loaded = loaded  # keep the resources alive while the signature is used
        self._serve = loaded.signatures["serving_default"]

    def batch_scores(self, texts):
        return self._serve(text=self._tf.constant(texts, self._tf.string))["scores"].numpy()


class _TensorFlowTagger:
    task = "sequence_tagging"

    def __init__(self, bundle_dir):
        self.bundle_dir = Path(bundle_dir)
        self.manifest = read_manifest(self.bundle_dir, task=self.task)
        self.output_scheme = self.manifest.get("output_scheme", self.manifest.get("tag_scheme", "BIO"))
        self.tokenizer = load_tokenizer(self.bundle_dir / ASSETS_DIR)

    def predict(self, texts):
        """A `TagPrediction` for every text (split at whitespace, as the TFLite predictor does)."""
        if isinstance(texts, (str, bytes)):
            texts = [texts]
        return self.predict_tokens([self.tokenizer.tokenize(text) for text in texts])


class KerasTagger(_TensorFlowTagger):
    """Tags texts with a tagger bundle's ``model.keras`` and its Python tokenizer.

    Example:
        >>> KerasTagger("saved_models/ner").predict("Maria Keller flew to Oslo .")[0].tags
    """

    def __init__(self, bundle_dir):
        from nlpkit.models import load_keras_model

        super().__init__(bundle_dir)
        self.model = load_keras_model(bundle_file(self.bundle_dir, self.manifest, "keras"))

    def predict_tokens(self, token_lists):
        """A `TagPrediction` for every pre-tokenized sentence."""
        token_lists = [list(tokens) for tokens in token_lists]
        tags = self.model.predict_tags(token_lists, self.tokenizer)
        return [tag_prediction(tokens, sentence, self.output_scheme) for tokens, sentence in zip(token_lists, tags)]


class SavedModelTagger(_TensorFlowTagger):
    """Tags texts with the SavedModel's ``serving_default`` (tokenization in the graph).

    Example:
        >>> SavedModelTagger("saved_models/ner").predict("Maria Keller flew to Oslo .")[0].tags
    """

    def __init__(self, bundle_dir):
        import tensorflow as tf

        super().__init__(bundle_dir)
        self._tf = tf
        self._loaded = tf.saved_model.load(str(bundle_file(self.bundle_dir, self.manifest, "saved_model")))
        self._serve = self._loaded.signatures["serving_default"]
        self._tag_tokens = self._loaded.signatures["tag_tokens"]

    def _predictions(self, outputs):
        tokens, tags, lengths = (outputs[key].numpy() for key in ("tokens", "tags", "lengths"))
        return [
            tag_prediction(
                [token.decode("utf-8") for token in tokens[row, :length]],
                [tag.decode("utf-8") for tag in tags[row, :length]],
                self.output_scheme,
            )
            for row, length in enumerate(lengths)
        ]

    def predict(self, texts):
        if isinstance(texts, (str, bytes)):
            texts = [texts]
        texts = [text.decode("utf-8", "replace") if isinstance(text, bytes) else text for text in texts]
        if not texts:
            return []
        return self._predictions(self._serve(text=self._tf.constant(texts, self._tf.string)))

    def predict_tokens(self, token_lists):
        """A `TagPrediction` for every pre-tokenized sentence (through ``tag_tokens``)."""
        token_lists = [list(tokens) for tokens in token_lists]
        if not token_lists:
            return []
        width = max(len(tokens) for tokens in token_lists)
        padded = [tokens + [""] * (width - len(tokens)) for tokens in token_lists]
        return self._predictions(self._tag_tokens(tokens=self._tf.constant(padded, self._tf.string, shape=[len(padded), width])))


def load_predictor(bundle_dir, format="tflite", precision="float32", num_threads=1):
    """Opens a bundle in one of its exported forms: "tflite" (default), "keras" or "saved_model".

    The bundle's task decides the predictor: a text classifier's predict() gives
    `ClassPrediction` objects, a sequence tagger's `TagPrediction` objects.

    Example:
        >>> predictor = load_predictor("saved_models/sentiment", format="saved_model")
        >>> [p.label for p in predictor.predict(["a joy", "a chore"])]
    """
    if format not in FORMATS:
        raise ValueError(f"`format` must be one of {FORMATS}. Received: {format!r}")
    if read_manifest(bundle_dir).get("task") == "sequence_tagging":
        if format == "tflite":
            return SequenceTaggerPredictor(bundle_dir, precision=precision, num_threads=num_threads)
        return KerasTagger(bundle_dir) if format == "keras" else SavedModelTagger(bundle_dir)
    if format == "tflite":
        return TextClassifierPredictor(bundle_dir, precision=precision, num_threads=num_threads)
    if format == "keras":
        return KerasClassifier(bundle_dir)
    if format == "saved_model":
        return SavedModelClassifier(bundle_dir)
    raise ValueError(f"`format` must be one of {FORMATS}. Received: {format!r}")
