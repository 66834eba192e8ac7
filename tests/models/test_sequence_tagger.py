"""SequenceTagger: fit with plain model.fit, tag schemes, decoding, serialization, export."""

import doctest
import random

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from nlpkit.export import audit_ops, convert
from nlpkit.layers import character_classes
from nlpkit.metrics import SpanF1
from nlpkit.models import SequenceTagger, TagConversionTables, load_keras_model, pad_tagging_batch
from nlpkit.models import sequence_tagger
from nlpkit.text.tag_schemes import TagSchemeError, convert_tags, is_well_formed, scheme_tags
from tests.layer_checks import run_model_checks

TYPES = ["LOC", "PER"]
CHARACTERS = ["<pad>", "<unk>"] + list("abcdefghijABCDEFGHIJ0.")
CLASSES = character_classes(CHARACTERS)
# Word ids 2-5 open a person and 6-9 continue one, 10-13 open a place and 14-17 continue
# one; 18-39 are outside words.
WORDS = 40


def tagging_task(count, seed, scheme="BIOES"):
    """A toy NER task: word ids decide type and start, capitalised characters mark entity words.

    Entities are 1-3 words long; whether a word ends its entity (E-/S- in BIOES) shows only
    in the next word, so a tagger needs the right context. Returns the model inputs and
    gold tag ids.
    """
    rng = np.random.default_rng(seed)
    tags = scheme_tags(TYPES, scheme)
    sentences = []
    for _ in range(count):
        words, chars, gold = [], [], []
        while len(words) < int(rng.integers(2, 9)):
            kind = rng.choice(["O", "O", "PER", "LOC"])
            if kind == "O":
                words.append(int(rng.integers(18, WORDS)))
                chars.append([int(rng.integers(2, 12)) for _ in range(int(rng.integers(1, 5)))])
                gold.append("O")
                continue
            first = 2 if kind == "PER" else 10
            size = int(rng.integers(1, 4))
            for position in range(size):
                words.append(first + (0 if position == 0 else 4) + int(rng.integers(0, 4)))
                chars.append([12 + int(rng.integers(0, 10))] + [int(rng.integers(2, 12)) for _ in range(3)])
                gold.append(("B-" if position == 0 else "I-") + kind)
        sentences.append((words, chars, convert_tags(gold, "BIO", scheme)))
    batch = pad_tagging_batch([s[0] for s in sentences], [s[1] for s in sentences])
    ids = np.zeros(batch["word_ids"].shape, np.int32)
    for row, (_, _, sentence_tags) in enumerate(sentences):
        ids[row, : len(sentence_tags)] = [tags.index(tag) for tag in sentence_tags]
    return batch, ids


def make_tagger(head="crf", scheme="BIOES", output_scheme="BIO", seed=0, **overrides):
    keras.utils.set_random_seed(seed)
    options = dict(
        vocabulary_size=WORDS, tags=scheme_tags(TYPES, scheme), scheme=scheme, output_scheme=output_scheme,
        char_vocabulary_size=len(CHARACTERS), char_classes=CLASSES, word_embedding_dim=12,
        char_embedding_dim=6, char_filters=8, casing_dim=3, units=12, dropout=0.1, word_dropout=0.0, head=head,
    )
    options.update(overrides)
    return SequenceTagger(**options)


def token_accuracy(predicted, inputs, gold):
    real = inputs["word_ids"] != 0
    return float((np.asarray(predicted)[real] == gold[real]).mean())


# ---------------------------------------------------------------------------------------------
# Training and decoding
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted_tagger():
    """A function ``(head, ensemble_size) -> (model, history)``: each tagger trained once per module.

    Training is the slow part of this file, so the learning test and the TFLite parity test
    share the same fitted models (the parity test then compares a confident, trained tagger).
    """
    fitted = {}

    def fit(head, ensemble_size):
        if (head, ensemble_size) not in fitted:
            train, train_tags = tagging_task(400, seed=1)
            model = make_tagger(head, ensemble_size=ensemble_size)
            model.compile(optimizer=keras.optimizers.Adam(0.02), metrics=[SpanF1(model.tags, "BIOES"), "accuracy"])
            history = model.fit(train, train_tags, batch_size=32, epochs=12, verbose=0)
            fitted[head, ensemble_size] = model, history.history
        return fitted[head, ensemble_size]

    return fit


