"""Passages: consecutive sentences of one document joined into one tagging sequence.

A tagger that reads a passage sees the sentences around each sentence: the headline above a
results table, the earlier full mention of a name ("Wasim Akram" before "Akram"). Passages
never cross a document boundary (``TaggedSentence.document``) and hold at most a given number
of tokens; a longer sentence stands alone. Tags predicted for a passage are split back into
its sentences, so reports stay per sentence, as conlleval reads them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from nlpkit.data.readers import TaggedSentence

__all__ = ["join_passages", "passage_groups", "split_passages", "tag_by_passages"]

Item = TypeVar("Item")


def passage_groups(sentences: Sequence[TaggedSentence], max_tokens: int) -> list[list[int]]:
    """Indices of ``sentences`` grouped into passages, in order.

    Consecutive sentences of the same document are added to the current passage while it stays
    within ``max_tokens`` tokens. ``max_tokens <= 0`` gives one passage per sentence.

    Example:
        >>> rows = [TaggedSentence(["a", "b"], ["O", "O"]), TaggedSentence(["c"], ["O"]),
        ...         TaggedSentence(["d"], ["O"], document=1)]
        >>> passage_groups(rows, max_tokens=3)
        [[0, 1], [2]]
    """
    groups: list[list[int]] = []
    length = 0
    for index, sentence in enumerate(sentences):
        size = len(sentence.tokens)
        if (
            groups
            and max_tokens > 0
            and sentences[groups[-1][-1]].document == sentence.document
            and length + size <= max_tokens
        ):
            groups[-1].append(index)
            length += size
        else:
            groups.append([index])
            length = size
    return groups


def join_passages(sentences: Sequence[TaggedSentence], groups: Sequence[Sequence[int]]) -> list[TaggedSentence]:
    """One `TaggedSentence` per group: its sentences' tokens and tags, concatenated.

    Example:
        >>> rows = [TaggedSentence(["a"], ["B-PER"]), TaggedSentence(["b"], ["O"])]
        >>> join_passages(rows, [[0, 1]])[0].tokens
        ['a', 'b']
    """
    passages = []
    for group in groups:
        tokens = [token for index in group for token in sentences[index].tokens]
        tags = [tag for index in group for tag in sentences[index].tags]
        passages.append(TaggedSentence(tokens, tags, sentences[group[0]].document))
    return passages


def split_passages(
    per_passage: Sequence[Sequence[Item]],
    sentences: Sequence[TaggedSentence],
    groups: Sequence[Sequence[int]],
) -> list[list[Item]]:
    """Splits one value per passage token (e.g. predicted tags) back into the sentences.

    Returns one list per sentence, in the order of ``sentences``.

    Example:
        >>> rows = [TaggedSentence(["a"], ["O"]), TaggedSentence(["b", "c"], ["O", "O"])]
        >>> split_passages([["O", "B-LOC", "E-LOC"]], rows, [[0, 1]])
        [['O'], ['B-LOC', 'E-LOC']]
    """
    if len(per_passage) != len(groups):
        raise ValueError(f"got values for {len(per_passage)} passages, but there are {len(groups)} groups")
    result: list[list[Item] | None] = [None] * len(sentences)
    for values, group in zip(per_passage, groups):
        expected = sum(len(sentences[index].tokens) for index in group)
        if len(values) != expected:
            raise ValueError(f"a passage of {expected} tokens got {len(values)} values")
        start = 0
        for index in group:
            end = start + len(sentences[index].tokens)
            result[index] = list(values[start:end])
            start = end
    missing = [index for index, values in enumerate(result) if values is None]
    if missing:
        raise ValueError(f"sentences {missing[:5]} are in no group")
    return result


def tag_by_passages(
    sentences: Sequence[TaggedSentence],
    max_tokens: int,
    tag_token_lists: Callable[[list[list[str]]], Sequence[Sequence[Item]]],
) -> list[list[Item]]:
    """Tags ``sentences`` passage by passage; returns one list of tags per sentence.

    ``tag_token_lists`` maps a list of token lists to one list of tags per token list (a
    tagger's batch call); it is called once, with the passages' tokens.

    Example:
        >>> rows = [TaggedSentence(["Ann"], ["B-PER"]), TaggedSentence(["ran"], ["O"])]
        >>> tag_by_passages(rows, 8, lambda lists: [[len(tokens)] * len(tokens) for tokens in lists])
        [[2], [2]]
    """
    groups = passage_groups(sentences, max_tokens)
    passages = join_passages(sentences, groups)
    return split_passages(tag_token_lists([list(passage.tokens) for passage in passages]), sentences, groups)
