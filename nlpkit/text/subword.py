"""Subword tokenization with SentencePiece (Kudo & Richardson, 2018): training and the pure-Python twin.

The model is trained through the ``sentencepiece`` library on raw sentences (no
pre-tokenization: spaces become the ``▁`` meta symbol, so decoding restores the text).
Its serialized model proto is the whole tokenizer: `PythonSentencePieceTokenizer` runs it
with the ``sentencepiece`` Python package (what `nlpkit.lite` uses, no TensorFlow) and
`nlpkit.text.SentencePieceTokenizer` runs the same proto inside a TensorFlow graph through
tensorflow-text's op, which embeds the same C++ library, so both give the same ids (tested
on real text, empty strings, unseen characters and invalid UTF-8).

The special ids are fixed so that every nlpkit model can rely on them: 0 is padding (Keras
masks it), 1 the unknown piece, 2 the start and 3 the end of a sentence. Neither side adds
start or end ids itself; the model that needs them adds them.
"""

import io
import json
from pathlib import Path

import sentencepiece

from nlpkit.errors import DataFormatError
from nlpkit.text.python_tokenizers import TOKENIZER_FILE, check_max_length, spec_file

__all__ = [
    "PythonSentencePieceTokenizer",
    "SENTENCEPIECE_MODEL_FILE",
    "SENTENCEPIECE_TYPES",
    "PAD_ID",
    "UNK_ID",
    "BOS_ID",
    "EOS_ID",
]

SENTENCEPIECE_MODEL_FILE = "sentencepiece.model"
SENTENCEPIECE_TYPES = ("unigram", "bpe")
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3


def _as_text(text):
    # Same rule as the other twins: bytes are UTF-8, invalid sequences become U+FFFD (the
    # graph tokenizer transcodes with the same replacement).
    if isinstance(text, bytes):
        return text.decode("utf-8", errors="replace")
    if not isinstance(text, str):
        raise TypeError(f"Expected a str or UTF-8 bytes. Received: {text!r:.80}")
    return text


