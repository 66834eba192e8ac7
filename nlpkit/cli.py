"""The ``nlpkit`` command: ``train | evaluate | export | predict``.

Recipes are found through the ``nlpkit.recipes`` entry-point group (see pyproject.toml),
so this module never imports a recipe package directly.
"""

import argparse
import json
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


def recipes():
    """Registered recipes: task name -> entry point (``main(argv)`` of the recipe module)."""
    return {entry.name: entry for entry in metadata.entry_points(group=RECIPE_GROUP)}


def build_parser():
    parser = argparse.ArgumentParser(prog="nlpkit", description="Recurrent-network NLP: train, evaluate, export, predict.")
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
    evaluate.add_argument("--token-column", type=int, default=0, help="a tagger's CoNLL token column")
    evaluate.add_argument("--tag-column", type=int, default=-1, help="a tagger's CoNLL tag column (-1: last)")
    evaluate.add_argument("--passage-tokens", type=int, default=None,
                          help="a tagger reads consecutive sentences of a document joined up to N tokens "
                               "(default: as the bundle was trained; 0: sentence by sentence)")
    evaluate.add_argument("--format", choices=("tflite", "keras", "saved_model"), default="tflite")
    evaluate.add_argument("--int8", action="store_true", help="use model.int8.tflite")
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
    predict.add_argument("--format", choices=("tflite", "keras", "saved_model"), default="tflite")
    predict.add_argument("--int8", action="store_true", help="use model.int8.tflite")
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
        rows = read_classification(args.data, text_column=args.text_column, label_column=args.label_column)
    else:
        rows = load(args.dataset, args.split)
    raw_labels = manifest.get("raw_labels") or manifest["labels"]
    index = {label: i for i, label in enumerate(raw_labels)}
    index.update({label: i for i, label in enumerate(manifest["labels"])})
    unknown = sorted({row.label for row in rows} - set(index))
    if unknown:
        raise NlpkitError(f"labels {unknown} in the data are not labels of the bundle {raw_labels}")
    predictor = load_predictor(args.bundle, format=args.format, precision="int8" if args.int8 else "float32")
    predicted = [manifest["labels"].index(p.label) for p in predictor.predict([row.text for row in rows])]
    report = classification_report([index[row.label] for row in rows], predicted, manifest["labels"])
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


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
    predictor = load_predictor(args.bundle, format=args.format, precision="int8" if args.int8 else "float32")
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
                 int8=args.int8, metadata=kept)
    print(f"re-exported {args.bundle}")
    return 0


def run_predict(args):
    from nlpkit.serving import load_predictor

    texts = args.texts
    if not texts or texts == ["-"]:
        # Bytes in, replacement characters for invalid UTF-8: a stray byte must not stop a batch.
        texts = [line.decode("utf-8", "replace").rstrip("\r\n") for line in sys.stdin.buffer]
    predictor = load_predictor(args.bundle, format=args.format, precision="int8" if args.int8 else "float32")
    task = getattr(predictor, "task", None)
    if task in ("translation", "language_modeling"):
        _print_generated(texts, predictor, args)
        return 0
    tagger = task == "sequence_tagging"
    for text, prediction in zip(texts, predictor.predict(texts)):
        if tagger:
            _print_tagged(text, prediction, args.json)
        elif args.json:
            print(json.dumps({"text": text, "label": prediction.label, "scores": prediction.scores}, ensure_ascii=False))
        else:
            print(f"{prediction.label}\t{prediction.scores[prediction.label]:.4f}\t{_preview(text)}")
    return 0


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
            print(json.dumps({"text": text, key: output}, ensure_ascii=False))
        elif predictor.task == "translation":
            print(output)
        else:
            # A word-level model's pieces are joined by spaces, a character-level model's directly.
            separator = "" if predictor.manifest["generation"]["level"] == "char" else " "
            print(text + (separator if text and output else "") + output)


def _print_tagged(text, prediction, as_json):
    """One line per text: the tokens with entities marked ``[TYPE words]``, or a JSON record."""
    if as_json:
        entities = [
            {"type": entity.type, "start": entity.start, "end": entity.end, "text": entity.text}
            for entity in prediction.entities
        ]
        record = {"text": text, "tokens": prediction.tokens, "tags": prediction.tags, "entities": entities}
        print(json.dumps(record, ensure_ascii=False))
        return
    pieces = list(prediction.tokens)
    for entity in reversed(prediction.entities):
        pieces[entity.start : entity.end] = [f"[{entity.type} {entity.text}]"]
    print(" ".join(pieces))


def _preview(text, limit=100):
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


COMMANDS = {"train": run_train, "evaluate": run_evaluate, "export": run_export, "predict": run_predict}


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    # argparse returns texts that follow an option (`predict BUNDLE --json "text"`) as
    # unrecognized, because the positionals were consumed before the option.
    if args.command == "predict" and extras and not any(extra.startswith("-") for extra in extras):
        args.texts, extras = args.texts + extras, []
    if extras:
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
    try:
        return COMMANDS[args.command](args)
    except (NlpkitError, OSError, ValueError, KeyError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"nlpkit {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
