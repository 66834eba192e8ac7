"""SST-2 sentiment benchmark: nlpkit's GRU recipe vs a hand-written stock-Keras BiGRU.

Trains on SST-2 train, selects the epoch on dev (early stopping on dev accuracy), and
reports the test accuracy once. Also: training seconds (word-vector pretraining included),
TFLite file sizes, TFLite latency per sentence on 1 thread (tokenization included), and the
accuracy lost by the int8 model. Prints one JSON object. With ``--seeds`` the recipe runs
once per seed and the spread of test accuracy over seeds is reported too.

    NLPKIT_DATA=../shared/data python benchmarks/sentiment.py
    NLPKIT_DATA=../shared/data python benchmarks/sentiment.py --seeds 1234,1,2
    python benchmarks/sentiment.py --data-dir ../shared/data --no-baseline
"""

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The recipe settings this benchmark measures. Chosen on SST-2 dev only; see README.
RECIPE_FLAGS = [
    "--dataset", "sst2",
    "--pretrain-datasets", "imdb,sst2",  # PPMI+SVD word vectors from unlabelled review text
    "--embedding-dim", "300",
    "--freeze-embeddings",
    "--standardize-vectors",  # unit-variance dimensions: int8 keeps every dimension's detail
    "--max-vocabulary", "60000",
    "--ensemble-size", "3",  # three BiGRUs over the one frozen embedding, probabilities averaged
    "--batch-size", "64",
    "--learning-rate", "0.001",
    "--epochs", "3",
    "--patience", "2",
    "--parity-texts", "100000",  # parity over every test sentence, not a sample
]


def nlpkit_run(data_dir, output_dir, seed=None, extra_flags=()):
    from nlpkit.data import load
    from nlpkit.lite import TextClassifierPredictor
    from nlpkit.manifest import read_manifest
    from nlpkit.metrics import classification_report
    from recipes import sentiment_gru

    config = sentiment_gru.parse_config(
        sentiment_gru.Config,
        RECIPE_FLAGS + list(extra_flags) + ["--data-dir", data_dir, "--output-dir", output_dir]
        + (["--seed", str(seed)] if seed is not None else []),
    )
    bundle = sentiment_gru.train(config)
    manifest = read_manifest(bundle)
    metrics = manifest["metrics"]
    test_rows = load("sst2", "test", data_dir=data_dir)
    raw_labels = manifest["raw_labels"]
    truth = [raw_labels.index(row.label) for row in test_rows]

    result = {
        "recipe_flags": RECIPE_FLAGS,
        "seed": config.seed,
        "training_seconds": metrics["training_seconds"],
        "epochs_run": metrics["epochs_run"],
        "valid_accuracy": metrics["valid"]["accuracy"],
        "test_accuracy_keras": metrics["test"]["accuracy"],
        "test_macro_f1_keras": metrics["test"]["macro_f1"],
        "vocabulary_size": _vocabulary_size(bundle),
        "parity": manifest.get("parity"),
    }
    for precision, file_name in (("float32", "model.tflite"), ("int8", "model.int8.tflite")):
        predictor = TextClassifierPredictor(bundle, precision=precision, num_threads=1)
        latencies, predicted = [], []
        for row in test_rows:
            started = time.perf_counter()
            scores = predictor.scores(row.text)
            latencies.append((time.perf_counter() - started) * 1000)
            predicted.append(int(scores.argmax()))
        report = classification_report(truth, predicted, manifest["labels"])
        result[f"tflite_{precision}"] = {
            "bytes": os.path.getsize(os.path.join(bundle, file_name)),
            "test_accuracy": report["accuracy"],
            "latency_ms_median": round(statistics.median(latencies), 3),
            "latency_ms_p90": round(sorted(latencies)[int(0.9 * len(latencies))], 3),
        }
    result["int8_minus_float32_points"] = round(
        100 * (result["tflite_int8"]["test_accuracy"] - result["tflite_float32"]["test_accuracy"]), 2
    )
    return result


def _vocabulary_size(bundle):
    from nlpkit.text import load_tokenizer

    return len(load_tokenizer(os.path.join(bundle, "assets")).vocabulary)


