"""Named-entity recognition with a BiLSTM-CRF over word, character and casing features.

Run it on the embedded sample (the default), on a registered data set, or on your own
CoNLL-format files (one token per line, blank lines between sentences):

    python -m recipes.ner_bilstm_crf
    NLPKIT_DATA=../shared/data python -m recipes.ner_bilstm_crf --dataset conll2003 \\
        --pretrain-datasets conll2003 --epochs 30
    python -m recipes.ner_bilstm_crf --train-file train.conll --valid-file dev.conll \\
        --token-column 0 --tag-column 3

The bundle (model.keras, saved_model/, model.tflite, model.int8.tflite, assets/,
nlpkit.json) lands in ``--output-dir``; ``nlpkit predict`` and
``nlpkit.lite.SequenceTaggerPredictor`` read it.
"""

import dataclasses
import os
import statistics
import sys
import time

from nlpkit.config import parse_config
from nlpkit.data import read_conll
from nlpkit.data import load as load_dataset
from nlpkit.samples import sample_path


@dataclasses.dataclass
class Config:
    """Every field is a command-line flag (``--learning-rate 0.001``)."""

    # Data: a registered data set name, or CoNLL-format files (default: the embedded sample).
    dataset: str = dataclasses.field(default="", metadata={"help": "registered data set, e.g. conll2003"})
    data_dir: str = dataclasses.field(default="", metadata={"help": "data directory (else NLPKIT_DATA)"})
    train_file: str = ""
    valid_file: str = ""
    test_file: str = ""
    evaluate_test: bool = dataclasses.field(
        default=True,
        metadata={"help": "read and score the test split; --no-evaluate-test for development runs, "
                  "whose choices must not see it (parity then runs on valid)"},
    )
    token_column: int = dataclasses.field(default=0, metadata={"help": "column holding the tokens"})
    tag_column: int = dataclasses.field(default=-1, metadata={"help": "column holding the tags (-1: last)"})
    docstart: str = dataclasses.field(
        default="-DOCSTART-", metadata={"help": "document separator lines to skip; empty keeps them as tokens"}
    )
    column_separator: str = dataclasses.field(default="", metadata={"help": "empty: any whitespace"})
    data_scheme: str = dataclasses.field(
        default="auto", metadata={"help": "tag scheme of the files: auto, BIO, IOB1 or BIOES; reports use it"}
    )
    max_train_sentences: int = dataclasses.field(
        default=0, metadata={"help": "use only the first N training sentences (0: all); for quick runs"}
    )
    passage_tokens: int = dataclasses.field(
        default=0, metadata={"help": "train and tag passages: consecutive sentences of a document joined up to "
                                     "N tokens, so each sentence is read with its neighbours (0: sentence by sentence)"}
    )
    # Tokens.
    lowercase: bool = dataclasses.field(default=True, metadata={"help": "lowercase words (casing features keep the case)"})
    zero_digits: bool = dataclasses.field(default=True, metadata={"help": "map digits 1-9 to 0 in words"})
    min_frequency: int = 1
    max_vocabulary: int = 100000
    max_word_length: int = dataclasses.field(default=20, metadata={"help": "characters kept per token"})
    # Word vectors: read from a GloVe/word2vec text file, or learned (PPMI + SVD) from the
    # unlabelled text of registered data sets. Their words join the vocabulary.
    embeddings_file: str = dataclasses.field(default="", metadata={"help": "GloVe/word2vec text file"})
    pretrain_datasets: str = dataclasses.field(
        default="",
        metadata={"help": "comma-separated data sets whose text pretrains word vectors (train split, "
                  "or name:split+split), e.g. conll2003,imdb:train+test"},
    )
    pretrain_min_frequency: int = 2
    pretrain_window: int = 5
    freeze_embeddings: bool = False
    # Model.
    tag_scheme: str = dataclasses.field(default="BIOES", metadata={"help": "scheme the model is trained in"})
    head: str = dataclasses.field(default="crf", metadata={"help": "crf or softmax"})
    cell: str = dataclasses.field(default="lstm", metadata={"help": "lstm, gru, simple_rnn, mingru, minlstm or mamba"})
    word_embedding_dim: int = 100
    char_embedding_dim: int = 30
    char_filters: int = dataclasses.field(default=50, metadata={"help": "0 turns character features off"})
    char_kernel_size: int = 3
    casing_dim: int = dataclasses.field(default=8, metadata={"help": "0 turns casing features off"})
    units: int = dataclasses.field(default=100, metadata={"help": "recurrent units per direction"})
    num_layers: int = 1
    dropout: float = 0.5
    recurrent_dropout: float = 0.0
    char_dropout: float = 0.0
    word_dropout: float = dataclasses.field(default=0.05, metadata={"help": "probability of replacing a word by <unk>"})
    singleton_dropout: float = dataclasses.field(
        default=0.0, metadata={"help": "probability of replacing a word seen once in training by <unk>, instead of "
                                       "--word-dropout (Lample et al. 2016 use 0.5)"}
    )
    ensemble_size: int = dataclasses.field(
        default=1, metadata={"help": "encoders (each with its own CRF) trained side by side over one word embedding; "
                                     "the tagger decodes their mean scores"}
    )
    # Training.
    epochs: int = 30
    batch_size: int = 32
    optimizer: str = dataclasses.field(default="nadam", metadata={"help": "nadam, adam or sgd"})
    learning_rate: float = 2e-3
    clipnorm: float = dataclasses.field(default=1.0, metadata={"help": "global gradient-norm clip (0: off)"})
    ema_momentum: float = dataclasses.field(
        default=0.0, metadata={"help": "keep an exponential moving average of the weights with this momentum "
                                       "(e.g. 0.99); validation, model selection and export use it (0: off)"}
    )
    patience: int = dataclasses.field(default=4, metadata={"help": "epochs without a better valid span F1"})
    lr_decay_patience: int = dataclasses.field(
        default=2, metadata={"help": "multiply the learning rate by --lr-decay-factor after N epochs without a better valid span F1 (0: never)"}
    )
    lr_decay_factor: float = 0.5
    max_minutes: float = dataclasses.field(
        default=0.0, metadata={"help": "stop training before an epoch would end after this many minutes (0: no limit)"}
    )
    seed: int = 1234
    # Devices (nlpkit.distribute): --batch-size is the global batch, split across replicas.
    strategy: str = dataclasses.field(default="default", metadata={"help": "default, mirrored, multi_worker or tpu"})
    mixed_precision: bool = dataclasses.field(default=False, metadata={"help": "float16 (GPU) / bfloat16 (CPU) compute"})
    deterministic: bool = dataclasses.field(default=False, metadata={"help": "deterministic kernels (GPU: slower)"})
    backup_steps: int = dataclasses.field(default=0, metadata={"help": "also back up every N steps (0: per epoch)"})
    # Output.
    output_dir: str = "saved_models/ner"
    int8: bool = dataclasses.field(default=True, metadata={"help": "also write model.int8.tflite"})
    targets: str = dataclasses.field(
        default="litert",
        metadata={"help": "runtimes to export for, comma-separated: litert (always), web (LiteRT.js)"},
    )
    parity_sentences: int = dataclasses.field(default=500, metadata={"help": "sentences checked for export parity"})


