"""Tests for recipes/language_model.py: tiny runs on the embedded sample, and what they wrote.

The character-level run trains a small model for a few seconds; the recipe itself compares
TFLite greedy generation with Keras greedy generation on 10 prompts x 200 tokens and records
the result in nlpkit.json, which the tests check (and re-check here from the bundle).
"""

import dataclasses
import json

import numpy as np
import pytest

from nlpkit.config import config_parser, parse_config
from nlpkit.data import read_text
from nlpkit.samples import sample_path
from recipes import language_model
from recipes.language_model import Config, build_model, check_config, default_prompts, load_texts

CHAR_FLAGS = [
    "--level", "char", "--epochs", "8", "--embedding-dim", "16", "--units", "48", "--batch-size", "4",
    "--seq-len", "40", "--learning-rate", "0.01", "--sample-tokens", "20",
]
WORD_FLAGS = ["--epochs", "2", "--embedding-dim", "8", "--units", "16", "--num-layers", "1", "--parity-prompts", "3",
              "--parity-tokens", "20", "--sample-tokens", "8", "--no-int8"]


@pytest.fixture(scope="module")
def char_bundle(tmp_path_factory):
    output = tmp_path_factory.mktemp("lm") / "char"
    argv = [*CHAR_FLAGS, "--output-dir", str(output)]
    assert language_model.main(argv) == 0
    return output, argv


@pytest.fixture(scope="module")
def word_bundle(tmp_path_factory):
    output = tmp_path_factory.mktemp("lm") / "word"
    assert language_model.main([*WORD_FLAGS, "--output-dir", str(output)]) == 0
    return output


def test_char_run_writes_a_full_bundle_with_metrics_and_parity(char_bundle):
    bundle, argv = char_bundle
    for name in ("model.keras", "saved_model", "model.tflite", "model.int8.tflite", "assets", "nlpkit.json"):
        assert (bundle / name).exists(), name
    manifest = json.loads((bundle / "nlpkit.json").read_text())
    assert manifest["task"] == "language_model"
    assert manifest["config"] == dataclasses.asdict(parse_config(Config, argv))
    metrics = manifest["metrics"]
    assert 1 <= metrics["epochs_run"] <= 8 and metrics["training_seconds"] > 0
    for split in ("valid", "test"):
        report = metrics[split]
        assert report["bits_per_token"] == pytest.approx(report["nats_per_token"] / np.log(2), abs=1e-3)
        assert report["perplexity"] == pytest.approx(np.exp(report["nats_per_token"]), rel=1e-3)
        # Clearly better than a uniform guess over the characters: the model learned.
        assert report["perplexity"] < 0.5 * len(json.loads((bundle / "assets" / "vocabulary.json").read_text())["tokens"])
    assert manifest["parity"] == {"prompts": 10, "tokens_per_prompt": 200, "identical": True,
                                  "matching_tokens": "2000/2000"}
    generation = manifest["generation"]
    assert generation["level"] == "char" and generation["step_output"] == "logits"
    assert generation["state_names"] == ["state_0_h", "state_0_c", "state_1_h", "state_1_c"]
    assert set(manifest["samples"]) == {"greedy", "sample", "beam"}


def test_tflite_step_is_built_in_only_without_a_loop(char_bundle):
    from nlpkit.export import audit_ops

    bundle, _ = char_bundle
    manifest = json.loads((bundle / "nlpkit.json").read_text())
    for name in ("model.tflite", "model.int8.tflite"):
        audit = audit_ops(bundle / name)
        assert audit.builtin_only, audit.custom
        assert "WHILE" not in audit.builtin and "FULLY_CONNECTED" in audit.builtin
        assert manifest["tflite_ops"][name] == list(audit.builtin)
    inputs = manifest["signatures"]["tflite"]["step"]["inputs"]
    assert inputs["token_id"] == "int32[1]" and inputs["state_0_h"] == "float32[1, 48]"
    assert manifest["signatures"]["saved_model"]["serving_default"]["inputs"] == {
        "prompt": "string[None]", "max_tokens": "int32[]"}


