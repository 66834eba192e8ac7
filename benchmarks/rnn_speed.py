"""Recurrent-layer speed on CPU: nlpkit vs stock Keras vs PyTorch, plus TFLite latency.

Every framework runs the same small language model, side by side in one process, with the
same shapes and thread count (``nlpkit`` is nlpkit's layers as they come, whose time loop
XLA compiles on a CPU when the shapes are static, as here; ``nlpkit_loop`` the same layers
with ``jit_compile=False``, the plain ``tf.while_loop``): Embedding(V=1000, E) -> recurrent layer (H units, every step
returned) -> Dense(V) on every step, sparse softmax cross-entropy, Adam. Measured per
(layer, configuration, framework):

- training tokens/s (one optimizer step on a fixed random batch; Keras models use
  ``Model.train_on_batch``, i.e. Keras' compiled ``tf.function`` train step);
- batched inference tokens/s (forward only; ``Model.predict_on_batch`` /
  ``torch.inference_mode``), also as ``infer_tensor``: the Keras model called inside a
  ``tf.function`` on a tensor, returning a tensor as torch's forward does (no NumPy copy of
  the logits), and single-sequence latency (batch 1);
- achieved GFLOP/s of the recurrent layer (input and recurrent matmuls: LSTM 4 gates, GRU
  3, SimpleRNN 1; training counted as 3x the forward pass) and of layer + output Dense;
- for nlpkit layers, TFLite latency per sequence (float32 and dynamic-range int8, batch 1,
  1 thread) through ``nlpkit.export.tflite.convert`` and ``ai_edge_litert``;
- for LSTM and bidirectional LSTM, the two TFLite forms side by side (``tflite_lstm_forms``):
  the fused ``UNIDIRECTIONAL_SEQUENCE_LSTM`` op against nlpkit's ``WHILE`` loop, float32
  and int8, on 1 and 2 threads, with file sizes (the same model, batch 1, each config's
  T, E and H).

Also the machine's float32 matmul GFLOP/s (1024 x 1024). Each timing is the median of
``--repeats`` repeats after warm-up; a repeat runs the call until ``--min-seconds`` pass.
The frameworks of one (layer, config) are timed interleaved: all models are built, then
for each metric one repeat of every framework runs in turn, so that the machine's drift
during a run reaches every framework alike (`measure_side_by_side`).
Prints one JSON document on stdout; logs go to stderr.

    python benchmarks/rnn_speed.py                      # all layers, both default configs
    python benchmarks/rnn_speed.py --layers lstm --configs 32x64x256x512
    python benchmarks/rnn_speed.py --quick              # tiny shapes, smoke test
    python benchmarks/rnn_speed.py --tflite-forms only  # fused vs WHILE TFLite rows only

PyTorch (``pip install -e .[bench]``) is optional: without it the torch rows are skipped
with a note. Run on an otherwise idle machine: the ratios are only meaningful when every
framework sees the same load.
"""

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import statistics
import sys
import time
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

VOCABULARY = 1000
LAYERS = ("lstm", "gru", "simple_rnn")
FRAMEWORKS = ("nlpkit", "nlpkit_loop", "keras", "torch")
# nlpkit rows get ratios against these.
REFERENCE_FRAMEWORKS = ("torch", "keras", "nlpkit_loop")
GATES = {"lstm": 4, "gru": 3, "simple_rnn": 1}
KERAS_CLASSES = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "SimpleRNN"}
TORCH_CLASSES = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "RNN"}
DEFAULT_CONFIGS = "32x64x256x512,1x256x128x256"
# Small enough that the whole quick run is dominated by tracing and TFLite conversion.
QUICK_CONFIGS = "2x8x16x16"
TFLITE_QUANTIZATIONS = {"float32": None, "int8": "dynamic_range"}
LSTM_FORM_MODELS = ("lstm", "bilstm")
LSTM_FORMS = ("fused", "while")
# Backward pass ~ two matmuls per forward matmul (input and weight gradients).
TRAINING_FLOPS_FACTOR = 3


def log(message):
    print(f"[rnn_speed] {message}", file=sys.stderr, flush=True)