class PythonSentencePieceTokenizer:
    """SentencePiece subword tokenizer in pure Python (the ``sentencepiece`` package).

    Train one with `train` (or load a bundle's with `nlpkit.text.load_tokenizer`); its
    graph twin is ``nlpkit.text.SentencePieceTokenizer.from_python(tokenizer)``.

    Args:
        model_proto: bytes, a serialized SentencePiece model whose special ids are
            pad 0, unk 1, bos 2, eos 3 (what `train` writes).
        max_length: optional int >= 1; `encode` keeps at most this many ids.

    Example:
        >>> tokenizer = PythonSentencePieceTokenizer.train(["Ein Hund läuft.", "A dog runs."],
        ...                                                vocabulary_size=40)
        >>> tokenizer.decode(tokenizer.encode("Ein Hund läuft."))
        'Ein Hund läuft.'
    """

    kind = "sentencepiece"

    def __init__(self, model_proto, max_length=None):
        if not isinstance(model_proto, (bytes, bytearray)) or not model_proto:
            raise TypeError(
                f"`model_proto` must be the non-empty bytes of a SentencePiece model. "
                f"Received: {type(model_proto).__name__} of length {len(model_proto or b'')}"
            )
        self.model_proto = bytes(model_proto)
        self.max_length = check_max_length(max_length)
        processor = sentencepiece.SentencePieceProcessor()
        try:
            processor.LoadFromSerializedProto(self.model_proto)
        except (RuntimeError, OSError) as error:
            raise ValueError(f"`model_proto` is not a valid SentencePiece model ({error}).") from None
        found = (processor.pad_id(), processor.unk_id(), processor.bos_id(), processor.eos_id())
        if found != (PAD_ID, UNK_ID, BOS_ID, EOS_ID):
            raise ValueError(
                "nlpkit needs SentencePiece special ids pad=0, unk=1, bos=2, eos=3 (train with "
                f"PythonSentencePieceTokenizer.train). Received a model with pad, unk, bos, eos = {found}"
            )
        self._processor = processor

    @classmethod
    def train(
        cls,
        texts,
        vocabulary_size=8000,
        model_type="unigram",
        character_coverage=1.0,
        max_length=None,
        max_sentences=0,
        seed_sentencepiece_size=1000000,
    ):
        """Trains a SentencePiece model on ``texts`` and returns its tokenizer.

        ``vocabulary_size`` is an upper bound: a small corpus that cannot fill it gets the
        largest vocabulary it supports rather than an error. Training runs on one thread,
        so the same texts and options give the same model.

        Args:
            texts: iterable of str, the training sentences (e.g. both sides of a parallel
                corpus for a shared vocabulary).
            vocabulary_size: int >= 5, default 8000. Largest number of pieces, the four
                special ids included.
            model_type: "unigram" (default) or "bpe".
            character_coverage: float in (0, 1], default 1.0. Share of characters covered;
                rarer characters become the unknown id.
            max_length: optional int, see the class.
            max_sentences: int >= 0, default 0 (all). Train on at most this many sentences.
            seed_sentencepiece_size: int, default 1000000. Initial pieces of the unigram model.

        Example:
            >>> tokenizer = PythonSentencePieceTokenizer.train(lines, vocabulary_size=8000)  # doctest: +SKIP
        """
        if isinstance(vocabulary_size, bool) or not isinstance(vocabulary_size, int) or vocabulary_size < 5:
            raise ValueError(f"`vocabulary_size` must be an int >= 5. Received: vocabulary_size={vocabulary_size!r}")
        if model_type not in SENTENCEPIECE_TYPES:
            raise ValueError(f"`model_type` must be one of {SENTENCEPIECE_TYPES}. Received: model_type={model_type!r}")
        if not 0.0 < character_coverage <= 1.0:
            raise ValueError(
                f"`character_coverage` must be in (0, 1]. Received: character_coverage={character_coverage!r}"
            )
        # The trainer rejects empty lines; they carry nothing to learn from anyway.
        lines = [line for line in (_as_text(text).strip() for text in texts) if line]
        if not lines:
            raise ValueError("`texts` holds no non-empty sentence to train SentencePiece on.")
        model = io.BytesIO()
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=iter(lines),
            model_writer=model,
            vocab_size=vocabulary_size,
            model_type=model_type,
            character_coverage=character_coverage,
            input_sentence_size=max_sentences,
            shuffle_input_sentence=max_sentences > 0,
            seed_sentencepiece_size=seed_sentencepiece_size,
            hard_vocab_limit=False,
            pad_id=PAD_ID,
            unk_id=UNK_ID,
            bos_id=BOS_ID,
            eos_id=EOS_ID,
            num_threads=1,
            minloglevel=2,
        )
        return cls(model.getvalue(), max_length=max_length)

    # -- special ids ---------------------------------------------------------------------------

    pad_id, unk_id, bos_id, eos_id = PAD_ID, UNK_ID, BOS_ID, EOS_ID

    @property
    def vocabulary_size(self):
        """Number of ids, the special ones included."""
        return self._processor.get_piece_size()

    def id_to_piece(self, token_id):
        """The piece of one id (``▁`` marks a preceding space)."""
        return self._processor.id_to_piece(int(token_id))

    # -- tokenizing ----------------------------------------------------------------------------

    def tokenize(self, text):
        """The pieces of ``text`` (list of str)."""
        pieces = self._processor.encode(_as_text(text), out_type=str)
        return pieces[: self.max_length] if self.max_length else pieces

    def truncates(self, text):
        """``(kept, total)`` piece counts of ``text``: the model sees ``kept`` of ``total`` pieces."""
        total = len(self._processor.encode(_as_text(text), out_type=int))
        return (min(total, self.max_length) if self.max_length else total), total

    def encode(self, text):
        """The ids of ``text`` (list of int), without start or end ids."""
        ids = self._processor.encode(_as_text(text), out_type=int)
        return ids[: self.max_length] if self.max_length else ids

    def encode_batch(self, texts):
        """``[encode(text) for text in texts]``."""
        if isinstance(texts, (str, bytes)):
            raise TypeError(f"`texts` must be a list of texts, received a single {type(texts).__name__}: {texts!r:.80}")
        return [self.encode(text) for text in texts]

    def decode(self, ids):
        """The text of ``ids``; padding, start and end ids are dropped, unknown ids read `` ⁇ ``."""
        return self._processor.decode([int(i) for i in ids if int(i) not in (PAD_ID, BOS_ID, EOS_ID)])

    # -- files ---------------------------------------------------------------------------------

    def to_spec(self):
        """The JSON-able description stored as ``tokenizer.json``."""
        return {
            "type": self.kind,
            "max_length": self.max_length,
            "model": SENTENCEPIECE_MODEL_FILE,
            "vocabulary_size": self.vocabulary_size,
            "special_ids": {"pad": PAD_ID, "unk": UNK_ID, "bos": BOS_ID, "eos": EOS_ID},
        }

    def save(self, directory):
        """Writes ``sentencepiece.model`` and ``tokenizer.json`` into ``directory``; returns the spec."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / SENTENCEPIECE_MODEL_FILE).write_bytes(self.model_proto)
        spec = self.to_spec()
        (directory / TOKENIZER_FILE).write_text(json.dumps(spec, ensure_ascii=True, indent=1) + "\n", encoding="utf-8")
        return spec

    @classmethod
    def from_files(cls, directory, spec, max_length):
        """The tokenizer `nlpkit.text.load_tokenizer` finds in ``directory``."""
        path = spec_file(directory, spec, "model", SENTENCEPIECE_MODEL_FILE)
        if not path.is_file():
            raise DataFormatError(f"the SentencePiece model {path.name} is missing", path=path)
        try:
            return cls(path.read_bytes(), max_length=max_length)
        except (TypeError, ValueError) as error:
            raise DataFormatError(str(error), path=path) from error

    def __repr__(self):
        return (
            f"{type(self).__name__}(vocabulary_size={self.vocabulary_size}, max_length={self.max_length})"
        )