@pytest.mark.parametrize("head, ensemble_size", [("crf", 1), ("softmax", 1), ("crf", 2)])
def test_learns_the_toy_task_with_plain_fit(fitted_tagger, head, ensemble_size):
    test, test_tags = tagging_task(100, seed=2)
    model, history = fitted_tagger(head, ensemble_size)
    assert history["loss"][-1] < 0.3 * history["loss"][0]
    predicted = model.predict(test, batch_size=64, verbose=0)
    assert predicted.dtype == np.int32 and predicted.shape == test["word_ids"].shape
    assert not predicted[test["word_ids"] == 0].any()
    assert token_accuracy(predicted, test, test_tags) >= 0.97
    results = model.evaluate(test, test_tags, verbose=0, return_dict=True)
    assert results["span_f1"] >= 0.93 and results["accuracy"] >= 0.97
    if head == "crf":
        # Constrained Viterbi never writes a BIOES sequence the scheme forbids.
        for row, tags in zip(predicted, test["word_ids"]):
            sentence = [model.tags[i] for i in row[: int((tags != 0).sum())]]
            assert is_well_formed(sentence, "BIOES"), sentence


def test_padding_targets_and_sample_weights_are_ignored_where_they_should_be():
    inputs, tags = tagging_task(16, seed=3)
    model = make_tagger(dropout=0.0)
    model.compile(optimizer="adam", metrics=[SpanF1(model.tags, "BIOES")])
    junk = tags.copy()
    junk[inputs["word_ids"] == 0] = 7  # anything at padding
    clean = model.evaluate(inputs, tags, verbose=0, return_dict=True)
    assert model.evaluate(inputs, junk, verbose=0, return_dict=True) == pytest.approx(clean)
    half = model.evaluate(inputs, tags, sample_weight=np.full(16, 0.5), verbose=0, return_dict=True)
    assert half["loss"] == pytest.approx(clean["loss"] / 2, rel=1e-5)


def test_empty_and_long_sentences_are_tagged():
    model = make_tagger()
    empty = model.decode({"word_ids": np.zeros((1, 0), np.int32), "char_ids": np.zeros((1, 0, 0), np.int32)})
    assert tuple(empty.shape) == (1, 0)
    padded_empty = model.predict_on_batch(pad_tagging_batch([[]], [[]]))
    assert padded_empty.tolist() == [[0]]
    rng = np.random.default_rng(4)
    long_words = rng.integers(2, WORDS, 500).tolist()
    long_chars = [[int(c) for c in rng.integers(2, len(CHARACTERS), 3)] for _ in long_words]
    paths = np.asarray(model.decode(pad_tagging_batch([long_words], [long_chars])))
    assert paths.shape == (1, 500)
    assert is_well_formed([model.tags[i] for i in paths[0]], "BIOES")


def test_a_sentence_decodes_the_same_alone_and_in_a_padded_batch():
    inputs, _ = tagging_task(12, seed=5)
    model = make_tagger(seed=5)
    batch = np.asarray(model.decode(inputs))
    for row in range(12):
        length = int((inputs["word_ids"][row] != 0).sum())
        alone = {key: value[row : row + 1, :length] for key, value in inputs.items()}
        np.testing.assert_array_equal(np.asarray(model.decode(alone))[0], batch[row, :length])


def test_predict_tags_keeps_the_order_and_the_output_scheme():
    class Tokenizer:  # maps the toy task's tokens straight to ids
        def encode_tokens(self, tokens):
            return [int(t) for t in tokens], [[12 + int(t) % 10, 3] for t in tokens]

    model = make_tagger()
    token_lists = [["3", "4", "20"], [], ["11"] * 7, ["25", "12"]]
    tags = model.predict_tags(token_lists, Tokenizer(), batch_size=2)
    assert [len(sentence) for sentence in tags] == [3, 0, 7, 2]
    for tokens, sentence in zip(token_lists, tags):
        word_ids, char_ids = Tokenizer().encode_tokens(tokens)
        ids = np.asarray(model.decode(pad_tagging_batch([word_ids], [char_ids])))[0, : len(tokens)]
        assert sentence == convert_tags([model.tags[i] for i in ids], "BIOES", "BIO")


