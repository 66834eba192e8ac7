"""Parity checks: the Keras model, the SavedModel and the TFLite files must agree."""

from pathlib import Path

import numpy as np
import tensorflow as tf

from nlpkit.models import load_keras_model, pad_tagging_batch
from nlpkit.lite.runtime import load_signature_runner
from nlpkit.manifest import bundle_assets, bundle_file, read_manifest
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
    manifest = read_manifest(bundle_dir, task="classification")
    tokenizer = load_tokenizer(bundle_assets(bundle_dir, manifest))
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
        runner = load_signature_runner(bundle_file(bundle_dir, manifest, key), "classify")
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

    # Fixed-length files (the web and mediapipe targets) read right-padded ids, cut to their
    # length; their reference is the Keras model on the same cut ids.
    for key, file_name in manifest["files"].items():
        entry = (manifest.get("tflite_files") or {}).get(file_name) or {}
        if entry.get("target") not in ("web", "mediapipe"):
            continue
        interpreter_scores, identical = _fixed_length_scores(bundle_dir, manifest, key, entry, ids)
        lengths = [_fixed_length(entry, len(sequence)) for sequence in ids]
        cut = [sequence[:length] for sequence, length in zip(ids, lengths)]
        reference = keras_scores if cut == ids else _stack(
            [model.predict_on_batch(_pad(cut[i : i + batch_size])) for i in range(0, len(cut), batch_size)],
            len(manifest["labels"]),
        )
        scores[key] = interpreter_scores + (keras_scores - reference)  # compared with keras_scores below
        repeat_identical[key] = identical

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


def _fixed_length(entry, length):
    """The input length a fixed-length file reads a text of ``length`` ids at: its bucket, or its one length."""
    if entry.get("target") == "mediapipe":
        return int(entry["length"])
    buckets = sorted(int(size) for size in entry["lengths"])
    return next((size for size in buckets if size >= length), buckets[-1])


def _fixed_length_scores(bundle_dir, manifest, key, entry, ids):
    """Scores of a web or mediapipe file for right-padded ``ids``, and whether a repeated call matched."""
    path = bundle_file(bundle_dir, manifest, key)
    runners = {}
    first, identical = [], True
    for sequence in ids:
        length = _fixed_length(entry, len(sequence))
        signature = entry["buckets"]["classify"][str(length)] if entry.get("target") == "web" else "classify"
        if signature not in runners:
            runners[signature] = load_signature_runner(path, signature)
        runner = runners[signature]
        padded = np.zeros((1, length), np.int32)
        kept = sequence[:length]
        padded[0, : len(kept)] = kept
        once = np.array(runner(token_ids=padded)["scores"][0])
        runner(token_ids=np.ascontiguousarray(padded[:, ::-1]))
        twice = np.array(runner(token_ids=padded)["scores"][0])
        identical = identical and np.array_equal(once, twice)
        first.append(once)
    return (np.stack(first) if first else np.zeros((0, len(manifest["labels"])))), bool(identical)


def _stack(chunks, num_labels):
    # No texts means no chunks; np.concatenate refuses an empty list.
    return np.concatenate(chunks) if chunks else np.zeros((0, num_labels), np.float32)


def _pad(sequences):
    width = max(len(sequence) for sequence in sequences)
    batch = np.zeros((len(sequences), width), np.int32)
    for row, sequence in enumerate(sequences):
        batch[row, : len(sequence)] = sequence
    return batch


