"""The ``web`` export target: every file loads and runs in LiteRT.js (@litertjs/core 2.5.x) under Node.

The classifier (nlpkit GRU) and the tagger (BiLSTM + CRF, whose ``litert`` file fuses the LSTM
into ops with variable tensors) are the session's tiny trained bundles (conftest.py),
reloaded from their ``model.keras``. Each web file is checked in LiteRT.js against
``ai_edge_litert`` on the same file (1e-4), against the bundle's dynamic-length
``model.tflite`` on real sample texts right-padded to their bucket, and in tflite-runtime
2.14. `tests/runtimes.py` drives Node (``web/tools/run_tflite.mjs``).
"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from nlpkit.export.targets import (
    WEB_FILE,
    WEB_INT8_FILE,
    WebTargetError,
    bucket_endpoints,
    check_web_file,
    fixed_length_endpoints,
    variable_tensors,
    web_lengths,
    web_target_files,
)
from nlpkit.export.tflite import count_ops
from nlpkit.layers.fused_lstm import FUSED_OP
from nlpkit.lite import SequenceTaggerPredictor, TextClassifierPredictor
from nlpkit.models import load_keras_model
from tests.runtimes import (
    every_signature_matches_in_litertjs,
    every_signature_matches_in_tflite214,
    litert_outputs,
    litertjs_outputs,
)

pytestmark = pytest.mark.slow

LENGTHS = (16, 32)  # two buckets keep the conversions short; the layout is the same for five


def write_web_bundle(directory, files):
    """The files and a ``nlpkit.json`` listing them, as `tests.runtimes.bundle_tflite_files` reads it."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, content, _ in files:
        (directory / name).write_bytes(content)
    (directory / "nlpkit.json").write_text(json.dumps({"tflite_files": {name: info for name, _, info in files}}))
    return directory


def pad(ids, length):
    ids = list(ids)[:length]
    return np.asarray([ids + [0] * (length - len(ids))], np.int32)


def bucket_of(count, lengths=LENGTHS):
    return next(length for length in lengths if length >= count)


@pytest.fixture(scope="module")
def classifier_web(sentiment_bundle, tmp_path_factory):
    model = load_keras_model(sentiment_bundle / "model.keras")
    files = web_target_files(model, model.tflite_endpoints(), lengths=LENGTHS, int8=True)
    return write_web_bundle(tmp_path_factory.mktemp("classifier_web"), files), files


@pytest.fixture(scope="module")
def tagger_web(ner_bundle, tmp_path_factory):
    model = load_keras_model(ner_bundle / "model.keras")
    max_word_length = SequenceTaggerPredictor(ner_bundle).tokenizer.max_word_length
    files = web_target_files(model, model.tflite_endpoints(), lengths=LENGTHS, int8=True, inner_length=max_word_length)
    return write_web_bundle(tmp_path_factory.mktemp("tagger_web"), files), files


def test_dynamic_dimensions_become_bucket_lengths_and_fixed_signatures_stay():
    identity = lambda *args: args  # noqa: E731
    endpoints = {
        "tag": (identity, [tf.TensorSpec([1, None], tf.int32, name="word_ids"),
                           tf.TensorSpec([1, None, None], tf.int32, name="char_ids")]),
        "step": (identity, [tf.TensorSpec([1], tf.int32, name="token_id"),
                            tf.TensorSpec([1, 8], tf.float32, name="state")]),
    }
    fixed = fixed_length_endpoints(endpoints, 16, inner_length=20)
    assert [spec.shape.as_list() for spec in fixed["tag"][1]] == [[1, 16], [1, 16, 20]]
    assert [spec.name for spec in fixed["tag"][1]] == ["word_ids", "char_ids"]
    assert fixed["step"][1] == endpoints["step"][1]
    web, buckets = bucket_endpoints(endpoints, (16, 32))
    assert sorted(web) == ["step", "tag_16", "tag_32"]
    assert buckets == {"tag": {"16": "tag_16", "32": "tag_32"}}
    assert web["tag_32"][1][1].shape.as_list() == [1, 32, 32]
    assert web_lengths(100) == (16, 32, 64, 128) and web_lengths(256) == web_lengths() == (16, 32, 64, 128, 256)
    assert web_lengths(10) == (16,)
    with pytest.raises(ValueError, match="increasing"):
        web_target_files(None, endpoints, lengths=(32, 16))


