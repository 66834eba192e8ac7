"""Corpus BLEU and chrF through sacreBLEU (Post, 2018), on detokenized text.

Scores are sacreBLEU's own: corpus-level statistics, its standard ``13a`` tokenizer for
BLEU (the WMT convention; pass ``tokenize="intl"`` or ``"none"`` for others) and chrF with
character 6-grams and beta 2 (Popović, 2015). Hypotheses and references must be plain
detokenized text, as a translation model outputs it: tokenizing them first would change
the scores. The returned signature records every option, so a reported number can be
reproduced. Pure Python (sacrebleu), no TensorFlow.
"""

import dataclasses

import sacrebleu

__all__ = ["TranslationScores", "corpus_bleu", "corpus_chrf", "translation_scores"]


def _references(hypotheses, references):
    """Checks the inputs; returns references as sacreBLEU's streams (one list per reference set)."""
    if isinstance(hypotheses, str) or isinstance(references, str):
        raise TypeError("`hypotheses` and `references` must be lists of sentences, not one str.")
    hypotheses = list(hypotheses)
    references = list(references)
    if references and all(isinstance(reference, str) for reference in references):
        streams = [references]
    else:
        # One list of references per hypothesis -> one stream per reference position.
        counts = {len(reference) for reference in references}
        if len(counts) != 1:
            raise ValueError(
                "Every hypothesis needs the same number of references (or give one str per "
                f"hypothesis). Received reference counts {sorted(counts)}"
            )
        streams = [list(stream) for stream in zip(*references)]
    for stream in streams:
        if len(stream) != len(hypotheses):
            raise ValueError(
                f"{len(hypotheses)} hypotheses but {len(stream)} references; they must be aligned."
            )
    for sentence in hypotheses + [s for stream in streams for s in stream]:
        if not isinstance(sentence, str):
            raise TypeError(f"Every hypothesis and reference must be a str. Received: {sentence!r:.80}")
    return hypotheses, streams


def corpus_bleu(hypotheses, references, tokenize="13a", lowercase=False):
    """Corpus BLEU (0-100) of detokenized hypotheses against one or more references each.

    Args:
        hypotheses: list of str.
        references: list of str (one reference per hypothesis) or list of lists of str.
        tokenize: sacreBLEU tokenizer, default "13a".
        lowercase: bool, default False.

    Example:
        >>> round(corpus_bleu(["the cat sat on the mat"], ["the cat sat on a mat"]), 2)
        53.73
    """
    hypotheses, streams = _references(hypotheses, references)
    return float(sacrebleu.corpus_bleu(hypotheses, streams, tokenize=tokenize, lowercase=lowercase).score)


def corpus_chrf(hypotheses, references, word_order=0):
    """Corpus chrF (0-100; chrF++ with ``word_order=2``).

    Example:
        >>> corpus_chrf(["a dog runs"], ["a dog runs"])
        100.0
    """
    hypotheses, streams = _references(hypotheses, references)
    return float(sacrebleu.corpus_chrf(hypotheses, streams, word_order=word_order).score)


@dataclasses.dataclass(frozen=True)
class TranslationScores:
    """BLEU and chrF of one corpus, with sacreBLEU's signatures.

    Attributes:
        bleu: float, corpus BLEU (0-100).
        chrf: float, corpus chrF (0-100).
        bleu_signature: str, sacreBLEU's description of the BLEU settings.
        chrf_signature: str, the same for chrF.
        sentences: int, number of hypotheses.

    Example:
        >>> round(translation_scores(["a dog runs home"], ["a dog runs home"]).bleu, 6)
        100.0
    """

    bleu: float
    chrf: float
    bleu_signature: str
    chrf_signature: str
    sentences: int

    def as_dict(self):
        """JSON-able fields, scores rounded to 2 decimals."""
        values = dataclasses.asdict(self)
        values["bleu"], values["chrf"] = round(self.bleu, 2), round(self.chrf, 2)
        return values


def translation_scores(hypotheses, references, tokenize="13a"):
    """`TranslationScores` (BLEU with ``tokenize`` and chrF) of a translated corpus.

    Example:
        >>> scores = translation_scores(translations, [pair.target for pair in test_pairs])  # doctest: +SKIP
        >>> scores.as_dict()["bleu"]  # doctest: +SKIP
    """
    hypotheses, streams = _references(hypotheses, references)
    bleu = sacrebleu.metrics.BLEU(tokenize=tokenize)
    chrf = sacrebleu.metrics.CHRF()
    return TranslationScores(
        bleu=float(bleu.corpus_score(hypotheses, streams).score),
        chrf=float(chrf.corpus_score(hypotheses, streams).score),
        bleu_signature=str(bleu.get_signature()),
        chrf_signature=str(chrf.get_signature()),
        sentences=len(hypotheses),
    )
