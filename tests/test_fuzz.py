"""Bounded property-based fuzzing (hypothesis) of nlpkit's entry points, on the session's tiny bundles.

What is fuzzed (nothing is trained here: every test reads the bundles of tests/conftest.py):

- ``nlpkit predict`` (in-process ``nlpkit.cli.main``) on the sentiment and NER bundles with arbitrary
  unicode texts (control characters, escape sequences, bidi overrides, NUL, BOM, empty,
  whitespace-only and very long texts), given as arguments (after ``--``, or after the options without
  it) or as raw bytes on stdin; ``--format tflite`` is fuzzed, ``keras`` gets a few examples (each
  loads the Keras model), ``saved_model`` none (seconds per load; test_cli.py covers it).
- ``nlpkit evaluate BUNDLE --data FILE`` with generated TSV/CSV/CoNLL files: random bytes, gzip
  streams (intact, truncated, corrupt), BOMs, empty and header-only files, tabs, commas and quotes
  in fields, CR/CRLF line ends, non-UTF-8 text, odd column flags.
- the readers ``read_classification``, ``read_conll`` and ``read_parallel_tsv`` on the same files.
- the word, character and tagging tokenizers loaded from the bundles' assets, on arbitrary text and bytes.
- bundle loading (``load_predictor(bundle, format="tflite")`` and ``nlpkit predict``) on a fresh copy
  of a bundle whose ``nlpkit.json`` or asset files were mutated: keys dropped, values of the wrong
  type, ``files`` and ``tokenizer.json`` entries that are ``../``, absolute, empty, NUL-holding or
  huge, symlinks out of the bundle, invalid JSON, deep nesting, bytes that are not UTF-8, truncated
  or empty model files, vocabularies that do not fit the model.

Properties, for every generated input:

- nothing escapes: ``main`` returns 0 or 2 (argparse's ``SystemExit(2)`` counts as 2); a direct
  ``load_predictor`` + ``predict`` either works or raises ``NlpkitError`` (or the OSError / KeyError /
  ValueError the CLI's contract maps to exit 2), never a TypeError, IndexError, RecursionError, ...;
- on 2, stderr starts with ``nlpkit <command>: error:`` (or argparse's ``usage:``) and names the
  offending file, entry or value;
- plain output holds no terminal control characters (ESC, C1, bidi overrides); ``--json`` lines
  parse with a strict ``json.loads`` (NaN/Infinity refused) and give back the input text;
- nothing changes in the directory that holds the bundle; no file of the sibling ``outside/``
  directory (a planted secret, and decoy copies of the bundle's files) is opened while nlpkit runs
  (checked with a ``sys.addaudithook`` "open" recorder); an entry or symlink that leads there is
  refused with exit 2 naming it, and the secret never appears on stdout or stderr.

Bounds: each test has a fixed ``max_examples`` (a few dozen; 2-3 where a Keras model is loaded), no
deadline, small generated sizes (files under a few KiB, texts under ~10k characters). The tests
themselves take about 25 s on 2 cores; run alone, the file takes about 85 s, most of it the
session fixtures' training (shared with the rest of the suite). ``NLPKIT_FUZZ_SCALE=10``
multiplies every example budget for a deeper hunt by hand.
"""

import contextlib
import dataclasses
import gzip
import io
import json
import os
import shutil
import sys
import tempfile
import unittest.mock
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from nlpkit import cli
from nlpkit.data import read_classification, read_conll, read_parallel_tsv
from nlpkit.errors import NlpkitError
from nlpkit.serving import load_predictor
from nlpkit.text.python_tokenizers import (
    PythonCharTokenizer,
    PythonTaggingTokenizer,
    PythonWordTokenizer,
    load_tokenizer,
)


# NLPKIT_FUZZ_SCALE=20 multiplies every example budget, for a deeper hunt by hand.
SCALE = float(os.environ.get("NLPKIT_FUZZ_SCALE", "1"))


def fuzz(max_examples):
    """The settings of every test here: a fixed example budget, no deadline (model loads vary)."""
    return settings(
        max_examples=max(1, round(max_examples * SCALE)),
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


# What the CLI's contract maps to exit 2 (nlpkit.cli.main); anything else escaping is a bug.
CLEAN_ERRORS = (NlpkitError, OSError, ValueError, KeyError)

# The phrases of nlpkit.manifest.resolve_inside: a name leading out of the bundle was refused.
REFUSED = ("outside the bundle", "is an absolute path", "must be a relative file name inside the bundle")

MARKER = "nlpkit-fuzz-SECRET-5b1e0c7d"

# Characters a plain-text line must never carry to a terminal: C0 controls but tab and newline,
# DEL, C1 controls (U+009B is a one-character CSI) and the bidirectional overrides.
UNSAFE = {chr(c) for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)] if c not in (0x09, 0x0A)}
UNSAFE |= {"\u061c", "\u200e", "\u200f", *map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A))}


def _refuse_constant(name):
    raise ValueError(f"non-standard JSON constant {name}")


def strict_json(line):
    return json.loads(line, parse_constant=_refuse_constant)


# ---------------------------------------------------------------------------------------------
# Harness: running the CLI, recording opened files, workspaces around bundle copies
# ---------------------------------------------------------------------------------------------


