"""nlpkit's CRF against brute-force enumeration, plus constraints, training, saving and TFLite.

The reference enumerates every tag sequence of a sentence in float64 numpy, so the
log-partition, log-likelihood and best path are checked exactly rather than against
another implementation of the same recursions.
"""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from nlpkit.export import audit_ops, convert
from nlpkit.layers.crf import CRF, FORBIDDEN_SCORE, CRFModel, allowed_transitions
from tests.layer_checks import run_model_checks

TIME = 5
LENGTHS = [5, 3, 1, 0, 4, 2]  # includes an all-padding row and a length-1 row
BIO_TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
SCHEME_TAGS = {
    "BIO": BIO_TAGS,
    "IOB1": ["O", "I-PER", "B-PER", "I-LOC", "B-LOC"],
    "BIOES": ["O", "B-X", "I-X", "E-X", "S-X"],
}


def right_padded_mask(lengths, time=TIME):
    return np.arange(time)[None, :] < np.asarray(lengths)[:, None]


def random_crf(num_tags, seed, use_boundary_transitions=True, **kwargs):
    """A built CRF whose parameters are random (the zeros default would hide bugs)."""
    crf = CRF(num_tags, use_boundary_transitions=use_boundary_transitions, **kwargs)
    crf.build((None, None, num_tags))
    rng = np.random.default_rng(seed)
    crf.set_weights([rng.normal(size=w.shape).astype(w.dtype) for w in crf.get_weights()])
    return crf


def parameters(crf):
    """``(transitions, start, end)`` in float64 with the constraint masks (None = none)."""
    weights = [np.asarray(w, np.float64) for w in crf.get_weights()]
    k = crf.num_tags
    start = weights[1] if crf.use_boundary_transitions else np.zeros(k)
    end = weights[2] if crf.use_boundary_transitions else np.zeros(k)
    return weights[0], start, end


def enumerate_paths(emissions, length, crf, only_allowed=False):
    """Every tag sequence of ``length`` tags and its score, ``(paths, scores)``.

    With ``only_allowed`` the sequences that break the CRF's constraints are dropped, so
    the reference knows nothing of the penalty constant.
    """
    transitions, start, end = parameters(crf)
    k = crf.num_tags
    paths = np.array(list(itertools.product(range(k), repeat=length)), np.int64)
    scores = (
        start[paths[:, 0]]
        + end[paths[:, -1]]
        + emissions[np.arange(length), paths].sum(axis=1)
        + transitions[paths[:, :-1], paths[:, 1:]].sum(axis=1)
    )
    if only_allowed:
        keep = np.ones(len(paths), bool)
        if crf.allowed_start is not None:
            keep &= crf.allowed_start[paths[:, 0]] & crf.allowed_end[paths[:, -1]]
        if crf.allowed_transitions is not None:
            keep &= crf.allowed_transitions[paths[:, :-1], paths[:, 1:]].all(axis=1)
        paths, scores = paths[keep], scores[keep]
    return paths, scores


def logsumexp(values):
    top = values.max()
    return top + np.log(np.exp(values - top).sum())


def path_score(emissions, path, crf):
    transitions, start, end = parameters(crf)
    if len(path) == 0:
        return 0.0
    return (
        start[path[0]] + end[path[-1]] + emissions[np.arange(len(path)), path].sum()
        + transitions[path[:-1], path[1:]].sum()
    )


def is_valid(path, crf):
    if len(path) == 0:
        return True
    return bool(
        crf.allowed_start[path[0]]
        and crf.allowed_end[path[-1]]
        and all(crf.allowed_transitions[a, b] for a, b in zip(path[:-1], path[1:]))
    )


def random_inputs(num_tags, lengths=LENGTHS, time=TIME, seed=0, scale=1.0):
    """Emissions, a right-padded mask and gold tags; padding holds junk that must not leak."""
    rng = np.random.default_rng(seed)
    mask = right_padded_mask(lengths, time)
    emissions = (scale * rng.normal(size=(len(lengths), time, num_tags))).astype(np.float32)
    emissions[~mask] = 1e3 * rng.normal(size=(int((~mask).sum()), num_tags))
    tags = rng.integers(0, num_tags, size=(len(lengths), time))
    tags[~mask] = rng.choice([-1, num_tags + 7], size=int((~mask).sum()))
    return emissions, mask, tags


