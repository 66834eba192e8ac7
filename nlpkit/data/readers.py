"""Readers for the text formats nlpkit trains on: plain text, TSV/CSV, CoNLL columns, parallel text.

Every reader is pure Python (standard library only), reads gzip transparently (detected by the
gzip magic bytes, not by the file name), decodes strictly as UTF-8 and reports malformed input as
:class:`nlpkit.errors.DataFormatError` carrying the file name and the 1-based line number.
"""

from __future__ import annotations

import csv
import gzip
import os
import zlib
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from nlpkit.errors import DataFormatError
from nlpkit.text.tag_schemes import TagSchemeError, normalize_scheme, parse_tag

__all__ = [
    "LabelledText",
    "ParallelPair",
    "TaggedSentence",
    "iter_lines",
    "read_classification",
    "read_conll",
    "read_lines",
    "read_parallel",
    "read_parallel_tsv",
    "read_text",
]

PathLike = str | os.PathLike

_GZIP_MAGIC = b"\x1f\x8b"
_BOM = "\ufeff"
# How many rows after the first one are inspected when guessing whether the first row is a header.
_HEADER_LOOKAHEAD = 100


class LabelledText(NamedTuple):
    """One example of a text classification data set.

    Args:
        text (str): the text exactly as stored in the file (may be empty).
        label (str): the label as a string (e.g. ``"0"``, ``"positive"``); never empty.

    Example:
        >>> LabelledText("a gripping film ", "1").label
        '1'
    """

    text: str
    label: str


class TaggedSentence(NamedTuple):
    """One sentence of a token tagging data set (NER, POS, chunking).

    Args:
        tokens (list[str]): the tokens of the sentence, never empty.
        tags (list[str]): one tag per token, same length as ``tokens``.
        document (int): index of the document the sentence belongs to in its file (documents
            are separated by ``-DOCSTART-`` lines in CoNLL files; 0 for a file without them).
            Equal sentences of different documents compare unequal.

    Example:
        >>> s = TaggedSentence(["EU", "rejects"], ["B-ORG", "O"])
        >>> list(zip(s.tokens, s.tags)), s.document
        ([('EU', 'B-ORG'), ('rejects', 'O')], 0)
    """

    tokens: list[str]
    tags: list[str]
    document: int = 0


class ParallelPair(NamedTuple):
    """One aligned sentence pair of a translation data set.

    Args:
        source (str): the source-language line.
        target (str): the target-language line.

    Example:
        >>> ParallelPair("Ein Hund.", "A dog.").target
        'A dog.'
    """

    source: str
    target: str


# --------------------------------------------------------------------------------------------
# Low-level access
# --------------------------------------------------------------------------------------------


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as probe:
        return probe.read(2) == _GZIP_MAGIC


def _open_binary(path: Path):
    """Opens ``path`` for binary reading, decompressing it when it starts with the gzip magic."""
    if _is_gzip(path):
        return gzip.open(path, "rb")
    return open(path, "rb")


def _read_bytes(path: Path) -> bytes:
    try:
        with _open_binary(path) as stream:
            return stream.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataFormatError(f"corrupt gzip data ({exc})", path=path) from None


def _decode_error(path: Path, line_number: int, raw: bytes, exc: UnicodeDecodeError):
    bad = raw[exc.start : exc.end]
    return DataFormatError(
        f"invalid UTF-8 byte(s) {bad.hex(' ')} at byte offset {exc.start} of the line "
        f"({exc.reason})",
        path=path,
        line=line_number,
    )


