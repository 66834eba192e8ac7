"""Tests for nlpkit.data.datasets: registry, path resolution, file:// downloads, real data counts.

No test touches the network: downloads use file:// URLs to files written into tmp_path. The
real-data tests run only when NLPKIT_DATA points at the shared data folder.
"""

import collections
import gzip
import hashlib
import os
import re
from pathlib import Path

import pytest

from nlpkit.data import datasets
from nlpkit.data.datasets import (
    DatasetSpec,
    SplitSpec,
    available,
    canonical_split,
    dataset_path,
    get_spec,
    parse_dataset_splits,
    load,
    register,
    unregister,
)
from nlpkit.data.readers import LabelledText, read_lines, read_text
from nlpkit.errors import ChecksumError, DatasetNotFoundError

BUILTIN = ["conll2003", "imdb", "multi30k", "ptb", "sst2", "tinyshakespeare"]
TOY_LINES = "alpha beta\ngamma\n"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def isolated_env(tmp_path, monkeypatch):
    """No NLPKIT_DATA, and a cache directory of our own under tmp_path."""
    monkeypatch.delenv("NLPKIT_DATA", raising=False)
    cache = tmp_path / "cache"
    monkeypatch.setenv("NLPKIT_CACHE", str(cache))
    return cache


@pytest.fixture
def toy(tmp_path):
    """Registers a throwaway data set whose files are served from tmp_path via file:// URLs.

    Yields a function ``make(**split_spec_overrides)`` that (re)registers the spec; the spec is
    unregistered afterwards.
    """
    remote = tmp_path / "remote"
    remote.mkdir()
    plain = remote / "train.txt"
    plain.write_bytes(TOY_LINES.encode())
    packed = remote / "valid.txt.gz"
    packed.write_bytes(gzip.compress(TOY_LINES.encode()))
    digest = sha256(TOY_LINES.encode())

    def make(train=None, valid=None, **spec_overrides):
        splits = {
            "train": train or SplitSpec("toy/train.txt", plain.as_uri(), digest),
            "valid": valid or SplitSpec("toy/valid.txt", packed.as_uri(), digest, "gzip"),
        }
        fields = dict(name="toy", task="language_model", splits=splits, reader=read_lines)
        fields.update(spec_overrides)
        return register(DatasetSpec(**fields), replace=True)

    yield make
    if "toy" in available():
        unregister("toy")


# ---------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------


def test_builtin_datasets_are_registered():
    assert set(BUILTIN) <= set(available())
    assert available() == sorted(available())


def test_unknown_dataset_lists_registered_names():
    with pytest.raises(ValueError) as info:
        get_spec("wikitext2")
    assert "'wikitext2'" in str(info.value)
    for name in BUILTIN:
        assert name in str(info.value)


def test_register_refuses_duplicates_unless_replace(toy):
    spec = toy()
    with pytest.raises(ValueError, match="already registered"):
        register(spec)
    assert register(spec, replace=True) is spec


def test_unregister_returns_spec_for_restoring():
    original = unregister("ptb")
    try:
        assert "ptb" not in available()
    finally:
        register(original)
    assert get_spec("ptb") is original


@pytest.mark.parametrize(
    "alias, expected",
    [("train", "train"), ("dev", "valid"), ("validation", "valid"), ("val", "valid"),
     ("VALID", "valid"), ("test", "test")],
)
def test_split_aliases(alias, expected):
    assert canonical_split(alias) == expected


def test_unknown_split_lists_valid_names():
    with pytest.raises(ValueError, match="'training'.*train, valid, test"):
        canonical_split("training")


def test_tinyshakespeare_has_no_test_split():
    with pytest.raises(ValueError, match="'tinyshakespeare' has no 'test' split.*train, valid"):
        load("tinyshakespeare", "test")


def test_dataset_split_lists():
    assert parse_dataset_splits("conll2003") == [("conll2003", "train")]
    assert parse_dataset_splits(" conll2003 , imdb:train+test,ptb:dev, imdb ") == [
        ("conll2003", "train"), ("imdb", "train"), ("imdb", "test"), ("ptb", "valid")]
    assert parse_dataset_splits("ptb", default_split="test") == [("ptb", "test")]
    with pytest.raises(ValueError, match="'imdb' has no 'valid' split"):
        parse_dataset_splits("conll2003,imdb:valid")
    with pytest.raises(ValueError, match="unknown dataset 'imbd'"):
        parse_dataset_splits("imbd")
    with pytest.raises(ValueError, match="empty data set name"):
        parse_dataset_splits("conll2003,,ptb")
    with pytest.raises(ValueError, match="unknown split 'tets'"):
        parse_dataset_splits("ptb:train+tets")