# ---------------------------------------------------------------------------------------------
# Exact agreement with brute-force enumeration
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("num_tags", [3, 4])
@pytest.mark.parametrize("use_boundary_transitions", [True, False])
def test_matches_brute_force(num_tags, use_boundary_transitions):
    crf = random_crf(num_tags, seed=num_tags, use_boundary_transitions=use_boundary_transitions)
    emissions, mask, tags = random_inputs(num_tags, seed=num_tags)

    log_z = crf.log_partition(emissions, mask).numpy()
    log_likelihood = crf.log_likelihood(emissions, tags, mask).numpy()
    paths, best_scores = (t.numpy() for t in crf.viterbi_decode(emissions, mask))
    assert paths.dtype == np.int32 and paths.shape == mask.shape

    for row, length in enumerate(LENGTHS):
        e = emissions[row, :length].astype(np.float64)
        if length == 0:
            expected_log_z, expected_path, expected_best = 0.0, np.zeros(0, int), 0.0
            gold_score = 0.0
        else:
            all_paths, scores = enumerate_paths(e, length, crf)
            expected_log_z = logsumexp(scores)
            expected_path = all_paths[scores.argmax()]
            expected_best = scores.max()
            gold_score = path_score(e, tags[row, :length], crf)
        np.testing.assert_allclose(log_z[row], expected_log_z, rtol=0, atol=1e-5)
        np.testing.assert_allclose(
            log_likelihood[row], gold_score - expected_log_z, rtol=0, atol=1e-5
        )
        np.testing.assert_array_equal(paths[row, :length], expected_path, err_msg=f"row {row}")
        np.testing.assert_array_equal(paths[row, length:], 0)
        np.testing.assert_allclose(best_scores[row], expected_best, rtol=0, atol=1e-5)
    assert np.all(log_likelihood <= 1e-6)


def test_mean_negative_log_likelihood_and_sample_weights():
    crf = random_crf(3, seed=1)
    emissions, mask, tags = random_inputs(3, seed=1)
    per_sentence = -crf.log_likelihood(emissions, tags, mask).numpy()
    assert float(crf.negative_log_likelihood(emissions, tags, mask)) == pytest.approx(
        per_sentence.mean(), abs=1e-5
    )
    weights = np.linspace(0.0, 2.0, len(LENGTHS))
    assert float(crf.negative_log_likelihood(emissions, tags, mask, weights)) == pytest.approx(
        (weights * per_sentence).sum() / len(LENGTHS), abs=1e-5
    )


def test_without_mask_every_step_counts():
    crf = random_crf(3, seed=2)
    emissions, _, tags = random_inputs(3, lengths=[TIME] * 3, seed=2)
    full = right_padded_mask([TIME] * 3)
    np.testing.assert_array_equal(crf(emissions), crf(emissions, mask=full))
    np.testing.assert_allclose(
        crf.log_likelihood(emissions, tags), crf.log_likelihood(emissions, tags, full), atol=0
    )


def test_padded_batch_equals_each_sentence_alone():
    crf = random_crf(4, seed=3)
    emissions, mask, tags = random_inputs(4, seed=3)
    batch_paths = crf(emissions, mask=mask).numpy()
    batch_ll = crf.log_likelihood(emissions, tags, mask).numpy()
    for row, length in enumerate(LENGTHS):
        if length == 0:
            continue
        alone = emissions[row : row + 1, :length]
        np.testing.assert_array_equal(crf(alone).numpy()[0], batch_paths[row, :length])
        np.testing.assert_allclose(
            crf.log_likelihood(alone, tags[row : row + 1, :length]).numpy()[0],
            batch_ll[row],
            atol=1e-5,
        )


def test_empty_and_length_one_rows_do_not_crash():
    crf = random_crf(3, seed=4)
    emissions = np.random.default_rng(4).normal(size=(3, 1, 3)).astype(np.float32)
    mask = np.array([[False], [True], [False]])
    tags = np.zeros((3, 1), np.int32)
    paths = crf(emissions, mask=mask).numpy()
    np.testing.assert_array_equal(paths[[0, 2]], 0)
    assert paths[1, 0] == np.argmax(emissions[1, 0] + parameters(crf)[1] + parameters(crf)[2])
    log_likelihood = crf.log_likelihood(emissions, tags, mask).numpy()
    assert log_likelihood[0] == 0.0 and log_likelihood[2] == 0.0
    assert np.all(np.isfinite(log_likelihood))

    # A batch with no real token at all, and a zero-length time axis.
    everything_masked = np.zeros((2, 4), bool)
    zeros = np.zeros((2, 4, 3), np.float32)
    np.testing.assert_array_equal(crf(zeros, mask=everything_masked), 0)
    assert float(crf.negative_log_likelihood(zeros, np.zeros((2, 4)), everything_masked)) == 0.0
    empty = np.zeros((2, 0, 3), np.float32)
    assert tuple(crf(empty).shape) == (2, 0)
    np.testing.assert_array_equal(crf.log_likelihood(empty, np.zeros((2, 0), np.int32)), 0.0)


