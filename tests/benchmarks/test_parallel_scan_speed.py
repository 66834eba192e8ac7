"""Smoke test of benchmarks/parallel_scan_speed.py: the quick run, its JSON, matched parameters."""

import json

import pytest


@pytest.fixture(scope="module")
def speed(load_benchmark):
    return load_benchmark("parallel_scan_speed")


@pytest.mark.slow
def test_quick_run_prints_matched_rows_and_writes_the_json(speed, capsys, tmp_path):
    output = tmp_path / "speed.json"
    exit_code = speed.main(["--quick", "--layers", "lstm,mingru,minlstm,mamba", "--output", str(output)])

    result = json.loads(capsys.readouterr().out)
    assert exit_code == 0
    assert json.loads(output.read_text()) == result
    assert result["shapes"]["time"] == 40
    rows = result["rows"]
    assert [(row["layer"], row["match"]) for row in rows] == [("lstm", "reference")] + [
        (layer, match) for layer in ("mingru", "minlstm", "mamba") for match in ("parameters", "width")
    ]
    lstm = rows[0]
    assert lstm["train_vs_lstm"] == 1.0
    for row in rows:
        assert row["train_tokens_per_s"] > 0 and len(row["step_seconds"]) == 1
        assert row["matmul_gflops_per_s"] == pytest.approx(row["train_tokens_per_s"] * row["matmul_flops_per_token"] / 1e9)
        if row["match"] == "width":
            assert row["units"] == lstm["units"]
        else:
            # Matched to the LSTM's layer parameters within one unit's worth (under 10% here).
            assert abs(row["layer_parameters"] - lstm["layer_parameters"]) < 0.1 * lstm["layer_parameters"]
    # 6 flops per weight of the recurrent and output layers: the LSTM's 8 units, 8 inputs, 16 words.
    assert lstm["matmul_flops_per_token"] == 6 * (4 * 8 * (8 + 8 + 1) + 8 * 16)


def test_matched_units_is_closest_and_layers_are_validated(speed):
    target = speed.layer_parameters("lstm", 16, 8, {})
    units = speed.matched_units("mingru", target, 8, {})
    # MinGRU has 2 * units * (8 + 1) parameters.
    assert units == round(target / 18)
    with pytest.raises(SystemExit, match="Received: 'mingru'"):
        speed.run(speed.parse_args(["--layers", "mingru"]))
    with pytest.raises(SystemExit, match="Received: 'depth'"):
        speed.run(speed.parse_args(["--quick", "--match", "depth"]))


def test_models_trace_first_then_take_their_timed_steps_in_turn(speed):
    steps = []

    class FakeModel:
        def __init__(self, name):
            self.name = name

        def train_on_batch(self, inputs, targets):
            steps.append(self.name)

    measured = speed.time_training_interleaved([FakeModel("a"), FakeModel("b")], None, None, repeats=3)

    assert steps == ["a", "b"] + ["a", "b"] * 3
    assert [len(timings) for _, timings in measured] == [3, 3]
    assert all(warmup >= 0 for warmup, _ in measured)
