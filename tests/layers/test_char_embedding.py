"""CharacterCNN and CasingFeatures: layer checks, padding invariance, casing classes, TFLite."""

import doctest

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from nlpkit.export import audit_ops, convert
from nlpkit.layers import char_embedding
from nlpkit.layers.char_embedding import CASINGS, CasingFeatures, CharacterCNN, character_classes
from tests.layer_checks import _assert_config_has_constructor_args

CHARACTERS = ["<pad>", "<unk>"] + list("ABCabc0123.-,") + ["é", "É"]
CLASSES = character_classes(CHARACTERS)


def char_ids_of(words, width=None):
    """``(1, len(words), width)`` ids of the words' characters (unknown -> 1), right-padded."""
    index = {character: i for i, character in enumerate(CHARACTERS)}
    width = width or max([1] + [len(word) for word in words])
    ids = np.zeros((1, len(words), width), np.int32)
    for position, word in enumerate(words):
        ids[0, position, : len(word)] = [index.get(character, 1) for character in word]
    return ids


def random_char_ids(seed, batch=3, words=5, chars=6):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, len(CHARACTERS), (batch, words, chars)).astype(np.int32)
    lengths = rng.integers(0, chars + 1, (batch, words))
    ids[np.arange(chars)[None, None, :] >= lengths[..., None]] = 0
    ids[:, -1] = 0  # a padding word in every row
    return ids


def check_id_layer(make_layer, ids, tmp_path, expected_shape):
    """The checks of tests/layer_checks.py for a layer that reads ids (no gradient to its input).

    Config round trip with every constructor argument, one fit step that moves every
    trainable weight, and a ``.keras`` reload (safe mode) that reproduces the outputs.
    """
    layer = make_layer()
    _assert_config_has_constructor_args(layer)
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    inputs = keras.Input((None, None), dtype="int32")
    model = keras.Model(inputs, keras.layers.Dense(2)(make_layer()(inputs)))
    outputs = np.asarray(model(ids))
    assert outputs.shape[:2] == expected_shape[:2] and np.isfinite(outputs).all()
    inner = model.layers[1]
    assert tuple(inner(ids).shape) == expected_shape
    before = [weight.numpy().copy() for weight in inner.trainable_weights]
    assert before, "the layer has no trainable weights"
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    targets = np.random.default_rng(0).normal(size=outputs.shape).astype("float32")
    model.fit(ids, targets, batch_size=len(ids), epochs=1, verbose=0)
    for weight, old in zip(inner.trainable_weights, before):
        assert not np.array_equal(weight.numpy(), old), f"{weight.path} did not move"
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    np.testing.assert_allclose(np.asarray(reloaded(ids)), np.asarray(model(ids)), atol=1e-6)


def test_character_cnn_config_fit_and_reload(tmp_path):
    check_id_layer(
        lambda: CharacterCNN(len(CHARACTERS), embedding_dim=5, filters=7, kernel_size=3, dropout=0.1, seed=1),
        random_char_ids(0), tmp_path, (3, 5, 7),
    )


def test_casing_features_config_fit_and_reload(tmp_path):
    check_id_layer(lambda: CasingFeatures(CLASSES, output_dim=3), random_char_ids(1), tmp_path, (3, 5, 3))


def test_word_vectors_do_not_depend_on_padding():
    keras.utils.set_random_seed(2)
    layer = CharacterCNN(len(CHARACTERS), embedding_dim=4, filters=6, kernel_size=3)
    words = ["Abc", "a", "0.1", "É"]
    alone = [np.asarray(layer(char_ids_of([word])))[0, 0] for word in words]
    together = np.asarray(layer(char_ids_of(words, width=9)))[0]
    np.testing.assert_allclose(together, np.stack(alone), atol=1e-6)
    # A padding word has no characters: zeros, not the vector of an empty max.
    padded = np.asarray(layer(np.pad(char_ids_of(words), [[0, 0], [0, 2], [0, 0]])))[0]
    np.testing.assert_array_equal(padded[len(words):], 0.0)
    # Batches of nothing keep their shape.
    assert tuple(layer(np.zeros((2, 0, 3), np.int32)).shape) == (2, 0, 6)
    assert tuple(layer(np.zeros((1, 3, 0), np.int32)).shape) == (1, 3, 6)


