"""The ``nlpkit`` command: ``train | evaluate | export | predict``.

Recipes are found through the ``nlpkit.recipes`` entry-point group (see pyproject.toml),
so this module never imports a recipe package directly.
"""

import argparse
import os
import sys
from importlib import metadata

from nlpkit.errors import NlpkitError
from nlpkit.evaluation import terminal_safe
from nlpkit.tasks import FORMATS

RECIPE_GROUP = "nlpkit.recipes"

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

    evaluate = commands.add_parser(
        "evaluate", help="score a bundle on a file or a data set split: accuracy (classifier), span F1 (tagger), "
                         "perplexity (language model), BLEU (translation)")
    evaluate.add_argument("bundle")
    source = evaluate.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="a classifier: TSV/CSV file with a text and a label column; a tagger: a "
                                       "CoNLL file; a language model: plain text; translation: a TSV file whose "
                                       "header names the two languages")
    source.add_argument("--dataset", help="registered data set name, e.g. sst2, conll2003, ptb or multi30k")
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
    evaluate.add_argument("--method", choices=("greedy", "beam"), help="a translation's search (default: beam)")
    evaluate.add_argument("--format", choices=FORMATS, default="tflite", help=FORMAT_HELP)
    evaluate.add_argument("--int8", action="store_true", help="use model.int8.tflite (--format tflite only)")
    evaluate.add_argument("--json", action="store_true", help="print the report as JSON")

    export = commands.add_parser("export", help="rewrite a bundle's SavedModel and TFLite files from model.keras "
                                                "(any task)")
    export.add_argument("bundle")
    export.add_argument("--int8", action=argparse.BooleanOptionalAction, default=True,
                        help="also write model.int8.tflite (default: yes)")
    export.add_argument("--target", dest="targets", default=None,
                        help="comma-separated runtimes: litert (always), web (LiteRT.js: fixed-length buckets), "
                             "mediapipe (MediaPipe TextClassifier; regex-tokenizer classifiers); default: the "
                             "targets the bundle has")

    predict = commands.add_parser(
        "predict", help="classify, tag, translate or continue texts given as arguments or as lines on stdin"
    )
    predict.add_argument("bundle")
    predict.add_argument("texts", nargs="*", help="texts to classify, tag (split at spaces), translate or continue "
                                                  "(language model); none (or '-') reads stdin lines")
    predict.add_argument("--format", choices=FORMATS, default="tflite", help=FORMAT_HELP)
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
    """Scores a bundle of any task with its task's evaluate function (`nlpkit.evaluation`)."""
    from nlpkit.manifest import read_manifest
    from nlpkit.tasks import task_of

    task_of(args.bundle, read_manifest(args.bundle)).load("evaluate")(args)
    return 0


def run_export(args):
    """Rebuilds every exported form of a bundle from its ``model.keras`` and assets, any task."""
    from nlpkit.export import check_targets, write_bundle
    from nlpkit.manifest import DecodingSettings, bundle_file, read_manifest, task_section
    from nlpkit.models import load_keras_model
    from nlpkit.tasks import task_of
    from nlpkit.text import load_graph_tokenizer, load_tokenizer

    manifest = read_manifest(args.bundle)
    task = task_of(args.bundle, manifest)
    section = task_section(args.bundle, manifest)
    model = load_keras_model(bundle_file(args.bundle, manifest, "keras"))
    expected = task.load("model")
    if not isinstance(model, expected):
        raise NlpkitError(f"{args.bundle}: model.keras holds a {type(model).__name__}; a {task.name} bundle "
                          f"needs a {expected.__name__}")
    if isinstance(getattr(section, "decoding", None), DecodingSettings):
        model.decoding = section.decoding
    assets = bundle_file(args.bundle, manifest, "assets")
    kept = {key: manifest[key] for key in task.kept_fields if key in manifest}
    targets = args.targets
    if targets is None:
        targets = sorted({entry.get("target", "litert") for entry in (manifest.get("tflite_files") or {}).values()
                          if isinstance(entry, dict)})
    write_bundle(args.bundle, model=model, tokenizer=load_tokenizer(assets),
                 graph_tokenizer=load_graph_tokenizer(assets), label_names=manifest.get("labels"),
                 int8=args.int8, metadata=kept, parity=task.load("sample_parity")(), targets=check_targets(targets))
    print(f"re-exported {args.bundle}")
    return 0


def run_predict(args):
    """Prints the predictions of a bundle of any task, in its task's output form."""
    from nlpkit.evaluation import open_predictor
    from nlpkit.tasks import task_of

    texts = args.texts
    if not texts or texts == ["-"]:
        # Bytes in, replacement characters for invalid UTF-8: a stray byte must not stop a batch.
        texts = [line.decode("utf-8", "replace").rstrip("\r\n") for line in sys.stdin.buffer]
    predictor = open_predictor(args)
    task_of(args.bundle, predictor.manifest).load("output")(texts, predictor, args)
    return 0


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