@dataclasses.dataclass(frozen=True)
class Shape:
    """One benchmark configuration.

    Args:
        batch: int, sequences per batch (B).
        time: int, steps per sequence (T).
        embed: int, embedding size (E), the recurrent layer's input size.
        units: int, hidden size (H).
        vocabulary: int, default 1000. Embedding rows and output classes (V).

    Example:
        >>> Shape(32, 64, 256, 512).name
        'B32-T64-E256-H512'
    """

    batch: int
    time: int
    embed: int
    units: int
    vocabulary: int = VOCABULARY

    @property
    def name(self):
        return f"B{self.batch}-T{self.time}-E{self.embed}-H{self.units}"

    @property
    def tokens(self):
        return self.batch * self.time

    def as_dict(self):
        return {"name": self.name, **dataclasses.asdict(self)}


def parse_configs(text):
    """Parses ``"BxTxExH,..."`` (e.g. ``"32x64x256x512,1x256x128x256"``) into `Shape`s."""
    shapes = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        parts = item.lower().split("x")
        try:
            values = [int(part) for part in parts]
        except ValueError:
            values = []
        if len(values) != 4 or min(values) <= 0:
            raise ValueError(
                f"Configuration {item!r} is not BxTxExH with four positive ints, "
                "e.g. '32x64x256x512'."
            )
        shapes.append(Shape(*values))
    if not shapes:
        raise ValueError(f"No configuration in {text!r}; expected e.g. '32x64x256x512'.")
    return shapes


def parse_choices(text, allowed, flag):
    chosen = [item.strip() for item in text.split(",") if item.strip()]
    unknown = [item for item in chosen if item not in allowed]
    if unknown or not chosen:
        raise ValueError(f"{flag} {text!r}: unknown {unknown or 'empty list'}; choose from {list(allowed)}.")
    return list(dict.fromkeys(chosen))


def layer_flops_per_token(layer, embed, units):
    """Forward FLOPs per token of one recurrent layer: input plus recurrent matmuls.

    Example:
        >>> layer_flops_per_token("lstm", 256, 512)  # 2 * 4 * 512 * (256 + 512)
        3145728
    """
    return 2 * GATES[layer] * units * (embed + units)


@dataclasses.dataclass(frozen=True)
class Timing:
    """Seconds per call, one value per repeat.

    Args:
        seconds: list of float, the mean seconds per call of each repeat.

    Example:
        >>> Timing([0.010, 0.012, 0.011]).median
        0.011
    """

    seconds: list

    @property
    def median(self):
        return statistics.median(self.seconds)

    def as_dict(self):
        return {
            "median_ms": round(1000 * self.median, 4),
            "min_ms": round(1000 * min(self.seconds), 4),
            "max_ms": round(1000 * max(self.seconds), 4),
            "repeats": len(self.seconds),
        }


def time_calls(function, repeats, warmup, min_seconds):
    """Calls ``function`` ``warmup`` times, then times ``repeats`` repeats of it."""
    for _ in range(warmup):
        function()
    return Timing([seconds_per_call(function, min_seconds)[0] for _ in range(repeats)])


def seconds_per_call(function, min_seconds):
    """Calls ``function`` until ``min_seconds`` pass; wall and process-CPU seconds per call."""
    calls = 0
    started, started_cpu = time.perf_counter(), time.process_time()
    while True:
        function()
        calls += 1
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds:
            return elapsed / calls, (time.process_time() - started_cpu) / calls


def random_batches(shape, seed):
    import numpy as np

    rng = np.random.default_rng(seed)
    return {
        "ids": rng.integers(0, shape.vocabulary, (shape.batch, shape.time), dtype=np.int32),
        "targets": rng.integers(0, shape.vocabulary, (shape.batch, shape.time), dtype=np.int32),
        "single": rng.integers(0, shape.vocabulary, (1, shape.time), dtype=np.int32),
    }


