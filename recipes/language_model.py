"""Word- or character-level recurrent language model: data -> fit -> perplexity -> samples -> bundle.

Run it on the embedded sample (the default), on a registered corpus, or on your own text files:

    python -m recipes.language_model                       # word level, embedded sample
    python -m recipes.language_model --level char
    NLPKIT_DATA=../shared/data python -m recipes.language_model --dataset ptb \\
        --embedding-dim 400 --units 650 --batch-size 32 --seq-len 35 \\
        --optimizer sgd --learning-rate 20 --max-minutes 60     # benchmarks/lm.py has the full settings
    python -m recipes.language_model --level char --train-file my.txt --valid-file my_dev.txt

Training is truncated backpropagation through time over ``--batch-size`` parallel streams
(`nlpkit.data.lm_dataset`): the model is stateful, its states run on from batch to batch
and are reset when an epoch (or an evaluation) starts. Validation perplexity picks the
epoch; test perplexity is measured once, at the end. Both are exact over the whole stream.

The bundle (model.keras, saved_model/ with a greedy ``serving_default``, model.tflite and
model.int8.tflite with a streaming ``step`` signature, assets/, nlpkit.json) lands in
``--output-dir``; `nlpkit.lite.LanguageModelGenerator` reads it.
"""

import dataclasses
import os
import sys
import time
from pathlib import Path

from nlpkit.config import parse_config
from nlpkit.data import get_spec, read_text
from nlpkit.data import load as load_dataset
from nlpkit.data.language_model import LEVELS, build_lm_tokenizer, encode_stream, lm_normalizer
from nlpkit.samples import sample_path

# Corpora that come tokenized: no lowercasing and no punctuation splitting (PTB's "<unk>"
# would otherwise become three tokens, and its "N" number token a different word).
PRETOKENIZED = {"ptb"}
SPLITS = ("train", "valid", "test")


@dataclasses.dataclass
class Config:
    """Every field is a command-line flag (``--seq-len 70``)."""

    level: str = dataclasses.field(default="word", metadata={"help": "word or char"})
    # Data: a registered corpus, or text files (default: the embedded sample).
    dataset: str = dataclasses.field(default="", metadata={"help": "registered corpus: ptb or tinyshakespeare"})
    data_dir: str = dataclasses.field(default="", metadata={"help": "data directory (else NLPKIT_DATA)"})
    train_file: str = ""
    valid_file: str = ""
    test_file: str = ""
    # Tokenizer. Pre-tokenized corpora (PTB) keep their own tokens and vocabulary: these
    # three fields do not apply to them.
    lowercase: bool = True
    split_punctuation: bool = True
    min_frequency: int = dataclasses.field(default=2, metadata={"help": "rarer tokens become <unk>"})
    max_vocabulary: int = dataclasses.field(default=0, metadata={"help": "largest vocabulary, 0 = no limit"})
    # Model (nlpkit.models.LanguageModel).
    cell: str = dataclasses.field(default="lstm", metadata={"help": "lstm, gru, simple_rnn, mingru, minlstm or mamba"})
    embedding_dim: int = 64
    units: int = 128
    num_layers: int = 2
    tie_weights: bool = True
    embedding_dropout: float = dataclasses.field(default=0.05, metadata={"help": "word types dropped per batch"})
    input_dropout: float = dataclasses.field(default=0.2, metadata={"help": "locked dropout on embeddings"})
    dropout: float = dataclasses.field(default=0.2, metadata={"help": "locked dropout between layers"})
    output_dropout: float = dataclasses.field(default=0.2, metadata={"help": "locked dropout on the output"})
    weight_dropout: float = dataclasses.field(default=0.2, metadata={"help": "DropConnect on recurrent kernels"})
    # Training.
    epochs: int = 30
    batch_size: int = dataclasses.field(default=4, metadata={"help": "parallel streams"})
    seq_len: int = dataclasses.field(default=20, metadata={"help": "BPTT length"})
    optimizer: str = dataclasses.field(default="adam", metadata={"help": "adam or sgd"})
    learning_rate: float = 3e-3
    clipnorm: float = dataclasses.field(default=0.25, metadata={"help": "global gradient-norm clip, 0 = off"})
    lr_decay: float = dataclasses.field(default=1.0, metadata={"help": "learning-rate factor per epoch from --decay-start"})
    decay_start: int = dataclasses.field(default=0, metadata={"help": "first epoch (0-based) whose rate is decayed"})
    plateau_factor: float = dataclasses.field(
        default=0.5, metadata={"help": "learning-rate factor when valid perplexity does not improve, 1 = off"}
    )
    patience: int = dataclasses.field(default=5, metadata={"help": "epochs without improvement before stopping"})
    max_minutes: float = dataclasses.field(default=0.0, metadata={"help": "training time budget, 0 = none"})
    steps_per_epoch: int = dataclasses.field(default=0, metadata={"help": "batches per epoch, 0 = the whole stream"})
    seed: int = 1234
    # Devices (nlpkit.distribute). Stateful BPTT trains on one device: see check_config.
    strategy: str = dataclasses.field(default="default", metadata={"help": "default only (stateful BPTT)"})
    mixed_precision: bool = dataclasses.field(default=False, metadata={"help": "float16 (GPU) / bfloat16 (CPU) compute"})
    deterministic: bool = dataclasses.field(default=False, metadata={"help": "deterministic kernels (GPU: slower)"})
    backup_steps: int = dataclasses.field(default=0, metadata={"help": "also back up every N steps (0: per epoch)"})
    # Generation.
    prompts: str = dataclasses.field(default="", metadata={"help": "'|'-separated prompts; empty: line starts of valid"})
    sample_tokens: int = 40
    temperature: float = 0.8
    top_k: int = 0
    top_p: float = 0.95
    beam_width: int = 4
    # Output.
    output_dir: str = "saved_models/language_model"
    int8: bool = dataclasses.field(default=True, metadata={"help": "also write model.int8.tflite"})
    targets: str = dataclasses.field(
        default="litert",
        metadata={"help": "runtimes to export for, comma-separated: litert (always), web (LiteRT.js)"},
    )
    parity_prompts: int = dataclasses.field(default=10, metadata={"help": "prompts whose greedy outputs are compared"})
    parity_tokens: int = dataclasses.field(default=200, metadata={"help": "tokens generated per parity prompt"})


