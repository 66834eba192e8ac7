"""Parallel scans over the time axis for linear recurrences ``h_t = a_t * h_{t-1} + b_t``.

MinGRU, MinLSTM and Mamba all reduce to this first-order, element-wise linear recurrence,
whose combine step ``(a1, b1) then (a2, b2) -> (a1 * a2, a2 * b1 + b2)`` is associative,
so all time steps can be computed in far fewer than ``T`` sequential steps.

Which implementation, and why (the timings behind these choices are on the docs' benchmarks
page, under "Measurements behind implementation choices"; `benchmarks/parallel_scan_speed.py`
measures the layers built on this module):

- ``keras.ops.associative_scan`` (the odd/even recursion of ``tfp.math.scan_associative``)
  fails under the TensorFlow backend when the scanned axis has a dynamic length (it compares
  symbolic shapes in Python: ``OperatorNotAllowedInGraphError``), and every Keras ``fit``
  with variable-length batches and every dynamic-length TFLite signature has one;
- a Hillis-Steele scan in a ``tf.while_loop`` (log2(T) passes, each combining every step
  with the one ``d`` before it) works at any length, and is far faster than a sequential
  ``tf.while_loop`` with autodiff, but every pass touches all T steps;
- ``keras.ops.associative_scan`` over a static axis inside a dynamic-length tensor runs,
  but its interleaving ``tf.cond`` concatenates unranked tensors, which the TFLite converter
  cannot lower to built-in ops (``tf.ConcatV2 ... ERROR_NEEDS_FLEX_OPS``). The same odd/even
  recursion written for a static chunk (no ``tf.cond``) converts;
- so `chunked_scan` pads time to a multiple of a static chunk and scans *inside* the
  chunks with one combine per step, unrolled over the static chunk length and run on all
  chunks at once (`_chunk_scan`), then runs a Hillis-Steele scan over the chunk totals (a
  dynamic but ``chunk`` times shorter axis) and one combine to hand every chunk the carry of
  the chunks before it. Sequential depth ``chunk + log2(T / chunk)``, and ``O(T)`` work
  where the recursions do several passes with strided copies, which made it faster than
  either recursion at the width a matched-size MinGRU has. It converts to TFLite with
  built-in ops only (a ``WHILE`` around the short Hillis-Steele loop).

`linear_recurrence` runs it for ``h_t = a_t * h_{t-1} + b_t`` with ``0 <= a <= 1`` (MinGRU,
MinLSTM, Mamba: products of ``a`` only shrink, so linear space is stable and the log space
of Feng et al., 2024, §3.1 is not needed), with a hand-written backward pass.
"""

import tensorflow as tf

# Steps per chunk of `chunked_scan` (32 measured faster than 16, figures in
# docs/benchmarks.md; longer chunks make longer unrolled graphs).
DEFAULT_CHUNK = 32


def combine_linear(earlier, later):
    """The combine of `linear_recurrence`: ``(a, b)`` pairs, earlier first."""
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


def _gather_shift_right(x, shift, fill, length, rank):
    # `_shift_right` without a slice whose size depends on `shift`: XLA needs every
    # shape inside a loop to be fixed, and a TFLite export keeps the cheaper slice.
    steps = tf.range(length)
    shifted = tf.gather(x, tf.maximum(steps - shift, 0), axis=1)
    before = tf.reshape(steps < shift, [1, -1] + [1] * (rank - 2))
    shifted = tf.where(before, tf.cast(fill, x.dtype), shifted)
    shifted.set_shape(x.shape)
    return shifted


def hillis_steele_scan(combine, elements, identity, axis_length=None, static_shapes=False):
    """Inclusive scan over axis 1 of any length, in a ``tf.while_loop`` of log2(T) passes.

    Args:
        combine: associative ``(earlier, later) -> combined`` on tuples of tensors.
        elements: tuple of tensors ``(batch, time, ...)``.
        identity: tuple of Python floats, the combine's identity per tensor.
        axis_length: optional scalar tensor, ``time`` (read from the first tensor if None).
        static_shapes: bool, default False. Shift with a gather, so that every tensor in
            the loop keeps one shape, as XLA needs.

    Returns:
        The tuple of scanned tensors.
    """
    length = tf.shape(elements[0])[1] if axis_length is None else axis_length
    rank = elements[0].shape.rank
    shift_right = _gather_shift_right if static_shapes else _shift_right

    def body(distance, *values):
        earlier = tuple(
            shift_right(value, distance, fill, length, rank)
            for value, fill in zip(values, identity)
        )
        return (distance * 2,) + tuple(combine(earlier, values))

    result = tf.while_loop(
        lambda distance, *_: distance < length, body, (tf.constant(1),) + tuple(elements)
    )
    return tuple(result[1:])


def _chunk_scan(combine, elements, length, reverse=False):
    """Inclusive scan over axis 2 of static ``length``: one combine per step, unrolled.

    The chunk axis is static, so the loop unrolls at trace time (no ``tf.cond`` or
    ``WHILE``); every step works on all chunks of all sequences at once. ``reverse``
    scans from the last index to the first.
    """
    order = range(length - 1, -1, -1) if reverse else range(length)
    steps = [tuple(value[:, :, index] for value in elements) for index in order]
    running, results = steps[0], [steps[0]]
    for current in steps[1:]:
        running = combine(running, current)
        results.append(running)
    if reverse:
        results.reverse()
    return tuple(
        tf.stack([result[part] for result in results], axis=2) for part in range(len(elements))
    )


