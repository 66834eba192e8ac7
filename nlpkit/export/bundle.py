"""The bundle directory every recipe and `nlpkit export` write (see DESIGN.md §3)."""

import ctypes
import json
import math
import os
import platform
import shutil
import sys
import time
from pathlib import Path

from nlpkit.export import tflite
from nlpkit.export.saved_model import write_saved_model
from nlpkit.manifest import (
    BUNDLE_FORMAT_VERSION,
    KERAS_FILE,
    MANIFEST_FILE,
    SAVED_MODEL_DIR,
    TFLITE_FILE,
    TFLITE_INT8_FILE,
    ASSETS_DIR,
    TARGETS,
    check_targets,
    owner_running,
    restore_interrupted_swap,
)
from nlpkit.errors import BundleError
from nlpkit.text.python_tokenizers import save_tokenizer


def library_versions():
    """Versions of the libraries that shape a bundle, recorded in ``nlpkit.json``."""
    import keras
    import tensorflow as tf

    import nlpkit

    return {
        "nlpkit": nlpkit.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
    }


def write_bundle(
    output_dir,
    *,
    model,
    tokenizer,
    graph_tokenizer,
    label_names=None,
    int8=True,
    metadata=None,
    lstm="auto",
    parity=None,
    task=None,
    targets=("litert",),
):
    """Writes a complete bundle for ``model`` atomically, and only if it is sound.

    Everything is written into a temporary sibling directory first and swapped into place
    at the end, so a crash mid-export never leaves a half-written bundle, and an existing
    bundle at ``output_dir`` stays intact until the new one is complete and checked: a model
    with a non-finite weight, or a ``parity`` report with a non-finite figure or a TFLite
    file that answers differently on a repeated call, raises `ExportCheckError` and leaves
    the old bundle where it was.

    Args:
        output_dir: bundle directory, e.g. ``saved_models/sentiment``.
        model: a trained `nlpkit.models.TaskModel` (TextClassifier, SequenceTagger,
            LanguageModel, Seq2Seq): its ``task``, ``serving_endpoints``,
            ``tflite_endpoints``, ``export_model`` and ``manifest_section`` decide what is
            written, so this function has no branch per task.
        tokenizer: the pure-Python tokenizer twin (saved under ``assets/``).
        graph_tokenizer: the same tokenizer as a TensorFlow module (runs in the SavedModel).
        label_names: list of str class/tag names, or None.
        int8: also write the dynamic-range quantized ``model.int8.tflite``.
        metadata: extra JSON-able fields for ``nlpkit.json`` (metrics, config, ...).
        lstm: "auto" (default), "fused" or "while": the TFLite form of LSTM layers, see
            `nlpkit.export.tflite.convert`.
        task: optional; if given, must be ``model.task`` (a check for callers that name it).
        targets: the runtimes to write files for, from `TARGETS`: "litert" (``model.tflite``
            and ``model.int8.tflite``: batch 1, dynamic length; always written, since
            `nlpkit.lite` runs it), "web" (``model.web.tflite``: fixed-length buckets, no
            variable tensors, for LiteRT.js; see `nlpkit.export.targets`) and "mediapipe"
            (``model.mediapipe.tflite``: a classifier MediaPipe's TextClassifier loads, with
            its metadata; needs a regex tokenizer, see `nlpkit.export.mediapipe`).
        parity: optional callable ``parity(staged_bundle_dir) -> dict``, run on the finished
            bundle before it replaces anything (e.g. ``lambda path: classifier_parity(path,
            texts)``); its report is stored as ``nlpkit.json`` ``parity`` and checked by
            `check_parity`.

    Returns:
        ``pathlib.Path`` of the bundle.

    Example:
        >>> write_bundle("saved_models/sentiment", model=model,
        ...              tokenizer=twin, graph_tokenizer=graph_tokenizer,
        ...              label_names=["negative", "positive"], metadata={"metrics": report},
        ...              parity=lambda path: classifier_parity(path, test_texts))
    """
    if task is not None and task != model.task:
        raise ValueError(f"task={task!r} but the model is a {model.task!r} model ({type(model).__name__}).")
    task = model.task
    targets = check_targets(targets)
    model = model.export_model()
    output_dir = Path(output_dir)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    restore_interrupted_swap(output_dir)
    remove_stale_siblings(output_dir)
    check_finite_weights(model)
    staging = output_dir.parent / f".{output_dir.name}.staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        model.save(staging / KERAS_FILE)
        tokenizer_spec = save_tokenizer(tokenizer, staging / ASSETS_DIR)
        serving = model.serving_endpoints(graph_tokenizer, label_names)
        write_saved_model(staging / SAVED_MODEL_DIR, model, serving, track=[graph_tokenizer])
        files = {"keras": KERAS_FILE, "saved_model": SAVED_MODEL_DIR, "assets": ASSETS_DIR}
        ops, tflite_files = {}, {}
        endpoints = model.tflite_endpoints()
        variants = [(TFLITE_FILE, None)] + ([(TFLITE_INT8_FILE, "dynamic_range")] if int8 else [])
        for file_name, quantization in variants:
            content = tflite.convert(model, endpoints, quantization=quantization, lstm=lstm)
            (staging / file_name).write_bytes(content)
            files["tflite_int8" if quantization else "tflite"] = file_name
            ops[file_name] = list(tflite.audit_ops(content).builtin)
            tflite_files[file_name] = {
                "target": "litert",
                "quantization": quantization or "float32",
                "signatures": sorted(endpoints),
                "min_runtime_version": tflite.min_runtime_version(content),
            }
        for file_name, content, info in _target_files(targets, model, endpoints, tokenizer, label_names, int8):
            (staging / file_name).write_bytes(content)
            quantized = info["quantization"] != "float32"
            files[f"{info['target']}_int8" if quantized else info["target"]] = file_name
            ops[file_name] = list(tflite.audit_ops(content).builtin)
            tflite_files[file_name] = info
        manifest = {
            "format_version": BUNDLE_FORMAT_VERSION,
            "task": task,
            "name": output_dir.name,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "labels": list(label_names) if label_names is not None else None,
            "tokenizer": tokenizer_spec,
            "files": files,
            "signatures": _signature_descriptions(serving, endpoints),
            "tflite_ops": ops,
            "tflite_files": tflite_files,
            "versions": library_versions(),
        }
        manifest.update(model.manifest_section(tokenizer))
        manifest.update(metadata or {})
        (staging / MANIFEST_FILE).write_text(manifest_json(manifest, output_dir))
        if parity is not None:
            report = parity(staging)
            check_parity(report, output_dir)
            update_manifest(staging, parity=report)
        _fsync_tree(staging)
        _swap_into_place(staging, output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return output_dir


def _target_files(targets, model, endpoints, tokenizer, label_names, int8):
    """``(file_name, content, info)`` of the targets beyond "litert" (see `write_bundle`)."""
    targets = check_targets(targets)
    if "web" in targets:
        from nlpkit.export.targets import web_lengths, web_target_files

        yield from web_target_files(
            model, endpoints, lengths=web_lengths(getattr(tokenizer, "max_length", None)), int8=int8,
            inner_length=getattr(tokenizer, "max_word_length", None),
        )
    if "mediapipe" in targets:
        from nlpkit.export.mediapipe import (
            DEFAULT_LENGTH, MEDIAPIPE_FILE, MEDIAPIPE_INT8_FILE, mediapipe_classifier_file, mediapipe_file_info,
        )

        if model.task != "classification":
            raise ValueError(f"the mediapipe target is for classifiers (MediaPipe's TextClassifier); this is a "
                             f"{model.task} model")
        length = min(getattr(tokenizer, "max_length", None) or DEFAULT_LENGTH, DEFAULT_LENGTH)
        variants = [(MEDIAPIPE_FILE, None)] + ([(MEDIAPIPE_INT8_FILE, "dynamic_range")] if int8 else [])
        for file_name, quantization in variants:
            content = mediapipe_classifier_file(model, tokenizer, label_names, length=length, quantization=quantization)
            yield file_name, content, mediapipe_file_info(content, quantization)


class ExportCheckError(BundleError):
    """A model or a finished bundle failed a check, so it did not replace the bundle at its path."""


def check_finite_weights(model):
    """Raises `ExportCheckError` naming the first weight of ``model`` that holds a NaN or an infinity.

    A diverged run (``--learning-rate nan``, an exploding loss) still "trains" to the end;
    exporting it would replace a good bundle with one whose every answer is NaN.

    Example:
        >>> check_finite_weights(model)  # silent when every weight is finite
    """
    import numpy as np

    for variable in model.weights:
        values = np.asarray(variable.numpy() if hasattr(variable, "numpy") else variable)
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            bad = int(values.size - np.isfinite(values).sum())
            raise ExportCheckError(
                f"weight {variable.path if hasattr(variable, 'path') else variable.name} holds {bad} "
                f"non-finite value(s) of {values.size}: training diverged, so nothing was exported."
            )


def check_parity(report, bundle_dir):
    """Raises `ExportCheckError` when a parity report shows a broken export.

    Broken means: any figure in the report is NaN or infinite (NaN never compares greater
    than a tolerance, so a NaN difference would otherwise pass), or a TFLite file answered a
    repeated call differently (``repeat_identical`` false: state survived between calls).

    Example:
        >>> check_parity({"max_abs_diff": {"tflite": float("nan")}}, "saved_models/x")
        Traceback (most recent call last):
        ...
        nlpkit.export.bundle.ExportCheckError: saved_models/x: parity max_abs_diff.tflite is nan ...
    """
    for key, value in _leaves(report):
        if isinstance(value, float) and not math.isfinite(value):
            raise ExportCheckError(
                f"{bundle_dir}: parity {key} is {value}: the exported forms do not give finite, "
                "matching outputs, so the bundle was not written."
            )
    for name, identical in (report.get("repeat_identical") or {}).items():
        if identical is False:
            raise ExportCheckError(
                f"{bundle_dir}: parity repeat_identical.{name} is false: the TFLite file keeps "
                "state between calls, so the bundle was not written."
            )


def manifest_json(manifest, bundle_dir):
    """``nlpkit.json`` text; a NaN or infinity anywhere raises `ExportCheckError` naming its key.

    Python's ``json`` writes ``NaN`` by default, which JSON parsers of other languages (the
    apps and the web runtime that read the manifest) reject.
    """
    for key, value in _leaves(manifest):
        if isinstance(value, float) and not math.isfinite(value):
            raise ExportCheckError(f"{bundle_dir}: {MANIFEST_FILE} field {key} is {value}, which JSON cannot hold.")
    return json.dumps(manifest, indent=2, sort_keys=True, allow_nan=False)


def _leaves(value, prefix=""):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{prefix}[{index}]")
    else:
        yield prefix, value


def update_manifest(bundle_dir, **fields):
    """Adds or replaces top-level fields of a bundle's ``nlpkit.json`` (written atomically)."""
    path = Path(bundle_dir) / MANIFEST_FILE
    manifest = json.loads(path.read_text())
    manifest.update(fields)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(manifest_json(manifest, bundle_dir))
    os.replace(temporary, path)
    return manifest


def _signature_descriptions(serving, endpoints):
    def describe(signature):
        return {spec.name: f"{spec.dtype.name}{list(spec.shape.as_list())}" for spec in signature}

    return {
        "saved_model": {name: {"inputs": describe(sig)} for name, (_, sig) in serving.items()},
        "tflite": {name: {"inputs": describe(sig)} for name, (_, sig) in endpoints.items()},
    }


def _swap_into_place(staging, output_dir):
    """Makes ``staging`` the bundle at ``output_dir``; a kill at any moment leaves the old or the new one.

    Where the kernel can exchange two directories in one step (Linux ``renameat2`` with
    ``RENAME_EXCHANGE``), it does, and there is no moment without a bundle at the path.
    Elsewhere the old bundle is renamed aside to ``.NAME.previous-PID`` first; a kill
    between the two renames is repaired by `nlpkit.manifest.restore_interrupted_swap`,
    which the next export and the next load run.
    """
    if output_dir.exists() and _exchange(staging, output_dir):
        _fsync_directory(output_dir.parent)
        shutil.rmtree(staging, ignore_errors=True)  # now holds the old bundle
        return
    previous = None
    if output_dir.exists():
        previous = output_dir.parent / f".{output_dir.name}.previous-{os.getpid()}"
        shutil.rmtree(previous, ignore_errors=True)
        os.replace(output_dir, previous)
        _fsync_directory(output_dir.parent)
    try:
        os.replace(staging, output_dir)
    except BaseException:
        # The old bundle must stay where callers look for it when the new one cannot land.
        if previous is not None:
            os.replace(previous, output_dir)
        raise
    _fsync_directory(output_dir.parent)
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)


