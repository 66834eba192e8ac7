"""Keras layers for recurrent NLP."""

from nlpkit.layers.attention import AdditiveAttention, MultiplicativeAttention
from nlpkit.layers.bidirectional import Bidirectional
from nlpkit.layers.cells import GRUCell, LSTMCell, RecurrentCell, SimpleRNNCell
from nlpkit.layers.char_embedding import CASINGS, CasingFeatures, CharacterCNN, character_classes
from nlpkit.layers.crf import CRF, CRFModel, allowed_transitions
from nlpkit.layers.gru import GRU
from nlpkit.layers.lstm import LSTM
from nlpkit.layers.pooling import MaskedPooling
from nlpkit.layers.recurrent import RecurrentLayer, run_recurrence
from nlpkit.layers.simple_rnn import SimpleRNN

RECURRENT_LAYERS = {"gru": GRU, "lstm": LSTM, "simple_rnn": SimpleRNN}


def recurrent_layer(cell, units, **kwargs):
    """Builds an nlpkit recurrent layer by name ("gru", "lstm" or "simple_rnn").

    Example:
        >>> recurrent_layer("lstm", 64, return_sequences=True).__class__.__name__
        'LSTM'
    """
    try:
        layer_class = RECURRENT_LAYERS[cell]
    except KeyError:
        raise ValueError(
            f"Unknown recurrent cell {cell!r}; choose one of {sorted(RECURRENT_LAYERS)}."
        ) from None
    return layer_class(units, **kwargs)
