"""Tests for nlpkit.export.bundle on the session's tiny sentiment bundle (see conftest.py)."""

import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf

from nlpkit.export import audit_ops, bundle as bundle_module, library_versions, update_manifest, write_bundle
from nlpkit.manifest import BUNDLE_FORMAT_VERSION, read_manifest
from nlpkit.models import load_keras_model
from nlpkit.text import load_graph_tokenizer, load_tokenizer

TOKENIZER_FILES = ("tokenizer.json", "vocabulary.json", "normalization.json")


def load_parts(bundle_dir):
    """The model and both tokenizers of a bundle, as `write_bundle` takes them."""
    return {
        "model": load_keras_model(bundle_dir / "model.keras"),
        "tokenizer": load_tokenizer(bundle_dir / "assets"),
        "graph_tokenizer": load_graph_tokenizer(bundle_dir / "assets"),
    }


def leftovers(directory):
    """Staging or previous-bundle directories `write_bundle` should have removed."""
    return sorted(path.name for path in directory.iterdir() if re.search(r"\.(staging|previous)-", path.name))


# ---------------------------------------------------------------------------------------------
# Layout and manifest
# ---------------------------------------------------------------------------------------------


def test_bundle_holds_every_file(sentiment_bundle):
    assert (sentiment_bundle / "model.keras").is_file()
    assert (sentiment_bundle / "saved_model" / "saved_model.pb").is_file()
    assert (sentiment_bundle / "saved_model" / "variables").is_dir()
    assert (sentiment_bundle / "model.tflite").is_file()
    assert (sentiment_bundle / "model.int8.tflite").is_file()
    for name in TOKENIZER_FILES:
        assert (sentiment_bundle / "assets" / name).is_file(), name
    assert (sentiment_bundle / "nlpkit.json").is_file()
    assert leftovers(sentiment_bundle.parent) == []


def test_manifest_describes_the_bundle(sentiment_bundle):
    manifest = json.loads((sentiment_bundle / "nlpkit.json").read_text())
    assert manifest["format_version"] == BUNDLE_FORMAT_VERSION
    assert manifest["task"] == "classification"
    assert manifest["name"] == sentiment_bundle.name
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", manifest["created"])
    assert manifest["labels"] == ["negative", "positive"]
    assert manifest["raw_labels"] == ["0", "1"]

    saved_spec = json.loads((sentiment_bundle / "assets" / "tokenizer.json").read_text())
    assert manifest["tokenizer"] == saved_spec
    assert manifest["tokenizer"]["type"] == "word"

    assert manifest["files"] == {
        "keras": "model.keras",
        "saved_model": "saved_model",
        "assets": "assets",
        "tflite": "model.tflite",
        "tflite_int8": "model.int8.tflite",
    }
    for name in manifest["files"].values():
        assert (sentiment_bundle / name).exists(), name

    assert manifest["signatures"] == {
        "saved_model": {"serving_default": {"inputs": {"text": "string[None]"}}},
        "tflite": {"classify": {"inputs": {"token_ids": "int32[1, None]"}}},
    }


def test_manifest_lists_the_audited_tflite_ops(sentiment_bundle):
    manifest = read_manifest(sentiment_bundle)
    assert sorted(manifest["tflite_ops"]) == ["model.int8.tflite", "model.tflite"]
    for file_name, ops in manifest["tflite_ops"].items():
        audit = audit_ops(sentiment_bundle / file_name)
        assert audit.builtin_only, (file_name, audit.custom)
        assert ops == list(audit.builtin)
        assert "WHILE" in ops


def test_manifest_records_versions_metrics_and_parity(sentiment_bundle):
    import keras

    manifest = read_manifest(sentiment_bundle)
    assert manifest["versions"] == library_versions()
    assert manifest["versions"]["tensorflow"] == tf.__version__
    assert manifest["versions"]["keras"] == keras.__version__
    assert {"valid", "test", "training_seconds", "epochs_run"} <= set(manifest["metrics"])
    assert 0.0 <= manifest["metrics"]["test"]["accuracy"] <= 1.0
    assert set(manifest["parity"]) >= {"num_texts", "max_abs_diff", "label_agreement", "repeat_identical"}


