"""The language-model bundle: greedy ``serving_default`` and a streaming TFLite ``step``."""

from nlpkit.export.bundle import write_bundle

LANGUAGE_MODEL_TASK = "language_model"


def write_language_model_bundle(output_dir, model, tokenizer, graph_tokenizer, int8=True, metadata=None, parity=None,
                                targets=("litert",)):
    """Writes a language-model bundle (see DESIGN.md §3) and returns its path.

    `write_bundle` for a `nlpkit.models.LanguageModel`: a stateful model is exported through
    its stateless copy, and ``nlpkit.json`` gets the ``generation`` section
    (`nlpkit.manifest.LanguageModelSection`) that `nlpkit.lite.LanguageModelGenerator` reads.

    Args:
        output_dir: the bundle directory.
        model: a `nlpkit.models.LanguageModel`.
        tokenizer: the pure-Python tokenizer; graph_tokenizer: its graph twin.
        int8: also write the dynamic-range quantized ``model.int8.tflite``.
        metadata: extra ``nlpkit.json`` fields (metrics, config).
        parity: optional ``parity(staged_bundle_dir) -> dict``, checked before the bundle
            replaces anything (see `nlpkit.export.write_bundle`).
        targets: runtimes to write files for (see `nlpkit.export.write_bundle`).

    Example:
        >>> write_language_model_bundle("saved_models/lm", model, twin, graph_twin,
        ...                             metadata={"metrics": {"test": {"perplexity": 92.1}}})
    """
    return write_bundle(output_dir, model=model, tokenizer=tokenizer, graph_tokenizer=graph_tokenizer,
                        int8=int8, metadata=metadata, parity=parity, targets=targets)
