"""Tests for recipes/ner_bilstm_crf.py.

The full run (``main`` with tiny flags on the embedded sample) is the session fixture
``trained_ner`` in conftest.py; these tests check what it wrote, run the recipe once more on
files of another layout, and exercise its pieces.
"""

import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf

from nlpkit.config import config_parser, parse_config
from nlpkit.data import TaggedSentence, read_conll
from nlpkit.errors import DataFormatError
from nlpkit.export import audit_ops
from nlpkit.samples import sample_path
from recipes import ner_bilstm_crf
from recipes.ner_bilstm_crf import Config, build_tokenizer, entity_types, load_splits, word_normalizer

REPORT_KEYS = {"precision", "recall", "f1", "num_true", "num_predicted", "num_correct", "accuracy", "num_tokens",
               "per_type"}


# ---------------------------------------------------------------------------------------------
# The full run on the embedded sample
# ---------------------------------------------------------------------------------------------


def test_main_writes_a_full_bundle(trained_ner):
    assert trained_ner.exit_code == 0
    bundle = trained_ner.path
    for name in ("model.keras", "saved_model", "model.tflite", "model.int8.tflite", "assets", "nlpkit.json"):
        assert (bundle / name).exists(), name
    for name in ("tokenizer.json", "vocabulary.json", "char_vocabulary.json", "normalization.json"):
        assert (bundle / "assets" / name).is_file(), name
    manifest = json.loads((bundle / "nlpkit.json").read_text())
    assert manifest["task"] == "tagging"
    assert (manifest["tag_scheme"], manifest["output_scheme"]) == ("BIOES", "BIO")
    assert manifest["labels"][0] == "O" and "S-PER" in manifest["labels"] and len(manifest["labels"]) == 17
    assert manifest["tokenizer"]["type"] == "tagging"
    assert manifest["config"] == dataclasses.asdict(parse_config(Config, trained_ner.argv))
    assert set(manifest["signatures"]["saved_model"]) == {"serving_default", "tag_tokens"}
    assert set(manifest["signatures"]["tflite"]["tag"]["inputs"]) == {"word_ids", "char_ids"}


def test_metrics_are_conlleval_reports_and_the_model_learned(ner_bundle):
    metrics = json.loads((ner_bundle / "nlpkit.json").read_text())["metrics"]
    assert 1 <= metrics["epochs_run"] <= 12 and metrics["training_seconds"] > 0
    assert len(metrics["epoch_seconds"]) == metrics["epochs_run"] and metrics["seconds_per_epoch"] > 0
    for split in ("valid", "test"):
        assert REPORT_KEYS <= set(metrics[split])
        assert set(metrics[split]["per_type"]) == {"LOC", "MISC", "ORG", "PER"}
    assert metrics["test"]["num_true"] == 124 and metrics["test"]["num_tokens"] == 851
    print(f"sample test F1 {metrics['test']['f1']:.3f}")
    # Twelve epochs of a tiny model on 300 sentences; the sample test set holds names never
    # seen in training, so this is well below what the full-size model reaches.
    assert metrics["test"]["f1"] >= 0.6


def test_tflite_files_use_built_in_ops_only(ner_bundle):
    manifest = json.loads((ner_bundle / "nlpkit.json").read_text())
    for file_name in ("model.tflite", "model.int8.tflite"):
        audit = audit_ops(ner_bundle / file_name)
        assert audit.builtin_only and "WHILE" in audit.builtin, audit
        assert manifest["tflite_ops"][file_name] == list(audit.builtin)


def test_parity_covers_every_form_with_equal_tags(ner_bundle):
    parity = json.loads((ner_bundle / "nlpkit.json").read_text())["parity"]
    # 60 test sentences, an empty one and a 500-token one.
    assert parity["num_sentences"] == 62 and parity["num_tokens"] == 851 + 500
    for form in ("saved_model_tokens", "saved_model_text", "tflite"):
        assert parity["sentence_agreement"][form] == 1.0, form
    assert parity["token_agreement"]["tflite_int8"] >= 0.95
    assert parity["repeat_identical"] == {"tflite": True, "tflite_int8": True}


def test_saved_model_signatures(ner_bundle):
    loaded = tf.saved_model.load(str(ner_bundle / "saved_model"))
    texts = ["Maria Keller flew to Oslo .", "", "   ", "Oslo"]
    outputs = {key: value.numpy() for key, value in loaded.signatures["serving_default"](text=tf.constant(texts)).items()}
    assert outputs["lengths"].tolist() == [6, 0, 0, 1]
    assert outputs["tokens"][0].tolist() == [t.encode() for t in texts[0].split()]
    assert outputs["tags"].shape == outputs["tokens"].shape == (4, 6)
    assert all(tag == b"" for tag in outputs["tags"][1:, 1:].ravel())
    pre = loaded.signatures["tag_tokens"](tokens=tf.constant([["Maria", "Keller", "flew", "to", "Oslo", "."],
                                                              ["Oslo", "", "", "", "", ""]]))
    np.testing.assert_array_equal(pre["tags"].numpy()[0], outputs["tags"][0])
    assert pre["lengths"].numpy().tolist() == [6, 1]
    empty = loaded.signatures["serving_default"](text=tf.constant([], tf.string))
    assert empty["tags"].shape == (0, 0)


