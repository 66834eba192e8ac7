"""Writing SavedModels whose signatures the model defines (OpenNMT-style ownership)."""

import keras

from nlpkit.layers.export_context import portable_trace


def write_saved_model(path, model, endpoints, track=()):
    """Writes ``model`` as a TF SavedModel with the given named endpoints.

    Args:
        path: output directory.
        model: the Keras model whose variables the endpoints use.
        endpoints: dict ``name -> (function, input_signature)``. The endpoint named
            ``serving_default`` (if any) is what TF Serving and `nlpkit predict` call.
        track: extra TensorFlow resources the endpoints use (e.g. a graph tokenizer with
            its lookup tables); they are saved with the model.

    Example:
        >>> write_saved_model("out/saved_model", model,
        ...                   {"serving_default": model.serving_endpoint(tokenizer, labels)},
        ...                   track=[tokenizer])
    """
    # Traced without cuDNN kernels, so a SavedModel written on a GPU machine serves anywhere.
    with portable_trace():
        archive = keras.export.ExportArchive()
        archive.track(model)
        for resource in track:
            archive.track(resource)
        for name, (function, signature) in endpoints.items():
            archive.add_endpoint(name, function, input_signature=signature)
        archive.write_out(str(path), verbose=False)
    return path