def run_cli(capsys, argv, stdin=b""):
    """``(exit code, stdout, stderr)`` of ``nlpkit.cli.main(argv)``; only 0 and 2 are allowed."""
    capsys.readouterr()
    with unittest.mock.patch.object(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")):
        try:
            code = cli.main([str(arg) for arg in argv])
        except SystemExit as exit_:  # argparse: usage errors (2); --help would be 0
            code = 0 if exit_.code is None else exit_.code
    out, err = capsys.readouterr()
    assert code in (0, 2), (code, err[-2000:])
    assert "Traceback" not in err, err[-2000:]
    return code, out, err


def assert_error(err, command, fragments):
    """stderr of a failed command: nlpkit's (or argparse's) error line, naming one of ``fragments``."""
    assert err.startswith((f"nlpkit {command}: error: ", "usage: ")), err[:500]
    assert any(fragment in err for fragment in fragments), (fragments, err[:2000])


_recording = []  # the list of the open() calls being recorded, while nlpkit runs


def _audit_open(event, args):
    if event == "open" and _recording and isinstance(args[0], (str, bytes, os.PathLike)):
        _recording[-1].append(os.fsdecode(args[0]))


@contextlib.contextmanager
def record_opened():
    """Collects the path of every file Python opens in the block (a ``sys.addaudithook`` hook).

    The hook is installed once per process and does nothing outside these blocks.
    """
    if not getattr(record_opened, "installed", False):
        sys.addaudithook(_audit_open)
        record_opened.installed = True
    opened = []
    _recording.append(opened)
    try:
        yield opened
    finally:
        _recording.pop()


def assert_not_opened_under(opened, directory):
    root = os.path.realpath(directory)
    for path in opened:
        real = os.path.realpath(path)
        assert real != root and not real.startswith(root + os.sep), f"nlpkit opened {path} ({real})"


def tree_state(directory, snapshot_tree):
    """Every entry under ``directory`` (kind, link target) and the bytes of every file."""
    entries = []
    for parent, dirs, files in os.walk(directory):
        for name in sorted(dirs + files):
            path = os.path.join(parent, name)
            target = os.readlink(path) if os.path.islink(path) else None
            entries.append((os.path.relpath(path, directory), os.path.isdir(path), target))
    return sorted(entries), snapshot_tree(directory)


@dataclasses.dataclass
class Workspace:
    """``root/bundle`` (a private bundle copy) next to ``root/outside`` (what it must never read).

    ``outside`` holds ``secret`` (a JSON object carrying `MARKER`) and decoy copies of the
    bundle's manifest, model and asset files (the manifest and vocabularies carry the marker): a
    name or symlink that escaped the bundle would load them and succeed, which the tests would see.
    """

    root: Path

    @property
    def bundle(self):
        return self.root / "bundle"

    @property
    def outside(self):
        return self.root / "outside"

    @property
    def secret(self):
        return self.outside / "secret"

    @classmethod
    def template(cls, parent, bundle):
        """The workspace every example copies: built once per test from the bundle fixture."""
        workspace = cls(Path(tempfile.mkdtemp(prefix="template-", dir=parent)))
        shutil.copytree(bundle, workspace.bundle, symlinks=True)
        outside = workspace.outside
        outside.mkdir()
        outside.joinpath("secret").write_text(
            json.dumps({"format": MARKER, "tokens": [MARKER], "special_tokens": ["<pad>", "<unk>"],
                        "unk_token": "<unk>", "type": MARKER, "format_version": 1}),
            encoding="utf-8",
        )
        manifest = json.loads((bundle / "nlpkit.json").read_text(encoding="utf-8"))
        manifest["name"] = MARKER
        outside.joinpath("nlpkit.json").write_text(json.dumps(manifest), encoding="utf-8")
        shutil.copy(bundle / "model.tflite", outside / "model.tflite")
        for path in (bundle / "assets").iterdir():
            shutil.copy(path, outside / path.name)
        for name in ("vocabulary.json", "char_vocabulary.json"):
            if (outside / name).exists():
                vocabulary = json.loads((outside / name).read_text(encoding="utf-8"))
                vocabulary["tokens"].append(MARKER)
                (outside / name).write_text(json.dumps(vocabulary), encoding="utf-8")
        return workspace

    def clone(self, parent):
        copy = Workspace(Path(tempfile.mkdtemp(prefix="example-", dir=parent)))
        shutil.copytree(self.root, copy.root, symlinks=True, dirs_exist_ok=True)
        return copy


# ---------------------------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------------------------

# Pieces that reach the interesting corners: escape sequences, C1 CSI, bidi overrides, NUL, BOM,
# line and paragraph separators, combining marks, wide and astral characters, the vocabulary's
# special tokens, words the bundles know, and text that looks like an option.
PIECES = [
    "\x1b[31m", "\x1b]0;title\x07", "\x9b2J", "\u202e", "\u2066", "\x00", "\ufeff", "\r", "\r\n", "\n",
    "\t", "\x0b", "\x0c", "\x85", "\u2028", "\u2029", "\u00a0", "\u3000", "e\u0301", "İ", "ß", "😀",
    "\U0010fffd", "<pad>", "<unk>", "a", "gripping", "film", "dull", "script", ",", ".", "!", "Maria",
    "Keller", "Oslo", "U.S.", "1996-08-22", "-", "--json", " ", "  ", '"', "'",
]

texts = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(PIECES) | st.text(max_size=6), max_size=12).map("".join),
    st.sampled_from(["", " ", "\t\n", "\x1b", "\u200b", "\ufeff"]),
    # Far past the sentiment tokenizer's max_length (256): the truncation note and the preview.
    st.builds(lambda piece, count: (piece + " ") * count, st.sampled_from(PIECES) | st.text(min_size=1, max_size=5),
              st.integers(200, 1500)),
)

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def repeated(piece, count):
    """``piece * count`` as a strategy whose repr stays short (hypothesis prints strategies' reprs)."""
    return st.just(count).map(lambda n: piece * n)


