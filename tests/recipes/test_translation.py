"""Tests for recipes/translation.py: a tiny run on line-aligned files cut from the embedded sample."""

import dataclasses
import json

import pytest

from nlpkit.config import parse_config
from nlpkit.data import read_parallel_tsv
from nlpkit.samples import sample_path
from recipes import translation
from recipes.translation import Config, check_config, load_pairs

FLAGS = ["--epochs", "2", "--embedding-dim", "16", "--units", "16", "--vocabulary-size", "120",
         "--beam-width", "2", "--parity-sentences", "-1", "--no-int8", "--batch-size", "16"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The sample as line-aligned en/de files (the recipe's general input), en -> de."""
    directory = tmp_path_factory.mktemp("parallel")
    for split in ("train", "valid", "test"):
        pairs = read_parallel_tsv(sample_path(f"translation_{split}.tsv"), "de", "en")
        if split == "train":
            pairs = pairs[:120]
        for language, index in (("de", 0), ("en", 1)):
            (directory / f"{split}.{language}").write_text("".join(pair[index] + "\n" for pair in pairs), "utf-8")
    return directory


@pytest.fixture(scope="module")
def bundle(files, tmp_path_factory):
    output = tmp_path_factory.mktemp("translation") / "bundle"
    argv = [*FLAGS, "--src", "en", "--tgt", "de", "--output-dir", str(output)]
    for split in ("train", "valid", "test"):
        argv += [f"--{split}-src", str(files / f"{split}.en"), f"--{split}-tgt", str(files / f"{split}.de")]
    assert translation.main(argv) == 0
    return output, argv


def test_run_writes_a_bundle_with_bleu_and_greedy_parity(bundle):
    output, argv = bundle
    for name in ("model.keras", "saved_model", "model.tflite", "assets/sentencepiece.model", "nlpkit.json"):
        assert (output / name).exists(), name
    manifest = json.loads((output / "nlpkit.json").read_text())
    assert manifest["task"] == "translation"
    assert manifest["languages"] == {"source": "en", "target": "de"}
    assert manifest["config"] == dataclasses.asdict(parse_config(Config, argv))
    for split in ("valid", "test"):
        report = manifest["metrics"][split]
        assert report["sentences"] == 50
        for method in ("greedy", "beam"):
            assert 0.0 <= report[method]["bleu"] <= 100.0 and 0.0 <= report[method]["chrf"] <= 100.0
        assert "tok:13a" in report["bleu_signature"]
    assert manifest["parity"]["sentences"] == 50 and manifest["parity"]["identical"], manifest["parity"]
    assert manifest["translation"]["decoding"]["beam_width"] == 2
    assert len(manifest["examples"]["test"]) == 5


def test_lite_translator_reads_the_bundle(bundle):
    from nlpkit.lite import Translator

    output, _ = bundle
    translator = Translator(output)
    assert isinstance(translator.translate("A dog is running in the park."), str)
    assert len(translator.translate(["", "Ωμέγα"], method="beam")) == 2


def test_load_pairs_defaults_to_the_sample_in_either_direction():
    pairs = load_pairs(Config())
    assert [len(pairs[split]) for split in ("train", "valid", "test")] == [400, 50, 50]
    reverse = load_pairs(Config(src="en", tgt="de", max_train_pairs=10))
    assert len(reverse["train"]) == 10 and reverse["train"][0].target == pairs["train"][0].source


def test_check_config_names_the_problem():
    with pytest.raises(ValueError, match="'de' twice"):
        check_config(Config(tgt="de"))
    with pytest.raises(ValueError, match="--beam-width must be >= 1"):
        check_config(Config(beam_width=0))
    with pytest.raises(ValueError, match="--train-src and --train-tgt"):
        check_config(Config(train_src="x.de"))


def test_load_pairs_reads_multi30k_in_both_directions():
    import os

    data_dir = os.environ.get("NLPKIT_DATA")
    if not data_dir:
        pytest.skip("NLPKIT_DATA is not set; real-data tests need the shared data folder")
    pairs = load_pairs(Config(dataset="multi30k", data_dir=data_dir, max_train_pairs=100))
    assert [len(pairs[split]) for split in ("train", "valid", "test")] == [100, 1014, 1000]
    reverse = load_pairs(Config(dataset="multi30k", data_dir=data_dir, src="en", tgt="de", max_train_pairs=1))
    assert reverse["test"][0] == (pairs["test"][0].target, pairs["test"][0].source)


def test_encode_and_decode_step_files_run_in_tflite_runtime_2_14(bundle):
    from tests.runtimes import every_signature_matches_in_tflite214

    every_signature_matches_in_tflite214(bundle[0])


def test_every_command_takes_a_translation_bundle(bundle, files, tmp_path, capsys):
    """evaluate (BLEU from a TSV whose header names the languages), export (keeps the decoding settings), predict."""
    import shutil

    from nlpkit import cli

    output, _ = bundle
    pairs = read_parallel_tsv(sample_path("translation_test.tsv"), "de", "en")[:12]
    test_file = tmp_path / "test.tsv"
    test_file.write_text("en\tde\n" + "".join(f"{pair.source}\t{pair.target}\n" for pair in
                                              read_parallel_tsv(sample_path("translation_test.tsv"), "en", "de")[:12]),
                         "utf-8")
    assert cli.main(["evaluate", str(output), "--data", str(test_file), "--method", "greedy", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["sentences"] == 12 and report["method"] == "greedy" and 0 <= report["bleu"] <= 100

    copy = tmp_path / "copy"
    shutil.copytree(output, copy)
    before = json.loads((copy / "nlpkit.json").read_text())
    assert cli.main(["export", str(copy), "--no-int8"]) == 0
    after = json.loads((copy / "nlpkit.json").read_text())
    assert after["translation"] == before["translation"] and after["languages"] == before["languages"]
    assert after["parity"]["identical"] == {"tflite": True}
    capsys.readouterr()
    assert cli.main(["predict", str(copy), "--format", "keras", "--method", "greedy", pairs[0].target]) == 0
    assert capsys.readouterr().out.strip()
