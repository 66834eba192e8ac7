"""Tests for tests/file_order.py: the longest test files run first, each file's tests together."""

import json
from types import SimpleNamespace

from tests.file_order import DurationRecorder, file_of, longest_files_first, read_record


def _items(*nodeids):
    return [SimpleNamespace(nodeid=nodeid) for nodeid in nodeids]


def test_longest_recorded_files_come_first_and_each_file_stays_in_order():
    items = _items(
        "tests/a.py::one", "tests/a.py::two",
        "tests/b.py::one",
        "tests/c.py::one[x]", "tests/c.py::one[y]",
        "tests/new.py::one",
        "tests/d.py::one",
    )
    record = {"tests/a.py": 1.0, "tests/b.py": 30.0, "tests/c.py": 5.0, "tests/d.py": 5.0}

    ordered = [item.nodeid for item in longest_files_first(items, record)]

    assert ordered == [
        "tests/b.py::one",
        # c and d tie: they keep their collection order, as does each file's own order.
        "tests/c.py::one[x]", "tests/c.py::one[y]",
        "tests/d.py::one",
        "tests/a.py::one", "tests/a.py::two",
        # Not recorded (a new file): after every recorded one.
        "tests/new.py::one",
    ]


def test_without_a_record_the_collection_order_stays():
    items = _items("tests/b.py::one", "tests/a.py::one", "tests/b.py::two")
    assert [item.nodeid for item in longest_files_first(items, {})] == [
        "tests/b.py::one", "tests/a.py::one", "tests/b.py::two"
    ]


def test_file_of_keeps_the_path_and_drops_the_test_and_its_parameters():
    assert file_of("tests/layers/test_crf.py::test_viterbi[2-bio]") == "tests/layers/test_crf.py"
    assert file_of("tests/test_cli.py::TestPredict::test_entities") == "tests/test_cli.py"


def test_recorder_sums_every_phase_per_file_and_round_trips(tmp_path):
    recorder = DurationRecorder()
    for nodeid, seconds in [
        ("tests/b.py::one", 1.25),
        ("tests/b.py::one", 0.5),
        ("tests/a.py::one[1]", 2.0),
        ("tests/b.py::two", 0.3),
    ]:
        recorder.add(nodeid, seconds)
    path = tmp_path / "durations.json"

    recorder.write(path)

    assert json.loads(path.read_text()) == {"tests/a.py": 2.0, "tests/b.py": 2.0}
    assert list(read_record(path)) == ["tests/a.py", "tests/b.py"]
    assert read_record(tmp_path / "missing.json") == {}


def test_the_committed_record_is_seconds_per_test_file():
    from pathlib import Path

    # Stale entries (a renamed file) only make the order less good, so they are not an error.
    record = read_record(Path(__file__).resolve().parent / "file_durations.json")
    assert record, "tests/file_durations.json is missing or empty"
    assert all(name.startswith("tests/") and name.endswith(".py") for name in record)
    assert all(isinstance(seconds, (int, float)) and seconds >= 0 for seconds in record.values())