# ---------------------------------------------------------------------------------------------
# Tags and schemes
# ---------------------------------------------------------------------------------------------


def test_encode_and_decode_tags_convert_between_schemes():
    model = make_tagger(scheme="BIOES", output_scheme="IOB1")
    iob1 = ["I-PER", "I-PER", "B-PER", "O", "I-LOC"]
    ids = model.encode_tags(iob1)
    assert [model.tags[i] for i in ids] == ["B-PER", "E-PER", "S-PER", "O", "S-LOC"]
    assert model.decode_tags(ids) == iob1
    with pytest.raises(TagSchemeError, match="'E-PER'"):
        model.encode_tags(["E-PER"])  # not an IOB1 tag
    with pytest.raises(ValueError, match="'S-ORG'"):
        model.encode_tags(["I-ORG"])  # a type the model does not know


@pytest.mark.parametrize("source", ["BIO", "IOB1", "BIOES"])
@pytest.mark.parametrize("target", ["BIO", "IOB1", "BIOES"])
def test_graph_conversion_equals_convert_tags_on_any_sequence(source, target):
    tags = scheme_tags(["PER", "LOC", "ORG"], source)
    tables = TagConversionTables(tags, source, target)
    rng = random.Random(f"{source}{target}")
    rows = [[rng.randrange(len(tags)) for _ in range(rng.randrange(0, 9))] for _ in range(300)]
    width = max(len(row) for row in rows)
    ids = np.zeros((len(rows), width), np.int32)
    mask = np.zeros((len(rows), width), bool)
    for index, row in enumerate(rows):
        ids[index, : len(row)] = row
        mask[index, : len(row)] = True
    converted = tables.convert(tf.constant(ids), tf.constant(mask)).numpy()
    for index, row in enumerate(rows):  # malformed sequences included: random ids
        expected = convert_tags([tags[i] for i in row], source, target)
        assert [tag.decode() for tag in converted[index, : len(row)]] == expected
        assert all(tag == b"" for tag in converted[index, len(row) :])


# ---------------------------------------------------------------------------------------------
# Serialization and configuration
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ensemble_size", [1, 2])
def test_passes_the_model_checks(tmp_path, ensemble_size):
    inputs, tags = tagging_task(8, seed=6)
    model, reloaded = run_model_checks(
        lambda: make_tagger(word_dropout=0.1, ensemble_size=ensemble_size), inputs, tags, tmp_path, loss=None
    )
    np.testing.assert_array_equal(reloaded.decode(inputs), model.decode(inputs))
    assert reloaded.tags == model.tags and reloaded.output_scheme == "BIO"


def test_compiled_model_reloads_and_keeps_training(tmp_path):
    inputs, tags = tagging_task(32, seed=7)
    model = make_tagger(head="softmax")
    model.compile(optimizer=keras.optimizers.Adam(0.01), metrics=[SpanF1(model.tags, "BIOES")])
    model.fit(inputs, tags, batch_size=16, epochs=1, verbose=0)
    model.save(tmp_path / "tagger.keras")
    reloaded = load_keras_model(tmp_path / "tagger.keras")
    assert reloaded.compiled
    ours = model.evaluate(inputs, tags, verbose=0, return_dict=True)
    theirs = reloaded.evaluate(inputs, tags, verbose=0, return_dict=True)
    assert theirs == pytest.approx(ours, rel=1e-5)
    reloaded.fit(inputs, tags, batch_size=16, epochs=1, verbose=0)


