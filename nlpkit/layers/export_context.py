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
_UNROLLED = contextvars.ContextVar("nlpkit_unrolled_trace", default=False)


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


@contextlib.contextmanager
def unrolled_trace():
    """Recurrences traced inside the block with a static length run as straight-line steps.

    Runtimes that take one subgraph only (MediaPipe's TextClassifier) or no control flow
    cannot run a ``WHILE`` loop; at a fixed sequence length the loop can be written out
    step by step instead, which costs file size (one copy of the step's ops per step) and
    nothing else. Lengths unknown when tracing still get the loop.

    Example:
        >>> with unrolled_trace():
        ...     content = convert(model, fixed_length_endpoints)
    """
    token = _UNROLLED.set(True)
    try:
        yield
    finally:
        _UNROLLED.reset(token)


def unrolled_trace_active():
    """True inside `unrolled_trace`."""
    return _UNROLLED.get()
