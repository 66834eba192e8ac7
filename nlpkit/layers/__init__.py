"""Keras layers for recurrent NLP."""

from nlpkit.layers.attention import AdditiveAttention, MultiplicativeAttention
from nlpkit.layers.bidirectional import Bidirectional
from nlpkit.layers.cells import GRUCell, LSTMCell, RecurrentCell, SimpleRNNCell
from nlpkit.layers.char_embedding import CASINGS, CasingFeatures, CharacterCNN, character_classes
from nlpkit.layers.crf import CRF, CRFModel, allowed_transitions
from nlpkit.layers.gru import GRU
from nlpkit.layers.lstm import LSTM
from nlpkit.layers.mamba import Mamba
from nlpkit.layers.min_gru import MinGRU
from nlpkit.layers.min_lstm import MinLSTM
from nlpkit.layers.pooling import MaskedPooling
from nlpkit.layers.recurrent import RecurrentLayer, RecurrentLayerBase, run_recurrence
from nlpkit.layers.simple_rnn import SimpleRNN

RECURRENT_LAYERS = {
    "gru": GRU,
    "lstm": LSTM,
    "simple_rnn": SimpleRNN,
    "mingru": MinGRU,
    "minlstm": MinLSTM,
    "mamba": Mamba,
}
# The layers that run a parallel scan: no recurrent kernel, hence no recurrent dropout.
SCAN_LAYERS = ("mingru", "minlstm", "mamba")


def recurrent_layer(cell, units, **kwargs):
    """Builds an nlpkit recurrent layer by name (a key of `RECURRENT_LAYERS`).

    Task models pass ``recurrent_dropout`` whatever the cell; the scan layers
    (`SCAN_LAYERS`) have no recurrent kernel to drop, so they accept only 0 and drop it.

    Example:
        >>> recurrent_layer("lstm", 64, return_sequences=True).__class__.__name__
        'LSTM'
        >>> recurrent_layer("mamba", 64, recurrent_dropout=0.0).__class__.__name__
        'Mamba'
    """
    try:
        layer_class = RECURRENT_LAYERS[cell]
    except KeyError:
        raise ValueError(
            f"Unknown recurrent cell {cell!r}; choose one of {sorted(RECURRENT_LAYERS)}."
        ) from None
    if cell in SCAN_LAYERS:
        rate = kwargs.pop("recurrent_dropout", 0.0)
        if rate:
            raise ValueError(
                f"{cell!r} layers have no recurrent kernel, so recurrent dropout does not apply; "
                f"use `dropout` instead. Received: recurrent_dropout={rate!r}"
            )
    return layer_class(units, **kwargs)
