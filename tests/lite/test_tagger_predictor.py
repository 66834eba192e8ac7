"""nlpkit.lite.SequenceTaggerPredictor on the session's tiny NER bundle (see conftest.py)."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from nlpkit.errors import BundleError
from nlpkit.lite import Entity, SequenceTaggerPredictor, TagPrediction, tag_prediction
from nlpkit.serving import KerasTagger, SavedModelTagger, load_predictor
from nlpkit.text.tag_schemes import is_well_formed


@pytest.fixture(scope="module")
def predictor(ner_bundle):
    return SequenceTaggerPredictor(ner_bundle)


def test_tags_match_the_keras_model_and_the_saved_model(ner_bundle, predictor, ner_test_sentences):
    token_lists = [sentence.tokens for sentence in ner_test_sentences[:25]]
    lite = [p.tags for p in predictor.predict_tokens(token_lists)]
    assert lite == [p.tags for p in KerasTagger(ner_bundle).predict_tokens(token_lists)]
    saved = SavedModelTagger(ner_bundle)
    assert lite == [p.tags for p in saved.predict_tokens(token_lists)]
    assert lite == [p.tags for p in saved.predict([" ".join(tokens) for tokens in token_lists])]


def test_prediction_holds_tokens_tags_and_entities(predictor):
    (prediction,) = predictor.predict("Maria Keller , the chief executive of Helios Bank , flew to Oslo .")
    assert isinstance(prediction, TagPrediction)
    assert prediction.tokens[:2] == ["Maria", "Keller"] and len(prediction.tags) == len(prediction.tokens)
    assert is_well_formed(prediction.tags, "BIO")  # the bundle's output scheme
    for entity in prediction.entities:
        assert entity.text == " ".join(prediction.tokens[entity.start : entity.end])
    print(prediction.entities)
    assert Entity("PER", 0, 2, "Maria Keller") in prediction.entities


def test_ids_are_tags_of_the_model_scheme(predictor):
    ids = predictor.tag_ids(["Maria", "Keller", "flew"])
    assert ids.dtype == np.int32 and ids.shape == (3,)
    assert predictor.scheme == "BIOES" and predictor.output_scheme == "BIO"
    assert is_well_formed([predictor.tags[i] for i in ids], "BIOES")


def test_empty_text_and_whitespace(predictor):
    for text in ("", "  \t ", b""):
        (prediction,) = predictor.predict(text)
        assert prediction == TagPrediction(tokens=[], tags=[], entities=[])
    assert predictor.predict([]) == []
    assert predictor.predict_tokens([[]])[0].tags == []


def test_a_five_hundred_token_sentence(predictor, ner_test_sentences):
    tokens = [token for sentence in ner_test_sentences for token in sentence.tokens][:500]
    tags = predictor.tag_tokens(tokens)
    assert len(tags) == 500 and is_well_formed(tags, "BIO")


def test_invalid_utf8_bytes_are_replaced(predictor):
    (prediction,) = predictor.predict(b"Oslo \xff\xfe Bergen")
    assert prediction.tokens == ["Oslo", "\ufffd\ufffd", "Bergen"]


def test_int8_agrees_on_most_tags(ner_bundle, predictor, ner_test_sentences):
    quantized = SequenceTaggerPredictor(ner_bundle, precision="int8")
    token_lists = [sentence.tokens for sentence in ner_test_sentences]
    float_tags = [tag for tokens in token_lists for tag in predictor.tag_tokens(tokens)]
    int8_tags = [tag for tokens in token_lists for tag in quantized.tag_tokens(tokens)]
    assert np.mean([a == b for a, b in zip(float_tags, int8_tags)]) >= 0.95


def test_load_predictor_picks_the_tagger_classes(ner_bundle):
    assert isinstance(load_predictor(ner_bundle), SequenceTaggerPredictor)
    assert isinstance(load_predictor(ner_bundle, format="saved_model"), SavedModelTagger)
    with pytest.raises(ValueError, match="'onnx'"):
        load_predictor(ner_bundle, format="onnx")


def test_wrong_bundles_are_refused_by_name(ner_bundle_copy, sentiment_bundle):
    with pytest.raises(BundleError, match="'classification', expected 'tagging'"):
        SequenceTaggerPredictor(sentiment_bundle)
    with pytest.raises(ValueError, match="'fp16'"):
        SequenceTaggerPredictor(ner_bundle_copy, precision="fp16")
    (ner_bundle_copy / "model.int8.tflite").unlink()
    with pytest.raises(BundleError, match="model.int8.tflite is listed"):
        SequenceTaggerPredictor(ner_bundle_copy, precision="int8")
    manifest = json.loads((ner_bundle_copy / "nlpkit.json").read_text())
    spec = json.loads((ner_bundle_copy / "assets" / "tokenizer.json").read_text())
    spec["type"] = "word"
    (ner_bundle_copy / "assets" / "tokenizer.json").write_text(json.dumps(spec))
    with pytest.raises(BundleError, match="'tagging' tokenizer"):
        SequenceTaggerPredictor(ner_bundle_copy)
    assert manifest["task"] == "tagging"


def test_predict_tokens_wants_token_lists(predictor):
    with pytest.raises(TypeError, match="token lists"):
        predictor.predict_tokens(["Oslo", "Bergen"])


def test_tag_prediction_helper():
    prediction = tag_prediction(["Ann", "Lee", "in", "Oslo"], ["B-PER", "E-PER", "O", "S-LOC"], "BIOES")
    assert prediction.entities == [Entity("PER", 0, 2, "Ann Lee"), Entity("LOC", 3, 4, "Oslo")]


def test_tagging_does_not_import_tensorflow(ner_bundle):
    script = textwrap.dedent(
        """
        import sys

        import nlpkit.lite
        from nlpkit.serving import load_predictor

        predictor = nlpkit.lite.SequenceTaggerPredictor(sys.argv[1])
        tags = [p.tags for p in predictor.predict(["Maria Keller flew to Oslo .", "", b"bad \\xff"])]
        tags += [p.tags for p in load_predictor(sys.argv[1], precision="int8").predict(["Oslo"])]
        heavy = sorted(name for name in ("tensorflow", "keras", "tf_keras") if name in sys.modules)
        assert not heavy, heavy
        print(sum(len(t) for t in tags))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(ner_bundle)],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "9"
