"""The translation bundle: SavedModel with beam search inside, TFLite ``encode`` + ``decode_step``."""

from nlpkit.export.bundle import write_bundle
from nlpkit.manifest import DecodingSettings

TRANSLATION_TASK = "translation"


def write_translation_bundle(
    output_dir, model, tokenizer, graph_tokenizer, settings=None, int8=True, metadata=None, parity=None,
    targets=("litert",),
):
    """Writes a translation bundle (see DESIGN.md §3) and returns its path.

    `write_bundle` for a `nlpkit.models.Seq2Seq` that translates with ``settings``:
    ``nlpkit.json`` gets the ``translation`` section (`nlpkit.manifest.TranslationSection`)
    that `nlpkit.lite.Translator` reads.

    Args:
        output_dir: the bundle directory.
        model: a trained `nlpkit.models.Seq2Seq`.
        tokenizer: the `PythonSentencePieceTokenizer` (shared by both languages);
            graph_tokenizer: its `nlpkit.text.SentencePieceTokenizer` twin.
        settings: `DecodingSettings` (default: the model's ``decoding``).
        int8: also write the dynamic-range quantized ``model.int8.tflite``.
        metadata: extra ``nlpkit.json`` fields (metrics, config, languages).
        parity: optional ``parity(staged_bundle_dir) -> dict``, checked before the bundle
            replaces anything (see `nlpkit.export.write_bundle`).
        targets: runtimes to write files for (see `nlpkit.export.write_bundle`).

    Example:
        >>> write_translation_bundle("saved_models/translation", model, twin, graph_twin,
        ...                          DecodingSettings(beam_width=5), metadata={"languages": ["de", "en"]})
    """
    if settings is not None:
        model.decoding = settings
    return write_bundle(output_dir, model=model, tokenizer=tokenizer, graph_tokenizer=graph_tokenizer,
                        int8=int8, metadata=metadata, parity=parity, targets=targets)


__all__ = ["DecodingSettings", "TRANSLATION_TASK", "write_translation_bundle"]