odd_strings = repeated("x", 5000) | repeated("a/", 3000) | st.sampled_from([
    "", ".", "..", "/", "\x00", "model.tflite\x00.txt", "assets", "model.keras",
    "model.tflite", "model.int8.tflite", "nlpkit.json", "saved_model", "\u202e", " model.tflite", "model.tflite/",
    "assets/vocabulary.json", "classification", "tagging", "translation", "language_model",
    "BIO", "BIOES", "IOB1", "XYZ", "\x1b[31m",
])
# Names that lead out of the bundle. "<abs>" and "<abs-dir>" become absolute paths to the secret and
# to the outside directory, "<link>" a name inside the bundle whose symlink points out.
escapes = st.sampled_from([
    "../outside/secret", "../outside", "../outside/model.tflite", "./../outside/nlpkit.json",
    "assets/../../outside/vocabulary.json", "sub/../../outside/secret", "<abs>", "<abs-dir>", "<link>",
    "<link-dir>",
])


def resolve_escape(workspace, name, directory):
    """The concrete name for an `escapes` value; ``directory`` is where the name is read from."""
    if name == "<abs>":
        return str(workspace.secret)
    if name == "<abs-dir>":
        return str(workspace.outside)
    if name in ("<link>", "<link-dir>"):
        link = Path(directory) / ("fuzz-link" if name == "<link>" else "fuzz-link-dir")
        target = workspace.secret if name == "<link>" else workspace.outside
        if not link.is_symlink():
            link.symlink_to(target)
        return link.name
    # Relative names are written for the bundle root; from assets/ they need one more "../".
    return name if Path(directory) == workspace.bundle else "../" + name


def gzip_variants(data):
    """A gzip stream of ``data``, intact, truncated or with a corrupt byte; or only the magic."""
    packed = gzip.compress(data)
    return st.sampled_from([
        packed, packed[: len(packed) // 2], packed[:-4], b"\x1f\x8b", b"\x1f\x8b\x08\x00" + bytes(6) + b"garbage",
        packed[:12] + bytes([packed[12] ^ 0xFF]) + packed[13:] if len(packed) > 13 else packed,
    ])


def encoded(text_strategy):
    """Text turned into file bytes: UTF-8 (maybe with a BOM), Latin-1, UTF-16, or gzipped."""

    @st.composite
    def build(draw):
        text = draw(text_strategy)
        encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "latin-1", "utf-16", "gzip"]))
        if encoding == "gzip":
            return draw(gzip_variants(text.encode("utf-8")))
        return text.encode(encoding, errors="replace")

    return build()


field_pieces = st.sampled_from([
    "a", "fine film", "", " ", '"', '""', '"quoted, text"', "'", ",", "\t", "0", "1", "negative", "positive", "2",
    " 1 ", "label", "sentence", "\ufeff", "\x00", "é", "\x1b",
])
line_ends = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def delimited_text(draw):
    """A TSV/CSV-ish file: an optional header, rows of 1-4 fields, mixed delimiters and line ends."""
    header = draw(st.sampled_from([None, "sentence\tlabel", "label\tsentence", "sentence,label", "text\tlabel",
                                   "sentence\tlabel\textra", "\ufeffsentence\tlabel", '"sentence","label"']))
    rows = draw(st.lists(
        st.lists(field_pieces | st.text(max_size=8), min_size=1, max_size=4).map(
            lambda fields: draw(st.sampled_from(["\t", ",", ";"])).join(fields)
        ),
        max_size=8,
    ))
    end = draw(line_ends)
    lines = ([header] if header is not None else []) + rows
    return end.join(lines) + draw(st.sampled_from(["", end, end * 2]))


conll_tokens = st.sampled_from(["EU", "rejects", "German", "call", ".", "Maria", "-DOCSTART-", "\ufeff", "é", '"',
                                "\x1b[31m", "a\x00b", "U.S."])
conll_tags = st.sampled_from(["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "B-MISC", "S-PER", "E-LOC", "X",
                              "B-", "-X", "b-per", "O-PER", "B-PER-X", ""])


@st.composite
def conll_text(draw):
    """A CoNLL-ish file: token/tag lines with 1-4 columns, blank lines, -DOCSTART- lines."""
    lines = draw(st.lists(
        st.one_of(
            st.tuples(conll_tokens, conll_tags).map(" ".join),
            st.tuples(conll_tokens, st.sampled_from(["NNP", "VBZ"]), st.sampled_from(["B-NP", "I-NP"]), conll_tags)
            .map(" ".join),
            st.tuples(conll_tokens, conll_tags).map("\t".join),
            st.just(""), st.just("-DOCSTART- -X- -X- O"), st.just("   "), conll_tokens, st.text(max_size=10),
        ),
        max_size=14,
    ))
    end = draw(line_ends)
    return end.join(lines) + draw(st.sampled_from(["", end]))


parallel_text = st.builds(
    lambda header, rows, end: end.join([header, *rows]),
    st.sampled_from(["de\ten", "en\tde", "de\ten\tfr", "de", "", "\ufeffde\ten", "de,en"]),
    st.lists(st.lists(field_pieces | st.text(max_size=8), min_size=1, max_size=3).map("\t".join), max_size=6),
    line_ends,
)

