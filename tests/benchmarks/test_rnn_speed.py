"""Smoke test of benchmarks/rnn_speed.py: the quick run, its JSON, and its argument parsing."""

import json
import sys

import pytest


@pytest.fixture(scope="module")
def rnn_speed(load_benchmark):
    return load_benchmark("rnn_speed")


ROW_KEYS = {
    "layer", "config", "framework", "api",
    "train_tokens_per_s", "infer_tokens_per_s", "infer_tensor_tokens_per_s", "latency_ms", "latency_tokens_per_s",
    "train_layer_gflops", "infer_layer_gflops", "train_model_gflops", "infer_model_gflops",
    "flops_per_token", "timings", "wall_seconds",
}
RATIO_KEYS = {
    "train_vs_torch", "infer_vs_torch", "infer_tensor_vs_torch",
    "train_vs_keras", "infer_vs_keras", "infer_tensor_vs_keras",
    "train_vs_nlpkit_loop", "infer_vs_nlpkit_loop", "infer_tensor_vs_nlpkit_loop",
}


@pytest.mark.slow
def test_quick_run_without_torch_prints_one_json_document(rnn_speed, capsys):
    torch_was_loaded = "torch" in sys.modules

    exit_code = rnn_speed.main(["--quick", "--frameworks", "nlpkit,nlpkit_loop,keras", "--tflite-forms", "no"])

    result = json.loads(capsys.readouterr().out)
    assert exit_code == 0
    assert result["matmul_gflops"]["tensorflow"] > 0
    assert result["matmul_gflops"]["tensorflow_best"] >= result["matmul_gflops"]["tensorflow"]
    assert "torch" not in result["matmul_gflops"]
    assert result["machine"]["cpus"] >= 1
    assert result["settings"]["frameworks"] == ["nlpkit", "nlpkit_loop", "keras"]
    rows = result["rows"]
    assert [(row["layer"], row["framework"]) for row in rows] == [
        (layer, framework) for layer in ("lstm", "gru", "simple_rnn") for framework in ("nlpkit", "nlpkit_loop", "keras")
    ]
    for row in rows:
        assert "error" not in row, row
        assert ROW_KEYS <= set(row), ROW_KEYS - set(row)
        assert row["train_tokens_per_s"] > 0 and row["infer_tokens_per_s"] > 0 and row["latency_ms"] > 0
        assert row["infer_tensor_tokens_per_s"] > 0
        assert row["timings"]["train_step"]["repeats"] == 2
    for row in (row for row in rows if row["framework"] == "nlpkit"):
        assert RATIO_KEYS <= set(row)
        assert row["train_vs_torch"] is None and row["infer_vs_torch"] is None
        assert row["train_vs_keras"] > 0 and row["infer_vs_keras"] > 0 and row["infer_tensor_vs_keras"] > 0
        assert row["train_vs_nlpkit_loop"] > 0 and row["infer_vs_nlpkit_loop"] > 0
        for precision in ("float32", "int8"):
            tflite = row["tflite"][precision]
            assert tflite["latency_ms"]["median_ms"] > 0 and tflite["bytes"] > 0
            assert tflite["loop_form"] in ("WHILE loop", "fused UNIDIRECTIONAL_SEQUENCE_LSTM", "other")
        # Dynamic-range quantization stores the weights as int8, so the file shrinks.
        assert row["tflite"]["int8"]["bytes"] < row["tflite"]["float32"]["bytes"]
    assert [entry["layer"] for entry in result["summary"]] == ["lstm", "gru", "simple_rnn"]
    # The torch rows were not asked for, so torch must not even be imported.
    assert torch_was_loaded or "torch" not in sys.modules


@pytest.mark.slow
def test_quick_tflite_forms_run_times_fused_and_while_lstm_files(rnn_speed, capsys):
    exit_code = rnn_speed.main(["--quick", "--tflite-forms", "only", "--tflite-threads", "1,2"])

    result = json.loads(capsys.readouterr().out)
    assert exit_code == 0
    assert "rows" not in result and "matmul_gflops" not in result  # "only" skips the rest
    rows = result["tflite_lstm_forms"]
    assert [(row["model"], row["precision"], row["form"]) for row in rows] == [
        (model, precision, form)
        for model in ("lstm", "bilstm") for precision in ("float32", "int8") for form in ("fused", "while")
    ]
    for row in rows:
        layers = 2 if row["model"] == "bilstm" else 1
        fused = row["form"] == "fused"
        assert (row["fused_ops"], row["while_ops"]) == ((layers, 0) if fused else (0, layers)), row
        assert row["max_abs_diff_vs_keras"] < (1e-4 if row["precision"] == "float32" else 0.05)
        assert set(row["latency_ms"]) == set(row["cpu_ms"]) == {"1", "2"}
        assert row["latency_ms"]["1"]["median_ms"] > 0 and row["bytes"] > 0
    summary = result["tflite_lstm_forms_summary"]
    assert len(summary) == 4
    assert {"speedup_wall_1t", "speedup_cpu_2t", "fused_bytes", "while_bytes"} <= set(summary[0])