class KerasRunner:
    """The benchmark model in Keras with an nlpkit or a stock Keras recurrent layer.

    Args:
        framework: "nlpkit", "nlpkit_loop" (nlpkit with ``jit_compile=False``) or "keras".
        layer: "lstm", "gru" or "simple_rnn".
        shape: `Shape`.
        data: dict from `random_batches`.
        jit_compile: "auto", True or False, passed to ``Model.compile``.

    Example:
        >>> shape = Shape(2, 8, 16, 16)
        >>> runner = KerasRunner("nlpkit", "gru", shape, random_batches(shape, seed=0), "auto")
        >>> runner.train()
    """

    def __init__(self, framework, layer, shape, data, jit_compile):
        import keras

        import nlpkit.layers

        layer_options = {}
        if framework in ("nlpkit", "nlpkit_loop"):
            recurrent_class = nlpkit.layers.RECURRENT_LAYERS[layer]
            if framework == "nlpkit_loop":
                layer_options["jit_compile"] = False
        else:
            recurrent_class = getattr(keras.layers, KERAS_CLASSES[layer])
        self.data = data
        inputs = keras.Input((None,), dtype="int32", name="token_ids")
        x = keras.layers.Embedding(shape.vocabulary, shape.embed)(inputs)
        x = recurrent_class(shape.units, return_sequences=True, **layer_options)(x)
        outputs = keras.layers.Dense(shape.vocabulary)(x)
        self.model = keras.Model(inputs, outputs)
        self.model.compile(
            optimizer=keras.optimizers.Adam(),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=jit_compile,
        )
        self.api = (
            "keras Model.train_on_batch / predict_on_batch (Keras' compiled tf.function "
            f"steps, jit_compile={self.model.jit_compile}); infer_tensor: tf.function("
            "model(ids, training=False))"
        )
        self._forward = None

    def train(self):
        self.model.train_on_batch(self.data["ids"], self.data["targets"])

    def infer(self):
        self.model.predict_on_batch(self.data["ids"])

    def infer_tensor(self):
        # The forward pass alone, as torch's row measures it: a tensor in, a tensor out.
        # predict_on_batch also converts the input and copies the logits into NumPy.
        if self._forward is None:
            import tensorflow as tf

            self._ids = tf.constant(self.data["ids"])
            self._forward = tf.function(lambda ids: self.model(ids, training=False))
        self._forward(self._ids)

    def infer_single(self):
        self.model.predict_on_batch(self.data["single"])

    def close(self):
        import keras

        keras.backend.clear_session()


class TorchRunner:
    """The benchmark model in PyTorch: ``nn.Embedding`` -> ``nn.LSTM/GRU/RNN`` -> ``nn.Linear``.

    Args:
        layer: "lstm", "gru" or "simple_rnn" (``nn.RNN`` with tanh).
        shape: `Shape`.
        data: dict from `random_batches`.

    Example:
        >>> shape = Shape(2, 8, 16, 16)
        >>> TorchRunner("lstm", shape, random_batches(shape, seed=0)).train()
    """

    api = "torch nn.Module, F.cross_entropy, Adam, loss.backward(); inference under torch.inference_mode()"

    def __init__(self, layer, shape, data):
        import torch
        from torch import nn

        recurrent_class = getattr(nn, TORCH_CLASSES[layer])
        self.torch = torch
        self.vocabulary = shape.vocabulary
        self.embedding = nn.Embedding(shape.vocabulary, shape.embed)
        self.recurrent = recurrent_class(shape.embed, shape.units, batch_first=True)
        self.output = nn.Linear(shape.units, shape.vocabulary)
        self.parameters = [
            *self.embedding.parameters(), *self.recurrent.parameters(), *self.output.parameters()
        ]
        self.optimizer = torch.optim.Adam(self.parameters)
        self.ids = torch.from_numpy(data["ids"].astype("int64"))
        self.targets = torch.from_numpy(data["targets"].astype("int64")).reshape(-1)
        self.single = torch.from_numpy(data["single"].astype("int64"))

    def forward(self, ids):
        states, _ = self.recurrent(self.embedding(ids))
        return self.output(states)

    def train(self):
        self.optimizer.zero_grad(set_to_none=True)
        logits = self.forward(self.ids)
        loss = self.torch.nn.functional.cross_entropy(logits.reshape(-1, self.vocabulary), self.targets)
        loss.backward()
        self.optimizer.step()

    def infer(self):
        with self.torch.inference_mode():
            self.forward(self.ids)

    def infer_single(self):
        with self.torch.inference_mode():
            self.forward(self.single)

    def infer_tensor(self):
        self.infer()  # already a tensor in and a tensor out

    def close(self):
        pass


