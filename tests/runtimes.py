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


def missing_runtime(message):
    """Skips the test saying what is missing and how to get it; fails instead in CI, where `make test` installed it."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def tflite214_python():
    """The old runtime's Python; skips the test (with how to get it) where it is missing, fails in CI."""
    if TFLITE214_PYTHON.is_file():
        return TFLITE214_PYTHON
    missing_runtime(f"tflite-runtime 2.14 venv not found at {TFLITE214_PYTHON}: `make test` creates it "
                    "(or set NLPKIT_TFLITE214_PYTHON)")


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


# LiteRT.js (@litertjs/core, the `web` target's runtime) under Node: `web/tools/run_tflite.mjs`
# loads each file once on the WASM CPU path, runs every call twice (a repeated call must give
# identical outputs) and prints the outputs as JSON. `make test` installs the npm package
# (`npm ci` in web/); without it these tests skip, saying what is missing (and fail in CI).
WEB_DIR = ROOT / "web"
RUN_TFLITE_JS = WEB_DIR / "tools" / "run_tflite.mjs"
LITERTJS_PACKAGE = WEB_DIR / "node_modules" / "@litertjs" / "core" / "package.json"
# What LiteRT.js tensors can hold; anything else would be refused by run_tflite.mjs.
LITERTJS_DTYPES = ("float32", "int32", "uint8")


def litertjs_node():
    """The ``node`` executable that runs LiteRT.js; skips (or fails in CI) naming what is missing."""
    import shutil

    node = shutil.which("node")
    if node is None:
        message = "node not found on PATH: LiteRT.js tests need Node 20 or newer"
    elif not LITERTJS_PACKAGE.is_file():
        message = (f"{LITERTJS_PACKAGE.relative_to(ROOT)} not found: run `make web/node_modules/.installed` "
                   "(npm ci in web/)")
    else:
        return node
    missing_runtime(message)


def litertjs_outputs(calls):
    """The outputs of ``calls`` (see the module docstring) in LiteRT.js: a list of dicts, in one Node process.

    Fails with LiteRT.js's own message (and its native log's ERROR lines) when a file does
    not load or a call does not run, or when a repeated call answers differently.
    """
    node = litertjs_node()
    payload = []
    for call in calls:
        inputs = {}
        for name, value in call["inputs"].items():
            value = np.asarray(value)
            assert str(value.dtype) in LITERTJS_DTYPES, f"LiteRT.js has no {value.dtype} tensors (input {name})"
            inputs[name] = {"dtype": str(value.dtype), "shape": list(value.shape), "data": value.ravel().tolist()}
        payload.append({"file": str(call["file"]), "signature": call["signature"], "inputs": inputs})
    result = subprocess.run([node, str(RUN_TFLITE_JS), "--calls", "-"], input=json.dumps(payload),
                            capture_output=True, text=True, timeout=300, cwd=WEB_DIR)
    assert result.returncode == 0, f"LiteRT.js failed:\n{result.stderr[-3000:]}"
    report = json.loads(result.stdout)
    assert report["litertjs_version"].startswith("2.5."), report["litertjs_version"]
    return [{name: np.asarray(value["data"], dtype=value["dtype"]).reshape(value["shape"]) for name, value in row.items()}
            for row in report["results"]]


def run_in_litertjs(model_path, signature, inputs):
    """The outputs (``{name: numpy array}``) of one call of ``signature`` of a .tflite file in LiteRT.js."""
    return litertjs_outputs([{"file": model_path, "signature": signature, "inputs": inputs}])[0]


