"""Greedy search, sampling (temperature, top-k, top-p) and beam search over a recurrent state cache.

Everything here drives a *step function*, the one contract shared by the language model and
the translation decoder, by Keras and by TFLite:

    step_fn(token_ids, states) -> (log_probs, new_states)

- ``token_ids``: int32 array ``(n,)``, one token per row;
- ``states``: list of arrays whose first axis is the row (``(n, ...)``): recurrent states,
  and for a decoder anything else it carries per row, such as encoder outputs;
- ``log_probs``: float array ``(n, vocabulary_size)``, normalised log-probabilities of the
  next token (`log_softmax` of the logits).

Rows never interact, so the search may call the step function on any subset of rows (rows
whose prompt or hypothesis is finished are left out) and reorders beams by indexing the
states along axis 0.

The searches are numpy and the standard library only — `nlpkit.lite` runs them on a TFLite
step without TensorFlow, and the Keras step (`nlpkit.decoding.KerasStepFunction`) goes
through the same code, which is what makes their outputs comparable token for token.
keras-hub's samplers are not used: their ``next(prompt, cache, index)`` contract runs
inside ``ops.while_loop`` over a fixed-length prompt buffer of backend tensors (so not on
the TFLite runtime), and their beam search has neither finished-hypothesis handling nor
length normalisation.

Sampling is deterministic under a seed: one ``numpy.random.Generator`` draws one uniform
number per row per step, in row order.
"""

import dataclasses
import math

import numpy as np

__all__ = [
    "Generation",
    "log_softmax",
    "filter_log_probs",
    "prime",
    "greedy",
    "sample",
    "beam_search",
    "generate",
    "METHODS",
]

METHODS = ("greedy", "sample", "beam")


@dataclasses.dataclass
class Generation:
    """The result of a search, one entry per input row.

    Attributes:
        tokens: list of lists of int, the generated ids (stop token included when one
            ended the row).
        scores: list of float. Greedy and sampling: the summed log-probability of the
            generated tokens under the model (before temperature and filtering). Beam search:
            the length-normalised score that ranked the hypothesis.
        hypotheses: beam search only: per row, every finished ``(tokens, score)`` pair, best
            first; None otherwise.

    Example:
        >>> result = generate(step, [[2, 14]], step.initial_states(1), 10, method="beam")
        >>> result.tokens[0], result.scores[0], len(result.hypotheses[0])
    """

    tokens: list
    scores: list
    hypotheses: list = None


def log_softmax(logits):
    """Normalised log-probabilities of ``logits`` over the last axis (float64, numpy).

    Float64 keeps the order of float32 logits: ``argmax(log_softmax(x)) == argmax(x)``.
    """
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _check_positive_int(name, value, allow_zero=False):
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        kind = "a non-negative" if allow_zero else "a positive"
        raise ValueError(f"`{name}` must be {kind} int. Received: {name}={value!r}")
    return int(value)


def _row_limits(max_new_tokens, rows):
    """``max_new_tokens`` as one int limit per row (an int applies to every row)."""
    if isinstance(max_new_tokens, (list, tuple, np.ndarray)):
        limits = [_check_positive_int("max_new_tokens", value, allow_zero=True) for value in max_new_tokens]
        if len(limits) != rows:
            raise ValueError(
                f"`max_new_tokens` holds {len(limits)} limits for {rows} rows; give one per row or one int."
            )
        return np.array(limits, dtype=np.int64)
    return np.full(rows, _check_positive_int("max_new_tokens", max_new_tokens, allow_zero=True), dtype=np.int64)


def _subset(states, rows):
    return [np.asarray(state)[rows] for state in states]


def _scatter(states, rows, values):
    for state, value in zip(states, values):
        state[rows] = value


def prime(step_fn, prompts, states):
    """Feeds each row its prompt and returns the next-token log-probabilities and states.

    Args:
        step_fn: the step function (see the module docstring).
        prompts: list of non-empty lists of int, one per row; lengths may differ (a row
            whose prompt is done is no longer stepped).
        states: the initial states, ``(len(prompts), ...)`` each.

    Returns:
        ``(log_probs, states)`` after the last token of every prompt.

    Example:
        >>> log_probs, states = prime(step, [[2, 17, 4], [2]], step.initial_states(2))
    """
    prompts = [list(map(int, prompt)) for prompt in prompts]
    if not prompts:
        raise ValueError("`prompts` must hold at least one prompt. Received an empty list.")
    empty = [index for index, prompt in enumerate(prompts) if not prompt]
    if empty:
        raise ValueError(
            f"Every prompt needs at least one token (e.g. a start token); rows {empty} are empty."
        )
    states = [np.array(state, copy=True) for state in states]
    for state in states:
        if state.shape[0] != len(prompts):
            raise ValueError(
                f"Every state must have one row per prompt ({len(prompts)}). Received a state of "
                f"shape {state.shape}"
            )
    log_probs = None
    lengths = np.array([len(prompt) for prompt in prompts])
    for t in range(int(lengths.max())):
        rows = np.flatnonzero(lengths > t)
        tokens = np.array([prompts[row][t] for row in rows], dtype=np.int32)
        step_log_probs, new_states = step_fn(tokens, _subset(states, rows))
        step_log_probs = np.asarray(step_log_probs)
        if log_probs is None:
            log_probs = np.zeros((len(prompts), step_log_probs.shape[-1]), step_log_probs.dtype)
        log_probs[rows] = step_log_probs
        _scatter(states, rows, new_states)
    return log_probs, states


