"""The ``mediapipe`` target against the real runtime: MediaPipe Tasks' TextClassifier in .venv-mediapipe.

A tiny classifier is trained by the sentiment recipe with the regex tokenizer, exported with
`mediapipe_classifier_file` and run by MediaPipe exactly as an app runs it (text in, scores and
labels out); MediaPipe must agree with nlpkit's own prediction. A second file whose "scores"
are its input ids turns MediaPipe into an oracle for its tokenizer, which the twin must match.
"""

import json

import numpy as np
import pytest
import tensorflow as tf

from nlpkit.export import tflite
from nlpkit.export.mediapipe import (
    LABELS_FILE,
    MEDIAPIPE_FILE,
    MEDIAPIPE_INT8_FILE,
    VOCAB_FILE,
    add_classifier_metadata,
    check_single_subgraph,
    choose_length,
    mediapipe_classifier_file,
    mediapipe_file_info,
    read_metadata_files,
)
from nlpkit.samples import sample_path
from nlpkit.text import PythonRegexTokenizer, PythonWordTokenizer, TextNormalizer, Vocabulary
from nlpkit.text.regex_tokenizer import REGEX_SPECIAL_TOKENS, UNKNOWN_TOKEN
from tests.runtimes import every_signature_matches_in_tflite214, run_in_mediapipe, run_in_mediapipe_venv

LENGTH = 32  # short, so the unrolled conversion stays fast; sample sentences are shorter or cut in both

SENTENCES = [
    "A gripping, beautifully acted film.",
    "The plot is a dull, lifeless mess.",
    "",
    "It's not bad at all -- in fact it's GREAT!",
    "Café naïve — “quoted” … 😀",
    "an\x00ything after a NUL is never read",
]


def sample_sentences():
    with open(sample_path("sentiment_test.tsv"), encoding="utf-8") as handle:
        return [line.split("\t")[0] for line in handle.read().splitlines()[1:]]


@pytest.fixture(scope="module")
def regex_classifier(tmp_path_factory):
    """``(model, tokenizer, labels, directory with both mediapipe files)`` of a tiny regex-tokenizer classifier."""
    import keras

    from nlpkit.text import load_tokenizer
    from recipes import sentiment_gru

    root = tmp_path_factory.mktemp("mediapipe")
    config = sentiment_gru.Config(tokenizer="regex", epochs=3, units=16, embedding_dim=16, batch_size=16,
                                  learning_rate=0.01, parity_texts=20, int8=False, output_dir=str(root / "bundle"))
    bundle = sentiment_gru.train(config)
    model = keras.models.load_model(bundle / "model.keras")
    tokenizer = load_tokenizer(bundle / "assets")
    labels = json.loads((bundle / "nlpkit.json").read_text())["labels"]
    files = root / "files"
    files.mkdir()
    listing = {}
    for name, quantization in ((MEDIAPIPE_FILE, None), (MEDIAPIPE_INT8_FILE, "dynamic_range")):
        content = mediapipe_classifier_file(model, tokenizer, labels, length=LENGTH, quantization=quantization)
        (files / name).write_bytes(content)
        listing[name] = mediapipe_file_info(content, quantization)
    # The nlpkit.json entries write_bundle lists, so the bundle helpers of tests/runtimes.py read them.
    (files / "nlpkit.json").write_text(json.dumps({"tflite_files": listing}))
    return model, tokenizer, labels, files


def keras_scores(model, tokenizer, texts):
    """nlpkit's own prediction on the ids MediaPipe feeds: the twin's ids cut to LENGTH, padded."""
    rows = np.array([tokenizer.encode_padded(text, LENGTH) for text in texts], np.int32)
    return model(rows, training=False).numpy()


