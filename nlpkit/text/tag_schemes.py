"""Entity tag schemes (IOB1, BIO, BIOES): validation, span extraction and conversion.

Pure Python (no TensorFlow, no numpy), so readers, the metrics, the CLI and
``nlpkit.lite`` can all share it.

A tag is ``O`` or ``<prefix>-<type>``: ``B-PER``, ``I-LOC``, ``E-ORG``, ``S-MISC``.
Which prefixes a scheme allows:

* ``IOB1``: ``O``, ``I-X``, and ``B-X`` only for a chunk that directly follows
  a chunk of the same type (the original CoNLL-2003 files).
* ``BIO`` (alias ``IOB2``): every chunk starts with ``B-X``, continues with ``I-X``.
* ``BIOES`` (alias ``IOBES``): ``B-X I-X... E-X`` for chunks of two or more
  tokens, ``S-X`` for a single token.

Where the chunks are is decided for every scheme by one rule, the one of
CoNLL's ``conlleval`` script (without ``-r``), which ``seqeval`` ports as its
default mode: ``chunk_boundary`` below. It reads malformed sequences
too, and the same way conlleval does: an ``I-X`` after ``O`` or after a tag of
another type starts a new chunk, a type change inside a chunk ends it, ``E-X``
and ``S-X`` end the chunk they are in. Because extraction, conversion and
``nlpkit.metrics.entity_spans`` all go through that one rule, a converted sequence
always has exactly the chunks conlleval would read in the original.
"""

from nlpkit.errors import NlpkitError

__all__ = [
    "SCHEMES",
    "TagSchemeError",
    "normalize_scheme",
    "parse_tag",
    "validate_tags",
    "chunk_boundary",
    "extract_spans",
    "spans_to_tags",
    "convert_tags",
    "is_allowed_transition",
    "is_well_formed",
    "scheme_tags",
    "detect_scheme",
]

SCHEMES = ("IOB1", "BIO", "BIOES")

_ALIASES = {"IOB1": "IOB1", "BIO": "BIO", "IOB2": "BIO", "BIOES": "BIOES", "IOBES": "BIOES"}

_PREFIXES = {
    "IOB1": ("B", "I"),
    "BIO": ("B", "I"),
    "BIOES": ("B", "I", "E", "S"),
}

# The parsed form of "O"; also stands for the sentence boundary on either side.
_OUTSIDE = ("O", None)

# Prefixes after which no chunk continues, and prefixes that always open one.
_CLOSING = frozenset("ES")
_OPENING = frozenset("BS")


class TagSchemeError(NlpkitError, ValueError):
    """A tag, scheme name or span does not fit the tag scheme. The message names the value."""


def normalize_scheme(scheme):
    """Return the canonical name (``"IOB1"``, ``"BIO"`` or ``"BIOES"``) of a scheme name.

    Args:
        scheme: str. ``IOB1``, ``BIO``/``IOB2`` or ``BIOES``/``IOBES``, any case.

    Returns:
        str, one of ``SCHEMES``.

    Raises:
        TagSchemeError: ``scheme`` names no supported scheme.

    Example:
        >>> normalize_scheme("iob2")
        'BIO'
    """
    if isinstance(scheme, str):
        name = _ALIASES.get(scheme.upper())
        if name is not None:
            return name
    raise TagSchemeError(
        f"scheme must be one of IOB1, BIO (IOB2) or BIOES (IOBES), got {scheme!r}"
    )


def _describe(scheme):
    allowed = ", ".join(f"'{prefix}-<type>'" for prefix in _PREFIXES[scheme])
    return f"{scheme} tags are 'O', {allowed}"


def _parse(tag, scheme, where=""):
    """Split ``tag`` into ``(prefix, type)`` after checking it belongs to ``scheme``."""
    if tag == "O":
        return _OUTSIDE
    if isinstance(tag, str):
        prefix, dash, type_ = tag.partition("-")
        if (
            dash
            and prefix in _PREFIXES[scheme]
            and type_
            and not any(character.isspace() for character in type_)
        ):
            return prefix, type_
    raise TagSchemeError(f"tag {tag!r}{where} is not a {scheme} tag: {_describe(scheme)}")