# Well-formed files with a chance of one bad line: they get past the reader, into the model.
clean_field = st.text(st.characters(blacklist_characters="\t\n\r"), max_size=30)
nearly_valid_tsv = st.builds(
    lambda rows, bad, end: end.join(["sentence\tlabel", *rows, *bad]) + end,
    st.lists(st.tuples(clean_field, st.sampled_from(["0", "1", "negative", "positive", " 1 "])).map("\t".join),
             min_size=1, max_size=6),
    st.lists(st.sampled_from(["a\t2", "a", "a\t1\tx", "\t", "a\t"]), max_size=1),
    line_ends,
)
# A token holds no whitespace or control character (Zs, Cc), and no lone surrogate (Cs: not UTF-8).
conll_token = st.text(st.characters(blacklist_categories=["Zs", "Cc", "Cs"]), min_size=1, max_size=8)
nearly_valid_conll = st.builds(
    lambda sentences, bad: "\n\n".join(["-DOCSTART- O", *("\n".join(s) for s in sentences), *bad]) + "\n",
    st.lists(st.lists(st.tuples(conll_token, st.sampled_from(["O", "B-PER", "I-PER", "B-LOC", "B-ORG", "I-MISC"]))
                      .map(" ".join), min_size=1, max_size=6), min_size=1, max_size=4),
    st.lists(st.sampled_from(["x S-PER", "x", "x O O", "x B-"]), max_size=1),
)
classification_files = st.one_of(st.binary(max_size=300), encoded(delimited_text()), encoded(st.text(max_size=80)),
                                 encoded(nearly_valid_tsv))
conll_files = st.one_of(st.binary(max_size=300), encoded(conll_text()), encoded(nearly_valid_conll))
parallel_files = st.one_of(st.binary(max_size=200), encoded(parallel_text))


# ---------------------------------------------------------------------------------------------
# 1. predict: arbitrary texts on intact bundles
# ---------------------------------------------------------------------------------------------


def predict_argv(bundle, text_list, data):
    """``(argv, as_json)`` of ``nlpkit predict`` on ``text_list``: options, then the texts after ``--``
    (always when one starts with "-") or right after the options."""
    options = data.draw(st.sampled_from([[], ["--json"], ["--int8"], ["--json", "--int8"]]), label="options")
    if any(text.startswith("-") for text in text_list) or data.draw(st.booleans(), label="separator"):
        return ["predict", bundle, *options, "--", *text_list], "--json" in options
    return ["predict", bundle, *options, *text_list], "--json" in options


def stdin_texts(raw):
    """The texts ``nlpkit predict`` reads from stdin bytes ``raw`` (lines, invalid UTF-8 replaced)."""
    return [line.decode("utf-8", "replace").rstrip("\r\n") for line in io.BytesIO(raw)]


def check_predictions(out, err, given_texts, as_json, labels, tagger):
    """The output of a successful ``nlpkit predict``: one safe line or one strict JSON record per text."""
    lines = out.split("\n")
    assert lines[-1] == "" and len(lines) - 1 == len(given_texts), (len(given_texts), out[-1000:])
    for line in err.splitlines():
        assert line.startswith("nlpkit predict: note: text "), err[-1000:]
    for text, line in zip(given_texts, lines):
        if as_json:
            assert "\x1b" not in line
            record = strict_json(line)
            assert record["text"] == text
            if tagger:
                assert len(record["tokens"]) == len(record["tags"]) and set(record["tags"]) <= set(labels)
                assert not any(ch.isspace() for token in record["tokens"] for ch in token)
                assert record.get("empty", False) == (not record["tokens"])
                for entity in record["entities"]:
                    assert entity["text"] == " ".join(record["tokens"][entity["start"] : entity["end"]])
            else:
                assert record["label"] in labels and set(record["scores"]) == set(labels)
                assert all(score is None or 0.0 <= score <= 1.0 for score in record["scores"].values())
        else:
            assert not UNSAFE & set(line), repr(line[:300])
            if not tagger:
                label, score, preview = line.split("\t")
                assert label in labels and 0.0 <= float(score) <= 1.0 and len(preview) <= 100


def labels_of(bundle):
    return json.loads((Path(bundle) / "nlpkit.json").read_text(encoding="utf-8"))["labels"]


@pytest.mark.parametrize("which", ["sentiment", "ner"])
def test_predict_arbitrary_texts_tflite(which, request, capsys, snapshot_tree):
    bundle = request.getfixturevalue(f"{which}_bundle")
    labels, before = labels_of(bundle), tree_state(bundle.parent, snapshot_tree)

    @fuzz(60)
    @given(text_list=st.lists(texts, min_size=1, max_size=4), data=st.data())
    def check(text_list, data):
        argv, as_json = predict_argv(bundle, text_list, data)
        code, out, err = run_cli(capsys, argv)
        if text_list == ["-"]:
            text_list = []  # `predict BUNDLE -- -` reads (the empty) stdin
        assert code == 0, err[-2000:]
        check_predictions(out, err, text_list, as_json, labels, tagger=which == "ner")

    check()
    assert tree_state(bundle.parent, snapshot_tree) == before


@pytest.mark.parametrize("which", ["sentiment", "ner"])
def test_predict_arbitrary_stdin_bytes(which, request, capsys):
    bundle = request.getfixturevalue(f"{which}_bundle")
    labels = labels_of(bundle)
    stdin_bytes = st.one_of(
        st.binary(max_size=200),
        st.lists(texts, max_size=4).map(lambda lines: "\n".join(lines).encode("utf-8")),
        st.lists(st.sampled_from([b"\xff", b"\xc3", b"\r\n", b"\n", b"\x00", b"\xef\xbb\xbf", b"a film", b"\x1b[2J"]),
                 max_size=10).map(b"".join),
    )

    @fuzz(25)
    @given(raw=stdin_bytes, as_json=st.booleans(), dash=st.booleans())
    def check(raw, as_json, dash):
        argv = ["predict", bundle, *(["--json"] if as_json else []), *(["-"] if dash else [])]
        code, out, err = run_cli(capsys, argv, stdin=raw)
        assert code == 0, err[-2000:]
        check_predictions(out, err, stdin_texts(raw), as_json, labels, tagger=which == "ner")

    check()


