"""Tests for recipes/sentiment_gru.py.

The full run (``main`` with tiny flags) is the session fixture in conftest.py; these tests check
what it wrote and exercise the recipe's pieces on the embedded sample.
"""

import dataclasses
import json

import numpy as np
import pytest

from nlpkit.config import config_parser, parse_config
from nlpkit.data import LabelledText, read_classification
from nlpkit.samples import sample_path
from recipes import sentiment_gru
from recipes.sentiment_gru import Config, build_model, build_tokenizer, evaluate, label_list, load_splits

REPORT_KEYS = {"accuracy", "macro_f1", "macro_precision", "macro_recall", "per_class", "confusion_matrix",
               "num_examples", "label_names"}


# ---------------------------------------------------------------------------------------------
# The full run
# ---------------------------------------------------------------------------------------------


def test_main_returns_zero_and_writes_a_full_bundle(trained_sentiment):
    assert trained_sentiment.exit_code == 0
    bundle = trained_sentiment.path
    for name in ("model.keras", "saved_model", "model.tflite", "model.int8.tflite", "assets", "nlpkit.json"):
        assert (bundle / name).exists(), name
    manifest = json.loads((bundle / "nlpkit.json").read_text())
    assert manifest["task"] == "classification"
    assert manifest["labels"] == ["negative", "positive"] and manifest["raw_labels"] == ["0", "1"]
    assert manifest["config"] == dataclasses.asdict(parse_config(Config, trained_sentiment.argv))
    assert manifest["config"]["units"] == 16 and manifest["config"]["epochs"] == 3
    metrics = manifest["metrics"]
    assert 1 <= metrics["epochs_run"] <= 3 and metrics["training_seconds"] > 0
    assert REPORT_KEYS <= set(metrics["valid"]) and REPORT_KEYS <= set(metrics["test"])
    assert metrics["test"]["num_examples"] == 60
    assert manifest["parity"]["num_texts"] == 60
    assert manifest["parity"]["max_abs_diff"]["tflite"] <= 1e-4


def test_trained_model_beats_chance_on_its_training_data(sentiment_bundle):
    # Three epochs on 320 sentences must at least fit the training set; this catches a
    # pipeline that feeds labels or ids out of order.
    from nlpkit.lite import TextClassifierPredictor

    rows = read_classification(sample_path("sentiment_train.tsv"))
    predictor = TextClassifierPredictor(sentiment_bundle)
    names = {"0": "negative", "1": "positive"}
    correct = [p.label == names[row.label] for p, row in zip(predictor.predict([r.text for r in rows]), rows)]
    print(f"training-set accuracy {np.mean(correct):.3f}")
    assert np.mean(correct) >= 0.75


def test_a_finished_run_removes_its_work_directory(trained_sentiment):
    assert trained_sentiment.path.is_dir()
    assert not trained_sentiment.path.with_name(trained_sentiment.path.name + ".work").exists()


def test_a_failed_export_keeps_the_work_directory(tmp_path, monkeypatch):
    import nlpkit.export

    def failing_export(*args, **kwargs):
        raise RuntimeError("export failed")

    monkeypatch.setattr(nlpkit.export, "write_bundle", failing_export)
    output = tmp_path / "bundle"
    with pytest.raises(RuntimeError, match="export failed"):
        sentiment_gru.main(["--epochs", "1", "--units", "8", "--embedding-dim", "8", "--batch-size", "16",
                            "--no-int8", "--output-dir", str(output)])
    assert not output.exists()
    assert (tmp_path / "bundle.work" / "best.keras").is_file()  # kept for the rerun


# ---------------------------------------------------------------------------------------------
# Config and data
# ---------------------------------------------------------------------------------------------


def test_config_defaults_train_on_the_embedded_sample():
    config = Config()
    assert config.dataset == "" and config.train_file == ""
    splits = load_splits(config)
    for split in ("train", "valid", "test"):
        assert splits[split] == read_classification(sample_path(f"sentiment_{split}.tsv")), split
    assert [len(splits[split]) for split in ("train", "valid", "test")] == [320, 60, 60]


def test_every_config_field_is_a_flag():
    options = {option for action in config_parser(Config)._actions for option in action.option_strings}
    for field in dataclasses.fields(Config):
        flag = "--" + field.name.replace("_", "-")
        assert flag in options, flag
        if field.type in (bool, "bool"):
            assert "--no-" + flag[2:] in options, flag


def test_config_file_and_flags(tmp_path):
    path = tmp_path / "sentiment.json"
    path.write_text(json.dumps({"cell": "lstm", "units": 8, "bidirectional": False}))
    config = parse_config(Config, ["--config", str(path), "--units", "4"])
    assert (config.cell, config.units, config.bidirectional) == ("lstm", 4, False)


