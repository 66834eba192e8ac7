"""Tests for nlpkit.data.readers on small files written into tmp_path."""

import gzip
import re

import pytest

from nlpkit.data.readers import (
    LabelledText,
    ParallelPair,
    TaggedSentence,
    iter_lines,
    read_classification,
    read_conll,
    read_lines,
    read_parallel,
    read_text,
)
from nlpkit.errors import DataFormatError


def write(path, content):
    """Writes str (as UTF-8) or bytes to ``path`` and returns the path."""
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def write_gzip(path, content):
    path.write_bytes(gzip.compress(content.encode("utf-8")))
    return path


# ---------------------------------------------------------------------------------------------
# iter_lines / read_text / read_lines
# ---------------------------------------------------------------------------------------------


def test_iter_lines_numbers_from_one_and_strips_line_endings(tmp_path):
    path = write(tmp_path / "a.txt", "first\r\nsecond\n\nlast without newline")
    assert list(iter_lines(path)) == [
        (1, "first"),
        (2, "second"),
        (3, ""),
        (4, "last without newline"),
    ]


def test_iter_lines_keeps_inner_carriage_return_and_strips_only_one(tmp_path):
    path = write(tmp_path / "a.txt", "a\rb\r\r\n")
    assert list(iter_lines(path)) == [(1, "a\rb\r")]


def test_iter_lines_drops_bom_on_first_line_only(tmp_path):
    path = write(tmp_path / "bom.txt", "\ufeffhello\n\ufeffworld\n")
    assert read_lines(path) == ["hello", "\ufeffworld"]


def test_gzip_is_detected_by_magic_bytes_not_suffix(tmp_path):
    hidden = write_gzip(tmp_path / "looks_plain.txt", "zwei\nzeilen\n")
    assert read_lines(hidden) == ["zwei", "zeilen"]
    assert read_text(hidden) == "zwei\nzeilen\n"
    # A .gz name on plain text must not trigger decompression either.
    fake = write(tmp_path / "plain.txt.gz", "not compressed\n")
    assert read_lines(fake) == ["not compressed"]


def test_invalid_utf8_in_middle_names_file_line_and_offset(tmp_path):
    path = write(tmp_path / "broken.txt", b"ok line\nfine too\nabc\xffdef\nnever reached\n")
    with pytest.raises(DataFormatError) as info:
        list(iter_lines(path))
    message = str(info.value)
    assert "broken.txt:3" in message
    assert "offset 3" in message
    assert "ff" in message
    assert info.value.line == 3


def test_read_text_reports_same_line_and_offset_as_iter_lines(tmp_path):
    path = write(tmp_path / "broken.txt", b"ok line\nfine too\nabc\xffdef\nnever reached\n")
    with pytest.raises(DataFormatError, match=r"broken\.txt:3: .*offset 3"):
        read_text(path)
    gz = tmp_path / "broken.bin"
    gz.write_bytes(gzip.compress(b"x\n\xc3(\n"))
    with pytest.raises(DataFormatError, match=r"broken\.bin:2: .*offset 0"):
        read_text(gz)


def test_read_text_keeps_line_endings_and_drops_bom(tmp_path):
    path = write(tmp_path / "t.txt", "\ufeffa\r\nb\n")
    assert read_text(path) == "a\r\nb\n"


def test_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.tsv"
    for call in (read_text, read_lines, lambda p: list(iter_lines(p)), read_classification):
        with pytest.raises(FileNotFoundError, match="nope.tsv"):
            call(missing)