def _stop_set(stop_ids):
    if stop_ids is None:
        return frozenset()
    if isinstance(stop_ids, (int, np.integer)):
        return frozenset([int(stop_ids)])
    return frozenset(int(token) for token in stop_ids)


def _run(step_fn, log_probs, states, max_new_tokens, stop_ids, choose):
    """Shared loop of greedy search and sampling: ``choose(log_probs, rows) -> tokens``."""
    stop = _stop_set(stop_ids)
    log_probs = np.array(log_probs, copy=True)  # rows are overwritten as they step
    states = [np.array(state, copy=True) for state in states]
    rows_total = log_probs.shape[0]
    limits = _row_limits(max_new_tokens, rows_total)
    tokens = [[] for _ in range(rows_total)]
    scores = np.zeros(rows_total)
    active = np.flatnonzero(limits > 0)
    for t in range(int(limits.max(initial=0))):
        if active.size == 0:
            break
        chosen = choose(log_probs[active], active)
        scores[active] += log_probs[active, chosen]
        for row, token in zip(active, chosen):
            tokens[row].append(int(token))
        # A row ends at a stop token or at its limit; the step after its last token would
        # only feed a distribution nobody reads.
        still = np.array([int(token) not in stop for token in chosen], dtype=bool) & (limits[active] > t + 1)
        active, chosen = active[still], chosen[still]
        if active.size == 0:
            break
        step_log_probs, new_states = step_fn(chosen.astype(np.int32), _subset(states, active))
        log_probs[active] = step_log_probs
        _scatter(states, active, new_states)
    return Generation(tokens=tokens, scores=[float(score) for score in scores])


def greedy(step_fn, log_probs, states, max_new_tokens, stop_ids=None):
    """Greedy search: the most likely token at every step (lowest id on a tie).

    Args:
        step_fn: the step function.
        log_probs: ``(n, vocabulary_size)``, the distribution of the first new token (from
            `prime`).
        states: the states that produced ``log_probs``.
        max_new_tokens: int >= 0, tokens to generate per row, or one such int per row
            (a translation's limit follows its source length).
        stop_ids: optional int or ids; a row stops after generating one of them.

    Returns:
        `Generation`.

    Example:
        >>> log_probs, states = prime(step, [[2, 17]], step.initial_states(1))
        >>> greedy(step, log_probs, states, max_new_tokens=20).tokens[0]
    """
    return _run(step_fn, log_probs, states, max_new_tokens, stop_ids, lambda lp, rows: lp.argmax(axis=-1))


def filter_log_probs(log_probs, temperature=1.0, top_k=0, top_p=1.0):
    """The sampling distribution: temperature, then top-k, then nucleus (top-p) filtering.

    Args:
        log_probs: ``(n, vocabulary_size)`` log-probabilities (or logits).
        temperature: float > 0, default 1.0. Divides the log-probabilities.
        top_k: int >= 0, default 0 (off). Keep the ``top_k`` most likely tokens.
        top_p: float in (0, 1], default 1.0 (off). Keep the smallest set of most likely
            tokens whose probability reaches ``top_p`` (the token crossing it included).

    Returns:
        float64 probabilities ``(n, vocabulary_size)``, rows summing to 1, zero outside the
        kept tokens. Ties at a cut-off keep the lower ids.

    Example:
        >>> filter_log_probs(np.log([[0.5, 0.3, 0.2]]), top_p=0.7).round(3).tolist()
        [[0.625, 0.375, 0.0]]
    """
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or temperature <= 0:
        raise ValueError(f"`temperature` must be a positive float. Received: temperature={temperature!r}")
    top_k = _check_positive_int("top_k", top_k, allow_zero=True)
    if isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0.0 < top_p <= 1.0:
        raise ValueError(f"`top_p` must be a float in (0, 1]. Received: top_p={top_p!r}")
    scaled = np.asarray(log_probs, dtype=np.float64) / temperature
    probs = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
    probs /= probs.sum(axis=-1, keepdims=True)
    # A stable sort by descending probability: equal probabilities keep the lower id first.
    order = np.argsort(-probs, axis=-1, kind="stable")
    sorted_probs = np.take_along_axis(probs, order, axis=-1)
    keep_sorted = np.ones_like(sorted_probs, dtype=bool)
    if top_k and top_k < probs.shape[-1]:
        keep_sorted[:, top_k:] = False
    if top_p < 1.0:
        before = np.cumsum(sorted_probs, axis=-1) - sorted_probs
        keep_sorted &= before < top_p
    keep = np.zeros_like(keep_sorted)
    np.put_along_axis(keep, order, keep_sorted, axis=-1)
    probs = np.where(keep, probs, 0.0)
    return probs / probs.sum(axis=-1, keepdims=True)


