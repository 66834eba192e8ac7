"""Loading TFLite files with the LiteRT interpreter (``ai_edge_litert``), no TensorFlow."""

from pathlib import Path

from ai_edge_litert.interpreter import Interpreter

from nlpkit.errors import BundleError


def load_signature_runner(model_path, signature, num_threads=1):
    """Opens a TFLite model and returns the runner of one named signature.

    A runner resizes its inputs to each call's shape (sequence length is dynamic), and
    nlpkit's non-streaming signatures keep no state between calls: the fused LSTM op,
    which keeps its states in variable tensors, gets them recomputed by the graph on every
    call (`nlpkit.layers.fused_lstm`), so no ``reset_all_variables()`` is needed.

    Args:
        model_path: path of a ``.tflite`` file, or the file's contents as bytes.
        signature: str, the signature's name.
        num_threads: int, default 1.

    Example:
        >>> classify = load_signature_runner("saved_models/sentiment/model.tflite", "classify")
        >>> classify(token_ids=np.array([[4, 27, 9]], np.int32))["scores"]
    """
    in_memory = isinstance(model_path, (bytes, bytearray))
    where = "The TFLite model" if in_memory else str(model_path)
    try:
        if in_memory:
            interpreter = Interpreter(model_content=bytes(model_path), num_threads=num_threads)
        else:
            if Path(model_path).is_file() and Path(model_path).stat().st_size == 0:
                # LiteRT's own words for this are "mmap of size 0 requested", without the path.
                raise ValueError("the file is empty")
            interpreter = Interpreter(model_path=str(model_path), num_threads=num_threads)
    except (ValueError, RuntimeError) as error:
        # LiteRT names neither the file nor what is wrong with it ("not a valid Flatbuffer").
        reason = " ".join(str(error).split())
        raise BundleError(f"{where}: not a loadable TFLite model ({reason:.300}).") from None
    signatures = interpreter.get_signature_list()
    if signature not in signatures:
        raise KeyError(f"{where} has no signature {signature!r}; it has {sorted(signatures)}.")
    return interpreter.get_signature_runner(signature)
