"""Evaluation metrics. Each module is pure numpy unless its docstring says otherwise.

``SpanF1`` (a Keras metric) is imported on first access (PEP 562), so importing this
package does not import TensorFlow.
"""

from nlpkit.lazy import lazy_attributes
from nlpkit.metrics.classification import classification_report, confusion_matrix, format_report

_LAZY = {
    "span_f1": "nlpkit.metrics.span_f1",
    "format_span_report": "nlpkit.metrics.span_f1",
    "SpanF1": "nlpkit.metrics.span_f1",
}

__all__ = ["classification_report", "confusion_matrix", "format_report", *_LAZY]

__getattr__ = lazy_attributes(globals(), _LAZY)


def __dir__():
    return sorted(set(globals()) | set(_LAZY))

# Language-model metrics (nlpkit.metrics.perplexity imports Keras, so they load lazily too).
_LAZY.update(
    {
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
    }
)
__all__ += [name for name in _LAZY if name not in __all__]