def tflite_latency(model, shape, data, args):
    """Converts ``model`` to TFLite (float32 and int8) and times one sequence on 1 thread."""
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    from nlpkit.export.tflite import audit_ops, convert

    def forward(token_ids):
        return {"logits": model(token_ids, training=False)}

    endpoints = {"forward": (forward, [tf.TensorSpec([1, None], tf.int32, name="token_ids")])}
    results = {}
    for precision, quantization in TFLITE_QUANTIZATIONS.items():
        started = time.perf_counter()
        content = convert(model, endpoints, quantization=quantization)
        convert_seconds = time.perf_counter() - started
        ops = audit_ops(content).builtin
        # The runner resizes and reallocates on every call, as nlpkit.lite's predictors do.
        runner = Interpreter(model_content=content, num_threads=1).get_signature_runner("forward")
        timing = time_calls(
            lambda: runner(token_ids=data["single"]), args.repeats, args.warmup, args.min_seconds
        )
        if "UNIDIRECTIONAL_SEQUENCE_LSTM" in ops:
            form = "fused UNIDIRECTIONAL_SEQUENCE_LSTM"
        elif "WHILE" in ops:
            form = "WHILE loop"
        else:
            form = "other"
        results[precision] = {
            "latency_ms": timing.as_dict(),
            "tokens_per_s": round(shape.time / timing.median, 1),
            "bytes": len(content),
            "loop_form": form,
            "ops": list(ops),
            "convert_seconds": round(convert_seconds, 2),
        }
    return results


def lstm_form_rows(shape, args):
    """Fused ``UNIDIRECTIONAL_SEQUENCE_LSTM`` vs ``WHILE`` TFLite rows at one configuration.

    The benchmark model (embedding -> recurrent layer -> dense on every step) with an
    nlpkit LSTM, and with a bidirectional one, is converted in both forms and precisions;
    each file is timed on one sequence of ``shape.time`` ids (batch 1) on every thread
    count of ``--tflite-threads``, and its outputs are checked against Keras. The two forms
    are timed in alternation, repeat by repeat, so that a load change hits both alike.
    """
    import keras
    import numpy as np
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    import nlpkit.layers
    from nlpkit.export.tflite import audit_ops, convert, count_ops

    ids = random_batches(shape, seed=args.seed)["single"]
    config = f"T{shape.time}-E{shape.embed}-H{shape.units}"
    rows = []
    for name in LSTM_FORM_MODELS:
        keras.utils.set_random_seed(args.seed)
        inputs = keras.Input((None,), dtype="int32", name="token_ids")
        x = keras.layers.Embedding(shape.vocabulary, shape.embed)(inputs)
        recurrent = nlpkit.layers.LSTM(shape.units, return_sequences=True)
        if name == "bilstm":
            recurrent = keras.layers.Bidirectional(recurrent)
        model = keras.Model(inputs, keras.layers.Dense(shape.vocabulary)(recurrent(x)))
        expected = model.predict_on_batch(ids)

        def forward(token_ids):
            return {"logits": model(token_ids, training=False)}

        endpoints = {"forward": (forward, [tf.TensorSpec([1, None], tf.int32, name="token_ids")])}
        for precision, quantization in TFLITE_QUANTIZATIONS.items():
            contents, pair = {}, []
            for form in LSTM_FORMS:
                log(f"tflite {name} {config} {precision}: converting the {form} form")
                contents[form] = content = convert(model, endpoints, quantization=quantization, lstm=form)
                pair.append({
                    "model": name,
                    "config": config,
                    "form": form,
                    "precision": precision,
                    "bytes": len(content),
                    "fused_ops": count_ops(content, "UNIDIRECTIONAL_SEQUENCE_LSTM"),
                    "while_ops": count_ops(content, "WHILE"),
                    "ops": list(audit_ops(content).builtin),
                    "latency_ms": {},
                    "cpu_ms": {},
                    "tokens_per_s": {},
                })
            for threads in args.tflite_thread_counts:
                calls = []
                for row in pair:
                    runner = Interpreter(
                        model_content=contents[row["form"]], num_threads=threads
                    ).get_signature_runner("forward")
                    logits = runner(token_ids=ids)["logits"]
                    row["max_abs_diff_vs_keras"] = float(np.abs(logits - expected).max())
                    calls.append(lambda runner=runner: runner(token_ids=ids))
                timings = time_interleaved(calls, args.repeats, args.warmup, args.min_seconds)
                for row, (wall, cpu) in zip(pair, timings):
                    row["latency_ms"][str(threads)] = wall.as_dict()
                    row["cpu_ms"][str(threads)] = cpu.as_dict()
                    row["tokens_per_s"][str(threads)] = round(shape.time / wall.median, 1)
            rows.extend(pair)
        keras.backend.clear_session()
    return rows


