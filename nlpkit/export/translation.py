"""The translation bundle: SavedModel with beam search inside, TFLite ``encode`` + ``decode_step``."""

import dataclasses

import tensorflow as tf

from nlpkit.export.bundle import write_bundle
from nlpkit.text.subword import EOS_ID

TRANSLATION_TASK = "translation"


@dataclasses.dataclass(frozen=True)
class DecodingSettings:
    """How a bundle translates: search width, length normalisation and length limits.

    Attributes:
        beam_width: int, default 4. Of the SavedModel's ``serving_default`` (and the lite
            translator's default beam search).
        length_penalty: float, default 1.0.
        max_length_ratio, max_length_offset: a translation of a source of ``n`` ids
            (end id included) has at most ``int(ratio * n + offset)`` ids.
        max_source_length: int or None. Longer sources are cut (to this many ids with the
            end id) before encoding.

    Example:
        >>> DecodingSettings(beam_width=5).max_length_ratio
        2.0
    """

    beam_width: int = 4
    length_penalty: float = 1.0
    max_length_ratio: float = 2.0
    max_length_offset: int = 10
    max_source_length: int = None


class TranslationExport(tf.Module):
    """What `write_bundle` needs from a `nlpkit.models.Seq2Seq`, with the decoding settings.

    SavedModel signatures (strings in, tokenization and detokenization in the graph):
    ``serving_default`` (beam search, ``beam_width`` of the settings) and ``greedy``; both
    take ``source`` strings and return ``translation`` strings and ``token_ids``. TFLite:
    the model's ``encode`` and ``decode_step`` signatures (`Seq2Seq.tflite_endpoints`).

    Args:
        model: a built `nlpkit.models.Seq2Seq`.
        settings: `DecodingSettings`.

    Example:
        >>> export = TranslationExport(model, DecodingSettings(beam_width=5))
    """

    def __init__(self, model, settings=None):
        super().__init__(name="translation_export")
        self.model = model
        self.settings = settings or DecodingSettings()

    def save(self, path):
        self.model.save(path)

    def tflite_endpoints(self):
        return self.model.tflite_endpoints()

    def serving_endpoints(self, tokenizer, label_names=None):
        del label_names  # the bundle writer passes it to every task model
        settings = self.settings

        def make(beam_width):
            def serve(source):
                ids = tokenizer(source)
                if settings.max_source_length:
                    ids = ids[:, : max(settings.max_source_length - 1, 0)]
                ends = tf.fill([tf.shape(source)[0], 1], tf.constant(EOS_ID, tf.int32))
                ids = tf.concat([ids, tf.RaggedTensor.from_tensor(ends)], axis=1).to_tensor(default_value=0)
                tokens = self.model.translate_graph(
                    ids, beam_width, settings.length_penalty, settings.max_length_ratio, settings.max_length_offset
                )
                return {"translation": tokenizer.detokenize(tokens), "token_ids": tokens}

            return serve, [tf.TensorSpec([None], tf.string, name="source")]

        return {"serving_default": make(settings.beam_width), "greedy": make(1)}


def write_translation_bundle(
    output_dir, model, tokenizer, graph_tokenizer, settings=None, int8=True, metadata=None, parity=None
):
    """Writes a translation bundle (see DESIGN.md §3) and returns its path.

    ``nlpkit.json`` gets a ``translation`` entry that `nlpkit.lite.Translator` reads: the
    start and end ids, the state names of the TFLite signatures and the decoding settings.

    Args:
        output_dir: the bundle directory.
        model: a trained `nlpkit.models.Seq2Seq`.
        tokenizer: the `PythonSentencePieceTokenizer` (shared by both languages);
            graph_tokenizer: its `nlpkit.text.SentencePieceTokenizer` twin.
        settings: `DecodingSettings` (default: its defaults).
        int8: also write the dynamic-range quantized ``model.int8.tflite``.
        metadata: extra ``nlpkit.json`` fields (metrics, config, languages).
        parity: optional ``parity(staged_bundle_dir) -> dict``, checked before the bundle
            replaces anything (see `nlpkit.export.write_bundle`).

    Example:
        >>> write_translation_bundle("saved_models/translation", model, twin, graph_twin,
        ...                          DecodingSettings(beam_width=5), metadata={"languages": ["de", "en"]})
    """
    settings = settings or DecodingSettings()
    export = TranslationExport(model, settings)
    translation = {
        "bos_id": int(model.bos_id),
        "eos_id": int(model.eos_id),
        "state_names": list(model.decoding_state_names),
        "recurrent_states": int(model.decoder_state_count),
        "decoding": dataclasses.asdict(settings),
    }
    return write_bundle(
        output_dir,
        task=TRANSLATION_TASK,
        model=export,
        tokenizer=tokenizer,
        graph_tokenizer=graph_tokenizer,
        int8=int8,
        metadata={"translation": translation, **(metadata or {})},
        parity=parity,
    )
