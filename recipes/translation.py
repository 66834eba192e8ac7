"""Attentive recurrent translation: subwords -> Seq2Seq -> fit -> sacreBLEU -> bundle with TFLite encode/decode_step.

Run it on the embedded German-English sample (the default), on Multi30k, or on any
line-aligned parallel files:

    python -m recipes.translation                                   # de -> en, embedded sample
    NLPKIT_DATA=/work/shared/data python -m recipes.translation --dataset multi30k --src de --tgt en \\
        --vocabulary-size 8000 --embedding-dim 256 --units 256 --epochs 15 --max-minutes 60
    python -m recipes.translation --src en --tgt de --train-src train.en --train-tgt train.de \\
        --valid-src val.en --valid-tgt val.de

Steps, top to bottom: read the pairs; train one SentencePiece model on both sides of the
training data (a shared vocabulary); encode (source + end id; start id + target / target +
end id); train `nlpkit.models.Seq2Seq` with teacher forcing (``model.fit``, its own
label-smoothed loss, validation loss picks the epoch); translate the validation and test
sources (greedy and beam search) and score the detokenized output with sacreBLEU (BLEU with
its 13a tokenizer, and chrF); write the bundle (model.keras, saved_model/ whose
``serving_default`` takes source strings and runs beam search in the graph, model.tflite with
``encode`` and ``decode_step``, the SentencePiece model in assets/, nlpkit.json); check that
`nlpkit.lite.Translator` reproduces the Keras greedy translations token for token.
"""

import dataclasses
import os
import sys
import time

from nlpkit.config import parse_config
from nlpkit.data import read_parallel, read_parallel_tsv
from nlpkit.samples import sample_path

SPLITS = ("train", "valid", "test")


@dataclasses.dataclass
class Config:
    """Every field is a command-line flag (``--beam-width 5``)."""

    src: str = dataclasses.field(default="de", metadata={"help": "source language"})
    tgt: str = dataclasses.field(default="en", metadata={"help": "target language"})
    # Data: a registered corpus, line-aligned files, or (default) the embedded sample.
    dataset: str = dataclasses.field(default="", metadata={"help": "registered corpus, e.g. multi30k"})
    data_dir: str = dataclasses.field(default="", metadata={"help": "data directory (else NLPKIT_DATA)"})
    train_src: str = ""
    train_tgt: str = ""
    valid_src: str = ""
    valid_tgt: str = ""
    test_src: str = ""
    test_tgt: str = ""
    max_train_pairs: int = dataclasses.field(default=0, metadata={"help": "use the first N training pairs, 0 = all"})
    # Subwords (one SentencePiece model for both languages).
    vocabulary_size: int = dataclasses.field(default=400, metadata={"help": "largest subword vocabulary"})
    subword_model: str = dataclasses.field(default="unigram", metadata={"help": "unigram or bpe"})
    max_length: int = dataclasses.field(default=100, metadata={"help": "longest source/target in subwords"})
    # Model (nlpkit.models.Seq2Seq).
    cell: str = dataclasses.field(default="gru", metadata={"help": "gru, lstm or simple_rnn"})
    attention: str = dataclasses.field(default="luong", metadata={"help": "luong or bahdanau"})
    embedding_dim: int = 64
    units: int = 96
    encoder_layers: int = 1
    input_feeding: bool = True
    tie_embeddings: bool = True
    dropout: float = 0.2
    label_smoothing: float = 0.1
    # Training.
    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 3e-3
    clipnorm: float = dataclasses.field(default=1.0, metadata={"help": "global gradient-norm clip, 0 = off"})
    patience: int = dataclasses.field(default=4, metadata={"help": "epochs without improvement before stopping"})
    max_minutes: float = dataclasses.field(default=0.0, metadata={"help": "training time budget, 0 = none"})
    seed: int = 1234
    # Devices (nlpkit.distribute): --batch-size is the global batch, split across replicas.
    strategy: str = dataclasses.field(default="default", metadata={"help": "default, mirrored, multi_worker or tpu"})
    mixed_precision: bool = dataclasses.field(default=False, metadata={"help": "float16 (GPU) / bfloat16 (CPU) compute"})
    deterministic: bool = dataclasses.field(default=False, metadata={"help": "deterministic kernels (GPU: slower)"})
    backup_steps: int = dataclasses.field(default=0, metadata={"help": "also back up every N steps (0: per epoch)"})
    # Decoding.
    beam_width: int = 4
    length_penalty: float = 1.0
    max_length_ratio: float = 2.0
    max_length_offset: int = 10
    # Output.
    output_dir: str = "saved_models/translation"
    int8: bool = dataclasses.field(default=True, metadata={"help": "also write model.int8.tflite"})
    targets: str = dataclasses.field(
        default="litert",
        metadata={"help": "runtimes to export for, comma-separated: litert (always), web (LiteRT.js)"},
    )
    parity_sentences: int = dataclasses.field(
        default=50, metadata={"help": "test sentences whose TFLite greedy output must equal Keras'; -1 = all"}
    )


