"""The bundle manifest (`nlpkit.json`) and file names. Pure Python: read on devices too."""

import dataclasses
import json
import os
from pathlib import Path

from nlpkit.errors import BundleError

# 2: tasks carry their one name (`TASKS`); version-1 bundles load, their names mapped.
BUNDLE_FORMAT_VERSION = 2
# The tasks, under the one name each has everywhere: manifest ``task``, `nlpkit.tasks`,
# the data set registry, module names.
TASKS = ("classification", "tagging", "language_model", "translation")
# What format-version-1 bundles called them.
_VERSION_1_TASK_NAMES = {
    "text_classification": "classification",
    "sequence_tagging": "tagging",
    "language_modeling": "language_model",
}
MANIFEST_FILE = "nlpkit.json"
KERAS_FILE = "model.keras"
SAVED_MODEL_DIR = "saved_model"
TFLITE_FILE = "model.tflite"
TFLITE_INT8_FILE = "model.int8.tflite"
ASSETS_DIR = "assets"


def read_manifest(bundle_dir, task=None):
    """Loads and checks ``nlpkit.json`` of a bundle directory.

    Args:
        bundle_dir: path of the bundle.
        task: if given, the task the caller expects (e.g. "classification").

    Raises:
        BundleError: the directory, the manifest or a listed file is missing, the format
            version is newer than this nlpkit, or the task does not match.

    Example:
        >>> read_manifest("saved_models/sentiment")["labels"]
        ['negative', 'positive']
    """
    bundle_dir = Path(bundle_dir)
    if not bundle_dir.is_dir():
        restore_interrupted_swap(bundle_dir)
    if not bundle_dir.is_dir():
        raise BundleError(f"{bundle_dir}: not a directory; expected an nlpkit bundle.")
    path = bundle_dir / MANIFEST_FILE
    if not path.is_file():
        raise BundleError(f"{bundle_dir}: no {MANIFEST_FILE}; is this an nlpkit bundle?")
    path = resolve_inside(bundle_dir, MANIFEST_FILE, MANIFEST_FILE)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as error:  # RecursionError: nesting too deep
        raise BundleError(f"{path}: not valid JSON ({error}).") from None
    if not isinstance(manifest, dict):
        raise BundleError(f"{path}: expected a JSON object, found {type(manifest).__name__}.")
    if not isinstance(manifest.get("files", {}), dict):
        raise BundleError(f"{path}: 'files' must be an object of name -> path, found {manifest['files']!r:.80}.")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > BUNDLE_FORMAT_VERSION:
        raise BundleError(
            f"{path}: format_version {version!r} is not supported by this nlpkit "
            f"(supports up to {BUNDLE_FORMAT_VERSION})."
        )
    if version == 1 and manifest.get("task") in _VERSION_1_TASK_NAMES:
        manifest["task"] = _VERSION_1_TASK_NAMES[manifest["task"]]
    if task is not None and manifest.get("task") != task:
        raise BundleError(f"{bundle_dir}: bundle task is {manifest.get('task')!r}, expected {task!r}.")
    _check_fields(path, manifest, task)
    return manifest


def _check_fields(path, manifest, task):
    """Raises `BundleError` naming the entry when a field the predictors read has the wrong type.

    They index, hash and iterate these fields, so a wrong type would otherwise end in a
    TypeError or IndexError that names neither the file nor the field.
    """
    if not isinstance(manifest.get("task", ""), (str, type(None))):
        raise BundleError(f"{path}: 'task' must be a string, found {manifest['task']!r:.80}.")
    if not isinstance(manifest.get("config", {}), (dict, type(None))):
        raise BundleError(f"{path}: 'config' must be an object, found {manifest['config']!r:.80}.")
    for key in ("labels", "raw_labels"):
        labels = manifest.get(key)
        if labels is not None and not (isinstance(labels, list) and all(isinstance(label, str) for label in labels)):
            raise BundleError(f"{path}: {key!r} must be a list of strings, found {labels!r:.80}.")
    if task in ("classification", "tagging") and not manifest.get("labels"):
        raise BundleError(f"{path}: a {task} bundle needs 'labels', found {manifest.get('labels')!r:.80}.")


