"""The ``mediapipe`` export target: a text classifier file MediaPipe Tasks' ``TextClassifier`` runs as is.

MediaPipe's TextClassifier (the ``mediapipe`` wheel, 1.2.x) takes a ``.tflite`` file with one
subgraph, one int32 input ``[1, N]`` whose stored shape has N fixed, no variable tensors, and
TFLite Metadata naming its tokenizer and labels: a ``RegexTokenizer`` process unit (an RE2
delimiter pattern and a vocabulary file of ``token id`` lines) on the input, a
``TENSOR_AXIS_LABELS`` file on the output. It tokenizes with that tokenizer, pads with the id
of ``<PAD>`` to N and reports the model's output scores under the labels. So the model must
have been trained on `nlpkit.text.PythonRegexTokenizer` ids (``--tokenizer regex``).

`mediapipe_classifier_file` fixes the length, traces the recurrences step by step
(`nlpkit.layers.export_context.unrolled_trace`: no WHILE loop, whose body would be a second
subgraph), converts with built-in ops only and attaches the metadata. The file keeps the
``classify`` signature, so `nlpkit.lite` and tflite-runtime 2.14 run it too (with ids padded to
N, as `PythonRegexTokenizer.encode_padded` gives them).

Example:
    >>> content = mediapipe_classifier_file(model, twin, ["negative", "positive"], length=128)
    >>> Path("model.mediapipe.tflite").write_bytes(content)
"""

import io
import math
import zipfile

import flatbuffers
import numpy as np
from tensorflow.lite.python import schema_py_generated as tflite_schema

from nlpkit.export import tflite
from nlpkit.export.targets import fixed_length_endpoints
from nlpkit.layers.export_context import unrolled_trace

__all__ = [
    "mediapipe_classifier_file",
    "check_single_subgraph",
    "add_classifier_metadata",
    "read_metadata_files",
    "mediapipe_file_info",
    "choose_length",
    "DEFAULT_LENGTH",
    "LENGTH_CHOICES",
    "MEDIAPIPE_TARGET",
    "MEDIAPIPE_FILE",
    "MEDIAPIPE_INT8_FILE",
    "VOCAB_FILE",
    "LABELS_FILE",
]

MEDIAPIPE_TARGET = "mediapipe"
MEDIAPIPE_FILE = "model.mediapipe.tflite"
MEDIAPIPE_INT8_FILE = "model.mediapipe.int8.tflite"
# Tokens per text MediaPipe feeds the model (it cuts longer texts). With the default pattern
# every SST-2 sentence fits in 64 (longest 49 tokens), while IMDB reviews need 175 at the
# median (25 % fit in 128, 71 % in 256). Every call runs all N steps, padding included, so N
# is a latency budget: 128 keeps a phone-sized cost (measurements in `mediapipe_classifier_file`);
# `choose_length` picks N from the training texts instead.
DEFAULT_LENGTH = 128
LENGTH_CHOICES = (32, 64, 128, 256, 512)
VOCAB_FILE = "vocab.txt"
LABELS_FILE = "labels.txt"
METADATA_NAME = "TFLITE_METADATA"
_METADATA_IDENTIFIER = b"M001"
_TFLITE_IDENTIFIER = b"TFL3"
# RegexTokenizerOptions entered the metadata schema in 1.2.1 (metadata_version.cc), the newest
# member this writer uses; readers older than that refuse the file instead of misreading it.
_MIN_PARSER_VERSION = "1.2.1"