def parse_tag(tag, scheme="BIOES"):
    """Split a tag into its prefix and entity type, checking it belongs to ``scheme``.

    Args:
        tag: str. ``"O"`` or ``"<prefix>-<type>"``; the type is everything after
            the first ``-`` (so ``"B-ORG-X"`` has type ``"ORG-X"``) and must be
            non-empty, without whitespace.
        scheme: str, default ``"BIOES"`` (the widest: accepts every prefix).

    Returns:
        tuple ``(prefix, type)``; ``("O", None)`` for ``"O"``.

    Raises:
        TagSchemeError: ``tag`` is not a tag of ``scheme``, or the scheme is unknown.

    Example:
        >>> parse_tag("I-PER", "BIO")
        ('I', 'PER')
    """
    return _parse(tag, normalize_scheme(scheme))


def _parse_sequence(tags, scheme, label=""):
    if isinstance(tags, str):
        # A bare string would be read one character at a time: "O" happens to
        # work, "B-PER" fails confusingly on "B".
        raise TagSchemeError(f"tags{label} must be a sequence of tags, got the string {tags!r}")
    # Parsing is the hot path of span_f1 on large sets; a tag vocabulary is small.
    cache = {}
    parsed = []
    for position, tag in enumerate(tags):
        try:
            parsed.append(cache[tag])
        except (KeyError, TypeError):
            value = _parse(tag, scheme, f" at position {position}{label}")
            if isinstance(tag, str):
                cache[tag] = value
            parsed.append(value)
    return parsed


def validate_tags(tags, scheme="BIO"):
    """Check every tag of a sequence belongs to ``scheme`` (transitions are not checked).

    Args:
        tags: sequence of str.
        scheme: str, default ``"BIO"``.

    Returns:
        list of str, the tags.

    Raises:
        TagSchemeError: a tag is outside the scheme; the message names the tag
            and its position.

    Example:
        >>> validate_tags(["B-PER", "E-PER"], "BIO")
        Traceback (most recent call last):
        ...
        nlpkit.text.tag_schemes.TagSchemeError: tag 'E-PER' at position 1 is not a BIO tag: BIO tags are 'O', 'B-<type>', 'I-<type>'
    """
    _parse_sequence(tags, normalize_scheme(scheme))
    return list(tags)


def _boundary(previous, current):
    """conlleval's rule on parsed tags: (a chunk ends before ``current``, one starts at it)."""
    previous_prefix, previous_type = previous
    prefix, type_ = current
    # "O" has type None, so a type change covers every step into or out of "O".
    ends = previous_prefix != "O" and (
        previous_prefix in _CLOSING or prefix in _OPENING or type_ != previous_type
    )
    starts = prefix != "O" and (
        prefix in _OPENING
        or previous_prefix == "O"
        or previous_prefix in _CLOSING
        or type_ != previous_type
    )
    return ends, starts


def chunk_boundary(previous_tag, tag):
    """Whether a chunk ends between two adjacent tags, and whether one starts at the second.

    This is the single chunking rule of nlpkit (conlleval's ``endOfChunk`` and
    ``startOfChunk``, which ``seqeval`` uses in its default mode), applied to
    tags of any scheme. Pass ``"O"`` for the boundary before the first or
    after the last token.

    Args:
        previous_tag: str. Tag of the earlier token, or ``"O"`` at a sentence start.
        tag: str. Tag of the later token, or ``"O"`` at a sentence end.

    Returns:
        tuple of two bools ``(ends, starts)``: a chunk that contains
        ``previous_tag`` ends there, and a new chunk starts at ``tag``.

    Raises:
        TagSchemeError: a tag is not ``O`` or ``B``/``I``/``E``/``S``-prefixed.

    Example:
        >>> chunk_boundary("B-PER", "I-LOC")
        (True, True)
        >>> chunk_boundary("O", "I-PER")
        (False, True)
    """
    return _boundary(_parse(previous_tag, "BIOES"), _parse(tag, "BIOES"))


def _spans_from_parsed(parsed):
    spans = []
    previous = _OUTSIDE
    begin = 0
    for position, current in enumerate([*parsed, _OUTSIDE]):
        ends, starts = _boundary(previous, current)
        if ends:
            spans.append((previous[1], begin, position))
        if starts:
            begin = position
        previous = current
    return spans


def extract_spans(tags, scheme="BIO"):
    """Find the entity chunks of a tag sequence, reading it as conlleval does.

    Malformed sequences are read, not refused: an ``I-X`` after ``O`` or after
    another type starts a chunk, a type change ends one (see the module docstring).

    Args:
        tags: sequence of str. One sentence's tags.
        scheme: str, default ``"BIO"``. Decides which tags are accepted.

    Returns:
        list of ``(type, start, end)`` tuples, ``end`` exclusive, in order.

    Raises:
        TagSchemeError: a tag is outside the scheme (the message names it and
            its position), or the scheme is unknown.

    Example:
        >>> extract_spans(["B-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG"])
        [('PER', 0, 2), ('LOC', 3, 4), ('LOC', 4, 5), ('ORG', 5, 6)]
    """
    return _spans_from_parsed(_parse_sequence(tags, normalize_scheme(scheme)))


