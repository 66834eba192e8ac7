"""Long-range dependencies, measured: SimpleRNN, LSTM, GRU, MinGRU, Mamba and a Transformer encoder.

Every model gets the same training time on each (task, length) — adding problem, selective
copy and delayed recall (`nlpkit.data.long_range`) at lengths 50, 200 and 1000; ``--minutes``
is the wall-clock budget of the whole experiment, shared out before each (task, length) after
the overhead measured so far — at matched parameter counts: the LSTM with ``--lstm-units`` units sets the size, and every other
sequence layer gets the width whose parameter count is closest to it. Reported per run:
the test score (mean squared error or answer accuracy, on examples drawn with another seed),
whether that solves the task, training tokens/s, and per-token inference latency on TFLite
(1 thread): one streaming ``step`` for the recurrent layers (constant in the length), one
full pass over the prefix for the Transformer (no state to carry, so each new token
re-reads the sequence; it grows with the length).

    python -m recipes.long_range                                   # everything, 55 min
    python -m recipes.long_range --tasks adding --lengths 50,200 --minutes 20
    python -m recipes.long_range --tasks delayed_recall --lengths 50 --models lstm,mingru --minutes 1

Writes ``long_range.json``, ``long_range.md`` (the table) and ``long_range.png`` (score
against length, one panel per task) to ``--output-dir``.
"""

import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path

from nlpkit.config import parse_config

MODELS = ("simple_rnn", "lstm", "gru", "mingru", "minlstm", "mamba", "transformer")
TRANSFORMER_HEADS = 2


@dataclasses.dataclass
class Config:
    """Every field is a command-line flag (``--lstm-units 64``)."""

    tasks: str = dataclasses.field(default="adding,selective_copy,delayed_recall", metadata={"help": "comma-separated"})
    lengths: str = dataclasses.field(default="50,200,1000", metadata={"help": "comma-separated sequence lengths"})
    models: str = dataclasses.field(
        default="simple_rnn,lstm,gru,mingru,mamba,transformer", metadata={"help": f"comma-separated, from {MODELS}"}
    )
    lstm_units: int = dataclasses.field(default=32, metadata={"help": "the LSTM's units; every model matches its parameters"})
    minutes: float = dataclasses.field(
        default=55.0,
        metadata={"help": "wall-clock budget of the whole experiment; each model of a (task, length) gets the same "
                          "training time: what is left after the measured overhead (building, testing, TFLite timing)"},
    )
    batch_size: int = 32
    learning_rate: float = 0.002
    clipnorm: float = 1.0
    test_examples: int = dataclasses.field(default=512, metadata={"help": "examples per test set"})
    latency_steps: int = dataclasses.field(default=300, metadata={"help": "TFLite calls timed per latency figure"})
    seed: int = 1234
    output_dir: str = "saved_models/long_range"


def _names(text, known, what):
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(names) - set(known))
    if unknown or not names:
        raise ValueError(f"--{what} must name some of {sorted(known)}. Received: {text!r}")
    return names


def check_config(config):
    """Parses the comma-separated fields; returns ``(tasks, lengths, models)``."""
    from nlpkit.data.long_range import TASKS

    tasks = _names(config.tasks, TASKS, "tasks")
    models = _names(config.models, MODELS, "models")
    try:
        lengths = [int(length) for length in config.lengths.split(",") if length.strip()]
    except ValueError:
        lengths = []
    if not lengths or min(lengths) < 8:
        raise ValueError(f"--lengths must be integers >= 8. Received: {config.lengths!r}")
    for name, value in (("lstm-units", config.lstm_units), ("batch-size", config.batch_size),
                        ("test-examples", config.test_examples), ("latency-steps", config.latency_steps)):
        if value < 1:
            raise ValueError(f"--{name} must be >= 1. Received: {value}")
    if config.minutes <= 0:
        raise ValueError(f"--minutes must be > 0. Received: {config.minutes}")
    return tasks, lengths, models


# -- models ---------------------------------------------------------------------------------


def transformer_core(width, input_dim):
    """Dense(width) + sinusoidal positions -> one keras-hub TransformerEncoder (2 heads, FFN 2x)."""
    import keras
    import keras_hub

    inputs = keras.Input((None, input_dim))
    x = keras.layers.Dense(width)(inputs)
    x = x + keras_hub.layers.SinePositionEncoding()(x)
    outputs = keras_hub.layers.TransformerEncoder(intermediate_dim=2 * width, num_heads=TRANSFORMER_HEADS)(x)
    return keras.Model(inputs, outputs, name="transformer_core")


def transformer_width(target, input_dim):
    """The width (a multiple of the head count) whose core is closest to ``target`` parameters."""
    from nlpkit.layers import size_closest_to

    def count(multiple):
        return transformer_core(multiple * TRANSFORMER_HEADS, input_dim).count_params()

    return TRANSFORMER_HEADS * size_closest_to(count, target, largest=512)


