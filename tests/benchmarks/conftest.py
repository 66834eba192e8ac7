"""Fixtures of the benchmark smoke tests: the scripts of ``benchmarks/``, loaded as modules."""

import importlib.util
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="session")
def load_benchmark():
    """``load(name)``: the module of ``benchmarks/<name>.py``, loaded once per session.

    benchmarks/ is a folder of scripts, not a package, so each is loaded by its path.

    Example:
        >>> rnn_speed = load_benchmark("rnn_speed")
        >>> rnn_speed.main(["--quick"])
    """
    loaded = {}

    def load(name):
        if name not in loaded:
            spec = importlib.util.spec_from_file_location(f"{name}_under_test", BENCHMARKS / f"{name}.py")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            loaded[name] = module
        return loaded[name]

    return load
