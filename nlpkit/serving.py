"""One predictor interface over the three exported forms of a bundle.

``keras`` and ``saved_model`` need TensorFlow; ``tflite`` runs through `nlpkit.lite`
(numpy + LiteRT only). All three return the same objects (`ClassPrediction` for a text
classifier, `TagPrediction` for a sequence tagger, strings from ``translate`` and
``generate``), which is what lets `nlpkit predict --format ...` and the parity tests compare
them directly.
"""

from pathlib import Path

import numpy as np

from nlpkit.lite import (
    ClassPrediction,
    LanguageModelGenerator,
    SequenceTaggerPredictor,
    TextClassifierPredictor,
    Translator,
    tag_prediction,
)
from nlpkit.manifest import bundle_assets, bundle_file, read_manifest
from nlpkit.text.python_tokenizers import load_tokenizer

from nlpkit.tasks import FORMATS, task_of


def _as_batch(texts):
    """``(list of str, single)``: a str (or bytes) becomes a batch of one."""
    single = isinstance(texts, (str, bytes))
    texts = [texts] if single else list(texts)
    return [text.decode("utf-8", "replace") if isinstance(text, bytes) else text for text in texts], single


def _load_saved_model(bundle_dir, manifest):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tokenizer ops the serving graphs use)

    return tf.saved_model.load(str(bundle_file(bundle_dir, manifest, "saved_model")))


class _SavedModelForm:
    """The bundle's manifest (checked against ``task``) and its loaded SavedModel."""

    task = None

    def __init__(self, bundle_dir):
        self.bundle_dir = Path(bundle_dir)
        self.manifest = read_manifest(self.bundle_dir, task=self.task)
        self._loaded = _load_saved_model(self.bundle_dir, self.manifest)


class _TensorFlowClassifier:
    task = "classification"

    def __init__(self, bundle_dir):
        self.bundle_dir = Path(bundle_dir)
        self.manifest = read_manifest(self.bundle_dir, task=self.task)
        self.labels = list(self.manifest["labels"])

    def predict(self, texts):
        texts, _ = _as_batch(texts)
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
        self.tokenizer = load_tokenizer(bundle_assets(self.bundle_dir, self.manifest))
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
        self._loaded = _load_saved_model(self.bundle_dir, self.manifest)  # alive while its signatures are used
        self._serve = self._loaded.signatures["serving_default"]

    def batch_scores(self, texts):
        return self._serve(text=self._tf.constant(texts, self._tf.string))["scores"].numpy()


class _TensorFlowTagger:
    task = "tagging"

    def __init__(self, bundle_dir):
        self.bundle_dir = Path(bundle_dir)
        self.manifest = read_manifest(self.bundle_dir, task=self.task)
        self.output_scheme = self.manifest.get("output_scheme", self.manifest.get("tag_scheme", "BIO"))
        self.tokenizer = load_tokenizer(bundle_assets(self.bundle_dir, self.manifest))

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
        self._loaded = _load_saved_model(self.bundle_dir, self.manifest)
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
        texts, _ = _as_batch(texts)
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


class KerasTranslator(Translator):
    """Translates with a translation bundle's ``model.keras``, through the same searches as `Translator`.

    Example:
        >>> KerasTranslator("saved_models/translation").translate("Ein Hund läuft.", method="beam")
    """

    def __init__(self, bundle_dir):
        from nlpkit.decoding import KerasDecoderStep
        from nlpkit.models import load_keras_model

        self._read_bundle(bundle_dir)
        self.step = KerasDecoderStep(load_keras_model(bundle_file(self.bundle_dir, self.manifest, "keras")))


class SavedModelTranslator(_SavedModelForm):
    """Translates with the SavedModel's in-graph searches (tokenizer and detokenizer inside).

    ``method="beam"`` runs ``serving_default`` (beam width and length penalty as exported),
    ``"greedy"`` the ``greedy`` signature; both give the tokens of the `nlpkit.decoding`
    searches. Other search options need the Keras or TFLite form.

    Example:
        >>> SavedModelTranslator("saved_models/translation").translate(["Zwei Männer lachen."], method="beam")
    """

    task = "translation"
    _SIGNATURES = {"beam": "serving_default", "greedy": "greedy"}

    def translate(self, texts, method="greedy", **options):
        """The translation of a text (str in, str out) or of each text of a list."""
        if method not in self._SIGNATURES:
            raise ValueError(f"`method` must be one of {tuple(self._SIGNATURES)} for a SavedModel. Received: {method!r}")
        if options:
            raise ValueError(
                f"The SavedModel's searches are fixed at export ({self.manifest['translation'].get('decoding')}); "
                f"options {sorted(options)} need format 'keras' or 'tflite'."
            )
        batch, single = _as_batch(texts)
        if not batch:
            return []
        import tensorflow as tf

        outputs = self._loaded.signatures[self._SIGNATURES[method]](source=tf.constant(batch, tf.string))
        translations = [text.decode("utf-8") for text in outputs["translation"].numpy()]
        return translations[0] if single else translations


class KerasGenerator(LanguageModelGenerator):
    """Continues prompts with a language-model bundle's ``model.keras``, through the searches of `LanguageModelGenerator`.

    Example:
        >>> KerasGenerator("saved_models/lm").generate("the river", 40, method="beam", beam_width=4)
    """

    def __init__(self, bundle_dir):
        from nlpkit.decoding import KerasStepFunction
        from nlpkit.models import load_keras_model

        self._read_bundle(bundle_dir)
        self.step = KerasStepFunction(load_keras_model(bundle_file(self.bundle_dir, self.manifest, "keras")))


class SavedModelGenerator(_SavedModelForm):
    """Continues prompts greedily with the SavedModel's ``serving_default`` (tokenizer inside).

    Example:
        >>> SavedModelGenerator("saved_models/lm").generate("the river", max_new_tokens=40)
    """

    task = "language_model"

    def generate(self, prompts, max_new_tokens=100, method="greedy", **options):
        """Continuation text of a prompt (str in, str out) or of each prompt of a list."""
        if method != "greedy" or options:
            raise ValueError(
                "The SavedModel generates greedily only; sampling, beam search and their options "
                f"need format 'keras' or 'tflite'. Received: method={method!r}, options {sorted(options)}"
            )
        batch, single = _as_batch(prompts)
        if not batch:
            return []
        import tensorflow as tf

        outputs = self._loaded.signatures["serving_default"](
            prompt=tf.constant(batch, tf.string), max_tokens=tf.constant(int(max_new_tokens), tf.int32)
        )
        texts = [text.decode("utf-8") for text in outputs["text"].numpy()]
        return texts[0] if single else texts


def load_predictor(bundle_dir, format="tflite", precision="float32", num_threads=1):
    """Opens a bundle in one of its exported forms: "tflite" (default), "keras" or "saved_model".

    The bundle's task decides the predictor: a text classifier's predict() gives
    `ClassPrediction` objects, a sequence tagger's `TagPrediction` objects; a translation
    bundle's predictor has ``translate`` and a language model's ``generate`` (str in, str
    out).

    Example:
        >>> predictor = load_predictor("saved_models/sentiment", format="saved_model")
        >>> [p.label for p in predictor.predict(["a joy", "a chore"])]
    """
    if format not in FORMATS:
        raise ValueError(f"`format` must be one of {FORMATS}. Received: {format!r}")
    predictor = task_of(bundle_dir, read_manifest(bundle_dir)).load("predictors", format)
    if format == "tflite":
        return predictor(bundle_dir, precision=precision, num_threads=num_threads)
    return predictor(bundle_dir)
