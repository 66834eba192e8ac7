"""Tag schemes: the chunk rule against seqeval (conlleval's port), conversions, validation."""

import doctest
import itertools
import random

import pytest
from seqeval.metrics.sequence_labeling import end_of_chunk, get_entities, start_of_chunk

from nlpkit.text import tag_schemes
from nlpkit.text.tag_schemes import (
    SCHEMES,
    TagSchemeError,
    chunk_boundary,
    convert_tags,
    extract_spans,
    is_allowed_transition,
    is_well_formed,
    normalize_scheme,
    parse_tag,
    scheme_tags,
    spans_to_tags,
    validate_tags,
)

TYPES = ("PER", "LOC", "ORG")
PREFIXES = {"IOB1": "BI", "BIO": "BI", "BIOES": "BIES"}


def random_tags(rng, length, scheme, outside=0.4):
    """Any mix of the scheme's tags: mostly malformed, which is the point."""
    return [
        "O"
        if rng.random() < outside
        else f"{rng.choice(PREFIXES[scheme])}-{rng.choice(TYPES)}"
        for _ in range(length)
    ]


def random_spans(rng, length):
    """Non-overlapping chunks, often adjacent and often of one type (where IOB1 needs B-)."""
    spans = []
    position = 0
    while position < length:
        if rng.random() < 0.4:
            position += 1
            continue
        end = min(length, position + rng.randint(1, 4))
        spans.append((rng.choice(TYPES[:2]), position, end))
        position = end
    return spans


def test_doctests():
    assert doctest.testmod(tag_schemes).failed == 0


@pytest.mark.parametrize(
    "name, expected",
    [("bio", "BIO"), ("IOB2", "BIO"), ("iob1", "IOB1"), ("BIOES", "BIOES"), ("iobes", "BIOES")],
)
def test_normalize_scheme_accepts_aliases(name, expected):
    assert normalize_scheme(name) == expected


@pytest.mark.parametrize("name", ["BILOU", "", None, 3])
def test_normalize_scheme_names_the_bad_value(name):
    with pytest.raises(TagSchemeError, match=repr(name).replace("[", r"\[")):
        normalize_scheme(name)


def test_parse_tag():
    assert parse_tag("O") == ("O", None)
    assert parse_tag("B-PER", "BIO") == ("B", "PER")
    assert parse_tag("S-LOC") == ("S", "LOC")
    # The type is everything after the first dash, as in seqeval and conlleval.
    assert parse_tag("I-ORG-X", "IOB1") == ("I", "ORG-X")


@pytest.mark.parametrize("scheme", ["BIO", "IOB1"])
@pytest.mark.parametrize("tag", ["E-PER", "S-PER"])
def test_end_and_single_tags_are_bioes_only(scheme, tag):
    with pytest.raises(TagSchemeError, match=f"'{tag}' at position 2 is not a {scheme} tag"):
        validate_tags(["O", "B-PER", tag], scheme)
    assert validate_tags(["O", "B-PER", tag], "BIOES") == ["O", "B-PER", tag]


@pytest.mark.parametrize(
    "tag", ["B-", "b-PER", "PER", "O-PER", "B-PER X", "B_PER", "", "o", None, 1]
)
def test_malformed_tags_are_named(tag):
    with pytest.raises(TagSchemeError, match=f"tag {repr(tag).replace('-', '.')} at position 1"):
        extract_spans(["O", tag], "BIOES")


def test_a_string_is_not_a_tag_sequence():
    with pytest.raises(TagSchemeError, match="the string 'B-PER'"):
        extract_spans("B-PER")


def test_chunk_boundary_equals_seqeval_on_every_pair():
    """Exhaustive over prefixes x types: the one rule everything else is built on."""
    tags = ["O"] + [f"{p}-{t}" for p in "BIES" for t in ("PER", "LOC")]
    for previous, tag in itertools.product(tags, repeat=2):
        # seqeval's internal representation: prefix letter, type ("_" for O).
        prev_prefix, prev_type = previous[0], previous[2:] or "_"
        prefix, type_ = tag[0], tag[2:] or "_"
        expected = (
            end_of_chunk(prev_prefix, prefix, prev_type, type_),
            start_of_chunk(prev_prefix, prefix, prev_type, type_),
        )
        assert chunk_boundary(previous, tag) == expected, (previous, tag)