# ---------------------------------------------------------------------------------------------
# Constraints
# ---------------------------------------------------------------------------------------------


def test_bio_transitions():
    matrix, start, end = allowed_transitions(BIO_TAGS, "BIO")
    index = {tag: i for i, tag in enumerate(BIO_TAGS)}

    def allowed(a, b):
        return bool(matrix[index[a], index[b]])

    assert not allowed("O", "I-PER")
    assert not allowed("B-PER", "I-LOC") and not allowed("I-PER", "I-LOC")
    assert allowed("B-PER", "I-PER") and allowed("I-PER", "I-PER")
    assert allowed("I-PER", "B-PER") and allowed("I-LOC", "O") and allowed("O", "B-LOC")
    assert start.tolist() == [True, True, False, True, False]
    assert end.all()
    assert (matrix.sum() == 25 - 2 * 3)  # every I- column allows only its B- and I- rows


def test_iob1_transitions():
    tags = SCHEME_TAGS["IOB1"]
    matrix, start, end = allowed_transitions(tags, "iob1")
    index = {tag: i for i, tag in enumerate(tags)}
    assert matrix[index["O"], index["I-PER"]] and matrix[index["I-LOC"], index["I-PER"]]
    assert not matrix[index["O"], index["B-PER"]]
    assert not matrix[index["I-LOC"], index["B-PER"]]
    assert matrix[index["I-PER"], index["B-PER"]] and matrix[index["B-PER"], index["B-PER"]]
    assert start.tolist() == [True, True, False, True, False]
    assert end.all()


def test_bioes_transitions():
    tags = ["O", "B-X", "I-X", "E-X", "S-X", "B-Y", "I-Y", "E-Y", "S-Y"]
    matrix, start, end = allowed_transitions(tags, "IOBES")
    index = {tag: i for i, tag in enumerate(tags)}

    def allowed(a, b):
        return bool(matrix[index[a], index[b]])

    assert allowed("B-X", "I-X") and allowed("B-X", "E-X") and allowed("I-X", "E-X")
    assert not allowed("B-X", "O") and not allowed("I-X", "S-X") and not allowed("B-X", "E-Y")
    assert not allowed("O", "I-X") and not allowed("O", "E-X") and not allowed("S-X", "I-X")
    assert allowed("E-X", "B-Y") and allowed("S-X", "S-X") and allowed("E-Y", "O")
    assert [tags[i] for i in np.flatnonzero(start)] == ["O", "B-X", "S-X", "B-Y", "S-Y"]
    assert [tags[i] for i in np.flatnonzero(end)] == ["O", "E-X", "S-X", "E-Y", "S-Y"]


@pytest.mark.parametrize(
    "tags, scheme, message",
    [
        (BIO_TAGS, "BILOU", "'BILOU'"),
        (["O", "E-PER"], "BIO", "'E-PER'"),
        (["O", "PER"], "BIO", "'PER'"),
        (["O", "B-"], "BIO", "'B-'"),
        (["O", "O"], "BIO", "duplicates"),
        ([], "BIO", "non-empty"),
        (["O", 3], "BIO", r"tags\[1\]=3"),
    ],
)
def test_allowed_transitions_errors_name_the_value(tags, scheme, message):
    with pytest.raises(ValueError, match=message):
        allowed_transitions(tags, scheme)