def check_config(config):
    """Raises ``ValueError`` naming the first invalid field."""
    if config.level not in LEVELS:
        raise ValueError(f"--level must be one of {LEVELS}. Received: {config.level!r}")
    if config.optimizer not in ("adam", "sgd"):
        raise ValueError(f"--optimizer must be adam or sgd. Received: {config.optimizer!r}")
    for name in ("epochs", "batch_size", "seq_len"):
        if getattr(config, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1. Received: {getattr(config, name)}")
    if config.strategy != "default":
        raise ValueError(
            f"--strategy {config.strategy} cannot train this recipe; use --strategy default (one "
            "device, a GPU when there is one). Truncated BPTT carries every stream's recurrent state "
            "from one batch to the next in the model's state variables, shaped (batch_size, units). "
            "tf.distribute gives each replica a copy of every variable and keeps the copies identical, "
            "while each replica trains on its own batch_size / replicas streams: one variable cannot "
            "hold the different states of different replicas' streams. "
            f"Received: strategy={config.strategy!r}"
        )


def load_texts(config):
    """``{"train": text, "valid": text, "test": text or None}`` (str, or lists of lines)."""
    if config.dataset:
        available = get_spec(config.dataset).splits
        kwargs = {"data_dir": config.data_dir or None}
        return {
            split: load_dataset(config.dataset, split, **kwargs) if split in available else None
            for split in SPLITS
        }
    files = {
        "train": config.train_file or sample_path("lm_train.txt"),
        "valid": config.valid_file or (None if config.train_file else sample_path("lm_valid.txt")),
        "test": config.test_file or (None if config.train_file else sample_path("lm_test.txt")),
    }
    return {split: read_text(path) if path else None for split, path in files.items()}


def build_tokenizer(config, train_text):
    """The pure-Python tokenizer and its graph twin, with a vocabulary from ``train_text``."""
    from nlpkit.text import CharTokenizer, WordTokenizer

    if config.dataset in PRETOKENIZED:
        normalizer, min_frequency = lm_normalizer(config.level), 1
    else:
        normalizer = lm_normalizer(config.level, config.lowercase, config.split_punctuation)
        min_frequency = config.min_frequency
    twin = build_lm_tokenizer(
        train_text, config.level, normalizer, min_frequency=min_frequency, max_size=config.max_vocabulary or None
    )
    graph = (WordTokenizer if config.level == "word" else CharTokenizer).from_python(twin)
    return twin, graph


def compile_model(model, config):
    """Compiles with the configured optimizer, cross-entropy on logits and exact stream metrics."""
    import keras

    from nlpkit.metrics import Perplexity

    clip = config.clipnorm or None
    if config.optimizer == "adam":
        optimizer = keras.optimizers.Adam(config.learning_rate, global_clipnorm=clip)
    else:
        optimizer = keras.optimizers.SGD(config.learning_rate, global_clipnorm=clip)
    model.compile(
        optimizer=optimizer,
        # Averaged over the real tokens of a batch: the padded end of the streams has weight 0.
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="mean_with_sample_weight"),
        # `weighted_metrics`: Keras hands the sample weights (0 on padding) to these only.
        # One metric: each one computes its own softmax over the vocabulary per batch;
        # nats and bits per token follow from the perplexity.
        weighted_metrics=[Perplexity()],
        jit_compile=False,
    )


