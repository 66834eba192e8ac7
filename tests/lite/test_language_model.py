"""nlpkit.lite generation: the TFLite step function against the Keras one, and TensorFlow-free use.

The bundle is written once per module from a small LanguageModel with random weights, spread
wide enough that the logits are far from ties, so greedy and beam outputs are comparable.
"""

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from nlpkit.data import build_lm_tokenizer
from nlpkit.decoding import KerasStepFunction, generate, generate_text
from nlpkit.lite import LanguageModelGenerator, TFLiteStepFunction

TEXT = "the river bends twice\nthe ferry waits for the fog\nwren bakes bread at dawn\n"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    import keras

    from nlpkit.export import write_language_model_bundle
    from nlpkit.models import LanguageModel
    from nlpkit.text import WordTokenizer

    tokenizer = build_lm_tokenizer(TEXT, "word")
    keras.utils.set_random_seed(0)
    model = LanguageModel(len(tokenizer.vocabulary), embedding_dim=8, units=12, num_layers=2, cell="lstm")
    model(np.zeros((1, 1), "int32"))
    rng = np.random.default_rng(0)
    for weight in model.weights:
        weight.assign(rng.normal(0, 0.7, weight.shape).astype("float32"))
    bundle = tmp_path_factory.mktemp("lite_lm") / "bundle"
    write_language_model_bundle(bundle, model, tokenizer, WordTokenizer.from_python(tokenizer))
    return model, tokenizer, bundle


def test_step_function_matches_keras(exported):
    model, _, bundle = exported
    lite = TFLiteStepFunction(bundle / "model.tflite")
    keras_step = KerasStepFunction(model)
    assert lite.input_name == "token_id" and lite.output_name == "logits"
    assert lite.state_names == ("state_0_c", "state_0_h", "state_1_c", "state_1_h")
    assert [s.shape for s in lite.initial_states(3)] == [(3, 12), (3, 12), (3, 8), (3, 8)]
    tokens = np.array([[2, 5, 7, 3], [4, 4, 9, 1]], np.int32)
    lite_states, keras_states = lite.initial_states(2), keras_step.initial_states(2)
    for t in range(tokens.shape[1]):
        lite_logits, lite_states = lite.logits(tokens[:, t], lite_states)
        keras_logits, keras_states = keras_step.logits(tokens[:, t], keras_states)
        np.testing.assert_allclose(lite_logits, keras_logits, atol=1e-4)
    # The same states, in each function's own order (sorted names vs layer order, h first).
    np.testing.assert_allclose(lite_states[1], keras_states[0], atol=1e-5)
    np.testing.assert_allclose(lite_states[0], keras_states[1], atol=1e-5)


@pytest.mark.parametrize("method, options", [("greedy", {}), ("beam", {"beam_width": 3, "stop_ids": [2]})])
def test_generator_reproduces_keras_generation(exported, method, options):
    model, tokenizer, bundle = exported
    prompts = ["the river", "", "wren bakes bread", "fog"]
    keras_texts, keras_result = generate_text(KerasStepFunction(model), tokenizer, prompts, 40, method, **options)
    generator = LanguageModelGenerator(bundle)
    lite_texts, lite_result = generator.generate_with_ids(prompts, 40, method, **options)
    assert lite_result.tokens == keras_result.tokens
    assert lite_texts == keras_texts
    assert generator.generate(prompts[0], 40, method, **options) == keras_texts[0]


def test_int8_model_generates_and_precision_is_checked(exported):
    _, tokenizer, bundle = exported
    text = LanguageModelGenerator(bundle, precision="int8").generate("the ferry", 12, method="sample", seed=4, top_k=5)
    assert isinstance(text, str) and len(text.split()) >= 1
    with pytest.raises(ValueError, match="'int4'"):
        LanguageModelGenerator(bundle, precision="int4")


def test_step_function_rejects_a_signature_that_does_not_stream(tmp_path):
    import tensorflow as tf

    from nlpkit.export import convert
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    endpoints = {"classify": (lambda x: {"scores": model(x)}, [tf.TensorSpec([1, 3], tf.float32, name="x")])}
    content = convert(model, endpoints)
    with pytest.raises(ValueError, match="not a one-input, one-output streaming step"):
        TFLiteStepFunction(content, signature="classify")


def test_lite_generation_does_not_import_tensorflow(exported):
    _, _, bundle = exported
    code = textwrap.dedent(f"""
        import sys
        from nlpkit.lite import LanguageModelGenerator
        text = LanguageModelGenerator({str(bundle)!r}).generate("the river", 10, method="beam", beam_width=2)
        assert isinstance(text, str)
        heavy = sorted(name for name in ("tensorflow", "keras") if name in sys.modules)
        assert not heavy, heavy
    """)
    # Run from the repository root so that `import nlpkit` is this checkout's.
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(Path(__file__).resolve().parents[2]))
