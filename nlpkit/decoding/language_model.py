"""Text in, text out: prompts through a language-model tokenizer, a search, and the detokenizer."""

from nlpkit.data.language_model import detokenize, start_token_id
from nlpkit.decoding.search import generate


def generate_text(step_fn, tokenizer, prompts, max_new_tokens, method="greedy", **options):
    """Continues prompt strings with a language model's step function.

    Each prompt is read after the start token (`nlpkit.data.start_token_id`: ``<eos>`` for
    words, a newline for characters), so it reads as the start of a line and an empty
    prompt is valid. The same function serves the Keras model (`KerasStepFunction`) and the
    TFLite bundle (`nlpkit.lite.LanguageModelGenerator`), so the two differ only in their
    step function.

    Args:
        step_fn: a step function with ``initial_states(batch_size)``.
        tokenizer: the pure-Python tokenizer of the model (`nlpkit.data.build_lm_tokenizer`).
        prompts: a str or a list of str.
        max_new_tokens: int >= 0, tokens generated per prompt.
        method: "greedy" (default), "sample" or "beam".
        **options: search options (see `nlpkit.decoding.generate`).

    Returns:
        ``(texts, generation)``: the continuation of every prompt as text (a list, also for
        one prompt) and the `Generation` with the token ids and scores.

    Example:
        >>> texts, _ = generate_text(KerasStepFunction(model), tokenizer, ["the market"], 20)
    """
    if isinstance(prompts, str):
        prompts = [prompts]
    prompts = list(prompts)
    for prompt in prompts:
        if not isinstance(prompt, str):
            raise TypeError(f"Every prompt must be a str. Received: {prompt!r}")
    start = start_token_id(tokenizer.vocabulary)
    ids = [[start] + tokenizer.encode(prompt) for prompt in prompts]
    result = generate(step_fn, ids, step_fn.initial_states(len(ids)), max_new_tokens, method, **options)
    return [detokenize(tokenizer, tokens) for tokens in result.tokens], result