def test_spec_validation():
    with pytest.raises(ValueError, match="task"):
        DatasetSpec("x", "parsing", {"train": SplitSpec("x/a")}, read_lines)
    with pytest.raises(ValueError, match="canonical"):
        DatasetSpec("x", "tagging", {"dev": SplitSpec("x/a")}, read_lines)
    with pytest.raises(ValueError, match="relative_path"):
        SplitSpec("/abs/path")
    with pytest.raises(ValueError, match="relative_path"):
        SplitSpec("../escape")
    with pytest.raises(ValueError, match="sha256"):
        SplitSpec("x/a", sha256="ABC")
    with pytest.raises(ValueError, match="compression"):
        SplitSpec("x/a", compression="zip")
    with pytest.raises(ValueError, match="portion"):
        SplitSpec("x/a", portion=(0.5, 0.1))


def test_builtin_urls_are_pinned_raw_github_and_digests_present():
    pinned = re.compile(r"https://raw\.githubusercontent\.com/[^/]+/[^/]+/[0-9a-f]{40}/.+")
    for name in BUILTIN:
        spec = get_spec(name)
        for split in spec.splits:
            for file in spec.split_files(split).values():
                assert file.sha256 is not None, (name, split)
                if file.url is not None:
                    assert pinned.fullmatch(file.url), file.url
                    assert (file.compression == "gzip") == file.url.endswith(".gz"), file.url
    local_only = {
        f.relative_path
        for name in BUILTIN
        for split in get_spec(name).splits
        for f in get_spec(name).split_files(split).values()
        if f.url is None
    }
    assert local_only == {"sst2/test.tsv", "imdb/train.tsv.gz", "imdb/test.tsv.gz"}
    assert get_spec("multi30k").split_files("test")["de"].url.endswith(
        "/data/task1/raw/test_2016_flickr.de.gz"
    )


def test_portion_select():
    text = "abcdefghij"
    assert SplitSpec("x/a", portion=(0.0, 0.9)).select(text) == "abcdefghi"
    assert SplitSpec("x/a", portion=(0.9, 1.0)).select(text) == "j"
    assert SplitSpec("x/a").select(text) is text


# ---------------------------------------------------------------------------------------------
# Path resolution and downloads (file:// only)
# ---------------------------------------------------------------------------------------------


def test_resolution_order_data_dir_then_env_then_cache(toy, tmp_path, isolated_env, monkeypatch):
    toy()
    for root in ("explicit", "env", "cache"):
        base = isolated_env if root == "cache" else tmp_path / root
        (base / "toy").mkdir(parents=True)
        (base / "toy" / "train.txt").write_text(f"from {root}\n")
    monkeypatch.setenv("NLPKIT_DATA", str(tmp_path / "env"))
    assert load("toy", data_dir=tmp_path / "explicit") == ["from explicit"]
    assert load("toy") == ["from env"]
    monkeypatch.delenv("NLPKIT_DATA")
    assert load("toy") == ["from cache"]
    # A data_dir without the file falls through to the later places.
    assert load("toy", data_dir=tmp_path / "empty") == ["from cache"]


def test_local_files_are_not_checksummed(toy, tmp_path, isolated_env):
    # Local directories hold user data on purpose (e.g. a trimmed copy); only downloads are checked.
    toy()
    (tmp_path / "mine" / "toy").mkdir(parents=True)
    (tmp_path / "mine" / "toy" / "train.txt").write_text("edited\n")
    assert load("toy", data_dir=tmp_path / "mine") == ["edited"]


def test_download_plain_then_reuse_cache(toy, tmp_path, isolated_env):
    toy()
    path = dataset_path("toy", "train")
    assert path == isolated_env / "toy" / "train.txt"
    assert path.read_text() == TOY_LINES
    assert os.listdir(path.parent) == ["train.txt"]
    # The second call must not download again: the remote copy is gone now.
    (tmp_path / "remote" / "train.txt").unlink()
    assert dataset_path("toy", "train") == path
    assert load("toy", "train") == ["alpha beta", "gamma"]