def check_config(config):
    """Raises ``ValueError`` naming the first invalid field."""
    if config.src == config.tgt:
        raise ValueError(f"--src and --tgt must differ. Received: {config.src!r} twice")
    for name in ("epochs", "batch_size", "vocabulary_size", "max_length", "beam_width"):
        if getattr(config, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1. Received: {getattr(config, name)}")
    if bool(config.train_src) != bool(config.train_tgt):
        raise ValueError("give both --train-src and --train-tgt (line-aligned files), or neither")


def load_pairs(config):
    """``{"train": pairs, "valid": pairs or None, "test": pairs or None}`` (lists of ParallelPair)."""
    from nlpkit.data import get_spec
    from nlpkit.data import load as load_dataset

    if config.dataset:
        available = get_spec(config.dataset).splits
        kwargs = {"data_dir": config.data_dir or None, "source_language": config.src, "target_language": config.tgt}
        pairs = {split: load_dataset(config.dataset, split, **kwargs) if split in available else None for split in SPLITS}
    elif config.train_src:
        files = {split: (getattr(config, f"{split}_src"), getattr(config, f"{split}_tgt")) for split in SPLITS}
        pairs = {split: read_parallel(*paths) if all(paths) else None for split, paths in files.items()}
    else:
        pairs = {
            split: read_parallel_tsv(sample_path(f"translation_{split}.tsv"), config.src, config.tgt)
            for split in SPLITS
        }
    if config.max_train_pairs:
        pairs["train"] = pairs["train"][: config.max_train_pairs]
    return pairs


def build_tokenizer(config, train_pairs):
    """A shared SentencePiece model trained on both sides of the training pairs, and its graph twin."""
    from nlpkit.text import PythonSentencePieceTokenizer, SentencePieceTokenizer

    texts = [text for pair in train_pairs for text in pair]
    twin = PythonSentencePieceTokenizer.train(texts, vocabulary_size=config.vocabulary_size, model_type=config.subword_model)
    return twin, SentencePieceTokenizer.from_python(twin)


def build_model(config, vocabulary_size):
    """The Seq2Seq this recipe trains, built and compiled."""
    import keras
    import numpy as np

    from nlpkit.models import Seq2Seq

    model = Seq2Seq(
        vocabulary_size,
        vocabulary_size,
        embedding_dim=config.embedding_dim,
        units=config.units,
        encoder_layers=config.encoder_layers,
        cell=config.cell,
        attention=config.attention,
        input_feeding=config.input_feeding,
        tie_embeddings=config.tie_embeddings,
        dropout=config.dropout,
        label_smoothing=config.label_smoothing,
        seed=config.seed,
    )
    model({"source_ids": np.ones((1, 2), "int32"), "decoder_input_ids": np.ones((1, 2), "int32")})
    optimizer = keras.optimizers.Adam(config.learning_rate, global_clipnorm=config.clipnorm or None)
    model.compile(optimizer, jit_compile=False)
    return model


def translate(model, tokenizer, texts, config, method="greedy"):
    """Keras translations of ``texts`` (greedy or beam search with the configured settings)."""
    from nlpkit.decoding import KerasDecoderStep, translate_texts

    options = {"max_length_ratio": config.max_length_ratio, "max_length_offset": config.max_length_offset}
    if method == "beam":
        options.update(beam_width=config.beam_width, length_penalty=config.length_penalty)
    translations, tokens = translate_texts(
        KerasDecoderStep(model), tokenizer, texts, model.bos_id, model.eos_id, method,
        max_source_length=config.max_length, **options,
    )
    return translations, tokens


def evaluate(model, tokenizer, pairs, config):
    """BLEU and chrF of greedy and beam-search translations of ``pairs``, with timings."""
    from nlpkit.metrics import translation_scores

    sources, references = [pair.source for pair in pairs], [pair.target for pair in pairs]
    report, outputs = {"sentences": len(pairs)}, {}
    for method in ("greedy", "beam"):
        started = time.perf_counter()
        outputs[method], _ = translate(model, tokenizer, sources, config, method)
        seconds = time.perf_counter() - started
        scores = translation_scores(outputs[method], references).as_dict()
        report[method] = {
            "bleu": scores["bleu"], "chrf": scores["chrf"],
            "sentences_per_second": round(len(pairs) / max(seconds, 1e-9), 2),
        }
        report["bleu_signature"], report["chrf_signature"] = scores["bleu_signature"], scores["chrf_signature"]
    return report, outputs


def greedy_parity(model, bundle, tokenizer, texts, config):
    """Keras and TFLite (`nlpkit.lite.Translator`) greedy translations of ``texts``, compared by tokens."""
    from nlpkit.lite import Translator

    _, keras_tokens = translate(model, tokenizer, texts, config)
    translator = Translator(bundle)
    started = time.perf_counter()
    lite_tokens = []
    for start in range(0, len(texts), 64):
        _, result = translator.translate_with_ids(texts[start : start + 64])
        lite_tokens.extend(tokens[: tokens.index(model.eos_id)] if model.eos_id in tokens else tokens
                           for tokens in result.tokens)
    seconds = time.perf_counter() - started
    differing = [index for index, (a, b) in enumerate(zip(keras_tokens, lite_tokens)) if a != b]
    return {
        "sentences": len(texts),
        "identical": not differing,
        "differing_sentences": differing[:20],
        "tflite_greedy_sentences_per_second": round(len(texts) / max(seconds, 1e-9), 2),
    }


def train(config):
    """Trains, evaluates and exports; returns the bundle path."""
    from nlpkit.data.translation import encode_pairs, translation_dataset
    from nlpkit.export import DecodingSettings, print_parity, write_translation_bundle
    from nlpkit.distribute import setup_training
    from nlpkit.training import remove_work_dir, standard_callbacks, time_budget_callback, training_totals

    check_config(config)
    setup = setup_training(strategy=config.strategy, mixed_precision=config.mixed_precision, seed=config.seed,
                           deterministic=config.deterministic, batch_size=config.batch_size)
    print(setup.describe())
    pairs = load_pairs(config)
    tokenizer, graph_tokenizer = build_tokenizer(config, pairs["train"])
    encoded = {
        split: encode_pairs(tokenizer, split_pairs, config.max_length)
        for split, split_pairs in pairs.items() if split_pairs
    }
    valid_split = "valid" if "valid" in encoded else "train"
    print(f"{config.src}->{config.tgt}: subword vocabulary {tokenizer.vocabulary_size}, pairs "
          + ", ".join(f"{split} {len(split_pairs)}" for split, split_pairs in pairs.items() if split_pairs))

    model = setup.build(build_model, config, tokenizer.vocabulary_size)
    output_dir = setup.output_dir(config.output_dir)
    work_dir = output_dir.with_name(output_dir.name + ".work")
    callbacks = standard_callbacks(work_dir, monitor="val_loss", mode="min", patience=config.patience,
                                   backup_steps=config.backup_steps)
    if config.max_minutes > 0:
        callbacks.append(time_budget_callback(config.max_minutes))
    started = time.perf_counter()
    history = model.fit(
        setup.dataset(translation_dataset(*encoded["train"], batch_size=config.batch_size, shuffle=True,
                                          seed=config.seed)),
        validation_data=setup.dataset(translation_dataset(*encoded[valid_split], batch_size=config.batch_size)),
        epochs=config.epochs,
        callbacks=callbacks,
        shuffle=False,  # the tf.data pipeline shuffles; Keras cannot shuffle a dataset
        verbose=2 if not sys.stdout.isatty() else 1,
    )
    epochs_run, training_seconds = training_totals(started, callbacks)  # a resumed run's earlier processes included
    model = setup.local_model(model)  # evaluate and export on one device
    metrics = {
        "training_seconds": round(training_seconds, 1),
        "epochs_run": epochs_run,
        "best_val_loss": round(float(min(history.history["val_loss"])), 4),
        "valid_split": valid_split,
    }
    examples = {}
    for split in ("valid", "test"):
        if pairs.get(split):
            metrics[split], outputs = evaluate(model, tokenizer, pairs[split], config)
            report = metrics[split]
            print(f"{split}: BLEU greedy {report['greedy']['bleu']:.2f} / beam {report['beam']['bleu']:.2f}, "
                  f"chrF beam {report['beam']['chrf']:.2f}")
            examples[split] = [
                {"source": pair.source, "reference": pair.target, "greedy": greedy, "beam": beam}
                for pair, greedy, beam in list(zip(pairs[split], outputs["greedy"], outputs["beam"]))[:5]
            ]

    settings = DecodingSettings(
        beam_width=config.beam_width, length_penalty=config.length_penalty,
        max_length_ratio=config.max_length_ratio, max_length_offset=config.max_length_offset,
        max_source_length=config.max_length,
    )
    parity = None
    if config.parity_sentences:
        parity_pairs = pairs.get("test") or pairs.get("valid") or pairs["train"]
        if config.parity_sentences > 0:
            parity_pairs = parity_pairs[: config.parity_sentences]
        sources = [pair.source for pair in parity_pairs]
        parity = lambda staged: greedy_parity(model, staged, tokenizer, sources, config)  # noqa: E731

    bundle = write_translation_bundle(
        output_dir, model, tokenizer, graph_tokenizer, settings, int8=config.int8, targets=config.targets,
        metadata={
            "languages": {"source": config.src, "target": config.tgt},
            "metrics": metrics, "config": dataclasses.asdict(config), "examples": examples,
        },
        parity=parity,
    )
    print_parity(bundle)
    remove_work_dir(work_dir)  # only after the bundle is complete: a failed run keeps it for the rerun
    print(f"bundle written to {bundle}")
    return bundle


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    config = parse_config(Config, argv, prog="nlpkit train translation", description=__doc__.splitlines()[0])
    train(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
