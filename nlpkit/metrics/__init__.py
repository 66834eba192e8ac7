"""Evaluation metrics. Each module is pure numpy unless its docstring says otherwise.

``SpanF1`` (a Keras metric) is imported on first access (PEP 562), so importing this
package does not import TensorFlow.
"""

from nlpkit.lazy import lazy_attributes
from nlpkit.metrics.classification import classification_report, confusion_matrix, format_report

_LAZY = {
    "span_f1": "nlpkit.metrics.entity_spans",
    "format_span_report": "nlpkit.metrics.entity_spans",
    "SpanF1": "nlpkit.metrics.entity_spans",
}

__all__ = ["classification_report", "confusion_matrix", "format_report", *_LAZY]

__getattr__ = lazy_attributes(globals(), _LAZY)


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