@pytest.mark.parametrize("which, examples", [("sentiment", 3), ("ner", 2)])
def test_predict_arbitrary_texts_keras(which, examples, request, capsys):
    """Each example loads model.keras (seconds), so a few examples carry several texts each."""
    bundle = request.getfixturevalue(f"{which}_bundle")
    labels = labels_of(bundle)

    @fuzz(examples)
    @given(text_list=st.lists(texts, min_size=3, max_size=8), as_json=st.booleans())
    def check(text_list, as_json):
        argv = ["predict", bundle, "--format", "keras", *(["--json"] if as_json else []), "--", *text_list]
        code, out, err = run_cli(capsys, argv)
        assert code == 0, err[-2000:]
        check_predictions(out, err, [] if text_list == ["-"] else text_list, as_json, labels, tagger=which == "ner")

    check()


# ---------------------------------------------------------------------------------------------
# 2. evaluate --data on generated files
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["sentiment", "ner"])
def test_evaluate_generated_data_files(which, request, tmp_path, capsys, snapshot_tree):
    bundle = request.getfixturevalue(f"{which}_bundle")
    before = tree_state(bundle.parent, snapshot_tree)
    nearly_valid = (nearly_valid_conll if which == "ner" else nearly_valid_tsv).map(str.encode)
    contents = st.one_of(nearly_valid, nearly_valid, conll_files if which == "ner" else classification_files)
    flags = (
        st.lists(st.sampled_from([["--token-column", "1"], ["--tag-column", "-2"], ["--tag-column", "7"],
                                  ["--passage-tokens", "0"], ["--passage-tokens", "5"], ["--passage-tokens", "-3"],
                                  ["--json"]]), max_size=2)
        if which == "ner" else
        st.lists(st.sampled_from([["--quoting", "csv"], ["--text-column", "text"], ["--label-column", "sentence"],
                                  ["--json"], ["--int8"]]), max_size=2)
    )

    @fuzz(40)
    @given(content=contents, suffix=st.sampled_from([".tsv", ".csv", ".txt", ".tsv.gz"]), flag_lists=flags)
    def check(content, suffix, flag_lists):
        directory = Path(tempfile.mkdtemp(dir=tmp_path))
        path = directory / f"data{suffix}"
        path.write_bytes(content)
        data_before = tree_state(directory, snapshot_tree)
        argv = ["evaluate", bundle, "--data", path, *[flag for pair in flag_lists for flag in pair]]
        code, out, err = run_cli(capsys, argv)
        if code == 2:
            # Labels the bundle does not know are named themselves (the message says "in the data").
            named = [str(path), *(repr(flag) for pair in flag_lists for flag in pair[1:])]
            if which == "sentiment":
                named.append("in the data are not labels of the bundle")
            assert_error(err, "evaluate", named)
        else:
            assert out.strip() and not err.strip(), err[-2000:]
        assert tree_state(directory, snapshot_tree) == data_before
        shutil.rmtree(directory)

    check()
    assert tree_state(bundle.parent, snapshot_tree) == before


# ---------------------------------------------------------------------------------------------
# 3. the readers directly
# ---------------------------------------------------------------------------------------------


def read_or_fail(tmp_path, content, suffix, reader):
    """``reader(path)`` on a file holding ``content``: its rows, or None after a well-named error."""
    directory = Path(tempfile.mkdtemp(dir=tmp_path))
    path = directory / f"data{suffix}"
    path.write_bytes(content)
    try:
        return reader(path)
    except NlpkitError as error:
        assert str(path) in str(error), str(error)
        return None
    finally:
        shutil.rmtree(directory)


@fuzz(150)
@given(content=classification_files, suffix=st.sampled_from([".tsv", ".csv", ".txt"]), quoting=st.booleans(),
       columns=st.sampled_from([("sentence", "label"), (0, 1), (1, 0), (-1, 0), (0, 5), ("text", 1)]))
def test_read_classification_generated_files(tmp_path, content, suffix, quoting, columns):
    text_column, label_column = columns
    rows = read_or_fail(tmp_path, content, suffix, lambda path: read_classification(
        path, text_column=text_column, label_column=label_column, quoting=quoting))
    for row in rows or []:
        assert isinstance(row.text, str) and isinstance(row.label, str)
        assert row.label and row.label == row.label.strip()


@fuzz(150)
@given(content=conll_files, scheme=st.sampled_from([None, "BIO", "BIOES", "IOB1"]),
       columns=st.sampled_from([(0, -1), (0, 1), (1, 3), (-2, -1), (0, 4)]))
def test_read_conll_generated_files(tmp_path, content, scheme, columns):
    token_column, tag_column = columns
    sentences = read_or_fail(tmp_path, content, ".txt", lambda path: read_conll(
        path, token_column=token_column, tag_column=tag_column, tag_scheme=scheme))
    for sentence in sentences or []:
        assert sentence.tokens and len(sentence.tokens) == len(sentence.tags)
        assert all(isinstance(item, str) for item in sentence.tokens + sentence.tags)


@fuzz(120)
@given(content=parallel_files, languages=st.sampled_from([("de", "en"), ("en", "de"), ("de", "fr")]))
def test_read_parallel_tsv_generated_files(tmp_path, content, languages):
    pairs = read_or_fail(tmp_path, content, ".tsv", lambda path: read_parallel_tsv(path, *languages))
    for pair in pairs or []:
        assert isinstance(pair.source, str) and isinstance(pair.target, str)