def sample(step_fn, log_probs, states, max_new_tokens, temperature=1.0, top_k=0, top_p=1.0, seed=None, stop_ids=None):
    """Ancestral sampling with temperature, top-k and top-p (see `filter_log_probs`).

    Deterministic under ``seed``: the same seed, model and prompts give the same tokens.

    Args:
        step_fn, log_probs, states, max_new_tokens, stop_ids: as in `greedy`.
        temperature, top_k, top_p: see `filter_log_probs`.
        seed: optional int for ``numpy.random.default_rng``.

    Returns:
        `Generation`; ``scores`` are the summed model log-probabilities of the drawn tokens.

    Example:
        >>> sample(step, log_probs, states, 50, temperature=0.8, top_p=0.9, seed=1).tokens
    """
    filter_log_probs(np.zeros((1, 1)), temperature, top_k, top_p)  # validates the options
    rng = np.random.default_rng(seed)

    def choose(row_log_probs, rows):
        probs = filter_log_probs(row_log_probs, temperature, top_k, top_p)
        cumulative = np.cumsum(probs, axis=-1)
        draws = rng.random(len(rows)) * cumulative[:, -1]
        chosen = np.array([np.searchsorted(c, d, side="right") for c, d in zip(cumulative, draws)])
        # Rounding can put a draw past the last kept token; fall back to the most likely one.
        chosen = np.minimum(chosen, probs.shape[-1] - 1)
        invalid = probs[np.arange(len(rows)), chosen] == 0
        chosen[invalid] = probs[invalid].argmax(axis=-1)
        return chosen

    return _run(step_fn, log_probs, states, max_new_tokens, stop_ids, choose)


def length_normalized(score, length, length_penalty):
    """``score / length ** length_penalty`` (0: raw sum; 1: mean log-probability per token)."""
    return score / (max(length, 1) ** length_penalty)


def _finish_open(finished, sums, sequences, length_penalty):
    """Moves a row's open hypotheses (finite ``sums``) into ``finished``, keeping the best."""
    width = len(sequences)
    for beam in range(width):
        if np.isfinite(sums[beam]):
            tokens = sequences[beam]
            finished.append((tokens, length_normalized(sums[beam], len(tokens), length_penalty)))
    finished.sort(key=lambda item: -item[1])
    del finished[width:]