# -------------------------------------------------------------------------------------------------
# Data
# -------------------------------------------------------------------------------------------------


def load_splits(config):
    """Returns ``({"train": [...], "valid": [...], "test": [...]}, data_scheme)``.

    Sentences are `nlpkit.data.TaggedSentence`. Tags are checked to be ``O`` or
    ``<B|I|E|S>-<type>`` while reading (a malformed line fails with its file and line);
    with ``data_scheme="auto"`` the scheme is then read off the training tags. With
    ``evaluate_test=False`` the test file is not read at all and ``"test"`` is empty.
    """
    from nlpkit.text.tag_schemes import TagSchemeError, detect_scheme, normalize_scheme, validate_tags

    check_scheme = "BIOES" if config.data_scheme.lower() == "auto" else normalize_scheme(config.data_scheme)
    options = {
        "token_column": config.token_column,
        "tag_column": config.tag_column,
        "docstart": config.docstart or None,
        "separator": config.column_separator or None,
        "tag_scheme": check_scheme,
    }
    if config.dataset:
        kwargs = {"data_dir": config.data_dir or None, "tag_scheme": check_scheme}
        read = ("train", "valid", "test") if config.evaluate_test else ("train", "valid")
        splits = {split: load_dataset(config.dataset, split, **kwargs) for split in read}
        splits.setdefault("test", [])
    else:
        files = {
            "train": config.train_file or sample_path("ner_train.txt"),
            "valid": config.valid_file or sample_path("ner_valid.txt"),
            "test": config.test_file or (None if config.train_file else sample_path("ner_test.txt")),
        }
        if not config.evaluate_test:
            files["test"] = None
        splits = {split: read_conll(path, **options) if path else [] for split, path in files.items()}
    if config.max_train_sentences > 0:
        splits["train"] = splits["train"][: config.max_train_sentences]
    if config.data_scheme.lower() == "auto":
        scheme = detect_scheme(sentence.tags for sentence in splits["train"])
        for split, rows in splits.items():
            for index, sentence in enumerate(rows):
                try:
                    validate_tags(sentence.tags, scheme)
                except TagSchemeError as error:
                    raise TagSchemeError(
                        f"{split} sentence {index} ({' '.join(sentence.tokens[:8])} ...): {error}; the "
                        f"training data reads as {scheme}, so pass --data-scheme if the files differ"
                    ) from None
    else:
        scheme = check_scheme
    return splits, scheme


