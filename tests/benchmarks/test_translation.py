"""Smoke test of benchmarks/translation.py on a data directory holding the embedded sample as multi30k."""

import json

import pytest

from nlpkit.data import read_parallel_tsv
from nlpkit.samples import sample_path

MULTI30K_NAMES = {"train": "train", "valid": "val", "test": "test_2016"}


@pytest.fixture(scope="module")
def translation_benchmark(load_benchmark):
    return load_benchmark("translation")


def write_sample_as_multi30k(data_dir):
    folder = data_dir / "multi30k"
    folder.mkdir(parents=True)
    for split, name in MULTI30K_NAMES.items():
        pairs = read_parallel_tsv(sample_path(f"translation_{split}.tsv"), "de", "en")
        (folder / f"{name}.de").write_text("".join(pair.source + "\n" for pair in pairs), encoding="utf-8")
        (folder / f"{name}.en").write_text("".join(pair.target + "\n" for pair in pairs), encoding="utf-8")


@pytest.mark.slow
def test_tiny_run_reports_quality_parity_and_speed(translation_benchmark, tmp_path, capsys):
    write_sample_as_multi30k(tmp_path / "data")
    exit_code = translation_benchmark.main([
        "--data-dir", str(tmp_path / "data"), "--output-dir", str(tmp_path / "bundles"),
        "--directions", "de-en", "--speed-sentences", "16",
        # Recipe flags after the script's own override its settings.
        "--vocabulary-size", "300", "--embedding-dim", "16", "--units", "16", "--epochs", "2",
    ])
    captured = capsys.readouterr()
    result = json.loads(captured.out)  # the recipe's log stays off stdout
    assert exit_code == 0
    run = result["directions"]["de-en"]
    assert 1 <= run["epochs_run"] <= 2 and run["training_seconds"] > 0
    assert run["flags"][-2:] == ["--epochs", "2"]
    test = run["test_2016"]
    assert test["sentences"] == 50
    for method in ("greedy", "beam"):
        assert 0 <= test[method]["bleu"] <= 100 and test[method]["sentences_per_second"] > 0
    assert run["target"] == {
        "metric": "test_2016 beam BLEU", "at_least": 35.0, "value": test["beam"]["bleu"],
        "met": test["beam"]["bleu"] >= 35.0,
    }
    assert run["parity"]["sentences"] == 50 and run["parity"]["identical"] is True
    for precision in ("float32", "int8"):
        entry = run["tflite"][precision]
        assert entry["file_mb"] > 0
        assert entry["greedy_sentences_per_second"] > 0 and entry["beam_sentences_per_second"] > 0
    int8 = run["tflite"]["int8"]
    assert int8["greedy_bleu_minus_float32_keras"] == pytest.approx(int8["greedy_bleu"] - test["greedy"]["bleu"], abs=0.011)
