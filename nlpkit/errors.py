"""Exceptions shared across nlpkit. Pure Python: safe to import from ``nlpkit.lite``."""


class NlpkitError(Exception):
    """Base class for errors raised by nlpkit on bad input or bad files."""


class DataFormatError(NlpkitError, ValueError):
    """A data file is malformed. The message names the file and the 1-based line.

    Example:
        >>> raise DataFormatError("missing label column", path="train.tsv", line=12)
        Traceback (most recent call last):
        ...
        nlpkit.errors.DataFormatError: train.tsv:12: missing label column
    """

    def __init__(self, message, path=None, line=None):
        self.path = None if path is None else str(path)
        self.line = line
        self.reason = message
        where = self.path or "<input>"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {message}")


class DatasetNotFoundError(NlpkitError, FileNotFoundError):
    """A registered dataset cannot be found locally and cannot be downloaded."""


class ChecksumError(NlpkitError, ValueError):
    """A downloaded file does not match its registered sha256."""


class BundleError(NlpkitError, ValueError):
    """A saved bundle directory is incomplete or inconsistent."""


class NotStreamableError(NlpkitError, ValueError):
    """A model or layer cannot run one time step at a time (e.g. a bidirectional layer)."""