def entity_types(*row_lists):
    """Sorted entity types of the tags of the given sentence lists."""
    from nlpkit.text.tag_schemes import parse_tag

    return sorted({parse_tag(tag)[1] for rows in row_lists for row in rows for tag in row.tags if tag != "O"})


def word_normalizer(config):
    """The normalizer of word forms: lowercase and digits -> 0 as configured, tokens never split."""
    from nlpkit.text import TextNormalizer, build_table

    table = build_table(lowercase=config.lowercase, split_punctuation=False, normalize_whitespace=True)
    if config.zero_digits:
        # Dates, scores and amounts share their shapes ("0000-00-00"), not their values.
        table.update({digit: "0" for digit in "123456789"})
    return TextNormalizer(lowercase=config.lowercase, split_punctuation=False, table=table)


def build_tokenizer(config, sentences, extra_words=()):
    """The tagging tokenizer twin, with word and character vocabularies from ``sentences``.

    ``extra_words`` (normalized words that have pretrained vectors) are appended after the
    words of the training data, up to ``max_vocabulary`` words in all.
    """
    from nlpkit.text import PythonTaggingTokenizer, Vocabulary

    normalizer = word_normalizer(config)
    vocabulary = Vocabulary.build(
        ([normalizer.normalize(token) for token in sentence.tokens] for sentence in sentences),
        min_frequency=config.min_frequency,
        max_size=config.max_vocabulary,
    )
    if extra_words:
        vocabulary = vocabulary.extended(extra_words, max_size=config.max_vocabulary)
    characters = Vocabulary.build([list(token) for sentence in sentences for token in sentence.tokens])
    return PythonTaggingTokenizer(vocabulary, normalizer, characters, max_word_length=config.max_word_length)


def first_singleton_id(vocabulary, sentences, normalizer):
    """The first word id of the words seen once in ``sentences`` (0 if there are none).

    ``vocabulary`` is ordered by training frequency (`build_tokenizer`), so every id from this
    one to the end of the training words is a singleton; words appended after them (with
    pretrained vectors only) never occur in training.
    """
    import collections

    counts = collections.Counter(normalizer.normalize(token) for sentence in sentences for token in sentence.tokens)
    ids = [vocabulary.lookup(word) for word, count in counts.items() if count == 1]
    return min((i for i in ids if i != vocabulary.unk_id), default=0)


def word_vectors(config):
    """``(words, vectors)`` from ``--embeddings-file`` or learned from ``--pretrain-datasets``.

    Words come back normalized like the tagger's word forms. Returns ``([], None)`` when
    neither option is set.
    """
    from nlpkit.text.embeddings import read_word_vectors

    normalizer = word_normalizer(config)
    if config.embeddings_file:
        words, vectors = read_word_vectors(config.embeddings_file)
        rows = {}
        for row, word in enumerate(words):
            rows.setdefault(normalizer.normalize(word), row)  # the first vector of a form wins
        return list(rows), vectors[list(rows.values())]
    if config.pretrain_datasets:
        return learned_word_vectors(config, normalizer)
    return [], None