def test_lite_greedy_equals_keras_greedy_on_ten_prompts(char_bundle):
    from nlpkit.decoding import KerasStepFunction, generate_text
    from nlpkit.lite import LanguageModelGenerator
    from nlpkit.models import load_keras_model
    from nlpkit.text import load_tokenizer

    bundle, _ = char_bundle
    model = load_keras_model(bundle / "model.keras")
    assert not model.stateful
    tokenizer = load_tokenizer(bundle / "assets")
    prompts = default_prompts(read_text(sample_path("lm_valid.txt")), "char", 10)
    assert len(set(prompts)) == 10
    keras_texts, keras_result = generate_text(KerasStepFunction(model), tokenizer, prompts, 200)
    lite_texts = LanguageModelGenerator(bundle).generate(prompts, max_new_tokens=200)
    assert lite_texts == keras_texts
    assert all(len(tokens) == 200 for tokens in keras_result.tokens)
    int8 = LanguageModelGenerator(bundle, precision="int8").generate("The ", max_new_tokens=30, method="sample", seed=1)
    assert isinstance(int8, str) and len(int8) == 30


def test_saved_model_greedy_text_equals_keras_greedy(char_bundle, word_bundle):
    import tensorflow as tf

    from nlpkit.decoding import KerasStepFunction, generate_text
    from nlpkit.models import load_keras_model
    from nlpkit.text import load_tokenizer

    for bundle in (char_bundle[0], word_bundle):
        loaded = tf.saved_model.load(str(bundle / "saved_model"))
        serve = loaded.signatures["serving_default"]
        prompts = ["The ferry", "", "Wren bakes bread ."]
        outputs = serve(prompt=tf.constant(prompts), max_tokens=tf.constant(25))
        model = load_keras_model(bundle / "model.keras")
        texts, result = generate_text(KerasStepFunction(model), load_tokenizer(bundle / "assets"), prompts, 25)
        assert outputs["token_ids"].numpy().tolist() == result.tokens, bundle
        assert [text.decode() for text in outputs["text"].numpy()] == texts, bundle
        nothing = serve(prompt=tf.constant(["The ferry"]), max_tokens=tf.constant(0))
        assert nothing["token_ids"].shape == (1, 0) and nothing["text"].numpy().tolist() == [b""]


def test_word_run_defaults_to_the_sample_and_skips_int8(word_bundle):
    manifest = json.loads((word_bundle / "nlpkit.json").read_text())
    assert not (word_bundle / "model.int8.tflite").exists()
    assert manifest["generation"]["level"] == "word"
    assert manifest["metrics"]["test"]["tokens"] > 100
    assert manifest["parity"]["identical"] is True


def test_config_every_field_is_a_flag_and_is_checked():
    options = {option for action in config_parser(Config)._actions for option in action.option_strings}
    for field in dataclasses.fields(Config):
        assert "--" + field.name.replace("_", "-") in options, field.name
    for changes, match in [({"level": "byte"}, "byte"), ({"optimizer": "rmsprop"}, "rmsprop"),
                           ({"seq_len": 0}, "seq-len")]:
        with pytest.raises(ValueError, match=match):
            check_config(dataclasses.replace(Config(), **changes))


def test_default_texts_are_the_embedded_sample_and_prompts_come_from_line_starts():
    texts = load_texts(Config())
    assert texts == {split: read_text(sample_path(f"lm_{split}.txt")) for split in ("train", "valid", "test")}
    own = load_texts(Config(train_file=str(sample_path("lm_test.txt"))))
    assert own["valid"] is None and own["test"] is None
    prompts = default_prompts("one two three four\n\nfive six\n", "word", 4)
    assert prompts == ["one two", "five six", "one two three", "five six"]
    assert default_prompts("abcdefghij\n", "char", 2) == ["abcd", "abcdefgh"]


def test_build_model_is_stateful_only_with_a_batch_size():
    config = Config(embedding_dim=4, units=6)
    stateful = build_model(config, vocabulary_size=30, batch_size=3)
    assert stateful.stateful and stateful.optimizer is not None
    assert stateful.recurrent_layers[0].states[0].shape == (3, 6)
    assert not build_model(config, vocabulary_size=30).stateful


def test_recipe_module_shape():
    for name in ("Config", "build_model", "train", "main"):
        assert callable(getattr(language_model, name)), name