def build_core(kind, input_dim, target):
    """``(core, width)``: the sequence layer (or Transformer block) of ``kind`` at ``target`` parameters."""
    from nlpkit.layers import recurrent_layer, units_matching_parameters

    if kind == "transformer":
        width = transformer_width(target, input_dim)
        return transformer_core(width, input_dim), width
    width = units_matching_parameters(kind, target, input_dim)
    return recurrent_layer(kind, width, return_sequences=True), width


def build_model(core, task, length, config):
    """Input -> core -> the last ``answer_steps`` outputs -> Dense, compiled for the task."""
    import keras

    inputs = keras.Input((length, task.input_dim))
    sequence = core(inputs)
    answers = keras.layers.Cropping1D((length - task.answer_steps, 0))(sequence)
    outputs = keras.layers.Dense(1 if task.is_regression else task.num_classes)(answers)
    model = keras.Model(inputs, outputs)
    if task.is_regression:
        loss, metrics = "mse", []
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        metrics = ["sparse_categorical_accuracy"]
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate, clipnorm=config.clipnorm),
                  loss=loss, metrics=metrics)
    return model


# -- one run --------------------------------------------------------------------------------


def batches(task, length, batch_size, seed):
    """An endless ``tf.data`` stream of fresh batches."""
    import numpy as np
    import tensorflow as tf

    def generate():
        rng = np.random.default_rng(seed)
        while True:
            yield task.batch(rng, batch_size, length)

    answer_shape = (batch_size, task.answer_steps, 1) if task.is_regression else (batch_size, task.answer_steps)
    return tf.data.Dataset.from_generator(generate, output_signature=(
        tf.TensorSpec((batch_size, length, task.input_dim), tf.float32),
        tf.TensorSpec(answer_shape, tf.float32 if task.is_regression else tf.int32),
    )).prefetch(2)