def test_download_gzip_stores_decompressed_file(toy, isolated_env):
    toy()
    path = dataset_path("toy", "dev")
    assert path == isolated_env / "toy" / "valid.txt"
    assert path.read_bytes() == TOY_LINES.encode()


def test_checksum_mismatch_leaves_no_file(toy, tmp_path, isolated_env):
    url = (tmp_path / "remote" / "train.txt").as_uri()
    toy(train=SplitSpec("toy/train.txt", url, "0" * 64))
    with pytest.raises(ChecksumError) as info:
        dataset_path("toy", "train")
    message = str(info.value)
    assert url in message
    assert "0" * 64 in message
    assert sha256(TOY_LINES.encode()) in message
    leftovers = list(isolated_env.rglob("*"))
    assert [p for p in leftovers if p.is_file()] == []


def test_checksum_mismatch_after_gunzip(toy, tmp_path, isolated_env):
    url = (tmp_path / "remote" / "valid.txt.gz").as_uri()
    # The digest of the compressed bytes is wrong on purpose: the registry holds the stored,
    # decompressed file's digest.
    compressed_digest = sha256((tmp_path / "remote" / "valid.txt.gz").read_bytes())
    toy(valid=SplitSpec("toy/valid.txt", url, compressed_digest, "gzip"))
    with pytest.raises(ChecksumError, match="decompressed"):
        dataset_path("toy", "valid")
    assert [p for p in isolated_env.rglob("*") if p.is_file()] == []


def test_unreachable_url_is_dataset_not_found(toy, tmp_path, isolated_env):
    url = (tmp_path / "remote" / "gone.txt").as_uri()
    toy(train=SplitSpec("toy/train.txt", url, None))
    with pytest.raises(DatasetNotFoundError, match="could not download.*NLPKIT_DATA"):
        dataset_path("toy", "train")
    assert [p for p in isolated_env.rglob("*") if p.is_file()] == []


def test_download_disabled_explains_fix(toy, tmp_path, isolated_env):
    toy()
    with pytest.raises(DatasetNotFoundError) as info:
        dataset_path("toy", "train", data_dir=tmp_path / "nowhere", download=False)
    message = str(info.value)
    assert "toy/train.txt" in message
    assert "NLPKIT_DATA" in message
    assert "download=False" in message
    assert "sst2/train.tsv" in message
    assert not (isolated_env / "toy").exists()


@pytest.mark.parametrize("name, split", [("sst2", "test"), ("imdb", "train"), ("imdb", "test")])
def test_local_only_splits_need_nlpkit_data(name, split, tmp_path, isolated_env):
    with pytest.raises(DatasetNotFoundError) as info:
        load(name, split, data_dir=tmp_path / "empty")
    message = str(info.value)
    assert "local-only" in message
    assert "NLPKIT_DATA" in message
    assert f"{name}/" in message


def test_multi_file_split_parts(toy, tmp_path, isolated_env):
    de = tmp_path / "remote" / "x.de"
    de.write_text("Hallo\n")
    en = tmp_path / "remote" / "x.en.gz"
    en.write_bytes(gzip.compress(b"Hello\n"))
    parts = {
        "de": SplitSpec("pairs/x.de", de.as_uri(), sha256(b"Hallo\n")),
        "en": SplitSpec("pairs/x.en", en.as_uri(), sha256(b"Hello\n"), "gzip"),
    }
    register(
        DatasetSpec(
            "toy",
            "translation",
            {"train": parts},
            datasets._read_language_pair,
            {"source_language": "de", "target_language": "en"},
        ),
        replace=True,
    )
    assert [tuple(p) for p in load("toy")] == [("Hallo", "Hello")]
    assert [tuple(p) for p in load("toy", source_language="en", target_language="de")] == [
        ("Hello", "Hallo")
    ]
    with pytest.raises(ValueError, match="part="):
        dataset_path("toy", "train")
    with pytest.raises(ValueError, match="'fr'.*de, en"):
        load("toy", source_language="fr")