@pytest.mark.parametrize("scheme", sorted(SCHEME_TAGS))
@pytest.mark.parametrize("use_boundary_transitions", [True, False])
def test_constrained_crf_matches_brute_force_over_allowed_paths(scheme, use_boundary_transitions):
    tags = SCHEME_TAGS[scheme]
    crf = CRF.from_tags(tags, scheme, use_boundary_transitions=use_boundary_transitions)
    crf.build((None, None, len(tags)))
    rng = np.random.default_rng(5)
    crf.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in crf.get_weights()])
    emissions, mask, gold = random_inputs(len(tags), seed=5, scale=2.0)

    log_z = crf.log_partition(emissions, mask).numpy()
    paths, best_scores = (t.numpy() for t in crf.viterbi_decode(emissions, mask))
    for row, length in enumerate(LENGTHS):
        if length == 0:
            assert log_z[row] == 0.0 and not paths[row].any()
            continue
        e = emissions[row, :length].astype(np.float64)
        valid_paths, scores = enumerate_paths(e, length, crf, only_allowed=True)
        np.testing.assert_allclose(log_z[row], logsumexp(scores), rtol=0, atol=1e-5)
        np.testing.assert_array_equal(paths[row, :length], valid_paths[scores.argmax()])
        np.testing.assert_allclose(best_scores[row], scores.max(), rtol=0, atol=1e-5)

    # A valid gold sequence: the constraint only renormalises over valid sequences.
    valid_paths, _ = enumerate_paths(np.zeros((3, len(tags))), 3, crf, only_allowed=True)
    valid_gold = valid_paths[rng.integers(len(valid_paths), size=2)]
    e = emissions[:2, :3]
    expected = [
        path_score(e[i].astype(np.float64), valid_gold[i], crf)
        - logsumexp(enumerate_paths(e[i].astype(np.float64), 3, crf, only_allowed=True)[1])
        for i in range(2)
    ]
    np.testing.assert_allclose(crf.log_likelihood(e, valid_gold).numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("scheme", sorted(SCHEME_TAGS))
def test_decoded_paths_never_break_the_scheme(scheme):
    tags = SCHEME_TAGS[scheme]
    crf = CRF.from_tags(tags, scheme)
    lengths = np.random.default_rng(6).integers(0, 17, size=64)
    emissions, mask, _ = random_inputs(len(tags), lengths=lengths, time=16, seed=6, scale=5.0)
    # Push hard towards the tags that can only continue a chunk (I-, E-, IOB1's B-).
    continuing = [i for i, tag in enumerate(tags) if not crf.allowed_start[i]]
    emissions[..., continuing] += 4.0
    paths = crf(emissions, mask=mask).numpy()
    for row, length in enumerate(lengths):
        assert is_valid(paths[row, :length], crf), (scheme, [tags[i] for i in paths[row, :length]])
    # Without the constraint the same emissions do produce invalid paths.
    free = CRF(len(tags))
    free_paths = free(emissions, mask=mask).numpy()
    assert not all(is_valid(free_paths[row, :n], crf) for row, n in enumerate(lengths))


def test_forbidden_score_stays_finite_in_half_precision():
    assert np.isfinite(np.float16(FORBIDDEN_SCORE)) and np.isfinite(np.float32(FORBIDDEN_SCORE))
    crf = CRF.from_tags(BIO_TAGS, "BIO", dtype="mixed_float16")
    emissions, mask, gold = random_inputs(len(BIO_TAGS), seed=7)
    emissions[~mask] = 0.0
    half = emissions.astype(np.float16)
    assert crf.math_dtype == "float32"
    paths = crf(half, mask=mask)
    log_likelihood = crf.log_likelihood(half, gold, mask).numpy()
    assert np.all(np.isfinite(log_likelihood)) and log_likelihood.dtype == np.float32
    reference = CRF.from_tags(BIO_TAGS, "BIO")
    np.testing.assert_array_equal(paths, reference(half.astype(np.float32), mask=mask))
    np.testing.assert_allclose(
        log_likelihood, reference.log_likelihood(half.astype(np.float32), gold, mask), atol=1e-5
    )


# ---------------------------------------------------------------------------------------------
# Gradients
# ---------------------------------------------------------------------------------------------


def test_gradient_matches_finite_differences():
    crf = random_crf(3, seed=8, dtype="float64")
    emissions, mask, gold = random_inputs(3, lengths=[3, 2, 0], time=3, seed=8)
    emissions = emissions.astype(np.float64)
    emissions[~mask] = 0.0
    weights = crf.get_weights()

    def loss(values, e):
        crf.set_weights(values)
        return float(crf.negative_log_likelihood(e, gold, mask))

    variables = [crf.transitions, crf.start_transitions, crf.end_transitions]
    e_tensor = tf.constant(emissions)
    with tf.GradientTape() as tape:
        tape.watch(e_tensor)
        value = crf.negative_log_likelihood(e_tensor, gold, mask)
    gradients = [g.numpy() for g in tape.gradient(value, variables + [e_tensor])]
    assert all(np.all(np.isfinite(g)) for g in gradients)

    step = 1e-6
    for index, weight in enumerate(weights):
        numeric = np.zeros_like(weight)
        for position in np.ndindex(weight.shape):
            up = [w.copy() for w in weights]
            down = [w.copy() for w in weights]
            up[index][position] += step
            down[index][position] -= step
            numeric[position] = (loss(up, emissions) - loss(down, emissions)) / (2 * step)
        np.testing.assert_allclose(gradients[index], numeric, rtol=0, atol=1e-7)
    crf.set_weights(weights)
    numeric = np.zeros_like(emissions)
    for position in np.ndindex(emissions.shape):
        up, down = emissions.copy(), emissions.copy()
        up[position] += step
        down[position] -= step
        numeric[position] = (loss(weights, up) - loss(weights, down)) / (2 * step)
    np.testing.assert_allclose(gradients[-1], numeric, rtol=0, atol=1e-7)
    # Padding (and the all-padding row) gets no gradient at all.
    assert not gradients[-1][~mask].any()


def test_gradient_is_finite_with_constraints_and_empty_rows():
    crf = CRF.from_tags(BIO_TAGS, "BIO")
    emissions, mask, gold = random_inputs(len(BIO_TAGS), seed=9)
    gold[1, :3] = [0, 2, 2]  # O -> I-PER: a forbidden gold sequence still gives finite values
    e_tensor = tf.constant(emissions)
    with tf.GradientTape() as tape:
        tape.watch(e_tensor)
        value = crf.negative_log_likelihood(e_tensor, gold, mask)
    gradients = tape.gradient(value, crf.trainable_weights + [e_tensor])
    assert np.isfinite(float(value))
    assert all(np.all(np.isfinite(g.numpy())) for g in gradients)


# ---------------------------------------------------------------------------------------------
# Training with model.fit
# ---------------------------------------------------------------------------------------------

TASK_TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def tagging_task(num_sentences, seed):
    """Token ids (0 = padding) and BIO tags; an entity word is B- or I- depending on context.

    Words 1-5 are outside entities, 6-10 person words, 11-15 location words. Entities are
    1-3 words and always separated by an outside word, so a word's tag is B- exactly when
    the previous word has another type: per-token scores cannot tell B- from I-, the
    transitions can.
    """
    rng = np.random.default_rng(seed)
    sentences, labels = [], []
    for _ in range(num_sentences):
        words, tags = [], []
        length = rng.integers(2, 12)
        while len(words) < length:
            kind = rng.choice(["O", "PER", "LOC"], p=[0.4, 0.3, 0.3])
            if kind == "O" or (tags and tags[-1] != 0):
                words.append(int(rng.integers(1, 6)))
                tags.append(0)
                continue
            first_word, first_tag = (6, 1) if kind == "PER" else (11, 3)
            for position in range(int(rng.integers(1, 4))):
                words.append(first_word + int(rng.integers(0, 5)))
                tags.append(first_tag + (position > 0))
        sentences.append(words)
        labels.append(tags)
    time = max(map(len, sentences))
    ids = np.zeros((num_sentences, time), np.int32)
    tags = np.full((num_sentences, time), -1, np.int32)  # -1 at padding: must be ignored
    for row, (words, sentence_tags) in enumerate(zip(sentences, labels)):
        ids[row, : len(words)] = words
        tags[row, : len(words)] = sentence_tags
    return ids, tags


def make_tagger(seed=0, constrained=False):
    keras.utils.set_random_seed(seed)
    emitter = keras.Sequential(
        [keras.layers.Embedding(16, 8, mask_zero=True), keras.layers.Dense(len(TASK_TAGS))],
        name="emitter",
    )
    crf = CRF.from_tags(TASK_TAGS, "BIO") if constrained else CRF(len(TASK_TAGS))
    return CRFModel(emitter, crf)


def token_accuracy(predicted, ids, tags):
    real = ids != 0
    return float((np.asarray(predicted)[real] == tags[real]).mean())


def test_a_tiny_tagger_learns_context_with_model_fit():
    ids, tags = tagging_task(400, seed=10)
    test_ids, test_tags = tagging_task(100, seed=11)
    model = make_tagger()
    model.compile(optimizer=keras.optimizers.Adam(0.05), metrics=["accuracy"])
    history = model.fit(ids, tags, batch_size=32, epochs=6, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.2 * losses[0], losses

    predicted = model.predict(test_ids, batch_size=64, verbose=0)
    assert predicted.dtype == np.int32 and predicted.shape == test_ids.shape
    assert not predicted[test_ids == 0].any()
    assert token_accuracy(predicted, test_ids, test_tags) >= 0.99
    # Per-token scores alone cannot tell B- from I-: the transitions did the work.
    per_token = np.argmax(np.asarray(model(test_ids)), axis=-1)
    assert token_accuracy(per_token, test_ids, test_tags) < 0.9
    # The compiled metric read the decoded paths and ignored padding.
    assert history.history["accuracy"][-1] > 0.97

    results = model.evaluate(test_ids, test_tags, verbose=0, return_dict=True)
    assert np.isfinite(results["loss"]) and results["accuracy"] >= 0.99


def test_crf_model_passes_the_model_checks(tmp_path):
    ids, tags = tagging_task(8, seed=12)
    model, reloaded = run_model_checks(make_tagger, ids, tags, tmp_path, loss=None)
    np.testing.assert_array_equal(reloaded.decode(ids), model.decode(ids))
    np.testing.assert_array_equal(
        reloaded.crf.get_weights()[0], model.crf.get_weights()[0]
    )


def test_constrained_crf_model_trains_and_reloads(tmp_path):
    ids, tags = tagging_task(64, seed=13)
    model = make_tagger(constrained=True)
    model.compile(optimizer=keras.optimizers.Adam(0.05), metrics=["acc"])
    model.fit(ids, tags, batch_size=32, epochs=2, verbose=0)
    path = tmp_path / "tagger.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    # Compiled again from the file: training goes on with the same loss and metric.
    assert reloaded.compiled and float(reloaded.optimizer.learning_rate) == pytest.approx(0.05)
    results = reloaded.evaluate(ids, tags, verbose=0, return_dict=True)
    assert results["acc"] == pytest.approx(token_accuracy(model.decode(ids), ids, tags), abs=1e-6)
    assert results["loss"] == pytest.approx(
        model.evaluate(ids, tags, verbose=0, return_dict=True)["loss"], rel=1e-5
    )
    np.testing.assert_array_equal(reloaded.crf.allowed_transitions, model.crf.allowed_transitions)
    np.testing.assert_array_equal(reloaded.decode(ids), model.decode(ids))


# ---------------------------------------------------------------------------------------------
# Keras integration: masks, symbolic shapes, serialization, validation
# ---------------------------------------------------------------------------------------------


def test_keras_mask_propagates_from_the_embedding():
    keras.utils.set_random_seed(14)
    ids = keras.Input((None,), dtype="int32")
    emissions = keras.layers.Dense(4)(keras.layers.Embedding(10, 6, mask_zero=True)(ids))
    paths = CRF(4, transitions_initializer="random_normal")(emissions)
    assert paths.dtype == "int32" and tuple(paths.shape) == (None, None)
    model = keras.Model(ids, [emissions, paths])
    batch = np.array([[3, 4, 5, 0, 0], [1, 0, 0, 0, 0], [2, 2, 2, 2, 2]], np.int32)
    scores, decoded = model(batch)
    crf = model.layers[-1]
    np.testing.assert_array_equal(decoded, crf(scores, mask=batch != 0))
    np.testing.assert_array_equal(np.asarray(decoded)[batch == 0], 0)


def test_config_round_trip_and_keras_file(tmp_path):
    crf = CRF.from_tags(BIO_TAGS, "BIO", use_boundary_transitions=True, name="crf")
    config = crf.get_config()
    for name in ("num_tags", "use_boundary_transitions", "allowed_transitions", "allowed_start",
                 "allowed_end", "transitions_initializer", "boundary_initializer"):
        assert name in config
    clone = CRF.from_config(config)
    assert clone.get_config() == config

    inputs = keras.Input((None, len(BIO_TAGS)))
    model = keras.Model(inputs, crf(inputs))
    rng = np.random.default_rng(15)
    crf.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in crf.get_weights()])
    emissions, mask, gold = random_inputs(len(BIO_TAGS), seed=15, scale=2.0)
    path = tmp_path / "crf.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(reloaded(emissions), model(emissions))
    restored = reloaded.layers[-1]
    assert isinstance(restored, CRF)
    np.testing.assert_allclose(
        restored.log_likelihood(emissions, gold, mask), crf.log_likelihood(emissions, gold, mask)
    )


