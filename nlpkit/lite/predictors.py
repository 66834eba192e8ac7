"""On-device style predictors: a bundle's TFLite model plus the pure-Python tokenizer."""

import dataclasses
from pathlib import Path

import numpy as np

from nlpkit.lite.runtime import load_signature_runner
from nlpkit.manifest import ASSETS_DIR, bundle_file, read_manifest
from nlpkit.text.python_tokenizers import load_tokenizer

_MODEL_KEYS = {"float32": "tflite", "int8": "tflite_int8"}


@dataclasses.dataclass(frozen=True)
class ClassPrediction:
    """The predicted label of one text and the probability of every label."""

    label: str
    scores: dict


class TextClassifierPredictor:
    """Classifies raw strings with a bundle's TFLite model; imports no TensorFlow.

    Tokenization runs through the bundle's pure-Python tokenizer, which gives the same ids
    as the tokenizer inside the SavedModel graph. Texts longer than the tokenizer's
    ``max_length`` are truncated; an empty text is classified from a single padding step.

    Args:
        bundle_dir: a bundle written by `nlpkit.export.write_bundle` (task
            "text_classification").
        precision: "float32" (default, ``model.tflite``) or "int8" (``model.int8.tflite``).
        num_threads: int, default 1.

    Example:
        >>> predictor = TextClassifierPredictor("saved_models/sentiment")
        >>> predictor.predict(["a gripping , beautifully acted film"])[0].label
        'positive'
    """

    task = "text_classification"

    def __init__(self, bundle_dir, precision="float32", num_threads=1):
        if precision not in _MODEL_KEYS:
            raise ValueError(f"`precision` must be one of {sorted(_MODEL_KEYS)}. Received: {precision!r}")
        self.bundle_dir = Path(bundle_dir)
        self.manifest = read_manifest(self.bundle_dir, task=self.task)
        self.labels = list(self.manifest["labels"])
        self.tokenizer = load_tokenizer(self.bundle_dir / ASSETS_DIR)
        model_path = bundle_file(self.bundle_dir, self.manifest, _MODEL_KEYS[precision])
        self._classify = load_signature_runner(model_path, "classify", num_threads=num_threads)

    def scores(self, text):
        """Class probabilities of one text as a float32 array of shape ``(num_labels,)``."""
        ids = self.tokenizer.encode(text) or [0]
        token_ids = np.asarray([ids], dtype=np.int32)
        return np.array(self._classify(token_ids=token_ids)["scores"][0], dtype=np.float32)

    def predict(self, texts):
        """Predicts every text of ``texts`` (a str or a list of str)."""
        if isinstance(texts, (str, bytes)):
            texts = [texts]
        predictions = []
        for text in texts:
            scores = self.scores(text)
            predictions.append(
                ClassPrediction(
                    label=self.labels[int(np.argmax(scores))],
                    scores={label: float(score) for label, score in zip(self.labels, scores)},
                )
            )
        return predictions
