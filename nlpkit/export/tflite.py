"""TFLite conversion with built-in ops only, op auditing and interpreter loading."""

import dataclasses
import tempfile

import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as tflite_schema

from nlpkit.export.saved_model import write_saved_model

QUANTIZATIONS = (None, "dynamic_range")
_BUILTIN_NAMES = {
    value: name
    for name, value in vars(tflite_schema.BuiltinOperator).items()
    if not name.startswith("_") and isinstance(value, int)
}


class NonBuiltinOpsError(ValueError):
    """A TFLite model uses Flex (SELECT_TF_OPS) or custom ops."""


def convert(model, endpoints, quantization=None):
    """Converts a Keras model's endpoints into one TFLite flatbuffer with named signatures.

    The endpoints are first written to a temporary SavedModel (that freezes variables read
    outside loops into constants), then converted with ``TFLITE_BUILTINS`` only: a model
    that would need Flex or custom ops fails here rather than on a phone.

    Args:
        model: Keras model.
        endpoints: dict ``name -> (function, input_signature)``; each becomes a signature.
        quantization: None (float32) or "dynamic_range" (int8 weights, float activations).

    Returns:
        The ``.tflite`` file contents as bytes.

    Example:
        >>> content = convert(model, model.tflite_endpoints(), quantization="dynamic_range")
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"`quantization` must be one of {QUANTIZATIONS}. Received: {quantization!r}")
    with tempfile.TemporaryDirectory() as directory:
        write_saved_model(directory, model, endpoints)
        converter = tf.lite.TFLiteConverter.from_saved_model(
            directory, signature_keys=list(endpoints)
        )
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantization == "dynamic_range":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        content = converter.convert()
    assert_builtin_only(content)
    return content


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
        # Codes above 127 live in BuiltinCode; older files keep them in the deprecated byte.
        value = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if value == tflite_schema.BuiltinOperator.CUSTOM:
            custom.add((code.CustomCode() or b"<unnamed>").decode())
        else:
            builtin.add(_BUILTIN_NAMES.get(value, f"BUILTIN_{value}"))
    return OpAudit(builtin=tuple(sorted(builtin)), custom=tuple(sorted(custom)))


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
