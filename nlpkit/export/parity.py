"""Parity checks: the Keras model, the SavedModel and the TFLite files must agree."""

from pathlib import Path

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from nlpkit.models import load_keras_model
from nlpkit.manifest import ASSETS_DIR, bundle_file, read_manifest
from nlpkit.text.python_tokenizers import load_tokenizer


def classifier_parity(bundle_dir, texts, batch_size=64):
    """Compares every exported form of a text classifier on ``texts``.

    The Keras model (``model.keras``, loaded with ``safe_mode=True``) scores ids from the
    pure-Python tokenizer; the SavedModel scores the raw strings with its in-graph
    tokenizer; each TFLite file scores the same ids one text at a time on one interpreter,
    and each text is scored again after a different text of the same length. A state that
    survives ``invoke()`` (as the fused LSTM op's would, were its states not fed by the
    graph) shows there: at the same length the interpreter does not reallocate, so nothing
    resets it.

    Returns:
        dict with ``num_texts``, ``max_abs_diff`` and ``label_agreement`` per form (relative to
        Keras), and ``repeat_identical`` per TFLite file (every text scored the same again
        after another text).

    Example:
        >>> report = classifier_parity("saved_models/sentiment", test_sentences)
        >>> report["max_abs_diff"]["tflite"] <= 1e-4
        True
    """
    bundle_dir = Path(bundle_dir)
    texts = list(texts)
    manifest = read_manifest(bundle_dir, task="text_classification")
    tokenizer = load_tokenizer(bundle_dir / ASSETS_DIR)
    ids = [tokenizer.encode(text) or [0] for text in texts]

    model = load_keras_model(bundle_file(bundle_dir, manifest, "keras"))
    keras_scores = _stack(
        [model.predict_on_batch(_pad(ids[i : i + batch_size])) for i in range(0, len(ids), batch_size)],
        len(manifest["labels"]),
    )

    serving = tf.saved_model.load(str(bundle_file(bundle_dir, manifest, "saved_model")))
    serve = serving.signatures["serving_default"]
    saved_scores = _stack(
        [
            serve(text=tf.constant(texts[i : i + batch_size], tf.string))["scores"].numpy()
            for i in range(0, len(texts), batch_size)
        ],
        len(manifest["labels"]),
    )
    scores = {"saved_model": saved_scores}
    repeat_identical = {}
    for key in ("tflite", "tflite_int8"):
        if key not in manifest["files"]:
            continue
        runner = Interpreter(
            model_path=str(bundle_file(bundle_dir, manifest, key)), num_threads=1
        ).get_signature_runner("classify")
        first, identical = [], True
        for sequence in ids:
            token_ids = np.asarray([sequence], np.int32)
            once = np.array(runner(token_ids=token_ids)["scores"][0])
            # The text reversed: same length, different ids (a one-token text repeats,
            # which still catches a kept state).
            runner(token_ids=np.ascontiguousarray(token_ids[:, ::-1]))
            twice = np.array(runner(token_ids=token_ids)["scores"][0])
            identical = identical and np.array_equal(once, twice)
            first.append(once)
        scores[key] = np.stack(first) if first else np.zeros((0, len(manifest["labels"])))
        repeat_identical[key] = bool(identical)

    reference_labels = keras_scores.argmax(-1)
    return {
        "num_texts": len(texts),
        "max_abs_diff": {
            key: float(np.abs(value - keras_scores).max()) if len(texts) else 0.0
            for key, value in scores.items()
        },
        "label_agreement": {
            key: float((value.argmax(-1) == reference_labels).mean()) if len(texts) else 1.0
            for key, value in scores.items()
        },
        "repeat_identical": repeat_identical,
    }


def _stack(chunks, num_labels):
    # No texts means no chunks; np.concatenate refuses an empty list.
    return np.concatenate(chunks) if chunks else np.zeros((0, num_labels), np.float32)


def _pad(sequences):
    width = max(len(sequence) for sequence in sequences)
    batch = np.zeros((len(sequences), width), np.int32)
    for row, sequence in enumerate(sequences):
        batch[row, : len(sequence)] = sequence
    return batch
