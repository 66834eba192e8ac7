"""Evaluation metrics. Each module is pure numpy unless its docstring says otherwise.

``SpanF1`` and the perplexity metrics (Keras metrics) are imported on first access (PEP 562), so importing this
package does not import TensorFlow.
"""

from nlpkit.lazy import lazy_attributes
from nlpkit.metrics.classification import classification_report, confusion_matrix, format_report

_LAZY = {
    "span_f1": "nlpkit.metrics.entity_spans",
    "format_span_report": "nlpkit.metrics.entity_spans",
    "SpanF1": "nlpkit.metrics.entity_spans",
    # Translation: sacreBLEU's corpus BLEU and chrF.
    **{name: "nlpkit.metrics.bleu" for name in ("corpus_bleu", "corpus_chrf", "translation_scores", "TranslationScores")},
    # Language-model metrics: exact perplexity over a stream, and the Keras metrics.
    **{
        name: "nlpkit.metrics.perplexity"
        for name in (
            "compute_perplexity",
            "token_log_likelihood",
            "perplexity_from_nll",
            "nats_from_nll",
            "bits_from_nll",
            "LanguageModelMetric",
            "Perplexity",
            "NatsPerToken",
            "BitsPerToken",
        )
    },
}

__all__ = ["classification_report", "confusion_matrix", "format_report", *_LAZY]

__getattr__ = lazy_attributes(globals(), _LAZY)


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