def _exchange(first, second):
    """Swaps two directories atomically with Linux ``renameat2(RENAME_EXCHANGE)``; False if unsupported."""
    # The standard library has no renameat2 (os.rename cannot exchange), hence ctypes.
    if not sys.platform.startswith("linux") or os.environ.get("NLPKIT_NO_RENAME_EXCHANGE"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange)
    return result == 0  # EINVAL/ENOSYS (file system or kernel without it): the caller renames twice


def remove_stale_siblings(output_dir):
    """Deletes ``.NAME.staging-PID`` and ``.NAME.previous-PID`` folders left by killed exports.

    A folder is stale when its process no longer runs (a kill -9 gives no chance to clean
    up, and each left-behind staging folder holds a whole bundle). A ``.previous-*`` folder
    is only removed while a bundle stands at ``output_dir`` (otherwise it is the bundle, to
    be restored by `restore_interrupted_swap`).

    Example:
        >>> remove_stale_siblings(Path("saved_models/sentiment"))
    """
    output_dir = Path(output_dir)
    for kind in ("staging", "previous"):
        for path in output_dir.parent.glob(f".{output_dir.name}.{kind}-*"):
            if kind == "previous" and not output_dir.is_dir():
                continue
            if not owner_running(path):
                shutil.rmtree(path, ignore_errors=True)


def _fsync_tree(root):
    """Flushes every file and directory under ``root`` to disk before the swap makes it visible."""
    for directory, _, names in os.walk(root):
        for name in names:
            descriptor = os.open(os.path.join(directory, name), os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        _fsync_directory(directory)


def _fsync_directory(directory):
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def print_parity(bundle_dir):
    """Prints the parity report that `write_bundle` stored in the bundle's ``nlpkit.json``, if any.

    Example:
        >>> print_parity("saved_models/sentiment")
        parity {"label_agreement": {...}, ...}
    """
    report = json.loads((Path(bundle_dir) / MANIFEST_FILE).read_text(encoding="utf-8")).get("parity")
    if report is not None:
        print(f"\nparity {json.dumps(report)}")