def pretraining_token_lists(dataset_names, normalizer, data_dir=None):
    """Normalized token lists of registered data sets' text (labels unread).

    ``dataset_names`` reads as `nlpkit.data.parse_dataset_splits`: ``"conll2003,imdb"`` takes
    the train splits, ``"imdb:train+test"`` both IMDB splits.

    Tagged sentences keep their tokens; raw text (reviews, lines, books) is split at
    whitespace and punctuation, as CoNLL files split their tokens.
    """
    from nlpkit.data import LabelledText, TaggedSentence, parse_dataset_splits
    from nlpkit.text import TextNormalizer

    text_normalizer = TextNormalizer(lowercase=normalizer.lowercase, split_punctuation=True)

    def words(text):
        return [normalizer.normalize(token) for token in text_normalizer.tokenize(text)]

    token_lists = []
    for name, split in parse_dataset_splits(dataset_names):
        data = load_dataset(name, split, data_dir=data_dir)
        if isinstance(data, str):
            data = data.splitlines()
        for item in data:
            if isinstance(item, TaggedSentence):
                token_lists.append([normalizer.normalize(token) for token in item.tokens])
            elif isinstance(item, LabelledText):
                token_lists.append(words(item.text.replace("<br />", " ")))
            elif isinstance(item, str):
                token_lists.append(words(item))
            else:
                raise ValueError(f"data set {name!r} holds {type(item).__name__} items; it has no text to pretrain on")
    return token_lists


def learned_word_vectors(config, normalizer):
    """PPMI + SVD vectors for the frequent words of ``--pretrain-datasets``' train text."""
    from nlpkit.text.embeddings import learn_frequent_word_vectors

    token_lists = pretraining_token_lists(config.pretrain_datasets, normalizer, config.data_dir or None)
    print(f"learning {config.word_embedding_dim}-d word vectors from {sum(map(len, token_lists))} tokens "
          f"of {config.pretrain_datasets}")
    return learn_frequent_word_vectors(
        token_lists, dim=config.word_embedding_dim, window=config.pretrain_window,
        min_frequency=config.pretrain_min_frequency, max_words=config.max_vocabulary,
    )


def encode(model, tokenizer, sentences):
    """``(word_ids, char_ids, tag_ids)`` lists for `nlpkit.data.tagging_dataset`."""
    word_ids, char_ids, tag_ids = [], [], []
    for sentence in sentences:
        words, chars = tokenizer.encode_tokens(sentence.tokens)
        word_ids.append(words)
        char_ids.append(chars)
        tag_ids.append(model.encode_tags(sentence.tags))
    return word_ids, char_ids, tag_ids


# -------------------------------------------------------------------------------------------------
# Model
# -------------------------------------------------------------------------------------------------