# ---------------------------------------------------------------------------------------------
# 4. the tokenizers from the bundles' assets
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def bundle_tokenizers(sentiment_bundle, ner_bundle, tmp_path):
    """The word and tagging tokenizers of the bundles, and a char tokenizer over the word vocabulary.

    No bundle has a char tokenizer, so the sentiment assets are copied with ``tokenizer.json``
    saying ``"type": "char"``: the same vocabulary and normalization files, read character-wise.
    """
    char_assets = tmp_path / "char_assets"
    shutil.copytree(sentiment_bundle / "assets", char_assets)
    spec = json.loads((char_assets / "tokenizer.json").read_text(encoding="utf-8"))
    (char_assets / "tokenizer.json").write_text(json.dumps({**spec, "type": "char"}), encoding="utf-8")
    tokenizers = {
        "word": load_tokenizer(sentiment_bundle / "assets"),
        "char": load_tokenizer(char_assets),
        "tagging": load_tokenizer(ner_bundle / "assets"),
    }
    assert isinstance(tokenizers["word"], PythonWordTokenizer)
    assert isinstance(tokenizers["char"], PythonCharTokenizer)
    assert isinstance(tokenizers["tagging"], PythonTaggingTokenizer)
    return tokenizers


@fuzz(150)
@given(kind=st.sampled_from(["word", "char", "tagging"]), text=texts | st.binary(max_size=60))
def test_tokenizers_encode_arbitrary_text(bundle_tokenizers, kind, text):
    tokenizer = bundle_tokenizers[kind]
    ids = tokenizer.encode(text)
    size = len(tokenizer.vocabulary)
    # Id 0 is padding: a text never produces it, not even one holding "<pad>" itself.
    assert all(isinstance(i, int) and 1 <= i < size for i in ids), ids
    kept, total = tokenizer.truncates(text)
    assert len(ids) == kept <= total and len(tokenizer.tokenize(text)) == kept
    if tokenizer.max_length is not None:
        assert kept <= tokenizer.max_length
    if isinstance(text, str):
        assert tokenizer.encode(text.encode("utf-8")) == ids
    if kind == "tagging":
        tokens = tokenizer.tokenize(text)
        word_ids, char_ids = tokenizer.encode_tokens(tokens)
        assert word_ids == ids and len(char_ids) == len(tokens)
        chars = len(tokenizer.char_vocabulary)
        for token, token_chars in zip(tokens, char_ids):
            assert token and len(token_chars) == min(len(token), tokenizer.max_word_length)
            assert all(1 <= i < chars for i in token_chars)


# ---------------------------------------------------------------------------------------------
# 5. bundle loading with mutated nlpkit.json and asset files
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Mutation:
    """A change to a workspace's bundle; ``apply(workspace)`` returns what a failure may name.

    ``escapes``: the change makes a name that the tflite path reads lead out of the bundle, so
    loading must be refused (exit 2 with one of the `REFUSED` phrases).
    """

    description: str
    apply: object
    escapes: bool = False

    def __repr__(self):
        return f"Mutation({self.description}{', escapes' if self.escapes else ''})"


