"""Evaluation metrics. Each module is pure numpy unless its docstring says otherwise."""

from nlpkit.metrics.classification import classification_report, confusion_matrix, format_report
