"""The bundle manifest (`nlpkit.json`) and file names. Pure Python: read on devices too."""

import json
import os
from pathlib import Path

from nlpkit.errors import BundleError

BUNDLE_FORMAT_VERSION = 1
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
        task: if given, the task the caller expects (e.g. "text_classification").

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
    if task in ("text_classification", "sequence_tagging") and not manifest.get("labels"):
        raise BundleError(f"{path}: a {task} bundle needs 'labels', found {manifest.get('labels')!r:.80}.")


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