def every_signature_matches_in_litertjs(path, signatures=None, seeds=(0, 1, 2), atol=1e-4):
    """Each signature of a .tflite file, on a few well-formed inputs, in LiteRT.js and in LiteRT (within ``atol``).

    ``signatures`` defaults to every signature of the file. The inputs come from
    `signature_inputs` (web files have no dynamic dimension, so only the seed varies).
    Returns the calls and LiteRT.js's outputs for further checks.
    """
    from ai_edge_litert.interpreter import Interpreter

    if signatures is None:
        signatures = sorted(Interpreter(model_path=str(path)).get_signature_list())
    calls = [
        {"file": path, "signature": signature, "inputs": signature_inputs(path, signature, length=4, seed=seed)}
        for signature in signatures
        for seed in seeds
    ]
    assert calls
    outputs = litertjs_outputs(calls)
    assert_same_outputs(litert_outputs(calls), outputs, atol=atol)
    return calls, outputs


MEDIAPIPE_PYTHON = Path(os.environ.get("NLPKIT_MEDIAPIPE_PYTHON", ROOT / ".venv-mediapipe" / "bin" / "python"))

# Runs inside .venv-mediapipe: MediaPipe Tasks' TextClassifier exactly as an app calls it, and
# tflite-support's metadata reader. Prints one JSON object.
_MEDIAPIPE_SCRIPT = r"""
import json, sys, time
import mediapipe
from mediapipe.tasks import python as mp_python
from mediapipe.tasks.python import text
request = json.load(sys.stdin)
report = {"version": mediapipe.__version__, "files": {}}
for path in request["files"]:
    options = text.TextClassifierOptions(base_options=mp_python.BaseOptions(model_asset_path=path))
    with text.TextClassifier.create_from_options(options) as classifier:
        rows = []
        for sentence in request["texts"]:
            categories = classifier.classify(sentence).classifications[0].categories
            rows.append({c.index: [c.score, c.category_name] for c in categories})
        start, calls = time.perf_counter(), 0
        while time.perf_counter() - start < request.get("seconds", 0):
            classifier.classify(request["texts"][calls % len(request["texts"])])
            calls += 1
        seconds = time.perf_counter() - start
    scores = [[row[i][0] for i in sorted(row)] for row in rows]
    labels = [[row[i][1] for i in sorted(row)] for row in rows]
    report["files"][path] = {"scores": scores, "labels": labels,
                             "ms_per_call": 1000 * seconds / calls if calls else None}
if request.get("metadata"):
    from tflite_support import metadata
    report["metadata"] = {path: json.loads(metadata.MetadataDisplayer.with_model_file(path).get_metadata_json())
                          for path in request["files"]}
json.dump(report, sys.stdout)
"""


def mediapipe_python():
    """``.venv-mediapipe``'s Python; skips the test (with how to get it) where it is missing, fails in CI."""
    if MEDIAPIPE_PYTHON.is_file():
        return MEDIAPIPE_PYTHON
    missing_runtime(f"MediaPipe venv not found at {MEDIAPIPE_PYTHON}: `make test` creates it "
                    "(or set NLPKIT_MEDIAPIPE_PYTHON)")


def run_in_mediapipe(files, texts, seconds=0, metadata=False):
    """MediaPipe Tasks' ``TextClassifier`` on each file for each text, in ``.venv-mediapipe``.

    Returns ``{"version", "files": {path: {"scores": [[score per class index]], "labels": [[name per
    class index]], "ms_per_call"}}}``, and ``"metadata": {path: metadata JSON}`` read by
    tflite-support's ``MetadataDisplayer`` when ``metadata``. ``seconds`` > 0 also times repeated calls.
    """
    request = {"files": [str(path) for path in files], "texts": list(texts), "seconds": seconds, "metadata": metadata}
    report = run_in_mediapipe_venv(_MEDIAPIPE_SCRIPT, request)
    report["files"] = {path: dict(value, scores=np.asarray(value["scores"], np.float32))
                       for path, value in report["files"].items()}
    return report


def run_in_mediapipe_venv(script, payload):
    """Runs ``script`` in ``.venv-mediapipe`` with ``payload`` as JSON on stdin; returns its JSON stdout."""
    result = subprocess.run([str(mediapipe_python()), "-c", script], input=json.dumps(payload), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, f"the MediaPipe venv failed:\n{result.stderr[-3000:]}"
    return json.loads(result.stdout)
