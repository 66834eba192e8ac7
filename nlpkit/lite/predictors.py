"""On-device style predictors: a bundle's TFLite model plus the pure-Python tokenizer."""

import dataclasses
from pathlib import Path

import numpy as np

from nlpkit.errors import BundleError
from nlpkit.lite.runtime import load_signature_runner
from nlpkit.manifest import MANIFEST_FILE, bundle_assets, bundle_file, read_manifest
from nlpkit.text.python_tokenizers import PythonTaggingTokenizer, load_tokenizer
from nlpkit.text.tag_schemes import TagSchemeError, convert_tags, extract_spans, normalize_scheme, parse_tag

_MODEL_KEYS = {"float32": "tflite", "int8": "tflite_int8"}


def _named_failures(runner, model_path, signature):
    """``runner`` with LiteRT's invoke errors raised as `BundleError` naming the model file.

    LiteRT's own error is a bare RuntimeError ("gather index out of bounds") when the bundle's
    vocabulary holds more ids than the model's embedding, i.e. assets and model do not belong together.
    """

    def run(**inputs):
        try:
            return runner(**inputs)
        except RuntimeError as error:
            reason = " ".join(str(error).split())
            raise BundleError(
                f"{model_path}: signature {signature!r} failed on the ids of the bundle's tokenizer ({reason:.300}); "
                "are assets/ and the model from the same export?"
            ) from None

    return run


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
            "classification").
        precision: "float32" (default, ``model.tflite``) or "int8" (``model.int8.tflite``).
        num_threads: int, default 1.

    Example:
        >>> predictor = TextClassifierPredictor("saved_models/sentiment")
        >>> predictor.predict(["a gripping , beautifully acted film"])[0].label
        'positive'
    """

    task = "classification"

    def __init__(self, bundle_dir, precision="float32", num_threads=1):
        if precision not in _MODEL_KEYS:
            raise ValueError(f"`precision` must be one of {sorted(_MODEL_KEYS)}. Received: {precision!r}")
        self.bundle_dir = Path(bundle_dir)
        self.manifest = read_manifest(self.bundle_dir, task=self.task)
        self.labels = list(self.manifest["labels"])
        self.tokenizer = load_tokenizer(bundle_assets(self.bundle_dir, self.manifest))
        model_path = bundle_file(self.bundle_dir, self.manifest, _MODEL_KEYS[precision])
        self._classify = _named_failures(load_signature_runner(model_path, "classify", num_threads=num_threads),
                                         model_path, "classify")

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
            if len(scores) != len(self.labels):
                raise BundleError(
                    f"{self.bundle_dir / MANIFEST_FILE}: 'labels' lists {len(self.labels)} labels, but the model "
                    f"scores {len(scores)} classes."
                )
            predictions.append(
                ClassPrediction(
                    label=self.labels[int(np.argmax(scores))],
                    scores={label: float(score) for label, score in zip(self.labels, scores)},
                )
            )
        return predictions


@dataclasses.dataclass(frozen=True)
class Entity:
    """One entity found by a tagger: its type, token span (``end`` exclusive) and text."""

    type: str
    start: int
    end: int
    text: str


@dataclasses.dataclass(frozen=True)
class TagPrediction:
    """The tokens of one text, their tags and the entities those tags mark."""

    tokens: list
    tags: list
    entities: list


def tag_prediction(tokens, tags, scheme):
    """A `TagPrediction` for ``tokens`` and their ``tags`` (in ``scheme``), entities included.

    Example:
        >>> tag_prediction(["Ann", "Lee", "ran"], ["B-PER", "I-PER", "O"], "BIO").entities
        [Entity(type='PER', start=0, end=2, text='Ann Lee')]
    """
    tokens, tags = list(tokens), list(tags)
    entities = [
        Entity(type_, start, end, " ".join(tokens[start:end]))
        for type_, start, end in extract_spans(tags, scheme)
    ]
    return TagPrediction(tokens=tokens, tags=tags, entities=entities)


class SequenceTaggerPredictor:
    """Tags texts with a tagger bundle's TFLite model; imports no TensorFlow.

    A text is split into tokens at whitespace (punctuation stays attached, as in CoNLL
    files: write ``"Smith ."`` to make the full stop a token); `predict_tokens` takes
    tokens directly. Word and character ids come from the bundle's pure-Python tokenizer,
    the model decodes the tags itself (Viterbi inside for a CRF), and the tags come back
    in the bundle's ``output_scheme`` (the scheme of its training data). An empty text
    gives no tokens and is not run through the model.

    Args:
        bundle_dir: a bundle written by the NER recipe (task "tagging").
        precision: "float32" (default, ``model.tflite``) or "int8" (``model.int8.tflite``).
        num_threads: int, default 1.

    Example:
        >>> predictor = SequenceTaggerPredictor("saved_models/ner")
        >>> [(e.type, e.text) for e in predictor.predict("Maria Keller flew to Oslo .")[0].entities]
        [('PER', 'Maria Keller'), ('LOC', 'Oslo')]
    """

    task = "tagging"

    def __init__(self, bundle_dir, precision="float32", num_threads=1):
        if precision not in _MODEL_KEYS:
            raise ValueError(f"`precision` must be one of {sorted(_MODEL_KEYS)}. Received: {precision!r}")
        self.bundle_dir = Path(bundle_dir)
        self.manifest = read_manifest(self.bundle_dir, task=self.task)
        self.tags = list(self.manifest["labels"])
        self.scheme = self.manifest.get("tag_scheme", "BIO")
        self.output_scheme = self.manifest.get("output_scheme", self.scheme)
        # Checked here, naming the file: at predict time these errors would name none.
        manifest_path = self.bundle_dir / MANIFEST_FILE
        for key, scheme in (("tag_scheme", self.scheme), ("output_scheme", self.output_scheme)):
            try:
                normalize_scheme(scheme)
            except TagSchemeError as error:
                raise BundleError(f"{manifest_path}: {key}: {error}") from None
        try:
            for tag in self.tags:
                parse_tag(tag, self.scheme)
        except TagSchemeError as error:
            raise BundleError(f"{manifest_path}: 'labels' do not fit tag_scheme {self.scheme!r}: {error}") from None
        self.tokenizer = load_tokenizer(bundle_assets(self.bundle_dir, self.manifest))
        if not isinstance(self.tokenizer, PythonTaggingTokenizer):
            raise BundleError(
                f"{self.bundle_dir}: a tagger bundle needs a 'tagging' tokenizer, found "
                f"{type(self.tokenizer).__name__}."
            )
        model_path = bundle_file(self.bundle_dir, self.manifest, _MODEL_KEYS[precision])
        self._tag = _named_failures(load_signature_runner(model_path, "tag", num_threads=num_threads),
                                    model_path, "tag")

    def tag_ids(self, tokens):
        """The model's tag ids (indices into ``self.tags``) of one token list, int32 ``(len(tokens),)``."""
        if not tokens:
            return np.zeros(0, np.int32)
        word_ids, char_ids = self.tokenizer.encode_tokens(tokens)
        width = max(len(chars) for chars in char_ids) or 1
        chars = np.zeros((1, len(tokens), width), np.int32)
        for position, ids in enumerate(char_ids):
            chars[0, position, : len(ids)] = ids
        words = np.asarray([word_ids], np.int32)
        return np.array(self._tag(word_ids=words, char_ids=chars)["tags"][0], np.int32)

    def tag_tokens(self, tokens):
        """The tags (in ``output_scheme``) of one token list."""
        tokens = list(tokens)
        ids = self.tag_ids(tokens)
        if len(ids) and not 0 <= ids.min() <= ids.max() < len(self.tags):
            raise BundleError(
                f"{self.bundle_dir / MANIFEST_FILE}: 'labels' lists {len(self.tags)} tags, but the model "
                f"gives tag id {int(ids.max())}."
            )
        return convert_tags([self.tags[i] for i in ids], self.scheme, self.output_scheme)

    def predict_tokens(self, token_lists):
        """A `TagPrediction` for every pre-tokenized sentence of ``token_lists``."""
        if token_lists and isinstance(token_lists[0], str):
            raise TypeError("`token_lists` must be a list of token lists; wrap one sentence in a list")
        return [tag_prediction(tokens, self.tag_tokens(tokens), self.output_scheme) for tokens in token_lists]

    def predict(self, texts):
        """A `TagPrediction` for every text of ``texts`` (a str, bytes, or a list of them)."""
        if isinstance(texts, (str, bytes)):
            texts = [texts]
        return self.predict_tokens([self.tokenizer.tokenize(text) for text in texts])
