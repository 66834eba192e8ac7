"""Keras layers for recurrent NLP."""

from nlpkit.layers.attention import AdditiveAttention, MultiplicativeAttention
from nlpkit.layers.bidirectional import Bidirectional
from nlpkit.layers.cells import GRUCell, LSTMCell, RecurrentCell, SimpleRNNCell
from nlpkit.layers.char_embedding import CASINGS, CasingFeatures, CharacterCNN, character_classes
from nlpkit.layers.crf import CRF, CRFModel, allowed_transitions
from nlpkit.layers.execution_plan import ExecutionPlan
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


def recurrent_layer_parameters(cell, units, input_dim, **kwargs):
    """Trainable parameters of ``recurrent_layer(cell, units, **kwargs)`` on ``input_dim`` features.

    Example:
        >>> recurrent_layer_parameters("lstm", 128, 64)  # 4 * 128 * (64 + 128 + 1)
        98816
    """
    layer = recurrent_layer(cell, units, **kwargs)
    layer.build((None, None, input_dim))
    return int(sum(int(weight.numpy().size) for weight in layer.trainable_weights))


def size_closest_to(count, target, largest=4096):
    """The ``n`` in ``[1, largest]`` whose ``count(n)`` is closest to ``target``.

    ``count`` must grow with ``n`` (parameters grow with width), so a bisection finds it.

    Example:
        >>> size_closest_to(lambda n: n * n, 50)
        7
    """
    low, high = 1, largest
    while high - low > 1:
        middle = (low + high) // 2
        if count(middle) < target:
            low = middle
        else:
            high = middle
    return min((low, high), key=lambda n: abs(count(n) - target))


def units_matching_parameters(cell, target, input_dim, largest=4096, **kwargs):
    """The ``units`` whose layer has the parameter count closest to ``target``.

    What architecture comparisons at matched size use: a MinGRU has no recurrent kernel, so
    it needs far more units than an LSTM for the same parameters.

    Example:
        >>> units_matching_parameters("mingru", recurrent_layer_parameters("lstm", 128, 64), 64)
        760
    """
    return size_closest_to(
        lambda units: recurrent_layer_parameters(cell, units, input_dim, **kwargs), target, largest
    )