def time_interleaved(functions, repeats, warmup, min_seconds):
    """Times several functions, one repeat of each in turn; wall and CPU seconds per call.

    Returns one ``(wall, cpu)`` pair of `Timing`s per function. CPU time is the process's
    (all threads): on one thread it is the latency an idle machine would show, and it is
    far less disturbed than wall time by other jobs competing for the cores.
    """
    for function in functions:
        for _ in range(warmup):
            function()
    wall = [[] for _ in functions]
    cpu = [[] for _ in functions]
    for _ in range(repeats):
        for index, function in enumerate(functions):
            wall_seconds, cpu_seconds = seconds_per_call(function, min_seconds)
            wall[index].append(wall_seconds)
            cpu[index].append(cpu_seconds)
    return [(Timing(w), Timing(c)) for w, c in zip(wall, cpu)]


def lstm_form_summary(rows):
    """Fused vs WHILE per (model, config, precision): medians, speedups and file sizes.

    ``speedup_*`` is WHILE time / fused time, so above 1 the fused op is faster; ``wall``
    is latency, ``cpu`` the process CPU time per sequence (all threads).
    """
    by_key = {(r["model"], r["config"], r["precision"], r["form"]): r for r in rows if "error" not in r}
    summary = []
    for (model, config, precision, form), fused in by_key.items():
        loop = by_key.get((model, config, precision, "while"))
        if form != "fused" or loop is None:
            continue
        entry = {"model": model, "config": config, "precision": precision,
                 "fused_bytes": fused["bytes"], "while_bytes": loop["bytes"]}
        for threads in fused["latency_ms"]:
            for kind, key in (("wall", "latency_ms"), ("cpu", "cpu_ms")):
                fused_ms = fused[key][threads]["median_ms"]
                while_ms = loop[key][threads]["median_ms"]
                entry[f"fused_{kind}_ms_{threads}t"] = fused_ms
                entry[f"while_{kind}_ms_{threads}t"] = while_ms
                entry[f"speedup_{kind}_{threads}t"] = round(while_ms / fused_ms, 3)
        summary.append(entry)
    return summary


def make_runner(framework, layer, shape, data, args):
    if framework == "torch":
        return TorchRunner(layer, shape, data)
    return KerasRunner(framework, layer, shape, data, args.jit_compile)


def _guarded(framework, function, failures):
    """``function`` that records its first exception in ``failures`` and then does nothing.

    One framework failing must not lose the other frameworks' timings of the same round.
    """

    def call():
        if framework in failures:
            return
        try:
            function()
        except Exception as error:
            traceback.print_exc(file=sys.stderr)
            failures[framework] = f"{type(error).__name__}: {error}"

    return call


def measure_side_by_side(frameworks, layer, shape, args):
    """Rows of every framework for one (layer, config), timed interleaved.

    Every model is built first; then, metric by metric (training step, batched inference,
    the forward pass on a tensor, batch-1 latency), one repeat of each framework runs in
    turn (`time_interleaved`), so that a machine whose speed drifts during the run (this
    project's shared 2-core machines drift by tens of percent within minutes) slows every
    framework's repeats alike and the medians' ratios stay comparable.
    """
    data = random_batches(shape, seed=args.seed)
    failures, runners = {}, {}
    try:
        for framework in frameworks:
            try:
                runners[framework] = make_runner(framework, layer, shape, data, args)
            except Exception as error:
                traceback.print_exc(file=sys.stderr)
                failures[framework] = f"{type(error).__name__}: {error}"
        names = list(runners)
        metrics = ["train", "infer", "infer_tensor"]
        # At batch 1 the batched forward already is the single-sequence latency.
        if shape.batch != 1:
            metrics.append("infer_single")
        timings = {name: {} for name in names}
        for metric in metrics:
            functions = [_guarded(name, getattr(runners[name], metric), failures) for name in names]
            measured = time_interleaved(functions, args.repeats, args.warmup, args.min_seconds)
            for name, (wall, _) in zip(names, measured):
                timings[name][metric] = wall
        rows = []
        for framework in frameworks:
            if framework in failures:
                rows.append({"layer": layer, "config": shape.name, "framework": framework,
                             "error": failures[framework]})
                continue
            timing = timings[framework]
            timing.setdefault("infer_single", timing["infer"])
            row = _row(framework, runners[framework].api, layer, shape, timing)
            if framework == "nlpkit" and args.tflite:
                row["tflite"] = tflite_latency(runners[framework].model, shape, data, args)
            rows.append(row)
        return rows
    finally:
        for runner in runners.values():
            runner.close()