def _check_spans(spans, length):
    checked = []
    for span in spans:
        try:
            type_, start, end = span
        except (TypeError, ValueError):
            raise TagSchemeError(f"a span must be (type, start, end), got {span!r}") from None
        if not isinstance(type_, str) or not type_ or any(c.isspace() for c in type_):
            raise TagSchemeError(
                f"span {span!r} has type {type_!r}; need a non-empty str without whitespace"
            )
        if not (
            isinstance(start, int)
            and isinstance(end, int)
            and not isinstance(start, bool)
            and not isinstance(end, bool)
            and 0 <= start < end <= length
        ):
            raise TagSchemeError(
                f"span {span!r} must satisfy 0 <= start < end <= length ({length})"
            )
        checked.append((type_, start, end))
    checked.sort(key=lambda span: span[1])
    for earlier, later in zip(checked, checked[1:]):
        if later[1] < earlier[2]:
            raise TagSchemeError(f"span {later!r} overlaps span {earlier!r}")
    return checked


def spans_to_tags(spans, length, scheme="BIO"):
    """Write chunks as a well-formed tag sequence of ``scheme``.

    Args:
        spans: iterable of ``(type, start, end)`` with ``end`` exclusive;
            non-empty, inside ``[0, length]``, not overlapping (any order).
        length: int. Number of tokens.
        scheme: str, default ``"BIO"``.

    Returns:
        list of str of length ``length``, for which ``extract_spans`` gives the
        spans back (sorted) and ``is_well_formed`` is true.

    Raises:
        TagSchemeError: a span is malformed, out of range or overlaps another.

    Example:
        >>> spans_to_tags([("PER", 0, 2), ("PER", 2, 3)], 4, "IOB1")
        ['I-PER', 'I-PER', 'B-PER', 'O']
    """
    scheme = normalize_scheme(scheme)
    if isinstance(length, bool) or not isinstance(length, int) or length < 0:
        raise TagSchemeError(f"length must be a non-negative int, got {length!r}")
    tags = ["O"] * length
    previous_end, previous_type = None, None
    for type_, start, end in _check_spans(spans, length):
        if scheme == "BIOES" and end - start == 1:
            tags[start] = f"S-{type_}"
            continue
        tags[start:end] = [f"I-{type_}"] * (end - start)
        if scheme == "BIO" or scheme == "BIOES":
            tags[start] = f"B-{type_}"
        elif previous_end == start and previous_type == type_:
            # IOB1 marks B only where I would glue this chunk onto the previous one.
            tags[start] = f"B-{type_}"
        if scheme == "BIOES":
            tags[end - 1] = f"E-{type_}"
        previous_end, previous_type = end, type_
    return tags


def convert_tags(tags, from_scheme, to_scheme):
    """Rewrite a tag sequence in another scheme, keeping the chunks conlleval reads.

    Malformed input is normalised on the way (``O I-PER`` in BIO becomes
    ``O B-PER``); converting a well-formed sequence to another scheme and back
    returns it unchanged.

    Args:
        tags: sequence of str in ``from_scheme``.
        from_scheme: str. ``IOB1``, ``BIO``/``IOB2`` or ``BIOES``/``IOBES``.
        to_scheme: str. Same choices.

    Returns:
        list of str, well-formed in ``to_scheme``.

    Raises:
        TagSchemeError: a tag is outside ``from_scheme``, or a scheme is unknown.

    Example:
        >>> convert_tags(["I-PER", "I-PER", "O", "I-LOC"], "IOB1", "BIOES")
        ['B-PER', 'E-PER', 'O', 'S-LOC']
    """
    tags = list(tags) if not isinstance(tags, str) else tags
    return spans_to_tags(extract_spans(tags, from_scheme), len(tags), to_scheme)