def stock_keras_baseline(data_dir, epochs=3, seed=1234):
    """The hand-written reference: TextVectorization + 128-unit BiGRU, 3 epochs, stock Keras."""
    import keras
    import numpy as np
    import tensorflow as tf

    from nlpkit.data import load

    keras.utils.set_random_seed(seed)
    train, valid, test = (load("sst2", split, data_dir=data_dir) for split in ("train", "valid", "test"))
    vectorize = keras.layers.TextVectorization(max_tokens=20000, output_sequence_length=None)
    vectorize.adapt(tf.constant([row.text for row in train]))

    def as_dataset(rows, shuffle):
        texts = tf.constant([row.text for row in rows])
        labels = np.array([int(row.label) for row in rows])
        dataset = tf.data.Dataset.from_tensor_slices((texts, labels))
        if shuffle:
            dataset = dataset.shuffle(len(rows), seed=seed)
        return dataset.batch(32).map(lambda x, y: (vectorize(x), y)).prefetch(tf.data.AUTOTUNE)

    inputs = keras.Input((None,), dtype="int64")
    x = keras.layers.Embedding(vectorize.vocabulary_size(), 128, mask_zero=True)(inputs)
    x = keras.layers.Bidirectional(keras.layers.GRU(128))(x)
    outputs = keras.layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    started = time.perf_counter()
    model.fit(as_dataset(train, True), validation_data=as_dataset(valid, False), epochs=epochs, verbose=2)
    seconds = time.perf_counter() - started
    return {
        "model": "stock Keras TextVectorization + Embedding(128) + Bidirectional(GRU(128)), 3 epochs",
        "training_seconds": round(seconds, 1),
        "valid_accuracy": float(model.evaluate(as_dataset(valid, False), verbose=0)[1]),
        "test_accuracy": float(model.evaluate(as_dataset(test, False), verbose=0)[1]),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("NLPKIT_DATA"),
                        help="directory laid out like ../shared/data (default: $NLPKIT_DATA)")
    parser.add_argument("--output-dir", default="saved_models/sentiment_sst2")
    parser.add_argument("--seeds", default="1234",
                        help="comma-separated seeds; the recipe runs once per seed (default: 1234, the recipe's)")
    parser.add_argument("--tokenizer", choices=("word", "regex"), default="word",
                        help="the recipe's tokenizer; regex is MediaPipe's (the mediapipe export target)")
    parser.add_argument("--targets", default="litert", help="the recipe's export targets (e.g. litert,mediapipe)")
    parser.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=True,
                        help="also train the stock-Keras BiGRU reference (default: yes)")
    args = parser.parse_args(argv)
    if not args.data_dir:
        parser.error("give --data-dir or set NLPKIT_DATA (a directory with sst2/ and imdb/)")
    import tensorflow as tf

    result = {
        "benchmark": "sst2_sentiment",
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "tensorflow": tf.__version__},
        "tokenizer": args.tokenizer,
        "targets": args.targets,
    }
    # Training logs go to stderr so that stdout is exactly one JSON document.
    seeds = [int(seed) for seed in args.seeds.split(",")]
    with contextlib.redirect_stdout(sys.stderr):
        runs = [
            nlpkit_run(args.data_dir, args.output_dir if len(seeds) == 1 else f"{args.output_dir}_seed{seed}", seed,
                       ["--tokenizer", args.tokenizer, "--targets", args.targets])
            for seed in seeds
        ]
        if args.baseline:
            result["stock_keras_bigru"] = stock_keras_baseline(args.data_dir)
    result["nlpkit"] = runs[0]
    if len(runs) > 1:
        result["nlpkit_runs"] = runs
        accuracies = [run["test_accuracy_keras"] for run in runs]
        result["nlpkit_test_accuracy_over_seeds"] = {
            "seeds": seeds,
            "each": accuracies,
            "mean": round(statistics.mean(accuracies), 4),
            "min": min(accuracies),
            "max": max(accuracies),
            "int8_minus_float32_points": [run["int8_minus_float32_points"] for run in runs],
            "training_seconds": [run["training_seconds"] for run in runs],
        }
    if args.baseline:
        result["test_accuracy_gain_points"] = round(
            100 * (result["nlpkit"]["test_accuracy_keras"] - result["stock_keras_bigru"]["test_accuracy"]), 2
        )
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main())