def tagger_parity(bundle_dir, token_lists, batch_size=64):
    """Compares every exported form of a sequence tagger on pre-tokenized sentences.

    The Keras model (``model.keras``, loaded with ``safe_mode=True``) tags ids from the
    pure-Python tokenizer and is the reference. The SavedModel tags the same tokens through
    ``tag_tokens`` and the sentences joined by spaces through ``serving_default`` (both
    tokenize in the graph); each TFLite file tags one sentence at a time, every sentence
    twice on the same interpreter to prove no state survives between calls. Tags are
    compared as strings in the bundle's ``output_scheme``. Tokens must not contain
    whitespace (``serving_default`` would split them).

    Returns:
        dict with ``num_sentences``, ``num_tokens``, and per form (relative to Keras)
        ``sentence_agreement`` (fraction of sentences whose tags are all equal) and
        ``token_agreement``, plus ``repeat_identical`` per TFLite file.

    Example:
        >>> report = tagger_parity("saved_models/ner", [s.tokens for s in test_sentences])
        >>> report["sentence_agreement"]["tflite"]
        1.0
    """
    from nlpkit.text.tag_schemes import convert_tags

    bundle_dir = Path(bundle_dir)
    token_lists = [list(tokens) for tokens in token_lists]
    manifest = read_manifest(bundle_dir, task="tagging")
    tokenizer = load_tokenizer(bundle_assets(bundle_dir, manifest))
    tags, scheme = manifest["labels"], manifest["tag_scheme"]
    output_scheme = manifest["output_scheme"]

    model = load_keras_model(bundle_file(bundle_dir, manifest, "keras"))
    reference = model.predict_tags(token_lists, tokenizer, batch_size=batch_size)

    serving = tf.saved_model.load(str(bundle_file(bundle_dir, manifest, "saved_model")))
    predicted = {"saved_model_tokens": [], "saved_model_text": []}
    for start in range(0, len(token_lists), batch_size):
        chunk = token_lists[start : start + batch_size]
        width = max([1] + [len(tokens) for tokens in chunk])
        padded = [tokens + [""] * (width - len(tokens)) for tokens in chunk]
        outputs = {
            "saved_model_tokens": serving.signatures["tag_tokens"](tokens=tf.constant(padded, tf.string)),
            "saved_model_text": serving.signatures["serving_default"](
                text=tf.constant([" ".join(tokens) for tokens in chunk], tf.string)
            ),
        }
        for key, output in outputs.items():
            for row, tokens in enumerate(chunk):
                predicted[key].append([tag.decode("utf-8") for tag in output["tags"].numpy()[row, : len(tokens)]])

    repeat_identical = {}
    for key in ("tflite", "tflite_int8"):
        if key not in manifest["files"]:
            continue
        runner = load_signature_runner(bundle_file(bundle_dir, manifest, key), "tag")
        predicted[key], identical = [], True
        for tokens in token_lists:
            if not tokens:
                predicted[key].append([])
                continue
            word_ids, char_ids = tokenizer.encode_tokens(tokens)
            inputs = pad_tagging_batch([word_ids], [char_ids])
            once = np.array(runner(**inputs)["tags"][0])
            twice = np.array(runner(**inputs)["tags"][0])
            identical = identical and np.array_equal(once, twice)
            predicted[key].append(convert_tags([tags[i] for i in once], scheme, output_scheme))
        repeat_identical[key] = bool(identical)

    num_tokens = sum(len(tokens) for tokens in token_lists)

    def token_agreement(forms):
        same = sum(a == b for ours, theirs in zip(forms, reference) for a, b in zip(ours, theirs))
        return same / num_tokens if num_tokens else 1.0

    return {
        "num_sentences": len(token_lists),
        "num_tokens": num_tokens,
        "sentence_agreement": {
            key: float(np.mean([ours == theirs for ours, theirs in zip(value, reference)])) if token_lists else 1.0
            for key, value in predicted.items()
        },
        "token_agreement": {key: token_agreement(value) for key, value in predicted.items()},
        "repeat_identical": repeat_identical,
    }


def language_model_parity(bundle_dir, prompts, max_new_tokens=20):
    """Greedy continuations of ``prompts`` by the bundle's ``model.keras`` and by each of its TFLite files.

    Both run the same search (`nlpkit.decoding.generate_text`) over their own step
    function, so any difference is the export's.

    Returns:
        dict with ``prompts``, ``tokens_per_prompt``, and per TFLite file ``identical`` (every
        token the same) and ``matching_tokens`` (``"equal/total"``).

    Example:
        >>> language_model_parity("saved_models/lm", ["the river"], 40)["identical"]["tflite"]
        True
    """
    from nlpkit.lite import LanguageModelGenerator
    from nlpkit.serving import KerasGenerator

    prompts = list(prompts)
    _, reference = KerasGenerator(bundle_dir).generate_with_ids(prompts, max_new_tokens)
    report = {"prompts": len(prompts), "tokens_per_prompt": max_new_tokens, "identical": {}, "matching_tokens": {}}
    for key, precision in _tflite_precisions(bundle_dir):
        _, result = LanguageModelGenerator(bundle_dir, precision=precision).generate_with_ids(prompts, max_new_tokens)
        equal = sum(a == b for ours, theirs in zip(reference.tokens, result.tokens) for a, b in zip(ours, theirs))
        report["identical"][key] = reference.tokens == result.tokens
        report["matching_tokens"][key] = f"{equal}/{sum(len(tokens) for tokens in reference.tokens)}"
    return report


def translation_parity(bundle_dir, texts, batch_size=64):
    """Greedy translations of ``texts`` by the bundle's ``model.keras`` and by each TFLite file, by tokens.

    Returns:
        dict with ``sentences``, and per TFLite file ``identical`` and the first
        ``differing_sentences`` (indices).

    Example:
        >>> translation_parity("saved_models/translation", ["Ein Hund läuft."])["identical"]["tflite"]
        True
    """
    from nlpkit.lite import Translator
    from nlpkit.serving import KerasTranslator

    texts = list(texts)

    def tokens(translator):
        found = []
        for start in range(0, len(texts), batch_size):
            _, result = translator.translate_with_ids(texts[start : start + batch_size])
            found.extend(result.tokens)
        return found

    reference = tokens(KerasTranslator(bundle_dir))
    report = {"sentences": len(texts), "identical": {}, "differing_sentences": {}}
    for key, precision in _tflite_precisions(bundle_dir):
        found = tokens(Translator(bundle_dir, precision=precision))
        differing = [index for index, (a, b) in enumerate(zip(reference, found)) if a != b]
        report["identical"][key] = not differing
        report["differing_sentences"][key] = differing[:20]
    return report


def _tflite_precisions(bundle_dir):
    """``(files key, precision)`` of the TFLite files a bundle has: float32, and int8 when written."""
    files = read_manifest(bundle_dir).get("files", {})
    return [(key, precision) for key, precision in (("tflite", "float32"), ("tflite_int8", "int8")) if key in files]