def iter_lines(path: PathLike) -> Iterator[tuple[int, str]]:
    """Yields ``(line_number, line)`` for every line of a UTF-8 text file, plain or gzipped.

    Line numbers start at 1. The trailing ``"\\n"`` and one trailing ``"\\r"`` are removed, a
    UTF-8 byte-order mark at the start of the file is dropped, and a final line without a newline
    is still yielded. Gzip is recognised by its magic bytes, so a gzipped file need not end in
    ``.gz``.

    Args:
        path: the file to read.

    Raises:
        FileNotFoundError: ``path`` does not exist (the error names it).
        DataFormatError: a line is not valid UTF-8 (names the file, the line and the byte offset
            inside that line) or the gzip stream is corrupt.

    Example:
        >>> for number, line in iter_lines("ptb/ptb.valid.txt"):  # doctest: +SKIP
        ...     print(number, line.split()[:3])
    """
    path = Path(path)
    with _open_binary(path) as stream:
        line_number = 0
        try:
            for raw in stream:
                line_number += 1
                if raw.endswith(b"\n"):
                    raw = raw[:-1]
                if raw.endswith(b"\r"):
                    raw = raw[:-1]
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise _decode_error(path, line_number, raw, exc) from None
                if line_number == 1 and line.startswith(_BOM):
                    line = line[1:]
                yield line_number, line
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise DataFormatError(
                f"corrupt gzip data after line {line_number} ({exc})", path=path
            ) from None


def read_text(path: PathLike) -> str:
    """Reads a whole UTF-8 text file (plain or gzipped) into one string.

    Line endings are kept as they are in the file; a leading byte-order mark is dropped.

    Args:
        path: the file to read.

    Returns:
        The decoded text.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        DataFormatError: the file is not valid UTF-8; the message gives the line and the byte
            offset inside that line.

    Example:
        >>> text = read_text("tinyshakespeare/input.txt")  # doctest: +SKIP
        >>> text[:14]  # doctest: +SKIP
        'First Citizen:'
    """
    path = Path(path)
    data = _read_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Decoding the whole file at once is fast; only on failure do we work out where the
        # bad byte sits so the message matches what iter_lines would report.
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        line_number = data.count(b"\n", 0, exc.start) + 1
        line_end = data.find(b"\n", exc.start)
        raw = data[line_start : None if line_end < 0 else line_end]
        shifted = UnicodeDecodeError(
            exc.encoding, raw, exc.start - line_start, exc.end - line_start, exc.reason
        )
        raise _decode_error(path, line_number, raw, shifted) from None
    if text.startswith(_BOM):
        text = text[1:]
    return text


def read_lines(path: PathLike) -> list[str]:
    """Reads a UTF-8 text file (plain or gzipped) into a list of lines without line endings.

    Args:
        path: the file to read.

    Returns:
        One string per line, as produced by :func:`iter_lines`.

    Example:
        >>> lines = read_lines("ptb/ptb.train.txt")  # doctest: +SKIP
        >>> len(lines)  # doctest: +SKIP
        42068
    """
    return [line for _, line in iter_lines(path)]


# --------------------------------------------------------------------------------------------
# Classification (TSV / CSV)
# --------------------------------------------------------------------------------------------