def build_model(config, vocabulary_size, batch_size=None):
    """The LanguageModel this recipe trains, built and compiled.

    With ``batch_size`` the model is stateful for truncated BPTT over that many streams;
    without it, stateless (any batch size).
    """
    import numpy as np

    from nlpkit.models import LanguageModel

    model = LanguageModel(
        vocabulary_size=vocabulary_size,
        embedding_dim=config.embedding_dim,
        units=config.units,
        num_layers=config.num_layers,
        cell=config.cell,
        tie_weights=config.tie_weights,
        embedding_dropout=config.embedding_dropout,
        input_dropout=config.input_dropout,
        dropout=config.dropout,
        output_dropout=config.output_dropout,
        weight_dropout=config.weight_dropout,
        stateful=batch_size is not None,
        seed=config.seed,
    )
    model(np.zeros((batch_size or 1, config.seq_len), "int32"))  # create the weights and states
    compile_model(model, config)
    return model


def evaluate(model, ids, config):
    """Exact perplexity, nats and bits per token of ``model`` on the id stream ``ids``."""
    import math

    from nlpkit.data import lm_dataset
    from nlpkit.models import ResetStatesCallback

    results = model.evaluate(
        lm_dataset(ids, config.batch_size, config.seq_len), callbacks=[ResetStatesCallback()],
        return_dict=True, verbose=0,
    )
    nats = math.log(float(results["perplexity"]))
    return {
        "perplexity": round(float(results["perplexity"]), 3),
        "nats_per_token": round(nats, 4),
        "bits_per_token": round(nats / math.log(2.0), 4),
        "tokens": int(ids.size - 1),
    }


def default_prompts(text, level, count):
    """``count`` prompts from the starts of the lines of ``text`` (2-4 words, or 4-12 characters).

    Lines are reused with longer prefixes when there are fewer than ``count``.
    """
    lines = [line.strip() for line in (text.split("\n") if isinstance(text, str) else text)]
    lines = [line for line in lines if line][: max(count, 1)]
    if not lines:
        return [""] * count
    prompts = []
    for index in range(count):
        line, extra = lines[index % len(lines)], index // len(lines)
        if level == "word":
            prompts.append(" ".join(line.split()[: 2 + extra]))
        else:
            prompts.append(line[: 4 + 4 * extra])
    return prompts


def training_callbacks(config, work_dir):
    """Reset states per epoch, early stopping/checkpoints/backup, learning-rate schedule, budget."""
    import keras

    from nlpkit.models import ResetStatesCallback
    from nlpkit.training import standard_callbacks, time_budget_callback

    callbacks = [ResetStatesCallback()]
    callbacks += standard_callbacks(work_dir, monitor="val_perplexity", mode="min", patience=config.patience,
                                    backup_steps=config.backup_steps)
    if config.lr_decay != 1.0:
        # Multiplies the current rate, so the plateau reductions below are kept.
        factor, start = config.lr_decay, config.decay_start
        callbacks.append(keras.callbacks.LearningRateScheduler(
            lambda epoch, rate: rate * factor if epoch >= start else rate
        ))
    if config.plateau_factor != 1.0:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor="val_perplexity", mode="min", factor=config.plateau_factor, patience=0, verbose=1
        ))
    if config.max_minutes > 0:
        callbacks.append(time_budget_callback(config.max_minutes))
    return callbacks


def greedy_parity(model, bundle, tokenizer, prompts, max_new_tokens):
    """Greedy continuations of ``prompts`` by the Keras model and by the bundle's TFLite step."""
    from nlpkit.decoding import KerasStepFunction, generate_text
    from nlpkit.lite import LanguageModelGenerator

    _, keras_result = generate_text(KerasStepFunction(model), tokenizer, prompts, max_new_tokens)
    _, lite_result = LanguageModelGenerator(bundle).generate_with_ids(prompts, max_new_tokens)
    equal = sum(a == b for keras_tokens, lite_tokens in zip(keras_result.tokens, lite_result.tokens)
                for a, b in zip(keras_tokens, lite_tokens))
    total = sum(len(tokens) for tokens in keras_result.tokens)
    return {
        "prompts": len(prompts),
        "tokens_per_prompt": max_new_tokens,
        "identical": keras_result.tokens == lite_result.tokens,
        "matching_tokens": f"{equal}/{total}",
    }