# ---------------------------------------------------------------------------------------------
# SavedModel: raw strings in, labels and scores out
# ---------------------------------------------------------------------------------------------


def test_saved_model_serving_default_takes_raw_strings(sentiment_bundle, long_text):
    loaded = tf.saved_model.load(str(sentiment_bundle / "saved_model"))
    serve = loaded.signatures["serving_default"]
    texts = ["A gripping, beautifully acted film.", "", "   \t  ", long_text, "Dull, dull, dull."]
    outputs = serve(text=tf.constant(texts))

    assert set(outputs) == {"labels", "scores"}
    labels = outputs["labels"].numpy()
    scores = outputs["scores"].numpy()
    assert outputs["labels"].dtype == tf.string and labels.shape == (len(texts),)
    assert {label.decode() for label in labels} <= {"negative", "positive"}
    assert scores.shape == (len(texts), 2) and scores.dtype == np.float32
    np.testing.assert_allclose(scores.sum(-1), 1.0, atol=1e-5)
    assert [label.decode() for label in labels] == [
        ["negative", "positive"][i] for i in scores.argmax(-1)
    ]
    # An empty and a whitespace-only text are both "no tokens": same scores.
    np.testing.assert_array_equal(scores[1], scores[2])


def test_saved_model_batch_result_does_not_depend_on_the_batch(sentiment_bundle):
    serve = tf.saved_model.load(str(sentiment_bundle / "saved_model")).signatures["serving_default"]
    texts = ["what a joy", "a long , slow and tedious film that never ends", ""]
    batch = serve(text=tf.constant(texts))["scores"].numpy()
    for row, text in enumerate(texts):
        single = serve(text=tf.constant([text]))["scores"].numpy()[0]
        np.testing.assert_allclose(single, batch[row], atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Writing bundles
# ---------------------------------------------------------------------------------------------


def test_write_bundle_without_int8_on_a_new_directory(sentiment_bundle, tmp_path):
    output = tmp_path / "nested" / "fresh"
    parts = load_parts(sentiment_bundle)
    returned = write_bundle(
        output, task="classification", label_names=["negative", "positive"], int8=False,
        metadata={"metrics": {"note": "written by a test"}}, **parts,
    )
    assert returned == output
    manifest = read_manifest(output, task="classification")
    assert "tflite_int8" not in manifest["files"]
    assert not (output / "model.int8.tflite").exists()
    assert list(manifest["tflite_ops"]) == ["model.tflite"]
    assert manifest["metrics"] == {"note": "written by a test"}
    assert manifest["name"] == "fresh"
    assert leftovers(output.parent) == []


@pytest.mark.parametrize("failure", [RuntimeError("converter exploded"), KeyboardInterrupt()])
def test_failed_export_leaves_the_old_bundle_intact(bundle_copy, snapshot_tree, monkeypatch, failure):
    parts = load_parts(bundle_copy)
    before = snapshot_tree(bundle_copy)
    calls = []

    def failing_convert(*args, **kwargs):
        calls.append(kwargs)
        raise failure

    monkeypatch.setattr("nlpkit.export.tflite.convert", failing_convert)
    with pytest.raises(type(failure)):
        write_bundle(bundle_copy, task="classification", label_names=["negative", "positive"], **parts)

    assert calls, "the export never reached the TFLite conversion"
    assert snapshot_tree(bundle_copy) == before
    assert sorted(path.name for path in bundle_copy.parent.iterdir()) == ["bundle"]


def test_failed_final_rename_puts_the_old_bundle_back(tmp_path, monkeypatch):
    monkeypatch.setenv("NLPKIT_NO_RENAME_EXCHANGE", "1")  # the two-rename path, as on macOS or Windows
    output = tmp_path / "bundle"
    output.mkdir()
    (output / "nlpkit.json").write_text("old")
    staging = tmp_path / ".bundle.staging-1"
    staging.mkdir()
    (staging / "nlpkit.json").write_text("new")
    real_replace = os.replace

    def replace(source, destination):
        if os.fspath(source) == os.fspath(staging):
            raise OSError(f"cannot rename {source}")
        return real_replace(source, destination)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="cannot rename"):
        bundle_module._swap_into_place(staging, output)
    assert (output / "nlpkit.json").read_text() == "old"
    assert leftovers(tmp_path) == [".bundle.staging-1"]  # write_bundle's own cleanup removes it


