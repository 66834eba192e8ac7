"""Per-task glue of the CLI: ``nlpkit evaluate`` reports, ``nlpkit predict`` lines, re-export parity.

`nlpkit.tasks.TASK_REGISTRY` names one function of each kind here per task; `nlpkit.cli`
parses arguments and calls them, so the CLI itself has no branch per task. Every evaluate
function takes the parsed ``args`` (``bundle``, ``data`` or ``dataset`` + ``split``,
``format``, ``json``, and its task's options) and returns the report it printed.
"""

import json
import math
import sys

from nlpkit.errors import NlpkitError


# -- shared ------------------------------------------------------------------------------------


def precision(args):
    """The TFLite file ``--int8`` picks; refused with the formats that have no int8 twin."""
    if args.int8 and args.format != "tflite":
        raise NlpkitError(f"--int8 picks model.int8.tflite, so it needs --format tflite, not --format {args.format}")
    return "int8" if args.int8 else "float32"


def open_predictor(args):
    """The predictor of ``args.bundle`` in ``args.format`` (and ``--int8``)."""
    from nlpkit.serving import load_predictor

    return load_predictor(args.bundle, format=args.format, precision=precision(args))


def require_examples(rows, args, kind):
    """Raises ``NlpkitError`` naming the data source when ``rows`` is empty.

    A report over zero examples (accuracy 0.0, exit 0) reads like a real score of a broken
    model, so an empty or header-only file or split is an error instead.

    Example:
        >>> require_examples([], argparse.Namespace(data="dev.tsv"), "labelled rows")
        Traceback (most recent call last):
        ...
        nlpkit.errors.NlpkitError: dev.tsv: no examples to evaluate (the file holds no labelled rows)
    """
    if rows:
        return
    if getattr(args, "data", None):
        raise NlpkitError(f"{args.data}: no examples to evaluate (the file holds no {kind})")
    raise NlpkitError(
        f"data set {args.dataset!r}, split {args.split!r}: no examples to evaluate (the split holds no {kind})"
    )


def _print_report(report, args, formatter):
    print(json.dumps(report, indent=2) if args.json else formatter(report))
    return report


