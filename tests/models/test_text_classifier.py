"""TextClassifier: shapes, masking, serialization, embeddings, endpoints and a little training."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from nlpkit.models import TextClassifier, load_keras_model
from nlpkit.text import PythonWordTokenizer, TextNormalizer, Vocabulary, WordTokenizer
from tests.layer_checks import run_model_checks

VOCABULARY_SIZE = 20
NUM_CLASSES = 3
SMALL = dict(embedding_dim=6, units=4)

# Right-padded rows of different lengths, one of them all padding.
IDS = np.array(
    [
        [3, 7, 2, 9, 4],
        [5, 1, 8, 0, 0],
        [6, 0, 0, 0, 0],
        [0, 0, 0, 0, 0],
    ],
    "int32",
)


def small_model(**overrides):
    keras.utils.set_random_seed(0)
    options = dict(vocabulary_size=VOCABULARY_SIZE, num_classes=NUM_CLASSES, **SMALL)
    options.update(overrides)
    return TextClassifier(**options)


def unpadded(row):
    length = max(int(np.count_nonzero(row)), 1)
    return row[None, :length]


@pytest.fixture(scope="module")
def model():
    built = small_model()
    built(IDS)
    return built


# Every encoder shape the constructor can make, each small.
CONFIGS = {
    "gru": dict(),
    "lstm": dict(cell="lstm"),
    "simple_rnn": dict(cell="simple_rnn"),
    "gru_last": dict(pooling="last"),
    "lstm_last_unidirectional": dict(cell="lstm", pooling="last", bidirectional=False),
    "two_layers": dict(num_layers=2),
    "two_layers_last": dict(cell="simple_rnn", num_layers=2, pooling="last"),
    "hidden": dict(hidden_dim=5, pooling="mean"),
    "max_unidirectional": dict(pooling="max", bidirectional=False, cell="lstm"),
    "ensemble": dict(ensemble_size=3),
}


@pytest.mark.parametrize("overrides", list(CONFIGS.values()), ids=list(CONFIGS))
def test_probabilities_and_padding_invariance(overrides):
    model = small_model(**overrides)
    scores = np.asarray(model(IDS))
    assert scores.shape == (len(IDS), NUM_CLASSES)
    assert scores.dtype == np.float32
    assert np.all(scores >= 0)
    np.testing.assert_allclose(scores.sum(axis=-1), 1.0, atol=1e-5)
    # Padding is masked out: a padded row scores as that row alone, unpadded.
    for row, expected in zip(IDS, scores):
        np.testing.assert_allclose(np.asarray(model(unpadded(row)))[0], expected, atol=1e-5)


def test_structure_follows_the_arguments():
    model = small_model(
        cell="lstm", num_layers=2, bidirectional=False, pooling="last", hidden_dim=7
    )
    model(IDS)
    assert [type(layer).__name__ for layer in model.encoder_layers] == ["LSTM", "LSTM"]
    assert [layer.return_sequences for layer in model.encoder_layers] == [True, False]
    assert model.members[0].pool is None
    assert model.members[0].hidden.units == 7
    assert len(model.members) == 1
    bidirectional = small_model(num_layers=2)
    bidirectional(IDS)
    for layer in bidirectional.encoder_layers:
        assert isinstance(layer, keras.layers.Bidirectional)
    assert bidirectional.members[0].pool.mode == "max_mean"


def test_training_mode_is_finite_and_stochastic(model):
    noisy = small_model(recurrent_dropout=0.3, dropout=0.5, embedding_dropout=0.3)
    noisy(IDS)
    first = np.asarray(noisy(IDS, training=True))
    assert np.all(np.isfinite(first))
    assert not np.allclose(first, np.asarray(noisy(IDS, training=False)))
    np.testing.assert_allclose(first.sum(axis=-1), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    "overrides,fragment",
    [
        (dict(num_classes=1), "num_classes=1"),
        (dict(pooling="avg"), "'avg'"),
        (dict(num_layers=0), "num_layers=0"),
        (dict(cell="transformer"), "'transformer'"),
        (dict(units=0), "units=0"),
        (dict(recurrent_dropout=1.0), "recurrent_dropout=1.0"),
        (dict(ensemble_size=0), "ensemble_size=0"),
    ],
)
def test_invalid_arguments_name_the_value(overrides, fragment):
    with pytest.raises(ValueError) as info:
        small_model(**overrides)
    assert fragment in str(info.value)


def test_unknown_cell_lists_the_choices():
    with pytest.raises(ValueError, match="gru.*lstm.*simple_rnn"):
        small_model(cell="nope")


def test_config_round_trip(model):
    config = model.get_config()
    expected = dict(vocabulary_size=VOCABULARY_SIZE, num_classes=NUM_CLASSES, **SMALL)
    assert {key: config[key] for key in expected} == expected
    clone = TextClassifier.from_config(config)
    assert clone.get_config() == config
    clone(IDS)
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(np.asarray(clone(IDS)), np.asarray(model(IDS)))


@pytest.mark.parametrize(
    "overrides",
    [dict(), dict(cell="lstm", pooling="last", num_layers=2, hidden_dim=3), dict(ensemble_size=2)],
    ids=["default", "deep", "ensemble"],
)
def test_model_checks_and_load_keras_model(overrides, tmp_path):
    labels = np.array([0, 1, 2, 1])
    trained, reloaded = run_model_checks(
        lambda: small_model(**overrides), IDS, labels, tmp_path, "sparse_categorical_crossentropy"
    )
    assert reloaded.get_config() == trained.get_config()
    again = load_keras_model(tmp_path / f"model_{trained.name}.keras")
    np.testing.assert_allclose(np.asarray(again(IDS)), np.asarray(trained(IDS)), atol=1e-6)


def test_load_keras_model_accepts_str_paths(model, tmp_path):
    path = tmp_path / "classifier.keras"
    model.save(path)
    loaded = load_keras_model(str(path))
    assert isinstance(loaded, TextClassifier)
    np.testing.assert_array_equal(np.asarray(loaded(IDS)), np.asarray(model(IDS)))


# ---------------------------------------------------------------- embeddings


def test_set_embeddings_rejects_a_wrong_shape(model):
    with pytest.raises(ValueError, match=r"\(20, 5\)"):
        model.set_embeddings(np.zeros((VOCABULARY_SIZE, SMALL["embedding_dim"] - 1), "float32"))
    with pytest.raises(ValueError, match=r"\(19, 6\)"):
        model.set_embeddings(np.zeros((VOCABULARY_SIZE - 1, SMALL["embedding_dim"]), "float32"))


@pytest.mark.parametrize("build_first", [True, False], ids=["built", "unbuilt"])
def test_set_embeddings_is_used(build_first):
    model = small_model()
    if build_first:
        before = np.asarray(model(IDS))
    shape = (VOCABULARY_SIZE, SMALL["embedding_dim"])
    matrix = np.random.default_rng(1).normal(size=shape).astype("float32")
    model.set_embeddings(matrix)
    after = np.asarray(model(IDS))
    # Building the rest of the model afterwards must not re-initialise the table.
    np.testing.assert_array_equal(np.asarray(model.embedding.embeddings), matrix)
    if build_first:
        assert not np.allclose(before, after)
    # Changing one word's vector changes exactly the predictions of rows containing it.
    matrix[9] += 1.0
    model.set_embeddings(matrix)
    changed = ~np.isclose(np.asarray(model(IDS)), after).all(axis=-1)
    assert changed.tolist() == [True, False, False, False]


# ---------------------------------------------------------------- endpoints


def test_tflite_endpoints(model):
    endpoints = model.tflite_endpoints()
    assert list(endpoints) == ["classify"]
    function, signature = endpoints["classify"]
    assert callable(function)
    assert signature == [tf.TensorSpec([1, None], tf.int32, name="token_ids")]
    concrete = tf.function(function, input_signature=signature).get_concrete_function()
    for row in IDS:
        ids = tf.constant(unpadded(row), tf.int32)
        result = concrete(ids)
        assert list(result) == ["scores"]
        np.testing.assert_allclose(result["scores"].numpy(), np.asarray(model(ids)), atol=1e-6)


@pytest.fixture(scope="module")
def tokenizer():
    normalizer = TextNormalizer()
    texts = ["a fine film", "a dull film", "good acting , bad plot"]
    vocabulary = Vocabulary.build([normalizer.tokenize(text) for text in texts])
    assert len(vocabulary) <= VOCABULARY_SIZE
    return PythonWordTokenizer(vocabulary, normalizer)


def test_serving_endpoints(model, tokenizer):
    labels = ["negative", "neutral", "positive"]
    (name, (function, signature)), = model.serving_endpoints(WordTokenizer.from_python(tokenizer), labels).items()
    assert name == "serving_default"
    assert callable(function)
    assert signature == [tf.TensorSpec([None], tf.string, name="text")]
    serve = tf.function(function, input_signature=signature)
    texts = ["A fine film!", "", "bad plot , unseen words", "film"]
    result = serve(tf.constant(texts))
    assert sorted(result) == ["labels", "scores"]
    scores = result["scores"].numpy()
    assert scores.shape == (len(texts), NUM_CLASSES)
    for text, label, row in zip(texts, result["labels"].numpy(), scores):
        ids = tokenizer.encode(text) or [0]  # an empty text is one padding step
        expected = np.asarray(model(np.array([ids], "int32")))[0]
        np.testing.assert_allclose(row, expected, atol=1e-5)
        assert label.decode() == labels[int(np.argmax(expected))]
    # A batch of only empty texts still has one (padding) step to run over.
    alone = serve(tf.constant([""]))["scores"].numpy()
    np.testing.assert_allclose(alone, np.asarray(model(np.zeros((1, 1), "int32"))), atol=1e-5)


# ---------------------------------------------------------------- training


def test_fit_learns_a_separable_toy_task():
    # Class 0 uses words 2-5, class 1 words 6-9; lengths vary so masking matters.
    rng = np.random.default_rng(0)
    rows, labels = [], []
    for index in range(32):
        label = index % 2
        length = rng.integers(1, 7)
        row = np.zeros(6, "int32")
        row[:length] = rng.integers(2, 6, length) + 4 * label
        rows.append(row)
        labels.append(label)
    ids, labels = np.stack(rows), np.array(labels)
    # One direction halves the cost of tracing the training step; the bidirectional path is
    # trained in test_model_checks_and_load_keras_model.
    model = small_model(num_classes=2, dropout=0.0, embedding_dropout=0.0, bidirectional=False)
    loss = keras.losses.SparseCategoricalCrossentropy()
    before = float(loss(labels, model(ids)))
    model.compile(keras.optimizers.Adam(0.05), loss)
    model.fit(ids, labels, batch_size=32, epochs=6, verbose=0)
    scores = model(ids)
    assert float(loss(labels, scores)) < 0.5 * before
    assert np.array_equal(np.argmax(scores, axis=-1), labels)


# ---------------------------------------------------------------- ensembles


def test_ensemble_predicts_the_mean_of_its_members():
    model = small_model(ensemble_size=3)
    scores = np.asarray(model(IDS))
    embedded = model.embedding(IDS)
    mask = IDS != 0
    members = [np.asarray(member(embedded, mask=mask)) for member in model.members]
    np.testing.assert_allclose(scores, np.mean(members, axis=0), atol=1e-6)
    # Members start from different weights, so they disagree before training.
    assert not np.allclose(members[0], members[1])
    # One embedding table for all members; each member adds only its own encoder.
    assert len([w for w in model.weights if "embeddings" in w.path]) == 1
    single = small_model()
    single(IDS)
    member_weights = single.count_params() - VOCABULARY_SIZE * SMALL["embedding_dim"]
    assert model.count_params() == VOCABULARY_SIZE * SMALL["embedding_dim"] + 3 * member_weights


def test_ensemble_training_output_and_loss_are_per_member():
    model = small_model(ensemble_size=2, dropout=0.0, embedding_dropout=0.0)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
    training_scores = np.asarray(model(IDS, training=True))
    assert training_scores.shape == (len(IDS), 2, NUM_CLASSES)
    labels = np.array([0, 1, 2, 1])
    # The training loss is the mean of the members' own losses, not the loss of the mean.
    loss = keras.losses.SparseCategoricalCrossentropy()
    expected = np.mean([float(loss(labels, training_scores[:, m])) for m in range(2)])
    got = float(model.compute_loss(x=IDS, y=labels, y_pred=training_scores))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # Members that disagree strongly: the mean of the losses differs from the loss of the mean.
    confident = np.array([[[0.98, 0.01, 0.01], [0.01, 0.01, 0.98]]] * 4, "float32")
    per_member = float(model.compute_loss(x=IDS, y=labels, y_pred=confident))
    np.testing.assert_allclose(per_member, np.mean(-np.log(confident[np.arange(4), :, labels])), rtol=1e-5)
    assert not np.isclose(per_member, float(loss(labels, confident.mean(axis=1))))
    # Metrics are computed on the ensemble prediction.
    model.compute_metrics(IDS, labels, training_scores)
    accuracy = [m for m in model.metrics if m.name == "compile_metrics"][0].result()["accuracy"]
    expected_accuracy = np.mean(np.argmax(training_scores.mean(axis=1), axis=-1) == labels)
    np.testing.assert_allclose(float(accuracy), expected_accuracy)


def test_ensemble_fit_trains_every_member():
    model = small_model(num_classes=2, ensemble_size=2, bidirectional=False)
    model(IDS)
    before = [np.asarray(w).copy() for w in model.members[1].trainable_weights]
    model.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(IDS, np.array([0, 1, 0, 1]), epochs=2, verbose=0)
    assert set(history.history) == {"loss", "accuracy"}
    after = model.members[1].trainable_weights
    assert all(not np.allclose(b, np.asarray(a)) for b, a in zip(before, after))


def test_a_bundle_predicts_from_raw_strings_with_plain_keras(sentiment_bundle, sample_test_texts):
    """keras-hub style: ``load_text_model(bundle).predict([...])`` gives the classifier's own scores."""
    from nlpkit.models import load_text_model
    from nlpkit.serving import load_predictor

    texts = list(sample_test_texts[:5]) + [""]
    scores = load_text_model(sentiment_bundle).predict(np.array(texts, dtype=object), verbose=0)
    expected = load_predictor(sentiment_bundle, format="keras").predict(texts)
    labels = [prediction.label for prediction in expected]
    reference = np.array([[p.scores[label] for label in sorted(p.scores, key=list(p.scores).index)] for p in expected])
    np.testing.assert_allclose(scores, reference, atol=1e-5)
    assert len(labels) == len(texts)