def training_clock(seconds):
    """A callback that stops ``fit`` after ``seconds`` and counts the batches after the first.

    The first batch traces the training step, so throughput is measured from its end
    (`steady_seconds`).
    """
    import keras

    class TrainingClock(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.started = self.last_batch_end = time.perf_counter()
            self.first_batch_end = None
            self.batches_after_first = 0

        def on_train_batch_end(self, batch, logs=None):
            now = self.last_batch_end = time.perf_counter()
            if self.first_batch_end is None:
                self.first_batch_end = now
            else:
                self.batches_after_first += 1
            if now - self.started >= seconds:
                self.model.stop_training = True

        def steady_seconds(self):
            return self.last_batch_end - self.first_batch_end if self.first_batch_end else 0.0

    return TrainingClock()


def test_score(model, task, length, examples, seed, batch_size=128):
    """Mean squared error (regression) or answer accuracy on ``examples`` fresh examples."""
    import numpy as np

    inputs, answers = task.batch(np.random.default_rng(seed), examples, length)
    predictions = model.predict(inputs, batch_size=batch_size, verbose=0)
    if task.is_regression:
        return float(np.mean((predictions - answers) ** 2))
    return float(np.mean(np.argmax(predictions, axis=-1) == answers))


def tflite_latency_ms(core, kind, input_dim, length, steps, seed=0):
    """Median ms per token on TFLite, 1 thread: a streaming step, or a Transformer pass over ``length``."""
    import numpy as np
    import tensorflow as tf

    from nlpkit.export import StreamingStack, convert
    from nlpkit.lite import StreamingRunner
    from nlpkit.lite.runtime import load_signature_runner

    rng = np.random.default_rng(seed)
    if kind == "transformer":
        def encode(inputs):
            return {"output": core(inputs, training=False)}

        spec = tf.TensorSpec((1, length, input_dim), tf.float32, name="inputs")
        content = convert(core, {"encode": (encode, [spec])})
        runner = load_signature_runner(content, "encode", num_threads=1)
        inputs = rng.normal(size=(1, length, input_dim)).astype(np.float32)
        call, calls = (lambda: runner(inputs=inputs)), max(steps // 30, 3)
    else:
        stack = StreamingStack([core])
        content = convert(stack, stack.tflite_endpoints())
        streaming = StreamingRunner(content, num_threads=1)
        inputs = rng.normal(size=(input_dim,)).astype(np.float32)
        call, calls = (lambda: streaming.step(inputs)), steps
    call()
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(calls):
            call()
        timings.append((time.perf_counter() - started) / calls * 1000)
    return round(statistics.median(timings), 4), len(content)


def run_one(task, length, kind, seconds, config, latency_cache):
    import keras

    from nlpkit.layers import recurrent_layer_parameters

    keras.utils.set_random_seed(config.seed)
    target = recurrent_layer_parameters("lstm", config.lstm_units, task.input_dim)
    core, width = build_core(kind, task.input_dim, target)
    model = build_model(core, task, length, config)
    core_parameters = core.count_params()
    clock = training_clock(seconds)
    model.fit(batches(task, length, config.batch_size, config.seed), epochs=1, steps_per_epoch=10 ** 9,
              callbacks=[clock], shuffle=False, verbose=0)
    score = test_score(model, task, length, config.test_examples, config.seed + 1)
    tokens = clock.batches_after_first * config.batch_size * length
    steady = clock.steady_seconds()
    key = (kind, task.input_dim, length if kind == "transformer" else None)
    if key not in latency_cache:
        try:
            latency_cache[key] = tflite_latency_ms(core, kind, task.input_dim, length, config.latency_steps)
        except Exception as error:  # reported in the table, not fatal to the experiment
            latency_cache[key] = (f"{type(error).__name__}: {error}"[:200], 0)
    latency, tflite_bytes = latency_cache[key]
    return {
        "task": task.name, "length": length, "model": kind, "width": width,
        "core_parameters": int(core_parameters), "lstm_parameters": int(target),
        "training_seconds": round(clock.last_batch_end - clock.started, 1),
        "training_steps": clock.batches_after_first + (1 if clock.first_batch_end else 0),
        "training_tokens_per_second": round(tokens / steady, 1) if steady > 0 else None,
        "metric": "mse" if task.is_regression else "accuracy",
        "test_score": round(score, 4), "chance": round(task.chance, 4), "solved": task.solved(score),
        "latency_ms_per_token": latency, "latency_form": "full pass" if kind == "transformer" else "step",
        "tflite_bytes": tflite_bytes,
    }


# -- report ---------------------------------------------------------------------------------


def markdown_table(rows):
    lines = ["| task | length | model | params | test score | solved | train tok/s | TFLite ms/token |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        latency = row["latency_ms_per_token"]
        latency = f"{latency:.3f} ({row['latency_form']})" if isinstance(latency, float) else f"failed: {latency}"
        lines.append(
            f"| {row['task']} | {row['length']} | {row['model']} | {row['core_parameters']} | "
            f"{row['metric']} {row['test_score']:.4f} (chance {row['chance']:.3f}) | "
            f"{'yes' if row['solved'] else 'no'} | {row['training_tokens_per_second']} | {latency} |"
        )
    return "\n".join(lines) + "\n"


def plot(rows, path):
    """Score against length, one panel per task, one line per model."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(row["task"] for row in rows))
    figure, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 4), squeeze=False)
    for axis, task in zip(axes[0], tasks):
        task_rows = [row for row in rows if row["task"] == task]
        for model in dict.fromkeys(row["model"] for row in task_rows):
            points = sorted((row["length"], row["test_score"]) for row in task_rows if row["model"] == model)
            axis.plot(*zip(*points), marker="o", label=model)
        axis.axhline(task_rows[0]["chance"], color="grey", linestyle=":", label="chance")
        axis.set_xscale("log")
        axis.set_xlabel("sequence length")
        axis.set_ylabel(f"test {task_rows[0]['metric']}")
        axis.set_title(task)
    axes[0][0].legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


# Before any run is measured: seconds a run spends outside training (model building, the
# test set, TFLite conversion and timing), measured at 25-40 s on this 2-core machine.
FIRST_OVERHEAD_GUESS = 30.0
MIN_TRAINING_SECONDS = 0.5


def training_seconds_per_run(seconds_left, runs_left, overheads):
    """Training time for each of the next runs: the budget left, shared out, less the mean overhead so far."""
    overhead = statistics.mean(overheads) if overheads else FIRST_OVERHEAD_GUESS
    return max(MIN_TRAINING_SECONDS, seconds_left / runs_left - overhead)


def train(config):
    """Runs every (task, length, model); writes the JSON, markdown and PNG; returns the rows."""
    from nlpkit.data.long_range import TASKS

    task_names, lengths, models = check_config(config)
    groups = [(TASKS[name], length) for name in task_names for length in lengths]
    print(f"{len(groups) * len(models)} runs in {config.minutes:g} minutes")
    rows, latency_cache, overheads = [], {}, []
    started = time.perf_counter()
    deadline = started + config.minutes * 60
    for index, (task, length) in enumerate(groups):
        seconds = training_seconds_per_run(deadline - time.perf_counter(), (len(groups) - index) * len(models), overheads)
        print(f"{task.name} T={length}: {seconds:.1f} s of training per model", flush=True)
        for kind in models:
            run_started = time.perf_counter()
            row = run_one(task, length, kind, seconds, config, latency_cache)
            row["overhead_seconds"] = round(time.perf_counter() - run_started - row["training_seconds"], 1)
            overheads.append(row["overhead_seconds"])
            rows.append(row)
            print(f"{task.name} T={length} {kind}: {row['metric']} {row['test_score']:.4f} "
                  f"(solved: {row['solved']}), {row['training_tokens_per_second']} tok/s, "
                  f"{row['training_steps']} steps, latency {row['latency_ms_per_token']}, "
                  f"overhead {row['overhead_seconds']} s", flush=True)
    output = Path(config.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    report = {
        "config": dataclasses.asdict(config),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "rows": rows,
        "load_average": list(os.getloadavg()),
    }
    (output / "long_range.json").write_text(json.dumps(report, indent=2))
    (output / "long_range.md").write_text(markdown_table(rows))
    plot(rows, output / "long_range.png")
    print(markdown_table(rows))
    print(f"written to {output}")
    return rows


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    config = parse_config(Config, argv, prog="nlpkit train long_range", description=__doc__.splitlines()[0])
    train(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