# ---------------------------------------------------------------------------------------------
# Other data layouts, and bad data
# ---------------------------------------------------------------------------------------------


def write_four_column_iob1(path, sentences):
    """CoNLL-2003's original layout: token POS chunk NER, IOB1 tags, -DOCSTART- lines."""
    from nlpkit.text.tag_schemes import convert_tags

    lines = ["-DOCSTART- -X- -X- O", ""]
    for sentence in sentences:
        for token, tag in zip(sentence.tokens, convert_tags(sentence.tags, "BIO", "IOB1")):
            lines.append(f"{token} NN I-NP {tag}")
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def test_four_column_iob1_files_with_a_softmax_head_ensemble(tmp_path):
    train = write_four_column_iob1(tmp_path / "train.txt", read_conll(sample_path("ner_train.txt"))[:120])
    valid = write_four_column_iob1(tmp_path / "valid.txt", read_conll(sample_path("ner_valid.txt"))[:30])
    output = tmp_path / "bundle"
    exit_code = ner_bilstm_crf.main([
        "--train-file", str(train), "--valid-file", str(valid), "--tag-column", "3", "--head", "softmax",
        "--tag-scheme", "BIO", "--epochs", "2", "--units", "8", "--word-embedding-dim", "8", "--char-filters", "8",
        "--casing-dim", "2", "--no-int8", "--parity-sentences", "10", "--ensemble-size", "2",
        "--passage-tokens", "40", "--output-dir", str(output),
    ])
    assert exit_code == 0
    manifest = json.loads((output / "nlpkit.json").read_text())
    assert (manifest["tag_scheme"], manifest["output_scheme"]) == ("BIO", "IOB1")
    assert manifest["config"]["ensemble_size"] == 2 and manifest["config"]["passage_tokens"] == 40
    assert "test" not in manifest["metrics"] and "model.int8.tflite" not in manifest["files"].values()
    assert manifest["parity"]["sentence_agreement"]["tflite"] == 1.0


def test_weight_averaging_selects_and_exports_the_averaged_weights(tmp_path):
    output = tmp_path / "bundle"
    exit_code = ner_bilstm_crf.main([
        "--epochs", "4", "--units", "8", "--word-embedding-dim", "8", "--char-filters", "8", "--casing-dim", "2",
        "--batch-size", "16", "--learning-rate", "0.01", "--ema-momentum", "0.9", "--patience", "4",
        "--no-int8", "--parity-sentences", "10", "--output-dir", str(output),
    ])
    assert exit_code == 0
    manifest = json.loads((output / "nlpkit.json").read_text())
    metrics = manifest["metrics"]
    assert manifest["config"]["ema_momentum"] == 0.9
    # The weights validated during fit (the average, swapped in) are the weights selected and
    # exported: the saved model scores the valid split exactly as its best epoch did.
    assert metrics["valid"]["f1"] == pytest.approx(metrics["best_valid_span_f1_in_fit"], abs=1e-4)
    assert manifest["parity"]["sentence_agreement"]["tflite"] == 1.0


def test_ema_momentum_outside_0_1_is_an_error():
    with pytest.raises(ValueError, match=r"--ema-momentum must be in \[0, 1\), got 1.0"):
        ner_bilstm_crf.make_optimizer(Config(ema_momentum=1.0))


@pytest.mark.parametrize(
    "line, message",
    [
        ("Oslo B-LOC extra", "expected 2 columns"),
        ("Oslo E-LOC", "'E-LOC' is not a BIO tag"),
        ("Oslo LOC", "'LOC'"),
    ],
)
def test_a_malformed_line_names_file_and_line(tmp_path, line, message):
    train = tmp_path / "train.txt"
    train.write_text(f"Maria B-PER\nflew O\n\nto O\n{line}\n", encoding="utf-8")
    config = Config(train_file=str(train), valid_file=str(train), data_scheme="BIO")
    with pytest.raises(DataFormatError, match=message) as info:
        load_splits(config)
    assert f"{train}:5" in str(info.value)


