"""Translation search: encode the sources, start every row at the start id, search to the end id.

Numpy only, like `nlpkit.decoding.search`: the Keras model (`KerasDecoderStep`) and the
TFLite bundle (`nlpkit.lite.TFLiteDecoderStep`) go through this same code, so their greedy
outputs can be compared token for token.
"""

import numpy as np

from nlpkit.decoding.search import beam_search, greedy, sample

_SEARCHES = {"greedy": greedy, "beam": beam_search, "sample": sample}


def max_target_lengths(sources, ratio=2.0, offset=10, cap=None):
    """Per-source limits on generated tokens: ``int(ratio * len(source) + offset)``, at most ``cap``.

    Example:
        >>> max_target_lengths([[5, 3], [3]], ratio=1.5, offset=4)
        [7, 5]
    """
    if ratio < 0 or offset < 0:
        raise ValueError(f"`ratio` and `offset` must be >= 0. Received: ratio={ratio!r}, offset={offset!r}")
    limits = [int(ratio * len(source) + offset) for source in sources]
    return [min(limit, cap) for limit in limits] if cap else limits


def translate_ids(
    step_fn,
    sources,
    bos_id,
    eos_id,
    method="greedy",
    max_length_ratio=2.0,
    max_length_offset=10,
    max_length_cap=None,
    **options,
):
    """Translates a batch of source id lists with an encoder-decoder step function.

    Args:
        step_fn: has ``encode(sources) -> states`` and steps ``(token_ids, states) ->
            (log_probs, new_states)`` (`nlpkit.decoding.KerasDecoderStep`,
            `nlpkit.lite.TFLiteDecoderStep`).
        sources: list of source id lists, each ending with the end id.
        bos_id, eos_id: the start id fed first and the end id that stops a row.
        method: "greedy" (default), "beam" or "sample".
        max_length_ratio, max_length_offset, max_length_cap: each row generates at most
            `max_target_lengths` tokens (end id included).
        **options: search options (``beam_width``, ``length_penalty``, ``temperature``, ...).

    Returns:
        `nlpkit.decoding.Generation`; tokens end with ``eos_id`` where the row finished.

    Example:
        >>> result = translate_ids(step, [[41, 7, 3]], 2, 3, method="beam", beam_width=5)
    """
    if method not in _SEARCHES:
        raise ValueError(f"`method` must be one of {tuple(_SEARCHES)}. Received: method={method!r}")
    sources = [list(map(int, source)) for source in sources]
    if not sources:
        raise ValueError("`sources` must hold at least one source. Received an empty list.")
    states = step_fn.encode(sources)
    log_probs, states = step_fn(np.full(len(sources), bos_id, np.int32), states)
    limits = max_target_lengths(sources, max_length_ratio, max_length_offset, max_length_cap)
    return _SEARCHES[method](step_fn, log_probs, states, limits, stop_ids=[eos_id], **options)


def strip_end(tokens, eos_id):
    """The tokens before the first ``eos_id``."""
    tokens = list(tokens)
    return tokens[: tokens.index(eos_id)] if eos_id in tokens else tokens


def translate_texts(step_fn, tokenizer, texts, bos_id, eos_id, method="greedy", batch_size=64,
                    max_source_length=None, **options):
    """Translates texts in batches of similar length and returns them in the input order.

    Args:
        step_fn: as in `translate_ids`.
        tokenizer: the subword tokenizer (``encode`` / ``decode``), shared by both languages.
        texts: list of str.
        bos_id, eos_id, method, **options: as in `translate_ids`.
        batch_size: int, default 64. Sources per search; sorting by length first keeps
            padding (and per-row work on TFLite) low.
        max_source_length: optional int, see `nlpkit.data.translation.encode_source`.

    Returns:
        ``(translations, token_lists)``: detokenized strings and the generated ids (end id
        removed), one per text.

    Example:
        >>> translations, _ = translate_texts(KerasDecoderStep(model), tokenizer, ["Ein Hund."], 2, 3)
    """
    from nlpkit.data.translation import encode_source

    sources = [encode_source(tokenizer, text, max_source_length) for text in texts]
    order = sorted(range(len(sources)), key=lambda index: len(sources[index]))
    tokens = [None] * len(sources)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        result = translate_ids(step_fn, [sources[row] for row in rows], bos_id, eos_id, method, **options)
        for row, row_tokens in zip(rows, result.tokens):
            tokens[row] = strip_end(row_tokens, eos_id)
    return [tokenizer.decode(row_tokens) for row_tokens in tokens], tokens
