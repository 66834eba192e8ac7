"""LSTM gates computed through one ``tanh``, for recurrent steps that XLA compiles on a CPU.

``sigmoid(x) = 0.5 + 0.5 * tanh(x / 2)`` exactly, so an LSTM's four activations
(sigmoid, sigmoid, tanh, sigmoid over ``[i, f, g, o]``) are one ``tanh`` over the whole
pre-activation row, scaled per block before and after: ``tanh(z * s) * s + b`` with
``s = [1/2, 1/2, 1, 1/2]`` and ``b = [1/2, 1/2, 0, 1/2]`` (each repeated ``units`` times).

Why: XLA's CPU backend lowers ``sigmoid`` to ``1 / (1 + exp(-x))``, an exponential and a
division per element in small per-gate fusions. Measured on the 2-core Zen 5 machine of
2026-12-03 (64 steps of B=32, H=512, one ``tf.while_loop`` under ``jit_compile``), the
element-wise part of the LSTM step took 11.0 ms with four activations and 2.2 ms with one
``tanh`` (with the recurrent matmul: 20.6 ms against 16.8 ms). TensorFlow's own kernels
(no XLA) go the other way (3.9 ms against 8.1 ms), and TFLite has a fused ``LOGISTIC``, so
only compiled loops use this form; the values agree to float32 rounding (about 1e-7). It
is the LSTM's inference loop that uses it: the hand-written training loop (41.9 ms forward
+ backward either way) and the GRU (whose two gates already are one ``sigmoid``) measured
no faster with it.
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
