"""Task models built from nlpkit layers."""

import keras

import nlpkit.layers  # noqa: F401  (registers the layers for deserialization)
import nlpkit.metrics.entity_spans  # noqa: F401  (registers SpanF1, which a compiled tagger saves)
from nlpkit.models.language_model import LanguageModel, ResetStatesCallback, TiedOutput
from nlpkit.models.seq2seq import Seq2Seq, label_smoothed_loss
from nlpkit.models.sequence_tagger import SequenceTagger, TagConversionTables, pad_tagging_batch
from nlpkit.models.streaming import STEP_SIGNATURE, StreamingStack
from nlpkit.models.task import TaskModel
from nlpkit.models.text_classifier import ClassifierMember, TextClassifier
from nlpkit.models.text_input import GraphTokenizerLayer, load_text_model, with_text_input


def load_keras_model(path):
    """Loads a ``.keras`` file written by nlpkit, with ``safe_mode=True``.

    Importing this module registers nlpkit's layers and models, which ``load_model`` needs
    to rebuild them from their configs.

    Example:
        >>> model = load_keras_model("saved_models/sentiment/model.keras")
    """
    return keras.saving.load_model(str(path), safe_mode=True)

