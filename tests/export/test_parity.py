"""Tests for nlpkit.export.parity.classifier_parity on the session's tiny sentiment bundle."""

import json

import pytest

from nlpkit.errors import BundleError
from nlpkit.export import classifier_parity, update_manifest

FORMS = ("saved_model", "tflite", "tflite_int8")


@pytest.fixture(scope="module")
def parity_report(sentiment_bundle, sample_test_texts, long_text):
    # Edge cases ride along with the real sentences: no tokens, whitespace only, a text far
    # beyond max_length, unknown words only, and non-ASCII text.
    texts = sample_test_texts + ["", "  \t \u00a0 ", long_text, "qwertyuiop asdfghjkl", "Ein großartiger Film! 🎬"]
    report = classifier_parity(sentiment_bundle, texts)
    print(json.dumps(report, indent=1))
    return report, texts


def test_every_form_matches_keras(parity_report):
    report, texts = parity_report
    assert report["num_texts"] == len(texts)
    assert set(report["max_abs_diff"]) == set(FORMS)
    assert set(report["label_agreement"]) == set(FORMS)
    for form in ("saved_model", "tflite"):
        assert report["max_abs_diff"][form] <= 1e-4, form
        assert report["label_agreement"][form] == 1.0, form


def test_tflite_files_keep_no_state_between_calls(parity_report):
    report, _ = parity_report
    assert report["repeat_identical"] == {"tflite": True, "tflite_int8": True}


def test_int8_agreement_is_reported(parity_report):
    report, _ = parity_report
    assert 0.0 <= report["label_agreement"]["tflite_int8"] <= 1.0
    # Quantized weights move the scores a little, never wildly.
    assert report["max_abs_diff"]["tflite_int8"] < 0.1


def test_recipe_stored_its_parity_report(sentiment_bundle):
    stored = json.loads((sentiment_bundle / "nlpkit.json").read_text())["parity"]
    assert stored["num_texts"] == 60
    assert stored["max_abs_diff"]["tflite"] <= 1e-4
    assert stored["label_agreement"]["saved_model"] == 1.0
    assert stored["repeat_identical"]["tflite"] is True


def test_no_texts_gives_an_empty_report(sentiment_bundle):
    report = classifier_parity(sentiment_bundle, [])
    assert report["num_texts"] == 0
    assert report["max_abs_diff"] == {form: 0.0 for form in FORMS}
    assert report["label_agreement"] == {form: 1.0 for form in FORMS}


def test_bundle_without_int8_reports_float_forms_only(bundle_copy):
    files = json.loads((bundle_copy / "nlpkit.json").read_text())["files"]
    del files["tflite_int8"]
    update_manifest(bundle_copy, files=files)
    report = classifier_parity(bundle_copy, ["a joy to watch", "a chore to sit through"], batch_size=1)
    assert set(report["max_abs_diff"]) == {"saved_model", "tflite"}
    assert report["repeat_identical"] == {"tflite": True}


def test_a_bundle_of_another_task_is_refused(tmp_path):
    (tmp_path / "nlpkit.json").write_text(json.dumps({"format_version": 1, "task": "tagging"}))
    with pytest.raises(BundleError, match="'tagging'"):
        classifier_parity(tmp_path, ["text"])


# ---------------------------------------------------------------------------------------------
# tagger_parity (the session's tiny NER bundle)
# ---------------------------------------------------------------------------------------------


def test_tagger_parity_on_edge_cases(ner_bundle, ner_test_sentences):
    from nlpkit.export import tagger_parity

    long = [token for sentence in ner_test_sentences for token in sentence.tokens][:500]
    token_lists = [s.tokens for s in ner_test_sentences[:10]] + [[], long, ["Zyxw", "Ωmega", "😀", "1996-08-22"]]
    report = tagger_parity(ner_bundle, token_lists, batch_size=4)
    assert report["num_sentences"] == 13
    assert report["num_tokens"] == sum(len(tokens) for tokens in token_lists)
    assert set(report["sentence_agreement"]) == {"saved_model_tokens", "saved_model_text", "tflite", "tflite_int8"}
    for form in ("saved_model_tokens", "saved_model_text", "tflite"):
        assert report["sentence_agreement"][form] == report["token_agreement"][form] == 1.0, form
    assert report["repeat_identical"] == {"tflite": True, "tflite_int8": True}


def test_tagger_parity_without_sentences_and_on_a_classifier(ner_bundle, sentiment_bundle):
    from nlpkit.export import tagger_parity

    report = tagger_parity(ner_bundle, [])
    assert report["num_sentences"] == 0 and report["sentence_agreement"]["tflite"] == 1.0
    with pytest.raises(BundleError, match="expected 'tagging'"):
        tagger_parity(sentiment_bundle, [["Oslo"]])
