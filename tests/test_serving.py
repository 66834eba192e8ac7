"""Tests for nlpkit.serving: the three exported forms of a bundle predict alike."""

import numpy as np
import pytest

from nlpkit.errors import BundleError
from nlpkit.lite import ClassPrediction, TextClassifierPredictor
from nlpkit.serving import FORMATS, KerasClassifier, SavedModelClassifier, load_predictor

EDGE_TEXTS = ["", "   ", "qwertyuiop", "Ein großartiger Film! 🎬"]


@pytest.fixture(scope="module")
def predictors(sentiment_bundle):
    return {form: load_predictor(sentiment_bundle, format=form) for form in FORMATS}


def scores_of(predictions, labels):
    return np.array([[p.scores[label] for label in labels] for p in predictions])


def test_load_predictor_picks_the_class_of_each_format(predictors):
    assert isinstance(predictors["tflite"], TextClassifierPredictor)
    assert isinstance(predictors["keras"], KerasClassifier)
    assert isinstance(predictors["saved_model"], SavedModelClassifier)


def test_all_formats_give_the_same_labels(predictors, sample_test_texts, long_text):
    texts = sample_test_texts + EDGE_TEXTS + [long_text]
    results = {form: predictor.predict(texts) for form, predictor in predictors.items()}
    labels = predictors["tflite"].labels
    reference = [p.label for p in results["keras"]]
    assert len(reference) == len(texts)
    for form, predictions in results.items():
        assert all(isinstance(p, ClassPrediction) for p in predictions), form
        assert [p.label for p in predictions] == reference, form
        np.testing.assert_allclose(
            scores_of(predictions, labels), scores_of(results["keras"], labels), atol=1e-4, err_msg=form
        )


def test_tensorflow_predictors_accept_single_texts_and_bytes(predictors):
    for form in ("keras", "saved_model"):
        predictor = predictors[form]
        (single,) = predictor.predict("a joy to watch")
        assert single == predictor.predict(["a joy to watch"])[0]
        (from_bytes,) = predictor.predict(b"a joy \xff to watch")
        assert from_bytes.label == predictor.predict(["a joy \ufffd to watch"])[0].label
        assert predictor.predict([]) == []


def test_int8_precision_is_passed_to_the_tflite_predictor(sentiment_bundle):
    texts = ["a fine film", "a dull film"]
    got = load_predictor(sentiment_bundle, precision="int8").predict(texts)
    assert got == TextClassifierPredictor(sentiment_bundle, precision="int8").predict(texts)
    float_scores = scores_of(TextClassifierPredictor(sentiment_bundle).predict(texts), ["negative", "positive"])
    # Quantized weights give slightly different scores: proof the int8 file was loaded.
    assert not np.array_equal(scores_of(got, ["negative", "positive"]), float_scores)


def test_unknown_format_is_rejected_by_name(sentiment_bundle):
    with pytest.raises(ValueError, match="'onnx'"):
        load_predictor(sentiment_bundle, format="onnx")


@pytest.mark.parametrize("form", FORMATS)
def test_every_format_refuses_a_non_bundle(tmp_path, form):
    with pytest.raises(BundleError, match="no nlpkit.json"):
        load_predictor(tmp_path, format=form)


def test_a_bundle_of_an_unknown_task_is_refused_by_name(bundle_copy):
    import json

    manifest_path = bundle_copy / "nlpkit.json"
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**manifest, "task": "speech_recognition"}))
    with pytest.raises(BundleError, match="'speech_recognition'.*known tasks"):
        load_predictor(bundle_copy)
