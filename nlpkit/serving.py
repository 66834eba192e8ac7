"""One predictor interface over the three exported forms of a bundle.

``keras`` and ``saved_model`` need TensorFlow; ``tflite`` runs through `nlpkit.lite`
(numpy + LiteRT only). All three return the same `ClassPrediction` objects, which is what
lets `nlpkit predict --format ...` and the parity tests compare them directly.
"""

from pathlib import Path

import numpy as np

from nlpkit.lite import ClassPrediction, TextClassifierPredictor
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


def load_predictor(bundle_dir, format="tflite", precision="float32", num_threads=1):
    """Opens a bundle in one of its exported forms: "tflite" (default), "keras" or "saved_model".

    Example:
        >>> predictor = load_predictor("saved_models/sentiment", format="saved_model")
        >>> [p.label for p in predictor.predict(["a joy", "a chore"])]
    """
    if format == "tflite":
        return TextClassifierPredictor(bundle_dir, precision=precision, num_threads=num_threads)
    if format == "keras":
        return KerasClassifier(bundle_dir)
    if format == "saved_model":
        return SavedModelClassifier(bundle_dir)
    raise ValueError(f"`format` must be one of {FORMATS}. Received: {format!r}")