def _row(framework, api, layer, shape, timing):
    """One framework's row from its `Timing`s per metric."""
    train, infer, infer_tensor, latency = (
        timing[metric] for metric in ("train", "infer", "infer_tensor", "infer_single")
    )
    layer_flops = layer_flops_per_token(layer, shape.embed, shape.units)
    dense_flops = 2 * shape.units * shape.vocabulary
    train_tps = shape.tokens / train.median
    infer_tps = shape.tokens / infer.median
    return {
        "layer": layer,
        "config": shape.name,
        "framework": framework,
        "api": api,
        "train_tokens_per_s": round(train_tps, 1),
        "infer_tokens_per_s": round(infer_tps, 1),
        "infer_tensor_tokens_per_s": round(shape.tokens / infer_tensor.median, 1),
        "latency_ms": round(1000 * latency.median, 4),
        "latency_tokens_per_s": round(shape.time / latency.median, 1),
        "train_layer_gflops": round(train_tps * TRAINING_FLOPS_FACTOR * layer_flops / 1e9, 3),
        "infer_layer_gflops": round(infer_tps * layer_flops / 1e9, 3),
        "train_model_gflops": round(
            train_tps * TRAINING_FLOPS_FACTOR * (layer_flops + dense_flops) / 1e9, 3
        ),
        "infer_model_gflops": round(infer_tps * (layer_flops + dense_flops) / 1e9, 3),
        "flops_per_token": {"layer": layer_flops, "output_dense": dense_flops},
        "timings": {
            "train_step": train.as_dict(),
            "infer_batch": infer.as_dict(),
            "infer_tensor": infer_tensor.as_dict(),
            "latency_single": latency.as_dict(),
        },
    }


def add_ratios(rows):
    """Adds the nlpkit rows' tokens/s ratios to each of `REFERENCE_FRAMEWORKS`; returns a summary."""
    by_key = {(row["layer"], row["config"], row["framework"]): row for row in rows if "error" not in row}
    summary = []
    for (layer, config, framework), row in by_key.items():
        if framework != "nlpkit":
            continue
        entry = {"layer": layer, "config": config}
        for other in REFERENCE_FRAMEWORKS:
            reference = by_key.get((layer, config, other))
            for metric in ("train", "infer", "infer_tensor"):
                key = f"{metric}_vs_{other}"
                value = None
                if reference is not None:
                    value = round(row[f"{metric}_tokens_per_s"] / reference[f"{metric}_tokens_per_s"], 3)
                row[key] = entry[key] = value
        summary.append(entry)
    return summary


def configure_threads(threads, frameworks):
    """Gives TensorFlow (intra and inter op) and PyTorch the same thread count."""
    import tensorflow as tf

    notes = []
    info = {"requested": threads}
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError as error:
        # Only possible before TensorFlow's first op; in-process callers (tests) may be late.
        notes.append(f"TensorFlow thread count not applied ({error}); it keeps its earlier setting.")
    info["tensorflow_intra_op"] = tf.config.threading.get_intra_op_parallelism_threads()
    info["tensorflow_inter_op"] = tf.config.threading.get_inter_op_parallelism_threads()
    if "torch" in frameworks:
        import torch

        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(threads)
        except RuntimeError as error:
            notes.append(f"PyTorch inter-op thread count not applied ({error}).")
        info["torch_intra_op"] = torch.get_num_threads()
        info["torch_inter_op"] = torch.get_num_interop_threads()
    return info, notes


