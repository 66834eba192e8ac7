"""Small data files shipped inside nlpkit, so demos and recipe defaults run offline.

Pure Python: safe to import from ``nlpkit.lite``.
"""

import importlib.resources
import pathlib

__all__ = ["sample_path", "available_samples"]

# Only data files count as samples; the package's own code and docs do not.
_SAMPLE_SUFFIXES = (".tsv", ".txt")


def available_samples():
    """Return the sorted names of the sample files shipped with nlpkit.

    Example:
        >>> "sentiment_train.tsv" in available_samples()
        True
    """
    root = importlib.resources.files("nlpkit.samples")
    return sorted(
        entry.name
        for entry in root.iterdir()
        if entry.is_file() and entry.name.endswith(_SAMPLE_SUFFIXES)
    )


def sample_path(name: str) -> pathlib.Path:
    """Return the path of the sample file ``name`` inside the installed package.

    Args:
        name: str. File name of the sample, e.g. ``"sentiment_train.tsv"``.

    Returns:
        A ``pathlib.Path`` to the file.

    Raises:
        FileNotFoundError: ``name`` is not a shipped sample; the message lists
            the available ones.

    Example:
        >>> sample_path("sentiment_train.tsv").name
        'sentiment_train.tsv'
    """
    available = available_samples()
    if name not in available:
        raise FileNotFoundError(
            f"No nlpkit sample file named {name!r}; available: {', '.join(available)}"
        )
    # A plain install or an editable checkout keeps the files on disk, so the
    # Traversable is a real path. A zipped install would need as_file(), whose
    # temporary copy vanishes when its context exits, so refuse loudly instead.
    resource = importlib.resources.files("nlpkit.samples").joinpath(name)
    path = pathlib.Path(str(resource))
    if not path.is_file():
        raise FileNotFoundError(
            f"Sample {name!r} is not a file on disk ({resource!s}); "
            "nlpkit must be installed unzipped to use its samples"
        )
    return path