def test_learning_rate_decay_keeps_plateau_reductions(tmp_path):
    import keras

    from recipes.language_model import training_callbacks

    config = Config(lr_decay=0.5, decay_start=2, max_minutes=1.0)
    callbacks = training_callbacks(config, tmp_path / "work")
    names = [type(callback).__name__ for callback in callbacks]
    assert names[0] == "ResetStatesCallback" and "ReduceLROnPlateau" in names and "TimeBudget" in names
    (scheduler,) = [c for c in callbacks if isinstance(c, keras.callbacks.LearningRateScheduler)]
    # A rate already lowered on a plateau is decayed from where it is, not reset.
    assert scheduler.schedule(1, 0.3) == 0.3
    assert scheduler.schedule(2, 0.3) == 0.15


def test_entry_point_is_registered():
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert pyproject["project"]["entry-points"]["nlpkit.recipes"]["language_model"] == "recipes.language_model"


@pytest.mark.parametrize("strategy", ["mirrored", "multi_worker", "tpu"])
def test_distributed_strategies_are_refused_with_the_reason(strategy):
    with pytest.raises(ValueError, match="Truncated BPTT carries every stream's recurrent state") as error:
        check_config(Config(strategy=strategy))
    assert f"strategy={strategy!r}" in str(error.value)
    check_config(Config(strategy="default"))


def test_every_bundle_form_continues_alike_and_the_cli_prints_prompt_and_continuation(char_bundle, word_bundle, capsys):
    from nlpkit import cli
    from nlpkit.serving import KerasGenerator, SavedModelGenerator, load_predictor

    prompts = ["The ferry", ""]
    for bundle in (char_bundle[0], word_bundle):
        generators = {form: load_predictor(bundle, format=form) for form in ("tflite", "keras", "saved_model")}
        assert isinstance(generators["keras"], KerasGenerator)
        assert isinstance(generators["saved_model"], SavedModelGenerator)
        outputs = {form: generator.generate(prompts, 15) for form, generator in generators.items()}
        assert outputs["keras"] == outputs["saved_model"] == outputs["tflite"], bundle
        with pytest.raises(ValueError, match="greedily only"):
            generators["saved_model"].generate(prompts, 5, method="beam")
        assert cli.main(["predict", str(bundle), "--format", "keras", "--max-new-tokens", "15", prompts[0]]) == 0
        separator = "" if bundle == char_bundle[0] else " "
        assert capsys.readouterr().out == prompts[0] + separator + outputs["keras"][0] + "\n"


def test_step_files_run_in_tflite_runtime_2_14(word_bundle):
    from tests.runtimes import every_signature_matches_in_tflite214

    every_signature_matches_in_tflite214(word_bundle)


def test_every_command_takes_a_language_model_bundle(char_bundle, tmp_path, capsys):
    """evaluate (perplexity, tflite and keras alike), export (rebuilt from model.keras) and predict."""
    import shutil

    from nlpkit import cli

    bundle, _ = char_bundle
    test_file = str(sample_path("lm_test.txt"))
    reports = {}
    for form in ("tflite", "keras"):
        assert cli.main(["evaluate", str(bundle), "--data", test_file, "--format", form, "--json"]) == 0
        reports[form] = json.loads(capsys.readouterr().out)
    assert reports["tflite"]["tokens"] == reports["keras"]["tokens"] > 0
    assert reports["tflite"]["perplexity"] == pytest.approx(reports["keras"]["perplexity"], rel=1e-4)
    assert cli.main(["evaluate", str(bundle), "--data", test_file, "--format", "saved_model"]) == 2
    assert "only generates" in capsys.readouterr().err

    copy = tmp_path / "copy"
    shutil.copytree(bundle, copy)
    before = json.loads((copy / "nlpkit.json").read_text())
    assert cli.main(["export", str(copy), "--no-int8"]) == 0
    after = json.loads((copy / "nlpkit.json").read_text())
    assert after["task"] == "language_model" and after["generation"] == before["generation"]
    assert after["metrics"] == before["metrics"] and after["parity"]["identical"] == {"tflite": True}
    capsys.readouterr()
    assert cli.main(["predict", str(copy), "--json", "--max-new-tokens", "5", "the "]) == 0
    assert json.loads(capsys.readouterr().out)["text"] == "the "