# The runtimes a bundle has files for (`nlpkit.export.write_bundle`, tflite_files[...].target).
TARGETS = ("litert", "web", "mediapipe")


def check_targets(targets):
    """``targets`` as a tuple of `TARGETS` ("litert" first, always), or ValueError naming the unknown one.

    Example:
        >>> check_targets("web,mediapipe")
        ('litert', 'web', 'mediapipe')
    """
    if isinstance(targets, str):
        targets = [target.strip() for target in targets.split(",") if target.strip()]
    unknown = [target for target in targets if target not in TARGETS]
    if unknown:
        raise ValueError(f"unknown export target(s) {unknown}; choose from {list(TARGETS)}")
    return ("litert",) + tuple(target for target in TARGETS[1:] if target in targets)


# Task sections: the fields of ``nlpkit.json`` that one task's predictors, parity checks and
# re-exports read, typed, checked once, with the file and field named when they are wrong.
# Pure Python, so `nlpkit.lite` reads them too, and the web runtime reads the same names.


@dataclasses.dataclass(frozen=True)
class DecodingSettings:
    """How a translation bundle translates: search width, length normalisation and length limits.

    Attributes:
        beam_width: int, default 4. Of the SavedModel's ``serving_default`` (and the lite
            translator's default beam search).
        length_penalty: float, default 1.0.
        max_length_ratio, max_length_offset: a translation of a source of ``n`` ids
            (end id included) has at most ``int(ratio * n + offset)`` ids.
        max_source_length: int or None. Longer sources are cut (to this many ids with the
            end id) before encoding.

    Example:
        >>> DecodingSettings(beam_width=5).max_length_ratio
        2.0
    """

    beam_width: int = 4
    length_penalty: float = 1.0
    max_length_ratio: float = 2.0
    max_length_offset: int = 10
    max_source_length: int = None


@dataclasses.dataclass(frozen=True)
class ClassificationSection:
    """A classifier's labels (``labels``) and the labels of its training data (``raw_labels``).

    Example:
        >>> ClassificationSection(["negative", "positive"]).to_manifest()
        {'labels': ['negative', 'positive']}
    """

    labels: tuple
    raw_labels: tuple = None

    key = None  # top-level fields of nlpkit.json

    @classmethod
    def from_manifest(cls, manifest, path):
        labels = _strings(manifest, "labels", path, required=True)
        return cls(labels, _strings(manifest, "raw_labels", path))

    def to_manifest(self):
        fields = {"labels": list(self.labels)}
        if self.raw_labels is not None:
            fields["raw_labels"] = list(self.raw_labels)
        return fields


@dataclasses.dataclass(frozen=True)
class TaggingSection:
    """A tagger's tags (``labels``), the scheme they are in and the scheme it outputs.

    Example:
        >>> TaggingSection(("O", "B-PER"), "BIO", "BIO").to_manifest()["output_scheme"]
        'BIO'
    """

    tags: tuple
    tag_scheme: str = "BIO"
    output_scheme: str = None

    key = None

    @classmethod
    def from_manifest(cls, manifest, path):
        tags = _strings(manifest, "labels", path, required=True)
        scheme = _typed(manifest, "tag_scheme", str, path, "BIO")
        return cls(tags, scheme, _typed(manifest, "output_scheme", str, path, scheme))

    def to_manifest(self):
        return {"labels": list(self.tags), "tag_scheme": self.tag_scheme,
                "output_scheme": self.output_scheme or self.tag_scheme}


@dataclasses.dataclass(frozen=True)
class LanguageModelSection:
    """``generation``: how a language model's streaming ``step`` signature is driven.

    Attributes:
        level: "word", "char" or "subword": how generated pieces are joined.
        start_id: the id read before a prompt.
        state_names: the step's state inputs (and outputs), sorted.
        step_input, step_output: the token id input and the logits output.
    """

    level: str
    start_id: int
    state_names: tuple
    step_input: str = "token_id"
    step_output: str = "logits"

    key = "generation"

    @classmethod
    def from_manifest(cls, manifest, path):
        section = _section(manifest, cls.key, path)
        return cls(
            _typed(section, "level", str, path, prefix=cls.key),
            _typed(section, "start_id", int, path, prefix=cls.key),
            _strings(section, "state_names", path, required=True, prefix=cls.key),
            _typed(section, "step_input", str, path, "token_id", prefix=cls.key),
            _typed(section, "step_output", str, path, "logits", prefix=cls.key),
        )

    def to_manifest(self):
        fields = dataclasses.asdict(self)
        fields["state_names"] = list(self.state_names)
        return {self.key: fields}


