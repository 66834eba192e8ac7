"""Tests for nlpkit.manifest and nlpkit.lite (runtime and predictors).

The predictors run the session's tiny sentiment bundle (see conftest.py); the manifest tests
write their own broken bundles into tmp_path.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from nlpkit.errors import BundleError, NlpkitError
from nlpkit.lite import ClassPrediction, TextClassifierPredictor, load_signature_runner
from nlpkit.manifest import BUNDLE_FORMAT_VERSION, MANIFEST_FILE, bundle_file, read_manifest

EDGE_TEXTS = ["", "   \t  ", "\n", "qwertyuiop", "Ein großartiger Film! 🎬"]


@pytest.fixture(scope="module")
def predictor(sentiment_bundle):
    return TextClassifierPredictor(sentiment_bundle)


@pytest.fixture(scope="module")
def keras_scores(sentiment_bundle):
    """A function: texts -> the Keras model's scores, tokenized by the bundle's twin."""
    from nlpkit.models import load_keras_model
    from nlpkit.text import load_tokenizer

    model = load_keras_model(sentiment_bundle / "model.keras")
    tokenizer = load_tokenizer(sentiment_bundle / "assets")

    def score(texts):
        ids = [tokenizer.encode(text) or [0] for text in texts]
        batch = np.zeros((len(ids), max(map(len, ids))), np.int32)
        for row, sequence in enumerate(ids):
            batch[row, : len(sequence)] = sequence
        return model.predict_on_batch(batch)

    return score


def write_manifest(directory, manifest):
    directory.mkdir(parents=True, exist_ok=True)
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    (directory / MANIFEST_FILE).write_text(text)
    return directory


# ---------------------------------------------------------------------------------------------
# TextClassifierPredictor
# ---------------------------------------------------------------------------------------------


def test_predictions_match_the_keras_model(predictor, keras_scores, sample_test_texts):
    texts = sample_test_texts + EDGE_TEXTS
    expected = keras_scores(texts)
    predictions = predictor.predict(texts)
    assert len(predictions) == len(texts)
    assert [p.label for p in predictions] == [predictor.labels[i] for i in expected.argmax(-1)]
    got = np.array([[p.scores[label] for label in predictor.labels] for p in predictions])
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_prediction_holds_a_label_and_scores_summing_to_one(predictor):
    (prediction,) = predictor.predict("A gripping, beautifully acted film.")
    assert isinstance(prediction, ClassPrediction)
    assert list(prediction.scores) == ["negative", "positive"] == predictor.labels
    assert prediction.label == max(prediction.scores, key=prediction.scores.get)
    assert sum(prediction.scores.values()) == pytest.approx(1.0, abs=1e-5)
    assert all(isinstance(value, float) for value in prediction.scores.values())


def test_scores_returns_a_float32_vector(predictor):
    scores = predictor.scores("what a film")
    assert scores.shape == (2,) and scores.dtype == np.float32
    assert float(scores.sum()) == pytest.approx(1.0, abs=1e-5)


def test_empty_and_whitespace_texts_are_classified_alike(predictor):
    predictions = predictor.predict(["", "   ", "\t\n", "\u3000"])
    assert len({p.label for p in predictions}) == 1
    for prediction in predictions:
        assert prediction.scores == predictions[0].scores


def test_long_text_is_truncated_to_max_length(predictor, long_text):
    max_length = predictor.tokenizer.max_length
    assert len(long_text.split()) > 10 * max_length
    truncated = " ".join(long_text.split()[:max_length])
    (long, short) = predictor.predict([long_text, truncated])
    assert long == short


def test_bytes_with_invalid_utf8_are_decoded_with_replacement(predictor):
    raw = b"a gripping \xff\xfe film \xc3"
    (from_bytes,) = predictor.predict(raw)
    (from_text,) = predictor.predict(raw.decode("utf-8", "replace"))
    assert from_bytes == from_text
    assert predictor.predict([raw, b"fine"])[0] == from_bytes


def test_no_texts_no_predictions(predictor):
    assert predictor.predict([]) == []


def test_int8_precision(sentiment_bundle, predictor, sample_test_texts):
    quantized = TextClassifierPredictor(sentiment_bundle, precision="int8", num_threads=2)
    float_labels = [p.label for p in predictor.predict(sample_test_texts)]
    int8_predictions = quantized.predict(sample_test_texts + EDGE_TEXTS)
    for prediction in int8_predictions:
        assert sum(prediction.scores.values()) == pytest.approx(1.0, abs=1e-4)
    agreement = np.mean([a == b.label for a, b in zip(float_labels, int8_predictions)])
    print(f"int8 label agreement with float32: {agreement:.3f}")
    assert agreement >= 0.9


def test_unknown_precision_is_rejected_by_name(sentiment_bundle):
    with pytest.raises(ValueError, match="'int4'"):
        TextClassifierPredictor(sentiment_bundle, precision="int4")


def test_predictor_needs_the_listed_tflite_file(sentiment_bundle, tmp_path):
    bundle = tmp_path / "no_tflite"
    shutil.copytree(sentiment_bundle / "assets", bundle / "assets")
    shutil.copy(sentiment_bundle / MANIFEST_FILE, bundle / MANIFEST_FILE)
    with pytest.raises(BundleError, match="model.tflite is listed in nlpkit.json but missing"):
        TextClassifierPredictor(bundle)


def test_load_signature_runner_names_the_available_signatures(sentiment_bundle):
    runner = load_signature_runner(sentiment_bundle / "model.tflite", "classify")
    scores = runner(token_ids=np.array([[5, 6, 7]], np.int32))["scores"]
    assert scores.shape == (1, 2)
    with pytest.raises(KeyError, match=r"no signature 'tag'.*\['classify'\]"):
        load_signature_runner(sentiment_bundle / "model.tflite", "tag")


# ---------------------------------------------------------------------------------------------
# read_manifest / bundle_file
# ---------------------------------------------------------------------------------------------


def test_read_manifest_of_a_missing_directory(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(BundleError, match="nowhere: not a directory"):
        read_manifest(missing)


def test_read_manifest_of_a_file_instead_of_a_directory(tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(b"")
    with pytest.raises(BundleError, match="not a directory"):
        read_manifest(path)


def test_read_manifest_without_nlpkit_json(tmp_path):
    with pytest.raises(BundleError, match="no nlpkit.json; is this an nlpkit bundle"):
        read_manifest(tmp_path)


@pytest.mark.parametrize("content", ["{not json", "", "\xff"])
def test_read_manifest_with_bad_json(tmp_path, content):
    write_manifest(tmp_path, content)
    with pytest.raises(BundleError, match="nlpkit.json: not valid JSON"):
        read_manifest(tmp_path)


def test_read_manifest_with_invalid_utf8(tmp_path):
    (tmp_path / MANIFEST_FILE).write_bytes(b'{"task": "\xff"}')
    with pytest.raises(BundleError, match="not valid JSON"):
        read_manifest(tmp_path)


def test_read_manifest_of_a_newer_format(tmp_path):
    write_manifest(tmp_path, {"format_version": BUNDLE_FORMAT_VERSION + 1, "task": "classification"})
    with pytest.raises(BundleError, match=rf"format_version {BUNDLE_FORMAT_VERSION + 1} is not supported"):
        read_manifest(tmp_path)


@pytest.mark.parametrize("manifest", [{"task": "classification"}, {"format_version": "1"}])
def test_read_manifest_without_an_integer_format_version(tmp_path, manifest):
    write_manifest(tmp_path, manifest)
    with pytest.raises(BundleError, match="format_version"):
        read_manifest(tmp_path)


@pytest.mark.parametrize("content", ["[1, 2]", '"classification"', "null"])
def test_read_manifest_that_is_not_an_object(tmp_path, content):
    write_manifest(tmp_path, content)
    with pytest.raises(BundleError, match="nlpkit.json: expected a JSON object"):
        read_manifest(tmp_path)


def test_read_manifest_of_another_task(tmp_path):
    write_manifest(tmp_path, {"format_version": 1, "task": "tagging"})
    assert read_manifest(tmp_path)["task"] == "tagging"
    with pytest.raises(BundleError, match="task is 'tagging', expected 'classification'"):
        read_manifest(tmp_path, task="classification")


def test_bundle_errors_are_nlpkit_errors(tmp_path):
    with pytest.raises(NlpkitError):
        read_manifest(tmp_path)


def test_bundle_file_checks_the_manifest_and_the_disk(tmp_path):
    manifest = {"format_version": 1, "files": {"tflite": "model.tflite"}}
    with pytest.raises(BundleError, match="has no 'keras' file"):
        bundle_file(tmp_path, manifest, "keras")
    with pytest.raises(BundleError, match="model.tflite is listed in nlpkit.json but missing"):
        bundle_file(tmp_path, manifest, "tflite")
    (tmp_path / "model.tflite").write_bytes(b"")
    assert bundle_file(tmp_path, manifest, "tflite") == tmp_path / "model.tflite"
    with pytest.raises(BundleError, match="has no 'tflite' file"):
        bundle_file(tmp_path, {"format_version": 1}, "tflite")


# ---------------------------------------------------------------------------------------------
# No TensorFlow on the device side
# ---------------------------------------------------------------------------------------------


def test_lite_prediction_does_not_import_tensorflow(sentiment_bundle):
    script = textwrap.dedent(
        """
        import sys

        import nlpkit.lite
        from nlpkit.serving import load_predictor

        predictor = nlpkit.lite.TextClassifierPredictor(sys.argv[1])
        labels = [p.label for p in predictor.predict(["a gripping film", "", b"bad \\xff"])]
        labels += [p.label for p in load_predictor(sys.argv[1], precision="int8").predict(["dull"])]
        heavy = sorted(name for name in ("tensorflow", "keras", "tf_keras") if name in sys.modules)
        assert "tensorflow" not in sys.modules, heavy
        assert not heavy, heavy
        print(" ".join(labels))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(sentiment_bundle)],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.split()) == 4
    assert set(result.stdout.split()) <= {"negative", "positive"}
