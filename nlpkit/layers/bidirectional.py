"""A ``keras.layers.Bidirectional`` that loads correctly from ``.keras`` files."""

import keras


class _Untracked:
    """Holds an object without Keras tracking it as a sublayer (no weights, not saved)."""

    def __init__(self, value):
        self.value = value


@keras.saving.register_keras_serializable(package="nlpkit")
class Bidirectional(keras.layers.Bidirectional):
    """``keras.layers.Bidirectional`` that stays correct when a model is loaded from a file.

    Keras builds the forward and backward copies by serializing the wrapped layer. During
    ``keras.saving.load_model`` that happens inside Keras' object-sharing scope, which
    identifies objects by ``id()``. A model that creates its wrappers in ``__init__``
    (every subclassed model) drops each wrapped layer after wrapping it, so the next one
    can get the same id and be handed an earlier wrapper's copy: the load fails with
    "Forward layer and backward layer should have different `go_backwards` value" or,
    worse, silently shares a layer. Measured here: 4 of 12 loads of a 3-member, 2-layer
    `TextClassifier` failed with the stock wrapper; keeping the wrapped layer alive keeps
    the ids unique. Everything else is the stock wrapper.

    Args:
        layer: the recurrent layer to run in both directions.
        **kwargs: as ``keras.layers.Bidirectional`` (``merge_mode``, ``backward_layer``, ...).

    Example:
        >>> layer = nlpkit.layers.Bidirectional(nlpkit.layers.GRU(16, return_sequences=True))
        >>> layer(np.zeros((2, 5, 8), "float32")).shape
        (2, 5, 32)
    """

    def __init__(self, layer, *args, **kwargs):
        super().__init__(layer, *args, **kwargs)
        self._wrapped_template = _Untracked(layer)