def make_optimizer(config):
    import keras

    options = {"learning_rate": config.learning_rate}
    if config.clipnorm > 0:
        options["global_clipnorm"] = config.clipnorm
    if not 0.0 <= config.ema_momentum < 1.0:
        raise ValueError(f"--ema-momentum must be in [0, 1), got {config.ema_momentum}")
    if config.ema_momentum > 0:
        options.update(use_ema=True, ema_momentum=config.ema_momentum)
    optimizers = {"nadam": keras.optimizers.Nadam, "adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}
    if config.optimizer not in optimizers:
        raise ValueError(f"--optimizer must be one of {sorted(optimizers)}, got {config.optimizer!r}")
    return optimizers[config.optimizer](**options)


def build_model(config, tokenizer, tags, data_scheme, rare_word_start=0):
    """The SequenceTagger this recipe trains, built and compiled for ``model.fit``.

    Args:
        config: `Config`.
        tokenizer: the `nlpkit.text.PythonTaggingTokenizer` (vocabulary sizes, character classes).
        tags: list of str, the model's tag vocabulary in ``config.tag_scheme``.
        data_scheme: str, the scheme of the data (the model's output scheme).
        rare_word_start: int, the first word id that ``--singleton-dropout`` applies to
            (`first_singleton_id`); 0: none.
    """
    from nlpkit.layers import character_classes
    from nlpkit.metrics import SpanF1
    from nlpkit.models import SequenceTagger, pad_tagging_batch

    characters = tokenizer.char_vocabulary.tokens
    model = SequenceTagger(
        vocabulary_size=len(tokenizer.vocabulary),
        tags=tags,
        scheme=config.tag_scheme,
        output_scheme=data_scheme,
        char_vocabulary_size=len(characters) if config.char_filters else 0,
        char_classes=character_classes(characters),
        word_embedding_dim=config.word_embedding_dim,
        char_embedding_dim=config.char_embedding_dim,
        char_filters=config.char_filters or 1,
        char_kernel_size=config.char_kernel_size,
        casing_dim=config.casing_dim,
        cell=config.cell,
        units=config.units,
        num_layers=config.num_layers,
        dropout=config.dropout,
        recurrent_dropout=config.recurrent_dropout,
        char_dropout=config.char_dropout,
        word_dropout=config.word_dropout,
        unknown_id=tokenizer.vocabulary.unk_id,
        rare_word_start=rare_word_start if config.singleton_dropout else 0,
        rare_word_dropout=config.singleton_dropout,
        head=config.head,
        trainable_embeddings=not config.freeze_embeddings,
        ensemble_size=config.ensemble_size,
    )
    model(pad_tagging_batch([[1]], [[[1]]]))  # create the weights (BackupAndRestore needs them)
    model.compile(optimizer=make_optimizer(config), metrics=[SpanF1(model.tags, model.scheme, name="span_f1")])
    return model


def passages(sentences, passage_tokens):
    """The sequences the model reads: ``sentences`` joined into passages of up to ``passage_tokens``
    tokens (see `nlpkit.data.passage_groups`), or the sentences themselves when it is 0."""
    from nlpkit.data import join_passages, passage_groups

    return join_passages(sentences, passage_groups(sentences, passage_tokens))


def predict_sentence_tags(model, tokenizer, sentences, passage_tokens, batch_size=64):
    """Predicted tags per sentence; with ``passage_tokens`` the model reads passages, whose tags
    are split back into their sentences."""
    from nlpkit.data import tag_by_passages

    return tag_by_passages(
        sentences, passage_tokens, lambda token_lists: model.predict_tags(token_lists, tokenizer, batch_size)
    )


def evaluate(model, tokenizer, sentences, scheme, passage_tokens=0, batch_size=64):
    """conlleval span F1 report (overall and per type) of ``model`` on ``sentences``, each read in
    its passage when ``passage_tokens`` is set."""
    from nlpkit.metrics.entity_spans import span_f1

    predicted = predict_sentence_tags(model, tokenizer, sentences, passage_tokens, batch_size)
    return span_f1([sentence.tags for sentence in sentences], predicted, scheme=scheme)


def parity_sentences(rows, limit, long_length=500):
    """Token lists for the export parity check: ``limit`` sequences, an empty one, a long one."""
    token_lists = [list(row.tokens) for row in rows[:limit]]
    long = [token for row in rows for token in row.tokens][:long_length]
    return token_lists + [[], long]


# -------------------------------------------------------------------------------------------------
# Train -> evaluate -> export
# -------------------------------------------------------------------------------------------------


def epoch_timer():
    """A Keras callback whose ``seconds`` lists the wall time of every epoch (validation included)."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = []
            self._began = None

        def on_epoch_begin(self, epoch, logs=None):
            self._began = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._began)

    return EpochTimer()


def train(config):
    """Trains, evaluates and exports; returns the bundle path."""
    import keras

    from nlpkit.data import tagging_dataset
    from nlpkit.export import print_parity, tagger_parity, write_bundle
    from nlpkit.metrics import format_span_report
    from nlpkit.text import TaggingTokenizer
    from nlpkit.text.embeddings import embedding_matrix
    from nlpkit.text.tag_schemes import scheme_tags
    from nlpkit.distribute import setup_training
    from nlpkit.training import (ResumableBackup, remove_work_dir, standard_callbacks, time_budget_callback,
                                 training_totals)

    setup = setup_training(strategy=config.strategy, mixed_precision=config.mixed_precision, seed=config.seed,
                           deterministic=config.deterministic, batch_size=config.batch_size)
    print(setup.describe())
    splits, data_scheme = load_splits(config)
    if not splits["train"]:
        raise ValueError("the training split is empty")
    started = time.perf_counter()
    pretrained_words, pretrained_vectors = word_vectors(config)
    pretraining_seconds = time.perf_counter() - started
    tokenizer = build_tokenizer(config, splits["train"], pretrained_words)
    tags = scheme_tags(entity_types(splits["train"], splits["valid"]), config.tag_scheme)
    print(f"train {len(splits['train'])}  valid {len(splits['valid'])}  test {len(splits['test'])} sentences  "
          f"words {len(tokenizer.vocabulary)}  characters {len(tokenizer.char_vocabulary)}  "
          f"data scheme {data_scheme}  model tags {tags}")

    rare_word_start = first_singleton_id(tokenizer.vocabulary, splits["train"], tokenizer.normalizer)
    model = setup.build(build_model, config, tokenizer, tags, data_scheme, rare_word_start)
    if pretrained_vectors is not None:
        matrix, coverage = embedding_matrix(tokenizer.vocabulary, pretrained_words, pretrained_vectors, seed=config.seed)
        model.set_embeddings(matrix)
        print(f"pretrained vectors cover {coverage:.1%} of the vocabulary")

    def dataset(rows, shuffle):
        return setup.dataset(tagging_dataset(*encode(model, tokenizer, rows), batch_size=config.batch_size,
                                             shuffle=shuffle, seed=config.seed))

    valid_rows = splits["valid"] or splits["train"]
    output_dir = setup.output_dir(config.output_dir)
    work_dir = output_dir.with_name(output_dir.name + ".work")
    callbacks = standard_callbacks(work_dir, monitor="val_span_f1", mode="max", patience=config.patience,
                                   backup_steps=config.backup_steps)
    if config.ema_momentum > 0:
        # Validation, early stopping and the best-model checkpoint see the averaged weights
        # (swapped in at each epoch's end, out at the next epoch's start); it goes after the
        # crash backup, which thus saves the raw weights and the average as they are in training.
        backup = next(index for index, callback in enumerate(callbacks) if isinstance(callback, ResumableBackup))
        callbacks.insert(backup + 1, keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    timer = epoch_timer()
    callbacks.append(timer)
    if config.max_minutes > 0:
        callbacks.append(time_budget_callback(config.max_minutes))
    if config.lr_decay_patience > 0:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_span_f1", mode="max", factor=config.lr_decay_factor,
                patience=config.lr_decay_patience, min_delta=1e-4, verbose=1,
            )
        )
    history = model.fit(
        dataset(passages(splits["train"], config.passage_tokens), shuffle=True),
        validation_data=dataset(passages(valid_rows, config.passage_tokens), shuffle=False),
        epochs=config.epochs,
        shuffle=False,  # the tf.data pipeline shuffles; Keras cannot shuffle a dataset
        callbacks=callbacks,
        verbose=2 if not sys.stdout.isatty() else 1,
    )
    epochs_run, training_seconds = training_totals(started, callbacks)  # a resumed run's earlier processes included
    model = setup.local_model(model)  # evaluate and export on one device
    metrics = {
        "training_seconds": round(training_seconds, 1),
        "pretraining_seconds": round(pretraining_seconds, 1),
        "epoch_seconds": [round(seconds, 1) for seconds in timer.seconds],
        # The median: the first epoch also traces the graphs, which costs a few seconds.
        "seconds_per_epoch": round(statistics.median(timer.seconds), 1) if timer.seconds else 0.0,
        "epochs_run": epochs_run,
        "best_valid_span_f1_in_fit": round(float(max(history.history["val_span_f1"])), 4),
    }
    for split in ("valid", "test"):
        if splits[split]:
            report = evaluate(model, tokenizer, splits[split], data_scheme, config.passage_tokens)
            metrics[split] = report
            print(f"\n== {split} ({data_scheme}, conlleval) ==\n{format_span_report(report)}")

    parity_rows = passages(splits["test"] or valid_rows, config.passage_tokens)
    bundle = write_bundle(
        output_dir,
        task="tagging",
        model=model,
        tokenizer=tokenizer,
        graph_tokenizer=TaggingTokenizer.from_python(tokenizer),
        label_names=model.tags,
        int8=config.int8, targets=config.targets,
        metadata={
            "metrics": metrics,
            "config": dataclasses.asdict(config),
            "tag_scheme": model.scheme,
            "output_scheme": model.output_scheme,
        },
        parity=lambda staged: tagger_parity(staged, parity_sentences(parity_rows, config.parity_sentences)),
    )
    print_parity(bundle)
    remove_work_dir(work_dir)  # only after the bundle is complete: a failed run keeps it for the rerun
    print(f"bundle written to {bundle}")
    return bundle


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the log
    config = parse_config(Config, argv, prog="nlpkit train ner", description=__doc__.splitlines()[0])
    train(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