def test_extract_spans_hand_cases():
    # BIO, malformed: an I- start, a type switch inside a chunk, B- right after I- of one type.
    assert extract_spans(["I-PER", "I-PER", "I-LOC", "B-LOC", "I-LOC", "O", "I-ORG"]) == [
        ("PER", 0, 2),
        ("LOC", 2, 3),
        ("LOC", 3, 5),
        ("ORG", 6, 7),
    ]
    # IOB1: B- separates adjacent chunks of one type.
    assert extract_spans(["I-PER", "I-PER", "B-PER", "O"], "IOB1") == [("PER", 0, 2), ("PER", 2, 3)]
    # BIOES, malformed: an E- without B-, an unfinished B-, an I- after S-.
    assert extract_spans(["E-PER", "E-PER", "B-LOC", "O", "S-ORG", "I-ORG", "E-ORG"], "BIOES") == [
        ("PER", 0, 1),
        ("PER", 1, 2),
        ("LOC", 2, 3),
        ("ORG", 4, 5),
        ("ORG", 5, 7),
    ]
    assert extract_spans([]) == []
    assert extract_spans(["O", "O"]) == []


@pytest.mark.parametrize("scheme", SCHEMES)
def test_extract_spans_equals_seqeval_on_random_sequences(scheme):
    rng = random.Random(f"extract-{scheme}")
    for _ in range(1500):
        tags = random_tags(rng, rng.randint(0, 12), scheme)
        expected = [(t, start, end + 1) for t, start, end in get_entities(tags)]
        assert extract_spans(tags, scheme) == expected, tags


@pytest.mark.parametrize("scheme", SCHEMES)
def test_spans_to_tags_round_trips_and_is_well_formed(scheme):
    rng = random.Random(f"spans-{scheme}")
    for _ in range(800):
        length = rng.randint(0, 12)
        spans = random_spans(rng, length)
        tags = spans_to_tags(spans, length, scheme)
        assert len(tags) == length
        assert extract_spans(tags, scheme) == spans, (spans, tags)
        assert is_well_formed(tags, scheme), tags


@pytest.mark.parametrize("source, target", list(itertools.product(SCHEMES, repeat=2)))
def test_conversion_round_trips_on_well_formed_sequences(source, target):
    rng = random.Random(f"convert-{source}-{target}")
    for _ in range(300):
        length = rng.randint(0, 12)
        spans = random_spans(rng, length)
        tags = spans_to_tags(spans, length, source)
        converted = convert_tags(tags, source, target)
        assert extract_spans(converted, target) == spans
        assert is_well_formed(converted, target)
        assert convert_tags(converted, target, source) == tags, (tags, converted)


@pytest.mark.parametrize("source, target", list(itertools.product(SCHEMES, repeat=2)))
def test_conversion_of_malformed_input_keeps_conlleval_chunks(source, target):
    rng = random.Random(f"malformed-{source}-{target}")
    for _ in range(300):
        tags = random_tags(rng, rng.randint(0, 12), source)
        converted = convert_tags(tags, source, target)
        assert extract_spans(converted, target) == extract_spans(tags, source), (tags, converted)
        assert is_well_formed(converted, target)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_well_formed_exactly_when_conversion_to_itself_is_identity(scheme):
    rng = random.Random(f"identity-{scheme}")
    seen = set()
    for _ in range(1500):
        tags = random_tags(rng, rng.randint(0, 6), scheme)
        well_formed = is_well_formed(tags, scheme)
        seen.add(well_formed)
        assert well_formed == (convert_tags(tags, scheme, scheme) == tags), tags
    assert seen == {True, False}