def read_json_file(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_json_file(path, value):
    Path(path).write_text(json.dumps(value, allow_nan=True, ensure_ascii=False), encoding="utf-8")


def value_fragments(value):
    """How a message may name ``value``: its repr or str, when long enough to be told from noise."""
    shown = [repr(value), str(value)] if isinstance(value, str) else [json.dumps(value, allow_nan=True)]
    return [text[:40] for text in shown if len(text) >= 4]


def edit_json(relative, edit):
    """An ``apply`` that runs ``edit(workspace, path, content)`` on a JSON file and writes it back."""

    def apply(workspace):
        path = workspace.bundle / relative
        content = read_json_file(path)
        fragments = edit(workspace, path, content)
        write_json_file(path, content)
        return [path.name, str(path), *fragments]

    return apply


garbles = st.one_of(
    st.tuples(st.just("cut"), st.floats(0, 1)),
    st.tuples(st.just("insert"), st.floats(0, 1),
              st.sampled_from([b"\xff", b"\x00", b"}", b'"', b"\xc3\x28", b"\n{"]) | repeated(b"[", 100_000)),
    st.tuples(st.just("replace"), repeated(b"[", 100_000) | repeated(b'{"a":', 50_000) | st.sampled_from([
        b"", b"  \n", b"null", b"[]", b"3", b'"text"', b"NaN", b"\x00" * 16,
        b"\xff\xfe\xfd", b'{"format_version": 1, "task": "classification"}', b'{"type": "word"}',
    ])),
    st.tuples(st.just("binary"), st.binary(max_size=64)),
    st.sampled_from([("bom",), ("utf-16",), ("latin-1",)]),
)


def garble(operation, data):
    """``data`` (a file's bytes) changed by one of the `garbles`."""
    kind = operation[0]
    if kind == "cut":
        return data[: int(operation[1] * len(data))]
    if kind == "insert":
        at = int(operation[1] * len(data))
        return data[:at] + operation[2] + data[at:]
    if kind in ("replace", "binary"):
        return operation[1]
    if kind == "bom":
        return b"\xef\xbb\xbf" + data
    text = data.decode("utf-8")
    return (text + "é").encode("latin-1", errors="replace") if kind == "latin-1" else text.encode("utf-16")


def rewrite_bytes(relative, operation):
    def apply(workspace):
        path = workspace.bundle / relative
        path.write_bytes(garble(operation, path.read_bytes()))
        return [path.name, str(path)]

    return apply


def json_file_mutations(template, relative):
    """Drop a key, set a key (known or not) to an odd JSON value, or garble the file's bytes."""
    keys = sorted(read_json_file(template.bundle / relative)) + ["fuzz_bogus_key"]
    return st.one_of(
        st.builds(drop_key, st.just(relative), st.sampled_from(keys)),
        st.builds(set_entry, st.just(relative), st.none(), st.sampled_from(keys), json_values | odd_strings),
        st.builds(rewrite_bytes_mutation, st.just(relative), garbles),
    )


def rewrite_bytes_mutation(relative, operation):
    return Mutation(f"{relative}: bytes {operation!r:.60}", rewrite_bytes(relative, operation))


def drop_key(relative, key):
    def edit(workspace, path, content):
        content.pop(key, None)
        return [key]

    return Mutation(f"{relative}: drop {key!r}", edit_json(relative, edit))


def set_entry(relative, table, entry, value):
    """Set ``entry`` of a JSON file's ``table`` (``files`` of nlpkit.json; None: the top level) to ``value``."""

    def edit(workspace, path, content):
        (content.setdefault(table, {}) if table else content)[entry] = value
        return [entry, f"files.{entry}", *value_fragments(value)]

    return Mutation(f"{relative}: {table or ''}.{entry} = {value!r:.80}", edit_json(relative, edit))


def escape_entry(relative, table, entry, name, used):
    """Point ``entry`` of a name table out of the bundle (an `escapes` name); refused if ``entry in used``."""

    def edit(workspace, path, content):
        directory = workspace.bundle if table else path.parent
        (content.setdefault(table, {}) if table else content)[entry] = resolve_escape(workspace, name, directory)
        return [entry, f"files.{entry}"]

    return Mutation(f"{relative}: {table or ''}.{entry} -> {name}", edit_json(relative, edit), escapes=entry in used)


def entry_mutations(relative, table, entries, used):
    return st.one_of(
        st.builds(set_entry, st.just(relative), st.just(table), st.sampled_from(entries), json_values | odd_strings),
        st.builds(escape_entry, st.just(relative), st.just(table), st.sampled_from(entries), escapes, st.just(used)),
    )


def symlink(target, kind):
    """Replace ``target`` (a file or assets/) by a symlink: out of the bundle (``absolute`` or
    ``relative`` to its decoy, or to the ``secret``: must be refused), to a renamed copy of itself
    (``inside``: fine), or to nothing (``dangling``)."""

    def apply(workspace):
        path = workspace.bundle / target
        decoy = workspace.outside if target == "assets" else workspace.outside / path.name
        if kind == "inside":
            path.rename(path.with_name(path.name + ".orig"))
            path.symlink_to(path.name + ".orig")
        else:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
            path.symlink_to({
                "absolute": decoy, "relative": os.path.relpath(decoy, path.parent), "secret": workspace.secret,
            }.get(kind, "fuzz-missing-file"))
        return [target, path.name, str(path)]

    return Mutation(f"symlink {target} ({kind})", apply, escapes=kind in ("absolute", "relative", "secret"))


def symlink_mutations(targets):
    return st.builds(symlink, st.sampled_from(targets),
                     st.sampled_from(["absolute", "relative", "secret", "inside", "dangling"]))


def vocabulary_mutation(relative, kind, count):
    """Token lists that do not fit the model: shifted past its embedding, cut short, duplicated."""

    def edit(workspace, path, content):
        old = content["tokens"]
        if kind == "prepend":
            content["tokens"] = [f"fuzz{i}" for i in range(count)] + old
        elif kind == "cut":
            content["tokens"] = old[:count]
        else:
            content["tokens"] = old + old[: count + 1]
        return ["tokens", "model.tflite", "vocabulary"]

    return Mutation(f"{relative}: tokens {kind} {count}", edit_json(relative, edit))


def vocabulary_mutations(relative):
    return st.builds(vocabulary_mutation, st.just(relative), st.sampled_from(["prepend", "cut", "duplicate"]),
                     st.integers(0, 3000))


def normalization_mutations(relative):
    def entry(char, replacement):
        def edit(workspace, path, content):
            content["table"][char] = replacement
            return ["table", *value_fragments(char)]

        return Mutation(f"{relative}: table[{char!r}] = {replacement!r:.40}", edit_json(relative, edit))

    replacements = st.text(max_size=4) | st.sampled_from([" ", "a b", "\x1b[31m"]) | repeated("x", 2000)
    return st.builds(entry, st.characters(), replacements)


def model_mutations():
    def model(kind, fraction):
        def apply(workspace):
            path = workspace.bundle / "model.tflite"
            source = {"int8": "model.int8.tflite", "keras": "model.keras", "manifest": "nlpkit.json"}.get(kind)
            data = path.read_bytes()
            path.write_bytes((workspace.bundle / source).read_bytes() if source else data[: int(fraction * len(data))])
            return ["model.tflite", str(path)]

        return Mutation(f"model.tflite: {kind} {fraction:.3f}", apply)

    return st.builds(model, st.sampled_from(["cut", "int8", "keras", "manifest"]), st.floats(0, 1))


# The names the tflite path reads: an escape through any of them must be refused.
USED_FILES = ("tflite", "assets")


def used_spec_entries(tagger):
    return ("vocabulary", "normalization", "char_vocabulary") if tagger else ("vocabulary", "normalization")


def asset_files(tagger):
    return ["assets/tokenizer.json", "assets/vocabulary.json", "assets/normalization.json",
            *(["assets/char_vocabulary.json"] if tagger else [])]


def escape_examples(tagger):
    """The escapes every run tries, besides the generated ones: each way out, once."""
    spec = "assets/tokenizer.json"
    used = used_spec_entries(tagger)
    return [
        escape_entry("nlpkit.json", "files", "tflite", "../outside/secret", USED_FILES),
        escape_entry("nlpkit.json", "files", "assets", "<abs-dir>", USED_FILES),
        escape_entry("nlpkit.json", "files", "tflite", "<link>", USED_FILES),
        escape_entry(spec, None, "vocabulary", "<abs>", used),
        escape_entry(spec, None, "normalization", "../outside/normalization.json", used),
        escape_entry(spec, None, used[-1], "<link>", used),
        symlink("nlpkit.json", "relative"),
        symlink("model.tflite", "secret"),
        symlink("assets", "absolute"),
        symlink(f"assets/{Path(asset_files(tagger)[-1]).name}", "absolute"),
    ]


def known_examples(tagger):
    """Mutations every run tries besides the generated ones: labels that do not fit the model,
    labels that would drive a terminal, an unknown tag scheme, a vocabulary past the embedding."""
    labels = ["O", "B-PER"] if tagger else ["negative"]
    return [
        set_entry("nlpkit.json", None, "labels", labels),
        set_entry("nlpkit.json", None, "labels", 5),
        set_entry("nlpkit.json", None, "task", ["classification"]),
        set_entry("nlpkit.json", None, "tag_scheme" if tagger else "raw_labels", 5 if tagger else [{}]),
        set_entry("assets/tokenizer.json", None, "type", []),
        drop_key("nlpkit.json", "labels"),
        vocabulary_mutation("assets/vocabulary.json", "prepend", 3000),
        rewrite_bytes_mutation("nlpkit.json", ("replace", b"[" * 100_000)),
        rewrite_bytes_mutation("assets/normalization.json", ("replace", b'{"a":' * 50_000)),
        *([] if tagger else [set_entry("nlpkit.json", None, "labels", ["\x1b]0;owned\x07", "\x9b2J\x1b[31m"])]),
    ]


def bundle_mutations(template, tagger):
    assets = asset_files(tagger)
    spec_entries = ["vocabulary", "normalization", "char_vocabulary", "type", "max_length", "max_word_length"]
    files = ["tflite", "assets", "keras", "saved_model", "tflite_int8", "fuzz_bogus"]
    return st.one_of(
        json_file_mutations(template, "nlpkit.json"),
        entry_mutations("nlpkit.json", "files", files, used=USED_FILES),
        st.sampled_from(assets).flatmap(lambda relative: json_file_mutations(template, relative)),
        entry_mutations("assets/tokenizer.json", None, spec_entries, used=used_spec_entries(tagger)),
        vocabulary_mutations("assets/vocabulary.json"),
        *([vocabulary_mutations("assets/char_vocabulary.json")] if tagger else []),
        normalization_mutations("assets/normalization.json"),
        symlink_mutations(["nlpkit.json", "model.tflite", "assets", *assets]),
        model_mutations(),
    )


def load_directly(bundle, inputs):
    """``load_predictor(bundle, format="tflite")`` then ``predict(inputs)``: None, or the clean error."""
    try:
        load_predictor(bundle, format="tflite").predict(inputs)
    except CLEAN_ERRORS as error:
        return error
    return None


@pytest.mark.parametrize("which, examples", [("sentiment", 90), ("ner", 60)])
def test_mutated_bundles_load_or_fail_naming_the_entry(which, examples, request, tmp_path, capsys, snapshot_tree):
    bundle = request.getfixturevalue("bundle_copy" if which == "sentiment" else "ner_bundle_copy")
    template = Workspace.template(tmp_path, bundle)
    inputs = ["Maria Keller flew to Oslo ."] if which == "ner" else ["a gripping film", ""]

    with record_opened() as opened:  # the recorder sees what it should
        (template.bundle / "nlpkit.json").read_bytes()
    assert opened == [str(template.bundle / "nlpkit.json")]

    @fuzz(examples)
    @given(mutation=bundle_mutations(template, tagger=which == "ner"), as_json=st.booleans())
    def check(mutation, as_json):
        workspace = template.clone(tmp_path)
        fragments = [str(workspace.bundle), *mutation.apply(workspace)]
        before = tree_state(workspace.root, snapshot_tree)
        with record_opened() as opened:
            error = load_directly(workspace.bundle, inputs)
            code, out, err = run_cli(capsys, ["predict", workspace.bundle, *(["--json"] if as_json else []), "--",
                                              *inputs])
        assert_not_opened_under(opened, workspace.outside)
        assert tree_state(workspace.root, snapshot_tree) == before
        assert MARKER not in out + err + str(error)
        assert "\x1b" not in err
        if error is not None:
            message = str(error)
            assert any(fragment in message for fragment in fragments), (fragments, message[:2000])
        if code == 2:
            assert_error(err, "predict", fragments)
        elif as_json:
            for line in out.splitlines():
                strict_json(line)
        else:
            assert not UNSAFE & set(out), repr(out[:300])
        if mutation.escapes:
            assert code == 2 and any(phrase in err for phrase in REFUSED), err[-2000:]
            assert error is not None and any(phrase in str(error) for phrase in REFUSED), error
        shutil.rmtree(workspace.root)

    for mutation in escape_examples(tagger=which == "ner") + known_examples(tagger=which == "ner"):
        check = example(mutation=mutation, as_json=False)(check)
    check()