def mediapipe_classifier_file(model, tokenizer, label_names, length=DEFAULT_LENGTH, quantization=None,
                              name="nlpkit text classifier", description=None):
    """A ``.tflite`` classifier that MediaPipe Tasks' ``TextClassifier`` loads and runs unmodified (bytes).

    Args:
        model: a trained nlpkit ``TextClassifier`` (its ``tflite_endpoints()`` has one
            ``classify`` endpoint: int32 ids ``[1, None]`` in, ``scores`` ``[1, classes]`` out).
        tokenizer: the `nlpkit.text.PythonRegexTokenizer` the model was trained with (or its
            graph twin); its delimiter pattern and vocabulary go into the metadata.
        label_names: list of str, one per class, written as ``labels.txt``.
        length: int, default 128. The fixed input length N: MediaPipe keeps the first N ids
            of a text and always runs N steps. The recurrence is written out N times, so the
            file grows by one step's ops per token and a call slows linearly with N (sizes and
            latencies per N: the Deploy page of the docs).
        quantization: None (float32) or "dynamic_range" (int8 weights with per-tensor dense
            scales, as `nlpkit.export.tflite.convert` writes them): MediaPipe runs it.
        name, description: the metadata's model name and description.

    Raises:
        TypeError: ``tokenizer`` is not a regex tokenizer.
        ValueError: a label is empty or holds a line break, the labels do not match the
            model's classes, or the converted file is not one subgraph without variables.

    Example:
        >>> content = mediapipe_classifier_file(model, twin, ["negative", "positive"])
    """
    from nlpkit.text.regex_tokenizer import PythonRegexTokenizer

    if not isinstance(tokenizer, PythonRegexTokenizer) and hasattr(tokenizer, "to_python"):
        tokenizer = tokenizer.to_python()
    if not isinstance(tokenizer, PythonRegexTokenizer):
        raise TypeError(
            "the mediapipe target needs a model trained with the regex tokenizer (MediaPipe tokenizes with "
            f"its RegexTokenizer only; recipes: --tokenizer regex), received a {type(tokenizer).__name__}"
        )
    label_names = check_labels(label_names)
    endpoints = model.tflite_endpoints()
    if sorted(endpoints) != ["classify"]:
        raise ValueError(f"the mediapipe target exports a classifier's 'classify' endpoint, found {sorted(endpoints)}")
    endpoints = fixed_length_endpoints(endpoints, length)
    # lstm="while": the fused LSTM op keeps its state in variable tensors, which MediaPipe
    # cannot hold; inside unrolled_trace nlpkit's loop becomes straight-line steps.
    with unrolled_trace():
        content = tflite.convert(model, endpoints, quantization=quantization, lstm="while")
    check_single_subgraph(content, length=length, num_classes=len(label_names))
    return add_classifier_metadata(
        content, tokenizer.vocab_file_text(), tokenizer.delimiter_pattern, label_names, name=name,
        description=description or f"Classifies a text into {len(label_names)} classes: {', '.join(label_names)}.",
    )


def choose_length(tokenizer, texts, coverage=0.95, choices=LENGTH_CHOICES):
    """The smallest of ``choices`` that holds the whole of at least ``coverage`` of ``texts``.

    Counts the ids `PythonRegexTokenizer.encode` gives (the start id included), ignoring the
    tokenizer's ``max_length``; the largest choice when none suffices.

    Example:
        >>> choose_length(twin, [row.text for row in train_rows])  # SST-2
        64
    """
    if not 0 < coverage <= 1:
        raise ValueError(f"`coverage` must be in (0, 1], received coverage={coverage!r}")
    start = tokenizer.start_id is not None
    counts = sorted(len(tokenizer.all_tokens(text)) + start for text in texts)
    if not counts:
        return DEFAULT_LENGTH
    needed = counts[max(math.ceil(coverage * len(counts)) - 1, 0)]
    return next((length for length in sorted(choices) if length >= needed), max(choices))


def check_labels(label_names):
    """The labels as a list of str, each non-empty and on one line (``labels.txt`` holds one per line)."""
    if label_names is None or isinstance(label_names, str):
        raise ValueError(f"`label_names` must be a list of str, received {label_names!r:.80}")
    label_names = list(label_names)
    bad = [label for label in label_names if not isinstance(label, str) or not label or "\n" in label or "\r" in label]
    if bad or len(label_names) < 2:
        raise ValueError(f"`label_names` must be 2 or more non-empty one-line strings, received {label_names!r:.200}")
    return label_names


