"""TFLite conversion with built-in ops only, op auditing and interpreter loading."""

import dataclasses
import struct
import tempfile

import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as tflite_schema

from nlpkit.export.saved_model import write_saved_model
from nlpkit.layers.fused_lstm import FUSED_OP, LSTM_EXPORT_FORMS, lstm_export_form

QUANTIZATIONS = (None, "dynamic_range")
_BUILTIN_NAMES = {
    value: name
    for name, value in vars(tflite_schema.BuiltinOperator).items()
    if not name.startswith("_") and isinstance(value, int)
}


class NonBuiltinOpsError(ValueError):
    """A TFLite model uses Flex (SELECT_TF_OPS) or custom ops."""


def convert(model, endpoints, quantization=None, lstm="auto"):
    """Converts a Keras model's endpoints into one TFLite flatbuffer with named signatures.

    The endpoints are first written to a temporary SavedModel (that freezes variables read
    outside loops into constants), then converted with ``TFLITE_BUILTINS`` only: a model
    that would need Flex or custom ops fails here rather than on a phone.

    Args:
        model: Keras model.
        endpoints: dict ``name -> (function, input_signature)``; each becomes a signature.
        quantization: None (float32) or "dynamic_range" (int8 weights, float activations).
        lstm: how nlpkit ``LSTM`` layers are exported (see
            `nlpkit.layers.fused_lstm.lstm_export_form`): "fused" as the built-in
            ``UNIDIRECTIONAL_SEQUENCE_LSTM`` op (an error if a layer cannot be), "while" as
            nlpkit's loop (a ``WHILE`` op), or "auto" (default), fused where that
            measured faster and the layer allows it. Other layers always export as loops.

    Returns:
        The ``.tflite`` file contents as bytes.

    Example:
        >>> content = convert(model, model.tflite_endpoints(), quantization="dynamic_range")
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"`quantization` must be one of {QUANTIZATIONS}. Received: {quantization!r}")
    if lstm not in LSTM_EXPORT_FORMS:
        raise ValueError(f"`lstm` must be one of {LSTM_EXPORT_FORMS}. Received: lstm={lstm!r}")
    with tempfile.TemporaryDirectory() as directory:
        # Endpoints are traced while the SavedModel is written, so that is where the form applies.
        with lstm_export_form(lstm) as lstm_export:
            write_saved_model(directory, model, endpoints)
        unfused = lstm_export.unfused_layers()
        if lstm == "fused" and unfused:
            raise ValueError(
                f"lstm='fused' but these LSTM layers cannot be exported as {FUSED_OP}: {unfused}."
            )
        converter = tf.lite.TFLiteConverter.from_saved_model(
            directory, signature_keys=list(endpoints)
        )
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantization == "dynamic_range":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            # Per-channel dense weights (the converter's default since TF 2.17) need
            # FULLY_CONNECTED version 12, which runtimes before 2.17 cannot load; apps pin
            # runtimes for years. Per-tensor scales give version 9 (runtime 2.5 and newer).
            converter._experimental_disable_per_channel_quantization_for_dense_layers = True
        content = converter.convert()
    content = remove_lstm_cell_clip(content)
    assert_builtin_only(content)
    if lstm == "fused":
        _check_fused(content, lstm_export)
    return content


def min_runtime_version(model):
    """The oldest TFLite runtime the converter says runs ``model`` (bytes or path), e.g. "2.5.0".

    The converter computes it from the version of every operator it wrote and stores it as
    the ``min_runtime_version`` metadata entry; None when a file has no such entry.

    Example:
        >>> min_runtime_version("saved_models/sentiment/model.int8.tflite")
        '2.5.0'
    """
    flatbuffer = tflite_schema.Model.GetRootAsModel(_read(model), 0)
    for index in range(flatbuffer.MetadataLength()):
        entry = flatbuffer.Metadata(index)
        if entry.Name() == b"min_runtime_version":
            data = flatbuffer.Buffers(entry.Buffer()).DataAsNumpy()
            return bytes(data).rstrip(b"\0").decode("ascii")
    return None


def remove_lstm_cell_clip(model):
    """The model with the cell-state clipping of its fused LSTM ops turned off (bytes).

    The converter writes ``cell_clip = 10.0`` into every ``UNIDIRECTIONAL_SEQUENCE_LSTM`` it
    fuses from a Keras-style LSTM, so once a cell state grows past 10 in magnitude the TFLite
    op no longer computes the layer it was converted from: on a trained CoNLL-2003 tagger
    that moved 1 % of the test sentences' scores by up to 0.07 and changed one sentence's
    tags. ``0.0`` is the op's "no clipping". The float is rewritten in place, so the rest of
    the flatbuffer stays byte for byte as the converter wrote it.

    Example:
        >>> content = remove_lstm_cell_clip(converter.convert())
    """
    content = bytearray(_read(model))
    flatbuffer = tflite_schema.Model.GetRootAsModel(content, 0)
    fused = {
        index for index in range(flatbuffer.OperatorCodesLength())
        if _operator_name(flatbuffer.OperatorCodes(index)) == FUSED_OP
    }
    for s in range(flatbuffer.SubgraphsLength()):
        subgraph = flatbuffer.Subgraphs(s)
        for o in range(subgraph.OperatorsLength()):
            operator = subgraph.Operators(o)
            if operator.OpcodeIndex() not in fused or operator.BuiltinOptions() is None:
                continue
            table = operator.BuiltinOptions()
            options = tflite_schema.UnidirectionalSequenceLSTMOptions()
            options.Init(table.Bytes, table.Pos)
            field = options._tab.Offset(6)  # cell_clip, the table's second field
            if field and options.CellClip() != 0.0:
                struct.pack_into("<f", content, options._tab.Pos + field, 0.0)
    return bytes(content)


def _check_fused(content, lstm_export):
    # Tracing may run an endpoint more than once, so layers are counted, not traces. The
    # converter silently inlines a function it declines to fuse; asked for the fused op,
    # that is an error rather than a quiet WHILE loop.
    layers = sorted(set(lstm_export.fused))
    found = count_ops(content, FUSED_OP)
    if found < len(layers):
        raise ValueError(
            f"LSTM layers {layers} were traced in the fusable form but the converter "
            f"produced only {found} {FUSED_OP} op(s)."
        )


@dataclasses.dataclass(frozen=True)
class OpAudit:
    """The operators a TFLite model uses, across all its subgraphs (loop bodies included)."""

    builtin: tuple
    custom: tuple

    @property
    def flex(self):
        return tuple(name for name in self.custom if name.startswith("Flex"))

    @property
    def builtin_only(self):
        return not self.custom


def audit_ops(model):
    """Lists the operators of a TFLite model (bytes or a path to a ``.tflite`` file).

    Example:
        >>> audit_ops("saved_models/sentiment/model.tflite").builtin
        ('ADD', 'CONCATENATION', 'FULLY_CONNECTED', 'GATHER', ..., 'WHILE')
    """
    content = _read(model)
    flatbuffer = tflite_schema.Model.GetRootAsModel(content, 0)
    used = set()
    for s in range(flatbuffer.SubgraphsLength()):
        subgraph = flatbuffer.Subgraphs(s)
        for o in range(subgraph.OperatorsLength()):
            used.add(subgraph.Operators(o).OpcodeIndex())
    builtin, custom = set(), set()
    for index in used:
        code = flatbuffer.OperatorCodes(index)
        (custom if _is_custom(code) else builtin).add(_operator_name(code))
    return OpAudit(builtin=tuple(sorted(builtin)), custom=tuple(sorted(custom)))


def count_ops(model, name):
    """How many operators named ``name`` (e.g. "WHILE") a TFLite model has, all subgraphs.

    Example:
        >>> count_ops(content, "UNIDIRECTIONAL_SEQUENCE_LSTM")
        2
    """
    flatbuffer = tflite_schema.Model.GetRootAsModel(_read(model), 0)
    names = [_operator_name(flatbuffer.OperatorCodes(i)) for i in range(flatbuffer.OperatorCodesLength())]
    count = 0
    for s in range(flatbuffer.SubgraphsLength()):
        subgraph = flatbuffer.Subgraphs(s)
        for o in range(subgraph.OperatorsLength()):
            count += names[subgraph.Operators(o).OpcodeIndex()] == name
    return count


def _builtin_code(code):
    # Codes above 127 live in BuiltinCode; older files keep them in the deprecated byte.
    return max(code.BuiltinCode(), code.DeprecatedBuiltinCode())


def _is_custom(code):
    return _builtin_code(code) == tflite_schema.BuiltinOperator.CUSTOM


def _operator_name(code):
    if _is_custom(code):
        return (code.CustomCode() or b"<unnamed>").decode()
    value = _builtin_code(code)
    return _BUILTIN_NAMES.get(value, f"BUILTIN_{value}")


def assert_builtin_only(model):
    """Raises `NonBuiltinOpsError` naming every Flex or custom op in the model."""
    audit = audit_ops(model)
    if not audit.builtin_only:
        raise NonBuiltinOpsError(
            f"TFLite model uses non-built-in ops {list(audit.custom)}; nlpkit exports must "
            "run on the stock TFLite runtime without Flex or custom kernels."
        )
    return audit


def _read(model):
    if isinstance(model, (bytes, bytearray)):
        return bytes(model)
    with open(model, "rb") as handle:
        return handle.read()
