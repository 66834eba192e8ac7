"""The language-model bundle: greedy ``serving_default`` and a streaming TFLite ``step``."""

import tensorflow as tf

from nlpkit.data.language_modeling import start_token_id, tokenizer_level
from nlpkit.export.bundle import write_bundle
from nlpkit.export.streaming import StreamingStack

LANGUAGE_MODELING_TASK = "language_modeling"


class LanguageModelExport(tf.Module):
    """What `write_bundle` needs from a language model, with its TFLite form made streaming.

    The SavedModel's ``serving_default`` is the model's own greedy generator
    (`nlpkit.models.LanguageModel.serving_endpoint`: prompt strings and ``max_tokens`` in,
    ``text`` and ``token_ids`` out). The TFLite model is the ``step`` signature of
    `StreamingStack` over the model's `streaming_layers`: ``token_id`` int32 ``(1,)`` and
    the states ``state_<k>_h`` (and ``_c``) in; ``logits`` ``(1, vocabulary_size)`` and
    the new states out — batch 1, built-in ops only, no loop.

    Args:
        model: a built, stateless `nlpkit.models.LanguageModel` (see ``to_stateless``).

    Example:
        >>> export = LanguageModelExport(model.to_stateless())
        >>> content = convert(export, export.tflite_endpoints())
    """

    def __init__(self, model):
        super().__init__(name="language_model_export")
        if getattr(model, "stateful", False):
            raise ValueError(
                f"Export a stateless model: {model.name} is stateful, so its saved file would "
                "be tied to one batch size. Pass model.to_stateless()."
            )
        self.model = model
        self.stack = StreamingStack(model.streaming_layers(), output_name="logits")

    def save(self, path):
        self.model.save(path)

    def serving_endpoint(self, tokenizer, label_names=None):
        return self.model.serving_endpoint(tokenizer, label_names)

    def tflite_endpoints(self):
        return self.stack.tflite_endpoints()


def write_language_model_bundle(output_dir, model, tokenizer, graph_tokenizer, int8=True, metadata=None, parity=None):
    """Writes a language-model bundle (see DESIGN.md §3) and returns its path.

    Besides the common files, ``nlpkit.json`` gets a ``generation`` entry that
    `nlpkit.lite.LanguageModelGenerator` reads: the tokenization level, the start token id
    and the names of the step's states.

    Args:
        output_dir: the bundle directory.
        model: a `nlpkit.models.LanguageModel` (a stateful one is exported through its
            stateless copy).
        tokenizer: the pure-Python tokenizer; graph_tokenizer: its graph twin.
        int8: also write the dynamic-range quantized ``model.int8.tflite``.
        metadata: extra ``nlpkit.json`` fields (metrics, config).
        parity: optional ``parity(staged_bundle_dir) -> dict``, checked before the bundle
            replaces anything (see `nlpkit.export.write_bundle`).

    Example:
        >>> write_language_model_bundle("saved_models/lm", model, twin, graph_twin,
        ...                             metadata={"metrics": {"test": {"perplexity": 92.1}}})
    """
    if getattr(model, "stateful", False):
        model = model.to_stateless()
    export = LanguageModelExport(model)
    generation = {
        "level": tokenizer_level(tokenizer),
        "start_id": int(start_token_id(tokenizer.vocabulary)),
        "state_names": list(export.stack.state_names),
        "step_input": export.stack.input_name,
        "step_output": export.stack.output_name,
    }
    return write_bundle(
        output_dir,
        task=LANGUAGE_MODELING_TASK,
        model=export,
        tokenizer=tokenizer,
        graph_tokenizer=graph_tokenizer,
        int8=int8,
        metadata={"generation": generation, **(metadata or {})},
        parity=parity,
    )