def test_conversion_examples():
    bio = ["B-PER", "I-PER", "B-PER", "O"]
    assert convert_tags(["O", "I-PER", "I-PER", "I-LOC"], "BIO", "BIO") == [
        "O", "B-PER", "I-PER", "B-LOC"
    ]
    assert convert_tags(bio, "BIO", "IOB1") == ["I-PER", "I-PER", "B-PER", "O"]
    assert convert_tags(bio, "IOB2", "IOBES") == ["B-PER", "E-PER", "S-PER", "O"]
    assert convert_tags(["S-PER", "B-LOC", "E-LOC"], "BIOES", "IOB1") == ["I-PER", "I-LOC", "I-LOC"]
    with pytest.raises(TagSchemeError, match="'S-PER' at position 0 is not a BIO tag"):
        convert_tags(["S-PER"], "BIO", "BIOES")


@pytest.mark.parametrize(
    "scheme, previous, tag, allowed",
    [
        ("BIO", "O", "I-PER", False),
        ("BIO", "B-PER", "I-PER", True),
        ("BIO", "I-PER", "I-PER", True),
        ("BIO", "I-LOC", "I-PER", False),
        ("BIO", "O", "B-PER", True),
        ("BIO", "I-PER", "O", True),
        ("IOB1", "O", "I-PER", True),
        ("IOB1", "O", "B-PER", False),
        ("IOB1", "I-PER", "B-PER", True),
        ("IOB1", "I-LOC", "B-PER", False),
        ("IOB1", "I-LOC", "I-PER", True),
        ("BIOES", "O", "I-PER", False),
        ("BIOES", "O", "E-PER", False),
        ("BIOES", "B-PER", "O", False),
        ("BIOES", "I-PER", "E-PER", True),
        ("BIOES", "B-PER", "E-LOC", False),
        ("BIOES", "B-PER", "S-PER", False),
        ("BIOES", "E-PER", "S-PER", True),
        ("BIOES", "S-PER", "B-LOC", True),
        ("BIOES", "E-PER", "O", True),
    ],
)
def test_is_allowed_transition(scheme, previous, tag, allowed):
    assert is_allowed_transition(previous, tag, scheme) is allowed


def test_is_allowed_transition_names_a_bad_tag():
    with pytest.raises(TagSchemeError, match="'E-PER' .previous tag. is not a BIO tag"):
        is_allowed_transition("E-PER", "O", "BIO")


def test_scheme_tags():
    assert scheme_tags(["PER", "LOC", "PER"], "BIO") == ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    assert scheme_tags([], "BIOES") == ["O"]
    for bad in ("PER", ["PER", ""], ["A B"], [None]):
        with pytest.raises(TagSchemeError):
            scheme_tags(bad)


@pytest.mark.parametrize(
    "spans, message",
    [
        ([("PER", 0, 2), ("LOC", 1, 3)], "overlaps"),
        ([("PER", 2, 2)], "0 <= start < end"),
        ([("PER", 3, 5)], r"length \(4\)"),
        ([("", 0, 1)], "non-empty"),
        ([("PER", 0)], r"\(type, start, end\)"),
    ],
)
def test_spans_to_tags_refuses_bad_spans(spans, message):
    with pytest.raises(TagSchemeError, match=message):
        spans_to_tags(spans, 4)


def test_spans_to_tags_accepts_any_order():
    assert spans_to_tags([("LOC", 2, 3), ("PER", 0, 2)], 3, "BIOES") == ["B-PER", "E-PER", "S-LOC"]


@pytest.mark.parametrize(
    "sequences, scheme",
    [
        ([["B-PER", "I-PER", "O"], ["B-LOC"]], "BIO"),
        ([["I-PER", "I-PER", "O"], ["I-LOC", "B-LOC"]], "IOB1"),
        ([["B-PER", "E-PER"], ["O"]], "BIOES"),
        ([["O", "O"], []], "BIO"),
        ([["O", "I-PER"], ["B-LOC"]], "BIO"),  # neither: malformed, read the conlleval way
    ],
)
def test_detect_scheme(sequences, scheme):
    assert tag_schemes.detect_scheme(sequences) == scheme


def test_detect_scheme_refuses_tags_outside_every_scheme():
    with pytest.raises(TagSchemeError, match="'PER'"):
        tag_schemes.detect_scheme([["PER"]])
