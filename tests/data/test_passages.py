"""Tests for nlpkit/data/passages.py (sentences of a document joined into passages)."""

import pytest

from nlpkit.data import TaggedSentence, join_passages, passage_groups, read_conll, split_passages


def sentence(length, document=0, tag="O"):
    return TaggedSentence([f"w{document}.{index}" for index in range(length)], [tag] * length, document)


def test_groups_fill_up_to_the_budget_within_a_document():
    rows = [sentence(3), sentence(4), sentence(2), sentence(5), sentence(1, document=1), sentence(1, document=1)]
    assert passage_groups(rows, max_tokens=9) == [[0, 1, 2], [3], [4, 5]]
    # A sentence longer than the budget stands alone; the next one starts a new passage.
    assert passage_groups([sentence(2), sentence(12), sentence(2)], max_tokens=5) == [[0], [1], [2]]
    # A budget of 0 (or less) keeps every sentence by itself.
    assert passage_groups(rows, max_tokens=0) == [[index] for index in range(len(rows))]
    assert passage_groups([], max_tokens=10) == []


def test_passages_never_cross_documents_and_keep_every_token_in_order():
    rows = [sentence(length, document) for document, length in [(0, 3), (0, 2), (1, 4), (2, 1), (2, 6), (2, 2)]]
    groups = passage_groups(rows, max_tokens=100)
    assert groups == [[0, 1], [2], [3, 4, 5]]
    passages = join_passages(rows, groups)
    assert [passage.document for passage in passages] == [0, 1, 2]
    assert [token for passage in passages for token in passage.tokens] == [t for row in rows for t in row.tokens]
    for passage, group in zip(passages, groups):
        assert len({rows[index].document for index in group}) == 1
        assert passage.tags == [tag for index in group for tag in rows[index].tags]


def test_split_gives_each_sentence_its_own_values():
    rows = [sentence(2, tag="S-PER"), sentence(3, tag="O"), sentence(1, tag="S-LOC")]
    groups = passage_groups(rows, max_tokens=6)
    per_passage = [passage.tags for passage in join_passages(rows, groups)]
    assert split_passages(per_passage, rows, groups) == [row.tags for row in rows]


def test_split_rejects_values_that_do_not_fit_the_passages():
    rows = [sentence(2), sentence(3)]
    groups = [[0, 1]]
    with pytest.raises(ValueError, match="a passage of 5 tokens got 4 values"):
        split_passages([["O"] * 4], rows, groups)
    with pytest.raises(ValueError, match="values for 2 passages, but there are 1 groups"):
        split_passages([["O"] * 2, ["O"] * 3], rows, groups)
    with pytest.raises(ValueError, match=r"sentences \[1\] are in no group"):
        split_passages([["O"] * 2], rows, [[0]])


def test_documents_of_a_conll_file_become_passages(tmp_path):
    path = tmp_path / "docs.txt"
    path.write_text(
        "-DOCSTART- O\n\nSOCCER O\n- O\nJAPAN B-LOC\n\nJapan B-LOC\nwon O\n\n"
        "-DOCSTART- O\n\n-DOCSTART- O\n\nOslo B-LOC\n",
        encoding="utf-8",
    )
    rows = read_conll(path)
    assert [row.document for row in rows] == [0, 0, 1]  # the empty document is not counted
    passages = join_passages(rows, passage_groups(rows, max_tokens=64))
    assert [passage.tokens for passage in passages] == [["SOCCER", "-", "JAPAN", "Japan", "won"], ["Oslo"]]
