"""Runs exported ``.tflite`` files in other TFLite runtimes than the one that wrote them.

A bundle is only deployable if the runtimes apps ship can load it, and apps pin a runtime for
years: `run_in_tflite214` replays the exact calls of a test in ``tflite-runtime==2.14.0``,
which lives in its own venv (``make test`` creates ``.venv-tflite214``; it needs numpy<2)
and is driven through a subprocess. `litert_outputs` makes the same calls with the
``ai_edge_litert`` interpreter `nlpkit.lite` uses, so a test compares the two directly.

A call is ``{"file": path, "signature": name, "inputs": {name: numpy array}}``.
"""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
TFLITE214_PYTHON = Path(os.environ.get("NLPKIT_TFLITE214_PYTHON", ROOT / ".venv-tflite214" / "bin" / "python"))

# Runs inside the old runtime's venv: imports tflite_runtime and numpy only.
_SCRIPT = r"""
import json, sys
import numpy as np
from tflite_runtime.interpreter import Interpreter
import tflite_runtime
calls = json.load(sys.stdin)
runners, results = {}, []
for call in calls:
    key = (call["file"], call["signature"])
    if key not in runners:
        runners[key] = Interpreter(model_path=call["file"]).get_signature_runner(call["signature"])
    inputs = {name: np.asarray(value["data"], dtype=value["dtype"]) for name, value in call["inputs"].items()}
    outputs = runners[key](**inputs)
    results.append({name: {"dtype": str(value.dtype), "data": value.tolist()} for name, value in outputs.items()})
json.dump({"version": tflite_runtime.__version__, "results": results}, sys.stdout)
"""


def tflite214_python():
    """The old runtime's Python; skips the test (with how to get it) where it is missing, fails in CI."""
    if TFLITE214_PYTHON.is_file():
        return TFLITE214_PYTHON
    message = (f"tflite-runtime 2.14 venv not found at {TFLITE214_PYTHON}: `make test` creates it "
               "(or set NLPKIT_TFLITE214_PYTHON)")
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def run_in_tflite214(calls):
    """The outputs of ``calls`` (see the module docstring) in tflite-runtime 2.14: a list of dicts."""
    payload = [
        {
            "file": str(call["file"]),
            "signature": call["signature"],
            "inputs": {name: {"dtype": str(value.dtype), "data": value.tolist()} for name, value in call["inputs"].items()},
        }
        for call in calls
    ]
    result = subprocess.run([str(tflite214_python()), "-c", _SCRIPT], input=json.dumps(payload), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, f"tflite-runtime 2.14 failed:\n{result.stderr[-3000:]}"
    report = json.loads(result.stdout)
    assert report["version"] == "2.14.0"
    return [{name: np.asarray(value["data"], dtype=value["dtype"]) for name, value in row.items()}
            for row in report["results"]]


def litert_outputs(calls):
    """The outputs of ``calls`` in ``ai_edge_litert`` (one interpreter per file and signature, as above)."""
    from ai_edge_litert.interpreter import Interpreter

    runners, results = {}, []
    for call in calls:
        key = (str(call["file"]), call["signature"])
        if key not in runners:
            runners[key] = Interpreter(model_path=key[0]).get_signature_runner(call["signature"])
        results.append({name: np.array(value) for name, value in runners[key](**call["inputs"]).items()})
    return results


def signature_inputs(path, signature, length=5, seed=0, high=4):
    """Inputs for one call of ``signature``: int ids in ``[1, high)``, small normal floats, dynamic dims = ``length``.

    For signatures whose inputs are not text (a language model's ``step`` with its states, a
    decoder's ``decode_step``), where any well-formed input exercises every operator.
    """
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(path)).get_signature_runner(signature)
    rng = np.random.default_rng(seed)
    inputs = {}
    for name, detail in runner.get_input_details().items():
        shape = [length if size < 0 else size for size in detail["shape_signature"]]
        if np.issubdtype(detail["dtype"], np.integer):
            inputs[name] = rng.integers(1, high, size=shape).astype(detail["dtype"])
        else:
            inputs[name] = (0.1 * rng.standard_normal(shape)).astype(detail["dtype"])
    return inputs


def assert_same_outputs(ours, theirs, atol=1e-5):
    """Integer outputs identical, float outputs within ``atol``, call by call."""
    assert len(ours) == len(theirs)
    for index, (mine, other) in enumerate(zip(ours, theirs)):
        assert sorted(mine) == sorted(other), index
        for name in mine:
            if np.issubdtype(mine[name].dtype, np.integer):
                np.testing.assert_array_equal(mine[name], other[name], err_msg=f"call {index} output {name}")
            else:
                np.testing.assert_allclose(mine[name], other[name], atol=atol, rtol=0, err_msg=f"call {index} {name}")


def bundle_tflite_files(bundle_dir):
    """``(path, signatures)`` of every .tflite file a bundle's ``nlpkit.json`` lists."""
    manifest = json.loads((Path(bundle_dir) / "nlpkit.json").read_text())
    return [(Path(bundle_dir) / name, info["signatures"]) for name, info in manifest["tflite_files"].items()]


def every_signature_matches_in_tflite214(bundle_dir):
    """Each signature of each .tflite file of a bundle, on a few well-formed inputs, in tflite-runtime 2.14 and LiteRT."""
    calls = [
        {"file": path, "signature": signature, "inputs": signature_inputs(path, signature, length=length, seed=seed)}
        for path, signatures in bundle_tflite_files(bundle_dir)
        for signature in signatures
        for seed, length in enumerate((1, 4, 9))
    ]
    assert calls
    assert_same_outputs(litert_outputs(calls), run_in_tflite214(calls), atol=1e-5)
