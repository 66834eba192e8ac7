"""The embedded sentiment sample: shape, balance, uniqueness, and the path helper."""

import pathlib

import pytest

from nlpkit.samples import available_samples, sample_path

SPLITS = ("train", "valid", "test")
EXPECTED_ROWS = {"train": 320, "valid": 60, "test": 60}


def _read_rows(name):
    # Split on tabs by hand: the files are deliberately not CSV-quoted, and one
    # sentence starts with '"', which csv's default dialect would swallow.
    text = sample_path(name).read_text(encoding="utf-8")
    lines = text.split("\n")
    assert lines[-1] == "", f"{name} must end with exactly one newline"
    return [line.split("\t") for line in lines[:-1]]


@pytest.fixture(scope="module")
def sentiment():
    return {split: _read_rows(f"sentiment_{split}.tsv") for split in SPLITS}


def test_sentiment_files_are_available():
    for split in SPLITS:
        path = sample_path(f"sentiment_{split}.tsv")
        assert isinstance(path, pathlib.Path)
        assert path.is_file()
        assert path.name in available_samples()


def test_header_and_two_fields_per_row(sentiment):
    for split, rows in sentiment.items():
        assert rows[0] == ["sentence", "label"], split
        for line_number, row in enumerate(rows[1:], start=2):
            assert len(row) == 2, f"{split}:{line_number}: {row!r}"
            sentence = row[0]
            assert sentence == sentence.strip() and sentence, f"{split}:{line_number}"
            assert "\r" not in sentence, f"{split}:{line_number}"
            assert 3 <= len(sentence.split()) <= 40, f"{split}:{line_number}: {sentence!r}"


def test_row_counts(sentiment):
    for split, rows in sentiment.items():
        assert len(rows) - 1 == EXPECTED_ROWS[split], split


def test_labels_are_binary_and_balanced(sentiment):
    for split, rows in sentiment.items():
        labels = [row[1] for row in rows[1:]]
        assert set(labels) <= {"0", "1"}, f"{split}: {sorted(set(labels))}"
        positives = labels.count("1")
        # Class counts may differ by at most 10% of the rows.
        assert abs(positives / len(labels) - 0.5) <= 0.05, f"{split}: {positives}/{len(labels)}"


def test_no_duplicate_sentences_within_or_across_files(sentiment):
    seen = {}
    for split, rows in sentiment.items():
        for line_number, (sentence, _) in enumerate(rows[1:], start=2):
            where = f"{split}:{line_number}"
            assert sentence not in seen, f"{sentence!r} at {where} and {seen.get(sentence)}"
            seen[sentence] = where


def test_some_sentences_are_not_ascii(sentiment):
    sentences = [row[0] for rows in sentiment.values() for row in rows[1:]]
    assert any(not sentence.isascii() for sentence in sentences)


def test_unknown_sample_lists_available_names():
    with pytest.raises(FileNotFoundError, match="no_such_file.tsv") as info:
        sample_path("no_such_file.tsv")
    assert "sentiment_train.tsv" in str(info.value)


def test_package_code_is_not_a_sample():
    with pytest.raises(FileNotFoundError):
        sample_path("__init__.py")


# ---------------------------------------------------------------------------------------------
# The embedded NER sample
# ---------------------------------------------------------------------------------------------

NER_SENTENCES = {"train": 300, "valid": 60, "test": 60}


@pytest.fixture(scope="module")
def ner():
    from nlpkit.data import read_conll

    return {split: read_conll(sample_path(f"ner_{split}.txt"), tag_scheme="BIO") for split in NER_SENTENCES}


def test_ner_files_are_available_and_end_with_one_newline():
    for split in NER_SENTENCES:
        path = sample_path(f"ner_{split}.txt")
        assert path.name in available_samples()
        text = path.read_text(encoding="utf-8")
        assert text.endswith("\n") and not text.endswith("\n\n\n")
        assert text.startswith("-DOCSTART- O\n\n")
        for number, line in enumerate(text.split("\n"), start=1):
            assert line == "" or len(line.split(" ")) == 2, f"{split}:{number}: {line!r}"


def test_ner_sentence_counts_and_well_formed_bio(ner):
    from nlpkit.text.tag_schemes import is_well_formed

    for split, sentences in ner.items():
        assert len(sentences) == NER_SENTENCES[split], split
        assert all(is_well_formed(sentence.tags, "BIO") for sentence in sentences), split
        types = {tag[2:] for sentence in sentences for tag in sentence.tags if tag != "O"}
        assert types == {"PER", "LOC", "ORG", "MISC"}, split