def test_reader_kwargs_override_registered_ones(toy, tmp_path, isolated_env):
    toy(reader=read_text, task="language_model")
    assert load("toy") == TOY_LINES
    (tmp_path / "d" / "toy").mkdir(parents=True)
    (tmp_path / "d" / "toy" / "train.txt").write_text("t\tl\nx\t1\n")
    toy(reader=datasets.read_classification, task="classification", reader_kwargs={
        "text_column": "t", "label_column": "l"})
    assert load("toy", data_dir=tmp_path / "d") == [LabelledText("x", "1")]
    assert load("toy", data_dir=tmp_path / "d", text_column=0, label_column=1) == [
        LabelledText("x", "1")
    ]


# ---------------------------------------------------------------------------------------------
# Real data (NLPKIT_DATA)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_data_dir():
    value = os.environ.get("NLPKIT_DATA")
    if not value:
        pytest.skip("NLPKIT_DATA is not set; real-data tests need the shared data folder")
    path = Path(value)
    if not path.is_dir():
        pytest.skip(f"NLPKIT_DATA={value} is not a directory")
    return path


def real_load(data_dir, name, split, **kwargs):
    # download=False: a real-data test must never reach for the network.
    return load(name, split, data_dir=data_dir, download=False, **kwargs)


def test_registry_digests_match_manifest(real_data_dir):
    manifest = real_data_dir / "MANIFEST.sha256"
    if not manifest.is_file():
        pytest.skip(f"{manifest} is missing")
    expected = dict(
        reversed(line.split()) for line in manifest.read_text().splitlines() if line.strip()
    )
    for name in BUILTIN:
        spec = get_spec(name)
        for split in spec.splits:
            for file in spec.split_files(split).values():
                assert file.sha256 == expected[file.relative_path], file.relative_path


def test_real_sst2(real_data_dir):
    counts = {"train": 67_349, "dev": 872, "test": 1_821}
    for split, count in counts.items():
        rows = real_load(real_data_dir, "sst2", split)
        assert len(rows) == count, split
        assert {row.label for row in rows} == {"0", "1"}
    train = real_load(real_data_dir, "sst2", "train")
    assert collections.Counter(row.label for row in train) == {"0": 29_780, "1": 37_569}
    # Header detection with integer columns gives the same rows.
    by_index = real_load(real_data_dir, "sst2", "dev", text_column=0, label_column=1)
    assert by_index == real_load(real_data_dir, "sst2", "dev")


def test_real_imdb(real_data_dir):
    train = real_load(real_data_dir, "imdb", "train")
    assert len(train) == 25_000
    assert collections.Counter(row.label for row in train) == {"0": 12_500, "1": 12_500}
    assert any('"' in row.text for row in train)


def test_real_conll2003(real_data_dir):
    train = real_load(real_data_dir, "conll2003", "train")
    assert len(train) == 14_041
    assert sum(len(s.tokens) for s in train) == 203_621
    assert all(len(s.tokens) == len(s.tags) > 0 for s in train)
    assert train[0].tokens[:2] == ["EU", "rejects"] and train[0].tags[0] == "B-ORG"
    assert len(real_load(real_data_dir, "conll2003", "valid")) == 3_250
    assert len(real_load(real_data_dir, "conll2003", "test")) == 3_453


def test_real_ptb(real_data_dir):
    train = real_load(real_data_dir, "ptb", "train")
    assert len(train) == 42_068
    assert sum(len(line.split()) + 1 for line in train) == 929_589
    assert len(real_load(real_data_dir, "ptb", "valid")) == 3_370
    assert len(real_load(real_data_dir, "ptb", "test")) == 3_761


def test_real_tinyshakespeare(real_data_dir):
    train = real_load(real_data_dir, "tinyshakespeare", "train")
    valid = real_load(real_data_dir, "tinyshakespeare", "valid")
    assert len(train) == 1_003_854
    assert len(valid) == 111_540
    assert train.startswith("First Citizen:\nBefore we proceed any further")
    assert train + valid == read_text(
        dataset_path("tinyshakespeare", "valid", real_data_dir, download=False)
    )


def test_real_multi30k(real_data_dir):
    train = real_load(real_data_dir, "multi30k", "train")
    assert len(train) == 29_000
    assert sum(len(p.target.split()) for p in train) == 345_020  # English side
    assert sum(len(p.source.split()) for p in train) == 322_383  # German side
    assert len(real_load(real_data_dir, "multi30k", "valid")) == 1_014
    assert len(real_load(real_data_dir, "multi30k", "test")) == 1_000
