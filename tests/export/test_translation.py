"""The translation bundle: TFLite encode/decode_step (built-in ops), SavedModel search, lite translator parity."""

import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

from nlpkit.data import read_parallel_tsv
from nlpkit.data.translation import encode_pairs, encode_source, teacher_forcing_arrays
from nlpkit.decoding import KerasDecoderStep, translate_ids
from nlpkit.export import DecodingSettings, audit_ops, write_translation_bundle
from nlpkit.manifest import read_manifest
from nlpkit.models import Seq2Seq
from nlpkit.samples import sample_path
from nlpkit.text import PythonSentencePieceTokenizer, SentencePieceTokenizer

ROOT = Path(__file__).resolve().parents[2]


def _odd_texts(pairs):
    longest = max(pairs, key=lambda pair: len(pair.source)).source
    # Empty, five times the longest source, characters never seen in training.
    return ["", " ".join([longest] * 5), "Ωμέγα 日本語 ça 🙂 Straße"]


@pytest.fixture(scope="module", params=["gru-luong", "lstm-bahdanau"])
def exported(request, tmp_path_factory):
    cell, attention = request.param.split("-")
    pairs = read_parallel_tsv(sample_path("translation_train.tsv"), "de", "en")
    tokenizer = PythonSentencePieceTokenizer.train([text for pair in pairs for text in pair], vocabulary_size=160)
    sources, targets = encode_pairs(tokenizer, pairs[:16])
    keras.utils.set_random_seed(1)
    model = Seq2Seq(
        tokenizer.vocabulary_size, tokenizer.vocabulary_size, embedding_dim=16, units=24, cell=cell,
        attention=attention, tie_embeddings=cell == "lstm", seed=1,
    )
    model.compile(keras.optimizers.Adam(0.01))
    inputs, labels = teacher_forcing_arrays(sources, targets)
    model.fit(inputs, labels, batch_size=8, epochs=30, verbose=0)
    bundle = write_translation_bundle(
        tmp_path_factory.mktemp(request.param) / "bundle", model, tokenizer,
        SentencePieceTokenizer.from_python(tokenizer), DecodingSettings(beam_width=3), int8=False,
        metadata={"languages": ["de", "en"]},
    )
    test_pairs = read_parallel_tsv(sample_path("translation_test.tsv"), "de", "en")
    texts = [pair.source for pair in test_pairs[:6]] + _odd_texts(pairs)
    return model, tokenizer, bundle, texts


def test_bundle_files_signatures_and_builtin_ops(exported):
    model, _, bundle, _ = exported
    manifest = read_manifest(bundle, task="translation")
    assert manifest["translation"]["state_names"] == model.decoding_state_names
    assert manifest["tokenizer"]["type"] == "sentencepiece"
    assert (bundle / "assets" / "sentencepiece.model").is_file()
    assert set(manifest["signatures"]["tflite"]) == {"encode", "decode_step"}
    assert set(manifest["signatures"]["saved_model"]) == {"serving_default", "greedy"}
    for name in manifest["files"]:
        if name.startswith("tflite"):
            audit = audit_ops(bundle / manifest["files"][name])
            assert audit.builtin_only and not audit.flex, audit


def test_lite_greedy_equals_keras_greedy_including_odd_sources(exported):
    from nlpkit.lite import Translator

    model, tokenizer, bundle, texts = exported
    sources = [encode_source(tokenizer, text) for text in texts]
    expected = translate_ids(KerasDecoderStep(model), sources, model.bos_id, model.eos_id)
    translator = Translator(bundle)
    translations, lite = translator.translate_with_ids(texts)
    assert lite.tokens == expected.tokens
    assert all(isinstance(text, str) for text in translations)
    assert isinstance(translator.translate(texts[0], method="beam"), str)


def test_saved_model_greedy_and_beam_match_the_numpy_searches(exported):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the SentencePiece op the graph uses)

    model, tokenizer, bundle, texts = exported
    sources = [encode_source(tokenizer, text) for text in texts]
    step = KerasDecoderStep(model)
    loaded = tf.saved_model.load(str(bundle / "saved_model"))
    for signature, options in (("greedy", {}), ("serving_default", {"method": "beam", "beam_width": 3})):
        outputs = loaded.signatures[signature](source=tf.constant(texts))
        expected = translate_ids(step, sources, model.bos_id, model.eos_id, **options)
        graph_tokens = [[token for token in row if token] for row in outputs["token_ids"].numpy().tolist()]
        assert graph_tokens == expected.tokens, signature
        decoded = [tokenizer.decode(row) for row in graph_tokens]
        assert [text.decode() for text in outputs["translation"].numpy()] == decoded


def test_tflite_steps_equal_keras_steps(exported):
    from nlpkit.lite import TFLiteDecoderStep

    model, tokenizer, bundle, texts = exported
    manifest = read_manifest(bundle)
    lite = TFLiteDecoderStep(bundle / "model.tflite", manifest["translation"]["state_names"],
                             manifest["translation"]["recurrent_states"])
    sources = [encode_source(tokenizer, text) for text in texts[:4]]
    keras_step = KerasDecoderStep(model)
    keras_states, lite_states = keras_step.encode(sources), lite.encode(sources)
    tokens = np.full(len(sources), model.bos_id, np.int32)
    for _ in range(3):
        keras_log_probs, keras_states = keras_step(tokens, keras_states)
        lite_log_probs, lite_states = lite(tokens, lite_states)
        np.testing.assert_allclose(lite_log_probs, keras_log_probs, atol=1e-4)
        tokens = keras_log_probs.argmax(-1).astype(np.int32)


def test_lite_translation_does_not_import_tensorflow(exported):
    _, _, bundle, _ = exported
    code = textwrap.dedent(f"""
        import sys
        from nlpkit.lite import Translator
        text = Translator({str(bundle)!r}).translate("Ein Hund läuft im Park.", method="beam", beam_width=2)
        assert isinstance(text, str)
        heavy = sorted(name for name in ("tensorflow", "keras") if name in sys.modules)
        assert not heavy, heavy
    """)
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(ROOT))


def test_every_bundle_form_translates_alike_and_the_cli_prints_translations(exported, capsys):
    import json

    from nlpkit import cli
    from nlpkit.serving import KerasTranslator, SavedModelTranslator, load_predictor

    _, _, bundle, texts = exported
    translators = {form: load_predictor(bundle, format=form) for form in ("tflite", "keras", "saved_model")}
    assert isinstance(translators["keras"], KerasTranslator)
    assert isinstance(translators["saved_model"], SavedModelTranslator)
    for method in ("greedy", "beam"):
        outputs = {form: translator.translate(texts, method=method) for form, translator in translators.items()}
        assert outputs["keras"] == outputs["saved_model"] == outputs["tflite"], method
    assert translators["saved_model"].translate(texts[0], method="beam") == outputs["keras"][0]
    with pytest.raises(ValueError, match="fixed at export"):
        translators["saved_model"].translate(texts[:1], method="beam", beam_width=7)

    assert cli.main(["predict", str(bundle), "--format", "saved_model", "--json", *texts[:2]]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert records == [{"text": text, "translation": output} for text, output in zip(texts[:2], outputs["keras"])]
    assert cli.main(["predict", str(bundle), "--method", "greedy", texts[0]]) == 0
    assert capsys.readouterr().out == translators["keras"].translate(texts[0]) + "\n"