def test_boundary_transitions_are_optional():
    with_boundaries = CRF(3)
    with_boundaries.build((None, None, 3))
    without = CRF(3, use_boundary_transitions=False)
    without.build((None, None, 3))
    assert [w.name for w in with_boundaries.weights] == [
        "transitions", "start_transitions", "end_transitions"
    ]
    assert [w.name for w in without.weights] == ["transitions"]


@pytest.mark.parametrize("num_tags", [0, -2, 2.5, "3", True, None])
def test_invalid_num_tags_names_the_value(num_tags):
    with pytest.raises(ValueError, match=f"num_tags={num_tags!r}"):
        CRF(num_tags)


def test_invalid_constraints_and_inputs_name_the_value():
    with pytest.raises(ValueError, match=r"allowed_transitions.*\(3, 3\).*\(2, 2\)"):
        CRF(3, allowed_transitions=np.ones((2, 2), bool))
    with pytest.raises(ValueError, match="allowed_start"):
        CRF(3, allowed_start=[1, 2, 0])
    with pytest.raises(ValueError, match=r"num_tags=3.*\(2, 4, 5\)"):
        CRF(3)(np.zeros((2, 4, 5), np.float32))
    with pytest.raises(ValueError, match="crf="):
        CRFModel(keras.layers.Dense(3), keras.layers.Dense(3))
    with pytest.raises(ValueError, match="loss='mse'"):
        make_tagger().compile(optimizer="adam", loss="mse")


