"""The LSTM in the form the TFLite converter fuses into ``UNIDIRECTIONAL_SEQUENCE_LSTM``.

The converter (``prepare_composite_functions_tf``) replaces the body of a TensorFlow
function that carries ``api_implements="lstm_<uuid>"`` and ``time_major`` with the fused
built-in op, provided the function follows Keras-2's ``standard_lstm`` convention:

- six arguments ``(inputs, init_h, init_c, kernel, recurrent_kernel, bias)`` with static
  shapes for everything but the time axis (so a static batch), no mask argument;
- five results ``(last_output, outputs, new_h, new_c, runtime)`` of which only the first
  two may be used: the converter returns zeros for the final states;
- weights in the stock Keras layout, gates ``[i, f, c, o]``, sigmoid gates and tanh.

The fused op runs every step on the sequence it is given, and it keeps ``init_h`` and
``init_c`` as *variable* tensors that it overwrites with the final states. Both facts shape
this module:

- masks (right-padded, batch 1) are handled by slicing the inputs to their valid length
  before the op and padding the outputs back afterwards, exactly as the WHILE loop of
  `nlpkit.layers.recurrent.run_recurrence` would have filled them;
- a constant zero state would be a variable that survives between ``invoke()`` calls (the
  second call of the same length starts from the first call's final state). The state
  operands are instead computed in the graph on every call, from a zero that depends on
  the input length, plus the call's own tag so that no two fused ops share one (the
  converter merges equal computations, and one state tensor feeding two ops is an error);
  they feed nothing but the op, which is free to overwrite them;
- ``return_state`` needs the final cell state, which the op does not give. It is rebuilt
  from the output sequence without a loop: with every ``h_{t-1}`` known, the gates of all
  steps are one matmul, and ``c_T = sum_t (prod_{s>t} f_s) i_t g_t + (prod_t f_t) c_0``
  is a reverse cumulative sum of ``log f``.

Only the export path uses this form: inside `lstm_export_form` (entered by
`nlpkit.export.tflite.convert`), the layer's `nlpkit.layers.ExecutionPlan` takes the path
``"fused_tflite"`` at inference (`fused_reason`) and `nlpkit.layers.LSTM` calls `fused_call`.
Everywhere else, the layer runs its own loop.
"""

import contextlib
import dataclasses
import uuid

import tensorflow as tf

from nlpkit.layers.cells import lstm_state_update
from nlpkit.layers.export_context import TFLITE_EXPORT
from nlpkit.layers.recurrent import read_weight, run_recurrence

LSTM_EXPORT_FORMS = ("auto", "fused", "while")
FUSED_OP = "UNIDIRECTIONAL_SEQUENCE_LSTM"

_EXPORT = TFLITE_EXPORT


@dataclasses.dataclass
class LSTMExport:
    """What an export trace did with its LSTM layers (yielded by `lstm_export_form`).

    Args:
        form: "auto", "fused" or "while", the requested form.
        fused: list of str, names of the layers traced in the fusable form (a layer traced
            by several endpoints appears once per endpoint).
        kept_while: list of ``(layer_name, reason)`` for layers that kept the WHILE loop.

    Example:
        >>> with lstm_export_form("auto") as export:
        ...     trace_endpoints()
        >>> export.fused
        ['lstm', 'lstm_1']
    """

    form: str
    fused: list = dataclasses.field(default_factory=list)
    kept_while: list = dataclasses.field(default_factory=list)

    def unfused_layers(self):
        """``{layer_name: reason}`` for layers that no trace fused."""
        fused = set(self.fused)
        return {name: reason for name, reason in self.kept_while if name not in fused}


@contextlib.contextmanager
def lstm_export_form(form):
    """Makes nlpkit LSTM layers traced inside the block use the given TFLite form.

    ``"fused"`` traces every LSTM that can be fused as a function the converter turns into
    ``UNIDIRECTIONAL_SEQUENCE_LSTM`` (`nlpkit.export.tflite.convert` then raises for any
    that could not); ``"while"`` keeps nlpkit's loop (a ``WHILE`` op); ``"auto"`` fuses
    what `prefer_fused` chooses and keeps the loop for the rest.

    Example:
        >>> with lstm_export_form("fused") as export:
        ...     concrete = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
        >>> len(export.fused)
        2
    """
    if form not in LSTM_EXPORT_FORMS:
        raise ValueError(f"`lstm` must be one of {LSTM_EXPORT_FORMS}. Received: lstm={form!r}")
    export = LSTMExport(form)
    token = _EXPORT.set(export)
    try:
        yield export
    finally:
        _EXPORT.reset(token)


