"""Parallel scans over the time axis for linear recurrences ``h_t = a_t * h_{t-1} + b_t``.

MinGRU, MinLSTM and Mamba all reduce to this first-order, element-wise linear recurrence,
whose combine step ``(a1, b1) then (a2, b2) -> (a1 * a2, a2 * b1 + b2)`` is associative,
so all time steps can be computed in ``O(log T)`` sequential depth instead of ``T``.

Which implementation, and why (measured here, 2 shared cores, B=32, T=1000, F=128, forward
+ backward of a log-space scan; noisy, another benchmark was running):

- ``keras.ops.associative_scan`` (the odd/even recursion of ``tfp.math.scan_associative``)
  fails under the TensorFlow backend when the scanned axis has a dynamic length (it compares
  symbolic shapes in Python: ``OperatorNotAllowedInGraphError``), and every Keras ``fit``
  with variable-length batches and every dynamic-length TFLite signature has one. With a
  static length it took 0.54 s;
- a Hillis-Steele scan in a ``tf.while_loop`` (log2(T) passes, each combining every step
  with the one ``d`` before it) works at any length: 1.4 s, against 5.9 s for a sequential
  ``tf.while_loop`` with autodiff;
- ``keras.ops.associative_scan`` over a static axis inside a dynamic-length tensor runs,
  but its interleaving ``tf.cond`` concatenates unranked tensors, which the TFLite converter
  cannot lower to built-in ops (``tf.ConcatV2 ... ERROR_NEEDS_FLEX_OPS``);
- so `chunked_scan` pads time to a multiple of a static chunk, runs the same odd/even
  recursion *inside* chunks, written here for a static power-of-two length (no ``tf.cond``;
  `_static_scan`), a Hillis-Steele scan over the chunk totals (a dynamic but ``chunk``
  times shorter axis), and one combine to hand each chunk the carry of the chunks before
  it: 0.4-0.9 s at chunks of 32 to 128 (flat within the noise), 1.3 s at 16. It
  converts to TFLite with built-in ops only (a ``WHILE`` around the short Hillis-Steele loop).

Two instances: `log_space_scan` (Feng et al., 2024, "Were RNNs All We Needed?", §3.1: the
recurrence in log space, for positive ``b``, as MinGRU/MinLSTM use it) and `linear_scan`
(signed ``b`` and ``0 < a <= 1``, as Mamba's state needs; stable because the products of
``a`` only shrink).
"""

import tensorflow as tf

# Stands in for log(0) = -inf: masked and padded steps add nothing. A finite value keeps
# logaddexp(-inf, -inf) (two masked steps) from becoming inf - inf = NaN.
LOG_ZERO = -1e30
# Steps per chunk of `chunked_scan`: 32 to 128 measured alike (16 was slower); the larger
# chunk keeps the across-chunk loop short for long sequences.
DEFAULT_CHUNK = 64


def logaddexp(x, y):
    """``log(exp(x) + exp(y))`` from built-in TFLite ops (MAXIMUM, ABS, EXP, LOG)."""
    larger = tf.maximum(x, y)
    return larger + tf.math.log(1.0 + tf.exp(-tf.abs(x - y)))


def combine_log_space(earlier, later):
    """The combine of `log_space_scan`: ``(log a, log b)`` pairs, earlier first."""
    log_a1, log_b1 = earlier
    log_a2, log_b2 = later
    return log_a1 + log_a2, logaddexp(log_a2 + log_b1, log_b2)


def combine_linear(earlier, later):
    """The combine of `linear_scan`: ``(a, b)`` pairs, earlier first."""
    a1, b1 = earlier
    a2, b2 = later
    return a1 * a2, a2 * b1 + b2


def _shift_right(x, shift, fill, length, rank):
    # Element t receives element t - shift of the axis 1; the first `shift` receive `fill`.
    paddings = [[0, 0], [shift, 0]] + [[0, 0]] * (rank - 2)
    shifted = tf.pad(x[:, : length - shift], paddings, constant_values=fill)
    # Same shape as x; said explicitly so a static length survives a while_loop iteration.
    shifted.set_shape(x.shape)
    return shifted


def hillis_steele_scan(combine, elements, identity, axis_length=None):
    """Inclusive scan over axis 1 of any length, in a ``tf.while_loop`` of log2(T) passes.

    Args:
        combine: associative ``(earlier, later) -> combined`` on tuples of tensors.
        elements: tuple of tensors ``(batch, time, ...)``.
        identity: tuple of Python floats, the combine's identity per tensor.
        axis_length: optional scalar tensor, ``time`` (read from the first tensor if None).

    Returns:
        The tuple of scanned tensors.
    """
    length = tf.shape(elements[0])[1] if axis_length is None else axis_length
    rank = elements[0].shape.rank

    def body(distance, *values):
        earlier = tuple(
            _shift_right(value, distance, fill, length, rank)
            for value, fill in zip(values, identity)
        )
        return (distance * 2,) + tuple(combine(earlier, values))

    result = tf.while_loop(
        lambda distance, *_: distance < length, body, (tf.constant(1),) + tuple(elements)
    )
    return tuple(result[1:])


