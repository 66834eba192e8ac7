"""Tests for the ``nlpkit`` command (nlpkit.cli) on the session's tiny sentiment bundle.

Commands run in-process through ``main([...])`` where possible; the stdin cases run
``python -m nlpkit.cli`` in a subprocess so that real bytes arrive on stdin.
"""

import json
import os
import subprocess
import sys

import pytest

from nlpkit import cli
from nlpkit.evaluation import json_line
from nlpkit.export import audit_ops
from nlpkit.lite import TextClassifierPredictor
from nlpkit.manifest import read_manifest
from nlpkit.samples import sample_path

LABELS = {"negative", "positive"}


def run_cli_subprocess(*args, stdin=b""):
    return subprocess.run(
        [sys.executable, "-m", "nlpkit.cli", *map(str, args)],
        input=stdin, capture_output=True, timeout=180,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONIOENCODING": "utf-8"},
    )


def parse_plain(output):
    """``[(label, score, preview)]`` of the tab-separated lines `nlpkit predict` prints."""
    rows = []
    for line in output.splitlines():
        label, score, preview = line.split("\t")
        rows.append((label, float(score), preview))
    return rows


def assert_clean_error(result_code, err, *fragments, command):
    assert result_code == 2
    assert err.startswith(f"nlpkit {command}: error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


# ---------------------------------------------------------------------------------------------
# predict
# ---------------------------------------------------------------------------------------------


def test_predict_texts_given_as_arguments(sentiment_bundle, capsys):
    texts = ["A gripping, beautifully acted film.", "A dull and tedious mess."]
    assert cli.main(["predict", str(sentiment_bundle), *texts]) == 0
    rows = parse_plain(capsys.readouterr().out)
    assert [preview for _, _, preview in rows] == texts
    expected = TextClassifierPredictor(sentiment_bundle).predict(texts)
    for (label, score, _), prediction in zip(rows, expected):
        assert label == prediction.label
        assert score == pytest.approx(prediction.scores[label], abs=1e-4)
        assert 0.5 <= score <= 1.0


@pytest.mark.parametrize("form", ["tflite", "keras", "saved_model"])
def test_predict_json_in_every_format(sentiment_bundle, capsys, form):
    texts = ["what a joy", "", "Ein großartiger Film! 🎬"]
    assert cli.main(["predict", str(sentiment_bundle), "--format", form, "--json", *texts]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [record["text"] for record in records] == texts
    for record in records:
        assert record["label"] in LABELS
        assert set(record["scores"]) == LABELS
        assert sum(record["scores"].values()) == pytest.approx(1.0, abs=1e-5)


def test_predict_formats_agree(sentiment_bundle, capsys, sample_test_texts):
    labels = {}
    for form in ("tflite", "keras", "saved_model"):
        assert cli.main(["predict", str(sentiment_bundle), "--format", form, *sample_test_texts[:20]]) == 0
        labels[form] = [label for label, _, _ in parse_plain(capsys.readouterr().out)]
    assert labels["tflite"] == labels["keras"] == labels["saved_model"]
    assert len(labels["tflite"]) == 20


def test_predict_options_and_texts_in_any_order(sentiment_bundle, capsys):
    bundle = str(sentiment_bundle)
    assert cli.main(["predict", bundle, "first", "--json", "second", "--int8", "third"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [record["text"] for record in records] == ["first", "second", "third"]


def test_predict_rejects_an_unknown_option(sentiment_bundle, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["predict", str(sentiment_bundle), "text", "--jsn"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --jsn" in capsys.readouterr().err


def test_predict_int8(sentiment_bundle, capsys):
    assert cli.main(["predict", str(sentiment_bundle), "--int8", "--json", "a fine film"]) == 0
    (record,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    expected = TextClassifierPredictor(sentiment_bundle, precision="int8").predict("a fine film")[0]
    assert record["scores"] == pytest.approx(expected.scores, abs=1e-6)


def test_predict_empty_text(sentiment_bundle, capsys):
    assert cli.main(["predict", str(sentiment_bundle), ""]) == 0
    ((label, score, preview),) = parse_plain(capsys.readouterr().out)
    assert label in LABELS and preview == ""


def test_predict_ten_thousand_words_shows_a_short_preview(sentiment_bundle, capsys, long_text):
    assert cli.main(["predict", str(sentiment_bundle), long_text]) == 0
    ((label, _, preview),) = parse_plain(capsys.readouterr().out)
    assert label in LABELS
    assert len(preview) == 100 and preview.endswith("…")
    assert long_text.startswith(preview[:-1])


def test_predict_stdin_lines_with_invalid_utf8(sentiment_bundle):
    stdin = b"a gripping film\n\xff\xfe broken bytes \xc3\n\nwindows line\r\nlast line without newline"
    result = run_cli_subprocess("predict", sentiment_bundle, "--json", stdin=stdin)
    assert result.returncode == 0, result.stderr.decode()
    records = [json.loads(line) for line in result.stdout.decode("utf-8").splitlines()]
    assert [record["text"] for record in records] == [
        "a gripping film",
        "\ufffd\ufffd broken bytes \ufffd",
        "",
        "windows line",
        "last line without newline",
    ]
    assert all(record["label"] in LABELS for record in records)


def test_predict_dash_reads_stdin(sentiment_bundle):
    result = run_cli_subprocess("predict", sentiment_bundle, "-", stdin=b"a joy\na chore\n")
    assert result.returncode == 0, result.stderr.decode()
    rows = parse_plain(result.stdout.decode("utf-8"))
    assert [preview for _, _, preview in rows] == ["a joy", "a chore"]


def test_predict_on_a_directory_that_is_not_a_bundle(tmp_path, capsys):
    assert_clean_error(
        cli.main(["predict", str(tmp_path), "some text"]), capsys.readouterr().err,
        str(tmp_path), "no nlpkit.json", command="predict",
    )


def test_predict_on_a_missing_directory(tmp_path, capsys):
    missing = tmp_path / "missing"
    assert_clean_error(
        cli.main(["predict", str(missing), "some text"]), capsys.readouterr().err,
        str(missing), "not a directory", command="predict",
    )


# ---------------------------------------------------------------------------------------------
# evaluate
# ---------------------------------------------------------------------------------------------


def test_evaluate_on_the_sample_test_file(sentiment_bundle, capsys):
    data = sample_path("sentiment_test.tsv")
    assert cli.main(["evaluate", str(sentiment_bundle), "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "(60 examples)" in out


@pytest.mark.parametrize("form", ["tflite", "saved_model"])
def test_evaluate_json_matches_the_recipe_report(sentiment_bundle, capsys, form):
    data = sample_path("sentiment_test.tsv")
    assert cli.main(["evaluate", str(sentiment_bundle), "--data", str(data), "--json", "--format", form]) == 0
    report = json.loads(capsys.readouterr().out)
    recipe_report = read_manifest(sentiment_bundle)["metrics"]["test"]
    assert report["num_examples"] == 60
    assert report["accuracy"] == pytest.approx(recipe_report["accuracy"])
    assert report["confusion_matrix"] == recipe_report["confusion_matrix"]


def test_evaluate_accepts_display_labels(sentiment_bundle, tmp_path, capsys):
    data = tmp_path / "named.tsv"
    data.write_text("sentence\tlabel\na joy\tpositive\na chore\tnegative\n")
    assert cli.main(["evaluate", str(sentiment_bundle), "--data", str(data), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["num_examples"] == 2


@pytest.mark.parametrize("bad_row", ["a row without a label column", "a row with an empty label\t"])
def test_evaluate_on_a_row_missing_its_label(sentiment_bundle, tmp_path, capsys, bad_row):
    data = tmp_path / "broken.tsv"
    data.write_text(f"sentence\tlabel\na joy\t1\n{bad_row}\na chore\t0\n")
    assert_clean_error(
        cli.main(["evaluate", str(sentiment_bundle), "--data", str(data)]), capsys.readouterr().err,
        f"{data}:3", command="evaluate",
    )


def test_evaluate_with_labels_the_bundle_does_not_know(sentiment_bundle, tmp_path, capsys):
    data = tmp_path / "other.tsv"
    data.write_text("sentence\tlabel\na joy\tneutral\n")
    assert_clean_error(
        cli.main(["evaluate", str(sentiment_bundle), "--data", str(data)]), capsys.readouterr().err,
        "'neutral'", command="evaluate",
    )


def test_evaluate_a_missing_data_file(sentiment_bundle, tmp_path, capsys):
    missing = tmp_path / "missing.tsv"
    assert_clean_error(
        cli.main(["evaluate", str(sentiment_bundle), "--data", str(missing)]), capsys.readouterr().err,
        "missing.tsv", command="evaluate",
    )


def test_evaluate_needs_a_data_source(sentiment_bundle, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["evaluate", str(sentiment_bundle)])
    assert exit_info.value.code == 2
    assert "--data" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------------------------


def test_export_rewrites_the_bundle_in_place(bundle_copy, capsys, sample_test_texts):
    before_manifest = read_manifest(bundle_copy)
    before = [p.scores for p in TextClassifierPredictor(bundle_copy).predict(sample_test_texts[:10])]

    assert cli.main(["export", str(bundle_copy)]) == 0
    assert "re-exported" in capsys.readouterr().out

    manifest = read_manifest(bundle_copy, task="classification")
    for key in ("metrics", "config", "raw_labels", "labels", "tokenizer", "files"):
        assert manifest[key] == before_manifest[key], key
    for file_name in ("model.tflite", "model.int8.tflite"):
        audit = audit_ops(bundle_copy / file_name)
        assert audit.builtin_only and "WHILE" in audit.builtin, audit
        assert manifest["tflite_ops"][file_name] == list(audit.builtin)
    # The re-export is checked like a recipe's, on the embedded sample's sentences.
    assert manifest["parity"]["num_texts"] == len(sample_test_texts)
    assert manifest["parity"]["repeat_identical"] == {"tflite": True, "tflite_int8": True}
    after = [p.scores for p in TextClassifierPredictor(bundle_copy).predict(sample_test_texts[:10])]
    for old, new in zip(before, after):
        assert new == pytest.approx(old, abs=1e-6)
    assert sorted(path.name for path in bundle_copy.parent.iterdir()) == ["bundle"]


def test_export_adds_the_web_target_and_keeps_it_on_the_next_export(bundle_copy, capsys):
    assert cli.main(["export", str(bundle_copy), "--target", "web", "--no-int8"]) == 0
    manifest = read_manifest(bundle_copy)
    web = manifest["tflite_files"]["model.web.tflite"]
    assert web["target"] == "web" and web["lengths"] and all(name.startswith("classify_") for name in web["signatures"])
    assert manifest["files"]["web"] == "model.web.tflite" and (bundle_copy / "model.web.tflite").is_file()
    assert manifest["tflite_files"]["model.tflite"]["target"] == "litert"
    assert cli.main(["export", str(bundle_copy), "--no-int8"]) == 0  # the bundle's targets by default
    assert "model.web.tflite" in read_manifest(bundle_copy)["tflite_files"]
    assert cli.main(["export", str(bundle_copy), "--target", "phone"]) == 2
    assert "unknown export target(s) ['phone']" in capsys.readouterr().err


def test_export_int8_flag():
    parser = cli.build_parser()
    assert parser.parse_args(["export", "b"]).int8 is True
    assert parser.parse_args(["export", "b", "--no-int8"]).int8 is False


def test_export_of_a_non_bundle(tmp_path, capsys):
    assert_clean_error(
        cli.main(["export", str(tmp_path)]), capsys.readouterr().err, "no nlpkit.json", command="export"
    )


# ---------------------------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------------------------


def test_recipes_are_found_through_entry_points():
    assert "sentiment" in cli.recipes()


@pytest.mark.parametrize("argv", [["train"], ["train", "--help"], ["train", "-h"]])
def test_train_without_a_task_lists_the_tasks(capsys, argv):
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "tasks: " in out and "sentiment" in out.split("tasks: ")[1]
    assert "nlpkit train TASK --help" in out


def test_train_task_help_shows_the_recipe_flags(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "sentiment", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "nlpkit train sentiment" in out
    for flag in ("--epochs", "--cell", "--no-bidirectional", "--config"):
        assert flag in out


def test_train_an_unknown_task(capsys):
    assert_clean_error(
        cli.main(["train", "poetry"]), capsys.readouterr().err, "'poetry'", "sentiment", command="train"
    )


def test_a_command_is_required(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([])
    assert exit_info.value.code == 2


# ---------------------------------------------------------------------------------------------
# A sequence tagger bundle (the session's tiny NER bundle)
# ---------------------------------------------------------------------------------------------


def test_predict_prints_entities_of_a_tagger(ner_bundle, capsys):
    from nlpkit.lite import SequenceTaggerPredictor

    texts = ["Maria Keller flew to Oslo on Monday .", "", "It rained ."]
    assert cli.main(["predict", str(ner_bundle), *texts]) == 0
    lines = capsys.readouterr().out.split("\n")[:-1]
    assert len(lines) == 3 and lines[1] == ""
    for line, prediction in zip(lines, SequenceTaggerPredictor(ner_bundle).predict(texts)):
        for entity in prediction.entities:
            assert f"[{entity.type} {entity.text}]" in line
        # Without the markup, the line is the text's tokens.
        plain = line
        for entity in prediction.entities:
            plain = plain.replace(f"[{entity.type} {entity.text}]", entity.text)
        assert plain.split() == prediction.tokens


@pytest.mark.parametrize("form", ["tflite", "keras", "saved_model"])
def test_predict_json_for_a_tagger_in_every_format(ner_bundle, capsys, form):
    texts = ["Maria Keller flew to Oslo .", "", "Ingrid Solberg joined Helios Bank in 2019 ."]
    assert cli.main(["predict", str(ner_bundle), "--format", form, "--json", *texts]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [record["text"] for record in records] == texts
    assert records[1] == {"text": "", "tokens": [], "tags": [], "entities": [], "empty": True}
    for record, text in zip(records, texts):
        assert record["tokens"] == text.split() and len(record["tags"]) == len(record["tokens"])
        for entity in record["entities"]:
            assert entity["text"] == " ".join(record["tokens"][entity["start"] : entity["end"]])
            assert record["tags"][entity["start"]] == f"B-{entity['type']}"


def test_predict_tagger_reads_stdin(ner_bundle):
    result = run_cli_subprocess("predict", ner_bundle, "--json", stdin=b"Oslo \xff\n\nMaria Keller\r\n")
    assert result.returncode == 0, result.stderr.decode()
    records = [json.loads(line) for line in result.stdout.decode("utf-8").splitlines()]
    assert [record["tokens"] for record in records] == [["Oslo", "\ufffd"], [], ["Maria", "Keller"]]


def test_predict_with_a_broken_tagger_bundle(ner_bundle_copy, capsys):
    (ner_bundle_copy / "model.tflite").unlink()
    assert_clean_error(
        cli.main(["predict", str(ner_bundle_copy), "Oslo"]), capsys.readouterr().err,
        "model.tflite is listed", command="predict",
    )
    (ner_bundle_copy / "assets" / "char_vocabulary.json").write_text("not json")
    assert_clean_error(
        cli.main(["predict", str(ner_bundle_copy), "--format", "keras", "Oslo"]), capsys.readouterr().err,
        "char_vocabulary.json", command="predict",
    )


def test_evaluate_a_tagger_on_a_conll_file_matches_the_recipe(ner_bundle, capsys):
    # The TFLite tags equal the Keras tags (parity), so the report equals the recipe's.
    data = sample_path("ner_test.txt")
    assert cli.main(["evaluate", str(ner_bundle), "--data", str(data), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    recipe_report = read_manifest(ner_bundle)["metrics"]["test"]
    assert report == recipe_report
    assert cli.main(["evaluate", str(ner_bundle), "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert "processed 851 tokens with 124 entities" in out and "overall" in out


def test_evaluate_a_tagger_on_passages_as_it_was_trained(ner_bundle_copy, capsys):
    from nlpkit.data import read_conll, tag_by_passages
    from nlpkit.export import update_manifest
    from nlpkit.lite import SequenceTaggerPredictor
    from nlpkit.metrics.entity_spans import span_f1

    data = sample_path("ner_test.txt")
    rows = read_conll(data)
    predictor = SequenceTaggerPredictor(ner_bundle_copy)
    expected = span_f1(
        [row.tags for row in rows], tag_by_passages(rows, 40, lambda lists: [predictor.tag_tokens(t) for t in lists]),
        scheme="BIO",
    )

    def report(*flags):
        assert cli.main(["evaluate", str(ner_bundle_copy), "--data", str(data), "--json", *flags]) == 0
        return json.loads(capsys.readouterr().out)

    assert report("--passage-tokens", "40") == expected
    config = read_manifest(ner_bundle_copy)["config"]
    update_manifest(ner_bundle_copy, config={**config, "passage_tokens": 40})
    assert report() == expected  # the bundle's training setting is the default
    assert report("--passage-tokens", "0") == read_manifest(ner_bundle_copy)["metrics"]["test"]


def test_evaluate_a_tagger_on_other_columns_and_bad_files(ner_bundle, tmp_path, capsys):
    data = tmp_path / "four.conll"
    data.write_text("Maria NNP B-NP B-PER\nKeller NNP I-NP I-PER\nflew VBD B-VP O\n", encoding="utf-8")
    assert cli.main(["evaluate", str(ner_bundle), "--data", str(data), "--tag-column", "3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["num_tokens"] == 3
    assert_clean_error(
        cli.main(["evaluate", str(ner_bundle), "--data", str(data), "--tag-column", "1"]), capsys.readouterr().err,
        f"{data}:1", "'NNP'", command="evaluate",
    )
    data.write_text("Maria B-PER\nKeller E-PER\n", encoding="utf-8")
    assert_clean_error(
        cli.main(["evaluate", str(ner_bundle), "--data", str(data)]), capsys.readouterr().err,
        f"{data}:2", "not a BIO tag", command="evaluate",
    )


def test_export_rewrites_a_tagger_bundle(ner_bundle_copy, capsys, ner_test_sentences):
    from nlpkit.lite import SequenceTaggerPredictor

    token_lists = [sentence.tokens for sentence in ner_test_sentences[:10]]
    before = [p.tags for p in SequenceTaggerPredictor(ner_bundle_copy).predict_tokens(token_lists)]
    before_manifest = read_manifest(ner_bundle_copy)
    assert cli.main(["export", str(ner_bundle_copy), "--no-int8"]) == 0
    assert "re-exported" in capsys.readouterr().out
    manifest = read_manifest(ner_bundle_copy, task="tagging")
    for key in ("metrics", "config", "labels", "tokenizer", "tag_scheme", "output_scheme"):
        assert manifest[key] == before_manifest[key], key
    assert "tflite_int8" not in manifest["files"]
    assert audit_ops(ner_bundle_copy / "model.tflite").builtin_only
    after = [p.tags for p in SequenceTaggerPredictor(ner_bundle_copy).predict_tokens(token_lists)]
    assert after == before


def test_the_ner_recipe_is_declared_as_an_entry_point():
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert pyproject["project"]["entry-points"]["nlpkit.recipes"]["ner"] == "recipes.ner_bilstm_crf"


def test_train_ner_through_the_registry(capsys, monkeypatch):
    # The installed metadata lists the entry points of the last `pip install -e .`; this
    # test registers the declared one itself so it holds before a reinstall too.
    from importlib import metadata

    entry = metadata.EntryPoint(name="ner", value="recipes.ner_bilstm_crf", group=cli.RECIPE_GROUP)
    monkeypatch.setattr(cli, "recipes", lambda: {"ner": entry})
    assert cli.main(["train"]) == 0
    assert "tasks: ner" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "ner", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "nlpkit train ner" in out
    for flag in ("--tag-column", "--data-scheme", "--head", "--char-filters", "--pretrain-datasets", "--no-int8"):
        assert flag in out


def test_train_ner_with_a_malformed_file_fails_cleanly(capsys, monkeypatch, tmp_path):
    from importlib import metadata

    entry = metadata.EntryPoint(name="ner", value="recipes.ner_bilstm_crf", group=cli.RECIPE_GROUP)
    monkeypatch.setattr(cli, "recipes", lambda: {"ner": entry})
    train = tmp_path / "train.txt"
    train.write_text("Oslo B-LOC\nis O\n\nBergen B-LOC NN\n", encoding="utf-8")
    assert_clean_error(
        cli.main(["train", "ner", "--train-file", str(train), "--valid-file", str(train)]), capsys.readouterr().err,
        f"{train}:4", "expected 2 columns", command="train",
    )


def test_evaluate_reads_quoted_csv_with_quoting_csv(sentiment_bundle, tmp_path, capsys):
    data = tmp_path / "quoted.csv"
    data.write_text('sentence,label\n"a joy, truly",1\n"a chore, sadly",0\n', encoding="utf-8")
    assert_clean_error(
        cli.main(["evaluate", str(sentiment_bundle), "--data", str(data)]), capsys.readouterr().err,
        f"{data}:2", "found 3", "--quoting csv", command="evaluate",
    )
    assert cli.main(["evaluate", str(sentiment_bundle), "--data", str(data), "--quoting", "csv", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["num_examples"] == 2
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["evaluate", str(sentiment_bundle), "--data", str(data), "--quoting", "excel"])
    assert exit_info.value.code == 2
    assert "'excel'" in capsys.readouterr().err


@pytest.mark.parametrize("content", ["", "sentence\tlabel\n", "sentence\tlabel\n\n\n"])
def test_evaluate_on_a_file_without_examples_fails(sentiment_bundle, tmp_path, capsys, content):
    data = tmp_path / "empty.tsv"
    data.write_text(content, encoding="utf-8")
    assert_clean_error(
        cli.main(["evaluate", str(sentiment_bundle), "--data", str(data)]), capsys.readouterr().err,
        str(data), "no examples", command="evaluate",
    )


def test_evaluate_a_tagger_on_a_file_without_sentences_fails(ner_bundle, tmp_path, capsys):
    data = tmp_path / "empty.conll"
    data.write_text("-DOCSTART- O\n\n\n", encoding="utf-8")
    assert_clean_error(
        cli.main(["evaluate", str(ner_bundle), "--data", str(data)]), capsys.readouterr().err,
        str(data), "no examples", command="evaluate",
    )


def test_evaluate_on_a_dataset_split_without_rows_fails(sentiment_bundle, tmp_path, capsys, monkeypatch):
    from nlpkit.data import DatasetSpec, SplitSpec, read_classification, register, unregister

    (tmp_path / "hollow").mkdir()
    (tmp_path / "hollow" / "test.tsv").write_text("sentence\tlabel\n", encoding="utf-8")
    monkeypatch.setenv("NLPKIT_DATA", str(tmp_path))
    register(DatasetSpec(name="hollow", task="classification", splits={"test": SplitSpec("hollow/test.tsv")},
                         reader=read_classification))
    try:
        assert_clean_error(
            cli.main(["evaluate", str(sentiment_bundle), "--dataset", "hollow"]), capsys.readouterr().err,
            "'hollow'", "'test'", "no examples", command="evaluate",
        )
    finally:
        unregister("hollow")


# ---------------------------------------------------------------------------------------------
# Honest, quiet output (issue: predictions that say what they were made from)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["predict", "evaluate"])
@pytest.mark.parametrize("form", ["keras", "saved_model"])
def test_int8_with_a_format_that_has_no_int8_file_is_refused(sentiment_bundle, capsys, command, form):
    extra = ["a fine film"] if command == "predict" else ["--data", str(sample_path("sentiment_test.tsv"))]
    code = cli.main([command, str(sentiment_bundle), "--format", form, "--int8", *extra])
    assert_clean_error(code, capsys.readouterr().err, "--int8", f"--format {form}", command=command)


@pytest.mark.parametrize("text", ["", "   ", "\t\n"])
def test_an_empty_text_is_marked_in_json_and_on_stderr(sentiment_bundle, capsys, text):
    assert cli.main(["predict", str(sentiment_bundle), "--json", "a fine film", text]) == 0
    captured = capsys.readouterr()
    first, second = [json.loads(line) for line in captured.out.splitlines()]
    assert "empty" not in first and second["empty"] is True
    assert "text 2 has no tokens" in captured.err and "text 1" not in captured.err


def test_a_text_cut_at_max_length_says_so(sentiment_bundle, capsys, long_text):
    max_length = read_manifest(sentiment_bundle)["tokenizer"]["max_length"]
    assert cli.main(["predict", str(sentiment_bundle), "--json", long_text]) == 0
    captured = capsys.readouterr()
    (record,) = [json.loads(line) for line in captured.out.splitlines()]
    assert record["truncated"]["tokens_kept"] == max_length
    assert record["truncated"]["tokens"] > max_length
    assert f"only the first {max_length}" in captured.err


def test_plain_output_escapes_terminal_control_characters(sentiment_bundle, ner_bundle, capsys):
    hostile = "fine \x1b[2J\x1b]0;owned\x07 film \u202egnirts\x9b"
    assert cli.main(["predict", str(sentiment_bundle), hostile]) == 0
    assert cli.main(["predict", str(ner_bundle), f"Anna {hostile}"]) == 0
    out = capsys.readouterr().out
    for raw in ("\x1b", "\x07", "\u202e", "\x9b"):
        assert raw not in out
    assert "\\x1b[2J" in out and "\\u202e" in out and "\\x9b" in out


def test_json_output_never_holds_nan(capsys):
    assert json_line({"scores": {"a": float("nan"), "b": 0.5}, "x": [float("inf")]}) == (
        '{"scores": {"a": null, "b": 0.5}, "x": [null]}'
    )


def test_predict_help_says_which_formats_are_safe_for_untrusted_bundles(capsys):
    with pytest.raises(SystemExit):
        cli.main(["predict", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "saved_model runs tf.saved_model.load" in help_text and "bundles you trust" in help_text


@pytest.mark.parametrize(
    "line, native",
    [
        (b"I0000 00:00:1796646921.078021   12186 port.cc:153] oneDNN custom operations are on.\n", True),
        (b"E0000 00:00:1796646925.424310   12186 cuda_platform.cc:52] failed call to cuInit: INTERNAL\n", True),
        (b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n", True),
        (b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n", True),
        (b"nlpkit predict: error: bundle/model.tflite: not a loadable TFLite model\n", False),
        (b"nlpkit predict: note: text 2 has no tokens\n", False),
    ],
)
def test_the_native_log_filter_drops_only_native_log_lines(line, native):
    from nlpkit.native_logs import NATIVE_LOG_LINE

    assert bool(NATIVE_LOG_LINE.match(line)) is native


def test_the_command_shows_tensorflows_start_up_lines_only_with_verbose(sentiment_bundle):
    from nlpkit.native_logs import NATIVE_LOG_LINE

    quiet = run_cli_subprocess("predict", sentiment_bundle, "--format", "saved_model", "a fine film", "")
    assert quiet.returncode == 0, quiet.stderr
    assert [line for line in quiet.stderr.splitlines(keepends=True) if NATIVE_LOG_LINE.match(line)] == []
    assert b"text 2 has no tokens" in quiet.stderr  # nlpkit's own lines still pass
    loud = run_cli_subprocess("--verbose", "predict", sentiment_bundle, "--format", "saved_model", "a fine film")
    assert loud.returncode == 0
    if not any(NATIVE_LOG_LINE.match(line) for line in loud.stderr.splitlines(keepends=True)):
        pytest.skip("this TensorFlow build printed no start-up lines to filter")


@pytest.mark.slow
def test_a_run_whose_model_diverges_exits_2_and_keeps_the_good_bundle(bundle_copy, snapshot_tree, capsys):
    from tests.conftest import TINY_RECIPE_FLAGS

    before = snapshot_tree(bundle_copy)
    flags = [flag if flag != "0.01" else "1e30" for flag in TINY_RECIPE_FLAGS]  # the learning rate
    code = cli.main(["train", "sentiment", *flags, "--epochs", "1", "--no-int8", "--output-dir", str(bundle_copy)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("nlpkit train: error: ")
    assert "the bundle was not written" in err or "training diverged" in err
    assert snapshot_tree(bundle_copy) == before
    assert sorted(path.name for path in bundle_copy.parent.iterdir() if "staging" in path.name) == []
