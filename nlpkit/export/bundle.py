"""The bundle directory every recipe and `nlpkit export` write (see DESIGN.md §3)."""

import json
import os
import platform
import shutil
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
)
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
    task,
    model,
    tokenizer,
    graph_tokenizer,
    label_names=None,
    int8=True,
    metadata=None,
    lstm="auto",
):
    """Writes a complete bundle for ``model`` atomically.

    Everything is written into a temporary sibling directory first and renamed into place
    at the end, so a crash mid-export never leaves a half-written bundle, and an existing
    bundle at ``output_dir`` stays intact until the new one is complete.

    Args:
        output_dir: bundle directory, e.g. ``saved_models/sentiment``.
        task: task name stored in ``nlpkit.json`` (e.g. "text_classification").
        model: a trained nlpkit task model exposing ``serving_endpoint(tokenizer, labels)``
            (or ``serving_endpoints(tokenizer, labels)``, a dict of named signatures that
            includes ``serving_default``) and ``tflite_endpoints()``.
        tokenizer: the pure-Python tokenizer twin (saved under ``assets/``).
        graph_tokenizer: the same tokenizer as a TensorFlow module (runs in the SavedModel).
        label_names: list of str class/tag names, or None.
        int8: also write the dynamic-range quantized ``model.int8.tflite``.
        metadata: extra JSON-able fields for ``nlpkit.json`` (metrics, config, ...).
        lstm: "auto" (default), "fused" or "while": the TFLite form of LSTM layers, see
            `nlpkit.export.tflite.convert`.

    Returns:
        ``pathlib.Path`` of the bundle.

    Example:
        >>> write_bundle("saved_models/sentiment", task="text_classification", model=model,
        ...              tokenizer=twin, graph_tokenizer=graph_tokenizer,
        ...              label_names=["negative", "positive"], metadata={"metrics": report})
    """
    output_dir = Path(output_dir)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = output_dir.parent / f".{output_dir.name}.staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        model.save(staging / KERAS_FILE)
        tokenizer_spec = save_tokenizer(tokenizer, staging / ASSETS_DIR)
        if hasattr(model, "serving_endpoints"):
            # Models with several SavedModel signatures (a tagger's raw-text and
            # pre-tokenized entry points) name them all.
            serving = model.serving_endpoints(graph_tokenizer, label_names)
        else:
            serving = {"serving_default": model.serving_endpoint(graph_tokenizer, label_names)}
        write_saved_model(staging / SAVED_MODEL_DIR, model, serving, track=[graph_tokenizer])
        files = {"keras": KERAS_FILE, "saved_model": SAVED_MODEL_DIR, "assets": ASSETS_DIR}
        ops = {}
        endpoints = model.tflite_endpoints()
        variants = [(TFLITE_FILE, None)] + ([(TFLITE_INT8_FILE, "dynamic_range")] if int8 else [])
        for file_name, quantization in variants:
            content = tflite.convert(model, endpoints, quantization=quantization, lstm=lstm)
            (staging / file_name).write_bytes(content)
            files["tflite_int8" if quantization else "tflite"] = file_name
            ops[file_name] = list(tflite.audit_ops(content).builtin)
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
            "versions": library_versions(),
        }
        manifest.update(metadata or {})
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        _swap_into_place(staging, output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return output_dir


def update_manifest(bundle_dir, **fields):
    """Adds or replaces top-level fields of a bundle's ``nlpkit.json`` (written atomically)."""
    path = Path(bundle_dir) / MANIFEST_FILE
    manifest = json.loads(path.read_text())
    manifest.update(fields)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(manifest, indent=2, sort_keys=True))
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
    previous = None
    if output_dir.exists():
        previous = output_dir.parent / f".{output_dir.name}.previous-{os.getpid()}"
        shutil.rmtree(previous, ignore_errors=True)
        os.replace(output_dir, previous)
    try:
        os.replace(staging, output_dir)
    except BaseException:
        # The old bundle must stay where callers look for it when the new one cannot land.
        if previous is not None:
            os.replace(previous, output_dir)
        raise
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)
