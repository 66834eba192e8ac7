"""Smoke test of benchmarks/streaming_step.py: the quick run and its JSON."""

import json

import pytest


@pytest.fixture(scope="module")
def streaming_step(load_benchmark):
    return load_benchmark("streaming_step")


def test_quick_run_prints_one_row_per_precision(streaming_step, capsys):
    exit_code = streaming_step.main(["--quick", "--layers", "gru", "--vocabulary", "30"])

    result = json.loads(capsys.readouterr().out)
    assert exit_code == 0
    rows = result["rows"]
    assert [(row["layer"], row["precision"]) for row in rows] == [("gru", "float32"), ("gru", "int8")]
    for row in rows:
        assert row["invoke_us"] > 0 and row["runner_us"] > 0
        assert 0 < row["invoke_best_us"] <= row["invoke_us"]
        assert len(row["invoke_runs_us"]) == 2
        assert "GATHER" in row["ops"] and "WHILE" not in row["ops"]
        assert (row["units"], row["vocabulary"], row["threads"]) == (8, 30, 1)


def test_matched_parameters_size_the_scan_layers_like_the_lstm(streaming_step, capsys):
    exit_code = streaming_step.main(["--quick", "--layers", "lstm,mingru,mamba", "--match-parameters"])

    result = json.loads(capsys.readouterr().out)
    assert exit_code == 0
    target = result["matched_to"]["layer_parameters"]
    by_layer = {row["layer"]: row for row in result["rows"] if row["precision"] == "float32"}
    assert by_layer["lstm"]["layer_parameters"] == target
    assert by_layer["mingru"]["units"] > by_layer["lstm"]["units"]  # no recurrent kernel
    for row in by_layer.values():
        assert abs(row["layer_parameters"] - target) <= 0.25 * target
        assert "WHILE" not in row["ops"]


def test_unknown_layers_are_named(streaming_step):
    with pytest.raises(SystemExit, match="Received: 'lstm,transformer'"):
        streaming_step.main(["--layers", "lstm,transformer"])
