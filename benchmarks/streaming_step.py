"""Per-step latency of TFLite streaming ``step`` models (float32 and dynamic-range int8).

Builds one recurrent layer (H units on E input features; with ``--vocabulary V`` an
Embedding(V, E) in front and a Dense(V) after, i.e. a language-model step: token id in,
logits out), exports its ``step`` signature with `nlpkit.export.StreamingStack`, and times
one step on ``ai_edge_litert`` with 1 thread (by default), carrying the states:

- ``invoke_us``: set the input and state tensors, ``invoke()``, read the new states — the
  interpreter's own cost plus the unavoidable copies;
- ``runner_us``: `nlpkit.lite.StreamingRunner.step`, what an application calls (adds the
  signature runner's Python overhead).

Each figure is the median (and, as ``*_best_us``, the fastest) of ``--repeats`` runs of
``--steps`` steps, after warm-up.
Prints one JSON document on stdout.

    python benchmarks/streaming_step.py                               # LSTM, H=256, E=128
    python benchmarks/streaming_step.py --layers lstm,gru --vocabulary 10000
    python benchmarks/streaming_step.py --quick                       # tiny, smoke test
    python benchmarks/streaming_step.py --layers lstm,mingru,minlstm,mamba --units 128 \
        --input-dim 64 --match-parameters                             # issue 7: matched size

With ``--match-parameters`` every layer other than the LSTM gets the ``units`` whose
parameter count is closest to an LSTM of ``--units`` units (a MinGRU needs far more units
than an LSTM for the same size; Mamba's ``units`` is its model width).
"""

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

LAYERS = ("lstm", "gru", "simple_rnn", "mingru", "minlstm", "mamba")
QUANTIZATIONS = {"float32": None, "int8": "dynamic_range"}


def build_stack(layer_name, units, input_dim, vocabulary, seed=0):
    import keras

    import nlpkit
    from nlpkit.export import StreamingStack

    keras.utils.set_random_seed(seed)
    layers = [nlpkit.layers.recurrent_layer(layer_name, units, return_sequences=True)]
    if vocabulary:
        layers = [keras.layers.Embedding(vocabulary, input_dim), *layers, keras.layers.Dense(vocabulary)]
        model = keras.Sequential([keras.Input((None,), dtype="int32"), *layers])
    else:
        model = keras.Sequential([keras.Input((None, input_dim)), *layers])
    return StreamingStack(model)


def time_steps(step, steps, repeats, warmup):
    """Median seconds per call of ``step`` over ``repeats`` runs of ``steps`` calls."""
    for _ in range(warmup):
        step()
    per_step = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        per_step.append((time.perf_counter() - start) / steps)
    return statistics.median(per_step), per_step


def measure(content, threads, steps, repeats, warmup, vocabulary=0, seed=0):
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    from nlpkit.lite import StreamingRunner

    runner = StreamingRunner(content, num_threads=threads)
    interpreter = Interpreter(model_content=content, num_threads=threads)
    signature = interpreter.get_signature_runner("step")
    rng = np.random.default_rng(seed)
    detail = signature.get_input_details()[runner.input_name]
    if np.issubdtype(detail["dtype"], np.integer):
        inputs = rng.integers(0, vocabulary, size=detail["shape"]).astype(detail["dtype"])
    else:
        inputs = rng.normal(size=detail["shape"]).astype(detail["dtype"])

    input_index = {name: d["index"] for name, d in signature.get_input_details().items()}
    output_index = {name: d["index"] for name, d in signature.get_output_details().items()}
    # The only signature is the primary subgraph, so its tensors are set on the interpreter
    # itself; a live signature runner holds the interpreter and makes invoke() refuse to run.
    del signature
    interpreter.allocate_tensors()
    states = runner.states

    def invoke():
        interpreter.set_tensor(input_index[runner.input_name], inputs)
        for name in runner.state_names:
            interpreter.set_tensor(input_index[name], states[name])
        interpreter.invoke()
        for name in runner.state_names:
            states[name] = interpreter.get_tensor(output_index[name])

    invoke_s, invoke_runs = time_steps(invoke, steps, repeats, warmup)
    runner_s, runner_runs = time_steps(lambda: runner.step(inputs), steps, repeats, warmup)
    return {
        "invoke_us": round(invoke_s * 1e6, 2),
        "runner_us": round(runner_s * 1e6, 2),
        # On a shared machine the fastest run is the one least disturbed by other work.
        "invoke_best_us": round(min(invoke_runs) * 1e6, 2),
        "runner_best_us": round(min(runner_runs) * 1e6, 2),
        "invoke_runs_us": [round(s * 1e6, 2) for s in invoke_runs],
        "runner_runs_us": [round(s * 1e6, 2) for s in runner_runs],
    }


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", default="lstm", help=f"comma-separated, from {LAYERS}")
    parser.add_argument("--units", type=int, default=256)
    parser.add_argument("--input-dim", type=int, default=128)
    parser.add_argument("--vocabulary", type=int, default=0,
                        help="0: float features in; V > 0: Embedding(V) in front, Dense(V) after")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--match-parameters", action="store_true",
                        help="size every other layer to the parameters of an LSTM with --units units")
    parser.add_argument("--quick", action="store_true", help="tiny shapes and few steps")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    layers = [name.strip() for name in args.layers.split(",") if name.strip()]
    unknown = sorted(set(layers) - set(LAYERS))
    if unknown or not layers:
        raise SystemExit(f"--layers must name some of {LAYERS}. Received: {args.layers!r}")
    if args.quick:
        args.units, args.input_dim, args.steps, args.repeats, args.warmup = 8, 4, 20, 2, 2

    from nlpkit.export import audit_ops, convert

    from nlpkit.layers import recurrent_layer_parameters, units_matching_parameters

    lstm_parameters = recurrent_layer_parameters("lstm", args.units, args.input_dim)
    rows = []
    for layer_name in layers:
        units = args.units
        if args.match_parameters and layer_name != "lstm":
            units = units_matching_parameters(layer_name, lstm_parameters, args.input_dim)
        stack = build_stack(layer_name, units, args.input_dim, args.vocabulary)
        for precision, quantization in QUANTIZATIONS.items():
            content = convert(stack, stack.tflite_endpoints(), quantization=quantization)
            row = {
                "layer": layer_name,
                "precision": precision,
                "units": units,
                "layer_parameters": recurrent_layer_parameters(layer_name, units, args.input_dim),
                "input_dim": args.input_dim,
                "vocabulary": args.vocabulary,
                "threads": args.threads,
                "model_bytes": len(content),
                "ops": list(audit_ops(content).builtin),
            }
            row.update(
                measure(content, args.threads, args.steps, args.repeats, args.warmup, args.vocabulary)
            )
            print(f"[streaming_step] {layer_name} {precision}: invoke {row['invoke_us']} us "
                  f"(best {row['invoke_best_us']}), runner {row['runner_us']} us "
                  f"(best {row['runner_best_us']})", file=sys.stderr, flush=True)
            rows.append(row)
    report = {"rows": rows, "load_average": list(os.getloadavg())}
    if args.match_parameters:
        report["matched_to"] = {"layer": "lstm", "units": args.units, "layer_parameters": lstm_parameters}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
