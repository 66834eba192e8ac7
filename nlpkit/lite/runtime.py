"""Loading TFLite files with the LiteRT interpreter (``ai_edge_litert``), no TensorFlow."""

from ai_edge_litert.interpreter import Interpreter


def load_signature_runner(model_path, signature, num_threads=1):
    """Opens ``model_path`` and returns the runner of one named signature.

    A runner resizes its inputs to each call's shape (sequence length is dynamic), and
    nlpkit's non-streaming signatures keep no state between calls: the fused LSTM op,
    which keeps its states in variable tensors, gets them recomputed by the graph on every
    call (`nlpkit.layers.fused_lstm`), so no ``reset_all_variables()`` is needed.

    Example:
        >>> classify = load_signature_runner("saved_models/sentiment/model.tflite", "classify")
        >>> classify(token_ids=np.array([[4, 27, 9]], np.int32))["scores"]
    """
    interpreter = Interpreter(model_path=str(model_path), num_threads=num_threads)
    signatures = interpreter.get_signature_list()
    if signature not in signatures:
        raise KeyError(
            f"{model_path} has no signature {signature!r}; it has {sorted(signatures)}."
        )
    return interpreter.get_signature_runner(signature)