def test_classifier_web_files_match_litert_in_litertjs_and_are_listed(classifier_web):
    directory, files = classifier_web
    assert [name for name, _, _ in files] == [WEB_FILE, WEB_INT8_FILE]
    for name, content, info in files:
        assert info["target"] == "web" and info["lengths"] == list(LENGTHS)
        assert info["signatures"] == ["classify_16", "classify_32"]
        assert info["buckets"] == {"classify": {"16": "classify_16", "32": "classify_32"}}
        assert info["quantization"] == ("dynamic_range" if "int8" in name else "float32")
        assert tuple(map(int, info["min_runtime_version"].split("."))) <= (2, 14, 0), info
        assert variable_tensors(content) == []
        every_signature_matches_in_litertjs(directory / name)


def test_padded_to_bucket_scores_equal_the_dynamic_file(classifier_web, sentiment_bundle, sample_test_texts):
    directory, _ = classifier_web
    tokenizer = TextClassifierPredictor(sentiment_bundle).tokenizer
    encoded = [tokenizer.encode(text) for text in sample_test_texts[:24]]
    encoded = [ids for ids in encoded if 0 < len(ids) <= LENGTHS[-1]] + [[5] * LENGTHS[-1]]
    assert any(len(ids) > LENGTHS[0] for ids in encoded) and any(len(ids) <= 6 for ids in encoded)
    dynamic = litert_outputs([{"file": sentiment_bundle / "model.tflite", "signature": "classify",
                               "inputs": {"token_ids": np.asarray([ids], np.int32)}} for ids in encoded])
    for name in (WEB_FILE, WEB_INT8_FILE):
        calls = [{"file": directory / name, "signature": f"classify_{bucket_of(len(ids))}",
                  "inputs": {"token_ids": pad(ids, bucket_of(len(ids)))}} for ids in encoded]
        web = litertjs_outputs(calls)
        for ids, mine, theirs in zip(encoded, web, dynamic):
            if name == WEB_FILE:
                np.testing.assert_allclose(mine["scores"], theirs["scores"], atol=1e-4, rtol=0, err_msg=str(ids))
            else:  # int8 weights: close to float32, not equal
                np.testing.assert_allclose(mine["scores"], theirs["scores"], atol=0.05, rtol=0, err_msg=str(ids))


def test_tagger_web_file_has_no_variable_tensors_where_the_litert_file_fuses_its_lstm(tagger_web, ner_bundle):
    _, files = tagger_web
    litert_file = (ner_bundle / "model.tflite").read_bytes()
    assert count_ops(litert_file, FUSED_OP) > 0 and variable_tensors(litert_file), "the litert file no longer fuses"
    with pytest.raises(WebTargetError, match="variable tensor"):
        check_web_file(litert_file, "model.tflite")
    for name, content, info in files:
        assert count_ops(content, FUSED_OP) == 0 and count_ops(content, "WHILE") > 0
        assert variable_tensors(content) == [] and check_web_file(content, name) is content
        assert info["signatures"] == ["tag_16", "tag_32"] and info["inner_length"] >= 1


def test_litertjs_refuses_what_the_web_target_avoids(ner_bundle, sentiment_bundle):
    """The two LiteRT.js facts the target is built around, with the errors run_tflite.mjs prints."""
    word_ids = np.asarray([[3, 4, 5]], np.int32)
    with pytest.raises(AssertionError, match="Variable tensors not yet supported"):
        litertjs_outputs([{"file": ner_bundle / "model.tflite", "signature": "tag",
                           "inputs": {"word_ids": word_ids, "char_ids": np.ones((1, 3, 4), np.int32)}}])
    with pytest.raises(AssertionError, match=r"does not run in LiteRT.js.*Int32\[1, -1\]"):
        litertjs_outputs([{"file": sentiment_bundle / "model.tflite", "signature": "classify",
                           "inputs": {"token_ids": word_ids}}])
    with pytest.raises(WebTargetError, match="dynamic input dimensions"):
        check_web_file((sentiment_bundle / "model.tflite").read_bytes(), "model.tflite")


