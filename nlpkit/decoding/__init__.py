"""Decoding shared by the language model and seq2seq: greedy, sampling, beam search.

The searches (`nlpkit.decoding.search`) are numpy only, so `nlpkit.lite` uses them without
TensorFlow; `KerasStepFunction`, which runs a Keras model's step, loads TensorFlow on first
use (PEP 562).
"""

from nlpkit.decoding.search import (
    METHODS,
    Generation,
    beam_search,
    filter_log_probs,
    generate,
    greedy,
    log_softmax,
    prime,
    sample,
)
from nlpkit.decoding.language_model import generate_text
from nlpkit.decoding.translation import max_target_lengths, strip_end, translate_ids, translate_texts
from nlpkit.lazy import lazy_attributes

_LAZY = {"KerasStepFunction": "nlpkit.decoding.keras_step", "KerasDecoderStep": "nlpkit.decoding.keras_step"}

__getattr__ = lazy_attributes(globals(), _LAZY)