@dataclasses.dataclass(frozen=True)
class TranslationSection:
    """``translation``: start and end ids, the decoder's state names and the `DecodingSettings`."""

    bos_id: int
    eos_id: int
    state_names: tuple
    recurrent_states: int
    decoding: DecodingSettings = DecodingSettings()

    key = "translation"

    @classmethod
    def from_manifest(cls, manifest, path):
        section = _section(manifest, cls.key, path)
        decoding = _typed(section, "decoding", dict, path, {}, prefix=cls.key)
        known = {field.name for field in dataclasses.fields(DecodingSettings)}
        unknown = sorted(set(decoding) - known)
        if unknown:
            raise BundleError(f"{path}: translation.decoding has unknown fields {unknown}; known: {sorted(known)}.")
        for name, value in decoding.items():
            if value is not None and not isinstance(value, (int, float)) or isinstance(value, bool):
                raise BundleError(f"{path}: translation.decoding.{name} must be a number, found {value!r:.80}.")
        return cls(
            _typed(section, "bos_id", int, path, prefix=cls.key),
            _typed(section, "eos_id", int, path, prefix=cls.key),
            _strings(section, "state_names", path, required=True, prefix=cls.key),
            _typed(section, "recurrent_states", int, path, prefix=cls.key),
            DecodingSettings(**decoding),
        )

    def to_manifest(self):
        fields = dataclasses.asdict(self)
        fields["state_names"] = list(self.state_names)
        return {self.key: fields}


SECTIONS = {
    "classification": ClassificationSection,
    "tagging": TaggingSection,
    "language_model": LanguageModelSection,
    "translation": TranslationSection,
}


def task_section(bundle_dir, manifest):
    """The typed section of ``manifest`` for its task (see `SECTIONS`), checked field by field.

    Example:
        >>> task_section("saved_models/sentiment", read_manifest("saved_models/sentiment")).labels
        ('negative', 'positive')
    """
    path = Path(bundle_dir) / MANIFEST_FILE
    task = manifest.get("task")
    if task not in SECTIONS:
        raise BundleError(f"{path}: task {task!r} is not one of {list(SECTIONS)}.")
    return SECTIONS[task].from_manifest(manifest, path)


_MISSING = object()


def _section(manifest, key, path):
    section = manifest.get(key)
    if not isinstance(section, dict):
        raise BundleError(f"{path}: {key!r} must be an object, found {section!r:.80}.")
    return section


