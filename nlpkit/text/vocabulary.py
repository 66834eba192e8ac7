"""Token <-> id vocabularies. Pure Python (standard library only)."""

import collections
import json
from pathlib import Path

from nlpkit.errors import DataFormatError
from nlpkit.text.normalization import read_json

__all__ = ["Vocabulary", "DEFAULT_SPECIAL_TOKENS"]

DEFAULT_SPECIAL_TOKENS = ("<pad>", "<unk>")
_FORMAT = "nlpkit.vocabulary"
_FORMAT_VERSION = 1


def _check_token(token, what):
    if not isinstance(token, str):
        raise ValueError(f"{what} must be strings, received {type(token).__name__}: {token!r}")
    if not token:
        # No tokenizer produces "", and an empty entry would make saved files ambiguous to read.
        raise ValueError(f"{what} must be non-empty strings, received {token!r}")


class Vocabulary:
    """A fixed mapping between tokens and integer ids.

    Ids ``0 .. k-1`` are the special tokens in the given order, then the regular tokens in the
    given order. The first special token is the padding token and has id 0, the mask value
    Keras layers use (``mask_zero=True``); the unknown token is ``unk_token``. Tokens may hold
    any character (spaces and newlines included, as character vocabularies need).

    Args:
        tokens: iterable of str. Regular tokens in id order. Duplicates, empty strings and
            tokens equal to a special token raise ``ValueError``.
        special_tokens: sequence of str, default ``("<pad>", "<unk>")``. Reserved tokens that
            take the first ids; the first one is padding. Add "<bos>"/"<eos>" for language
            models and decoders.
        unk_token: str, default "<unk>". The special token that unknown tokens map to. Must be
            among ``special_tokens`` and must not be the padding token.

    Example:
        >>> vocab = Vocabulary.build([["a", "b", "a"], ["c", "a", "b"]], min_frequency=2)
        >>> vocab.tokens
        ['<pad>', '<unk>', 'a', 'b']
        >>> vocab.encode(["a", "c", "b"])
        [2, 1, 3]
        >>> vocab.decode([3, 2])
        ['b', 'a']
    """

    def __init__(self, tokens, special_tokens=DEFAULT_SPECIAL_TOKENS, unk_token="<unk>"):
        if isinstance(special_tokens, str):
            raise ValueError(
                f"`special_tokens` must be a sequence of strings, received the string {special_tokens!r}"
            )
        special_tokens = tuple(special_tokens)
        if not special_tokens:
            raise ValueError(
                "`special_tokens` must hold at least the padding and unknown tokens, received ()"
            )
        for token in special_tokens:
            _check_token(token, "`special_tokens`")
        duplicates = [t for t, n in collections.Counter(special_tokens).items() if n > 1]
        if duplicates:
            raise ValueError(f"`special_tokens` has duplicates: {duplicates!r}")
        if unk_token not in special_tokens:
            raise ValueError(
                f"`unk_token`={unk_token!r} is not among `special_tokens`={special_tokens!r}"
            )
        if unk_token == special_tokens[0]:
            raise ValueError(
                f"`unk_token`={unk_token!r} is the first special token, which is padding (id 0); "
                "put a padding token first"
            )
        if isinstance(tokens, str):
            raise ValueError(
                f"`tokens` must be an iterable of strings, received the string {tokens!r:.80}"
            )
        self.special_tokens = special_tokens
        self.unk_token = unk_token
        self._tokens = list(special_tokens)
        self._ids = {token: index for index, token in enumerate(special_tokens)}
        for token in tokens:
            _check_token(token, "`tokens`")
            if token in self._ids:
                kind = "a special token" if token in special_tokens else "a duplicate"
                raise ValueError(f"token {token!r} is {kind}; every token must appear once")
            self._ids[token] = len(self._tokens)
            self._tokens.append(token)
        self.unk_id = self._ids[unk_token]
        self.pad_id = 0
        self.pad_token = special_tokens[0]

    @classmethod
    def build(
        cls,
        token_lists,
        min_frequency=1,
        max_size=None,
        special_tokens=DEFAULT_SPECIAL_TOKENS,
        unk_token="<unk>",
    ):
        """Counts tokens and keeps the frequent ones.

        Args:
            token_lists: iterable of iterables of str (e.g. one token list per sentence).
            min_frequency: int >= 1, default 1. Tokens seen fewer times are dropped.
            max_size: optional int, default None. Largest vocabulary size, special tokens
                included.
            special_tokens, unk_token: as in the constructor. Occurrences of special tokens in
                the data (PTB's literal "<unk>", say) are not counted as regular tokens.

        Regular tokens are ordered by frequency (descending), then by the token (code point
        order), so the result never depends on the input order of equally frequent tokens.
        """
        if isinstance(min_frequency, bool) or not isinstance(min_frequency, int) or min_frequency < 1:
            raise ValueError(f"`min_frequency` must be an int >= 1, received {min_frequency!r}")
        special_tokens = tuple(special_tokens)
        if max_size is not None:
            too_small = isinstance(max_size, int) and max_size < len(special_tokens)
            if isinstance(max_size, bool) or not isinstance(max_size, int) or too_small:
                raise ValueError(
                    f"`max_size` must be None or an int >= the number of special tokens "
                    f"({len(special_tokens)}), received {max_size!r}"
                )
        if isinstance(token_lists, str):
            raise ValueError(
                "`token_lists` must be an iterable of token lists, "
                f"received the string {token_lists!r:.80}"
            )
        counts = collections.Counter()
        for tokens in token_lists:
            if isinstance(tokens, str):
                # A bare string would be counted character by character, silently.
                raise ValueError(
                    f"`token_lists` must hold lists of tokens, received the string {tokens!r:.80}"
                )
            counts.update(tokens)
        reserved = set(special_tokens)
        kept = [(token, n) for token, n in counts.items() if n >= min_frequency and token not in reserved]
        kept.sort(key=lambda item: (-item[1], item[0]))
        if max_size is not None:
            kept = kept[: max_size - len(special_tokens)]
        return cls([token for token, _ in kept], special_tokens=special_tokens, unk_token=unk_token)

    def extended(self, extra_tokens, max_size=None):
        """A vocabulary with ``extra_tokens`` appended after this one's (new and non-empty
        ones only, first occurrence wins), cut to ``max_size`` tokens including specials.

        Example:
            >>> Vocabulary(["a", "b"]).extended(["b", "c", "d"], max_size=5).tokens
            ['<pad>', '<unk>', 'a', 'b', 'c']
        """
        known = set(self.tokens)
        tokens = self.tokens[len(self.special_tokens) :]
        tokens += [token for token in dict.fromkeys(extra_tokens) if token and token not in known]
        if max_size is not None:
            tokens = tokens[: max_size - len(self.special_tokens)]
        return Vocabulary(tokens, special_tokens=self.special_tokens, unk_token=self.unk_token)

    @property
    def tokens(self):
        """All tokens in id order, special tokens first (a new list)."""
        return list(self._tokens)

    def lookup(self, token):
        """Returns the id of ``token`` (special tokens included), or ``unk_id`` if unknown."""
        return self._ids.get(token, self.unk_id)

    def encode(self, tokens):
        """Returns ``[lookup(t) for t in tokens]``."""
        ids = self._ids
        unk = self.unk_id
        return [ids.get(token, unk) for token in tokens]

    def decode(self, ids):
        """Returns the tokens of ``ids``; an id outside ``[0, len(self))`` raises ``ValueError``."""
        size = len(self._tokens)
        out = []
        for index in ids:
            try:
                index_int = int(index)
            except (TypeError, ValueError):
                index_int = None
            if index_int is None or index_int != index or not 0 <= index_int < size:
                raise ValueError(f"id {index!r} is out of range for a vocabulary of size {size}")
            out.append(self._tokens[index_int])
        return out

    def id_of(self, special):
        """Returns the id of special token ``special``, or None if it is not a special token."""
        return self._ids[special] if special in self.special_tokens else None

    @property
    def bos_id(self):
        """Id of "<bos>", or None when it is not a special token."""
        return self.id_of("<bos>")

    @property
    def eos_id(self):
        """Id of "<eos>", or None when it is not a special token."""
        return self.id_of("<eos>")

    def __len__(self):
        return len(self._tokens)

    def __contains__(self, token):
        return token in self._ids

    def __eq__(self, other):
        if not isinstance(other, Vocabulary):
            return NotImplemented
        return (
            self._tokens == other._tokens
            and self.special_tokens == other.special_tokens
            and self.unk_token == other.unk_token
        )

    __hash__ = None

    def __repr__(self):
        return (
            f"Vocabulary(size={len(self)}, special_tokens={self.special_tokens!r}, "
            f"unk_token={self.unk_token!r})"
        )

    def to_dict(self):
        """Returns a JSON-able dict: ``special_tokens``, ``unk_token`` and the regular ``tokens``."""
        return {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "special_tokens": list(self.special_tokens),
            "unk_token": self.unk_token,
            "tokens": self._tokens[len(self.special_tokens) :],
        }

    @classmethod
    def from_dict(cls, config):
        """Rebuilds a vocabulary from ``to_dict()`` output."""
        if not isinstance(config, dict):
            raise ValueError(f"vocabulary config must be a dict, received {type(config).__name__}")
        missing = [key for key in ("special_tokens", "unk_token", "tokens") if key not in config]
        if missing:
            raise ValueError(f"vocabulary config is missing {missing}, keys are {sorted(config)}")
        for key in ("special_tokens", "tokens"):
            if not isinstance(config[key], list):
                raise ValueError(
                    f"vocabulary config '{key}' must be a list, received {type(config[key]).__name__}"
                )
        return cls(
            config["tokens"], special_tokens=config["special_tokens"], unk_token=config["unk_token"]
        )

    def save(self, path):
        """Writes the vocabulary to ``path`` as ASCII-only JSON, one token per line."""
        data = self.to_dict()
        tokens = data.pop("tokens")
        head = json.dumps(data, ensure_ascii=True)[:-1]
        # One token per line keeps large vocabularies diffable and greppable.
        body = ",\n".join(json.dumps(token, ensure_ascii=True) for token in tokens)
        Path(path).write_text(f'{head}, "tokens": [\n{body}\n]}}\n', encoding="utf-8")

    @classmethod
    def load(cls, path):
        """Reads a vocabulary written by ``save``; malformed files raise ``DataFormatError``."""
        config = read_json(path, "vocabulary")
        if config.get("format", _FORMAT) != _FORMAT:
            raise DataFormatError(f"not a vocabulary file (format={config.get('format')!r})", path=path)
        try:
            return cls.from_dict(config)
        except ValueError as error:
            raise DataFormatError(str(error), path=path) from error