def _static_scan(combine, elements, length):
    """Inclusive scan over axis 2 of static, power-of-two ``length``: the odd/even recursion.

    Pairs ``(0, 1), (2, 3), ...`` are combined, the pair totals scanned recursively (which
    gives every odd position), and each even position combines the odd result before it
    with its own element: ``2 * length`` combines in ``2 * log2(length)`` steps. The length
    is static, so the recursion unrolls at trace time with no ``tf.cond``.
    """
    if length == 1:
        return elements
    evens = tuple(value[:, :, 0::2] for value in elements)
    odds = tuple(value[:, :, 1::2] for value in elements)
    odd_results = _static_scan(combine, combine(evens, odds), length // 2)
    later_evens = combine(
        tuple(value[:, :, :-1] for value in odd_results),
        tuple(value[:, :, 1:] for value in evens),
    )
    results = []
    for even, later_even, odd in zip(evens, later_evens, odd_results):
        even = tf.concat([even[:, :, :1], later_even], axis=2)
        pairs = tf.stack([even, odd], axis=3)
        shape = tf.concat([tf.shape(even)[:2], [length], tf.shape(even)[3:]], axis=0)
        interleaved = tf.reshape(pairs, shape)
        interleaved.set_shape(even.shape[:2].concatenate([length]).concatenate(even.shape[3:]))
        results.append(interleaved)
    return tuple(results)


def chunked_scan(combine, elements, identity, chunk=DEFAULT_CHUNK):
    """Inclusive scan over axis 1 (time) of ``(batch, time, ...)`` tensors, any length.

    See the module docstring for the three stages and why.

    Args:
        combine: associative ``(earlier, later) -> combined`` on tuples of tensors.
        elements: tuple of tensors of one shape ``(batch, time, ...)``; trailing axes static.
        identity: tuple of Python floats, the combine's identity element per tensor.
        chunk: int, default 64. Steps per chunk, a power of two.

    Returns:
        The tuple of scanned tensors, shaped like ``elements``.

    Example:
        >>> a, b = chunked_scan(combine_linear, (a, b), (1.0, 0.0))  # h_t with h_0 = 0: b
    """
    if chunk < 1 or chunk & (chunk - 1):
        raise ValueError(f"`chunk` must be a power of two. Received: chunk={chunk!r}")
    elements = tuple(tf.convert_to_tensor(value) for value in elements)
    first = elements[0]
    trailing = first.shape[2:].as_list()
    batch, length = tf.shape(first)[0], tf.shape(first)[1]
    chunks = (length + chunk - 1) // chunk
    padding = [[0, 0], [0, chunks * chunk - length]] + [[0, 0]] * len(trailing)
    # Padded steps hold the identity, so they change nothing before them.
    blocks = tuple(
        tf.reshape(
            tf.pad(value, padding, constant_values=fill), [batch, chunks, chunk] + trailing
        )
        for value, fill in zip(elements, identity)
    )
    local = _static_scan(combine, blocks, chunk)
    totals = tuple(value[:, :, -1] for value in local)
    totals = hillis_steele_scan(combine, totals, identity, axis_length=chunks)
    # What every chunk starts from: everything before it (the identity for the first one).
    carry = tuple(
        tf.expand_dims(_shift_right(value, 1, fill, chunks, len(trailing) + 2), 2)
        for value, fill in zip(totals, identity)
    )
    carry = tuple(
        tf.broadcast_to(value, tf.shape(block)) for value, block in zip(carry, local)
    )
    scanned = combine(carry, local)
    return tuple(
        tf.reshape(value, [batch, chunks * chunk] + trailing)[:, :length] for value in scanned
    )


def log_space_scan(log_a, log_b, chunk=DEFAULT_CHUNK):
    """``log h_t`` of ``h_t = a_t * h_{t-1} + b_t`` from ``h_0 = 0``, for ``b > 0``.

    Args:
        log_a: float ``(batch, time, ...)``, log coefficients (0 keeps the state).
        log_b: float, same shape, log values (`LOG_ZERO` adds nothing).
        chunk: int, steps per chunk of `chunked_scan`.

    Returns:
        ``log h`` with the shape of ``log_b``.
    """
    return chunked_scan(combine_log_space, (log_a, log_b), (0.0, LOG_ZERO), chunk)[1]


def linear_scan(a, b, chunk=DEFAULT_CHUNK):
    """``h_t`` of ``h_t = a_t * h_{t-1} + b_t`` from ``h_0 = 0``, for ``0 <= a <= 1``.

    Args:
        a: float ``(batch, time, ...)``, coefficients (1 keeps the state).
        b: float, same shape, inputs (0 adds nothing).
        chunk: int, steps per chunk of `chunked_scan`.

    Returns:
        ``(cumulative_a, h)``: the running products of ``a`` (to add ``h_0``'s part as
        ``cumulative_a * h_0``) and the states.
    """
    return chunked_scan(combine_linear, (a, b), (1.0, 0.0), chunk)


def softplus(x):
    """``log(1 + exp(x))`` from built-in TFLite ops, stable for large ``|x|``."""
    return tf.maximum(x, 0.0) + tf.math.log(1.0 + tf.exp(-tf.abs(x)))


def log_sigmoid(x):
    """``log(sigmoid(x)) = -softplus(-x)``, stable for large ``|x|``."""
    return -softplus(-x)
