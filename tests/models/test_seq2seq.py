"""Seq2Seq: model checks, step equals teacher forcing, own loss, learning and decoding a small set."""

import keras
import numpy as np
import pytest

from nlpkit.data import read_parallel_tsv
from nlpkit.data.translation import encode_pairs, teacher_forcing_arrays, translation_dataset
from nlpkit.decoding import KerasDecoderStep, strip_end, translate_ids
from nlpkit.models import Seq2Seq, label_smoothed_loss
from nlpkit.samples import sample_path
from nlpkit.text import PythonSentencePieceTokenizer
from tests.layer_checks import run_model_checks

SOURCES = [[5, 6, 7, 3], [8, 3], [9, 10, 11, 12, 3]]
TARGETS = [[13, 14], [15, 16, 17], [18]]

CONFIGS = {
    "luong-gru": dict(),
    "luong-lstm-no-feeding": dict(cell="lstm", input_feeding=False),
    "bahdanau-lstm-tied-2-layers": dict(cell="lstm", attention="bahdanau", tie_embeddings=True, encoder_layers=2),
}


def small(**kwargs):
    return Seq2Seq(20, 24, embedding_dim=8, units=12, dropout=0.0, seed=1, **kwargs)


def test_model_checks(tmp_path):
    inputs, labels = teacher_forcing_arrays(SOURCES, TARGETS)
    model, reloaded = run_model_checks(
        lambda: small(cell="lstm", attention="bahdanau", tie_embeddings=True), inputs, labels, tmp_path, loss=None
    )
    assert reloaded.output_layer._embedding is reloaded.target_embedding


@pytest.mark.parametrize("config", list(CONFIGS.values()), ids=list(CONFIGS))
def test_step_from_decoding_states_equals_teacher_forcing(config):
    model = small(**config)
    inputs, _ = teacher_forcing_arrays(SOURCES, TARGETS)
    expected = np.asarray(model(inputs))
    states = model.decoding_states(inputs["source_ids"])
    for t in range(inputs["decoder_input_ids"].shape[1]):
        logits, states = model.step(inputs["decoder_input_ids"][:, t], states)
        np.testing.assert_allclose(np.asarray(logits), expected[:, t], atol=1e-5)
    # Without dropout, training mode (the fast backward path where there is one) computes the same.
    np.testing.assert_allclose(np.asarray(model(inputs, training=True)), expected, atol=1e-5)
    # Padding after the source changes nothing: the memory is masked.
    padded = np.pad(inputs["source_ids"], ((0, 0), (0, 3)))
    np.testing.assert_allclose(np.asarray(model({**inputs, "source_ids": padded})), expected, atol=1e-5)


def test_label_smoothed_loss_matches_numpy_and_skips_padding():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 6)).astype("float32")
    targets = np.array([[1, 4, 0], [5, 0, 0]])
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    real = targets != 0
    nll = -np.take_along_axis(log_probs, targets[..., None], -1)[..., 0]
    smoothed = 0.9 * nll - 0.1 * log_probs.mean(-1)
    assert float(label_smoothed_loss(targets, logits, 0.1)) == pytest.approx(smoothed[real].mean(), rel=1e-5)
    assert float(label_smoothed_loss(targets, logits)) == pytest.approx(nll[real].mean(), rel=1e-5)
    weighted = label_smoothed_loss(targets, logits, sample_weight=np.array([1.0, 0.0]))
    assert float(weighted) == pytest.approx(nll[0, :2].mean(), rel=1e-5)
    assert float(label_smoothed_loss(np.zeros((1, 2), int), logits[:1, :2])) == 0.0


def test_arguments_are_validated_with_the_value():
    with pytest.raises(ValueError, match="attention='dot'"):
        Seq2Seq(10, 10, attention="dot")
    with pytest.raises(ValueError, match="cell='rnn'"):
        Seq2Seq(10, 10, cell="rnn")
    with pytest.raises(ValueError, match="label_smoothing=1.0"):
        Seq2Seq(10, 10, label_smoothing=1.0)
    with pytest.raises(ValueError, match="eos_id=12"):
        Seq2Seq(10, 10, eos_id=12)
    with pytest.raises(ValueError, match="compile\\(\\) takes no loss"):
        Seq2Seq(10, 10).compile("adam", loss="mse")


