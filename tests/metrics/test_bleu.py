"""Corpus BLEU and chrF through sacreBLEU: hand-computed values, references, validation."""

import doctest
import math

import pytest

from nlpkit.metrics import bleu as bleu_module
from nlpkit.metrics import corpus_bleu, corpus_chrf, translation_scores


def test_bleu_matches_a_hand_computed_value():
    # n-gram precisions 5/6, 3/5, 2/4, 1/3; equal lengths, so no brevity penalty.
    expected = 100 * (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25
    assert corpus_bleu(["the cat sat on the mat"], ["the cat sat on a mat"]) == pytest.approx(expected, abs=1e-6)


def test_brevity_penalty_and_corpus_level_statistics():
    # A 4-word hypothesis against a 6-word reference: every n-gram matches, BP = exp(1 - 6/4).
    assert corpus_bleu(["the cat sat on"], ["the cat sat on a mat"]) == pytest.approx(
        100 * math.exp(1 - 6 / 4), abs=1e-6
    )
    # Corpus BLEU pools n-gram counts: it is not the mean of sentence scores.
    hypotheses, references = ["a dog runs in the park", "two men"], ["a dog runs in the park", "two men sit"]
    pooled = corpus_bleu(hypotheses, references)
    assert 0 < pooled < 100
    assert pooled != pytest.approx((corpus_bleu(hypotheses[:1], references[:1]) + corpus_bleu(hypotheses[1:], references[1:])) / 2)


def test_13a_tokenizer_splits_punctuation_and_lowercase_option():
    # 13a separates the final period, so a missing period costs one unigram, not a word.
    assert corpus_bleu(["A dog runs."], ["A dog runs."]) == pytest.approx(100.0)
    assert corpus_bleu(["a dog runs ."], ["A dog runs."], lowercase=True) == pytest.approx(100.0)
    assert corpus_bleu(["A dog runs"], ["A dog runs."]) < 100.0


def test_multiple_references_and_chrf():
    hypotheses = ["a dog is running", "the cat sleeps"]
    single = corpus_bleu(hypotheses, ["a dog runs", "a cat sleeps"])
    multi = corpus_bleu(hypotheses, [["a dog runs", "a dog is running"], ["a cat sleeps", "the cat sleeps"]])
    assert multi == pytest.approx(100.0) and single < multi
    assert corpus_chrf(["a dog runs"], ["a dog runs"]) == pytest.approx(100.0)
    assert 0 < corpus_chrf(["a dog ran"], ["a dog runs"]) < 100
    assert corpus_chrf(["xyz"], ["a dog runs"]) == pytest.approx(0.0)


def test_translation_scores_record_signatures_and_handle_empty_output():
    scores = translation_scores(["", "a dog runs home"], ["a cat sleeps", "a dog runs home"])
    assert 0 < scores.bleu < 100 and 0 < scores.chrf < 100 and scores.sentences == 2
    assert "tok:13a" in scores.bleu_signature and "nc:6" in scores.chrf_signature
    assert scores.as_dict()["bleu"] == round(scores.bleu, 2)
    assert translation_scores([""], ["a dog"]).bleu == 0.0


def test_misaligned_or_wrong_inputs_are_named():
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        corpus_bleu(["a", "b"], ["a"])
    with pytest.raises(TypeError, match="not one str"):
        corpus_bleu("a dog", "a dog")
    with pytest.raises(ValueError, match=r"reference counts \[1, 2\]"):
        corpus_bleu(["a", "b"], [["a"], ["b", "c"]])
    with pytest.raises(TypeError, match="must be a str"):
        corpus_chrf([None], ["a"])


def test_docstring_examples():
    assert doctest.testmod(bleu_module).failed == 0
