"""The hand-written backward pass against TensorFlow autodiff through the plain loop.

Gradients are compared in float64 so that 1e-5 checks the algebra, not round-off; the
one-step ``fit`` comparison runs in float32 like real training.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from nlpkit.layers import GRU, LSTM, SimpleRNN

UNITS = 5
FEATURES = 4
TIME = 6
ATOL = 1e-5

VARIANTS = [
    (GRU, {"reset_after": True}),
    (GRU, {"reset_after": False}),
    (LSTM, {}),
    (SimpleRNN, {}),
]
VARIANT_IDS = ["gru", "gru_reset_before", "lstm", "simple_rnn"]
# A full row, a padded row and a fully masked row.
LENGTHS = [TIME, 3, 0]
OUTPUT_MODES = [
    {"return_sequences": False},
    {"return_sequences": True},
    {"return_sequences": True, "zero_output_for_mask": True},
]
OUTPUT_IDS = ["last", "sequences", "zero_masked_sequences"]


def random_weights(layer, seed):
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.normal(scale=0.5, size=w.shape) for w in layer.get_weights()])


def inputs_and_mask(masked, seed=0, dtype="float64"):
    rng = np.random.default_rng(seed)
    inputs = tf.constant(rng.normal(size=(len(LENGTHS), TIME, FEATURES)).astype(dtype))
    mask = None
    if masked:
        mask = tf.constant(np.arange(TIME)[None, :] < np.asarray(LENGTHS)[:, None])
    return inputs, mask


def weighted_loss(outputs):
    """A scalar that weighs every output element differently.

    Position-dependent weights make a loss that would not notice outputs in the wrong
    time order (a symmetric sum would hide a ``go_backwards`` ordering bug).
    """
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    total = 0.0
    for k, output in enumerate(outputs):
        shape = tf.shape(output)[1:]
        weights = tf.reshape(tf.linspace(0.5, 2.0, tf.reduce_prod(shape)), shape) + k
        total += tf.reduce_sum(tf.sin(output * tf.cast(weights, output.dtype)))
    return total


def layer_gradients(cls, options, fast, inputs, mask, initial_state=None, seed=1):
    """Loss and gradients w.r.t. inputs, initial states and every weight."""
    layer = cls(UNITS, fast_backward=fast, dtype="float64", **options)
    layer.build((None, None, FEATURES))
    random_weights(layer, seed)
    initial_state = initial_state or []
    with tf.GradientTape() as tape:
        tape.watch([inputs] + initial_state)
        outputs = layer(inputs, mask=mask, initial_state=initial_state or None, training=True)
        loss = weighted_loss(outputs)
    gradients = tape.gradient(loss, [inputs] + initial_state + layer.trainable_weights)
    return [loss] + gradients


def assert_all_close(actual, expected, atol=ATOL):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert a is not None and e is not None
        np.testing.assert_allclose(np.asarray(a), np.asarray(e), atol=atol, rtol=0)


def random_states(cls, seed=7):
    rng = np.random.default_rng(seed)
    count = 2 if cls is LSTM else 1
    return [tf.constant(rng.normal(size=(len(LENGTHS), UNITS))) for _ in range(count)]


@pytest.mark.parametrize("output_mode", OUTPUT_MODES, ids=OUTPUT_IDS)
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backward"])
@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
@pytest.mark.parametrize("cls,options", VARIANTS, ids=VARIANT_IDS)
def test_gradients_match_autodiff(cls, options, masked, go_backwards, output_mode):
    inputs, mask = inputs_and_mask(masked)
    options = dict(options, go_backwards=go_backwards, return_state=True, **output_mode)
    initial = random_states(cls)
    expected = layer_gradients(cls, options, False, inputs, mask, initial)
    actual = layer_gradients(cls, options, True, inputs, mask, initial)
    assert_all_close(actual, expected)


@pytest.mark.parametrize("cls,options", VARIANTS, ids=VARIANT_IDS)
def test_gradients_match_without_initial_state_or_bias(cls, options):
    inputs, mask = inputs_and_mask(True)
    options = dict(options, use_bias=False, return_sequences=True)
    expected = layer_gradients(cls, options, False, inputs, mask)
    actual = layer_gradients(cls, options, True, inputs, mask)
    assert_all_close(actual, expected)


@pytest.mark.parametrize("cls,options", VARIANTS, ids=VARIANT_IDS)
def test_gradients_match_with_recurrent_dropout(cls, options):
    # The same seed gives both layers the same per-sequence mask on the first call.
    inputs, mask = inputs_and_mask(True)
    options = dict(options, recurrent_dropout=0.4, seed=3, return_sequences=True)
    expected = layer_gradients(cls, options, False, inputs, mask, random_states(cls))
    actual = layer_gradients(cls, options, True, inputs, mask, random_states(cls))
    assert_all_close(actual, expected)


@pytest.mark.parametrize("cls,options", VARIANTS, ids=VARIANT_IDS)
def test_gradients_match_inside_a_compiled_function(cls, options):
    inputs, mask = inputs_and_mask(True)
    options = dict(options, go_backwards=True, return_sequences=True)
    results = []
    for fast in (False, True):
        layer = cls(UNITS, fast_backward=fast, dtype="float64", **options)
        layer.build((None, None, FEATURES))
        random_weights(layer, 2)

        @tf.function
        def gradients(inputs, mask):
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                loss = weighted_loss(layer(inputs, mask=mask, training=True))
            return tape.gradient(loss, [inputs] + layer.trainable_weights)

        results.append(gradients(inputs, mask))
    assert_all_close(results[1], results[0])


def bidirectional_stack(cls, options, fast):
    inputs = keras.Input((None, FEATURES), dtype="float64")
    mask = keras.Input((None,), dtype="bool")
    x = keras.layers.Bidirectional(
        cls(UNITS, return_sequences=True, fast_backward=fast, dtype="float64", **options),
        dtype="float64",
    )(inputs, mask=mask)
    x = cls(UNITS, go_backwards=True, fast_backward=fast, dtype="float64", **options)(x, mask=mask)
    model = keras.Model([inputs, mask], x)
    random_weights(model, 4)
    return model


@pytest.mark.parametrize("cls,options", VARIANTS, ids=VARIANT_IDS)
def test_bidirectional_and_stacked_gradients_match(cls, options):
    inputs, mask = inputs_and_mask(True)
    results = []
    for fast in (False, True):
        model = bidirectional_stack(cls, options, fast)
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            loss = weighted_loss(model([inputs, mask], training=True))
        results.append([loss] + tape.gradient(loss, [inputs] + model.trainable_weights))
    assert_all_close(results[1], results[0])


def fitted_weights(cls, options, fast):
    keras.utils.set_random_seed(5)
    model = keras.Sequential(
        [
            keras.Input((TIME,), dtype="int32"),
            keras.layers.Embedding(20, FEATURES, mask_zero=True),
            keras.layers.Bidirectional(
                cls(UNITS, return_sequences=True, fast_backward=fast, **options)
            ),
            cls(UNITS, fast_backward=fast, **options),
            keras.layers.Dense(3),
        ]
    )
    model.compile(
        keras.optimizers.SGD(0.5), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 20, size=(4, TIME))
    tokens[1, 4:] = 0
    tokens[2, 2:] = 0
    labels = rng.integers(0, 3, size=(4,))
    model.fit(tokens, labels, batch_size=4, epochs=1, verbose=0)
    return model.get_weights()


@pytest.mark.parametrize("cls,options", VARIANTS, ids=VARIANT_IDS)
def test_one_fit_step_matches_autodiff(cls, options):
    assert_all_close(fitted_weights(cls, options, True), fitted_weights(cls, options, False))


@pytest.mark.parametrize(
    "cls,options",
    [
        (GRU, {"activation": "relu"}),
        (LSTM, {"recurrent_activation": "hard_sigmoid"}),
        (SimpleRNN, {"activation": "relu"}),
    ],
    ids=["gru_relu", "lstm_hard_sigmoid", "simple_rnn_relu"],
)
def test_other_activations_fall_back_to_autodiff(cls, options):
    layer = cls(UNITS, **options)
    layer.build((None, None, FEATURES))
    assert layer.cell.fast_backward_inputs() is None
    inputs, mask = inputs_and_mask(True)
    options = dict(options, return_sequences=True)
    expected = layer_gradients(cls, options, False, inputs, mask)
    actual = layer_gradients(cls, options, True, inputs, mask)
    assert_all_close(actual, expected)


@pytest.mark.parametrize("cls,options", VARIANTS, ids=VARIANT_IDS)
def test_training_forward_values_match_inference(cls, options):
    inputs, mask = inputs_and_mask(True, dtype="float32")
    layer = cls(UNITS, return_sequences=True, return_state=True, **options)
    layer.build((None, None, FEATURES))
    random_weights(layer, 6)
    assert layer.cell.fast_backward_inputs() is not None
    assert_all_close(
        layer(inputs, mask=mask, training=True), layer(inputs, mask=mask, training=False)
    )


def test_fast_backward_is_in_the_config():
    layer = LSTM(3, fast_backward=False)
    config = layer.get_config()
    assert config["fast_backward"] is False
    assert LSTM.from_config(config).fast_backward is False
    assert LSTM(3).fast_backward is True