def test_form_summary_divides_while_time_by_fused_time(rnn_speed):
    def row(form, wall, cpu):
        return {"model": "lstm", "config": "T8-E4-H4", "precision": "int8", "form": form, "bytes": 10,
                "latency_ms": {"1": {"median_ms": wall}}, "cpu_ms": {"1": {"median_ms": cpu}}}

    summary = rnn_speed.lstm_form_summary([row("fused", 2.0, 1.0), row("while", 3.0, 4.0), {"error": "x"}])

    assert len(summary) == 1
    assert summary[0]["speedup_wall_1t"] == 1.5 and summary[0]["speedup_cpu_1t"] == 4.0


def test_interleaved_timing_alternates_the_functions(rnn_speed):
    calls = []
    timings = rnn_speed.time_interleaved(
        [lambda: calls.append("a"), lambda: calls.append("b")], repeats=2, warmup=1, min_seconds=0.0
    )

    assert calls == ["a", "b", "a", "b", "a", "b"]
    assert [len(wall.seconds) for wall, _ in timings] == [2, 2]
    assert all(cpu.median >= 0 for _, cpu in timings)


def test_bad_tflite_threads_are_a_usage_error(rnn_speed, capsys):
    with pytest.raises(SystemExit):
        rnn_speed.main(["--tflite-threads", "1,zero"])
    assert "'1,zero'" in capsys.readouterr().err


def test_configs_parse_as_batch_time_embed_units(rnn_speed):
    shapes = rnn_speed.parse_configs("32x64x256x512, 1x256x128x256")

    assert [shape.name for shape in shapes] == ["B32-T64-E256-H512", "B1-T256-E128-H256"]
    assert shapes[0].tokens == 32 * 64 and shapes[0].vocabulary == 1000


@pytest.mark.parametrize(
    "text, named",
    [("32x64x256", "'32x64x256'"), ("32x64x0x512", "'32x64x0x512'"), ("axbxcxd", "'axbxcxd'"),
     (",", "No configuration in ','")],
)
def test_bad_configs_are_named_in_the_error(rnn_speed, text, named):
    with pytest.raises(ValueError) as error:
        rnn_speed.parse_configs(text)
    assert named in str(error.value)


def test_unknown_layer_or_framework_is_a_usage_error(rnn_speed, capsys):
    with pytest.raises(SystemExit):
        rnn_speed.main(["--layers", "lstm,transformer"])
    assert "'transformer'" in capsys.readouterr().err


def test_flops_count_gates_times_input_and_recurrent_matmuls(rnn_speed):
    assert rnn_speed.layer_flops_per_token("lstm", 256, 512) == 2 * 4 * 512 * (256 + 512)
    assert rnn_speed.layer_flops_per_token("gru", 256, 512) == 2 * 3 * 512 * (256 + 512)
    assert rnn_speed.layer_flops_per_token("simple_rnn", 128, 256) == 2 * 256 * (128 + 256)


def test_timing_reports_the_median_of_repeats(rnn_speed):
    calls = []
    timing = rnn_speed.time_calls(lambda: calls.append(1), repeats=3, warmup=2, min_seconds=0.0)

    assert len(calls) == 5 and len(timing.seconds) == 3
    assert set(timing.as_dict()) == {"median_ms", "min_ms", "max_ms", "repeats"}


def test_side_by_side_times_frameworks_in_turn_and_keeps_the_others_when_one_fails(rnn_speed, monkeypatch):
    calls, closed = [], []

    class FakeRunner:
        api = "fake"

        def __init__(self, framework):
            self.framework = framework

        def _call(self, metric):
            if self.framework == "keras" and metric == "infer":
                raise RuntimeError("broken predict")
            calls.append((self.framework, metric))

        def train(self):
            self._call("train")

        def infer(self):
            self._call("infer")

        def infer_tensor(self):
            self._call("infer_tensor")

        def infer_single(self):
            self._call("infer_single")

        def close(self):
            closed.append(self.framework)

    monkeypatch.setattr(rnn_speed, "make_runner", lambda framework, *_: FakeRunner(framework))
    args = rnn_speed.resolve_args(["--quick", "--frameworks", "nlpkit_loop,keras", "--no-tflite"])
    shape = rnn_speed.Shape(2, 8, 16, 16)

    rows = rnn_speed.measure_side_by_side(["nlpkit_loop", "keras"], "gru", shape, args)

    assert [row["framework"] for row in rows] == ["nlpkit_loop", "keras"]
    assert rows[0]["train_tokens_per_s"] > 0 and rows[0]["latency_ms"] > 0
    assert rows[1] == {"layer": "gru", "config": shape.name, "framework": "keras",
                       "error": "RuntimeError: broken predict"}
    # Training ran one repeat of each framework in turn, after each one's warm-up.
    train_calls = [framework for framework, metric in calls if metric == "train"]
    warmup = args.warmup
    assert train_calls[: 2 * warmup] == ["nlpkit_loop"] * warmup + ["keras"] * warmup
    assert "keras" in train_calls[2 * warmup:] and "nlpkit_loop" in train_calls[2 * warmup:]
    assert sorted(closed) == ["keras", "nlpkit_loop"]
