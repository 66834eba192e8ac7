"""The order in which the suite's test files run: the longest first.

`make test` runs pytest-xdist with ``--dist loadfile``, which hands whole files to the
workers in collection order, and collection order is alphabetical. The top-level
``test_distribute.py``, ``test_cli.py`` and ``test_distribute_multi_worker.py`` (about four
worker-minutes together) came last, so for the last minutes of a run one worker ran them
while the other had nothing left (measured on a 2-core machine: 96 % to 100 % took over two
of the run's sixteen minutes). With the longest files first, the short ones fill the end.

The seconds per file come from ``tests/file_durations.json``, written by a run of the whole
suite with ``NLPKIT_RECORD_TEST_DURATIONS=tests/file_durations.json`` (`DurationRecorder`,
fed by ``conftest.py``). A file missing there (a new one) runs after the recorded ones, in
collection order; a stale record only makes the order less good, never a test wrong.
"""

import collections
import json

# Between the file and the test in a pytest node id: "tests/layers/test_crf.py::test_x[1]".
_SEPARATOR = "::"


def file_of(nodeid):
    """The test file (relative to the rootdir) of a pytest node id."""
    return nodeid.split(_SEPARATOR, 1)[0]


def longest_files_first(items, seconds_by_file):
    """``items`` sorted so that the files with the most recorded seconds come first.

    The sort is stable and its key is the file's, so each file's items stay together and in
    their order, and files with equal (or no) records keep their collection order.

    Args:
        items: list of objects with a ``nodeid`` (pytest items); sorted in place.
        seconds_by_file: dict, test file -> seconds.

    Example:
        >>> longest_files_first(items, {"tests/test_cli.py": 84.6, "tests/test_crf.py": 18.3})
    """
    items.sort(key=lambda item: -seconds_by_file.get(file_of(item.nodeid), 0.0))
    return items


def read_record(path):
    """The ``{file: seconds}`` record at ``path``; empty if there is none."""
    if not path.exists():
        return {}
    return json.loads(path.read_text())


class DurationRecorder:
    """Sums the seconds of every test phase (setup, call, teardown) per test file.

    Example:
        >>> recorder = DurationRecorder()
        >>> recorder.add("tests/test_cli.py::test_help", 0.2)
        >>> recorder.add("tests/test_cli.py::test_version", 0.5)
        >>> recorder.seconds_by_file()
        {'tests/test_cli.py': 0.7}
    """

    def __init__(self):
        self._seconds = collections.Counter()

    def add(self, nodeid, seconds):
        self._seconds[file_of(nodeid)] += seconds

    def seconds_by_file(self):
        """``{file: seconds}``, sorted by file, rounded to 0.1 s."""
        return {name: round(seconds, 1) for name, seconds in sorted(self._seconds.items())}

    def write(self, path):
        path.write_text(json.dumps(self.seconds_by_file(), indent=1) + "\n")
