"""Where one recurrent step's time goes on CPU: the recurrent matmul alone against whole layers.

`rnn_speed.py` compares whole models; this script takes one recurrent layer apart at one
shape, per thread count, to show what bounds a step:

- ``matmul_loop_us``: an XLA-compiled ``tf.while_loop`` of T steps whose body is only the
  layer's recurrent matmul, ``(B, H) x (H, G*H)`` (G gates: LSTM 4, GRU 3, SimpleRNN 1),
  folded back to ``(B, H)`` by a ``tanh`` of the sum of its G blocks so that every column
  is used (XLA drops the work of unused columns). No nlpkit step can be faster than this.
- ``nlpkit_us`` / ``nlpkit_loop_us``: the nlpkit layer alone (``jit_compile`` "auto", i.e.
  compiled by XLA at these static shapes, and ``False``, the plain ``tf.while_loop``),
  ``layer(x, training=False)`` in a ``tf.function``, every step returned;
- ``torch_us``: ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` alone under ``torch.inference_mode``
  (oneDNN's fused RNN primitive on x86 CPUs).

All in microseconds per time step (the whole T-step call divided by T, input projection
included for the layers), median over ``--repeats`` interleaved repeats, with the best
repeat as ``*_best_us``. ``matmul_loop_gb_per_s`` is the recurrent kernel's bytes read per
step over ``matmul_loop_us``: at batch 1 the step is a matrix-vector product, bound by how
fast one core streams the kernel from its caches, and only a kernel that splits each step's
product over the cores (as oneDNN's does) gains from a second thread.

Each thread count runs in its own process, because TensorFlow fixes its thread pools at its
first op. Prints one JSON document on stdout; logs go to stderr.

    python benchmarks/recurrent_step.py                          # LSTM, B=1 T=256 E=128 H=256, 1 and 2 threads
    python benchmarks/recurrent_step.py --layer gru --batch 32 --time 64 --embed 256 --units 512
    python benchmarks/recurrent_step.py --quick                  # tiny shapes, smoke test

PyTorch (``pip install -e .[bench]``) is optional: without it the torch figures are null,
with a note.
"""

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

GATES = {"lstm": 4, "gru": 3, "simple_rnn": 1}
TORCH_CLASSES = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "RNN"}


def log(message):
    print(f"[recurrent_step] {message}", file=sys.stderr, flush=True)


def seconds_per_call(function, min_seconds):
    """Calls ``function`` until ``min_seconds`` pass (at least once); seconds per call."""
    calls, started = 0, time.perf_counter()
    while True:
        function()
        calls += 1
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds:
            return elapsed / calls


def time_interleaved(cases, repeats, warmup, min_seconds):
    """``{name: [seconds per call, one per repeat]}``, one repeat of every case in turn."""
    for function in cases.values():
        for _ in range(warmup):
            function()
    seconds = {name: [] for name in cases}
    for _ in range(repeats):
        for name, function in cases.items():
            seconds[name].append(seconds_per_call(function, min_seconds))
    return seconds


def tensorflow_cases(args):
    """The TensorFlow callables: the compiled matmul-only loop and the nlpkit layer both ways."""
    import numpy as np
    import tensorflow as tf

    import nlpkit.layers

    gates, units = GATES[args.layer], args.units
    rng = np.random.default_rng(args.seed)
    kernel = tf.constant(rng.normal(scale=units**-0.5, size=(units, gates * units)).astype("float32"))
    start = tf.constant(rng.normal(size=(args.batch, units)).astype("float32"))

    def matmul_step(step, state):
        product = tf.matmul(state, kernel)
        blocks = tf.split(product, gates, axis=1) if gates > 1 else [product]
        return step + 1, tf.tanh(tf.add_n(blocks))

    @tf.function(jit_compile=True)
    def matmul_loop():
        return tf.while_loop(lambda step, _: step < args.time, matmul_step, (tf.constant(0), start))[1]

    inputs = tf.constant(rng.normal(size=(args.batch, args.time, args.embed)).astype("float32"))
    cases = {"matmul_loop": lambda: matmul_loop().numpy()}
    for name, jit_compile in (("nlpkit", "auto"), ("nlpkit_loop", False)):
        layer = nlpkit.layers.RECURRENT_LAYERS[args.layer](
            units, return_sequences=True, jit_compile=jit_compile
        )
        layer(inputs[:, :2])  # builds the weights
        forward = tf.function(lambda x, layer=layer: layer(x, training=False))
        cases[name] = lambda forward=forward: forward(inputs).numpy()
    return cases


