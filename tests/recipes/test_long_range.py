"""Tests for recipes/long_range.py: a tiny run end to end, matched sizes, the report files."""

import json

import pytest

from recipes import long_range
from recipes.long_range import Config, build_core, check_config, markdown_table


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    output = tmp_path_factory.mktemp("long_range")
    argv = ["--tasks", "adding", "--lengths", "12", "--models", "lstm,mingru,mamba,transformer",
            "--lstm-units", "8", "--minutes", "0.05", "--test-examples", "64", "--latency-steps", "30",
            "--output-dir", str(output)]
    exit_code = long_range.main(argv)
    return exit_code, output


def test_a_tiny_run_writes_json_markdown_and_plot(tiny_run):
    exit_code, output = tiny_run
    assert exit_code == 0
    report = json.loads((output / "long_range.json").read_text())
    rows = report["rows"]
    assert [row["model"] for row in rows] == ["lstm", "mingru", "mamba", "transformer"]
    assert report["wall_seconds"] >= sum(row["training_seconds"] for row in rows)
    for row in rows:
        assert row["training_steps"] >= 1 and row["task"] == "adding" and row["metric"] == "mse"
        assert isinstance(row["latency_ms_per_token"], float) and row["latency_ms_per_token"] > 0, row
        assert row["tflite_bytes"] > 0
        assert row["latency_form"] == ("full pass" if row["model"] == "transformer" else "step")
    assert (output / "long_range.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (output / "long_range.md").read_text()
    assert table.count("\n") == 2 + len(rows) and "| adding | 12 | mamba |" in table


def test_every_model_is_sized_like_the_lstm(tiny_run):
    _, output = tiny_run
    for row in json.loads((output / "long_range.json").read_text())["rows"]:
        assert abs(row["core_parameters"] - row["lstm_parameters"]) <= 0.3 * row["lstm_parameters"], row


@pytest.mark.parametrize("kind", ["gru", "mingru", "transformer"])
def test_build_core_matches_a_larger_target(kind):
    from nlpkit.layers import recurrent_layer_parameters

    target = recurrent_layer_parameters("lstm", 64, 12)
    core, width = build_core(kind, 12, target)
    if not core.built:
        core.build((None, None, 12))
    assert abs(core.count_params() - target) <= 0.05 * target


@pytest.mark.parametrize("field, value, message", [
    ("tasks", "adding,sorting", "--tasks"),
    ("models", "lstm,rwkv", "--models"),
    ("lengths", "50,x", "--lengths"),
    ("lengths", "4", "--lengths"),
    ("minutes", 0.0, "--minutes"),
])
def test_bad_settings_are_named(field, value, message):
    with pytest.raises(ValueError, match=message):
        check_config(Config(**{field: value}))


def test_markdown_table_reports_failed_latency_as_text():
    row = {"task": "adding", "length": 50, "model": "lstm", "core_parameters": 10, "metric": "mse",
           "test_score": 0.1, "chance": 0.1667, "solved": False, "training_tokens_per_second": 5.0,
           "latency_ms_per_token": "ConverterError: x", "latency_form": "step"}
    assert "failed: ConverterError: x" in markdown_table([row])


def test_training_time_is_the_budget_left_less_the_measured_overhead():
    from recipes.long_range import FIRST_OVERHEAD_GUESS, MIN_TRAINING_SECONDS, training_seconds_per_run

    assert training_seconds_per_run(600.0, 10, []) == pytest.approx(60.0 - FIRST_OVERHEAD_GUESS)
    assert training_seconds_per_run(600.0, 10, [10.0, 20.0]) == pytest.approx(45.0)
    # Over budget: every run still trains a little.
    assert training_seconds_per_run(5.0, 10, [30.0]) == MIN_TRAINING_SECONDS
