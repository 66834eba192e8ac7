"""The ``nlpkit`` command: ``train | evaluate | export | predict``.

Recipes are found through the ``nlpkit.recipes`` entry-point group (see pyproject.toml),
so this module never imports a recipe package directly.
"""

import argparse
import json
import math
import os
import sys
from importlib import metadata

from nlpkit.errors import NlpkitError

RECIPE_GROUP = "nlpkit.recipes"

# Tasks `nlpkit export` rebuilds, and the manifest fields a rebuilt bundle keeps.
EXPORTABLE_TASKS = {
    "text_classification": ("metrics", "config", "raw_labels"),
    "sequence_tagging": ("metrics", "config", "tag_scheme", "output_scheme"),
}


FORMAT_HELP = (
    "tflite (default) or keras run nothing but the model: safe for bundles you did not make. "
    "saved_model runs tf.saved_model.load, whose graph can read and write files: use it only "
    "on bundles you trust"
)


def recipes():
    """Registered recipes: task name -> entry point (``main(argv)`` of the recipe module)."""
    return {entry.name: entry for entry in metadata.entry_points(group=RECIPE_GROUP)}


def build_parser():
    parser = argparse.ArgumentParser(prog="nlpkit", description="Recurrent-network NLP: train, evaluate, export, predict.")
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's and LiteRT's own start-up and device log lines")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a recipe; flags after the task go to the recipe",
                                add_help=False)
    # add_help=False lets `train TASK --help` reach the recipe; `train --help` lists the tasks.
    train.add_argument("-h", "--help", dest="show_help", action="store_true", help="list the tasks")
    train.add_argument("task", nargs="?", help=f"one of: {', '.join(sorted(recipes())) or '(none installed)'}")
    train.add_argument("recipe_args", nargs=argparse.REMAINDER)

    evaluate = commands.add_parser("evaluate", help="score a bundle on a labelled TSV/CSV or CoNLL file, or a data set")
    evaluate.add_argument("bundle")
    source = evaluate.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="TSV/CSV file with a text and a label column (a tagger: a CoNLL file)")
    source.add_argument("--dataset", help="registered data set name, e.g. sst2 or conll2003")
    evaluate.add_argument("--split", default="test", help="split of --dataset (default: test)")
    evaluate.add_argument("--text-column", default="sentence")
    evaluate.add_argument("--label-column", default="label")
    evaluate.add_argument("--quoting", choices=("csv", "none"), default="none",
                          help="csv: standard CSV quoting; none: quote characters are text (default)")
    evaluate.add_argument("--token-column", type=int, default=0, help="a tagger's CoNLL token column")
    evaluate.add_argument("--tag-column", type=int, default=-1, help="a tagger's CoNLL tag column (-1: last)")
    evaluate.add_argument("--passage-tokens", type=int, default=None,
                          help="a tagger reads consecutive sentences of a document joined up to N tokens "
                               "(default: as the bundle was trained; 0: sentence by sentence)")
    evaluate.add_argument("--format", choices=("tflite", "keras", "saved_model"), default="tflite",
                          help=FORMAT_HELP)
    evaluate.add_argument("--int8", action="store_true", help="use model.int8.tflite (--format tflite only)")
    evaluate.add_argument("--json", action="store_true", help="print the report as JSON")

    export = commands.add_parser("export", help="rewrite a bundle's SavedModel and TFLite files from model.keras")
    export.add_argument("bundle")
    export.add_argument("--int8", action=argparse.BooleanOptionalAction, default=True,
                        help="also write model.int8.tflite (default: yes)")

    predict = commands.add_parser(
        "predict", help="classify, tag, translate or continue texts given as arguments or as lines on stdin"
    )
    predict.add_argument("bundle")
    predict.add_argument("texts", nargs="*", help="texts to classify, tag (split at spaces), translate or continue "
                                                  "(language model); none (or '-') reads stdin lines")
    predict.add_argument("--format", choices=("tflite", "keras", "saved_model"), default="tflite",
                         help=FORMAT_HELP)
    predict.add_argument("--int8", action="store_true", help="use model.int8.tflite (--format tflite only)")
    predict.add_argument("--json", action="store_true", help="one JSON object per line")
    predict.add_argument("--method", choices=("greedy", "beam", "sample"),
                         help="search of a translation (default: beam, as the bundle's settings) or language-model "
                              "bundle (default: greedy)")
    predict.add_argument("--max-new-tokens", type=int, default=100, help="tokens a language model adds (default 100)")
    return parser


def run_train(args):
    available = recipes()
    if args.show_help or args.task in (None, "-h", "--help"):
        print(f"usage: nlpkit train TASK [recipe flags]\n\ntasks: {', '.join(sorted(available))}")
        print("run 'nlpkit train TASK --help' for the flags of a task")
        return 0
    if args.task not in available:
        raise NlpkitError(f"unknown task {args.task!r}; choose one of {sorted(available)}")
    module = available[args.task].load()
    return module.main(args.recipe_args) or 0


