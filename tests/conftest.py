"""Shared fixtures: one tiny sentiment bundle and one tiny NER bundle, each trained once per session.

Training is the slow part of the export, lite, serving, CLI and recipe tests, so each recipe
runs once on its embedded sample with tiny settings and every test reads (or copies) the
resulting bundle. Tests that change a bundle must work on ``bundle_copy`` (or
``ner_bundle_copy``), never on the shared one.
"""

import dataclasses
import os
import shutil
from pathlib import Path

import pytest

from tests.file_order import DurationRecorder, longest_files_first, read_record

# TensorFlow reads this when it is first imported; it keeps C++ info logs out of test output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Small enough to train in a few seconds on 2 cores, large enough (lr 0.01, 3 epochs) that
# the model is confident on most sample sentences, so label comparisons between the exported
# forms are not decided by rounding noise around 0.5.
TINY_RECIPE_FLAGS = (
    "--epochs", "3",
    "--units", "16",
    "--embedding-dim", "16",
    "--batch-size", "16",
    "--learning-rate", "0.01",
    "--parity-texts", "60",
)


@dataclasses.dataclass(frozen=True)
class TrainedBundle:
    """The result of running the sentiment recipe once for the session.

    Args:
        path: Path of the bundle directory.
        exit_code: what ``recipes.sentiment_gru.main`` returned.
        argv: list of str, the flags the recipe ran with.

    Example:
        >>> def test_labels(trained_sentiment):
        ...     assert trained_sentiment.exit_code == 0
    """

    path: Path
    exit_code: int
    argv: list


@pytest.fixture(scope="session")
def trained_sentiment(tmp_path_factory):
    """Trains the sentiment recipe once (embedded sample data, tiny model)."""
    from recipes import sentiment_gru

    output = tmp_path_factory.mktemp("sentiment") / "bundle"
    argv = [*TINY_RECIPE_FLAGS, "--output-dir", str(output)]
    exit_code = sentiment_gru.main(argv)
    return TrainedBundle(path=output, exit_code=exit_code, argv=argv)


@pytest.fixture(scope="session")
def sentiment_bundle(trained_sentiment):
    """Path of the shared, read-only tiny sentiment bundle."""
    return trained_sentiment.path


@pytest.fixture
def bundle_copy(sentiment_bundle, tmp_path):
    """A private copy of the shared bundle, for tests that rewrite or break it."""
    copy = tmp_path / "bundle"
    shutil.copytree(sentiment_bundle, copy)
    return copy


@pytest.fixture(scope="session")
def sample_test_rows():
    """The labelled rows of the embedded sample test split."""
    from nlpkit.data import read_classification
    from nlpkit.samples import sample_path

    return read_classification(sample_path("sentiment_test.tsv"))


@pytest.fixture(scope="session")
def sample_test_texts(sample_test_rows):
    """The sentences of the embedded sample test split."""
    return [row.text for row in sample_test_rows]


def _snapshot_tree(directory):
    directory = Path(directory)
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="session")
def snapshot_tree():
    """A function: ``{relative path: bytes}`` of every file under a directory (detects changes)."""
    return _snapshot_tree


@pytest.fixture(scope="session")
def long_text():
    """A 10,000-word text, far beyond the tokenizer's ``max_length``."""
    words = ("a", "gripping", "film", "and", "a", "dull", "script", ",")
    return " ".join(words[i % len(words)] for i in range(10_000))


# The NER recipe's tiny settings: a few seconds of training on the embedded sample, enough
# for the model to tag most sample entities right, so export parity compares real tags.
TINY_NER_FLAGS = (
    "--epochs", "12",
    "--units", "16",
    "--word-embedding-dim", "16",
    "--char-embedding-dim", "8",
    "--char-filters", "16",
    "--casing-dim", "4",
    "--batch-size", "16",
    "--learning-rate", "0.01",
    "--patience", "12",
    "--parity-sentences", "60",
)


@pytest.fixture(scope="session")
def trained_ner(tmp_path_factory):
    """Trains the NER recipe once (embedded sample data, tiny model)."""
    from recipes import ner_bilstm_crf

    output = tmp_path_factory.mktemp("ner") / "bundle"
    argv = [*TINY_NER_FLAGS, "--output-dir", str(output)]
    exit_code = ner_bilstm_crf.main(argv)
    return TrainedBundle(path=output, exit_code=exit_code, argv=argv)


@pytest.fixture(scope="session")
def ner_bundle(trained_ner):
    """Path of the shared, read-only tiny NER bundle."""
    return trained_ner.path


@pytest.fixture
def ner_bundle_copy(ner_bundle, tmp_path):
    """A private copy of the shared NER bundle, for tests that rewrite or break it."""
    copy = tmp_path / "ner_bundle"
    shutil.copytree(ner_bundle, copy)
    return copy


@pytest.fixture(scope="session")
def ner_test_sentences():
    """The tagged sentences of the embedded NER sample's test split."""
    from nlpkit.data import read_conll
    from nlpkit.samples import sample_path

    return read_conll(sample_path("ner_test.txt"))


# Longest test files first (see tests/file_order.py). To re-record the seconds per file,
# run the whole suite with NLPKIT_RECORD_TEST_DURATIONS=tests/file_durations.json make test
# (the variable names the file to write).
FILE_DURATIONS = Path(__file__).with_name("file_durations.json")
RECORD_PATH = os.environ.get("NLPKIT_RECORD_TEST_DURATIONS", "")
_recorder = DurationRecorder()


def pytest_collection_modifyitems(config, items):
    longest_files_first(items, read_record(FILE_DURATIONS))


def pytest_runtest_logreport(report):
    # Under pytest-xdist the controller receives every worker's reports here too.
    if RECORD_PATH:
        _recorder.add(report.nodeid, report.duration)


def pytest_sessionfinish(session):
    is_worker = hasattr(session.config, "workerinput")
    if RECORD_PATH and not is_worker and session.testscollected:
        _recorder.write(Path(RECORD_PATH))
