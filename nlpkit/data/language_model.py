"""Language-modelling data: text -> one contiguous id stream -> parallel streams for truncated BPTT.

The standard recurrent-LM pipeline (Zaremba et al. 2014; Merity et al. 2018): the whole corpus
is one stream of token ids; it is cut into ``batch_size`` contiguous streams that run side by
side, and each batch is the next ``seq_len`` steps of every stream. Row ``i`` of a batch
continues row ``i`` of the previous batch, so a stateful model carries its states from batch
to batch and learns from context longer than one window (states are reset once per epoch).

Two tokenizations:

- ``"word"``: PTB style. Each non-blank line is a sentence; its tokens are followed by
  ``<eos>``. Generation starts from ``<eos>``, i.e. at the start of a sentence.
- ``"char"``: every character is a token, newlines included (they play the part of
  ``<eos>``). Generation starts from ``"\\n"``.

Pure Python and numpy; only `lm_dataset` imports TensorFlow (when called), so `nlpkit.lite`
can use the detokenizer without it.
"""

import re

import numpy as np

from nlpkit.text.normalization import TextNormalizer
from nlpkit.text.python_tokenizers import PythonCharTokenizer, PythonWordTokenizer
from nlpkit.text.vocabulary import Vocabulary

__all__ = [
    "LEVELS",
    "EOS_TOKEN",
    "WORD_SPECIAL_TOKENS",
    "CHAR_SPECIAL_TOKENS",
    "lm_normalizer",
    "build_lm_tokenizer",
    "tokenizer_level",
    "encode_stream",
    "start_token_id",
    "display_tokens",
    "detokenize",
    "join_pieces",
    "stream_windows",
    "lm_dataset",
]

LEVELS = ("word", "char")
EOS_TOKEN = "<eos>"
WORD_SPECIAL_TOKENS = ("<pad>", "<unk>", EOS_TOKEN)
CHAR_SPECIAL_TOKENS = ("<pad>", "<unk>")
# How generated words are shown: `<eos>` ends a line, and the spaces around a line break go.
_NEWLINE_SPACES = re.compile(" *\n *")
NEWLINE_SPACES_PATTERN = _NEWLINE_SPACES.pattern


def _check_level(level):
    if level not in LEVELS:
        raise ValueError(f"`level` must be one of {LEVELS}. Received: level={level!r}")
    return level


def lm_normalizer(level, lowercase=False, split_punctuation=False):
    """The text normalizer of a language-model tokenizer.

    Word level: whitespace (newlines included) becomes a space; lowercasing and punctuation
    splitting are optional, off by default because corpora such as PTB come tokenized (and a
    split would break PTB's literal ``<unk>`` into three tokens). Character level keeps the
    text exactly as it is: case, punctuation and newlines are what the model predicts.

    Example:
        >>> lm_normalizer("word", lowercase=True).normalize("The\\nCat.")
        'the cat.'
    """
    if _check_level(level) == "char":
        return TextNormalizer(lowercase=False, split_punctuation=False, normalize_whitespace=False)
    return TextNormalizer(lowercase=lowercase, split_punctuation=split_punctuation)


def _as_lines(text):
    if isinstance(text, str):
        return text.split("\n")
    if isinstance(text, (list, tuple)):
        return list(text)
    raise TypeError(f"`text` must be a str or a list of lines. Received: {type(text).__name__}")


def _as_text(text):
    if isinstance(text, str):
        return text
    return "".join(f"{line}\n" for line in _as_lines(text))


def build_lm_tokenizer(text, level, normalizer=None, min_frequency=1, max_size=None):
    """A pure-Python tokenizer whose vocabulary holds the tokens of ``text``.

    Args:
        text: str, or a list of lines (as `nlpkit.data.load("ptb", ...)` returns).
        level: "word" or "char".
        normalizer: optional `TextNormalizer`; default `lm_normalizer(level)`.
        min_frequency: int, default 1. Rarer tokens map to ``<unk>``.
        max_size: optional int, the largest vocabulary (special tokens included).

    Returns:
        A `PythonWordTokenizer` (special tokens ``<pad>``, ``<unk>``, ``<eos>``) or a
        `PythonCharTokenizer` (``<pad>``, ``<unk>``). Make the graph twin with
        ``WordTokenizer.from_python`` / ``CharTokenizer.from_python``.

    Example:
        >>> tokenizer = build_lm_tokenizer(["a cat sat", "a dog sat"], "word")
        >>> tokenizer.vocabulary.tokens
        ['<pad>', '<unk>', '<eos>', 'a', 'sat', 'cat', 'dog']
    """
    normalizer = normalizer or lm_normalizer(level)
    if _check_level(level) == "word":
        token_lists = (normalizer.tokenize(line) for line in _as_lines(text))
        vocabulary = Vocabulary.build(
            token_lists, min_frequency=min_frequency, max_size=max_size, special_tokens=WORD_SPECIAL_TOKENS
        )
        return PythonWordTokenizer(vocabulary, normalizer)
    characters = list(normalizer.normalize(_as_text(text)))
    vocabulary = Vocabulary.build(
        [characters], min_frequency=min_frequency, max_size=max_size, special_tokens=CHAR_SPECIAL_TOKENS
    )
    return PythonCharTokenizer(vocabulary, normalizer)


def tokenizer_level(tokenizer):
    """ "word" or "char", from a tokenizer's spec (Python twin or graph tokenizer)."""
    level = tokenizer.to_spec()["type"]
    return _check_level(level)