def test_own_train_file_without_test_file(tmp_path):
    train = tmp_path / "train.tsv"
    train.write_text("sentence\tlabel\ngood\tpos\nbad\tneg\n")
    splits = load_splits(Config(train_file=str(train)))
    assert splits["train"] == [LabelledText("good", "pos"), LabelledText("bad", "neg")]
    assert splits["test"] == []
    assert len(splits["valid"]) == 60  # the sample's validation split is still the default


@pytest.mark.parametrize(
    "label_names, expected",
    [
        ("0=negative,1=positive", ["negative", "positive"]),
        ("", ["0", "1"]),
        ("1=good", ["0", "good"]),
        ("0=not = good,1=good", ["not = good", "good"]),
    ],
)
def test_label_list_maps_raw_labels_to_names(label_names, expected):
    rows = [LabelledText("a", "1"), LabelledText("b", "0"), LabelledText("c", "1")]
    raw, names = label_list(rows, label_names)
    assert raw == ["0", "1"]
    assert names == expected


# ---------------------------------------------------------------------------------------------
# Tokenizer, model, evaluation
# ---------------------------------------------------------------------------------------------


def test_build_tokenizer_twins_agree_and_take_extra_words():
    config = Config(max_vocabulary=30, max_length=8)
    texts = ["A fine film .", "A dull film , a dull cast ."]
    twin, graph = build_tokenizer(config, texts, extra_words=["superb", "fine", "dreadful"])
    tokens = twin.vocabulary.tokens
    assert "superb" in tokens and "dreadful" in tokens and tokens.count("fine") == 1
    probe = ["A superb film , a dreadful cast .", "", "one two three four five six seven eight nine"]
    graph_ids = graph(probe).to_list()
    assert graph_ids == [twin.encode(text) for text in probe]
    assert len(graph_ids[2]) == 8


def test_build_tokenizer_respects_max_vocabulary():
    twin, _ = build_tokenizer(Config(max_vocabulary=6), ["a b c d e f g h"], extra_words=["x", "y"])
    assert len(twin.vocabulary) == 6


def test_build_model_follows_the_config():
    config = Config(cell="lstm", units=4, embedding_dim=4, num_layers=2, bidirectional=False,
                    pooling="last", freeze_embeddings=True)
    model = build_model(config, vocabulary_size=20, num_classes=3)
    assert (model.cell, model.units, model.num_layers, model.bidirectional, model.pooling) == (
        "lstm", 4, 2, False, "last")
    assert model.embedding.trainable is False
    assert model.optimizer is not None
    scores = model.predict_on_batch(np.array([[3, 4, 5]], np.int32))
    assert scores.shape == (1, 3)


def test_evaluate_reports_on_rows(sentiment_bundle, sample_test_rows):
    from nlpkit.models import load_keras_model
    from nlpkit.text import load_tokenizer

    model = load_keras_model(sentiment_bundle / "model.keras")
    tokenizer = load_tokenizer(sentiment_bundle / "assets")
    rows = sample_test_rows + [LabelledText("", "0")]
    report = evaluate(model, tokenizer, rows, ["0", "1"], ["negative", "positive"], batch_size=16)
    assert REPORT_KEYS <= set(report)
    assert report["num_examples"] == 61
    assert report["label_names"] == ["negative", "positive"]
    assert np.sum(report["confusion_matrix"]) == 61
    assert set(report["per_class"]) == {"negative", "positive"}

    with pytest.raises(ValueError, match=r"\['neutral'\]"):
        evaluate(model, tokenizer, [LabelledText("meh", "neutral")], ["0", "1"], ["negative", "positive"])


def test_recipe_module_shape():
    # DESIGN.md: every recipe exposes Config, build_model, train and main.
    for name in ("Config", "build_model", "train", "main"):
        assert callable(getattr(sentiment_gru, name)), name


def test_split_sentences_keeps_sized_sentences():
    text = "Great. I loved every minute of it! \n The acting was superb, the plot fine? yes it was."
    assert sentiment_gru.split_sentences(text) == [
        "I loved every minute of it!",
        "The acting was superb, the plot fine?",
    ]
    assert sentiment_gru.split_sentences("") == []


