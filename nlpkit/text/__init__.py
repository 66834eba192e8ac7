"""Vocabularies and tokenizers, each graph tokenizer with a pure-Python twin giving identical ids.

Importing this package does not import TensorFlow: the pure-Python names are imported eagerly,
the graph tokenizers (``WordTokenizer``, ``CharTokenizer``, ``load_graph_tokenizer``) on first
attribute access (PEP 562), so ``nlpkit.lite`` can use the twins on a device without TensorFlow.
"""

from nlpkit.lazy import lazy_attributes
from nlpkit.text.normalization import TextNormalizer, build_table
from nlpkit.text.python_tokenizers import (
    PythonCharTokenizer,
    PythonTaggingTokenizer,
    PythonWordTokenizer,
    load_tokenizer,
    save_tokenizer,
)
from nlpkit.text.regex_tokenizer import PythonRegexTokenizer
from nlpkit.text.subword import PythonSentencePieceTokenizer
from nlpkit.text.tag_schemes import SCHEMES, TagSchemeError, convert_tags, extract_spans, validate_tags
from nlpkit.text.vocabulary import Vocabulary

_LAZY = {
    "WordTokenizer": "nlpkit.text.tokenizers",
    "CharTokenizer": "nlpkit.text.tokenizers",
    "TaggingTokenizer": "nlpkit.text.tokenizers",
    "SentencePieceTokenizer": "nlpkit.text.tokenizers",
    "RegexTokenizer": "nlpkit.text.tokenizers",
    "load_graph_tokenizer": "nlpkit.text.tokenizers",
}

__all__ = [
    "TextNormalizer",
    "build_table",
    "Vocabulary",
    "PythonWordTokenizer",
    "PythonCharTokenizer",
    "PythonTaggingTokenizer",
    "PythonSentencePieceTokenizer",
    "PythonRegexTokenizer",
    "save_tokenizer",
    "load_tokenizer",
    "SCHEMES",
    "TagSchemeError",
    "convert_tags",
    "extract_spans",
    "validate_tags",
    *_LAZY,
]


__getattr__ = lazy_attributes(globals(), _LAZY)


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