def beam_search(step_fn, log_probs, states, max_new_tokens, beam_width=4, length_penalty=1.0, stop_ids=None):
    """Beam search with length normalisation.

    Keeps the ``beam_width`` best unfinished hypotheses per row (by summed log-probability).
    A hypothesis that emits a stop token is finished and ranked by its length-normalised
    score, ``sum log p / length ** length_penalty`` (length counts the stop token);
    hypotheses still open after ``max_new_tokens`` are finished there. A row stops searching
    once it holds ``beam_width`` finished hypotheses and none of its open ones, normalised
    at its current length, would rank above the worst of them (the usual heuristic; with
    ``length_penalty > 0`` a longer hypothesis could in principle still overtake).

    Args:
        step_fn, log_probs, states, max_new_tokens, stop_ids: as in `greedy`; ``states`` and
            ``log_probs`` have one row per input row (beams are made here).
        beam_width: int >= 1, default 4. 1 is greedy search.
        length_penalty: float >= 0, default 1.0.

    Returns:
        `Generation` with the best hypothesis per row and ``hypotheses``: every finished
        ``(tokens, score)``, best first.

    Example:
        >>> result = beam_search(step, log_probs, states, 30, beam_width=5, stop_ids=[eos])
        >>> result.tokens[0], result.scores[0]
    """
    beam_width = _check_positive_int("beam_width", beam_width)
    if isinstance(length_penalty, bool) or not isinstance(length_penalty, (int, float)) or length_penalty < 0:
        raise ValueError(f"`length_penalty` must be a float >= 0. Received: length_penalty={length_penalty!r}")
    stop = _stop_set(stop_ids)
    log_probs = np.asarray(log_probs, dtype=np.float64)
    rows, vocabulary = log_probs.shape
    limits = _row_limits(max_new_tokens, rows)
    width = beam_width
    # Beam b of row r is flat row r * width + b; at first only beam 0 is alive.
    states = [np.repeat(np.asarray(state), width, axis=0) for state in states]
    step_log_probs = np.repeat(log_probs, width, axis=0)
    sums = np.full((rows, width), -np.inf)
    sums[:, 0] = 0.0
    sequences = [[[] for _ in range(width)] for _ in range(rows)]
    finished = [[] for _ in range(rows)]
    # A row with no tokens to generate is finished from the start, with the empty hypothesis.
    done = limits == 0
    for row in np.flatnonzero(done):
        _finish_open(finished[row], sums[row], sequences[row], length_penalty)

    for t in range(int(limits.max(initial=0))):
        candidates = sums[:, :, None] + step_log_probs.reshape(rows, width, vocabulary)
        candidates = candidates.reshape(rows, width * vocabulary)
        next_sums = np.full((rows, width), -np.inf)
        next_sequences = [[[] for _ in range(width)] for _ in range(rows)]
        parents = np.zeros((rows, width), dtype=np.int64)
        next_tokens = np.zeros((rows, width), dtype=np.int32)
        for row in range(rows):
            if done[row]:
                continue
            # 2 * width candidates always leave `width` open ones after at most `width` stops.
            count = min(2 * width, candidates.shape[1])
            best = np.argpartition(-candidates[row], count - 1)[:count]
            best = best[np.lexsort((best, -candidates[row, best]))]
            kept = 0
            for flat in best:
                score = candidates[row, flat]
                if not np.isfinite(score):
                    break
                beam, token = divmod(int(flat), vocabulary)
                tokens = sequences[row][beam] + [token]
                if token in stop:
                    finished[row].append((tokens, length_normalized(score, len(tokens), length_penalty)))
                    continue
                next_sums[row, kept] = score
                next_sequences[row][kept] = tokens
                parents[row, kept] = beam
                next_tokens[row, kept] = token
                kept += 1
                if kept == width:
                    break
            finished[row].sort(key=lambda item: -item[1])
            del finished[row][width:]
            if len(finished[row]) == width:
                best_open = length_normalized(next_sums[row].max(), t + 1, length_penalty)
                done[row] = best_open <= finished[row][-1][1]
            if not done[row] and t + 1 == limits[row]:
                # The row's limit: its open hypotheses finish here and it steps no further.
                _finish_open(finished[row], next_sums[row], next_sequences[row], length_penalty)
                next_sums[row] = -np.inf
                done[row] = True
        sums, sequences = next_sums, next_sequences
        if done.all():
            break
        flat_parents = (np.arange(rows)[:, None] * width + parents).reshape(-1)
        live = np.flatnonzero(np.isfinite(sums.reshape(-1)))
        states = [state[flat_parents] for state in states]
        step_log_probs = np.full((rows * width, vocabulary), -np.inf)
        new_log_probs, new_states = step_fn(next_tokens.reshape(-1)[live], _subset(states, live))
        step_log_probs[live] = new_log_probs
        _scatter(states, live, new_states)

    for row in range(rows):
        if not done[row]:
            _finish_open(finished[row], sums[row], sequences[row], length_penalty)
    return Generation(
        tokens=[hypotheses[0][0] if hypotheses else [] for hypotheses in finished],
        scores=[float(hypotheses[0][1]) if hypotheses else -math.inf for hypotheses in finished],
        hypotheses=[[(tokens, float(score)) for tokens, score in hypotheses] for hypotheses in finished],
    )


def generate(step_fn, prompts, states, max_new_tokens, method="greedy", **options):
    """Reads the prompts, then continues them with ``method``.

    Args:
        step_fn: the step function.
        prompts: list of non-empty lists of int (start token first).
        states: initial states, one row per prompt (e.g. ``step_fn.initial_states(n)``).
        max_new_tokens: int >= 0.
        method: "greedy" (default), "sample" or "beam".
        **options: passed to `greedy`, `sample` or `beam_search` (``stop_ids``,
            ``temperature``, ``top_k``, ``top_p``, ``seed``, ``beam_width``,
            ``length_penalty``).

    Returns:
        `Generation` (the generated tokens only, without the prompts).

    Example:
        >>> generate(step, [[2, 40, 41]], step.initial_states(1), 30, method="sample", seed=0)
    """
    searches = {"greedy": greedy, "sample": sample, "beam": beam_search}
    if method not in searches:
        raise ValueError(f"`method` must be one of {METHODS}. Received: method={method!r}")
    log_probs, states = prime(step_fn, prompts, states)
    return searches[method](step_fn, log_probs, states, max_new_tokens, **options)
