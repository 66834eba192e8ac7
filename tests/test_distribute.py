"""Tests for nlpkit.distribute: strategies, batch sizes, sharding, precision and seeds.

The MirroredStrategy checks run in a subprocess: two logical CPU devices must be configured
before TensorFlow initialises its devices, which the test process has long done. The
subprocess has a timeout, so a hang fails the test instead of blocking the run.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from nlpkit.distribute import (
    STRATEGIES,
    TrainingSetup,
    configure_precision,
    create_strategy,
    per_replica_batch_size,
    _replica_slices,
    setup_training,
    worker_index,
)
from nlpkit.errors import NlpkitError

ROOT = Path(__file__).resolve().parents[1]


def run_python(script, timeout, env=None):
    """Runs ``script`` in a fresh interpreter at the repository root; returns the process."""
    environment = {key: value for key, value in os.environ.items() if key != "TF_CONFIG"}
    environment.update({"PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})})
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], cwd=ROOT, env=environment,
        capture_output=True, text=True, timeout=timeout,
    )


def last_json_line(output):
    return json.loads([line for line in output.splitlines() if line.startswith("{")][-1])


@pytest.fixture(autouse=True)
def float32_policy():
    """The dtype policy is process-wide: every test leaves it as it found it."""
    yield
    keras.mixed_precision.set_global_policy("float32")


# ---------------------------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------------------------


def test_default_strategy_is_tensorflows_current_one():
    assert create_strategy("default") is tf.distribute.get_strategy()


def test_mirrored_strategy_uses_the_visible_devices():
    strategy = create_strategy("mirrored")
    assert isinstance(strategy, tf.distribute.MirroredStrategy)
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    assert strategy.num_replicas_in_sync == len(devices)


@pytest.mark.parametrize("name", ["Mirrored", "horovod", "", None])
def test_unknown_strategy_names_the_choices(name):
    with pytest.raises(NlpkitError, match=r"one of \['default', 'mirrored', 'multi_worker', 'tpu'\]") as error:
        create_strategy(name)
    assert repr(name) in str(error.value)


def test_multi_worker_without_tf_config_says_what_to_set(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(NlpkitError, match="needs the TF_CONFIG environment variable"):
        create_strategy("multi_worker")


@pytest.mark.parametrize(
    "text", ['{"cluster": {}}', "not json", '{"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}']
)
def test_malformed_tf_config_is_rejected_with_its_value(monkeypatch, text):
    monkeypatch.setenv("TF_CONFIG", text)
    with pytest.raises(NlpkitError, match="TF_CONFIG") as error:
        create_strategy("multi_worker")
    assert "Received" in str(error.value)


def test_tpu_without_a_tpu_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("TPU_NAME", raising=False)
    with pytest.raises(NlpkitError, match="--strategy tpu: no TPU found"):
        create_strategy("tpu")


def test_single_process_is_the_chief():
    assert worker_index(tf.distribute.get_strategy()) == 0
    setup = setup_training()
    assert setup.is_chief and setup.output_dir("out/bundle") == Path("out/bundle")


def test_non_chief_workers_write_next_to_the_chief(monkeypatch):
    setup = setup_training()
    monkeypatch.setattr(TrainingSetup, "worker_index", property(lambda self: 2))
    assert not setup.is_chief
    assert setup.output_dir("out/bundle") == Path("out/bundle.worker-2")


# ---------------------------------------------------------------------------------------------
# Batches and sharding
# ---------------------------------------------------------------------------------------------


class FakeStrategy:
    """Stands in for a strategy with ``replicas`` replicas (only the count is read)."""

    def __init__(self, replicas):
        self.num_replicas_in_sync = replicas


def test_per_replica_batch_size_splits_the_global_batch():
    assert per_replica_batch_size(64, FakeStrategy(4)) == 16
    assert per_replica_batch_size(7, FakeStrategy(1)) == 7


@pytest.mark.parametrize("batch_size", [30, 0, -8, 2.0])
def test_uneven_global_batch_is_rejected_with_a_suggestion(batch_size):
    with pytest.raises(NlpkitError, match="multiple of the 4 replicas") as error:
        per_replica_batch_size(batch_size, FakeStrategy(4))
    assert f"batch_size={batch_size!r}" in str(error.value)
    if batch_size == 30:
        assert "try 28 or 32" in str(error.value)


def test_default_setup_leaves_datasets_alone():
    dataset = tf.data.Dataset.range(3)
    assert setup_training().dataset(dataset) is dataset


def slices_of(batch, replicas, first, count):
    return list(_replica_slices(batch, replicas, first, count).as_numpy_iterator())


def test_replica_slices_cut_a_batch_into_equal_row_ranges():
    words = tf.reshape(tf.range(10 * 3), (10, 3))  # 10 rows: 2 left over for 4 replicas
    batch = ({"word_ids": words}, tf.range(10))
    pieces = slices_of(batch, replicas=4, first=0, count=4)
    assert [labels.tolist() for _, labels in pieces] == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert all(inputs["word_ids"].shape == (2, 3) for inputs, _ in pieces)
    np.testing.assert_array_equal(pieces[1][0]["word_ids"], words.numpy()[2:4])
    # A worker holding replicas 2 and 3 of the 4 keeps only their slices.
    assert [labels.tolist() for _, labels in slices_of(batch, 4, first=2, count=2)] == [[4, 5], [6, 7]]
    # A batch of one tensor (or one dict) keeps that structure.
    assert [piece.tolist() for piece in slices_of((tf.range(4),), 2, 0, 2)] == [[0, 1], [2, 3]]


def test_setup_checks_the_batch_size_against_the_replicas():
    assert setup_training(batch_size=5).batch_size == 5
    with pytest.raises(NlpkitError, match="batch_size=0"):
        setup_training(batch_size=0)


# ---------------------------------------------------------------------------------------------
# Precision and seeds
# ---------------------------------------------------------------------------------------------


def test_mixed_precision_on_cpu_is_bfloat16_and_false_restores_float32():
    assert configure_precision(True) == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    assert configure_precision(False) == "float32"
    assert keras.mixed_precision.global_policy().name == "float32"
    with pytest.raises(ValueError, match="mixed_precision='yes'"):
        configure_precision("yes")


def tiny_classifier_run(seed, mixed_precision=False, steps=3):
    """Builds and trains the sentiment recipe's model for ``steps`` batches; returns it."""
    from recipes.sentiment_gru import Config, build_model

    setup_training(seed=seed, mixed_precision=mixed_precision)
    config = Config(embedding_dim=8, units=8, learning_rate=0.01)
    model = build_model(config, vocabulary_size=40, num_classes=2)
    ids = np.random.default_rng(0).integers(1, 40, (16 * steps, 9))
    labels = (ids[:, 0] > 20).astype("int32")
    history = model.fit(ids, labels, batch_size=16, epochs=1, shuffle=True, verbose=0)
    return model, history.history["loss"]