def check_single_subgraph(content, length=None, num_classes=None):
    """Raises ``ValueError`` unless ``content`` is what MediaPipe's text classifier loads.

    One subgraph; one int32 input of stored shape ``[1, length]``; one float32 output
    ``[1, num_classes]``; no variable tensors.
    """
    model = tflite_schema.Model.GetRootAsModel(content, 0)
    if model.SubgraphsLength() != 1:
        raise ValueError(
            f"the mediapipe file has {model.SubgraphsLength()} subgraphs; MediaPipe's text classifier takes one "
            "(a WHILE loop or another control-flow op survived the unrolled trace)"
        )
    graph = model.Subgraphs(0)
    variables = [graph.Tensors(i).Name().decode() for i in range(graph.TensorsLength()) if graph.Tensors(i).IsVariable()]
    if variables:
        raise ValueError(f"the mediapipe file has variable tensors {variables[:5]}, which MediaPipe cannot run")
    if graph.InputsLength() != 1 or graph.OutputsLength() != 1:
        raise ValueError(
            f"the mediapipe file has {graph.InputsLength()} inputs and {graph.OutputsLength()} outputs; "
            "a regex-tokenizer classifier has one of each"
        )
    source, target = graph.Tensors(graph.Inputs(0)), graph.Tensors(graph.Outputs(0))
    shape = source.ShapeAsNumpy().tolist()
    if source.Type() != tflite_schema.TensorType.INT32 or len(shape) != 2 or shape[0] != 1 or (
            length is not None and shape[1] != length):
        raise ValueError(f"the mediapipe file's input must be int32 [1, {length}], found type {source.Type()} {shape}")
    signature = [] if source.ShapeSignatureIsNone() else source.ShapeSignatureAsNumpy().tolist()
    if any(size < 0 for size in signature):
        raise ValueError(f"the mediapipe file's input has a dynamic dimension {signature}")
    out_shape = target.ShapeAsNumpy().tolist()
    if target.Type() != tflite_schema.TensorType.FLOAT32 or (num_classes is not None and out_shape != [1, num_classes]):
        raise ValueError(f"the mediapipe file's output must be float32 [1, {num_classes}], found {out_shape}")


# --- TFLite Metadata --------------------------------------------------------------------------
# The metadata is written with the `flatbuffers` builder against the field numbers of
# metadata_schema.fbs (tflite-support / mediapipe/tasks/metadata), for the few tables a text
# classifier needs. The libraries that ship the schema's generated code cannot live in nlpkit's
# environment: tflite-support pins protobuf<4 (TensorFlow 2.21 needs a newer one) and the
# mediapipe wheel's own metadata writer fails to import; mediapipe as a dependency would also
# pull OpenCV and matplotlib into every install. The tests read every file written here back
# with tflite-support's MetadataDisplayer and run it in MediaPipe itself.

_FEATURE_PROPERTIES = 1  # ContentProperties union: FeatureProperties
_REGEX_TOKENIZER_OPTIONS = 6  # ProcessUnitOptions union: RegexTokenizerOptions
_TENSOR_AXIS_LABELS = 2  # AssociatedFileType
_VOCABULARY = 5  # AssociatedFileType


def _vector(builder, offsets):
    builder.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        builder.PrependUOffsetTRelative(offset)
    return builder.EndVector()


def _table(builder, num_fields, offsets=(), bytes_=()):
    """A table with offset fields ``{slot: offset}`` and one-byte fields ``{slot: value}``."""
    builder.StartObject(num_fields)
    for slot, offset in dict(offsets).items():
        builder.PrependUOffsetTRelativeSlot(slot, offset, 0)
    for slot, value in dict(bytes_).items():
        builder.PrependUint8Slot(slot, value, 0)
    return builder.EndObject()


