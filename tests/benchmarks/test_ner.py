"""Smoke test of benchmarks/ner.py on a data directory that holds the embedded sample as conll2003."""

import json

import pytest

from nlpkit.samples import sample_path


@pytest.fixture(scope="module")
def ner_benchmark(load_benchmark):
    return load_benchmark("ner")


def test_tiny_run_reports_every_figure(ner_benchmark, tmp_path, capsys):
    data_dir = tmp_path / "data"
    (data_dir / "conll2003").mkdir(parents=True)
    for split in ("train", "valid", "test"):
        (data_dir / "conll2003" / f"{split}.txt").write_text(sample_path(f"ner_{split}.txt").read_text("utf-8"))
    exit_code = ner_benchmark.main([
        "--data-dir", str(data_dir), "--output-dir", str(tmp_path / "bundle"),
        # Recipe flags after the script's own override its settings.
        "--pretrain-datasets", "conll2003", "--pretrain-min-frequency", "1", "--word-embedding-dim", "16",
        "--units", "8", "--num-layers", "1", "--char-filters", "8", "--epochs", "2", "--passage-tokens", "40",
        "--parity-sentences", "20",
    ])
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert exit_code == 0
    assert "== test (BIO, conlleval) ==" in captured.err  # the recipe's log stays off stdout
    assert result["train_sentences"] == 300 and 1 <= result["epochs_run"] == len(result["epoch_seconds"]) <= 2
    assert result["recipe_flags"][-2:] == ["--parity-sentences", "20"]
    for key in ("training_seconds", "seconds_per_epoch", "total_compute_seconds"):
        assert result[key] > 0, key
    # Vectors for 300 sentences take milliseconds; the figure is rounded to 0.1 s.
    assert 0 <= result["pretraining_seconds"] < result["total_compute_seconds"]
    assert 0 <= result["test_f1"] <= 100 and set(result["test_per_type_f1"]) == {"LOC", "MISC", "ORG", "PER"}
    for precision in ("float32", "int8"):
        entry = result[f"tflite_{precision}"]
        assert entry["bytes"] > 0 and 0 < entry["latency_ms_median"] <= entry["latency_ms_p90"]
        # The TFLite tagger reads the passages the Keras model read: about 30 tokens each here,
        # against 14 per sentence of the sample.
        assert entry["sequences"] == "passages" and entry["mean_tokens_per_sequence"] > 20
    assert result["tflite_float32"]["test_f1"] == result["test_f1"]  # same tags as Keras
    assert result["int8_minus_float32_f1_points"] == pytest.approx(
        result["tflite_int8"]["test_f1"] - result["tflite_float32"]["test_f1"], abs=0.011
    )
    assert result["parity"]["sentence_agreement"]["tflite"] == 1.0
    assert result["target"]["test_f1"] == 89.0 and result["target"]["met"] is False


def test_a_run_without_the_test_split_is_refused_before_training(ner_benchmark, tmp_path):
    with pytest.raises(SystemExit, match="--no-evaluate-test"):
        ner_benchmark.main(["--data-dir", str(tmp_path), "--output-dir", str(tmp_path / "bundle"),
                            "--no-evaluate-test"])
    assert not (tmp_path / "bundle").exists()