def test_ner_sentences_are_unique_across_files(ner):
    seen = {}
    for split, sentences in ner.items():
        for index, sentence in enumerate(sentences):
            text = " ".join(sentence.tokens)
            assert text not in seen, f"{text!r} in {split} and {seen.get(text)}"
            seen[text] = f"{split}:{index}"


def test_ner_held_out_splits_have_unseen_names(ner):
    train_words = {token for sentence in ner["train"] for token in sentence.tokens}
    for split in ("valid", "test"):
        unseen = {
            token
            for sentence in ner[split]
            for token, tag in zip(sentence.tokens, sentence.tags)
            if tag != "O" and token not in train_words
        }
        assert len(unseen) >= 10, (split, unseen)
    assert any(not token.isascii() for sentence in ner["train"] for token in sentence.tokens)


# ---------------------------------------------------------------------------------------------
# Language-model sample (prose written for nlpkit, one sentence per line)
# ---------------------------------------------------------------------------------------------

LM_SPLITS = ("train", "valid", "test")


def test_language_model_sample_files():
    seen = {}
    total = 0
    for split in LM_SPLITS:
        text = sample_path(f"lm_{split}.txt").read_text(encoding="utf-8")
        total += len(text)
        assert text.endswith("\n") and not text.endswith("\n\n"), split
        for number, line in enumerate(text.split("\n")[:-1], start=1):
            assert line == line.strip() and line, f"{split}:{number}"
            assert line[-1] in ".!?", f"{split}:{number}: {line!r}"
            assert line not in seen, f"{line!r} at {split}:{number} and {seen[line]}"
            seen[line] = f"{split}:{number}"
    assert 4000 <= total <= 20000


# ---------------------------------------------------------------------------------------------
# German-English translation sample
# ---------------------------------------------------------------------------------------------

TRANSLATION_PAIRS = {"train": 400, "valid": 50, "test": 50}


@pytest.fixture(scope="module")
def translation():
    from nlpkit.data import read_parallel_tsv

    return {
        split: read_parallel_tsv(sample_path(f"translation_{split}.tsv"), "de", "en")
        for split in TRANSLATION_PAIRS
    }


def test_translation_sample_shape(translation):
    for split, pairs in translation.items():
        text = sample_path(f"translation_{split}.tsv").read_text(encoding="utf-8")
        assert text.startswith("de\ten\n") and text.endswith(".\n") and "\r" not in text, split
        assert len(pairs) == TRANSLATION_PAIRS[split], split
        for index, (german, english) in enumerate(pairs):
            for sentence in (german, english):
                assert sentence == sentence.strip() and sentence[-1] == ".", f"{split}:{index}"
                assert 3 <= len(sentence.split()) <= 20, f"{split}:{index}: {sentence!r}"


def test_translation_sample_sources_are_unique_and_german(translation):
    seen = {}
    for split, pairs in translation.items():
        for index, (german, _) in enumerate(pairs):
            assert german not in seen, f"{german!r} in {split} and {seen[german]}"
            seen[german] = f"{split}:{index}"
    german_text = " ".join(pair.source for pairs in translation.values() for pair in pairs)
    english_text = " ".join(pair.target for pairs in translation.values() for pair in pairs)
    # Umlauts and sharp s on the German side only: the columns are not swapped.
    assert set("äöüß") <= set(german_text.lower())
    assert not set("äöüß") & set(english_text.lower())


def test_read_parallel_tsv_names_missing_language_and_bad_rows(tmp_path):
    from nlpkit.data import read_parallel_tsv
    from nlpkit.errors import DataFormatError

    with pytest.raises(DataFormatError, match="'fr' is not a column"):
        read_parallel_tsv(sample_path("translation_valid.tsv"), "fr", "en")
    broken = tmp_path / "broken.tsv"
    broken.write_text("de\ten\nEin Hund.\tA dog.\nKaputt\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="expected 2 tab-separated fields"):
        read_parallel_tsv(broken, "de", "en")
    reversed_pairs = read_parallel_tsv(sample_path("translation_valid.tsv"), "en", "de")
    assert reversed_pairs[0].target.startswith(("Ein", "Eine", "Zwei", "Drei", "Einige", "Am", "Heute", "Im"))