def run_evaluate(args):
    from nlpkit.data import load, read_classification
    from nlpkit.manifest import read_manifest
    from nlpkit.metrics import classification_report, format_report
    from nlpkit.serving import load_predictor

    if read_manifest(args.bundle).get("task") == "sequence_tagging":
        return _evaluate_tagger(args)
    manifest = read_manifest(args.bundle, task="text_classification")
    if args.data:
        rows = read_classification(args.data, text_column=args.text_column, label_column=args.label_column,
                                   quoting=args.quoting == "csv")
    else:
        rows = load(args.dataset, args.split)
    _require_examples(rows, args, "labelled rows")
    raw_labels = manifest.get("raw_labels") or manifest["labels"]
    index = {label: i for i, label in enumerate(raw_labels)}
    index.update({label: i for i, label in enumerate(manifest["labels"])})
    unknown = sorted({row.label for row in rows} - set(index))
    if unknown:
        raise NlpkitError(f"labels {unknown} in the data are not labels of the bundle {raw_labels}")
    predictor = load_predictor(args.bundle, format=args.format, precision=_precision(args))
    predicted = [manifest["labels"].index(p.label) for p in predictor.predict([row.text for row in rows])]
    report = classification_report([index[row.label] for row in rows], predicted, manifest["labels"])
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def _require_examples(rows, args, kind):
    """Raises ``NlpkitError`` naming the data source when ``rows`` is empty.

    A report over zero examples (accuracy 0.0, exit 0) reads like a real score of a broken
    model, so an empty or header-only file or split is an error instead.

    Example:
        >>> _require_examples([], argparse.Namespace(data="dev.tsv"), "labelled rows")
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


def _evaluate_tagger(args):
    """conlleval span F1 (overall and per type) of a tagger bundle on tagged sentences."""
    from nlpkit.data import load, read_conll, tag_by_passages
    from nlpkit.manifest import read_manifest
    from nlpkit.metrics import format_span_report
    from nlpkit.metrics.entity_spans import span_f1
    from nlpkit.serving import load_predictor

    manifest = read_manifest(args.bundle, task="sequence_tagging")
    scheme = manifest["output_scheme"]
    if args.data:
        rows = read_conll(args.data, token_column=args.token_column, tag_column=args.tag_column, tag_scheme=scheme)
    else:
        rows = load(args.dataset, args.split, tag_scheme=scheme)
    _require_examples(rows, args, "tagged sentences")
    predictor = load_predictor(args.bundle, format=args.format, precision=_precision(args))
    # A tagger trained on passages (--passage-tokens of the recipe) is scored on passages too.
    passage_tokens = args.passage_tokens
    if passage_tokens is None:
        passage_tokens = manifest.get("config", {}).get("passage_tokens", 0)
    predicted = tag_by_passages(
        rows, passage_tokens, lambda token_lists: [p.tags for p in predictor.predict_tokens(token_lists)]
    )
    report = span_f1([row.tags for row in rows], predicted, scheme=scheme)
    print(json.dumps(report, indent=2) if args.json else format_span_report(report))
    return 0


def run_export(args):
    from nlpkit.export import write_bundle
    from nlpkit.models import load_keras_model
    from nlpkit.manifest import bundle_file, read_manifest
    from nlpkit.text import load_graph_tokenizer, load_tokenizer

    manifest = read_manifest(args.bundle)
    if manifest.get("task") not in EXPORTABLE_TASKS:
        raise NlpkitError(
            f"{args.bundle}: bundle task is {manifest.get('task')!r}; export knows {list(EXPORTABLE_TASKS)}"
        )
    model = load_keras_model(bundle_file(args.bundle, manifest, "keras"))
    assets = bundle_file(args.bundle, manifest, "assets")
    twin = load_tokenizer(assets)
    kept = {key: manifest[key] for key in EXPORTABLE_TASKS[manifest["task"]] if key in manifest}
    write_bundle(args.bundle, task=manifest["task"], model=model, tokenizer=twin,
                 graph_tokenizer=load_graph_tokenizer(assets), label_names=manifest["labels"],
                 int8=args.int8, metadata=kept, parity=_export_parity(manifest["task"]))
    print(f"re-exported {args.bundle}")
    return 0


def _export_parity(task):
    """The parity check of a re-export, on the embedded sample's real sentences.

    The bundle does not keep its training data, and parity compares the exported forms with
    each other, which any real text of the language shows; the samples ship with nlpkit.
    """
    from nlpkit.data import read_classification, read_conll
    from nlpkit.export import classifier_parity, tagger_parity
    from nlpkit.samples import sample_path

    if task == "text_classification":
        texts = [row.text for row in read_classification(sample_path("sentiment_test.tsv"))]
        return lambda staged: classifier_parity(staged, texts)
    token_lists = [list(row.tokens) for row in read_conll(sample_path("ner_test.txt"))]
    return lambda staged: tagger_parity(staged, token_lists + [[]])


def run_predict(args):
    from nlpkit.serving import load_predictor

    texts = args.texts
    if not texts or texts == ["-"]:
        # Bytes in, replacement characters for invalid UTF-8: a stray byte must not stop a batch.
        texts = [line.decode("utf-8", "replace").rstrip("\r\n") for line in sys.stdin.buffer]
    predictor = load_predictor(args.bundle, format=args.format, precision=_precision(args))
    task = getattr(predictor, "task", None)
    if task in ("translation", "language_modeling"):
        _print_generated(texts, predictor, args)
        return 0
    tagger = task == "sequence_tagging"
    notes = _input_notes(predictor, texts)
    for number, (text, prediction) in enumerate(zip(texts, predictor.predict(texts)), start=1):
        _warn(number, notes[number - 1], args.json)
        if tagger:
            _print_tagged(text, prediction, args.json, notes[number - 1])
        elif args.json:
            record = {"text": text, "label": prediction.label, "scores": prediction.scores, **notes[number - 1]}
            print(_json_line(record))
        else:
            # The label comes from the bundle's nlpkit.json, which may hold an ESC as well as a text may.
            label = terminal_safe(prediction.label)
            print(f"{label}\t{prediction.scores[prediction.label]:.4f}\t{_preview(text)}")
    return 0


def _precision(args):
    """The TFLite file ``--int8`` picks; refused with the formats that have no int8 twin."""
    if args.int8 and args.format != "tflite":
        raise NlpkitError(f"--int8 picks model.int8.tflite, so it needs --format tflite, not --format {args.format}")
    return "int8" if args.int8 else "float32"


def _input_notes(predictor, texts):
    """Per text, what the output should say about its input: empty, or cut at ``max_length``.

    An empty text still gets a label (the model's answer to no input), which looks as
    confident as any other; a text longer than the tokenizer's ``max_length`` is classified
    from its beginning only. Both are facts a caller needs next to the prediction.

    Example:
        >>> _input_notes(predictor, ["", "fine"])
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


def _warn(number, note, as_json):
    """Says on stderr what `_input_notes` found for the text at 1-based position ``number``."""
    if note.get("empty"):
        print(f"nlpkit predict: note: text {number} has no tokens; its prediction is the model's "
              "answer to an empty input", file=sys.stderr)
    if "truncated" in note:
        cut = note["truncated"]
        print(f"nlpkit predict: note: text {number} has {cut['tokens']} tokens; only the first "
              f"{cut['tokens_kept']} (the bundle's max_length) were read", file=sys.stderr)


def _json_line(record):
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


def _print_generated(texts, predictor, args):
    """One line per text: its translation, or a language model's continuation of it."""
    if args.max_new_tokens < 0:
        raise ValueError(f"--max-new-tokens must be >= 0. Received: {args.max_new_tokens}")
    if predictor.task == "translation":
        outputs = predictor.translate(texts, method=args.method or "beam") if texts else []
        key = "translation"
    else:
        outputs = predictor.generate(texts, args.max_new_tokens, method=args.method or "greedy") if texts else []
        key = "continuation"
    for text, output in zip(texts, outputs):
        if args.json:
            print(_json_line({"text": text, key: output}))
        elif predictor.task == "translation":
            print(terminal_safe(output))
        else:
            # A word-level model's pieces are joined by spaces, a character-level model's directly.
            separator = "" if predictor.manifest["generation"]["level"] == "char" else " "
            print(terminal_safe(text + (separator if text and output else "") + output))


def _print_tagged(text, prediction, as_json, note=None):
    """One line per text: the tokens with entities marked ``[TYPE words]``, or a JSON record."""
    if as_json:
        entities = [
            {"type": entity.type, "start": entity.start, "end": entity.end, "text": entity.text}
            for entity in prediction.entities
        ]
        record = {"text": text, "tokens": prediction.tokens, "tags": prediction.tags, "entities": entities}
        print(_json_line({**record, **(note or {})}))
        return
    pieces = list(prediction.tokens)
    for entity in reversed(prediction.entities):
        pieces[entity.start : entity.end] = [f"[{entity.type} {entity.text}]"]
    print(terminal_safe(" ".join(pieces)))


def _preview(text, limit=100):
    text = terminal_safe(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


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


COMMANDS = {"train": run_train, "evaluate": run_evaluate, "export": run_export, "predict": run_predict}


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    # argparse returns texts that follow an option (`predict BUNDLE --json "text"`) as
    # unrecognized, because the positionals were consumed before the option; with them the `--`
    # that lets a text start with "-" (`predict BUNDLE --json -- "-5 stars"`).
    if args.command == "predict" and extras:
        cut = extras.index("--") if "--" in extras else len(extras)
        before, after = extras[:cut], extras[cut + 1 :]
        if not any(extra.startswith("-") and extra != "-" for extra in before):
            args.texts, extras = args.texts + before + after, []
    if extras:
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
    if argv is None and not args.verbose:  # run as a program, not called from Python (tests, notebooks)
        from nlpkit.native_logs import filter_native_logs

        filter_native_logs()
    try:
        return COMMANDS[args.command](args)
    except (NlpkitError, OSError, ValueError, KeyError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        # Messages quote names and lines from bundles and data files, which may hold an ESC.
        print(f"nlpkit {args.command}: error: {terminal_safe(str(message))}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