def test_rare_words_become_unknown_in_training_only():
    inputs, _ = tagging_task(16, seed=9)
    start = 30  # ids 30 and up are "rare"; word_dropout 0 leaves the others alone
    model = make_tagger(dropout=0.0, rare_word_start=start, rare_word_dropout=0.999999)
    words = inputs["word_ids"]
    assert (words >= start).any() and ((words > 1) & (words < start)).any()
    unknown = dict(inputs, word_ids=np.where(words >= start, model.unknown_id, words))
    np.testing.assert_allclose(model(inputs, training=True), model(unknown, training=False), atol=1e-6)
    # Inference reads every word as it is.
    assert not np.allclose(model(inputs, training=False), model(unknown, training=False), atol=1e-3)
    config = model.get_config()
    assert (config["rare_word_start"], config["rare_word_dropout"]) == (start, 0.999999)
    assert SequenceTagger.from_config(config).rare_word_start == start


def test_word_only_model_and_embeddings():
    model = make_tagger(char_vocabulary_size=0, casing_dim=0, char_classes=None)
    assert model.members[0].char_encoder is None and model.members[0].casing is None
    inputs, _ = tagging_task(4, seed=8)
    assert tuple(model(inputs).shape) == inputs["word_ids"].shape + (len(model.tags),)
    matrix = np.random.default_rng(0).normal(size=(WORDS, 12)).astype("float32")
    model.set_embeddings(matrix)
    np.testing.assert_array_equal(model.word_embedding.embeddings.numpy(), matrix)
    with pytest.raises(ValueError, match=r"\(3, 12\)"):
        model.set_embeddings(matrix[:3])


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"head": "hmm"}, "head='hmm'"),
        ({"units": 0}, "units=0"),
        ({"ensemble_size": 0}, "ensemble_size=0"),
        ({"dropout": 1.0}, "dropout=1.0"),
        ({"tags": ["O", "B-PER"], "scheme": "BIOES"}, None),  # valid: fewer tags are fine
        ({"tags": ["O", "X-PER"]}, "'X-PER'"),
        ({"tags": "O"}, "tags='O'"),
        ({"scheme": "BILOU"}, "BILOU"),
        ({"casing_dim": 4, "char_classes": None}, "casing_dim=4"),
        ({"rare_word_dropout": 1.0}, "rare_word_dropout=1.0"),
        ({"rare_word_start": -1}, "rare_word_start=-1"),
    ],
)
def test_arguments_are_validated(overrides, message):
    if message is None:
        make_tagger(**overrides)
        return
    with pytest.raises(ValueError, match=message):
        make_tagger(**overrides)


def test_compile_refuses_a_loss_and_inputs_are_checked():
    model = make_tagger()
    with pytest.raises(ValueError, match="loss='mse'"):
        model.compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match="missing"):
        model({"word_ids": np.ones((1, 2), np.int32)})
    with pytest.raises(ValueError, match="or the pair"):
        model(np.ones((1, 2), np.int32))


# ---------------------------------------------------------------------------------------------
# Ensembles
# ---------------------------------------------------------------------------------------------


def randomize_crfs(model, seed):
    """Gives every member's CRF its own random transitions, so their mean matters."""
    rng = np.random.default_rng(seed)
    for crf in model.crfs:
        for weight in (crf.transitions, crf.start_transitions, crf.end_transitions):
            weight.assign(rng.normal(size=weight.shape).astype("float32"))


def test_ensemble_decodes_the_path_with_the_best_mean_member_score():
    model = make_tagger(ensemble_size=3, seed=11)
    inputs, _ = tagging_task(6, seed=11)
    short = {"word_ids": inputs["word_ids"][:, :3], "char_ids": inputs["char_ids"][:, :3]}  # 2-3 real tokens
    mask = short["word_ids"] != 0
    vectors = model.word_embedding(short["word_ids"])
    members = [np.asarray(member(vectors, short["char_ids"], mask)) for member in model.members]
    np.testing.assert_allclose(np.asarray(model(short)), np.mean(members, axis=0), atol=1e-6)
    assert not np.allclose(members[0], members[1])  # independently initialised
    assert len([w for w in model.weights if "embeddings" in w.path and "word" in w.path]) == 1  # shared table
    randomize_crfs(model, seed=11)
    paths = np.asarray(model.decode(short))
    num_tags = len(model.tags)
    for row in range(len(mask)):
        length = int(mask[row].sum())
        candidates = np.array(np.meshgrid(*[range(num_tags)] * length, indexing="ij")).reshape(length, -1).T
        # Brute force: every tag sequence, scored by each member's own CRF, averaged.
        scores = np.mean([
            np.asarray(crf.sequence_score(np.repeat(emissions[row : row + 1, :length], len(candidates), axis=0),
                                          candidates))
            for crf, emissions in zip(model.crfs, members)
        ], axis=0)
        np.testing.assert_array_equal(paths[row, :length], candidates[np.argmax(scores)])