@pytest.fixture(scope="module")
def trained():
    """A small model that has memorised 24 pairs of the embedded sample."""
    pairs = read_parallel_tsv(sample_path("translation_train.tsv"), "de", "en")
    tokenizer = PythonSentencePieceTokenizer.train(
        [text for pair in pairs for text in pair], vocabulary_size=160
    )
    pairs = pairs[:24]
    sources, targets = encode_pairs(tokenizer, pairs)
    keras.utils.set_random_seed(0)
    model = Seq2Seq(
        tokenizer.vocabulary_size, tokenizer.vocabulary_size, embedding_dim=32, units=48, dropout=0.0,
        label_smoothing=0.0, seed=0,
    )
    model.compile(keras.optimizers.Adam(0.01))
    # One padded array (one traced shape) keeps this fast; the bucketed dataset is tested below.
    inputs, labels = teacher_forcing_arrays(sources, targets)
    history = model.fit(inputs, labels, batch_size=4, epochs=100, verbose=0)
    return model, tokenizer, pairs, sources, targets, history.history["loss"]


def test_fit_learns_and_greedy_and_beam_reproduce_the_targets(trained):
    model, tokenizer, pairs, sources, targets, losses = trained
    assert losses[-1] < 0.1 * losses[0]
    step = KerasDecoderStep(model)
    greedy = translate_ids(step, sources, model.bos_id, model.eos_id)
    beam = translate_ids(step, sources, model.bos_id, model.eos_id, method="beam", beam_width=3)
    greedy_texts = [tokenizer.decode(strip_end(tokens, model.eos_id)) for tokens in greedy.tokens]
    beam_texts = [tokenizer.decode(strip_end(tokens, model.eos_id)) for tokens in beam.tokens]
    expected = [pair.target for pair in pairs]
    assert sum(a == b for a, b in zip(greedy_texts, expected)) >= 22, list(zip(greedy_texts, expected))
    assert sum(a == b for a, b in zip(beam_texts, expected)) >= 22
    # Batched search equals one row at a time.
    for row in (0, 5):
        alone = translate_ids(step, [sources[row]], model.bos_id, model.eos_id)
        assert alone.tokens[0] == greedy.tokens[row]


def test_empty_long_and_unseen_sources_translate_without_error(trained):
    model, tokenizer, _, sources, _, _ = trained
    step = KerasDecoderStep(model)
    longest = max(len(source) for source in sources)
    odd = [
        [model.eos_id],  # the empty string
        (sources[0][:-1] * (5 * longest // len(sources[0]) + 1)) + [model.eos_id],
        tokenizer.encode("Ωμέγα 日本語 🙂") + [model.eos_id],
    ]
    for method in ("greedy", "beam"):
        result = translate_ids(step, odd, model.bos_id, model.eos_id, method=method, max_length_ratio=1.0,
                               max_length_offset=5)
        for source, tokens in zip(odd, result.tokens):
            assert 1 <= len(tokens) <= len(source) + 5
            assert isinstance(tokenizer.decode(strip_end(tokens, model.eos_id)), str)


def test_translation_dataset_batches_like_teacher_forcing_arrays():
    sources = [[5, 3], [6, 7, 8, 3], [9, 3], [10, 11, 12, 13, 14, 3]]
    targets = [[15], [16, 17], [], [18, 19, 20]]
    batches = list(translation_dataset(sources, targets, batch_size=2, num_buckets=2))
    seen = []
    for inputs, labels in batches:
        source_ids = inputs["source_ids"].numpy()
        for row in range(len(source_ids)):
            source = [i for i in source_ids[row] if i]
            index = sources.index(source)
            expected_inputs, expected_labels = teacher_forcing_arrays([sources[index]], [targets[index]])
            width = expected_labels.shape[1]
            assert inputs["decoder_input_ids"].numpy()[row, :width].tolist() == expected_inputs["decoder_input_ids"][0].tolist()
            assert labels.numpy()[row, :width].tolist() == expected_labels[0].tolist()
            assert not labels.numpy()[row, width:].any()
            seen.append(index)
    assert sorted(seen) == [0, 1, 2, 3]
    # Bucketing keeps short sources together: the two 2-id sources share a batch.
    assert any(sorted(len([i for i in row if i]) for row in b[0]["source_ids"].numpy()) == [2, 2] for b in batches)