def test_vectors_follow_the_characters_in_order():
    keras.utils.set_random_seed(3)
    layer = CharacterCNN(len(CHARACTERS), embedding_dim=4, filters=8, kernel_size=3)
    vectors = np.asarray(layer(char_ids_of(["abc", "cba", "abc"])))[0]
    np.testing.assert_allclose(vectors[0], vectors[2])
    assert not np.allclose(vectors[0], vectors[1])


@pytest.mark.parametrize(
    "word, casing",
    [
        ("", "padding"),
        ("2023", "numeric"),
        ("12-0", "mainly_numeric"),
        ("A1bc", "contains_digit"),
        (".-,", "no_letters"),
        ("ABC", "all_upper"),
        ("A.B.", "all_upper"),
        ("Abc", "initial_upper"),
        ("ÉbC", "initial_upper"),
        ("abc", "all_lower"),
        ("é", "all_lower"),
        ("aBc", "mixed"),
        ("a?", "all_lower"),  # an unknown character counts, as "other"
    ],
)
def test_casing_classes(word, casing):
    layer = CasingFeatures(CLASSES)
    ids = char_ids_of([word], width=4)
    assert CASINGS[int(np.asarray(layer.casing_ids(ids))[0, 0])] == casing


def test_character_classes_and_unknown_ids():
    assert character_classes(["<pad>", "X", "x", "7", "%", "ǅ"]) == [0, 1, 2, 3, 0, 0]
    layer = CasingFeatures([0, 0, 1])
    # Id 9 is beyond the table (a larger vocabulary): read as "other", never an index error.
    assert int(np.asarray(layer.casing_ids(np.array([[[2, 9]]])))[0, 0]) == CASINGS.index("all_upper")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: CharacterCNN(0), "vocabulary_size=0"),
        (lambda: CharacterCNN(10, filters=2.5), "filters=2.5"),
        (lambda: CharacterCNN(10, dropout=1.0), "dropout=1.0"),
        (lambda: CasingFeatures([0, 5]), r"char_classes=\[0, 5\]"),
        (lambda: CasingFeatures([]), "char_classes"),
        (lambda: CasingFeatures([0, 1], output_dim=0), "output_dim=0"),
    ],
)
def test_arguments_are_validated(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_both_convert_to_tflite_with_any_number_of_words():
    keras.utils.set_random_seed(4)
    cnn = CharacterCNN(len(CHARACTERS), embedding_dim=4, filters=5)
    casing = CasingFeatures(CLASSES, output_dim=3)
    inputs = keras.Input((None, None), dtype="int32", batch_size=1)
    model = keras.Model(inputs, [cnn(inputs), casing(inputs)])
    spec = tf.TensorSpec([1, None, None], tf.int32, name="char_ids")

    def features(char_ids):
        return {"cnn": cnn(char_ids), "casing": casing(char_ids)}

    content = convert(model, {"features": (features, [spec])})
    assert audit_ops(content).builtin_only
    runner = Interpreter(model_content=content).get_signature_runner("features")
    for words in (["Abc"], ["Abc", "12", "ÉTÉ", "x.y", "a", "B"], ["a"] * 40):
        ids = char_ids_of(words)
        outputs = runner(char_ids=ids)
        np.testing.assert_allclose(outputs["cnn"], np.asarray(cnn(ids)), atol=1e-5)
        np.testing.assert_allclose(outputs["casing"], np.asarray(casing(ids)), atol=1e-6)


def test_doctests():
    assert doctest.testmod(char_embedding, optionflags=doctest.ELLIPSIS).failed == 0
