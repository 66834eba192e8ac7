"""Whether layers are being traced for an export, and in which form.

Exports must trace graphs that run anywhere: a SavedModel written on a GPU machine must
still serve on a CPU, and a TFLite file can hold built-in ops only. Inside
`portable_trace` (which `nlpkit.export.write_saved_model` opens) and while
`nlpkit.export.tflite.convert` traces (`nlpkit.layers.fused_lstm.lstm_export_form` sets
`TFLITE_EXPORT`), recurrent layers run nlpkit's own loops instead of the cuDNN kernel.
"""

import contextlib
import contextvars

# The active `LSTMExport` record while a TFLite export traces, else None.
TFLITE_EXPORT = contextvars.ContextVar("nlpkit_tflite_export", default=None)
_PORTABLE = contextvars.ContextVar("nlpkit_portable_trace", default=False)


@contextlib.contextmanager
def portable_trace():
    """Layers traced inside the block use no device-specific kernel (cuDNN).

    Example:
        >>> with portable_trace():
        ...     concrete = tf.function(model).get_concrete_function(spec)
    """
    token = _PORTABLE.set(True)
    try:
        yield
    finally:
        _PORTABLE.reset(token)


def portable_trace_active():
    """True inside `portable_trace` or while a TFLite export traces."""
    return _PORTABLE.get() or TFLITE_EXPORT.get() is not None