def test_ensemble_trains_each_member_on_its_own_loss():
    model = make_tagger(ensemble_size=2, dropout=0.0, seed=12)
    inputs, tags = tagging_task(8, seed=12)
    randomize_crfs(model, seed=12)
    mask = inputs["word_ids"] != 0
    training_scores = model(inputs, training=True)
    assert tuple(training_scores.shape) == inputs["word_ids"].shape + (2, len(model.tags))
    per_member = [float(crf.negative_log_likelihood(training_scores[:, :, index], tags, mask))
                  for index, crf in enumerate(model.crfs)]
    got = float(model.compute_loss(x=inputs, y=tags, y_pred=training_scores))
    np.testing.assert_allclose(got, np.mean(per_member), rtol=1e-5)
    # Evaluation scores the ensemble: one CRF with the members' mean emissions and transitions.
    mean_scores = model(inputs)
    ensemble_loss = float(model.compute_loss(x=inputs, y=tags, y_pred=mean_scores))
    transitions, start, end = (np.mean([np.asarray(crf.transition_scores()[part]) for crf in model.crfs], axis=0)
                               for part in range(3))
    expected = float(model.crfs[1].negative_log_likelihood(mean_scores, tags, mask,
                                                            transition_scores=(transitions, start, end)))
    np.testing.assert_allclose(ensemble_loss, expected, rtol=1e-5)
    assert not np.isclose(ensemble_loss, float(model.crfs[0].negative_log_likelihood(mean_scores, tags, mask)))


def test_tagger_member_config_round_trip():
    model = make_tagger(ensemble_size=2)
    inputs, _ = tagging_task(4, seed=13)
    mask = inputs["word_ids"] != 0
    vectors = model.word_embedding(inputs["word_ids"])
    member = model.members[1]
    expected = np.asarray(member(vectors, inputs["char_ids"], mask))
    twin = sequence_tagger.TaggerMember.from_config(member.get_config())
    twin(vectors, inputs["char_ids"], mask)
    twin.set_weights(member.get_weights())
    np.testing.assert_allclose(np.asarray(twin(vectors, inputs["char_ids"], mask)), expected, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ensemble_size", [1, 2])
def test_tflite_tag_signature_decodes_like_keras(fitted_tagger, ensemble_size):
    model, _ = fitted_tagger("crf", ensemble_size)
    content = convert(model, model.tflite_endpoints())
    audit = audit_ops(content)
    assert audit.builtin_only and "WHILE" in audit.builtin, audit
    runner = Interpreter(model_content=content).get_signature_runner("tag")
    test, _ = tagging_task(30, seed=10)
    # One padded Keras batch is the reference: a sentence decodes the same alone and padded
    # (test_a_sentence_decodes_the_same_alone_and_in_a_padded_batch).
    batch_paths = np.asarray(model.decode(test))
    for row in range(30):
        length = int((test["word_ids"][row] != 0).sum())
        width = max(1, int((test["char_ids"][row, :length] != 0).sum(axis=1).max()))
        alone = {"word_ids": test["word_ids"][row : row + 1, :length],
                 "char_ids": test["char_ids"][row : row + 1, :length, :width]}
        expected = batch_paths[row : row + 1, :length]
        for _ in range(2):  # a second invoke must give the same tags: no state is kept
            np.testing.assert_array_equal(runner(**alone)["tags"], expected)


@pytest.mark.parametrize("name", ["pad_tagging_batch", "TagConversionTables"])
def test_doctests(name):
    # The SequenceTagger example needs data; these two run as written.
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in doctest.DocTestFinder().find(getattr(sequence_tagger, name), name, globs=vars(sequence_tagger)):
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
