"""Export targets other than the default ``litert`` file: the ``web`` target (DESIGN.md §3).

The ``web`` target is the TFLite form LiteRT.js (``@litertjs/core`` 2.5.x, WASM CPU path)
loads and runs. Two facts about that runtime, measured with ``web/tools/run_tflite.mjs``,
shape it:

- a dynamic dimension (``-1`` in a tensor's shape signature) loads but fails at ``run``:
  LiteRT.js cannot resize inputs ("TensorBuffer ranked tensor type Int32[1, 5] does not
  match expected ranked tensor type Int32[1, -1]"). Every dynamic input dimension is
  therefore fixed to a *length bucket*; a text is right-padded with id 0 (which every
  nlpkit model masks) to the smallest bucket that holds it.
- a variable tensor fails to load ("Variable tensors not yet supported."). The fused
  ``UNIDIRECTIONAL_SEQUENCE_LSTM`` keeps its state operands as variable tensors, so LSTM
  layers are exported as nlpkit's own ``WHILE`` loop (``lstm="while"``), and every file is
  audited (`variable_tensors`) before it is written.

Layout: one file, ``model.web.tflite`` (and ``model.web.int8.tflite``), with a signature per
bucket: ``classify_16``, ``classify_32``, ... (a translation model: ``encode_16`` +
``decode_step_16``, ...). One file, because the converter stores each weight once however
many signatures read it, where a file per bucket would repeat every weight; buckets, because
the loops run over every padded step, so a short text in the 256 bucket pays for 256 steps.
``benchmarks/web_latency.py`` measures both (sizes, compile time, latency per bucket); the
Deploy page of the docs records the figures with their machine and date.
Signatures whose inputs are already fixed (a language model's streaming ``step``)
are kept as they are, under their own names.

Padding: a text is right-padded with 0 to the smallest bucket that holds it (longer texts
are cut to the largest bucket); every nlpkit model masks id 0, so the scores equal those of
the dynamic-length ``model.tflite`` on the unpadded text (tested in
``tests/export/test_web_target.py``).
"""

import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as tflite_schema

from nlpkit.export import tflite

WEB_TARGET = "web"
# The candidate bucket lengths: a text never runs at more than twice its length (but for
# texts under 8 tokens), and each extra bucket costs only a signature (~75 KB), not weights.
WEB_LENGTHS = (16, 32, 64, 128, 256)
WEB_FILE = "model.web.tflite"
WEB_INT8_FILE = "model.web.int8.tflite"


class WebTargetError(ValueError):
    """A model cannot be exported for the ``web`` target (LiteRT.js), with the reason."""


def has_dynamic_dimensions(signature):
    """True when any ``tf.TensorSpec`` of ``signature`` (a list) has a None dimension."""
    return any(size is None for spec in signature for size in spec.shape.as_list())


def fixed_length_endpoints(endpoints, length, inner_length=None):
    """The endpoints with every dynamic (None) input dimension fixed: a ``dict`` like ``endpoints``.

    Args:
        endpoints: dict ``name -> (function, [tf.TensorSpec])``, a model's ``tflite_endpoints()``.
        length: int >= 1, the bucket length: the size of each spec's first dynamic dimension
            (the time axis: ``token_ids [1, None]`` becomes ``[1, length]``). All specs of
            all endpoints get the same length, so signatures that pass a sequence between
            them (a translation model's ``encode`` output ``memory`` into ``decode_step``)
            stay consistent.
        inner_length: int or None (default: ``length``). The size of every further dynamic
            dimension of a spec, e.g. the characters per word of a tagger's
            ``char_ids [1, None, None]`` (its tokenizer's ``max_word_length``).

    Returns:
        ``{name: (function, [tf.TensorSpec])}``; an endpoint without dynamic dimensions is
        returned unchanged.

    Example:
        >>> fixed_length_endpoints(model.tflite_endpoints(), 32)["classify"][1]
        [TensorSpec(shape=(1, 32), dtype=tf.int32, name='token_ids')]
    """
    length = _check_length(length, "length")
    inner_length = length if inner_length is None else _check_length(inner_length, "inner_length")
    fixed = {}
    for name, (function, signature) in endpoints.items():
        specs = []
        for spec in signature:
            shape, seen = [], False
            for size in spec.shape.as_list():
                if size is None:
                    size, seen = (inner_length if seen else length), True
                shape.append(size)
            specs.append(tf.TensorSpec(shape, spec.dtype, name=spec.name))
        fixed[name] = (function, specs)
    return fixed