def test_pseudo_label_keeps_confident_texts_balanced(sentiment_bundle):
    from nlpkit.models import load_keras_model
    from nlpkit.text import load_graph_tokenizer

    model = load_keras_model(sentiment_bundle / "model.keras")
    tokenizer = load_graph_tokenizer(sentiment_bundle / "assets")
    texts = [row.text for row in read_classification(sample_path("sentiment_train.tsv"))]
    chosen, labels = sentiment_gru.pseudo_label(model, tokenizer, texts, threshold=0.6, max_per_class=1000, seed=0)
    assert set(chosen) <= set(texts)
    assert labels.count(0) == labels.count(1)
    scores = model.predict_on_batch(_ids_batch(tokenizer, chosen)) if chosen else np.zeros((0, 2))
    assert np.all(scores.max(axis=1) > 0.6 - 1e-6)
    assert np.array_equal(scores.argmax(axis=1), labels)
    capped, capped_labels = sentiment_gru.pseudo_label(model, tokenizer, texts, threshold=0.6, max_per_class=3, seed=0)
    assert len(capped) == len(capped_labels) <= 6


def _ids_batch(tokenizer, texts):
    return tokenizer(texts).to_tensor(default_value=0).numpy()


@pytest.fixture
def unlabelled_reviews(tmp_path):
    """A registered data set of review text written by the test (its labels must go unread)."""
    from nlpkit.data import DatasetSpec, SplitSpec, register, unregister

    directory = tmp_path / "data" / "tiny_reviews"
    directory.mkdir(parents=True)
    rows = read_classification(sample_path("sentiment_train.tsv"))
    lines = ["text\tlabel"] + [f"{row.text} <br /><br />{row.text}\tNOT-A-LABEL" for row in rows]
    (directory / "train.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    register(DatasetSpec(
        name="tiny_reviews", task="classification",
        splits={"train": SplitSpec("tiny_reviews/train.tsv")},
        reader=read_classification, reader_kwargs={"text_column": "text", "label_column": "label"},
    ))
    yield tmp_path / "data"
    unregister("tiny_reviews")


def test_unlabelled_texts_read_the_named_splits_without_markup(unlabelled_reviews):
    texts = sentiment_gru.unlabelled_texts("tiny_reviews", unlabelled_reviews)
    assert len(texts) == 320 and "<br" not in "".join(texts)
    assert sentiment_gru.unlabelled_texts("tiny_reviews:train", unlabelled_reviews) == texts
    with pytest.raises(ValueError, match="'tiny_reviews' has no 'test' split"):
        sentiment_gru.unlabelled_texts("tiny_reviews:train+test", unlabelled_reviews)


def test_pretrained_vectors_and_self_training_run_end_to_end(unlabelled_reviews, tmp_path):
    output = tmp_path / "bundle"
    exit_code = sentiment_gru.main([
        "--epochs", "2", "--units", "8", "--embedding-dim", "16", "--batch-size", "32", "--learning-rate", "0.01",
        "--data-dir", str(unlabelled_reviews), "--pretrain-datasets", "tiny_reviews", "--pretrain-min-frequency", "2",
        "--freeze-embeddings", "--self-train-datasets", "tiny_reviews", "--self-train-threshold", "0.5",
        "--self-train-epochs", "1", "--parity-texts", "20", "--output-dir", str(output),
    ])
    assert exit_code == 0
    manifest = json.loads((output / "nlpkit.json").read_text())
    report = manifest["metrics"]["self_training"]
    assert report["unlabelled_sentences"] > 0
    assert report["pseudo_labelled"] % 2 == 0
    assert report["kept"] in ("self-trained", "labelled-only")
    assert manifest["parity"]["max_abs_diff"]["tflite"] <= 1e-4


def test_quoting_field_reads_quoted_csv_and_is_validated(tmp_path):
    train = tmp_path / "train.csv"
    train.write_text('sentence,label\n"good, really",pos\nbad,neg\n', encoding="utf-8")
    with pytest.raises(ValueError, match="--quoting csv"):
        load_splits(Config(train_file=str(train)))
    splits = load_splits(Config(train_file=str(train), quoting="csv"))
    assert splits["train"] == [LabelledText("good, really", "pos"), LabelledText("bad", "neg")]
    assert len(splits["valid"]) == 60  # the sample's literal quotes are still read as text
    assert parse_config(Config, ["--quoting", "csv"]).quoting == "csv"
    with pytest.raises(ValueError, match="'excel'"):
        load_splits(Config(train_file=str(train), quoting="excel"))


def test_one_class_training_file_is_rejected_naming_file_and_label(tmp_path):
    train = tmp_path / "train.tsv"
    train.write_text("sentence\tlabel\ngood\t1\nfine\t1\n", encoding="utf-8")
    with pytest.raises(ValueError) as info:
        sentiment_gru.main(["--train-file", str(train), "--valid-file", str(train),
                            "--output-dir", str(tmp_path / "bundle"), "--epochs", "1"])
    message = str(info.value)
    assert str(train) in message and "one label ['1']" in message and "at least two" in message
    assert not (tmp_path / "bundle").exists()
