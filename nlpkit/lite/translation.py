"""Translation with a bundle's TFLite ``encode`` and ``decode_step`` signatures; numpy, LiteRT and sentencepiece."""

from pathlib import Path

import numpy as np

from nlpkit.data.translation import encode_source
from nlpkit.decoding.search import log_softmax
from nlpkit.decoding.translation import strip_end, translate_ids
from nlpkit.lite.runtime import load_signature_runner
from nlpkit.manifest import bundle_assets, bundle_file, read_manifest
from nlpkit.text.python_tokenizers import load_tokenizer

_MODEL_KEYS = {"float32": "tflite", "int8": "tflite_int8"}


class TFLiteDecoderStep:
    """The TFLite ``encode`` / ``decode_step`` pair as the step function `translate_ids` drives.

    Both signatures have batch 1, so ``encode`` runs once per source and ``decode_step``
    once per row; the per-row memories are right-padded to the longest source with a zero
    mask, as the Keras side pads its batch. States are numpy arrays in the order of
    ``state_names`` (recurrent states, then ``memory``, ``keys``, ``memory_mask``).

    Args:
        model: path of the ``.tflite`` file or its bytes.
        state_names: list of str, the decoding state names (the bundle's ``translation``
            entry).
        recurrent_states: int, how many of them ``decode_step`` updates.
        num_threads: int, default 1.

    Example:
        >>> step = TFLiteDecoderStep("saved_models/translation/model.tflite", names, 3)
        >>> result = translate_ids(step, [[41, 7, 3]], bos_id=2, eos_id=3)
    """

    def __init__(self, model, state_names, recurrent_states, num_threads=1):
        self._encode = load_signature_runner(model, "encode", num_threads=num_threads)
        self._step = load_signature_runner(model, "decode_step", num_threads=num_threads)
        self.state_names = list(state_names)
        self.recurrent_states = int(recurrent_states)
        missing = [name for name in self.state_names if name not in self._step.get_input_details()]
        if missing:
            raise ValueError(f"The decode_step signature lacks the states {missing}.")

    def encode(self, sources):
        """Initial decoding states for a list of source id lists (end id included)."""
        rows = [self._encode(source_ids=np.asarray([source], np.int32)) for source in sources]
        width = max(len(source) for source in sources)
        states = []
        for index, name in enumerate(self.state_names):
            values = [np.asarray(row[name]) for row in rows]
            if index >= self.recurrent_states:
                # memory, keys and mask: pad the time axis (1) to the longest source.
                values = [np.pad(v, [(0, 0), (0, width - v.shape[1])] + [(0, 0)] * (v.ndim - 2)) for v in values]
            states.append(np.concatenate(values, axis=0))
        return states

    def logits(self, token_ids, states):
        token_ids = np.asarray(token_ids).reshape(-1)
        rows_logits, rows_states = [], []
        for row, token in enumerate(token_ids):
            feed = {name: np.ascontiguousarray(state[row : row + 1]) for name, state in zip(self.state_names, states)}
            results = self._step(token_id=np.array([token], np.int32), **feed)
            rows_logits.append(np.array(results["logits"][0]))
            rows_states.append([np.array(results[name][0]) for name in self.state_names[: self.recurrent_states]])
        new_states = [np.stack([row[k] for row in rows_states]) for k in range(self.recurrent_states)]
        # The encoder's memory, keys and mask do not change from step to step.
        return np.stack(rows_logits), new_states + [np.asarray(state) for state in states[self.recurrent_states :]]

    def __call__(self, token_ids, states):
        logits, new_states = self.logits(token_ids, states)
        return log_softmax(logits), new_states


class Translator:
    """Translates with a translation bundle's TFLite model; imports no TensorFlow.

    Sources are tokenized by the bundle's SentencePiece model (the ``sentencepiece``
    package, the same ids as the SavedModel's graph tokenizer), searched by
    `nlpkit.decoding.translate_ids` (the code that also drives the Keras model, so greedy
    output equals the Keras model's token for token) and decoded back to text.

    Args:
        bundle_dir: a bundle written by `nlpkit.export.write_translation_bundle`.
        precision: "float32" (default, ``model.tflite``) or "int8" (``model.int8.tflite``).
        num_threads: int, default 1.

    Example:
        >>> translator = Translator("saved_models/translation")
        >>> translator.translate("Ein Hund läuft im Park.")
        >>> translator.translate(["Zwei Männer lachen."], method="beam", beam_width=5)
    """

    task = "translation"

    def __init__(self, bundle_dir, precision="float32", num_threads=1):
        if precision not in _MODEL_KEYS:
            raise ValueError(f"`precision` must be one of {sorted(_MODEL_KEYS)}. Received: {precision!r}")
        self._read_bundle(bundle_dir)
        spec = self.manifest["translation"]
        model_path = bundle_file(self.bundle_dir, self.manifest, _MODEL_KEYS[precision])
        self.step = TFLiteDecoderStep(model_path, spec["state_names"], spec["recurrent_states"], num_threads)

    def _read_bundle(self, bundle_dir):
        """Manifest, tokenizer, start/end ids and decoding settings: all but the step function."""
        self.bundle_dir = Path(bundle_dir)
        self.manifest = read_manifest(self.bundle_dir, task=self.task)
        self.tokenizer = load_tokenizer(bundle_assets(self.bundle_dir, self.manifest))
        spec = self.manifest["translation"]
        self.bos_id, self.eos_id = int(spec["bos_id"]), int(spec["eos_id"])
        self.settings = dict(spec.get("decoding", {}))

    def source_ids(self, text):
        """The ids the model reads for ``text`` (subwords, cut to the bundle's limit, end id)."""
        return encode_source(self.tokenizer, text, self.settings.get("max_source_length"))

    def translate_with_ids(self, texts, method="greedy", **options):
        """``(translations, generation)`` for a list of texts; see `nlpkit.decoding.translate_ids`."""
        limits = {
            key: self.settings[key] for key in ("max_length_ratio", "max_length_offset") if key in self.settings
        }
        if method == "beam":
            limits["beam_width"] = self.settings.get("beam_width", 4)
            limits["length_penalty"] = self.settings.get("length_penalty", 1.0)
        result = translate_ids(
            self.step, [self.source_ids(text) for text in texts], self.bos_id, self.eos_id, method,
            **{**limits, **options},
        )
        return [self.tokenizer.decode(strip_end(tokens, self.eos_id)) for tokens in result.tokens], result

    def translate(self, texts, method="greedy", **options):
        """The translation of a text (str in, str out) or of each text of a list.

        Args:
            texts: str or list of str.
            method: "greedy" (default) or "beam" (width and length penalty from the
                bundle unless given).
            **options: ``beam_width``, ``length_penalty``, ``max_length_ratio``,
                ``max_length_offset`` (see `nlpkit.decoding.translate_ids`).
        """
        single = isinstance(texts, str)
        translations, _ = self.translate_with_ids([texts] if single else list(texts), method, **options)
        return translations[0] if single else translations