def test_same_seed_same_weights_different_seed_different_weights():
    first, _ = tiny_classifier_run(seed=7)
    second, _ = tiny_classifier_run(seed=7)
    third, _ = tiny_classifier_run(seed=8)
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, c) for a, c in zip(first.get_weights(), third.get_weights()))


def test_mixed_precision_training_keeps_variables_and_outputs_in_float32():
    model, losses = tiny_classifier_run(seed=7, mixed_precision=True)
    assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    assert model.embedding.compute_dtype == "bfloat16"
    assert {weight.dtype for weight in model.weights} == {"float32"}
    scores = model(np.ones((2, 5), "int32"))
    assert scores.dtype == "float32"  # the softmax runs in float32
    np.testing.assert_allclose(np.sum(scores, axis=-1), 1.0, rtol=1e-6)
    assert np.isfinite(losses).all()


def test_mixed_precision_crf_and_language_model_heads_stay_float32():
    from nlpkit.layers import CRF
    from nlpkit.models import LanguageModel

    configure_precision(True)
    crf = CRF(3)
    emissions = tf.constant(np.random.default_rng(1).normal(size=(2, 4, 3)), "bfloat16")
    crf.build(emissions.shape)
    nll = crf.negative_log_likelihood(emissions, tf.constant([[0, 1, 2, 0], [1, 1, 0, 0]]))
    assert nll.dtype == "float32" and crf.transitions.dtype == "float32"
    model = LanguageModel(vocabulary_size=30, embedding_dim=8, units=8, num_layers=1)
    logits = model(np.ones((2, 5), "int32"))
    assert model.recurrent_layers[0].compute_dtype == "bfloat16" and logits.dtype == "float32"