def variable_tensors(content):
    """``[(subgraph index, tensor name)]`` of every variable tensor of a TFLite model (bytes or path).

    A variable tensor (``is_variable`` in the flatbuffer) holds state that survives between
    ``invoke()`` calls; the fused LSTM's state operands are the usual source. LiteRT.js
    refuses to load a file that has one.

    Example:
        >>> variable_tensors(tflite.convert(tagger, endpoints, lstm="fused"))
        [(0, 'sequential/bidirectional/forward_lstm/...'), ...]
    """
    flatbuffer = tflite_schema.Model.GetRootAsModel(tflite._read(content), 0)
    found = []
    for s in range(flatbuffer.SubgraphsLength()):
        subgraph = flatbuffer.Subgraphs(s)
        for t in range(subgraph.TensorsLength()):
            tensor = subgraph.Tensors(t)
            if tensor.IsVariable():
                found.append((s, tensor.Name().decode("utf-8", "replace")))
    return found


def dynamic_input_tensors(content):
    """``[(signature, input name, shape signature)]`` of every signature input with a dynamic dimension."""
    flatbuffer = tflite_schema.Model.GetRootAsModel(tflite._read(content), 0)
    found = []
    for index in range(flatbuffer.SignatureDefsLength()):
        definition = flatbuffer.SignatureDefs(index)
        subgraph = flatbuffer.Subgraphs(definition.SubgraphIndex())
        for i in range(definition.InputsLength()):
            entry = definition.Inputs(i)
            tensor = subgraph.Tensors(entry.TensorIndex())
            shape = [int(size) for size in (tensor.ShapeSignatureAsNumpy() if tensor.ShapeSignatureLength() else
                                            tensor.ShapeAsNumpy())]
            if any(size < 0 for size in shape):
                found.append((definition.SignatureKey().decode(), entry.Name().decode(), shape))
    return found


def check_web_file(content, file_name):
    """Raises `WebTargetError` when ``content`` would not load or run in LiteRT.js.

    Checked: no variable tensors (the file would fail to load) and no dynamic input
    dimension (it would load but fail at ``run``). Returns ``content``.
    """
    variables = variable_tensors(content)
    if variables:
        names = ", ".join(f"{name!r} (subgraph {index})" for index, name in variables[:6])
        more = f" and {len(variables) - 6} more" if len(variables) > 6 else ""
        raise WebTargetError(
            f"{file_name} has {len(variables)} variable tensor(s): {names}{more}. LiteRT.js cannot load "
            "variable tensors (state kept between calls, e.g. a fused UNIDIRECTIONAL_SEQUENCE_LSTM); "
            "export LSTM layers with lstm='while'."
        )
    dynamic = dynamic_input_tensors(content)
    if dynamic:
        raise WebTargetError(
            f"{file_name} has dynamic input dimensions {dynamic}: LiteRT.js loads them but cannot "
            "run them (it does not resize inputs); fix them with `fixed_length_endpoints`."
        )
    return content


def web_lengths(max_length=None, candidates=WEB_LENGTHS):
    """The bucket lengths for texts of at most ``max_length`` tokens: the candidates up to the first >= it.

    Example:
        >>> web_lengths(100)
        (16, 32, 64, 128)
        >>> web_lengths(None)  # no limit known: every candidate
        (16, 32, 64, 128, 256)
    """
    if max_length is None:
        return tuple(candidates)
    _check_length(max_length, "max_length")
    kept = tuple(length for length in candidates if length < max_length)
    return kept + tuple(length for length in candidates if length >= max_length)[:1]


def bucket_signature(name, length):
    """The name of endpoint ``name``'s signature for bucket ``length`` in a web file: ``classify_16``."""
    return f"{name}_{length}"