def chunked_scan(
    combine, elements, identity, chunk=DEFAULT_CHUNK, static_shapes=False, reverse=False
):
    """Inclusive scan over axis 1 (time) of ``(batch, time, ...)`` tensors, any length.

    See the module docstring for the three stages and why. With ``reverse`` the scan runs
    from the last step to the first (step ``t`` combines the steps after it, the later
    one first), without reversing the tensors themselves: only the small chunk totals are.

    Args:
        combine: associative ``(earlier, later) -> combined`` on tuples of tensors.
        elements: tuple of tensors of one shape ``(batch, time, ...)``; trailing axes static.
        identity: tuple of Python floats, the combine's identity element per tensor.
        chunk: int, default 32. Steps per chunk.
        static_shapes: bool, default False. Keep every shape fixed (for XLA); see
            `hillis_steele_scan`.
        reverse: bool, default False. Scan from the last step to the first.

    Returns:
        The tuple of scanned tensors, shaped like ``elements``.

    Example:
        >>> a, b = chunked_scan(combine_linear, (a, b), (1.0, 0.0))  # h_t with h_0 = 0: b
    """
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"`chunk` must be a positive int. Received: chunk={chunk!r}")
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
    local = _chunk_scan(combine, blocks, chunk, reverse)
    # Padded steps at the end come first in a reverse scan; as identities they change nothing.
    totals = tuple(value[:, :, 0 if reverse else -1] for value in local)
    if reverse:
        totals = tuple(tf.reverse(value, [1]) for value in totals)
    totals = hillis_steele_scan(combine, totals, identity, axis_length=chunks, static_shapes=static_shapes)
    # What every chunk starts from: everything before it in scan order (the identity for
    # the first one).
    carry = tuple(
        _shift_right(value, 1, fill, chunks, len(trailing) + 2)
        for value, fill in zip(totals, identity)
    )
    if reverse:
        carry = tuple(tf.reverse(value, [1]) for value in carry)
    carry = tuple(tf.expand_dims(value, 2) for value in carry)
    carry = tuple(
        tf.broadcast_to(value, tf.shape(block)) for value, block in zip(carry, local)
    )
    scanned = combine(carry, local)
    return tuple(
        tf.reshape(value, [batch, chunks * chunk] + trailing)[:, :length] for value in scanned
    )


def _shift_in_time(x, shift, fill):
    """``x`` moved ``shift`` steps later (positive) or earlier (negative) on axis 1, filled."""
    length = tf.shape(x)[1]
    rest = [[0, 0]] * (x.shape.rank - 2)
    if shift > 0:
        moved = tf.pad(x[:, : length - shift], [[0, 0], [shift, 0]] + rest, constant_values=fill)
    else:
        moved = tf.pad(x[:, -shift:], [[0, 0], [0, -shift]] + rest, constant_values=fill)
    moved.set_shape(x.shape)
    return moved


def linear_recurrence(a, b, chunk=DEFAULT_CHUNK, static_shapes=False):
    """``h_t = a_t * h_{t-1} + b_t`` from ``h_0 = 0``, with a hand-written backward pass.

    The forward pass is `chunked_scan`. Differentiating through it makes TensorFlow keep
    and reverse every unrolled combine and the Hillis-Steele loop; the gradient has a
    closed form instead: ``g_t = dL/dh_t + a_{t+1} g_{t+1}`` is the same recurrence run
    backwards in time (one more scan, ``chunked_scan(..., reverse=True)``), then
    ``dL/db_t = g_t`` and ``dL/da_t = g_t h_{t-1}``. Stable for ``0 <= a <= 1`` (products of ``a`` only shrink),
    which covers MinGRU, MinLSTM and Mamba; ``a = 0`` (a full reset) is fine.

    Args:
        a: float ``(batch, time, ...)``, coefficients (1 keeps the state, 0 forgets it).
        b: float, same shape, inputs (0 adds nothing).
        chunk: int, steps per chunk of `chunked_scan`.
        static_shapes: bool, default False. Keep every shape fixed, for XLA (see
            `hillis_steele_scan`).

    Returns:
        ``h``, shaped like ``b``.

    Example:
        >>> h = linear_recurrence(tf.fill([2, 5, 3], 0.5), tf.ones([2, 5, 3]))
        >>> float(h[0, -1, 0])  # 1 + 0.5 + 0.25 + 0.125 + 0.0625
        1.9375
    """

    @tf.custom_gradient
    def recurrence(a, b):
        h = chunked_scan(combine_linear, (a, b), (1.0, 0.0), chunk, static_shapes)[1]

        def gradient(dh):
            following = _shift_in_time(a, -1, 0.0)  # a_{t+1}; nothing follows the last step
            g = chunked_scan(
                combine_linear, (following, dh), (1.0, 0.0), chunk, static_shapes, reverse=True
            )[1]
            return g * _shift_in_time(h, 1, 0.0), g

        return h, gradient

    return recurrence(tf.convert_to_tensor(a), tf.convert_to_tensor(b))


def softplus(x):
    """``log(1 + exp(x))`` from built-in TFLite ops, stable for large ``|x|``."""
    return tf.maximum(x, 0.0) + tf.math.log(1.0 + tf.exp(-tf.abs(x)))


def log_sigmoid(x):
    """``log(sigmoid(x)) = -softplus(-x)``, stable for large ``|x|``."""
    return -softplus(-x)