def unfusable_reason(layer, inputs_shape, dtype, masked=False):
    """Why ``layer`` called on inputs of this shape and dtype cannot use the fused op, or None."""
    reason = layer.cell.default_math_reason()
    if reason is not None:
        return f"{reason} (the fused op is the textbook LSTM)"
    if layer.stateful:
        return "the layer is stateful (its states live in variables the fused op cannot carry)"
    dtype = tf.as_dtype(dtype)
    if dtype != tf.float32:
        return f"inputs are {dtype.name}, the fused op takes float32"
    batch = inputs_shape[0]
    if batch is None:
        return "the batch size is not static (export with a batch-1 input signature)"
    if masked and batch != 1:
        return f"masked inputs need batch 1 (sliced to their length); the batch is {batch}"
    return None


# The `auto` rule. The fused kernel does its input matmul step by step (the loop does it
# once for all steps), so its cost per step grows faster with the layer's width, while the
# loop's cost per step grows with T. Measured batch-1 latency (`python benchmarks/rnn_speed.py
# --tflite-forms only`; the figures are on the docs' benchmarks page) had the fused op ahead
# up to 256 units (most of all in int8) and the WHILE loop ahead at 512. Sequence length is
# dynamic, so the rule uses the width only. With 2 threads the fused kernel still runs on
# one, and the loop gained nothing.
AUTO_FUSED_MAX_UNITS = 256


def prefer_fused(layer, inputs_shape=None):
    """The ``auto`` choice: the fused op up to `AUTO_FUSED_MAX_UNITS` units, else the loop."""
    return layer.units <= AUTO_FUSED_MAX_UNITS


def fused_reason(layer, inputs_shape, dtype, masked, training):
    """Why ``layer``'s call does not take the fused form, or None if it does.

    The ``"fused_tflite"`` entry of the layer's `nlpkit.layers.ExecutionPlan`: the form is
    taken at inference inside `lstm_export_form` (not ``"while"``), where
    `unfusable_reason` finds nothing and, for ``"auto"``, `prefer_fused` agrees.
    """
    export = _EXPORT.get()
    if export is None:
        return "not inside a TFLite export (lstm_export_form)"
    if export.form == "while":
        return "the export asked for the WHILE loop (lstm='while')"
    if training:
        return "training (the fused form is for inference exports)"
    reason = unfusable_reason(layer, inputs_shape, dtype, masked)
    if reason is None and export.form == "auto" and not prefer_fused(layer, inputs_shape):
        reason = "the WHILE loop measured faster for this layer"
    return reason


def note_plan(layer, plan, training):
    """Records in the active `LSTMExport` what ``plan`` does with the fused form.

    Kept out of `fused_reason`, which a user may call (through ``execution_plan``) to ask;
    only calls count. A layer that keeps the loop is not an error here even for
    ``form="fused"``: saving also traces signatures that are never converted (Keras' own
    serving_default with a dynamic batch), so the caller judges once the trace is over
    (`LSTMExport.unfused_layers`).
    """
    export = _EXPORT.get()
    if export is None or export.form == "while" or training:
        return
    if plan.path == "fused_tflite":
        export.fused.append(layer.name)
    else:
        export.kept_while.append((layer.name, plan.reasons["fused_tflite"]))


def fused_call(layer, inputs, mask=None, initial_state=None):
    """The layer's inference outputs through the fusable function.

    Runs what the layer's plan chose (path ``"fused_tflite"``, recorded by `note_plan`) and
    returns what ``layer.call`` returns: the output (sequence or last), followed by
    ``[h, c]`` when ``layer.return_state``.
    """
    return _fused_outputs(layer, inputs, mask, initial_state, tag=len(_EXPORT.get().fused))