def bucket_endpoints(endpoints, lengths=WEB_LENGTHS, inner_length=None):
    """One endpoint per (dynamic endpoint, bucket), plus the fixed-shape endpoints as they are.

    Returns ``(endpoints, buckets)``: the endpoints of the web file (``{"classify_16": (function,
    [TensorSpec([1, 16], ...)]), ...}``) and ``buckets``, ``{endpoint name: {str(length):
    signature name}}`` for the endpoints that have buckets (what ``nlpkit.json`` records and the
    web runtime reads to pick a signature).

    Example:
        >>> web_endpoints, buckets = bucket_endpoints(model.tflite_endpoints(), (16, 32))
        >>> sorted(web_endpoints), buckets
        (['classify_16', 'classify_32'], {'classify': {'16': 'classify_16', '32': 'classify_32'}})
    """
    lengths = _check_lengths(lengths)
    web_endpoints, buckets = {}, {}
    for name, (function, signature) in endpoints.items():
        if not has_dynamic_dimensions(signature):
            web_endpoints[name] = (function, signature)
            continue
        for length in lengths:
            key = bucket_signature(name, length)
            web_endpoints[key] = fixed_length_endpoints({name: (function, signature)}, length, inner_length)[name]
            buckets.setdefault(name, {})[str(length)] = key
    clashes = sorted(set(endpoints) & {key for names in buckets.values() for key in names.values()})
    if clashes:
        raise WebTargetError(f"bucket signature names {clashes} are also endpoint names; rename those endpoints.")
    return web_endpoints, buckets


def web_target_files(model, endpoints, lengths=WEB_LENGTHS, int8=True, inner_length=None):
    """The ``web`` target's .tflite files for ``model``: ``[(file_name, bytes, info)]``.

    ``model.web.tflite`` (float32) and, with ``int8``, ``model.web.int8.tflite`` (dynamic-range
    weights, per-tensor dense scales: loads in runtimes from 2.5 on). Each holds a signature
    per dynamic endpoint and bucket length (`bucket_endpoints`; the module docstring has the
    measurements behind one file) and every fixed-shape endpoint under its own name. LSTM
    layers are exported as ``WHILE`` loops, and each file is audited by `check_web_file`:
    no variable tensors, no dynamic input dimension.

    Args:
        model: the Keras model (or export wrapper) ``endpoints`` trace.
        endpoints: dict ``name -> (function, [tf.TensorSpec])``, usually ``model.tflite_endpoints()``.
        lengths: distinct increasing ints, the bucket lengths; default `WEB_LENGTHS`
            (`web_lengths(max_length)` keeps those a tokenizer's ``max_length`` needs).
        int8: bool, default True. Also write the dynamic-range quantized file.
        inner_length: int or None, the size of an input's dynamic dimensions after its first
            (a tagger's characters per word: its tokenizer's ``max_word_length``); default
            the bucket length.

    Returns:
        A list of ``(file_name, content, info)``; ``info`` is the file's ``nlpkit.json``
        ``tflite_files`` entry: ``target`` "web", ``runtime`` "litertjs", ``quantization``
        ("float32" or "dynamic_range"), ``signatures`` (sorted names), ``lengths`` (the
        buckets, ``[]`` when every endpoint has fixed shapes), ``buckets`` (``{endpoint:
        {str(length): signature}}``), ``inner_length`` (None unless an input has a second
        dynamic dimension) and ``min_runtime_version``.

    Example:
        >>> for name, content, info in web_target_files(model, model.tflite_endpoints(), web_lengths(256)):
        ...     (bundle / name).write_bytes(content)
        ...     manifest["tflite_files"][name] = info
    """
    lengths = _check_lengths(lengths)
    web_endpoints, buckets = bucket_endpoints(endpoints, lengths, inner_length)
    needs_inner = any(
        sum(size is None for size in spec.shape.as_list()) > 1 for _, signature in endpoints.values() for spec in signature
    )
    files = []
    for name, quantization in [(WEB_FILE, None)] + ([(WEB_INT8_FILE, "dynamic_range")] if int8 else []):
        try:
            content = tflite.convert(model, web_endpoints, quantization=quantization, lstm="while")
        except Exception as error:  # the converter's own message, with the file it was for
            raise WebTargetError(f"{name}: conversion for the web target failed: {error}") from error
        check_web_file(content, name)
        files.append((name, content, {
            "target": WEB_TARGET,
            "runtime": "litertjs",
            "quantization": quantization or "float32",
            "signatures": sorted(web_endpoints),
            "lengths": list(lengths) if buckets else [],
            "buckets": buckets,
            "inner_length": (inner_length or None) if needs_inner else None,
            "min_runtime_version": tflite.min_runtime_version(content),
        }))
    return files


def _check_lengths(lengths):
    lengths = tuple(_check_length(length, "lengths") for length in lengths)
    if not lengths or list(lengths) != sorted(set(lengths)):
        raise ValueError(f"`lengths` must be distinct increasing ints. Received: lengths={lengths!r}")
    return lengths


def _check_length(value, name):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must hold ints >= 1. Received: {name}={value!r}")
    return value