@pytest.mark.parametrize("cell", ["lstm", "gru", "mingru", "mamba"])
def test_mixed_precision_step_forms_take_float32_states_and_follow_the_sequence(cell):
    # Generation and streaming call `step` directly, outside Keras' autocast scope, and
    # carry states that start as float32 zeros.
    from nlpkit.models import LanguageModel

    configure_precision(True)
    model = LanguageModel(vocabulary_size=30, embedding_dim=8, units=8, num_layers=2, cell=cell)
    tokens = np.array([[3, 7, 1, 9, 4]], "int32")
    full = model(tokens).numpy()
    states = [np.zeros(state.shape, "float32") for state in model.initial_states(1)]
    for t in range(tokens.shape[1]):
        logits, states = model.step(tokens[:, t], states)
        assert logits.dtype == "float32"
        np.testing.assert_allclose(logits.numpy()[0], full[0, t], atol=0.05)  # bfloat16 compute


def test_local_model_after_mixed_precision_is_a_float32_copy_with_the_same_weights():
    model, _ = tiny_classifier_run(seed=7, mixed_precision=True)
    setup = TrainingSetup(strategy=tf.distribute.get_strategy(), strategy_name="default",
                          precision="mixed_bfloat16", seed=7)
    copy = setup.local_model(model)
    assert keras.mixed_precision.global_policy().name == "float32"
    assert {layer.compute_dtype for layer in copy._flatten_layers()} == {"float32"}
    for ours, theirs in zip(model.get_weights(), copy.get_weights()):
        np.testing.assert_array_equal(ours, theirs)
    ids = np.random.default_rng(3).integers(1, 40, (4, 9))
    float32_scores = copy.predict(ids, verbose=0)
    np.testing.assert_allclose(float32_scores, model.predict(ids, verbose=0), atol=0.02)


# ---------------------------------------------------------------------------------------------
# Two logical CPU devices under MirroredStrategy (subprocess)
# ---------------------------------------------------------------------------------------------

MIRRORED_SCRIPT = """
import json, sys
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras
from nlpkit.data import classification_dataset, tagging_dataset
from nlpkit.distribute import setup_training
from recipes import ner_bilstm_crf, sentiment_gru, translation

# Plain SGD with a large step: a gradient summed instead of averaged over the replicas
# would show as a doubled update (Adam would hide it).
def sgd():
    return keras.optimizers.SGD(0.5)

def classifier_parts():
    config = sentiment_gru.Config(embedding_dim=8, units=8, dropout=0.0, embedding_dropout=0.0)
    rows = sentiment_gru.load_splits(config)["train"][:64]
    twin, graph = sentiment_gru.build_tokenizer(config, [row.text for row in rows])
    labels = sorted({row.label for row in rows})
    data = classification_dataset([row.text for row in rows], [labels.index(row.label) for row in rows], graph,
                                  batch_size=16, num_buckets=1)

    def build():
        model = sentiment_gru.build_model(config, len(twin.vocabulary), len(labels))
        model.compile(optimizer=sgd(), loss="sparse_categorical_crossentropy")
        return model
    return data, build

def tagger_parts():
    config = ner_bilstm_crf.Config(units=8, word_embedding_dim=8, char_embedding_dim=4, char_filters=4, casing_dim=2,
                                   dropout=0.0, word_dropout=0.0)
    splits, scheme = ner_bilstm_crf.load_splits(config)
    rows = splits["train"][:64]
    tokenizer = ner_bilstm_crf.build_tokenizer(config, rows)
    from nlpkit.text.tag_schemes import scheme_tags
    tags = scheme_tags(ner_bilstm_crf.entity_types(rows), config.tag_scheme)

    def build():
        model = ner_bilstm_crf.build_model(config, tokenizer, tags, scheme)
        model.compile(optimizer=sgd())
        return model
    data = tagging_dataset(*ner_bilstm_crf.encode(build(), tokenizer, rows), batch_size=16, num_buckets=1)
    return data, build

def seq2seq_parts():
    from nlpkit.data.translation import encode_pairs, translation_dataset
    config = translation.Config(embedding_dim=8, units=8, dropout=0.0, vocabulary_size=120)
    rows = translation.load_pairs(config)["train"][:64]
    tokenizer, _ = translation.build_tokenizer(config, rows)
    data = translation_dataset(*encode_pairs(tokenizer, rows, config.max_length), batch_size=16, num_buckets=1)

    def build():
        model = translation.build_model(config, tokenizer.vocabulary_size)
        model.compile(optimizer=sgd(), jit_compile=False)
        return model
    return data, build

def train(parts, strategy, initial):
    data, build = parts
    setup = setup_training(strategy=strategy, seed=1, batch_size=16)
    model = setup.build(build)
    if initial is not None:
        model.set_weights(initial)
    start = model.get_weights()
    history = model.fit(setup.dataset(data), epochs=2, verbose=0)
    return setup.num_replicas, start, model.get_weights(), history.history["loss"]

result = {}
for name, parts in (("classifier", classifier_parts()), ("tagger", tagger_parts()), ("seq2seq", seq2seq_parts())):
    replicas_1, start, single, single_loss = train(parts, "default", None)
    replicas_2, _, mirrored, mirrored_loss = train(parts, "mirrored", start)
    result[name] = {
        "replicas": [replicas_1, replicas_2],
        "single_loss": single_loss,
        "mirrored_loss": mirrored_loss,
        "max_weight_diff": max(float(np.abs(a - b).max()) for a, b in zip(single, mirrored)),
        "max_weight_change": max(float(np.abs(a - b).max()) for a, b in zip(single, start)),
    }

# The whole recipe, distributed: it must train, evaluate and export a bundle.
sentiment_gru.main([RECIPE_FLAGS, "--strategy", "mirrored", "--output-dir", BUNDLE_DIR])
print(json.dumps(result))
"""


