"""On-device style runtime: numpy + ai-edge-litert + the standard library, no TensorFlow."""

from nlpkit.lite.predictors import (
    ClassPrediction,
    Entity,
    SequenceTaggerPredictor,
    TagPrediction,
    TextClassifierPredictor,
    tag_prediction,
)
from nlpkit.lite.runtime import load_signature_runner
from nlpkit.lite.streaming import StreamingRunner
from nlpkit.lite.language_model import LanguageModelGenerator, TFLiteStepFunction
from nlpkit.lite.translation import TFLiteDecoderStep, Translator