def _default_delimiter(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return "," if name.endswith(".csv") else "\t"


def _iter_rows(path: Path, delimiter: str, quoting: bool) -> Iterator[tuple[int, list[str]]]:
    """Yields ``(line_number, fields)`` per record, skipping lines that are completely empty."""
    if not quoting:
        # Quote characters are literal (reviews contain '"'), so a record is exactly one line
        # and a plain split is both faithful and faster than csv.QUOTE_NONE.
        for line_number, line in iter_lines(path):
            if line:
                yield line_number, line.split(delimiter)
        return

    # The csv module needs the newlines back to keep line breaks inside quoted fields.
    reader = csv.reader(
        (line + "\n" for _, line in iter_lines(path)),
        delimiter=delimiter,
        quoting=csv.QUOTE_MINIMAL,
        strict=True,
    )
    consumed = 0
    while True:
        start = consumed + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataFormatError(f"malformed CSV quoting ({exc})", path=path, line=start) from None
        consumed = reader.line_num
        if fields:
            yield start, fields


def _describe_delimiter(delimiter: str) -> str:
    return {"\t": "tab", ",": "comma"}.get(delimiter, repr(delimiter))


def read_classification(
    path: PathLike,
    text_column: str | int = "sentence",
    label_column: str | int = "label",
    delimiter: str | None = None,
    has_header: bool | None = None,
    quoting: bool = False,
) -> list[LabelledText]:
    """Reads a delimited text classification file (TSV or CSV, plain or gzipped).

    Header detection (``has_header=None``): when a column is given by name the first row is the
    header exactly when it contains the named columns, and a named column that is missing from
    it is an error (the message lists the header). When both columns are integer indices, the
    first row is taken as a header when its label field "looks like a column name", i.e. is not
    one of the labels seen in the next 100 rows; a file with a single row is therefore read as
    a header only, so pass ``has_header`` explicitly for such files.

    Completely empty lines are skipped. Every other row must have as many fields as the first
    row (header or not). Text is returned unchanged (it may be empty); labels have surrounding
    whitespace removed and must not be empty.

    Args:
        path: the file to read.
        text_column: header name or 0-based index (negative counts from the end) of the text.
        label_column: header name or index of the label.
        delimiter: field separator; ``None`` chooses from the file name: ``.csv``/``.csv.gz``
            -> comma, anything else (``.tsv``, ``.tsv.gz``, ``.txt``, ...) -> tab.
        has_header: ``True``/``False`` to say whether the first row is a header, ``None`` to
            detect it as described above.
        quoting: ``False`` (default) treats quote characters as ordinary text (like
            ``csv.QUOTE_NONE``), which is what the SST-2 and IMDB files need; ``True`` applies
            standard CSV quoting (fields may be quoted and span lines).

    Returns:
        One :class:`LabelledText` per data row, in file order.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        DataFormatError: wrong number of fields, empty label, named column not in the header,
            column index out of range, bad quoting or bad UTF-8 (file and line in the message).
            With ``quoting=False``, a wrong field count on a line holding ``"`` suggests quoting.
        ValueError: the arguments contradict each other (same column twice, names without a
            header).

    Example:
        >>> rows = read_classification("sst2/dev.tsv")  # doctest: +SKIP
        >>> rows[0].label  # doctest: +SKIP
        '1'
    """
    path = Path(path)
    if text_column == label_column:
        raise ValueError(f"text_column and label_column are the same column: {text_column!r}")
    for name, column in (("text_column", text_column), ("label_column", label_column)):
        if isinstance(column, bool) or not isinstance(column, (str, int)):
            raise TypeError(f"{name} must be a column name (str) or index (int), got {column!r}")
    named = isinstance(text_column, str) or isinstance(label_column, str)
    if named and has_header is False:
        raise ValueError(
            f"columns given by name ({text_column!r}, {label_column!r}) need a header row, "
            "but has_header=False; pass integer column indices instead"
        )
    if delimiter is None:
        delimiter = _default_delimiter(path)
    elif not delimiter:
        raise ValueError("delimiter must be a non-empty string, got ''")
    sep_name = _describe_delimiter(delimiter)

    rows = list(_iter_rows(path, delimiter, quoting))
    if not rows:
        return []
    first_line, first = rows[0]
    width = len(first)

    def resolve(column: str | int, role: str) -> int:
        if isinstance(column, str):
            if column not in first:
                raise DataFormatError(
                    f"{role} column {column!r} is not in the header {first!r} "
                    f"({sep_name}-separated)",
                    path=path,
                    line=first_line,
                )
            return first.index(column)
        index = column + width if column < 0 else column
        if not 0 <= index < width:
            raise DataFormatError(
                f"{role} column index {column} is out of range for rows of {width} "
                f"{sep_name}-separated field(s)",
                path=path,
                line=first_line,
            )
        return index

    text_index = resolve(text_column, "text")
    label_index = resolve(label_column, "label")
    if text_index == label_index:
        # Only the file's width makes them meet (e.g. -1 and 0 in a one-column file): name it.
        raise DataFormatError(
            f"text_column {text_column!r} and label_column {label_column!r} are the same column "
            f"of rows of {width} {sep_name}-separated field(s)",
            path=path,
            line=first_line,
        )

    if has_header is None:
        if named:
            has_header = True  # resolve() has already checked the names are in the first row
        else:
            following = {
                fields[label_index].strip()
                for _, fields in rows[1 : 1 + _HEADER_LOOKAHEAD]
                if len(fields) == width
            }
            has_header = first[label_index].strip() not in following

    where = "the header" if has_header else "the first row"
    examples = []
    for line_number, fields in rows[1:] if has_header else rows:
        if len(fields) != width:
            hint = ""
            # Quoting is off by default (review text holds literal quotes), so a standard quoted
            # CSV field with a delimiter inside splits apart; say how to read such a file.
            if not quoting and '"' in delimiter.join(fields):
                hint = (
                    "; the line contains '\"': if fields are quoted, read with --quoting csv "
                    "(quoting=True)"
                )
            raise DataFormatError(
                f"expected {width} {sep_name}-separated fields (as in {where}, line "
                f"{first_line}), found {len(fields)}{hint}",
                path=path,
                line=line_number,
            )
        label = fields[label_index].strip()
        if not label:
            raise DataFormatError(
                f"empty label in column {label_column!r}", path=path, line=line_number
            )
        examples.append(LabelledText(fields[text_index], label))
    return examples


# --------------------------------------------------------------------------------------------
# Tagging (CoNLL columns)
# --------------------------------------------------------------------------------------------


def _preview(values: Iterable[str], limit: int = 20) -> str:
    ordered = sorted(values)
    shown = ", ".join(ordered[:limit])
    return shown + (f", ... ({len(ordered)} in all)" if len(ordered) > limit else "")


def read_conll(
    path: PathLike,
    token_column: int = 0,
    tag_column: int = -1,
    docstart: str | None = "-DOCSTART-",
    separator: str | None = None,
    valid_tags: Collection[str] | None = None,
    tag_scheme: str | None = None,
) -> list[TaggedSentence]:
    """Reads a CoNLL-style column file: one token per line, blank lines between sentences.

    Lines whose first field (or token field) is the ``docstart`` marker are skipped and end the
    current sentence, so the blank line that follows them yields no empty sentence; they also
    end the current document (``TaggedSentence.document`` counts the documents that hold a
    sentence, from 0). All
    non-blank, non-docstart lines must have the same number of columns as the first such line.
    A line of only whitespace and byte-order marks (U+FEFF) counts as blank.

    Args:
        path: the file to read (plain or gzipped).
        token_column (int): index of the token column (negative counts from the end).
        tag_column (int): index of the tag column; the default ``-1`` is the last column (the
            NER tag in CoNLL-2003).
        docstart (str | None): document separator marker; ``None`` keeps such lines as tokens.
        separator (str | None): column separator; ``None`` splits on runs of whitespace.
        valid_tags (Collection[str] | None): when given, every tag must be in it.
        tag_scheme (str | None): when given (``"BIO"``, ``"IOB1"`` or ``"BIOES"``), every tag
            must be a tag of that scheme (``O`` or ``<prefix>-<type>`` with the scheme's
            prefixes); transitions between tags are not checked.

    Returns:
        One :class:`TaggedSentence` per sentence, never an empty one.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        DataFormatError: inconsistent column count (expected and found count), column index out
            of range, tag not in ``valid_tags`` or not of ``tag_scheme``, or bad UTF-8, each
            with file and line.

    Example:
        >>> sentences = read_conll("conll2003/valid.txt")  # doctest: +SKIP
        >>> sentences[0].tags  # doctest: +SKIP
        ['O', 'O']
    """
    path = Path(path)
    if tag_scheme is not None:
        tag_scheme = normalize_scheme(tag_scheme)
    checked_tags: set[str] = set()
    sentences: list[TaggedSentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    width = None
    first_line = None
    document = 0

    def flush():
        nonlocal tokens, tags
        if tokens:
            sentences.append(TaggedSentence(tokens, tags, document))
            tokens, tags = [], []

    for line_number, line in iter_lines(path):
        # iter_lines drops a BOM on line 1 only; files concatenated from BOM-marked parts also
        # carry one on a line of its own (often the last), which str.strip() does not remove.
        if not line.replace(_BOM, "").strip():
            flush()
            continue
        fields = line.split(separator)
        if docstart is not None and (
            fields[0] == docstart
            or (-len(fields) <= token_column < len(fields) and fields[token_column] == docstart)
        ):
            flush()
            if sentences and sentences[-1].document == document:
                document += 1
            continue
        if width is None:
            width, first_line = len(fields), line_number
            for role, column in (("token", token_column), ("tag", tag_column)):
                if not -width <= column < width:
                    raise DataFormatError(
                        f"{role} column {column} is out of range for lines of {width} column(s)",
                        path=path,
                        line=line_number,
                    )
        elif len(fields) != width:
            raise DataFormatError(
                f"expected {width} columns (as on line {first_line}), found {len(fields)}: "
                f"{line!r}",
                path=path,
                line=line_number,
            )
        tag = fields[tag_column]
        if valid_tags is not None and tag not in valid_tags:
            raise DataFormatError(
                f"tag {tag!r} is not one of the valid tags ({_preview(valid_tags)})",
                path=path,
                line=line_number,
            )
        if tag_scheme is not None and tag not in checked_tags:
            try:
                parse_tag(tag, tag_scheme)
            except TagSchemeError as error:
                raise DataFormatError(str(error), path=path, line=line_number) from None
            checked_tags.add(tag)
        tokens.append(fields[token_column])
        tags.append(tag)
    flush()
    return sentences


# --------------------------------------------------------------------------------------------
# Translation (line-aligned parallel files)
# --------------------------------------------------------------------------------------------


def read_parallel(source_path: PathLike, target_path: PathLike) -> list[ParallelPair]:
    """Reads two line-aligned files (plain or gzipped) into sentence pairs.

    Args:
        source_path: the source-language file, one sentence per line.
        target_path: the target-language file, aligned line by line with the source.

    Returns:
        One :class:`ParallelPair` per line.

    Raises:
        FileNotFoundError: either file does not exist.
        DataFormatError: the files have different numbers of lines; the message names both
            files and the first line number that has no partner.

    Example:
        >>> pairs = read_parallel("multi30k/val.de", "multi30k/val.en")  # doctest: +SKIP
        >>> len(pairs)  # doctest: +SKIP
        1014
    """
    source_path, target_path = Path(source_path), Path(target_path)
    pairs = []
    sources, targets = iter_lines(source_path), iter_lines(target_path)
    for source_item in sources:
        target_item = next(targets, None)
        if target_item is None:
            raise _unaligned(source_path, target_path, source_item[0], longer=source_path)
        pairs.append(ParallelPair(source_item[1], target_item[1]))
    extra = next(targets, None)
    if extra is not None:
        raise _unaligned(source_path, target_path, extra[0], longer=target_path)
    return pairs


def _unaligned(source_path: Path, target_path: Path, line_number: int, longer: Path):
    shorter = target_path if longer is source_path else source_path
    return DataFormatError(
        f"parallel files are not aligned: {shorter} has {line_number - 1} line(s) but "
        f"{longer} continues; line {line_number} of {longer} has no partner "
        f"(source {source_path}, target {target_path})",
        path=longer,
        line=line_number,
    )


def read_parallel_tsv(path: PathLike, source: str, target: str) -> list[ParallelPair]:
    """Reads sentence pairs from a tab-separated file whose header names the languages.

    The embedded translation sample (``translation_train.tsv``: header ``de<TAB>en``) has
    this form. Fields are split on tabs only, without CSV quoting, so a sentence may hold
    quotes.

    Args:
        path: the file; its first line names the columns (e.g. ``de`` and ``en``).
        source: the column of the source language.
        target: the column of the target language.

    Returns:
        One :class:`ParallelPair` per row after the header.

    Raises:
        DataFormatError: a language is not a column, or a row has a different number of
            fields than the header (the message names the line).

    Example:
        >>> from nlpkit.samples import sample_path
        >>> read_parallel_tsv(sample_path("translation_valid.tsv"), "de", "en")[0].source[:3]
        'Ein'
    """
    path = Path(path)
    lines = iter_lines(path)
    header_item = next(lines, None)
    if header_item is None:
        raise DataFormatError(f"{path} is empty; expected a header naming the languages", path=path)
    header = header_item[1].split("\t")
    for language in (source, target):
        if language not in header:
            raise DataFormatError(
                f"language {language!r} is not a column of {path}; its columns are {header}",
                path=path,
                line=1,
            )
    if source == target:
        raise ValueError(f"source and target language are both {source!r}")
    source_index, target_index = header.index(source), header.index(target)
    pairs = []
    for line_number, line in lines:
        fields = line.split("\t")
        if len(fields) != len(header):
            raise DataFormatError(
                f"expected {len(header)} tab-separated fields, found {len(fields)}: {line!r:.80}",
                path=path,
                line=line_number,
            )
        pairs.append(ParallelPair(fields[source_index], fields[target_index]))
    return pairs