# ---------------------------------------------------------------------------------------------
# TFLite: built-in ops, batch 1, any length
# ---------------------------------------------------------------------------------------------


def test_viterbi_converts_to_tflite_and_matches_keras():
    crf = CRF.from_tags(BIO_TAGS, "BIO", name="crf")
    inputs = keras.Input((None, len(BIO_TAGS)), batch_size=1)
    model = keras.Model(inputs, crf(inputs))
    rng = np.random.default_rng(16)
    crf.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in crf.get_weights()])
    emission_spec = tf.TensorSpec([1, None, len(BIO_TAGS)], tf.float32, name="emissions")
    mask_spec = tf.TensorSpec([1, None], tf.int32, name="mask")

    def tag(emissions):
        return {"tags": crf(emissions)}

    def tag_padded(emissions, mask):
        return {"tags": crf(emissions, mask=mask > 0)}

    content = convert(model, {"tag": (tag, [emission_spec]),
                              "tag_padded": (tag_padded, [emission_spec, mask_spec])})
    audit = audit_ops(content)
    assert audit.builtin_only and "WHILE" in audit.builtin, audit

    interpreter = Interpreter(model_content=content, num_threads=1)
    runner = interpreter.get_signature_runner("tag")
    padded_runner = interpreter.get_signature_runner("tag_padded")
    reference = tf.function(tag, input_signature=[emission_spec])
    padded_reference = tf.function(tag_padded, input_signature=[emission_spec, mask_spec])
    for length in range(1, 61):
        emissions = (3.0 * rng.normal(size=(1, length, len(BIO_TAGS)))).astype(np.float32)
        expected = reference(emissions)["tags"].numpy()
        actual = runner(emissions=emissions)["tags"]
        assert actual.dtype == np.int32
        np.testing.assert_array_equal(actual, expected, err_msg=f"length {length}")
        assert is_valid(actual[0], crf)
        if length in (1, 2, 17, 60):
            np.testing.assert_array_equal(expected, crf(emissions).numpy())
        # The same sentence right-padded with junk: padding decodes to 0, the rest is unchanged.
        junk = (100.0 * rng.normal(size=(1, 3, len(BIO_TAGS)))).astype(np.float32)
        padded = np.concatenate([emissions, junk], axis=1)
        mask = (np.arange(length + 3) < length).astype(np.int32)[None]
        padded_tags = padded_runner(emissions=padded, mask=mask)["tags"]
        np.testing.assert_array_equal(padded_tags, padded_reference(padded, mask)["tags"].numpy())
        np.testing.assert_array_equal(padded_tags[:, :length], expected)
        np.testing.assert_array_equal(padded_tags[:, length:], 0)