def encode_stream(tokenizer, text):
    """The whole of ``text`` as one int32 id stream.

    Word level: the tokens of every non-blank line, each line followed by ``<eos>`` (blank
    lines separate paragraphs in plain text; PTB has none). Character level: every
    character of the text, newlines included.

    Example:
        >>> encode_stream(tokenizer, "a cat sat\\n\\na dog\\n").tolist()
        [3, 5, 4, 2, 3, 6, 2]
    """
    if tokenizer_level(tokenizer) == "char":
        return np.asarray(tokenizer.encode(_as_text(text)), dtype=np.int32)
    eos = tokenizer.vocabulary.eos_id
    if eos is None:
        raise ValueError(f"A word-level LM vocabulary needs {EOS_TOKEN!r}; {tokenizer.vocabulary!r} has none.")
    ids = []
    for line in _as_lines(text):
        tokens = tokenizer.encode(line)
        if tokens:
            ids.extend(tokens)
            ids.append(eos)
    return np.asarray(ids, dtype=np.int32)


def start_token_id(vocabulary):
    """The token every generation starts from: ``<eos>`` (word level) or ``"\\n"`` (char level).

    Both mark where a line starts in the training stream, so a prompt is read as the
    beginning of a line, and an empty prompt is a valid one. A character vocabulary without
    a newline starts from ``<unk>``.
    """
    if vocabulary.eos_id is not None:
        return vocabulary.eos_id
    return vocabulary.lookup("\n")


def display_tokens(vocabulary):
    """The text shown for each id: ``<eos>`` as a line break, padding as nothing."""
    shown = vocabulary.tokens
    shown[vocabulary.pad_id] = ""
    if vocabulary.eos_id is not None:
        shown[vocabulary.eos_id] = "\n"
    return shown


def join_pieces(pieces, level):
    """Joins displayed tokens: words with spaces (none around line breaks), characters as is."""
    if _check_level(level) == "char":
        return "".join(pieces)
    return _NEWLINE_SPACES.sub("\n", " ".join(pieces))


def detokenize(tokenizer, ids):
    """Text of generated ids; the graph detokenizer in `LanguageModel.serving_endpoint` matches it.

    Example:
        >>> detokenize(tokenizer, [3, 5, 2, 3])
        'a cat\\na'
    """
    shown = display_tokens(tokenizer.vocabulary)
    return join_pieces([shown[int(i)] for i in ids], tokenizer_level(tokenizer))


def stream_windows(ids, batch_size, seq_len):
    """Cuts one id stream into ``batch_size`` contiguous streams and windows of ``seq_len`` steps.

    Every ``(input, target)`` pair of consecutive tokens appears exactly once: the ``N - 1``
    pairs are shared out as evenly as possible (the first ``(N - 1) % batch_size`` streams
    get one more), nothing is dropped, and the ends are padded with weight 0. Summing a
    per-token loss times the weight over all windows therefore gives the exact loss of the
    whole stream, whatever ``batch_size`` and ``seq_len`` are.

    Args:
        ids: 1-D int array, the whole stream.
        batch_size: int >= 1, the number of parallel streams.
        seq_len: int >= 1, the BPTT length (time steps per window).

    Returns:
        ``(inputs, targets, weights)``, each ``(num_windows, batch_size, seq_len)``; inputs
        and targets int32 (padding id 0), weights float32 (1 real, 0 padding).

    Example:
        >>> inputs, targets, weights = stream_windows(np.arange(1, 12), batch_size=2, seq_len=3)
        >>> inputs[:, 0].tolist(), targets[:, 0].tolist()
        ([[1, 2, 3], [4, 5, 0]], [[2, 3, 4], [5, 6, 0]])
    """
    for name, value in (("batch_size", batch_size), ("seq_len", seq_len)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
    ids = np.asarray(ids, dtype=np.int32)
    if ids.ndim != 1 or ids.size < 2:
        raise ValueError(
            f"`ids` must be a 1-D stream of at least 2 tokens. Received shape {ids.shape}"
        )
    pairs = ids.size - 1
    base, extra = divmod(pairs, batch_size)
    lengths = np.full(batch_size, base) + (np.arange(batch_size) < extra)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    num_windows = -(-int(lengths.max()) // seq_len)
    width = num_windows * seq_len
    inputs = np.zeros((batch_size, width), np.int32)
    targets = np.zeros((batch_size, width), np.int32)
    weights = np.zeros((batch_size, width), np.float32)
    for row, (start, length) in enumerate(zip(starts, lengths)):
        inputs[row, :length] = ids[start : start + length]
        targets[row, :length] = ids[start + 1 : start + length + 1]
        weights[row, :length] = 1.0

    def windows(array):
        return array.reshape(batch_size, num_windows, seq_len).transpose(1, 0, 2).copy()

    return windows(inputs), windows(targets), windows(weights)


def lm_dataset(ids, batch_size, seq_len, prefetch=True):
    """A ``tf.data.Dataset`` of ``(inputs, targets, weights)`` windows in stream order.

    Batches keep their order (no shuffling: row ``i`` of a batch continues row ``i`` of
    the previous one) and have the static shape ``(batch_size, seq_len)``, which stateful
    layers need. Pass it straight to ``model.fit`` / ``model.evaluate``; the weights zero
    the padding at the end of the streams.

    Example:
        >>> dataset = lm_dataset(encode_stream(tokenizer, "a cat sat"), batch_size=1, seq_len=2)
        >>> [tuple(part.shape) for part in next(iter(dataset))]
        [(1, 2), (1, 2), (1, 2)]
    """
    import tensorflow as tf

    inputs, targets, weights = stream_windows(ids, batch_size, seq_len)
    dataset = tf.data.Dataset.from_tensor_slices((inputs, targets, weights))
    return dataset.prefetch(tf.data.AUTOTUNE) if prefetch else dataset