def fake_bundle(path, marker):
    """A directory `read_manifest` accepts, told apart by ``marker``."""
    path.mkdir(parents=True)
    (path / "nlpkit.json").write_text(json.dumps({"format_version": 1, "task": "x", "marker": marker}))
    return path


def test_swap_exchanges_the_directories_in_one_step(tmp_path, monkeypatch):
    output, staging = fake_bundle(tmp_path / "bundle", "old"), fake_bundle(tmp_path / ".bundle.staging-1", "new")
    renames = []
    monkeypatch.setattr(os, "replace", lambda *args: renames.append(args))
    bundle_module._swap_into_place(staging, output)
    assert read_manifest(output)["marker"] == "new"
    assert renames == []  # no moment without a bundle at the path: renameat2 swapped both
    assert leftovers(tmp_path) == []


def test_an_interrupted_two_rename_swap_is_restored_by_the_next_load(tmp_path):
    # What a kill between the two renames leaves: the old bundle aside, nothing at the path.
    fake_bundle(tmp_path / ".bundle.previous-999999", "old")
    assert read_manifest(tmp_path / "bundle")["marker"] == "old"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bundle"]


def test_a_running_exports_swap_gap_is_left_to_it(tmp_path):
    from nlpkit.errors import BundleError

    # The parent process stands in for an export between its two renames.
    fake_bundle(tmp_path / f".bundle.previous-{os.getppid()}", "old")
    with pytest.raises(BundleError, match="not a directory"):
        read_manifest(tmp_path / "bundle")
    assert leftovers(tmp_path) == [f".bundle.previous-{os.getppid()}"]


def test_an_interrupted_swap_is_restored_and_stale_folders_removed_by_the_next_export(sentiment_bundle, tmp_path):
    output = tmp_path / "bundle"
    fake_bundle(tmp_path / ".bundle.previous-999999", "old")
    (tmp_path / ".bundle.staging-999998").mkdir()  # a killed export's half-written bundle
    (tmp_path / ".bundle.staging-999998" / "model.keras").write_bytes(b"partial")
    alive = tmp_path / f".bundle.staging-{os.getppid()}"  # a running export (the parent process)
    alive.mkdir()
    parts = load_parts(sentiment_bundle)
    write_bundle(output, task="classification", label_names=["negative", "positive"], int8=False, **parts)
    assert read_manifest(output)["task"] == "classification"
    assert leftovers(tmp_path) == [alive.name]


def test_a_model_with_a_non_finite_weight_is_not_exported(bundle_copy, snapshot_tree):
    from nlpkit.export import ExportCheckError

    parts = load_parts(bundle_copy)
    weight = parts["model"].weights[0]
    values = weight.numpy()
    values.flat[3] = np.nan
    weight.assign(values)
    before = snapshot_tree(bundle_copy)
    with pytest.raises(ExportCheckError, match=r"non-finite value\(s\).*nothing was exported"):
        write_bundle(bundle_copy, task="classification", label_names=["negative", "positive"], **parts)
    assert snapshot_tree(bundle_copy) == before
    assert leftovers(bundle_copy.parent) == []