def test_auto_scheme_detection_and_docstart(tmp_path):
    iob1 = tmp_path / "iob1.txt"
    iob1.write_text("-DOCSTART- O\n\nAnn I-PER\nran O\n\nOslo I-LOC\nBergen B-LOC\n", encoding="utf-8")
    splits, scheme = load_splits(Config(train_file=str(iob1), valid_file=str(iob1)))
    assert scheme == "IOB1" and len(splits["train"]) == 2 and splits["test"] == []
    kept, _ = load_splits(Config(train_file=str(iob1), valid_file=str(iob1), docstart=""))
    assert kept["train"][0] == TaggedSentence(["-DOCSTART-"], ["O"])
    bioes = tmp_path / "bioes.txt"
    bioes.write_text("a B-PER\nb E-PER\nc S-LOC\n", encoding="utf-8")
    assert load_splits(Config(train_file=str(bioes), valid_file=str(bioes)))[1] == "BIOES"
    with pytest.raises(ValueError, match=r"valid sentence 0 \(a b c \.\.\.\): tag 'E-PER'.*reads as IOB1"):
        load_splits(Config(train_file=str(iob1), valid_file=str(bioes)))


class TokenShapeTagger:
    """Stands in for a SequenceTagger: tags capitalised tokens S-X, and records what it read."""

    def __init__(self):
        self.read = []

    def predict_tags(self, token_lists, tokenizer, batch_size=64):
        self.read.extend(token_lists)
        return [["S-X" if token[:1].isupper() else "O" for token in tokens] for tokens in token_lists]


def test_passages_are_what_the_model_reads_and_tags_come_back_per_sentence():
    rows = [
        TaggedSentence(["RESULTS", "TABLE"], ["O", "O"], 0),
        TaggedSentence(["Japan", "3"], ["S-X", "O"], 0),
        TaggedSentence(["Oslo", "is", "cold"], ["S-X", "O", "O"], 1),
    ]
    assert ner_bilstm_crf.passages(rows, 0) == rows
    assert [p.tokens for p in ner_bilstm_crf.passages(rows, 8)] == [["RESULTS", "TABLE", "Japan", "3"],
                                                                    ["Oslo", "is", "cold"]]
    model = TokenShapeTagger()
    tags = ner_bilstm_crf.predict_sentence_tags(model, None, rows, passage_tokens=8)
    assert model.read == [["RESULTS", "TABLE", "Japan", "3"], ["Oslo", "is", "cold"]]
    assert tags == [["S-X", "S-X"], ["S-X", "O"], ["S-X", "O", "O"]]
    model = TokenShapeTagger()
    assert ner_bilstm_crf.predict_sentence_tags(model, None, rows, passage_tokens=0) == tags
    assert model.read == [row.tokens for row in rows]
    report = ner_bilstm_crf.evaluate(TokenShapeTagger(), None, rows, "BIOES", passage_tokens=8)
    assert (report["num_true"], report["num_predicted"], report["num_correct"]) == (2, 4, 2)


def test_first_singleton_id_starts_the_words_seen_once():
    rows = [TaggedSentence(["Oslo", "is", "cold", "."], ["S-LOC", "O", "O", "O"]),
            TaggedSentence(["Bergen", "is", "wet", "."], ["S-LOC", "O", "O", "O"]),
            TaggedSentence(["OSLO", "."], ["S-LOC", "O"])]
    config = Config()
    tokenizer = build_tokenizer(config, rows, extra_words=["fjord"])
    vocabulary = tokenizer.vocabulary
    start = ner_bilstm_crf.first_singleton_id(vocabulary, rows, tokenizer.normalizer)
    # Lowercased: "oslo" is seen twice; "bergen", "cold", "wet" once; "fjord" only has a vector.
    assert sorted(vocabulary.tokens[start:]) == ["bergen", "cold", "fjord", "wet"]
    assert {vocabulary.tokens[i] for i in range(2, start)} == {".", "is", "oslo"}
    assert ner_bilstm_crf.first_singleton_id(vocabulary, rows + rows, tokenizer.normalizer) == 0
    model = ner_bilstm_crf.build_model(Config(singleton_dropout=0.5, units=4, word_embedding_dim=4, char_filters=4),
                                       tokenizer, ["O", "S-LOC"], "BIO", rare_word_start=start)
    assert (model.rare_word_start, model.rare_word_dropout) == (start, 0.5)
    assert ner_bilstm_crf.build_model(Config(units=4, word_embedding_dim=4, char_filters=4), tokenizer,
                                      ["O", "S-LOC"], "BIO", rare_word_start=start).rare_word_start == 0


def test_config_defaults_train_on_the_embedded_sample():
    splits, scheme = load_splits(Config())
    assert scheme == "BIO"
    assert [len(splits[split]) for split in ("train", "valid", "test")] == [300, 60, 60]
    assert entity_types(splits["train"]) == ["LOC", "MISC", "ORG", "PER"]
    limited, _ = load_splits(Config(max_train_sentences=25))
    assert len(limited["train"]) == 25