def _associated_file(builder, name, description, file_type):
    # AssociatedFile: name 0, description 1, type 2, locale 3, version 4.
    name, description = builder.CreateString(name), builder.CreateString(description)
    return _table(builder, 5, {0: name, 1: description}, {2: file_type})


def _feature_content(builder):
    # Content: content_properties_type 0, content_properties 1, range 2. FeatureProperties has no fields.
    properties = _table(builder, 0)
    return _table(builder, 3, {1: properties}, {0: _FEATURE_PROPERTIES})


def classifier_metadata(delimiter_pattern, label_count, name, description):
    """The ``ModelMetadata`` flatbuffer (bytes, identifier "M001") of a regex-tokenizer text classifier."""
    builder = flatbuffers.Builder(1024)
    # Input: TensorMetadata(name 0, description 1, dimension_names 2, content 3, process_units 4,
    # stats 5, associated_files 6) with one ProcessUnit(options_type 0, options 1) holding
    # RegexTokenizerOptions(delim_regex_pattern 0, vocab_file 1).
    vocab = _associated_file(builder, VOCAB_FILE, "Vocabulary file to convert natural language words to embedding vectors.",
                             _VOCABULARY)
    pattern = builder.CreateString(delimiter_pattern)
    options = _table(builder, 2, {0: pattern, 1: _vector(builder, [vocab])})
    unit = _table(builder, 2, {1: options}, {0: _REGEX_TOKENIZER_OPTIONS})
    input_name = builder.CreateString("input_text")
    input_description = builder.CreateString("Token ids of the input text, padded with the id of <PAD>.")
    input_content = _feature_content(builder)
    input_metadata = _table(builder, 7, {0: input_name, 1: input_description, 3: input_content,
                                         4: _vector(builder, [unit])})
    # Output: scores with the labels file; Stats(max 0, min 1) say they are probabilities.
    labels = _associated_file(builder, LABELS_FILE, "Labels for categories that the model can recognize.",
                              _TENSOR_AXIS_LABELS)
    output_name = builder.CreateString("probability")
    output_description = builder.CreateString(f"Probabilities of the {label_count} labels respectively.")
    output_content = _feature_content(builder)
    stats = _table(builder, 2, {0: _float_vector(builder, [1.0]), 1: _float_vector(builder, [0.0])})
    output_metadata = _table(builder, 7, {0: output_name, 1: output_description, 3: output_content, 5: stats,
                                          6: _vector(builder, [labels])})
    # SubGraphMetadata: name 0, description 1, input_tensor_metadata 2, output_tensor_metadata 3, ...
    subgraph = _table(builder, 10, {2: _vector(builder, [input_metadata]), 3: _vector(builder, [output_metadata])})
    # ModelMetadata: name 0, description 1, version 2, subgraph_metadata 3, author 4, license 5,
    # associated_files 6, min_parser_version 7.
    model_name, model_description = builder.CreateString(name), builder.CreateString(description)
    version = builder.CreateString(_MIN_PARSER_VERSION)
    root = _table(builder, 8, {0: model_name, 1: model_description, 3: _vector(builder, [subgraph]), 7: version})
    builder.Finish(root, file_identifier=_METADATA_IDENTIFIER)
    return bytes(builder.Output())


def _float_vector(builder, values):
    builder.StartVector(4, len(values), 4)
    for value in reversed(values):
        builder.PrependFloat32(value)
    return builder.EndVector()


