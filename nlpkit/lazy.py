"""Lazy attributes for packages whose heavy parts (TensorFlow) must not load on import."""

import importlib


def lazy_attributes(package_globals, mapping):
    """Returns a module ``__getattr__`` (PEP 562) that imports ``mapping[name]`` on first use.

    Args:
        package_globals: the package's ``globals()``; resolved values are cached there.
        mapping: dict attribute name -> module that defines it.

    Example:
        >>> __getattr__ = lazy_attributes(globals(), {"WordTokenizer": "nlpkit.text.tokenizers"})
    """
    package = package_globals["__name__"]

    def __getattr__(name):
        if name in mapping:
            value = getattr(importlib.import_module(mapping[name]), name)
            package_globals[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