def test_every_config_field_is_a_flag():
    options = {option for action in config_parser(Config)._actions for option in action.option_strings}
    for field in dataclasses.fields(Config):
        flag = "--" + field.name.replace("_", "-")
        assert flag in options, flag
        if field.type in (bool, "bool"):
            assert "--no-" + flag[2:] in options, flag


# ---------------------------------------------------------------------------------------------
# Pieces
# ---------------------------------------------------------------------------------------------


def test_word_normalizer_and_tokenizer():
    config = Config(max_vocabulary=30, max_word_length=5)
    normalizer = word_normalizer(config)
    assert normalizer.normalize("1996-08-22") == "0000-00-00"
    assert normalizer.normalize("U.S.") == "u.s."
    assert word_normalizer(Config(lowercase=False, zero_digits=False)).normalize("U.S. 19") == "U.S. 19"
    sentences = [TaggedSentence(["Oslo", "is", "cold", "in", "1996"], ["B-LOC", "O", "O", "O", "O"])]
    tokenizer = build_tokenizer(config, sentences, extra_words=["bergen", "oslo", "0000"])
    tokens = tokenizer.vocabulary.tokens
    assert tokens.count("oslo") == 1 and "bergen" in tokens and "0000" in tokens
    assert set("Oslo") <= set(tokenizer.char_vocabulary.tokens)
    assert tokenizer.max_word_length == 5


def test_pretrained_vectors_from_a_file_and_from_data_sets(tmp_path):
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("Oslo 0.1 0.2\noslo 0.9 0.9\n1996 0.3 0.4\nBergen 0.5 0.6\n", encoding="utf-8")
    words, matrix = ner_bilstm_crf.word_vectors(Config(embeddings_file=str(vectors)))
    assert words == ["oslo", "0000", "bergen"]
    np.testing.assert_allclose(matrix[0], [0.1, 0.2])  # the first vector of a form wins
    token_lists = ner_bilstm_crf.pretraining_token_lists("conll2003", word_normalizer(Config()), data_dir=_sample_data_dir(tmp_path))
    assert token_lists[0] == ["fc", "valdoria", "recalled", "0000", "cars", "after", "a", "fault", "was", "found",
                              "in", "the", "brakes", "."]
    data_dir = _sample_data_dir(tmp_path / "splits")
    both = ner_bilstm_crf.pretraining_token_lists("conll2003:train+valid", word_normalizer(Config()), data_dir=data_dir)
    valid = ner_bilstm_crf.pretraining_token_lists("conll2003:dev", word_normalizer(Config()), data_dir=data_dir)
    assert both == token_lists + valid and len(valid) == 60


def _sample_data_dir(tmp_path):
    """A data directory laid out like the shared one, holding the sample as conll2003."""
    directory = tmp_path / "data" / "conll2003"
    directory.mkdir(parents=True)
    for split in ("train", "valid", "test"):
        (directory / f"{split}.txt").write_text(sample_path(f"ner_{split}.txt").read_text(encoding="utf-8"))
    return tmp_path / "data"


def test_registered_data_set_with_a_bad_tag(tmp_path):
    data_dir = _sample_data_dir(tmp_path)
    splits, scheme = load_splits(Config(dataset="conll2003", data_dir=str(data_dir)))
    assert scheme == "BIO" and len(splits["train"]) == 300
    test_file = data_dir / "conll2003" / "test.txt"
    test_file.write_text(test_file.read_text().replace("B-LOC", "B-PLACE", 1))
    with pytest.raises(DataFormatError, match="B-PLACE"):
        load_splits(Config(dataset="conll2003", data_dir=str(data_dir)))


def test_development_runs_do_not_read_the_test_split(tmp_path):
    data_dir = _sample_data_dir(tmp_path)
    test_file = data_dir / "conll2003" / "test.txt"
    test_file.write_text("a malformed line that must never be read\n")
    splits, _ = load_splits(Config(dataset="conll2003", data_dir=str(data_dir), evaluate_test=False))
    assert splits["test"] == [] and len(splits["valid"]) == 60
    with pytest.raises(DataFormatError, match="test.txt:1"):
        load_splits(Config(dataset="conll2003", data_dir=str(data_dir)))
    files = Config(train_file=str(data_dir / "conll2003" / "train.txt"), test_file=str(test_file),
                   valid_file=str(data_dir / "conll2003" / "valid.txt"), evaluate_test=False)
    assert load_splits(files)[0]["test"] == []


def test_recipe_module_shape():
    for name in ("Config", "build_model", "train", "main"):
        assert callable(getattr(ner_bilstm_crf, name)), name