def torch_case(args):
    """The PyTorch layer's forward pass, or None when PyTorch is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(args.threads_of_this_run)
    torch.manual_seed(args.seed)
    layer = getattr(torch.nn, TORCH_CLASSES[args.layer])(args.embed, args.units, batch_first=True).eval()
    inputs = torch.randn(args.batch, args.time, args.embed)

    def forward():
        with torch.inference_mode():
            layer(inputs)

    return forward


def measure_one_thread_count(args):
    """The row of one thread count (``args.threads_of_this_run``), in this process."""
    import tensorflow as tf

    threads = args.threads_of_this_run
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    cases = tensorflow_cases(args)
    forward = torch_case(args)
    if forward is not None:
        cases["torch"] = forward
    seconds = time_interleaved(cases, args.repeats, args.warmup, args.min_seconds)
    row = {"threads": threads}
    for name in ("matmul_loop", "nlpkit", "nlpkit_loop", "torch"):
        runs = seconds.get(name)
        row[f"{name}_us"] = round(1e6 * statistics.median(runs) / args.time, 3) if runs else None
        row[f"{name}_best_us"] = round(1e6 * min(runs) / args.time, 3) if runs else None
    kernel_bytes = 4 * args.units * GATES[args.layer] * args.units
    row["kernel_bytes"] = kernel_bytes
    row["matmul_loop_gb_per_s"] = round(kernel_bytes / (row["matmul_loop_us"] * 1e-6) / 1e9, 2)
    row["matmul_share_of_nlpkit_step"] = round(row["matmul_loop_us"] / row["nlpkit_us"], 3)
    if row["torch_us"] is not None:
        row["nlpkit_speed_vs_torch"] = round(row["torch_us"] / row["nlpkit_us"], 3)
    return row


def run_in_subprocess(args, threads):
    """``measure_one_thread_count`` in a fresh interpreter with ``threads`` threads."""
    command = [
        sys.executable, os.path.abspath(__file__), "--layer", args.layer, "--batch", str(args.batch),
        "--time", str(args.time), "--embed", str(args.embed), "--units", str(args.units),
        "--repeats", str(args.repeats), "--warmup", str(args.warmup),
        "--min-seconds", str(args.min_seconds), "--seed", str(args.seed), "--one-thread-count", str(threads),
    ]
    log(f"{args.layer} B{args.batch}-T{args.time}-E{args.embed}-H{args.units}, {threads} thread(s)")
    process = subprocess.run(command, capture_output=True, text=True, check=False)
    if process.returncode != 0:
        raise RuntimeError(
            f"the {threads}-thread run exited with {process.returncode}:\n{process.stderr[-3000:]}"
        )
    return json.loads(process.stdout.strip().splitlines()[-1])


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", choices=sorted(GATES), default="lstm")
    parser.add_argument("--batch", type=int, default=None, help="B (default 1; 2 with --quick)")
    parser.add_argument("--time", type=int, default=None, help="T (default 256; 16 with --quick)")
    parser.add_argument("--embed", type=int, default=None, help="E (default 128; 8 with --quick)")
    parser.add_argument("--units", type=int, default=None, help="H (default 256; 8 with --quick)")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats (default 15; 2 with --quick)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls per case first (the first traces)")
    parser.add_argument("--min-seconds", type=float, default=None,
                        help="each repeat calls until this much time passed (default 0.2; 0.01 with --quick)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny shapes, 2 repeats: a smoke test")
    parser.add_argument("--one-thread-count", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    defaults = {
        "batch": (2, 1), "time": (16, 256), "embed": (8, 128), "units": (8, 256),
        "repeats": (2, 15), "min_seconds": (0.01, 0.2),
    }
    for name, (quick, full) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    for name in ("batch", "time", "embed", "units", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1. Received: {getattr(args, name)}")
    try:
        args.thread_counts = [int(item) for item in args.threads.split(",") if item.strip()]
    except ValueError:
        args.thread_counts = []
    if not args.thread_counts or min(args.thread_counts) < 1:
        parser.error(f"--threads must list positive ints, e.g. '1,2'. Received: {args.threads!r}")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.one_thread_count is not None:
        args.threads_of_this_run = args.one_thread_count
        print(json.dumps(measure_one_thread_count(args)))
        return 0
    notes = []
    if importlib.util.find_spec("torch") is None:
        notes.append("PyTorch is not installed (pip install -e .[bench]): torch figures are null.")
    rows = [run_in_subprocess(args, threads) for threads in args.thread_counts]
    result = {
        "benchmark": "recurrent_step",
        "command": " ".join(["python", "benchmarks/recurrent_step.py", *(argv if argv is not None else sys.argv[1:])]),
        "layer": args.layer,
        "shape": {"batch": args.batch, "time": args.time, "embed": args.embed, "units": args.units},
        "cpus": os.cpu_count(),
        "unit": "microseconds per time step (median of repeats)",
        "rows": rows,
        "notes": notes,
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
