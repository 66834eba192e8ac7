"""LSTM gates computed through one ``tanh``, for recurrent steps that XLA compiles on a CPU.

``sigmoid(x) = 0.5 + 0.5 * tanh(x / 2)`` exactly, so an LSTM's four activations
(sigmoid, sigmoid, tanh, sigmoid over ``[i, f, g, o]``) are one ``tanh`` over the whole
pre-activation row, scaled per block before and after: ``tanh(z * s) * s + b`` with
``s = [1/2, 1/2, 1, 1/2]`` and ``b = [1/2, 1/2, 0, 1/2]`` (each repeated ``units`` times).

Why: XLA's CPU backend lowers ``sigmoid`` to ``1 / (1 + exp(-x))``, an exponential and a
division per element in small per-gate fusions, and one ``tanh`` over the whole row cut the
element-wise part of a compiled LSTM step to a fraction of that. TensorFlow's own kernels
(no XLA) go the other way, and TFLite has a fused ``LOGISTIC``, so only compiled loops use
this form; the values agree to float32 rounding (about 1e-7). It is the LSTM's inference
loop that uses it: the hand-written training loop and the GRU (whose two gates already are
one ``sigmoid``) measured no faster with it. The timings are on the docs' benchmarks page;
``python benchmarks/rnn_speed.py --layers lstm --no-tflite --tflite-forms no`` measures the
LSTM with it, against stock Keras and PyTorch.
"""

import numpy as np
import tensorflow as tf

# Per-block (scale, shift) of `lstm_gate_activations`, gate order [i, f, c, o].
_LSTM_BLOCKS = ((0.5, 0.5), (0.5, 0.5), (1.0, 0.0), (0.5, 0.5))


def lstm_gate_activations(pre_activations):
    """``(i, f, g, o)``: sigmoid, sigmoid, tanh and sigmoid of the four blocks, in one ``tanh``.

    Args:
        pre_activations: float ``(batch, 4 * units)``, gate order ``[i, f, c, o]``.

    Returns:
        A tuple of four ``(batch, units)`` tensors.

    Example:
        >>> i, f, g, o = lstm_gate_activations(tf.zeros((2, 12)))
        >>> float(i[0, 0]), float(g[0, 0])
        (0.5, 0.0)
    """
    units = pre_activations.shape[-1] // 4
    dtype = pre_activations.dtype
    scale = tf.constant(np.repeat([s for s, _ in _LSTM_BLOCKS], units), dtype)
    shift = tf.constant(np.repeat([b for _, b in _LSTM_BLOCKS], units), dtype)
    activated = tf.tanh(pre_activations * scale) * scale + shift
    return tuple(tf.split(activated, 4, axis=-1))