def test_file_is_what_mediapipe_loads(regex_classifier):
    _, tokenizer, labels, files = regex_classifier
    content = (files / MEDIAPIPE_FILE).read_bytes()
    check_single_subgraph(content, length=LENGTH, num_classes=len(labels))
    assert tflite.count_ops(content, "WHILE") == 0
    assert tflite.audit_ops(content).builtin_only
    packed = read_metadata_files(content)
    assert packed[VOCAB_FILE].decode() == tokenizer.vocab_file_text()
    assert packed[LABELS_FILE].decode().splitlines() == labels
    info = json.loads((files / "nlpkit.json").read_text())["tflite_files"]
    assert info[MEDIAPIPE_FILE]["target"] == "mediapipe" and info[MEDIAPIPE_FILE]["signatures"] == ["classify"]
    assert info[MEDIAPIPE_FILE]["length"] == LENGTH and info[MEDIAPIPE_INT8_FILE]["quantization"] == "dynamic_range"


def test_mediapipe_agrees_with_nlpkit(regex_classifier):
    model, tokenizer, labels, files = regex_classifier
    texts = SENTENCES + sample_sentences()
    report = run_in_mediapipe([files / MEDIAPIPE_FILE, files / MEDIAPIPE_INT8_FILE], texts, metadata=True)
    ours = keras_scores(model, tokenizer, texts)
    float_run = report["files"][str(files / MEDIAPIPE_FILE)]
    assert float_run["labels"][0] == labels
    np.testing.assert_allclose(float_run["scores"], ours, atol=1e-4, rtol=0)
    assert (float_run["scores"].argmax(1) == ours.argmax(1)).all()
    # int8 weights move scores a little; labels must hold wherever the float model is not torn.
    int8_scores = report["files"][str(files / MEDIAPIPE_INT8_FILE)]["scores"]
    np.testing.assert_allclose(int8_scores, ours, atol=0.05, rtol=0)
    clear = np.abs(ours[:, 1] - ours[:, 0]) > 0.1
    assert (int8_scores.argmax(1) == ours.argmax(1))[clear].all()
    # tflite-support's reader sees a RegexTokenizer with our pattern and the labels file.
    metadata = report["metadata"][str(files / MEDIAPIPE_FILE)]
    unit = metadata["subgraph_metadata"][0]["input_tensor_metadata"][0]["process_units"][0]
    assert unit["options_type"] == "RegexTokenizerOptions"
    assert unit["options"]["delim_regex_pattern"] == tokenizer.delimiter_pattern
    output = metadata["subgraph_metadata"][0]["output_tensor_metadata"][0]
    assert output["associated_files"][0] == {
        "name": LABELS_FILE, "description": "Labels for categories that the model can recognize.",
        "type": "TENSOR_AXIS_LABELS"}


# Writes the same model's metadata with tflite-support's own writer and prints both as its
# displayer reads them, so the test can compare every field but the free-text ones.
_REFERENCE_SCRIPT = r"""
import json, sys, os, tempfile
from tflite_support import metadata
from tflite_support.metadata_writers import metadata_info, nl_classifier
request = json.load(sys.stdin)
ours = open(request["file"], "rb").read()
displayer = metadata.MetadataDisplayer.with_model_buffer(ours)
files = {name: displayer.get_associated_file_buffer(name) for name in displayer.get_packed_associated_file_list()}
directory = tempfile.mkdtemp()
for name, data in files.items():
    open(os.path.join(directory, name), "wb").write(data)
raw = open(request["raw"], "rb").read()
writer = nl_classifier.MetadataWriter.create_for_inference(
    raw, metadata_info.RegexTokenizerMd(request["pattern"], os.path.join(directory, "vocab.txt")),
    [os.path.join(directory, "labels.txt")])
reference = metadata.MetadataDisplayer.with_model_buffer(writer.populate())
json.dump({"ours": json.loads(displayer.get_metadata_json()), "reference": json.loads(reference.get_metadata_json()),
           "reference_files": sorted(reference.get_packed_associated_file_list())}, sys.stdout)
"""


def _without_free_text(value):
    if isinstance(value, dict):
        return {key: _without_free_text(item) for key, item in value.items()
                if key not in ("name", "description") and item != {}}
    if isinstance(value, list):
        return [_without_free_text(item) for item in value]
    return value


