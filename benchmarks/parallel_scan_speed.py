"""Training speed of the parallel-scan layers (MinGRU, MinLSTM, Mamba) against nlpkit's LSTM at long T.

Issue 7's target: at T=1000 on this 2-core machine, MinGRU and Mamba train at >= 3x the
tokens/s of nlpkit's LSTM (a parallel scan against a sequential loop with a hand-written
backward pass) at matched parameter counts. Every layer runs the same small language model,
side by side in one process: Embedding(V, E) -> layer (every step returned) -> Dense(V),
sparse softmax cross-entropy, Adam, ``Model.train_on_batch`` on one fixed random batch.
With those static shapes every layer compiles its sequence computation with XLA; Mamba's
then runs its selective scan as one sequential pass over time
(`nlpkit.layers.selective_scan`, faster on this CPU than its parallel scan).

Two ways to size the scan layers (``--match``, both by default): ``parameters`` gives each
the ``units`` whose recurrent-layer parameter count is closest to the LSTM's (the output
Dense then differs with ``units``; both counts are reported); ``width`` gives it the LSTM's
``units`` (the comparison of Feng et al., 2024: same hidden size, far fewer weights). Each
timing is the median of ``--repeats`` training steps after one warm-up step (which traces).
Every row also has ``matmul_flops_per_token``, ``6 x`` the weights a token passes through
(recurrent layer and output layer; forward 2, backward 4 flops per weight), and the rate
that implies: at matched parameters both models do about the same matmul work per token,
so a speed-up can only come from running it more efficiently than the LSTM's per-step
``(batch, 4 units)`` matmuls, bounded by the rate of a large matmul (``tensorflow_matmul_gflops_per_s``). Prints one JSON
document on stdout; logs go to stderr.

    python benchmarks/parallel_scan_speed.py                     # T=1000, B=8, E=64, LSTM H=128
    python benchmarks/parallel_scan_speed.py --layers lstm,mingru --time 300 --match width
    python benchmarks/parallel_scan_speed.py --quick             # tiny shapes, smoke test

All models are built and traced first, then timed interleaved: one training step of each
in turn, ``--repeats`` times, so that drift in the machine's speed reaches every layer
alike. Run it on an idle machine all the same: under load (or ``nice``) the medians are
noisy.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

LAYERS = ("lstm", "mingru", "minlstm", "mamba")
MATCHES = ("parameters", "width")
DEFAULT_LAYERS = "lstm,mingru,mamba"


def log(message):
    print(message, file=sys.stderr, flush=True)


def layer_parameters(kind, units, input_dim, options):
    from nlpkit.layers import recurrent_layer_parameters

    return recurrent_layer_parameters(kind, units, input_dim, **options)


def matched_units(kind, target, input_dim, options):
    """The ``units`` whose layer parameter count is closest to ``target``."""
    from nlpkit.layers import units_matching_parameters

    return units_matching_parameters(kind, target, input_dim, **options)


def build_model(kind, units, vocabulary, embedding_dim, options):
    import keras

    from nlpkit.layers import recurrent_layer

    model = keras.Sequential([
        keras.Input((None,), dtype="int32"),
        keras.layers.Embedding(vocabulary, embedding_dim),
        recurrent_layer(kind, units, return_sequences=True, **options),
        keras.layers.Dense(vocabulary),
    ])
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def matmul_reference_gflops(tf, size=1024, repeats=10):
    """GFLOP/s of a ``size``^3 float32 TensorFlow matmul (median of ``repeats``), the reference rate."""
    left = tf.random.normal((size, size))
    right = tf.random.normal((size, size))
    tf.linalg.matmul(left, right).numpy()  # warm-up
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        tf.linalg.matmul(left, right).numpy()
        timings.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(timings) / 1e9


def time_training_interleaved(models, inputs, targets, repeats):
    """``(warmup_seconds, step_seconds)`` per model: each traces once, then the models take
    one timed training step each in turn, ``repeats`` times, so that drift in the machine's
    speed during the run reaches every model alike."""
    warmups = []
    for model in models:
        start = time.perf_counter()
        model.train_on_batch(inputs, targets)  # traces the train step
        warmups.append(time.perf_counter() - start)
    timings = [[] for _ in models]
    for _ in range(repeats):
        for index, model in enumerate(models):
            start = time.perf_counter()
            model.train_on_batch(inputs, targets)
            timings[index].append(time.perf_counter() - start)
    return list(zip(warmups, timings))


def run(args):
    import numpy as np
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    except RuntimeError as error:
        # TensorFlow already ran in this process (tests call main()); it keeps its pools.
        log(f"thread count unchanged: {error}")
    kinds = [kind.strip() for kind in args.layers.split(",") if kind.strip()]
    unknown = sorted(set(kinds) - set(LAYERS))
    if unknown or "lstm" not in kinds:
        raise SystemExit(f"--layers must include lstm and only use {LAYERS}. Received: {args.layers!r}")
    matches = [match.strip() for match in args.match.split(",") if match.strip()]
    if not matches or set(matches) - set(MATCHES):
        raise SystemExit(f"--match must name some of {MATCHES}. Received: {args.match!r}")
    options = {"mamba": {"d_state": args.d_state}}
    target = layer_parameters("lstm", args.lstm_units, args.embedding_dim, {})
    rng = np.random.default_rng(args.seed)
    inputs = rng.integers(0, args.vocabulary, (args.batch, args.time)).astype("int32")
    targets = rng.integers(0, args.vocabulary, (args.batch, args.time)).astype("int32")
    runs = [("lstm", "reference")] + [(kind, match) for kind in kinds if kind != "lstm" for match in matches]
    built = []
    for kind, match in runs:
        kind_options = options.get(kind, {})
        units = args.lstm_units if match in ("reference", "width") else matched_units(
            kind, target, args.embedding_dim, kind_options
        )
        model = build_model(kind, units, args.vocabulary, args.embedding_dim, kind_options)
        model.build((None, None))
        built.append((kind, match, units, kind_options, model))
    log(f"timing {args.repeats} steps of {args.batch}x{args.time} tokens per model, interleaved: "
        + ", ".join(f"{kind} ({match}, {units} units)" for kind, match, units, _, _ in built))
    measured = time_training_interleaved([entry[-1] for entry in built], inputs, targets, args.repeats)
    rows = []
    for (kind, match, units, kind_options, model), (warmup, timings) in zip(built, measured):
        recurrent, output = model.layers[1], model.layers[2]
        median = statistics.median(timings)
        tokens_per_s = args.batch * args.time / median
        layer_parameters_count = int(sum(int(w.numpy().size) for w in recurrent.trainable_weights))
        flops_per_token = 6 * (layer_parameters_count + int(output.kernel.numpy().size))
        rows.append({
            "layer": kind,
            "match": match,
            "units": units,
            "options": kind_options,
            "layer_parameters": layer_parameters_count,
            "model_parameters": int(sum(int(w.numpy().size) for w in model.trainable_weights)),
            "train_tokens_per_s": tokens_per_s,
            "matmul_flops_per_token": flops_per_token,
            "matmul_gflops_per_s": tokens_per_s * flops_per_token / 1e9,
            "step_seconds": timings,
            "warmup_seconds": warmup,
        })
        log(f"  {kind} ({match}): {tokens_per_s:.0f} tokens/s (median of {timings})")
    del built
    lstm_speed = rows[0]["train_tokens_per_s"]
    for row in rows:
        row["train_vs_lstm"] = row["train_tokens_per_s"] / lstm_speed
    return {
        "benchmark": "parallel_scan_speed",
        "shapes": {
            "batch": args.batch, "time": args.time, "embedding_dim": args.embedding_dim,
            "vocabulary": args.vocabulary, "lstm_units": args.lstm_units,
        },
        "threads": tf.config.threading.get_intra_op_parallelism_threads() or args.threads,
        "repeats": args.repeats,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "versions": {"tensorflow": tf.__version__},
        "target": "MinGRU and Mamba train_vs_lstm >= 3 at T=1000",
        "tensorflow_matmul_gflops_per_s": matmul_reference_gflops(tf) if args.matmul_reference else None,
        "rows": rows,
    }


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", default=DEFAULT_LAYERS, help=f"comma-separated subset of {LAYERS}, with lstm")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--time", type=int, default=1000)
    parser.add_argument("--embedding-dim", type=int, default=64)
    parser.add_argument("--vocabulary", type=int, default=256)
    parser.add_argument("--lstm-units", type=int, default=128)
    parser.add_argument("--d-state", type=int, default=16, help="Mamba's state size per channel")
    parser.add_argument("--match", default="parameters,width",
                        help=f"how scan layers are sized against the LSTM, comma-separated from {MATCHES}")
    parser.add_argument("--matmul-reference", action=argparse.BooleanOptionalAction, default=True,
                        help="also time a 1024^3 float32 TensorFlow matmul, the reference rate (default: yes)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="also write the JSON here")
    parser.add_argument("--quick", action="store_true", help="tiny shapes, 1 repeat: a smoke test")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.time, args.embedding_dim, args.vocabulary = 2, 40, 8, 16
        args.lstm_units, args.d_state, args.repeats, args.matmul_reference = 8, 4, 1, False
    return args


def main(argv=None):
    args = parse_args(argv)
    result = run(args)
    text = json.dumps(result, indent=2)
    if args.output:
        with open(args.output, "w") as handle:
            handle.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
