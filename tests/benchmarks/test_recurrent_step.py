"""Smoke test of benchmarks/recurrent_step.py: the quick run, its JSON and its argument checks."""

import json

import pytest


@pytest.fixture(scope="module")
def recurrent_step(load_benchmark):
    return load_benchmark("recurrent_step")


def test_quick_run_prints_one_row_per_thread_count(recurrent_step, capsys):
    # One thread count: one subprocess, which sets its own thread pools.
    exit_code = recurrent_step.main(["--quick", "--layer", "gru", "--threads", "1"])

    result = json.loads(capsys.readouterr().out)
    assert exit_code == 0
    assert result["layer"] == "gru"
    assert result["shape"] == {"batch": 2, "time": 16, "embed": 8, "units": 8}
    [row] = result["rows"]
    assert row["threads"] == 1
    for name in ("matmul_loop", "nlpkit", "nlpkit_loop"):
        assert 0 < row[f"{name}_best_us"] <= row[f"{name}_us"]
    assert row["kernel_bytes"] == 4 * 8 * 3 * 8  # float32 (H, 3H) recurrent kernel
    assert row["matmul_loop_gb_per_s"] > 0
    assert row["matmul_share_of_nlpkit_step"] == pytest.approx(
        row["matmul_loop_us"] / row["nlpkit_us"], abs=1e-3
    )
    if row["torch_us"] is None:
        assert any("PyTorch is not installed" in note for note in result["notes"])
    else:
        assert row["nlpkit_speed_vs_torch"] == pytest.approx(row["torch_us"] / row["nlpkit_us"], abs=1e-3)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--threads", "1,zero"], "--threads must list positive ints"),
        (["--threads", "0"], "--threads must list positive ints"),
        (["--units", "0"], "--units must be at least 1"),
    ],
)
def test_bad_arguments_are_named(recurrent_step, capsys, argv, message):
    with pytest.raises(SystemExit):
        recurrent_step.main(argv)
    assert message in capsys.readouterr().err
