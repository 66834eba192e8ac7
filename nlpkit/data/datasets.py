"""A registry of the public data sets nlpkit recipes train on, with local-first file resolution.

A data set file is looked up, in this order, in

1. the ``data_dir`` argument,
2. the directory named by the environment variable ``NLPKIT_DATA``,
3. the download cache (``NLPKIT_CACHE``, default ``~/.cache/nlpkit/datasets``),

and, if it is in none of them and the split has a URL, downloaded into the cache: to a temporary
file in the cache directory, gunzipped on the fly when the URL serves gzip, checked against the
registered sha256 of the stored (decompressed) file, then moved into place with ``os.replace`` so
that an interrupted or corrupt download never leaves a file behind. Every directory uses the
layout of the shared data folder: ``<dir>/sst2/train.tsv``, ``<dir>/conll2003/valid.txt``, ...

Pure Python: standard library only, no TensorFlow.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import re
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from nlpkit.data.readers import (
    read_classification,
    read_conll,
    read_lines,
    read_parallel,
    read_text,
)
from nlpkit.errors import ChecksumError, DatasetNotFoundError

__all__ = [
    "DatasetSpec",
    "SplitSpec",
    "TASKS",
    "available",
    "canonical_split",
    "dataset_path",
    "get_spec",
    "load",
    "register",
    "unregister",
]

TASKS = ("classification", "tagging", "language_model", "translation")
CANONICAL_SPLITS = ("train", "valid", "test")
SPLIT_ALIASES = {"dev": "valid", "validation": "valid", "val": "valid"}
DATA_ENV = "NLPKIT_DATA"
CACHE_ENV = "NLPKIT_CACHE"
DEFAULT_CACHE = Path("~/.cache/nlpkit/datasets")
COMPRESSIONS = (None, "gzip")

_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_DOWNLOAD_TIMEOUT_S = 60
_CHUNK = 1 << 20


@dataclasses.dataclass(frozen=True)
class SplitSpec:
    """Where one file of a data set split lives locally and, optionally, online.

    Args:
        relative_path (str): POSIX path inside a data directory, e.g. ``"sst2/train.tsv"``.
        url (str | None): where to download the file from (``https://``, ``http://`` or
            ``file://``); ``None`` marks a local-only file. Default ``None``.
        sha256 (str | None): lowercase hex sha256 of the file as stored, i.e. after
            decompression; ``None`` skips verification. Default ``None``.
        compression (str | None): ``"gzip"`` when the URL serves gzip and the stored file is
            the decompressed content, ``None`` when the bytes are stored as served.
            Default ``None``.
        portion (tuple[float, float] | None): a ``(start, stop)`` pair of fractions selecting
            part of what the reader returns (characters of a string, items of a list):
            ``text[int(start * n):int(stop * n)]``. Used to carve train/valid out of one file,
            e.g. ``(0.0, 0.9)`` and ``(0.9, 1.0)``. Default ``None`` (everything).

    Example:
        >>> SplitSpec("tinyshakespeare/input.txt", portion=(0.9, 1.0)).portion
        (0.9, 1.0)
    """

    relative_path: str
    url: str | None = None
    sha256: str | None = None
    compression: str | None = None
    portion: tuple[float, float] | None = None

    def __post_init__(self):
        parts = PurePosixPath(self.relative_path).parts
        path = PurePosixPath(self.relative_path)
        if not self.relative_path or path.is_absolute() or ".." in parts:
            raise ValueError(
                f"relative_path must be a relative path inside the data directory without '..', "
                f"got {self.relative_path!r}"
            )
        if self.sha256 is not None and not _SHA256_RE.fullmatch(self.sha256):
            raise ValueError(f"sha256 must be 64 lowercase hex digits, got {self.sha256!r}")
        if self.compression not in COMPRESSIONS:
            raise ValueError(
                f"compression must be one of {COMPRESSIONS}, got {self.compression!r}"
            )
        if self.portion is not None:
            start, stop = self.portion
            if not 0.0 <= start <= stop <= 1.0:
                raise ValueError(
                    f"portion must satisfy 0 <= start <= stop <= 1, got {self.portion!r}"
                )

    def select(self, data):
        """Applies :attr:`portion` to a loaded string or list (returns it unchanged if unset)."""
        if self.portion is None:
            return data
        start, stop = self.portion
        return data[int(start * len(data)) : int(stop * len(data))]


SplitFiles = SplitSpec | Mapping[str, SplitSpec]


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """A registered data set: its files per split and how to read them.

    A split is usually one file (a :class:`SplitSpec`). When it needs several files, such as one
    per language for translation, it is a mapping from a part name (``"en"``, ``"de"``) to a
    :class:`SplitSpec`, and the reader receives a ``dict`` of part name to path instead of one
    path.

    Args:
        name (str): registry key, e.g. ``"sst2"``.
        task (str): one of ``"classification"``, ``"tagging"``, ``"language_model"``,
            ``"translation"``.
        splits (Mapping[str, SplitSpec | Mapping[str, SplitSpec]]): files per canonical split
            name (``"train"``, ``"valid"``, ``"test"``).
        reader (Callable): called as ``reader(path_or_paths, **kwargs)`` to load a split.
        reader_kwargs (Mapping[str, Any]): default keyword arguments for ``reader``; the ones
            passed to :func:`load` override them. Default empty.
        citation (str): one line naming the paper to cite and the terms of use. Default ``""``.

    Example:
        >>> spec = DatasetSpec(
        ...     name="toy",
        ...     task="classification",
        ...     splits={"train": SplitSpec("toy/train.tsv")},
        ...     reader=read_classification,
        ... )
        >>> sorted(spec.splits)
        ['train']
    """

    name: str
    task: str
    splits: Mapping[str, SplitFiles]
    reader: Callable[..., Any]
    reader_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    citation: str = ""

    def __post_init__(self):
        if not self.name or not isinstance(self.name, str):
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if not self.splits:
            raise ValueError(f"dataset {self.name!r} must have at least one split")
        for split, files in self.splits.items():
            if split not in CANONICAL_SPLITS:
                raise ValueError(
                    f"dataset {self.name!r}: split names must be canonical {CANONICAL_SPLITS}, "
                    f"got {split!r}"
                )
            parts = {None: files} if isinstance(files, SplitSpec) else dict(files)
            if not parts or not all(isinstance(f, SplitSpec) for f in parts.values()):
                raise ValueError(
                    f"dataset {self.name!r} split {split!r} must be a SplitSpec or a non-empty "
                    f"mapping of part name to SplitSpec, got {files!r}"
                )
        if not callable(self.reader):
            raise ValueError(f"reader must be callable, got {self.reader!r}")

    def split_files(self, split: str) -> dict[str | None, SplitSpec]:
        """Returns the files of ``split`` as ``{part: SplitSpec}`` (part ``None`` for one file)."""
        files = self.splits[canonical_split(split, self)]
        return {None: files} if isinstance(files, SplitSpec) else dict(files)


_REGISTRY: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec, replace: bool = False) -> DatasetSpec:
    """Adds ``spec`` to the registry under ``spec.name``.

    Args:
        spec: the data set to register.
        replace: allow replacing an already registered data set of the same name.

    Returns:
        ``spec``, so the call can be used as an expression.

    Raises:
        ValueError: the name is taken and ``replace`` is false.
    """
    if not isinstance(spec, DatasetSpec):
        raise TypeError(f"register() expects a DatasetSpec, got {type(spec).__name__}: {spec!r}")
    if spec.name in _REGISTRY and not replace:
        raise ValueError(
            f"dataset {spec.name!r} is already registered; pass replace=True to replace it"
        )
    _REGISTRY[spec.name] = spec
    return spec


def unregister(name: str) -> DatasetSpec:
    """Removes a data set from the registry and returns its spec (e.g. to restore it later)."""
    spec = get_spec(name)
    del _REGISTRY[name]
    return spec


def available() -> list[str]:
    """Returns the names of all registered data sets, sorted."""
    return sorted(_REGISTRY)


def get_spec(name: str) -> DatasetSpec:
    """Returns the registered :class:`DatasetSpec` called ``name``.

    Raises:
        ValueError: no such data set; the message lists the registered names.
    """
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown dataset {name!r}; registered datasets: {', '.join(available())}"
        ) from None


def canonical_split(split: str, spec: DatasetSpec | None = None) -> str:
    """Maps a split name or alias to its canonical name (``"dev"`` -> ``"valid"``).

    Args:
        split: ``"train"``, ``"valid"``, ``"test"`` or an alias (``"dev"``, ``"validation"``,
            ``"val"``), case-insensitive.
        spec: when given, the split must also exist in this data set.

    Raises:
        ValueError: unknown split name, or a split the data set does not have; the message
            lists the valid names.
    """
    key = split.strip().lower() if isinstance(split, str) else split
    key = SPLIT_ALIASES.get(key, key)
    if key not in CANONICAL_SPLITS:
        aliases = ", ".join(f"{alias!r} -> {target!r}" for alias, target in SPLIT_ALIASES.items())
        raise ValueError(
            f"unknown split {split!r}; valid split names are {', '.join(CANONICAL_SPLITS)} "
            f"(aliases: {aliases})"
        )
    if spec is not None and key not in spec.splits:
        raise ValueError(
            f"dataset {spec.name!r} has no {key!r} split (asked for {split!r}); "
            f"its splits are: {', '.join(s for s in CANONICAL_SPLITS if s in spec.splits)}"
        )
    return key


def parse_dataset_splits(text: str, default_split: str = "train") -> list[tuple[str, str]]:
    """``(name, split)`` pairs from a list such as ``"conll2003,imdb:train+test"``.

    Entries are comma-separated; ``name:split+split`` picks splits (aliases allowed), a bare
    name means ``default_split``. Every name and split is checked against the registry, so a
    typo fails before any file is read. Pairs keep their order; a repeated pair is kept once.

    Raises:
        ValueError: an empty entry, an unknown data set, or a split the data set does not have.

    Example:
        >>> parse_dataset_splits("conll2003, imdb:train+test")
        [('conll2003', 'train'), ('imdb', 'train'), ('imdb', 'test')]
    """
    pairs = []
    for entry in text.split(","):
        name, _, splits = entry.strip().partition(":")
        name = name.strip()
        if not name:
            raise ValueError(f"empty data set name in {text!r}; write e.g. 'conll2003,imdb:train+test'")
        spec = get_spec(name)
        for split in (splits.split("+") if splits.strip() else [default_split]):
            pair = (name, canonical_split(split, spec))
            if pair not in pairs:
                pairs.append(pair)
    return pairs


def _cache_dir() -> Path:
    configured = os.environ.get(CACHE_ENV)
    return Path(configured).expanduser() if configured else DEFAULT_CACHE.expanduser()


def _download(file: SplitSpec, destination: Path) -> None:
    """Downloads ``file.url`` to ``destination`` through a verified temporary file."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{destination.name}.", suffix=".part", dir=destination.parent
    )
    try:
        digest = hashlib.sha256()
        with os.fdopen(handle, "wb") as out:
            try:
                with urllib.request.urlopen(file.url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
                    source = response
                    if file.compression == "gzip":
                        source = gzip.GzipFile(fileobj=response)
                    for chunk in iter(lambda: source.read(_CHUNK), b""):
                        digest.update(chunk)
                        out.write(chunk)
            except (urllib.error.URLError, OSError, EOFError) as exc:
                raise DatasetNotFoundError(
                    f"could not download {file.url} to {destination}: {exc}. "
                    f"On a machine without network access set {DATA_ENV} to a directory laid out "
                    f"like the shared data (<dir>/{file.relative_path})."
                ) from exc
        actual = digest.hexdigest()
        if file.sha256 is not None and actual != file.sha256:
            raise ChecksumError(
                f"checksum mismatch for {file.url}: expected sha256 {file.sha256}, got {actual}"
                + (" (of the decompressed content)" if file.compression else "")
            )
        os.replace(temporary, destination)
    except BaseException:
        # Also on KeyboardInterrupt: a half-written .part file must never outlive the attempt.
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise


def _missing_message(spec: DatasetSpec, split: str, file: SplitSpec, looked: list[str], why: str):
    return (
        f"dataset {spec.name!r} split {split!r}: file {file.relative_path!r} not found "
        f"(looked in: {'; '.join(looked)}). {why} To fix it, set the environment variable "
        f"{DATA_ENV} (or pass data_dir=) to a directory laid out like the shared data, e.g. "
        f"<dir>/sst2/train.tsv, <dir>/conll2003/train.txt, so that "
        f"<dir>/{file.relative_path} exists."
    )


def dataset_path(
    name: str,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    part: str | None = None,
) -> Path:
    """Returns the local path of one file of a data set split, downloading it if needed.

    The file is searched in ``data_dir``, then ``$NLPKIT_DATA``, then the download cache
    (``$NLPKIT_CACHE``, default ``~/.cache/nlpkit/datasets``); if absent everywhere, ``download``
    is true and the split has a URL, it is downloaded into the cache and verified.

    Args:
        name: registered data set name.
        split: ``"train"``, ``"valid"``, ``"test"`` or an alias such as ``"dev"``.
        data_dir: a directory laid out like the shared data folder; optional.
        download: allow downloading into the cache.
        part: which file of a multi-file split (e.g. ``"de"`` for multi30k); must be ``None``
            for single-file splits.

    Returns:
        The path of the file (for a split with a ``portion``, the whole underlying file).

    Raises:
        ValueError: unknown data set, split or part.
        DatasetNotFoundError: the file is not available locally and cannot be downloaded; the
            message says what is missing and how to provide it.
        ChecksumError: the downloaded file does not match the registered sha256.

    Example:
        >>> dataset_path("sst2", "dev", data_dir="/work/shared/data")  # doctest: +SKIP
        PosixPath('/work/shared/data/sst2/dev.tsv')
    """
    spec = get_spec(name)
    split = canonical_split(split, spec)
    files = spec.split_files(split)
    if part not in files:
        if part is None:
            raise ValueError(
                f"dataset {name!r} split {split!r} has several files; pass part= one of "
                f"{', '.join(sorted(files))}"
            )
        if None in files:
            raise ValueError(f"dataset {name!r} split {split!r} is one file; got part={part!r}")
        raise ValueError(
            f"dataset {name!r} split {split!r} has no part {part!r}; parts: "
            f"{', '.join(sorted(files))}"
        )
    file = files[part]

    looked = []
    roots = []
    if data_dir is not None:
        roots.append(("data_dir", Path(data_dir).expanduser()))
    env_dir = os.environ.get(DATA_ENV)
    if env_dir:
        roots.append((DATA_ENV, Path(env_dir).expanduser()))
    cache = _cache_dir()
    roots.append(("cache", cache))
    for label, root in roots:
        candidate = root / file.relative_path
        if candidate.is_file():
            return candidate
        looked.append(f"{label}={root}" + ("" if root.is_dir() else " (directory does not exist)"))
    if env_dir is None and data_dir is None:
        looked.append(f"{DATA_ENV} is not set")

    if file.url is None:
        why = (
            f"This file is local-only: it is derived data with no public original of the same "
            f"bytes, so it cannot be downloaded and must come from {DATA_ENV}."
        )
        raise DatasetNotFoundError(_missing_message(spec, split, file, looked, why))
    if not download:
        why = f"Downloading is disabled (download=False); it would come from {file.url}."
        raise DatasetNotFoundError(_missing_message(spec, split, file, looked, why))
    destination = cache / file.relative_path
    _download(file, destination)
    return destination


def load(
    name: str,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    **reader_kwargs,
):
    """Loads one split of a registered data set with its registered reader.

    What comes back depends on the task: ``sst2``/``imdb`` give ``list[LabelledText]``,
    ``conll2003`` gives ``list[TaggedSentence]``, ``ptb`` gives ``list[str]`` (lines),
    ``tinyshakespeare`` gives ``str`` (train = first 90 % of the characters, valid = the rest)
    and ``multi30k`` gives ``list[ParallelPair]`` (``source_language="de"``,
    ``target_language="en"`` by default).

    Args:
        name: registered data set name (see :func:`available`).
        split: ``"train"``, ``"valid"``, ``"test"`` or an alias (``"dev"``, ``"validation"``,
            ``"val"``).
        data_dir: a directory laid out like the shared data folder; optional.
        download: allow downloading missing files into the cache.
        **reader_kwargs: override the registered reader arguments.

    Raises:
        ValueError: unknown data set or split.
        DatasetNotFoundError: a file is missing and cannot be downloaded.
        ChecksumError: a download does not match its registered sha256.
        DataFormatError: a file is malformed.

    Example:
        >>> rows = load("sst2", "dev")  # doctest: +SKIP
        >>> len(rows), rows[0].label  # doctest: +SKIP
        (872, '1')
    """
    spec = get_spec(name)
    split = canonical_split(split, spec)
    files = spec.split_files(split)
    kwargs = {**spec.reader_kwargs, **reader_kwargs}
    if None in files:
        data = spec.reader(dataset_path(name, split, data_dir, download), **kwargs)
        return files[None].select(data)
    paths = {part: dataset_path(name, split, data_dir, download, part=part) for part in files}
    return spec.reader(paths, **kwargs)


# --------------------------------------------------------------------------------------------
# Built-in data sets
# --------------------------------------------------------------------------------------------


def _github_raw(repository: str, commit: str, path: str) -> str:
    return f"https://raw.githubusercontent.com/{repository}/{commit}/{path}"


def _read_language_pair(
    paths: Mapping[str, Path], source_language: str = "de", target_language: str = "en"
):
    """Reads the ``source_language``/``target_language`` files of a per-language split."""
    for language in (source_language, target_language):
        if language not in paths:
            raise ValueError(
                f"language {language!r} is not available; languages: {', '.join(sorted(paths))}"
            )
    if source_language == target_language:
        raise ValueError(f"source and target language are both {source_language!r}")
    return read_parallel(paths[source_language], paths[target_language])


CONLL2003_TAGS = frozenset(
    ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-MISC", "I-MISC"]
)

# Source repositories pinned at the commits the shared data was taken from.
_CONLL = ("davidsbatista/NER-datasets", "dcb6c7439a7de43abc2448bad5b1d81a47f26c0d")
_SST2 = ("eyalbd2/Reproducing-AutoPrompt", "6288fb5bec9c572f2492875ae0111df5b6daed11")
_PTB = ("Lasagne/Recipes", "d616658de38e69f5036b236b6acbaf6e465ec9bd")
_SHAKESPEARE = ("karpathy/char-rnn", "6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e")
_MULTI30K = ("multi30k/dataset", "a3d2e0d26b56f3846f66a952536ffed4e401d05a")

# Digests copied from MANIFEST.sha256 of the shared data folder (sha256 of the stored files).
_SHA256 = {
    "conll2003/train.txt": "c99b26852dabf57ca9d30a0e892b84544cc8962003151e14a71077c55dc66db5",
    "conll2003/valid.txt": "f1f6469322876887de1d04acd43c59b02f59d5b02acf42c027132fa1bf349cb2",
    "conll2003/test.txt": "82e0c72d262f86ad3e78b15c5d980bbf87cb205aa4bf6d2d97643f463f8d7ff7",
    "sst2/train.tsv": "48eac26399f8456935f81dd9e3a745c1430adb6c62e233ccfe22db4a0d15d1d1",
    "sst2/dev.tsv": "54a9c12c77e402fc14d6a66a506f24d999f596b0176eb777c972cccc2f9cc4b0",
    "sst2/test.tsv": "4c395e34c8ae196d76abc3724c42336f2e17ad6dab6977be7a690f4c36b140ca",
    "imdb/train.tsv.gz": "bd5a469b7f900cf25915b34416c7d0cca6ba6b8e150c60e92b101fc0f93fef21",
    "imdb/test.tsv.gz": "e3a5cf44dab7fa6dfc0d12284f16f3f9b52d3c0bb9d3b5662317b71a3bd28b74",
    "ptb/ptb.train.txt": "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
    "ptb/ptb.valid.txt": "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
    "ptb/ptb.test.txt": "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
    "tinyshakespeare/input.txt": "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
    "multi30k/train.en": "460a15fbd157e34a7a9957ee388c1ca247fe47af3ef25fb50442af6c274e0fc6",
    "multi30k/train.de": "2c2b73fd2b548fbcde3a875e0a78d6ee94d498bfdee6bd3eae3945779e9ddf72",
    "multi30k/val.en": "1f2a23d992769b5b3d209b0a10dd0b77c08cceb1f20dfb97ed0aafa49d107227",
    "multi30k/val.de": "660e09eb7e1da2f856ea13ee5ad3cf6d36b3d5b0b733c857e94c5747a3dfc660",
    "multi30k/test_2016.en": "399a4382932c1aadd3ceb9bef1008d388a64c76d4ae4e9d4728c6f4301cac182",
    "multi30k/test_2016.de": "4be6b5b3236b79c25475c6bb829800a7ce559e9ba7a1f6c2394fe4d40be46d16",
}


def _file(relative_path, source=None, remote_path=None, compression=None, portion=None):
    """A built-in file: ``source`` is ``(repository, commit)``, ``None`` for local-only files."""
    url = None if source is None else _github_raw(*source, remote_path)
    return SplitSpec(relative_path, url, _SHA256[relative_path], compression, portion)


def _register_builtin():
    register(
        DatasetSpec(
            name="conll2003",
            task="tagging",
            splits={
                split: _file(f"conll2003/{split}.txt", _CONLL, f"CONLL2003/{split}.txt")
                for split in ("train", "valid", "test")
            },
            reader=read_conll,
            reader_kwargs={"token_column": 0, "tag_column": -1, "valid_tags": CONLL2003_TAGS},
            citation="Tjong Kim Sang & De Meulder 2003 (W03-0419); Reuters text, research only.",
        )
    )
    register(
        DatasetSpec(
            name="sst2",
            task="classification",
            splits={
                "train": _file("sst2/train.tsv", _SST2, "glue_data/SST-2/train_full.tsv"),
                "valid": _file("sst2/dev.tsv", _SST2, "glue_data/SST-2/dev.tsv"),
                # GLUE's test labels are hidden; this file was labelled from the SST trees, so
                # no public file has these bytes.
                "test": _file("sst2/test.tsv"),
            },
            reader=read_classification,
            reader_kwargs={"text_column": "sentence", "label_column": "label", "quoting": False},
            citation="Socher et al. 2013 (EMNLP), GLUE split: Wang et al. 2018; research use.",
        )
    )
    register(
        DatasetSpec(
            name="imdb",
            task="classification",
            # Derived TSVs built from the aclImdb review files: local-only.
            splits={split: _file(f"imdb/{split}.tsv.gz") for split in ("train", "test")},
            reader=read_classification,
            reader_kwargs={"text_column": "text", "label_column": "label", "quoting": False},
            citation="Maas et al. 2011 (ACL P11-1015); IMDb user reviews, research use.",
        )
    )
    register(
        DatasetSpec(
            name="ptb",
            task="language_model",
            splits={
                split: _file(
                    f"ptb/ptb.{split}.txt",
                    _PTB,
                    f"examples/penntree/ptb.{split}.txt.gz",
                    compression="gzip",
                )
                for split in ("train", "valid", "test")
            },
            reader=read_lines,
            citation="Marcus et al. 1993 (PTB, LDC99T42), Mikolov preprocessing; LDC licence.",
        )
    )
    shakespeare = ("tinyshakespeare/input.txt", _SHAKESPEARE, "data/tinyshakespeare/input.txt")
    register(
        DatasetSpec(
            name="tinyshakespeare",
            task="language_model",
            # No official split: the nanoGPT convention, first 90 % / last 10 % of characters.
            splits={
                "train": _file(*shakespeare, portion=(0.0, 0.9)),
                "valid": _file(*shakespeare, portion=(0.9, 1.0)),
            },
            reader=read_text,
            citation="Karpathy, char-rnn (2015); Shakespeare text is public domain.",
        )
    )
    multi30k_names = {"train": "train", "valid": "val", "test": "test_2016"}
    multi30k_remote = {"train": "train", "valid": "val", "test": "test_2016_flickr"}
    register(
        DatasetSpec(
            name="multi30k",
            task="translation",
            splits={
                split: {
                    language: _file(
                        f"multi30k/{multi30k_names[split]}.{language}",
                        _MULTI30K,
                        f"data/task1/raw/{multi30k_remote[split]}.{language}.gz",
                        compression="gzip",
                    )
                    for language in ("en", "de")
                }
                for split in ("train", "valid", "test")
            },
            reader=_read_language_pair,
            reader_kwargs={"source_language": "de", "target_language": "en"},
            citation="Elliott et al. 2016 (W16-3210); non-commercial research and education use.",
        )
    )


_register_builtin()