def is_allowed_transition(previous_tag, tag, scheme="BIO"):
    """Whether ``tag`` may follow ``previous_tag`` in a well-formed sequence of ``scheme``.

    Use ``"O"`` for the sentence boundary: a sentence may start with ``tag``
    iff ``is_allowed_transition("O", tag)``, and end after ``previous_tag`` iff
    ``is_allowed_transition(previous_tag, "O")``. This is what CRF transition
    constraints forbid (``O -> I-PER`` in BIO, ``B-PER -> O`` in BIOES).

    Args:
        previous_tag: str. A tag of ``scheme``, or ``"O"``.
        tag: str. A tag of ``scheme``, or ``"O"``.
        scheme: str, default ``"BIO"``.

    Returns:
        bool.

    Raises:
        TagSchemeError: a tag is outside the scheme, or the scheme is unknown.

    Example:
        >>> is_allowed_transition("O", "I-PER", "BIO"), is_allowed_transition("O", "I-PER", "IOB1")
        (False, True)
    """
    scheme = normalize_scheme(scheme)
    previous_prefix, previous_type = _parse(previous_tag, scheme, " (previous tag)")
    prefix, type_ = _parse(tag, scheme)
    inside = previous_prefix in ("B", "I")
    if scheme == "BIO":
        return prefix != "I" or (inside and previous_type == type_)
    if scheme == "IOB1":
        # B separates two adjacent chunks of one type; anywhere else I would do.
        return prefix != "B" or (inside and previous_type == type_)
    if inside:
        return prefix in ("I", "E") and previous_type == type_
    return prefix not in ("I", "E")


def is_well_formed(tags, scheme="BIO"):
    """Whether a tag sequence uses ``scheme`` canonically (every transition allowed).

    Args:
        tags: sequence of str, one sentence.
        scheme: str, default ``"BIO"``.

    Returns:
        bool; ``convert_tags(tags, scheme, scheme) == list(tags)`` exactly when true.

    Raises:
        TagSchemeError: a tag is outside the scheme (the message names it), or
            the scheme is unknown.

    Example:
        >>> is_well_formed(["O", "I-PER"], "BIO"), is_well_formed(["O", "I-PER"], "IOB1")
        (False, True)
    """
    scheme = normalize_scheme(scheme)
    validate_tags(tags, scheme)
    sequence = ["O", *tags, "O"]
    return all(
        is_allowed_transition(previous, tag, scheme)
        for previous, tag in zip(sequence, sequence[1:])
    )


def scheme_tags(entity_types, scheme="BIO"):
    """The tag vocabulary of a scheme for some entity types: ``O`` then each type's tags.

    Args:
        entity_types: iterable of str. Entity types; duplicates are dropped,
            the first occurrence keeps its place.
        scheme: str, default ``"BIO"``.

    Returns:
        list of str, e.g. ``["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]``.

    Raises:
        TagSchemeError: a type is empty, not a str or contains whitespace.

    Example:
        >>> scheme_tags(["PER"], "BIOES")
        ['O', 'B-PER', 'I-PER', 'E-PER', 'S-PER']
    """
    scheme = normalize_scheme(scheme)
    if isinstance(entity_types, str):
        raise TagSchemeError(
            f"entity_types must be a sequence of str, got the string {entity_types!r}"
        )
    tags = ["O"]
    seen = set()
    for type_ in entity_types:
        if not isinstance(type_, str) or not type_ or any(c.isspace() for c in type_):
            raise TagSchemeError(
                f"entity type {type_!r} must be a non-empty str without whitespace"
            )
        if type_ not in seen:
            seen.add(type_)
            tags.extend(f"{prefix}-{type_}" for prefix in _PREFIXES[scheme])
    return tags


def detect_scheme(tag_sequences):
    """Guess the scheme a data set's tags are written in.

    ``E-``/``S-`` prefixes mean BIOES. Otherwise BIO when every sentence is well-formed
    BIO (every chunk opens with ``B-``), else IOB1 when every sentence is well-formed IOB1
    (the original CoNLL-2003 files), else BIO (malformed data, read the conlleval way).

    Args:
        tag_sequences: iterable of sequences of str, one per sentence.

    Returns:
        str, one of ``SCHEMES``.

    Raises:
        TagSchemeError: a tag is not ``O`` or ``B``/``I``/``E``/``S``-prefixed.

    Example:
        >>> detect_scheme([["I-PER", "I-PER", "O"], ["B-LOC", "O"]])
        'BIO'
        >>> detect_scheme([["I-PER", "I-PER", "O"], ["I-LOC", "B-LOC"]])
        'IOB1'
    """
    sequences = [list(tags) for tags in tag_sequences]
    prefixes = {_parse(tag, "BIOES")[0] for tags in sequences for tag in tags}
    if prefixes & _CLOSING:
        return "BIOES"
    if all(is_well_formed(tags, "BIO") for tags in sequences):
        return "BIO"
    if all(is_well_formed(tags, "IOB1") for tags in sequences):
        return "IOB1"
    return "BIO"