class _AlignedBufferT(tflite_schema.BufferT):
    """A model buffer packed with its data 16-byte aligned, as the converter writes it.

    The generated ``BufferT.Pack`` aligns ``[ubyte]`` data to 1 byte only, so a repacked model
    could hand kernels misaligned float weights.
    """

    def Pack(self, builder):
        data = None
        if self.data is not None and len(self.data):
            raw = np.asarray(self.data, dtype=np.uint8).tobytes()
            builder.StartVector(1, len(raw), 16)
            builder.head -= len(raw)
            builder.Bytes[builder.head : builder.head + len(raw)] = raw
            data = builder.EndVector()
        tflite_schema.BufferStart(builder)
        if data is not None:
            tflite_schema.BufferAddData(builder, data)
        tflite_schema.BufferAddOffset(builder, self.offset)
        tflite_schema.BufferAddSize(builder, self.size)
        return tflite_schema.BufferEnd(builder)


def add_classifier_metadata(content, vocab_text, delimiter_pattern, label_names, name="nlpkit text classifier",
                            description="Classifies a text."):
    """``content`` (a converted ``.tflite`` file) with text classifier metadata and its two files packed in (bytes).

    As tflite-support's ``MetadataPopulator`` does: the ``ModelMetadata`` flatbuffer becomes a
    model buffer named by a ``TFLITE_METADATA`` metadata entry, and ``vocab.txt`` and
    ``labels.txt`` are appended as a zip archive after the flatbuffer (runtimes ignore bytes
    past the flatbuffer; MediaPipe reads its associated files from that archive).
    """
    model = tflite_schema.ModelT.InitFromPackedBuf(bytearray(content), 0)
    if any(entry.name == METADATA_NAME.encode() for entry in model.metadata or []):
        raise ValueError("the model already has TFLite Metadata")
    buffers = []
    for buffer in model.buffers:
        if buffer.offset:
            raise ValueError("models with buffers outside the flatbuffer (over 2 GB) are not supported")
        aligned = _AlignedBufferT()
        aligned.data, aligned.offset, aligned.size = buffer.data, buffer.offset, buffer.size
        buffers.append(aligned)
    metadata_buffer = _AlignedBufferT()
    metadata_buffer.data = np.frombuffer(
        classifier_metadata(delimiter_pattern, len(label_names), name, description), dtype=np.uint8
    )
    buffers.append(metadata_buffer)
    model.buffers = buffers
    entry = tflite_schema.MetadataT()
    entry.name, entry.buffer = METADATA_NAME.encode(), len(buffers) - 1
    model.metadata = [*(model.metadata or []), entry]
    builder = flatbuffers.Builder(len(content) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=_TFLITE_IDENTIFIER)
    archive = io.BytesIO()
    archive.write(bytes(builder.Output()))
    with zipfile.ZipFile(archive, "a") as files:
        files.writestr(VOCAB_FILE, vocab_text.encode("utf-8"))
        files.writestr(LABELS_FILE, "".join(f"{label}\n" for label in label_names).encode("utf-8"))
    return archive.getvalue()


def read_metadata_files(content):
    """``{name: bytes}`` of the files packed into a ``.tflite`` file (``vocab.txt``, ``labels.txt``)."""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as files:
            return {name: files.read(name) for name in files.namelist()}
    except zipfile.BadZipFile:
        return {}


def mediapipe_file_info(content, quantization=None):
    """The ``nlpkit.json`` ``tflite_files`` entry of a file from `mediapipe_classifier_file`.

    Example:
        >>> mediapipe_file_info(content)
        {'target': 'mediapipe', 'quantization': 'float32', 'signatures': ['classify'], 'length': 128, ...}
    """
    model = tflite_schema.Model.GetRootAsModel(content, 0)
    graph = model.Subgraphs(0)
    length = int(graph.Tensors(graph.Inputs(0)).ShapeAsNumpy()[1])
    signatures = sorted(model.SignatureDefs(i).SignatureKey().decode() for i in range(model.SignatureDefsLength()))
    return {
        "target": MEDIAPIPE_TARGET,
        "quantization": quantization or "float32",
        "signatures": signatures,
        "length": length,
        "min_runtime_version": tflite.min_runtime_version(content),
    }