def _fused_outputs(layer, inputs, mask, initial_state, tag):
    units, dtype = layer.units, inputs.dtype
    batch = inputs.shape[0]
    if initial_state is None:
        h0 = c0 = tf.zeros([batch, units], dtype)
    else:
        states = initial_state if isinstance(initial_state, (list, tuple)) else [initial_state]
        if len(states) != 2:
            raise ValueError(f"{layer.name} expects 2 initial state tensors; received {len(states)}.")
        # The converter needs static state shapes; Keras may hand them over as (None, units).
        h0, c0 = (tf.reshape(tf.cast(state, dtype), [batch, units]) for state in states)

    num_steps = tf.shape(inputs)[1]
    length = num_steps if mask is None else tf.reduce_sum(tf.cast(mask[0], tf.int32))
    steps = inputs if mask is None else inputs[:, :length]
    if layer.go_backwards:
        # Reversing here rather than through the go_backwards attribute gives each direction
        # of a bidirectional pair its own input tensor.
        steps = tf.reverse(steps, [1])

    kernel = read_weight(layer.kernel)
    recurrent_kernel = read_weight(layer.recurrent_kernel)
    bias = read_weight(layer.bias) if layer.use_bias else tf.zeros([4 * units], dtype)

    # Exactly zero, but computed from the input on every call and distinct per fused op:
    # see the module docstring.
    zero = tf.cast(tf.shape(steps)[1] < 0, dtype) * float(tag)
    op_h, op_c = tf.split(tf.concat([h0, c0], axis=-1) + zero, 2, axis=-1)
    outputs = _fusable_lstm()(steps, op_h, op_c, kernel, recurrent_kernel, bias)[1]

    # h0 first, so that a sequence with no valid step ends in its initial state.
    last = tf.concat([h0[:, None], outputs[:, -1:]], axis=1)[:, -1]
    sequence = outputs
    if layer.return_sequences and mask is not None:
        if layer.zero_output_for_mask:
            fill = tf.zeros_like(h0)
        else:
            # Masked steps repeat the carried state: the final one after a forward pass, the
            # initial one before a backward pass (its padding is processed first).
            fill = h0 if layer.go_backwards else last
        padding = tf.broadcast_to(fill[:, None], [batch, num_steps - length, units])
        pieces = [padding, outputs] if layer.go_backwards else [outputs, padding]
        sequence = tf.concat(pieces, axis=1)

    output = sequence if layer.return_sequences else last
    if not layer.return_state:
        return output
    c = final_cell_state(steps, outputs, h0, c0, kernel, recurrent_kernel, bias)
    return [output, last, c]


def final_cell_state(steps, outputs, h0, c0, kernel, recurrent_kernel, bias):
    """The LSTM's final cell state, rebuilt from its inputs and output sequence, no loop.

    Args:
        steps: ``(batch, time, input_dim)`` inputs in processing order.
        outputs: ``(batch, time, units)`` the hidden states that the LSTM produced on them.
        h0, c0: ``(batch, units)`` initial states.
        kernel, recurrent_kernel, bias: weights in Keras layout (gates ``[i, f, c, o]``).

    Returns:
        ``(batch, units)``: ``c_T`` of the recurrence ``c_t = f_t c_{t-1} + i_t g_t``.
    """
    units = h0.shape[-1]
    previous_h = tf.concat([h0[:, None], outputs], axis=1)[:, :-1]
    # Only the i, f and c gates matter for the cell state; o is the last quarter.
    gates = (
        tf.matmul(steps, kernel[:, : 3 * units])
        + tf.matmul(previous_h, recurrent_kernel[:, : 3 * units])
        + bias[: 3 * units]
    )
    i = tf.sigmoid(gates[..., :units])
    log_f = tf.math.log(tf.sigmoid(gates[..., units : 2 * units]))
    g = tf.tanh(gates[..., 2 * units :])
    # decay_t = prod_{s>t} f_s, summed in log space: no loop and no underflow of a product.
    decay = tf.exp(tf.cumsum(log_f, axis=1, exclusive=True, reverse=True))
    carried = tf.exp(tf.reduce_sum(log_f, axis=1)) * c0
    return tf.reduce_sum(decay * i * g, axis=1) + carried


def _fusable_lstm():
    # One function per call: the converter fuses each function it finds, and a fresh uuid
    # keeps TensorFlow's implementation selector from swapping bodies between layers.
    attributes = {
        "api_implements": f"lstm_{uuid.uuid4()}",
        "time_major": False,
        "go_backwards": False,
    }
    return tf.function(_standard_lstm, experimental_attributes=attributes, autograph=False)


def _standard_lstm(inputs, init_h, init_c, kernel, recurrent_kernel, bias):
    # What runs where the converter does not replace the body (the SavedModel, or a
    # conversion that declined to fuse): the same LSTM step as nlpkit's loop.
    units = init_h.shape[-1]
    projected = tf.matmul(inputs, kernel) + bias

    def step(x_t, states):
        h, c = states
        h, c, _ = lstm_state_update(x_t + tf.matmul(h, recurrent_kernel), c)
        return [h, c]

    last, outputs, (h, c) = run_recurrence(
        step, projected, [init_h, init_c], return_sequences=True
    )
    outputs = tf.ensure_shape(outputs, [init_h.shape[0], None, units])
    return last, outputs, h, c, tf.constant(0.0, inputs.dtype)