def test_tagger_web_files_tag_padded_sentences_like_the_dynamic_file(tagger_web, ner_bundle, ner_test_sentences):
    directory, files = tagger_web
    inner = files[0][2]["inner_length"]
    tokenizer = SequenceTaggerPredictor(ner_bundle).tokenizer
    sentences = [list(s.tokens) for s in ner_test_sentences[:20] if 0 < len(s.tokens) <= LENGTHS[-1]]
    dynamic_calls, web_calls = [], {WEB_FILE: [], WEB_INT8_FILE: []}
    for tokens in sentences:
        word_ids, char_ids = tokenizer.encode_tokens(tokens)
        width = max(map(len, char_ids)) or 1
        chars = np.zeros((1, len(tokens), width), np.int32)
        for position, ids in enumerate(char_ids):
            chars[0, position, : len(ids)] = ids
        dynamic_calls.append({"file": ner_bundle / "model.tflite", "signature": "tag",
                              "inputs": {"word_ids": np.asarray([word_ids], np.int32), "char_ids": chars}})
        bucket = bucket_of(len(tokens))
        padded_chars = np.zeros((1, bucket, inner), np.int32)
        padded_chars[:, : len(tokens), :width] = chars[:, :, :inner]
        for name in web_calls:
            web_calls[name].append({"file": directory / name, "signature": f"tag_{bucket}",
                                    "inputs": {"word_ids": pad(word_ids, bucket), "char_ids": padded_chars}})
    dynamic = litert_outputs(dynamic_calls)
    for name, calls in web_calls.items():
        web = litertjs_outputs(calls)
        assert_agreement = np.testing.assert_array_equal if name == WEB_FILE else None
        agree = 0
        for tokens, mine, theirs in zip(sentences, web, dynamic):
            mine = mine["tags"][0, : len(tokens)]
            if assert_agreement:
                assert_agreement(mine, theirs["tags"][0], err_msg=" ".join(tokens))
                assert not mine[len(tokens):].any()
            agree += int((mine == theirs["tags"][0]).all())
        assert agree >= 0.9 * len(sentences), (name, agree, len(sentences))
        # The web signatures themselves, on any well-formed input, against LiteRT on the same file.
        every_signature_matches_in_litertjs(directory / name, seeds=(0,))


def test_web_files_load_in_tflite_runtime_2_14(classifier_web, tagger_web):
    for directory, _ in (classifier_web, tagger_web):
        every_signature_matches_in_tflite214(directory)


def test_streaming_signatures_keep_their_fixed_shapes_and_run_in_litertjs(tmp_path):
    from nlpkit.models import LanguageModel, Seq2Seq

    keras.utils.set_random_seed(0)
    language_model = LanguageModel(30, embedding_dim=4, units=6, num_layers=2, cell="lstm")
    language_model(np.zeros((1, 3), "int32"))
    files = web_target_files(language_model, language_model.tflite_endpoints(), int8=False)
    (name, content, info), = files
    assert name == WEB_FILE and info["signatures"] == ["step"] and info["lengths"] == [] and info["buckets"] == {}
    (tmp_path / name).write_bytes(content)
    every_signature_matches_in_litertjs(tmp_path / name, seeds=(0, 1))

    translation = Seq2Seq(40, 40, embedding_dim=8, units=8, cell="gru", attention="luong", seed=1)
    translation({"source_ids": np.ones((1, 4), np.int32), "decoder_input_ids": np.ones((1, 3), np.int32)})
    (name, content, info), = web_target_files(translation, translation.tflite_endpoints(), lengths=(16,), int8=False)
    assert info["signatures"] == ["decode_step_16", "encode_16"]
    (tmp_path / "translation").mkdir()
    path = tmp_path / "translation" / name
    path.write_bytes(content)
    every_signature_matches_in_litertjs(path, seeds=(0,))