def generate_samples(model, tokenizer, prompts, config):
    """Greedy, sampled and beam-search continuations of ``prompts`` (Keras model)."""
    from nlpkit.decoding import KerasStepFunction, generate_text

    step = KerasStepFunction(model)
    settings = {
        "greedy": {},
        "sample": {"temperature": config.temperature, "top_k": config.top_k, "top_p": config.top_p,
                   "seed": config.seed},
        "beam": {"beam_width": config.beam_width},
    }
    samples = {}
    for method, options in settings.items():
        texts, _ = generate_text(step, tokenizer, prompts, config.sample_tokens, method, **options)
        samples[method] = [{"prompt": prompt, "continuation": text} for prompt, text in zip(prompts, texts)]
    return samples


def train(config):
    """Trains, evaluates, generates and exports; returns the bundle path."""
    from nlpkit.data import lm_dataset
    from nlpkit.export import print_parity, write_language_model_bundle
    from nlpkit.distribute import setup_training
    from nlpkit.training import remove_work_dir, training_totals

    check_config(config)
    setup = setup_training(strategy=config.strategy, mixed_precision=config.mixed_precision, seed=config.seed,
                           deterministic=config.deterministic)
    print(setup.describe())
    texts = load_texts(config)
    started = time.perf_counter()
    twin, graph_tokenizer = build_tokenizer(config, texts["train"])
    streams = {split: encode_stream(twin, text) for split, text in texts.items() if text is not None}
    if streams["train"].size < 2:
        raise ValueError("the training text holds fewer than 2 tokens")
    valid_split = "valid" if streams.get("valid") is not None and streams["valid"].size >= 2 else "train"
    print(f"{config.level} level: vocabulary {len(twin.vocabulary)}, tokens "
          + ", ".join(f"{split} {ids.size}" for split, ids in streams.items()))

    model = build_model(config, len(twin.vocabulary), batch_size=config.batch_size)
    train_data = lm_dataset(streams["train"], config.batch_size, config.seq_len)
    if config.steps_per_epoch:
        train_data = train_data.take(config.steps_per_epoch)
    work_dir = Path(config.output_dir).with_name(Path(config.output_dir).name + ".work")
    callbacks = training_callbacks(config, work_dir)
    model.fit(
        train_data,
        validation_data=lm_dataset(streams[valid_split], config.batch_size, config.seq_len),
        epochs=config.epochs,
        shuffle=False,  # batches continue each other's streams: order is the point
        callbacks=callbacks,
        verbose=2 if not sys.stdout.isatty() else 1,
    )
    epochs_run, training_seconds = training_totals(started, callbacks)  # a resumed run's earlier processes included
    model = setup.local_model(model)  # float32 after mixed precision: what the bundle holds
    metrics = {
        "training_seconds": round(training_seconds, 1),
        "epochs_run": epochs_run,
        "seconds_per_epoch": round(training_seconds / max(epochs_run, 1), 1),
        "valid_split": valid_split,
        "valid": evaluate(model, streams[valid_split], config),
    }
    if streams.get("test") is not None and streams["test"].size >= 2:
        metrics["test"] = evaluate(model, streams["test"], config)  # once, after selection
    for split in ("valid", "test"):
        if split in metrics:
            report = metrics[split]
            print(f"{split}: perplexity {report['perplexity']:.2f}, {report['nats_per_token']:.4f} nats "
                  f"/ {report['bits_per_token']:.4f} bits per {config.level}")

    model = model.to_stateless()
    prompt_text = texts["valid"] if texts.get("valid") else texts["train"]
    prompts = config.prompts.split("|") if config.prompts else default_prompts(prompt_text, config.level, 3)
    samples = generate_samples(model, twin, prompts, config)
    for method, rows in samples.items():
        for row in rows:
            print(f"[{method}] {row['prompt']!r} -> {row['continuation']!r}")

    parity = None
    if config.parity_prompts and config.parity_tokens:
        parity_prompts = default_prompts(prompt_text, config.level, config.parity_prompts)
        parity = lambda staged: greedy_parity(model, staged, twin, parity_prompts, config.parity_tokens)  # noqa: E731

    bundle = write_language_model_bundle(
        config.output_dir, model, twin, graph_tokenizer, int8=config.int8, targets=config.targets,
        metadata={"metrics": metrics, "config": dataclasses.asdict(config), "samples": samples},
        parity=parity,
    )
    print_parity(bundle)
    remove_work_dir(work_dir)  # only after the bundle is complete: a failed run keeps it for the rerun
    print(f"bundle written to {bundle}")
    return bundle


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    config = parse_config(Config, argv, prog="nlpkit train language_model", description=__doc__.splitlines()[0])
    train(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