def test_metadata_matches_tflite_support_writer(regex_classifier, tmp_path):
    _, tokenizer, labels, files = regex_classifier
    content = (files / MEDIAPIPE_FILE).read_bytes()
    # The same flatbuffer without nlpkit's metadata, for the reference writer.
    from tensorflow.lite.python import schema_py_generated as schema
    import flatbuffers

    model = schema.ModelT.InitFromPackedBuf(bytearray(content), 0)
    model.metadata = [entry for entry in model.metadata if entry.name != b"TFLITE_METADATA"]
    builder = flatbuffers.Builder(len(content))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    (tmp_path / "raw.tflite").write_bytes(bytes(builder.Output()))
    report = run_in_mediapipe_venv(_REFERENCE_SCRIPT, {"file": str(files / MEDIAPIPE_FILE), "raw": str(tmp_path / "raw.tflite"),
                                                       "pattern": tokenizer.delimiter_pattern})
    assert report["reference_files"] == sorted([VOCAB_FILE, LABELS_FILE])
    assert report["ours"]["min_parser_version"] == report["reference"]["min_parser_version"]
    assert _without_free_text(report["ours"]) == _without_free_text(report["reference"])


def test_mediapipe_files_load_in_tflite214(regex_classifier):
    every_signature_matches_in_tflite214(regex_classifier[3])


def _ids_file(length, vocab_text, pattern):
    """A "classifier" whose scores are its input ids, with the regex tokenizer metadata."""

    class Identity(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, length], tf.int32, name="token_ids")])
        def classify(self, token_ids):
            return {"scores": tf.cast(token_ids, tf.float32)}

    module = Identity()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.classify.get_concrete_function()], module)
    content = converter.convert()
    return add_classifier_metadata(content, vocab_text, pattern, [f"position {i}" for i in range(length)])


def test_twin_gives_mediapipe_token_ids(tmp_path):
    length = 12
    texts = sample_sentences()[:20] + SENTENCES + [
        " ".join(["word"] * 30),  # cut to the length
        "<PAD> <UNKNOWN> <START> PAD",
        "\t leading, trailing \n",
        "rock'n'roll 'quoted' don't",
        "x\vy x\fy x\ry",
    ]
    cases = {
        "default": (r"[^\w']+", False),
        "spaces": (r"\s+", True),  # with <START>; "<PAD>" stays a token and reads as id 0
        "anchored": (r"^\s+|\s+$|\s+", False),
        "punctuation": (r"[\s,.!?;:\-]+", False),
        "apostrophes": (r"\b'\b|[^\w']+", False),
    }
    tokenizers, paths = {}, {}
    for name, (pattern, start) in cases.items():
        built = PythonRegexTokenizer.build(texts[:15], pattern)
        if start:
            words = built.vocabulary.tokens[2:]
            built = PythonRegexTokenizer(
                Vocabulary(["<START>", *words], special_tokens=REGEX_SPECIAL_TOKENS, unk_token=UNKNOWN_TOKEN), pattern)
        tokenizers[name] = built
        paths[name] = tmp_path / f"{name}.tflite"
        paths[name].write_bytes(_ids_file(length, built.vocab_file_text(), pattern))
    report = run_in_mediapipe(list(paths.values()), texts)
    for name, tokenizer in tokenizers.items():
        mediapipe_ids = report["files"][str(paths[name])]["scores"].astype(int).tolist()
        assert mediapipe_ids == [tokenizer.encode_padded(text, length) for text in texts], name


def test_word_tokenizer_is_refused(regex_classifier):
    model, _, labels, _ = regex_classifier
    word = PythonWordTokenizer(Vocabulary(["a"]), TextNormalizer())
    with pytest.raises(TypeError, match="regex tokenizer"):
        mediapipe_classifier_file(model, word, labels, length=4)
    with pytest.raises(ValueError, match="label_names"):
        mediapipe_classifier_file(model, regex_classifier[1], ["only one"], length=4)


def test_choose_length_covers_the_texts():
    tokenizer = PythonRegexTokenizer.build(["a b"])
    texts = ["a " * 10] * 94 + ["a " * 100] * 6
    assert choose_length(tokenizer, texts, coverage=0.94) == 32
    assert choose_length(tokenizer, texts, coverage=0.95) == 128
    assert choose_length(tokenizer, ["a " * 1000]) == 512
