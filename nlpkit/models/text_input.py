"""Task models that take raw strings, as keras-hub tasks do: ``model.predict(["a fine film"])``.

nlpkit's task models take token ids (what ``fit`` trains on and what TFLite runs). A Keras
user who has a bundle, or a trained model and its tokenizer, wraps the model once with the
graph tokenizer in front and then predicts from strings with plain Keras.
"""

import keras
import tensorflow as tf


class GraphTokenizerLayer(keras.layers.Layer):
    """Strings ``(batch,)`` in, right-padded int32 ids ``(batch, time)`` out, through a graph tokenizer.

    An empty text becomes one padding id, which the models' masks ignore, so every row has
    a time step.

    Args:
        tokenizer: an `nlpkit.text` graph tokenizer (``WordTokenizer``, ``CharTokenizer``,
            ``SentencePieceTokenizer``): called on a string tensor, it returns ragged ids.

    Example:
        >>> layer = GraphTokenizerLayer(load_graph_tokenizer("saved_models/sentiment/assets"))
        >>> layer(tf.constant(["a fine film", ""])).shape
        TensorShape([2, 4])
    """

    def __init__(self, tokenizer, **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.tokenizer = tokenizer

    def call(self, texts):
        texts = tf.reshape(tf.convert_to_tensor(texts, tf.string), [-1])
        ids = self.tokenizer(texts).to_tensor(default_value=0)
        return tf.pad(tf.cast(ids, tf.int32), [[0, 0], [0, 1]])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], None)


def with_text_input(model, tokenizer):
    """``model`` behind ``tokenizer``: a ``keras.Model`` from raw strings to the model's outputs.

    For models with one token-id input (`TextClassifier`, `LanguageModel`); a tagger reads
    words and characters, and its SavedModel or `nlpkit.serving` predictors take text.

    Example:
        >>> text_model = with_text_input(model, WordTokenizer.from_python(twin))
        >>> text_model.predict(["a fine film", "a dull mess"])   # (2, num_classes) scores
    """
    from nlpkit.models.sequence_tagger import SequenceTagger

    if isinstance(model, SequenceTagger):
        raise TypeError(
            "A SequenceTagger reads word and character ids; predict from text with "
            "nlpkit.serving.load_predictor(bundle) or the bundle's SavedModel."
        )
    texts = keras.Input(shape=(), dtype="string", name="text")
    return keras.Model(texts, model(GraphTokenizerLayer(tokenizer)(texts)), name=f"{model.name}_text")


def load_text_model(bundle_dir):
    """A bundle's ``model.keras`` behind its own tokenizer: ``load_text_model(path).predict(["..."])``.

    Example:
        >>> load_text_model("saved_models/sentiment").predict(["a gripping film"])
        array([[0.04, 0.96]], dtype=float32)
    """
    from nlpkit.manifest import bundle_assets, bundle_file, read_manifest
    from nlpkit.models import load_keras_model
    from nlpkit.text import load_graph_tokenizer

    manifest = read_manifest(bundle_dir)
    model = load_keras_model(bundle_file(bundle_dir, manifest, "keras"))
    return with_text_input(model, load_graph_tokenizer(bundle_assets(bundle_dir, manifest)))