def matmul_gflops(frameworks, args, size=1024):
    """float32 ``size x size`` matmul GFLOP/s of TensorFlow (and PyTorch when measured).

    Median and best repeat. This is a reference point, not the machine's peak: the two
    libraries reach different rates on the same CPU, and fused RNN kernels (PyTorch's
    oneDNN LSTM) can exceed both.
    """
    import numpy as np
    import tensorflow as tf

    flops = 2 * size**3
    rng = np.random.default_rng(args.seed)
    a, b = (rng.standard_normal((size, size), dtype=np.float32) for _ in range(2))
    result = {"size": size}
    tf_a, tf_b = tf.constant(a), tf.constant(b)
    tf_matmul = tf.function(lambda: tf.matmul(tf_a, tf_b))
    timing = time_calls(tf_matmul, args.repeats, max(args.warmup, 1), args.min_seconds)
    result["tensorflow"] = round(flops / timing.median / 1e9, 2)
    result["tensorflow_best"] = round(flops / min(timing.seconds) / 1e9, 2)
    if "torch" in frameworks:
        import torch

        torch_a, torch_b = torch.from_numpy(a), torch.from_numpy(b)
        timing = time_calls(lambda: torch.mm(torch_a, torch_b), args.repeats, max(args.warmup, 1), args.min_seconds)
        result["torch"] = round(flops / timing.median / 1e9, 2)
        result["torch_best"] = round(flops / min(timing.seconds) / 1e9, 2)
    return result


def machine_info():
    info = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    if hasattr(os, "sched_getaffinity"):
        info["usable_cpus"] = len(os.sched_getaffinity(0))
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


def versions(frameworks):
    import keras
    import tensorflow as tf

    found = {"tensorflow": tf.__version__, "keras": keras.__version__}
    try:
        from importlib.metadata import version

        found["ai_edge_litert"] = version("ai-edge-litert")
    except Exception:  # the version is informative only
        pass
    if "torch" in frameworks:
        import torch

        found["torch"] = torch.__version__
        # nn.LSTM/GRU/RNN run as oneDNN fused kernels on CPU when this is on.
        found["torch_mkldnn"] = torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled
    return found


def load_average():
    return [round(value, 2) for value in os.getloadavg()] if hasattr(os, "getloadavg") else None


