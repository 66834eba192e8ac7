"""The bundle manifest (`nlpkit.json`) and file names. Pure Python: read on devices too."""

import json
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
    path = bundle_dir / MANIFEST_FILE
    if not bundle_dir.is_dir():
        raise BundleError(f"{bundle_dir}: not a directory; expected an nlpkit bundle.")
    if not path.is_file():
        raise BundleError(f"{bundle_dir}: no {MANIFEST_FILE}; is this an nlpkit bundle?")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise BundleError(f"{path}: not valid JSON ({error}).") from None
    if not isinstance(manifest, dict):
        raise BundleError(f"{path}: expected a JSON object, found {type(manifest).__name__}.")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > BUNDLE_FORMAT_VERSION:
        raise BundleError(
            f"{path}: format_version {version!r} is not supported by this nlpkit "
            f"(supports up to {BUNDLE_FORMAT_VERSION})."
        )
    if task is not None and manifest.get("task") != task:
        raise BundleError(f"{bundle_dir}: bundle task is {manifest.get('task')!r}, expected {task!r}.")
    return manifest


def bundle_file(bundle_dir, manifest, key):
    """Path of the file registered under ``key`` in the manifest, checked to exist."""
    name = manifest.get("files", {}).get(key)
    if name is None:
        raise BundleError(f"{bundle_dir}: the bundle has no {key!r} file.")
    path = Path(bundle_dir) / name
    if not path.exists():
        raise BundleError(f"{bundle_dir}: {name} is listed in {MANIFEST_FILE} but missing.")
    return path