def json_line(record):
    """One JSON object per line; a NaN or infinite score (a broken bundle) becomes null, as JSON requires."""

    def finite(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {key: finite(item) for key, item in value.items()}
        if isinstance(value, list):
            return [finite(item) for item in value]
        return value

    return json.dumps(finite(record), ensure_ascii=False, allow_nan=False)


# C0/C1 controls (ESC starts the terminal's escape sequences) and the bidirectional overrides,
# which reorder what a terminal shows; printable text, tabs and newlines excluded.
_UNSAFE = {code for code in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)] if code not in (0x09, 0x0A)}
_UNSAFE |= {0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}
_ESCAPES = {code: f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" for code in _UNSAFE}


def terminal_safe(text):
    """``text`` with control characters written as ``\\x1b``-style escapes, for plain-text output.

    Input echoed to a terminal must not drive it: an ESC from a text file could recolour,
    retitle or rewrite the user's screen. JSON output escapes these by itself.

    Example:
        >>> terminal_safe("red\\x1b[31m text")
        'red\\\\x1b[31m text'
    """
    return text.translate(_ESCAPES)


def _preview(text, limit=100):
    text = terminal_safe(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def input_notes(predictor, texts):
    """Per text, what the output should say about its input: empty, or cut at ``max_length``.

    An empty text still gets a label (the model's answer to no input), which looks as
    confident as any other; a text longer than the tokenizer's ``max_length`` is classified
    from its beginning only. Both are facts a caller needs next to the prediction.

    Example:
        >>> input_notes(predictor, ["", "fine"])
        [{'empty': True}, {}]
    """
    tokenizer = getattr(predictor, "tokenizer", None)
    if tokenizer is None:
        from nlpkit.manifest import bundle_assets
        from nlpkit.text.python_tokenizers import load_tokenizer

        tokenizer = load_tokenizer(bundle_assets(predictor.bundle_dir, predictor.manifest))
    notes = []
    for text in texts:
        kept, total = tokenizer.truncates(text)
        note = {}
        if total == 0:
            note["empty"] = True
        if kept < total:
            note["truncated"] = {"tokens_kept": kept, "tokens": total}
        notes.append(note)
    return notes


def warn(number, note, as_json):
    """Says on stderr what `input_notes` found for the text at 1-based position ``number``."""
    del as_json  # the note goes to stderr in both output modes; JSON records carry it too
    if note.get("empty"):
        print(f"nlpkit predict: note: text {number} has no tokens; its prediction is the model's "
              "answer to an empty input", file=sys.stderr)
    if "truncated" in note:
        cut = note["truncated"]
        print(f"nlpkit predict: note: text {number} has {cut['tokens']} tokens; only the first "
              f"{cut['tokens_kept']} (the bundle's max_length) were read", file=sys.stderr)


# -- classification ------------------------------------------------------------------------------


def evaluate_classification(args):
    """Accuracy, macro F1 and per-class figures of a classifier on a labelled TSV/CSV file or split."""
    from nlpkit.data import load, read_classification
    from nlpkit.manifest import read_manifest, task_section
    from nlpkit.metrics import classification_report, format_report

    manifest = read_manifest(args.bundle, task="classification")
    section = task_section(args.bundle, manifest)
    if args.data:
        rows = read_classification(args.data, text_column=args.text_column, label_column=args.label_column,
                                   quoting=args.quoting == "csv")
    else:
        rows = load(args.dataset, args.split)
    require_examples(rows, args, "labelled rows")
    raw_labels = section.raw_labels or section.labels
    index = {label: i for i, label in enumerate(raw_labels)}
    index.update({label: i for i, label in enumerate(section.labels)})
    unknown = sorted({row.label for row in rows} - set(index))
    if unknown:
        raise NlpkitError(f"labels {unknown} in the data are not labels of the bundle {list(raw_labels)}")
    predictor = open_predictor(args)
    predicted = [section.labels.index(p.label) for p in predictor.predict([row.text for row in rows])]
    report = classification_report([index[row.label] for row in rows], predicted, list(section.labels))
    return _print_report(report, args, format_report)


def print_classified(texts, predictor, args):
    """One line per text: label, its score and the text (or a JSON record with every score)."""
    notes = input_notes(predictor, texts)
    for number, (text, prediction) in enumerate(zip(texts, predictor.predict(texts)), start=1):
        note = notes[number - 1]
        warn(number, note, args.json)
        if args.json:
            print(json_line({"text": text, "label": prediction.label, "scores": prediction.scores, **note}))
        else:
            # The label comes from the bundle's nlpkit.json, which may hold an ESC as well as a text may.
            label = terminal_safe(prediction.label)
            print(f"{label}\t{prediction.scores[prediction.label]:.4f}\t{_preview(text)}")


def classification_sample_parity():
    """Re-export parity on the embedded sentiment sample's test sentences.

    The bundle does not keep its training data, and parity compares the exported forms with
    each other, which any real text of the language shows; the samples ship with nlpkit.
    """
    from nlpkit.data import read_classification
    from nlpkit.export import classifier_parity
    from nlpkit.samples import sample_path

    texts = [row.text for row in read_classification(sample_path("sentiment_test.tsv"))]
    return lambda staged: classifier_parity(staged, texts)


# -- tagging -------------------------------------------------------------------------------------


def evaluate_tagging(args):
    """conlleval span F1 (overall and per type) of a tagger bundle on tagged sentences."""
    from nlpkit.data import load, read_conll, tag_by_passages
    from nlpkit.manifest import read_manifest, task_section
    from nlpkit.metrics import format_span_report
    from nlpkit.metrics.entity_spans import span_f1

    manifest = read_manifest(args.bundle, task="tagging")
    scheme = task_section(args.bundle, manifest).output_scheme
    if args.data:
        rows = read_conll(args.data, token_column=args.token_column, tag_column=args.tag_column, tag_scheme=scheme)
    else:
        rows = load(args.dataset, args.split, tag_scheme=scheme)
    require_examples(rows, args, "tagged sentences")
    predictor = open_predictor(args)
    # A tagger trained on passages (--passage-tokens of the recipe) is scored on passages too.
    passage_tokens = args.passage_tokens
    if passage_tokens is None:
        passage_tokens = (manifest.get("config") or {}).get("passage_tokens", 0)
        if not isinstance(passage_tokens, int) or isinstance(passage_tokens, bool) or passage_tokens < 0:
            raise NlpkitError(
                f"{args.bundle}: nlpkit.json config.passage_tokens must be an int >= 0, found "
                f"{passage_tokens!r:.80}; pass --passage-tokens to override it"
            )
    predicted = tag_by_passages(
        rows, passage_tokens, lambda token_lists: [p.tags for p in predictor.predict_tokens(token_lists)]
    )
    report = span_f1([row.tags for row in rows], predicted, scheme=scheme)
    return _print_report(report, args, format_span_report)


def print_tagged(texts, predictor, args):
    """One line per text: the tokens with entities marked ``[TYPE words]``, or a JSON record."""
    notes = input_notes(predictor, texts)
    for number, (text, prediction) in enumerate(zip(texts, predictor.predict(texts)), start=1):
        note = notes[number - 1]
        warn(number, note, args.json)
        if args.json:
            entities = [
                {"type": entity.type, "start": entity.start, "end": entity.end, "text": entity.text}
                for entity in prediction.entities
            ]
            record = {"text": text, "tokens": prediction.tokens, "tags": prediction.tags, "entities": entities}
            print(json_line({**record, **note}))
            continue
        pieces = list(prediction.tokens)
        for entity in reversed(prediction.entities):
            pieces[entity.start : entity.end] = [f"[{entity.type} {entity.text}]"]
        print(terminal_safe(" ".join(pieces)))


def tagging_sample_parity():
    """Re-export parity on the embedded NER sample's test sentences (and an empty one)."""
    from nlpkit.data import read_conll
    from nlpkit.export import tagger_parity
    from nlpkit.samples import sample_path

    token_lists = [list(row.tokens) for row in read_conll(sample_path("ner_test.txt"))]
    return lambda staged: tagger_parity(staged, token_lists + [[]])


# -- language model ------------------------------------------------------------------------------


def evaluate_language_model(args):
    """Exact perplexity (and nats, bits per token) of a language model on a text file or split.

    The text is one stream (`nlpkit.data.encode_stream`, read after the start token) run
    through the bundle's step function one token at a time, states carried throughout, as
    the recipe's own test figure is computed.
    """
    import numpy as np

    from nlpkit.data import encode_stream, load, read_text, start_token_id

    if args.format == "saved_model":
        raise NlpkitError("a language model's SavedModel only generates; evaluate with --format tflite or keras")
    text = read_text(args.data) if args.data else load(args.dataset, args.split)
    if isinstance(text, list):
        text = "\n".join(text)
    predictor = open_predictor(args)
    ids = encode_stream(predictor.tokenizer, text)
    require_examples(ids.tolist(), args, "tokens")
    step = predictor.step
    states = step.initial_states(1)
    previous, total = start_token_id(predictor.tokenizer.vocabulary), 0.0
    for token in ids.tolist():
        log_probs, states = step(np.array([previous], np.int32), states)
        total -= float(log_probs[0, token])
        previous = token
    nats = total / len(ids)
    report = {
        "perplexity": round(math.exp(nats), 3),
        "nats_per_token": round(nats, 4),
        "bits_per_token": round(nats / math.log(2.0), 4),
        "tokens": int(len(ids)),
    }
    return _print_report(report, args, lambda r: "\n".join(f"{key}: {value}" for key, value in r.items()))


def print_generated(texts, predictor, args):
    """One line per text: its translation, or a language model's continuation of it."""
    if args.max_new_tokens < 0:
        raise ValueError(f"--max-new-tokens must be >= 0. Received: {args.max_new_tokens}")
    translation = predictor.task == "translation"
    if translation:
        outputs = predictor.translate(texts, method=args.method or "beam") if texts else []
        key = "translation"
    else:
        outputs = predictor.generate(texts, args.max_new_tokens, method=args.method or "greedy") if texts else []
        key = "continuation"
    for text, output in zip(texts, outputs):
        if args.json:
            print(json_line({"text": text, key: output}))
        elif translation:
            print(terminal_safe(output))
        else:
            # A word-level model's pieces are joined by spaces, a character-level model's directly.
            separator = "" if predictor.manifest["generation"]["level"] == "char" else " "
            print(terminal_safe(text + (separator if text and output else "") + output))


def language_model_sample_parity():
    """Re-export parity: greedy continuations of the first lines of the embedded LM sample."""
    from nlpkit.data import read_lines
    from nlpkit.export.parity import language_model_parity
    from nlpkit.samples import sample_path

    prompts = [" ".join(line.split()[:4]) for line in read_lines(sample_path("lm_train.txt"))[:5]]
    return lambda staged: language_model_parity(staged, prompts, 20)


# -- translation ---------------------------------------------------------------------------------


def evaluate_translation(args):
    """Corpus BLEU and chrF (sacrebleu) of a translation bundle on a parallel TSV file or split.

    ``--data`` is a tab-separated file whose header names the bundle's two languages (as
    the embedded sample ``translation_train.tsv`` does); ``--method`` picks greedy or beam
    search (default beam, with the bundle's settings).
    """
    from nlpkit.data import load, read_parallel_tsv
    from nlpkit.manifest import read_manifest
    from nlpkit.metrics import translation_scores

    manifest = read_manifest(args.bundle, task="translation")
    languages = manifest.get("languages") or {}
    if args.data:
        if not isinstance(languages, dict) or not {"source", "target"} <= set(languages):
            raise NlpkitError(f"{args.bundle}: nlpkit.json names no 'languages' (source, target) to read "
                              f"the columns of {args.data} by")
        pairs = read_parallel_tsv(args.data, languages["source"], languages["target"])
    else:
        pairs = load(args.dataset, args.split)
    require_examples(pairs, args, "sentence pairs")
    predictor = open_predictor(args)
    method = args.method or "beam"
    translations = predictor.translate([pair.source for pair in pairs], method=method)
    scores = translation_scores(translations, [pair.target for pair in pairs]).as_dict()
    report = {"sentences": len(pairs), "method": method, **scores}
    return _print_report(report, args, lambda r: "\n".join(f"{key}: {value}" for key, value in r.items()))


def translation_sample_parity():
    """Re-export parity: greedy translations of the embedded translation sample's test sources."""
    from nlpkit.data import read_parallel_tsv
    from nlpkit.export.parity import translation_parity
    from nlpkit.samples import sample_path

    path = sample_path("translation_test.tsv")
    source, target = path.read_text(encoding="utf-8").splitlines()[0].split("\t")[:2]
    sources = [pair.source for pair in read_parallel_tsv(path, source, target)][:20]
    return lambda staged: translation_parity(staged, sources)