def _typed(fields, name, kind, path, default=_MISSING, prefix=None):
    label = f"{prefix}.{name}" if prefix else name
    if name not in fields or fields[name] is None:
        if default is _MISSING:
            raise BundleError(f"{path}: {label!r} is missing.")
        return default
    value = fields[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BundleError(f"{path}: {label!r} must be {kind.__name__}, found {value!r:.80}.")
    return value


def _strings(fields, name, path, required=False, prefix=None):
    label = f"{prefix}.{name}" if prefix else name
    value = fields.get(name)
    if value is None and not required:
        return None
    if not (isinstance(value, list) and value and all(isinstance(item, str) for item in value)):
        raise BundleError(f"{path}: {label!r} must be a non-empty list of strings, found {value!r:.80}.")
    return tuple(value)


def bundle_file(bundle_dir, manifest, key):
    """Path of the file registered under ``key`` in the manifest, checked to exist inside the bundle.

    Raises:
        BundleError: the manifest lists no such file, the file is missing, or its name
            resolves outside the bundle (``../``, an absolute path, a symlink leading out).

    Example:
        >>> bundle_file("saved_models/sentiment", manifest, "tflite")
        PosixPath('saved_models/sentiment/model.tflite')
    """
    name = manifest.get("files", {}).get(key)
    if name is None:
        raise BundleError(f"{bundle_dir}: the bundle has no {key!r} file.")
    path = resolve_inside(bundle_dir, name, f"{MANIFEST_FILE} files.{key}")
    if not path.exists():
        raise BundleError(f"{bundle_dir}: {name} is listed in {MANIFEST_FILE} but missing.")
    return path


def bundle_assets(bundle_dir, manifest):
    """The bundle's ``assets/`` directory (vocabularies, tokenizer spec), checked to lie inside it.

    Example:
        >>> load_tokenizer(bundle_assets("saved_models/sentiment", manifest))
    """
    if "assets" in manifest.get("files", {}):
        return bundle_file(bundle_dir, manifest, "assets")
    return resolve_inside(bundle_dir, ASSETS_DIR, ASSETS_DIR)


def resolve_inside(root, name, entry):
    """``root / name``, refused unless it stays inside ``root`` once symlinks are followed.

    A bundle is data a user may have downloaded: a manifest entry ``"../../.ssh/id_rsa"``,
    an absolute path or a symlink pointing out of the bundle would otherwise make loading
    read (and log parts of) any file the user can read. Every name read from ``nlpkit.json``
    or ``tokenizer.json`` goes through here.

    Args:
        root: the directory the file must lie in (the bundle, or its ``assets/``).
        name: the relative name read from the manifest or spec.
        entry: where ``name`` was read, for the message (e.g. ``"nlpkit.json files.tflite"``).

    Returns:
        ``pathlib.Path`` of the file under ``root`` (not required to exist).

    Raises:
        BundleError: ``name`` is not a non-empty relative name, or it resolves outside ``root``.

    Example:
        >>> resolve_inside("saved_models/sentiment", "../other/model.tflite", "files.tflite")
        Traceback (most recent call last):
        ...
        nlpkit.errors.BundleError: saved_models/sentiment: files.tflite = '../other/model.tflite' ...
    """
    if not isinstance(name, str) or not name or "\x00" in name:
        raise BundleError(f"{root}: {entry} must be a relative file name inside the bundle, found {name!r:.80}.")
    if Path(name).is_absolute():
        raise BundleError(f"{root}: {entry} = {name!r} is an absolute path; a bundle names only files inside it.")
    path = Path(root) / name
    real_root = Path(os.path.realpath(root))
    real = Path(os.path.realpath(path))
    if real != real_root and real_root not in real.parents:
        raise BundleError(
            f"{root}: {entry} = {name!r} resolves to {real}, outside the bundle ({real_root}); "
            "a bundle may only name files inside it."
        )
    return path


def restore_interrupted_swap(bundle_dir):
    """Puts back the previous bundle when a swap was interrupted between its two renames.

    `nlpkit.export.write_bundle` moves the old bundle aside to ``.NAME.previous-PID`` before
    it renames the new one in, where the platform cannot exchange the two in one step. A
    kill between those renames leaves no directory at ``bundle_dir``; this renames the newest
    ``.previous-*`` sibling back (the old, complete bundle). Returns True when it restored one.

    Example:
        >>> restore_interrupted_swap("saved_models/sentiment")
        False
    """
    bundle_dir = Path(bundle_dir)
    if bundle_dir.exists() or not bundle_dir.parent.is_dir():
        return False
    candidates = sorted(
        (path for path in bundle_dir.parent.glob(f".{bundle_dir.name}.previous-*")
         if (path / MANIFEST_FILE).is_file() and not owner_running(path)),
        key=lambda path: path.stat().st_mtime,
    )
    if not candidates:
        return False
    try:
        os.replace(candidates[-1], bundle_dir)
    except OSError:
        return False  # another process restored it first, or the folder is read-only
    return True


def owner_running(path):
    """Whether the process named by a ``.NAME.previous-PID`` / ``.staging-PID`` folder still runs.

    A running export is between its two renames: the gap is its to close, not a crash to repair.
    """
    pid = path.name.rsplit("-", 1)[-1]
    if not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True
