"""The ``web`` export target: file size, load time and per-sentence latency in LiteRT.js vs LiteRT.

Builds a text classifier of the sentiment recipe's default shape (embedding 128, one
bidirectional nlpkit GRU of 128 units, max+mean pooling; random weights: size and speed do
not depend on training), exports

- the ``litert`` target's dynamic-length ``model.tflite`` (and int8), run in ``ai_edge_litert``
  (Python, one thread: LiteRT.js's WASM build on Node 20 is single-threaded);
- the ``web`` target (`nlpkit.export.targets.web_target_files`): one file with a signature
  per length bucket (``classify_16`` ...);
- for comparison, the layout not chosen: a file per bucket,

and runs each web file in LiteRT.js (``@litertjs/core``, WASM CPU, Node) through
``web/tools/run_tflite.mjs --time``. Short text: 6 tokens (bucket 16); long text: 200
tokens (bucket 256); and each bucket full. Load times are the median of 3 loads after the
first (which also pays for V8 compiling the runtime's WASM); run times the median of N
runs after N warm-up runs. Prints one JSON document (with the CPU model and
its avx2/avx512f/amx flags, since WASM SIMD and XNNPACK's native kernels depend on them).

    python benchmarks/web_latency.py            # about 1-2 minutes on 2 cores
    python benchmarks/web_latency.py --quick    # fewer runs and buckets 16/64/256

Needs ``npm ci`` in ``web/`` (``make web/node_modules/.installed``).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RUN_TFLITE = ROOT / "web" / "tools" / "run_tflite.mjs"
SHORT, LONG = 6, 200


def cpu_info():
    """CPU model, logical CPUs and the ISA flags that matter for the kernels (from /proc/cpuinfo)."""
    model, flags = platform.processor() or "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    wanted = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")
    return {"model": model, "logical_cpus": os.cpu_count(), "isa": {flag: flag in flags for flag in wanted}}


def build_classifier(vocabulary_size, embedding_dim, units, seed=0):
    import keras
    import numpy as np

    from nlpkit.models import TextClassifier

    keras.utils.set_random_seed(seed)
    model = TextClassifier(vocabulary_size=vocabulary_size, num_classes=2, embedding_dim=embedding_dim, units=units,
                           cell="gru", bidirectional=True, pooling="max_mean")
    model(np.zeros((1, 1), np.int32))
    return model


def ids(count, length, seed):
    import numpy as np

    row = np.zeros(length, np.int32)
    row[:count] = np.random.default_rng(seed).integers(2, 1000, size=count)
    return row


def litertjs(calls, runs):
    """``(litertjs_version, results, timings)`` of ``calls`` in LiteRT.js, each timed over ``runs`` runs."""
    payload = [
        {"file": str(call["file"]), "signature": call["signature"],
         "inputs": {"token_ids": {"dtype": "int32", "shape": [1, len(call["ids"])], "data": call["ids"].tolist()}}}
        for call in calls
    ]
    result = subprocess.run(["node", str(RUN_TFLITE), "--calls", "-", "--time", str(runs)], input=json.dumps(payload),
                            capture_output=True, text=True, timeout=1200)
    if result.returncode:
        raise SystemExit(f"LiteRT.js failed:\n{result.stderr[-2000:]}")
    report = json.loads(result.stdout)
    return report["litertjs_version"], report["results"], report["timings"]


def litert_timing(path, token_ids, runs):
    """Load seconds and median per-run milliseconds of ``classify`` in ai_edge_litert (1 thread)."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    start = time.perf_counter()
    runner = Interpreter(model_path=str(path), num_threads=1).get_signature_runner("classify")
    inputs = np.asarray([token_ids], np.int32)
    scores = runner(token_ids=inputs)["scores"]
    load_ms = 1000 * (time.perf_counter() - start)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        runner(token_ids=inputs)
        times.append(1000 * (time.perf_counter() - start))
    return {"load_ms": round(load_ms, 2), "run_ms": round(float(np.median(times)), 3)}, scores


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="buckets 16/64/256 and fewer timed runs")
    parser.add_argument("--vocabulary-size", type=int, default=16000)
    parser.add_argument("--embedding-dim", type=int, default=128)
    parser.add_argument("--units", type=int, default=128)
    parser.add_argument("--runs", type=int, default=0, help="timed runs per call (default 50, quick 20)")
    args = parser.parse_args(argv)
    runs = args.runs or (20 if args.quick else 50)
    lengths = (16, 64, 256) if args.quick else (16, 32, 64, 128, 256)

    import numpy as np
    import tensorflow as tf

    from nlpkit.export import tflite
    from nlpkit.export.targets import fixed_length_endpoints, web_target_files

    model = build_classifier(args.vocabulary_size, args.embedding_dim, args.units)
    endpoints = model.tflite_endpoints()
    report = {"benchmark": "web_latency", "cpu": cpu_info(), "python": platform.python_version(),
              "tensorflow": tf.__version__, "node": subprocess.run(["node", "--version"], capture_output=True,
                                                                   text=True).stdout.strip(),
              "model": {"task": "classification", "cell": "gru", "bidirectional": True,
                        "vocabulary_size": args.vocabulary_size, "embedding_dim": args.embedding_dim,
                        "units": args.units, "parameters": int(model.count_params())},
              "timed_runs": runs, "short_tokens": SHORT, "long_tokens": LONG}
    with tempfile.TemporaryDirectory() as directory:
        directory = Path(directory)
        started = time.perf_counter()
        dynamic = {}
        for name, quantization in (("model.tflite", None), ("model.int8.tflite", "dynamic_range")):
            (directory / name).write_bytes(tflite.convert(model, endpoints, quantization=quantization))
            dynamic[name] = directory / name
        # The web target: one file with a signature per bucket.
        web = {}
        for name, content, info in web_target_files(model, endpoints, lengths=lengths, int8=True):
            (directory / name).write_bytes(content)
            web[name] = (directory / name, info)
        # The layout not chosen: a file per bucket, each with its own copy of the weights.
        per_bucket = {}
        for length in lengths:
            for quantization in (None, "dynamic_range"):
                name = f"model.web.{length}{'.int8' if quantization else ''}.tflite"
                content = tflite.convert(model, fixed_length_endpoints(endpoints, length), quantization=quantization,
                                         lstm="while")
                (directory / name).write_bytes(content)
                per_bucket[name] = (directory / name, length)
        report["convert_seconds"] = round(time.perf_counter() - started, 1)

        short, long = ids(SHORT, SHORT, 1), ids(LONG, LONG, 2)
        # "short" in the largest bucket too: what a single bucket would cost a short text.
        texts = {"short": np.pad(short, (0, lengths[0] - SHORT)), "long": np.pad(long, (0, lengths[-1] - LONG)),
                 "short_in_largest": np.pad(short, (0, lengths[-1] - SHORT))}
        calls, keys = [], []
        for name, (path, info) in web.items():
            for length in lengths:
                calls.append({"file": path, "signature": info["buckets"]["classify"][str(length)],
                              "ids": ids(length, length, 3)})
                keys.append(("web", name, length, "full"))
            for text, token_ids in texts.items():
                calls.append({"file": path, "signature": info["buckets"]["classify"][str(len(token_ids))],
                              "ids": token_ids})
                keys.append(("web", name, len(token_ids), text))
        for name, (path, length) in per_bucket.items():
            calls.append({"file": path, "signature": "classify", "ids": ids(length, length, 3)})
            keys.append(("per_bucket", name, length, "full"))
        version, results, timings = litertjs(calls, runs)
        report["litertjs_version"] = version

        layouts = {"web": {}, "per_bucket": {}}
        for (layout, name, length, text), timing in zip(keys, timings):
            path = web[name][0] if layout == "web" else per_bucket[name][0]
            entry = layouts[layout].setdefault(name, {"bytes": path.stat().st_size,
                                                      "litertjs_first_load_ms": round(timing["load_ms"], 1),
                                                      "litertjs_load_ms": round(timing["reload_ms"], 1),
                                                      "litertjs_run_ms": {}})
            entry["litertjs_run_ms"][f"{length}" if text == "full" else f"{text} ({length})"] = round(timing["run_ms"], 3)
            if text == "short":
                entry["litertjs_first_run_short_ms"] = round(timing["first_run_ms"], 2)
        report["web_one_file_with_a_signature_per_bucket"] = layouts["web"]
        report["layout_not_chosen_a_file_per_bucket"] = layouts["per_bucket"]
        report["sum_of_per_bucket_file_bytes"] = {
            "float32": sum(entry["bytes"] for name, entry in layouts["per_bucket"].items() if ".int8." not in name),
            "int8": sum(entry["bytes"] for name, entry in layouts["per_bucket"].items() if ".int8." in name),
        }
        short_indexes = {text: keys.index(("web", "model.web.tflite", length, text))
                         for text, length in (("short", lengths[0]), ("short_in_largest", lengths[-1]))}

        litert = {}
        for name, path in dynamic.items():
            short_timing, short_scores = litert_timing(path, short, runs)
            long_timing, _ = litert_timing(path, long, runs)
            litert[name] = {"bytes": path.stat().st_size, "load_ms": short_timing["load_ms"],
                            "short_ms": short_timing["run_ms"], "long_ms": long_timing["run_ms"]}
            if name == "model.tflite":
                # Padding check: the short text right-padded to the first bucket scores as unpadded.
                report["short_text_max_abs_diff_web_vs_dynamic"] = {
                    text: float(np.abs(np.asarray(results[index]["scores"]["data"], np.float32) - short_scores.ravel()).max())
                    for text, index in short_indexes.items()}
        report["litert_dynamic_python_1_thread"] = litert
    json.dump(report, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