def test_corrupt_gzip_is_a_data_format_error(tmp_path):
    data = gzip.compress(b"line one\nline two\n" * 100)
    path = write(tmp_path / "cut.gz", data[: len(data) // 2])
    with pytest.raises(DataFormatError, match="cut.gz"):
        read_lines(path)


# ---------------------------------------------------------------------------------------------
# read_classification
# ---------------------------------------------------------------------------------------------


def test_named_columns_with_header(tmp_path):
    path = write(tmp_path / "train.tsv", "sentence\tlabel\ngood film \t1\nbad film \t0\n")
    assert read_classification(path) == [
        LabelledText("good film ", "1"),
        LabelledText("bad film ", "0"),
    ]


def test_named_columns_in_any_order(tmp_path):
    path = write(tmp_path / "train.tsv", "label\trating\tid\ttext\n0\t3\t7\tdull\n1\t9\t8\tgreat\n")
    rows = read_classification(path, text_column="text", label_column="label")
    assert rows == [LabelledText("dull", "0"), LabelledText("great", "1")]


def test_named_column_missing_from_header_lists_header(tmp_path):
    path = write(tmp_path / "train.tsv", "text\tpolarity\nfine\t1\n")
    with pytest.raises(DataFormatError) as info:
        read_classification(path)
    message = str(info.value)
    assert "train.tsv:1" in message
    assert "'sentence'" in message
    assert "['text', 'polarity']" in message


def test_int_columns_detect_header(tmp_path):
    path = write(tmp_path / "with_header.tsv", "sentence\tlabel\na\t0\nb\t1\nc\t0\n")
    assert read_classification(path, 0, 1) == [
        LabelledText("a", "0"),
        LabelledText("b", "1"),
        LabelledText("c", "0"),
    ]


def test_int_columns_detect_no_header(tmp_path):
    path = write(tmp_path / "no_header.tsv", "a\t0\nb\t1\nc\t0\n")
    assert [row.text for row in read_classification(path, 0, 1)] == ["a", "b", "c"]


def test_int_columns_negative_index_and_label_first(tmp_path):
    path = write(tmp_path / "x.tsv", "pos\tnice one\nneg\tawful\npos\tfine\n")
    rows = read_classification(path, text_column=-1, label_column=0)
    assert rows == [
        LabelledText("nice one", "pos"),
        LabelledText("awful", "neg"),
        LabelledText("fine", "pos"),
    ]


def test_explicit_has_header_overrides_detection(tmp_path):
    # "0" also occurs as a later label, so detection would call the first row data.
    path = write(tmp_path / "x.tsv", "zero\t0\na\t0\n")
    assert len(read_classification(path, 0, 1)) == 2
    assert read_classification(path, 0, 1, has_header=True) == [LabelledText("a", "0")]
    # ...and a header-looking first row can be forced to be data.
    path = write(tmp_path / "y.tsv", "text\tlabel\na\t0\n")
    assert read_classification(path, 0, 1, has_header=False)[0] == LabelledText("text", "label")


def test_named_columns_with_has_header_false_is_rejected(tmp_path):
    path = write(tmp_path / "x.tsv", "a\t0\n")
    with pytest.raises(ValueError, match="need a header"):
        read_classification(path, has_header=False)


def test_quotes_are_literal_by_default(tmp_path):
    content = 'sentence\tlabel\nthe "best" film\t1\n"unbalanced quote\t0\nit\'s ok\t1\n'
    rows = read_classification(write(tmp_path / "q.tsv", content))
    assert [row.text for row in rows] == ['the "best" film', '"unbalanced quote', "it's ok"]


def test_csv_delimiter_from_name_and_standard_quoting(tmp_path):
    content = 'text,label\n"hello, world",1\n"multi\nline ""quoted""",0\nplain,1\n'
    rows = read_classification(write(tmp_path / "x.csv", content), "text", "label", quoting=True)
    assert rows == [
        LabelledText("hello, world", "1"),
        LabelledText('multi\nline "quoted"', "0"),
        LabelledText("plain", "1"),
    ]


def test_quoted_csv_error_line_is_the_record_start(tmp_path):
    content = 'text,label\n"multi\nline",0\nthree,fields,1\n'
    with pytest.raises(DataFormatError, match=r"x\.csv:4: expected 2 comma-separated fields"):
        read_classification(write(tmp_path / "x.csv", content), "text", "label", quoting=True)


def test_gzipped_tsv(tmp_path):
    path = write_gzip(tmp_path / "train.tsv.gz", "label\ttext\n1\tgreat\n0\tpoor\n")
    rows = read_classification(path, text_column="text")
    assert rows == [LabelledText("great", "1"), LabelledText("poor", "0")]


def test_csv_gz_suffix_selects_comma(tmp_path):
    path = write_gzip(tmp_path / "train.csv.gz", "sentence,label\nfine,1\n")
    assert read_classification(path) == [LabelledText("fine", "1")]


def test_empty_text_kept_and_blank_lines_skipped(tmp_path):
    path = write(tmp_path / "x.tsv", "sentence\tlabel\n\t1\n\nabc\t0\n")
    assert read_classification(path) == [LabelledText("", "1"), LabelledText("abc", "0")]


def test_missing_label_reports_line(tmp_path):
    path = write(tmp_path / "x.tsv", "sentence\tlabel\ngood\t1\nbad\t \n")
    with pytest.raises(DataFormatError, match=r"x\.tsv:3: empty label"):
        read_classification(path)


def test_wrong_field_count_reports_line_and_counts(tmp_path):
    path = write(tmp_path / "x.tsv", "sentence\tlabel\ngood\t1\nno label here\n")
    with pytest.raises(DataFormatError) as info:
        read_classification(path)
    assert info.value.line == 3
    assert re.search(r"x\.tsv:3: expected 2 tab-separated fields .* found 1", str(info.value))
    path = write(tmp_path / "y.tsv", "sentence\tlabel\na\tb\t1\n")
    with pytest.raises(DataFormatError, match=r"y\.tsv:2: .*found 3"):
        read_classification(path)


def test_int_column_out_of_range(tmp_path):
    path = write(tmp_path / "x.tsv", "a\t0\n")
    with pytest.raises(DataFormatError, match="out of range"):
        read_classification(path, 0, 5)


def test_same_text_and_label_column_rejected(tmp_path):
    path = write(tmp_path / "x.tsv", "a\t0\n")
    with pytest.raises(ValueError, match="same column"):
        read_classification(path, 1, -1)


def test_empty_file_gives_no_rows(tmp_path):
    assert read_classification(write(tmp_path / "x.tsv", "")) == []


# ---------------------------------------------------------------------------------------------
# read_conll
# ---------------------------------------------------------------------------------------------

CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER
-DOCSTART- -X- -X- O

BRUSSELS NNP B-NP B-LOC


"""


def test_conll_sentences_and_docstart(tmp_path):
    sentences = read_conll(write(tmp_path / "c.txt", CONLL))
    assert sentences == [
        TaggedSentence(["EU", "rejects", "German"], ["B-ORG", "O", "B-MISC"]),
        TaggedSentence(["Peter", "Blackburn"], ["B-PER", "I-PER"]),
        TaggedSentence(["BRUSSELS"], ["B-LOC"], document=1),
    ]


def test_conll_other_columns_and_no_docstart_handling(tmp_path):
    path = write(tmp_path / "c.txt", CONLL)
    pos = read_conll(path, tag_column=1)
    assert pos[0].tags == ["NNP", "VBZ", "JJ"]
    kept = read_conll(path, docstart=None)
    assert kept[0] == TaggedSentence(["-DOCSTART-"], ["O"])
    # The second -DOCSTART- has no blank line before it, so it joins the Peter sentence.
    assert kept[2].tokens == ["Peter", "Blackburn", "-DOCSTART-"]


def test_conll_tab_separator_keeps_spaces_in_tokens(tmp_path):
    path = write(tmp_path / "c.tsv", "New York\tB-LOC\nis\tO\n")
    assert read_conll(path, separator="\t") == [
        TaggedSentence(["New York", "is"], ["B-LOC", "O"])
    ]


def test_conll_column_count_error(tmp_path):
    path = write(tmp_path / "c.txt", "-DOCSTART- O\n\nEU NNP B-ORG\nrejects O\n")
    with pytest.raises(DataFormatError) as info:
        read_conll(path)
    message = str(info.value)
    assert "c.txt:4" in message
    assert "expected 3 columns" in message
    assert "found 2" in message


def test_conll_invalid_tag(tmp_path):
    path = write(tmp_path / "c.txt", "EU NNP B-ORG\n\nrejects VBZ B-ORGANISATION\n")
    with pytest.raises(DataFormatError) as info:
        read_conll(path, valid_tags={"O", "B-ORG", "I-ORG"})
    assert info.value.line == 3
    assert "c.txt:3" in str(info.value)
    assert "'B-ORGANISATION'" in str(info.value)


def test_conll_column_out_of_range(tmp_path):
    path = write(tmp_path / "c.txt", "EU B-ORG\n")
    with pytest.raises(DataFormatError, match=r"c\.txt:1: tag column 3 is out of range"):
        read_conll(path, tag_column=3)


def test_conll_gzip_and_crlf(tmp_path):
    path = write_gzip(tmp_path / "c.bin", "EU B-ORG\r\nrejects O\r\n\r\n")
    assert read_conll(path) == [TaggedSentence(["EU", "rejects"], ["B-ORG", "O"])]


# ---------------------------------------------------------------------------------------------
# read_parallel
# ---------------------------------------------------------------------------------------------


def test_parallel_pairs(tmp_path):
    de = write(tmp_path / "val.de", "Ein Hund läuft.\nZwei Männer.\n")
    en = write_gzip(tmp_path / "val.en", "A dog runs.\nTwo men.")
    assert read_parallel(de, en) == [
        ParallelPair("Ein Hund läuft.", "A dog runs."),
        ParallelPair("Zwei Männer.", "Two men."),
    ]


@pytest.mark.parametrize("longer", ["source", "target"])
def test_parallel_length_mismatch_names_both_files_and_line(tmp_path, longer):
    three = "a\nb\nc\n"
    two = "x\ny\n"
    src = write(tmp_path / "train.de", three if longer == "source" else two)
    tgt = write(tmp_path / "train.en", two if longer == "source" else three)
    with pytest.raises(DataFormatError) as info:
        read_parallel(src, tgt)
    message = str(info.value)
    assert "train.de" in message and "train.en" in message
    assert "line 3" in message
    assert info.value.line == 3


@pytest.mark.parametrize(
    "scheme, content, bad_line, bad_tag",
    [
        ("BIO", "Ann B-PER\nLee E-PER\n", 2, "'E-PER'"),
        ("BIO", "Ann PER\n", 1, "'PER'"),
        ("IOB1", "Ann I-PER\n\nLee B_PER\n", 3, "'B_PER'"),
        ("BIOES", "Ann S-PER\nx B-\n", 2, "'B-'"),
    ],
)
def test_conll_tag_scheme_names_file_and_line(tmp_path, scheme, content, bad_line, bad_tag):
    path = write(tmp_path / "c.txt", content)
    with pytest.raises(DataFormatError) as info:
        read_conll(path, tag_scheme=scheme)
    assert info.value.line == bad_line
    assert f"c.txt:{bad_line}" in str(info.value) and bad_tag in str(info.value)
    assert f"not a {scheme} tag" in str(info.value)


def test_conll_tag_scheme_accepts_its_tags_and_checks_the_name(tmp_path):
    path = write(tmp_path / "c.txt", "Ann I-PER\nLee I-PER\n\nOslo B-LOC\n")
    assert len(read_conll(path, tag_scheme="iob2")) == 2
    with pytest.raises(ValueError, match="'BILOU'"):
        read_conll(path, tag_scheme="BILOU")


def test_quoted_csv_field_count_error_hints_at_quoting(tmp_path):
    path = write(tmp_path / "q.csv", 'text,label\nplain,0\n"a, b",1\n')
    with pytest.raises(DataFormatError) as info:
        read_classification(path, "text", "label")
    message = str(info.value)
    assert info.value.line == 3
    assert "q.csv:3: expected 2 comma-separated fields" in message and "found 3" in message
    assert "the line contains '\"'" in message and "--quoting csv (quoting=True)" in message
    assert read_classification(path, "text", "label", quoting=True)[1] == LabelledText("a, b", "1")


def test_field_count_error_without_quotes_has_no_quoting_hint(tmp_path):
    path = write(tmp_path / "x.csv", "text,label\na, b,1\n")
    with pytest.raises(DataFormatError) as info:
        read_classification(path, "text", "label")
    assert "found 3" in str(info.value) and "--quoting" not in str(info.value)


def test_conll_line_of_only_a_bom_is_blank(tmp_path):
    path = write(tmp_path / "c.txt", "\ufeffEU B-ORG\nrejects O\n\nPeter B-PER\n\ufeff\n  \ufeff \nBlackburn I-PER\n\ufeff")
    assert read_conll(path) == [
        TaggedSentence(["EU", "rejects"], ["B-ORG", "O"]),
        TaggedSentence(["Peter"], ["B-PER"]),
        TaggedSentence(["Blackburn"], ["I-PER"]),
    ]
    gzipped = write_gzip(tmp_path / "c.gz", "\ufeffEU B-ORG\n\ufeff\n")
    assert read_conll(gzipped) == [TaggedSentence(["EU"], ["B-ORG"])]