@contextlib.contextmanager
def quiet_tensorflow_logger():
    """Hides TensorFlow's Python warnings while benchmarking, restoring the level after.

    Every model gets fresh ``tf.function``s, so TensorFlow's global retracing counter warns
    about "excessive retracing" although each function traces only during warm-up.
    """
    import tensorflow as tf

    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")
    try:
        yield
    finally:
        logger.setLevel(level)


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default=None,
                        help=f"comma-separated BxTxExH shapes (default {DEFAULT_CONFIGS}; "
                             f"{QUICK_CONFIGS} with --quick)")
    parser.add_argument("--layers", default=",".join(LAYERS), help="subset of lstm,gru,simple_rnn")
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS), help="subset of " + ",".join(FRAMEWORKS))
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per metric (default 5; 2 with --quick)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed calls before timing (default 3; 1 with --quick); the first traces")
    parser.add_argument("--min-seconds", type=float, default=None,
                        help="each repeat calls until this much time passed (default 0.3; 0.02 with --quick)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="threads for TensorFlow (intra and inter op) and PyTorch (default: all CPUs)")
    parser.add_argument("--jit-compile", choices=("auto", "true", "false"), default="auto",
                        help="Keras Model.compile(jit_compile=...) for nlpkit and keras rows (default auto)")
    parser.add_argument("--tflite", action=argparse.BooleanOptionalAction, default=True,
                        help="also time TFLite float32/int8 for the nlpkit rows (default: yes)")
    parser.add_argument("--tflite-forms", choices=("yes", "no", "only"), default="yes",
                        help="fused vs WHILE TFLite rows for LSTM and BiLSTM when lstm is in --layers "
                             "(default yes; 'only' skips everything else)")
    parser.add_argument("--tflite-threads", default="1,2",
                        help="comma-separated interpreter thread counts for the fused vs WHILE rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny shapes and 2 repeats: a smoke test")
    return parser


def resolve_args(argv):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.shapes = parse_configs(args.configs or (QUICK_CONFIGS if args.quick else DEFAULT_CONFIGS))
        args.layer_names = parse_choices(args.layers, LAYERS, "--layers")
        args.framework_names = parse_choices(args.frameworks, FRAMEWORKS, "--frameworks")
    except ValueError as error:
        parser.error(str(error))
    defaults = {"repeats": (2, 5), "warmup": (1, 3), "min_seconds": (0.02, 0.3)}
    for name, (quick, full) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1. Received: {args.repeats}")
    if args.warmup < 0 or args.min_seconds < 0:
        parser.error(f"--warmup and --min-seconds must be >= 0. Received: {args.warmup}, {args.min_seconds}")
    try:
        args.tflite_thread_counts = [int(item) for item in args.tflite_threads.split(",") if item.strip()]
    except ValueError:
        args.tflite_thread_counts = []
    if not args.tflite_thread_counts or min(args.tflite_thread_counts) < 1:
        parser.error(f"--tflite-threads must list positive ints, e.g. '1,2'. Received: {args.tflite_threads!r}")
    if args.threads is None or args.threads < 1:
        parser.error(f"--threads must be a positive int. Received: {args.threads}")
    args.jit_compile = {"auto": "auto", "true": True, "false": False}[args.jit_compile]
    return args


def main(argv=None):
    args = resolve_args(argv)
    notes = []
    frameworks = list(args.framework_names)
    if "torch" in frameworks:
        try:
            import torch  # noqa: F401
        except ImportError as error:
            frameworks.remove("torch")
            notes.append(f"PyTorch rows skipped: torch is not installed ({error}); pip install -e .[bench].")
            log(notes[-1])

    result = {
        "benchmark": "rnn_speed",
        "command": " ".join([os.path.basename(sys.executable), "benchmarks/rnn_speed.py", *(sys.argv[1:] if argv is None else argv)]),
        "machine": machine_info(),
        "load_average_start": load_average(),
    }
    # Keras and TensorFlow print progress and warnings on stdout; stdout carries only JSON.
    with contextlib.redirect_stdout(sys.stderr), quiet_tensorflow_logger():
        import keras

        threads, thread_notes = configure_threads(args.threads, frameworks)
        notes.extend(thread_notes)
        keras.utils.set_random_seed(args.seed)
        result["versions"] = versions(frameworks)
        result["threads"] = threads
        result["settings"] = {
            "quick": args.quick,
            "repeats": args.repeats,
            "warmup": args.warmup,
            "min_seconds": args.min_seconds,
            "jit_compile": args.jit_compile,
            "tflite": args.tflite,
            "tflite_forms": args.tflite_forms,
            "tflite_threads": args.tflite_thread_counts,
            "vocabulary": VOCABULARY,
            "configs": [shape.as_dict() for shape in args.shapes],
            "layers": args.layer_names,
            "frameworks": frameworks,
            "training_flops_factor": TRAINING_FLOPS_FACTOR,
        }
        rows = []
        if args.tflite_forms != "only":
            log("timing float32 matmul")
            result["matmul_gflops"] = matmul_gflops(frameworks, args)
            # Frameworks are timed interleaved per (layer, config), repeat by repeat, so that
            # load drifting during a long run affects all of them alike.
            for shape in args.shapes:
                for layer in args.layer_names:
                    log(f"{layer} {shape.name}: {', '.join(frameworks)}, interleaved")
                    started = time.perf_counter()
                    group = measure_side_by_side(frameworks, layer, shape, args)
                    seconds = round(time.perf_counter() - started, 2)
                    for row in group:
                        # The whole group's time: its frameworks ran interleaved.
                        row["wall_seconds"] = seconds
                        rows.append(row)
                        if "error" not in row:
                            log(f"  {row['framework']}: train {row['train_tokens_per_s']:.0f} tok/s, infer "
                                f"{row['infer_tokens_per_s']:.0f} tok/s, latency {row['latency_ms']:.2f} ms")
                        else:
                            log(f"  {row['framework']}: {row['error']}")
            result["summary"] = add_ratios(rows)
            result["rows"] = rows
        if args.tflite_forms != "no" and "lstm" in args.layer_names:
            form_rows = []
            for shape in args.shapes:
                try:
                    form_rows.extend(lstm_form_rows(shape, args))
                except Exception as error:  # keep the rows of the other configurations
                    traceback.print_exc(file=sys.stderr)
                    form_rows.append({"config": f"T{shape.time}-E{shape.embed}-H{shape.units}",
                                      "error": f"{type(error).__name__}: {error}"})
            result["tflite_lstm_forms_summary"] = lstm_form_summary(form_rows)
            result["tflite_lstm_forms"] = form_rows
    result["load_average_end"] = load_average()
    result["notes"] = notes
    print(json.dumps(result, indent=2))
    failed = rows + result.get("tflite_lstm_forms", [])
    return 1 if any("error" in row for row in failed) else 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main())