def recipe_flags(argv):
    """``argv`` without its ``--output-dir`` pair."""
    index = argv.index("--output-dir")
    return argv[:index] + argv[index + 2 :]


@pytest.fixture(scope="module")
def mirrored_run(trained_sentiment, tmp_path_factory):
    """Runs MIRRORED_SCRIPT once: model-level comparisons, then the sentiment recipe mirrored."""
    bundle = tmp_path_factory.mktemp("mirrored") / "bundle"
    process = run_python(
        MIRRORED_SCRIPT.replace("BUNDLE_DIR", repr(str(bundle))).replace(
            "RECIPE_FLAGS", ", ".join(repr(flag) for flag in recipe_flags(trained_sentiment.argv))
        ),
        timeout=480,
    )
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-5000:]
    return last_json_line(process.stdout), bundle, process.stdout


@pytest.mark.parametrize("model", ["classifier", "tagger", "seq2seq"])
def test_two_replicas_train_the_same_weights_as_one_device(mirrored_run, model):
    result = mirrored_run[0][model]
    print(json.dumps(result))
    assert result["replicas"] == [1, 2]
    assert result["max_weight_change"] > 1e-2  # training moved the weights
    # Same data, same initial weights: only the order of float additions differs.
    assert result["max_weight_diff"] < 1e-4
    np.testing.assert_allclose(result["mirrored_loss"], result["single_loss"], rtol=1e-4)


def test_mirrored_recipe_writes_a_bundle_as_good_as_single_device(mirrored_run, trained_sentiment):
    _, bundle, log = mirrored_run
    assert "strategy mirrored (MirroredStrategy, 2 replica(s), worker 0)" in log
    manifest = json.loads((bundle / "nlpkit.json").read_text())
    single = json.loads((trained_sentiment.path / "nlpkit.json").read_text())
    assert manifest["config"]["strategy"] == "mirrored"
    assert manifest["parity"]["max_abs_diff"]["tflite"] <= 1e-4
    mirrored_accuracy = manifest["metrics"]["valid"]["accuracy"]
    single_accuracy = single["metrics"]["valid"]["accuracy"]
    print(f"valid accuracy: mirrored {mirrored_accuracy:.4f}, single device {single_accuracy:.4f}")
    # The mirrored run leaves a row out of odd-sized partial batches, so its shuffled
    # batches differ slightly; 60 validation sentences make 0.1 about six sentences.
    assert abs(mirrored_accuracy - single_accuracy) <= 0.1