@pytest.mark.parametrize(
    "report, message",
    [
        ({"max_abs_diff": {"tflite": float("nan")}}, r"parity max_abs_diff.tflite is nan"),
        ({"max_abs_diff": {"tflite": 0.0}, "repeat_identical": {"tflite": False}}, r"repeat_identical.tflite is false"),
    ],
)
def test_a_failed_parity_check_keeps_the_old_bundle(bundle_copy, snapshot_tree, report, message):
    from nlpkit.export import ExportCheckError

    parts = load_parts(bundle_copy)
    before = snapshot_tree(bundle_copy)
    staged = []

    def parity(path):
        staged.append(read_manifest(path)["task"])  # runs on the finished, not yet visible bundle
        return report

    with pytest.raises(ExportCheckError, match=message):
        write_bundle(bundle_copy, task="classification", label_names=["negative", "positive"], int8=False,
                     parity=parity, **parts)
    assert staged == ["classification"]
    assert snapshot_tree(bundle_copy) == before
    assert leftovers(bundle_copy.parent) == []


def test_the_parity_report_is_stored_before_the_swap(sentiment_bundle, tmp_path):
    parts = load_parts(sentiment_bundle)
    output = write_bundle(tmp_path / "b", task="classification", label_names=["negative", "positive"],
                          int8=False, parity=lambda path: {"checked": str(path.name)}, **parts)
    assert read_manifest(output)["parity"] == {"checked": ".b.staging-%d" % os.getpid()}


def test_a_non_finite_metric_is_refused_by_name(sentiment_bundle, tmp_path):
    from nlpkit.export import ExportCheckError

    parts = load_parts(sentiment_bundle)
    with pytest.raises(ExportCheckError, match=r"field metrics.valid.loss is nan"):
        write_bundle(tmp_path / "b", task="classification", label_names=["negative", "positive"], int8=False,
                     metadata={"metrics": {"valid": {"loss": float("nan")}}}, **parts)
    assert not (tmp_path / "b").exists() and leftovers(tmp_path) == []


def test_the_staged_bundle_is_flushed_to_disk_before_the_swap(sentiment_bundle, tmp_path, monkeypatch):
    synced, swapped = [], []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda descriptor: (synced.append(descriptor), real_fsync(descriptor)))
    real_swap = bundle_module._swap_into_place
    monkeypatch.setattr(bundle_module, "_swap_into_place", lambda *args: (swapped.append(len(synced)), real_swap(*args)))
    parts = load_parts(sentiment_bundle)
    write_bundle(tmp_path / "b", task="classification", label_names=["negative", "positive"], int8=False, **parts)
    files = sum(len(names) for _, _, names in os.walk(tmp_path / "b"))
    assert swapped and swapped[0] >= files  # every file (and its folders) before the rename


# ---------------------------------------------------------------------------------------------
# update_manifest
# ---------------------------------------------------------------------------------------------


def test_update_manifest_adds_and_replaces_fields(sentiment_bundle, tmp_path):
    (tmp_path / "nlpkit.json").write_text((sentiment_bundle / "nlpkit.json").read_text())
    original = read_manifest(tmp_path)

    returned = update_manifest(tmp_path, parity={"num_texts": 3}, notes="checked by hand")

    on_disk = json.loads((tmp_path / "nlpkit.json").read_text())
    assert returned == on_disk
    assert on_disk["parity"] == {"num_texts": 3}
    assert on_disk["notes"] == "checked by hand"
    assert {key: value for key, value in on_disk.items() if key not in ("parity", "notes")} == {
        key: value for key, value in original.items() if key != "parity"
    }
    assert sorted(path.name for path in tmp_path.iterdir()) == ["nlpkit.json"]
    assert read_manifest(tmp_path, task="classification")["notes"] == "checked by hand"


def test_update_manifest_of_a_missing_bundle_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="nlpkit.json"):
        update_manifest(tmp_path / "absent", parity={})


def test_library_versions_names_the_stack():
    import nlpkit

    versions = library_versions()
    assert set(versions) == {"nlpkit", "tensorflow", "keras", "python"}
    assert versions["nlpkit"] == nlpkit.__version__
