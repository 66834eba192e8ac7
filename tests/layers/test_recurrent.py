"""nlpkit's GRU, LSTM and SimpleRNN against stock Keras, plus masking, dropout and errors."""

import keras
import numpy as np
import pytest

import nlpkit.layers
from nlpkit.layers import GRU, LSTM, SimpleRNN, recurrent_layer
from tests.layer_checks import run_layer_checks

UNITS = 5
FEATURES = 4
TIME = 6
ATOL = 1e-5

STOCK = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM, "simple_rnn": keras.layers.SimpleRNN}
OURS = {"gru": GRU, "lstm": LSTM, "simple_rnn": SimpleRNN}

# (cell, extra constructor options); reset_after=False is the other GRU weight layout.
VARIANTS = [
    ("gru", {"reset_after": True}),
    ("gru", {"reset_after": False}),
    ("lstm", {}),
    ("simple_rnn", {}),
]
VARIANT_IDS = ["gru", "gru_reset_before", "lstm", "simple_rnn"]
LENGTHS = [TIME, 4, 1, 3]


def right_padded(lengths, time=TIME, features=FEATURES, seed=0):
    """Random inputs and a right-padded mask; padding holds large junk that must not leak."""
    rng = np.random.default_rng(seed)
    inputs = rng.normal(size=(len(lengths), time, features)).astype("float32")
    mask = np.arange(time)[None, :] < np.asarray(lengths)[:, None]
    inputs[~mask] = 50.0 * rng.normal(size=(int((~mask).sum()), features))
    return inputs, mask


def randomize(layer, seed):
    # Default biases are zeros (and the LSTM forget bias ones); random values exercise them.
    rng = np.random.default_rng(seed)
    layer.set_weights(
        [rng.normal(scale=0.5, size=w.shape).astype("float32") for w in layer.get_weights()]
    )


def make_pair(cell, options, seed=1, input_dim=FEATURES, **kwargs):
    """A stock layer with random weights and the nlpkit layer holding the same weights."""
    stock = STOCK[cell](UNITS, **options, **kwargs)
    ours = recurrent_layer(cell, UNITS, **options, **kwargs)
    assert isinstance(ours, OURS[cell])
    stock.build((None, None, input_dim))
    ours.build((None, None, input_dim))
    randomize(stock, seed)
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in stock.get_weights()]
    ours.set_weights(stock.get_weights())
    return stock, ours


def assert_close(actual, expected, atol=ATOL):
    actual = actual if isinstance(actual, (list, tuple)) else [actual]
    expected = expected if isinstance(expected, (list, tuple)) else [expected]
    assert len(actual) == len(expected)
    for index, (a, e) in enumerate(zip(actual, expected)):
        np.testing.assert_allclose(
            np.asarray(a), np.asarray(e), atol=atol, rtol=0, err_msg=f"output {index}"
        )


@pytest.fixture(scope="module")
def batch():
    return right_padded(LENGTHS)


# ---------------------------------------------------------------- equivalence with stock Keras


@pytest.mark.parametrize("cell,options", VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backward"])
@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
def test_matches_stock_keras(cell, options, go_backwards, return_sequences, batch):
    inputs, mask = batch
    stock, ours = make_pair(
        cell,
        options,
        go_backwards=go_backwards,
        return_sequences=return_sequences,
        return_state=True,
    )
    assert_close(ours(inputs), stock(inputs))
    assert_close(ours(inputs, mask=mask), stock(inputs, mask=mask))


@pytest.mark.parametrize("cell,options", VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backward"])
def test_matches_stock_keras_with_initial_state(cell, options, go_backwards, batch):
    # Backwards, the padding comes first: Keras outputs zeros there, not the initial state.
    inputs, mask = batch
    stock, ours = make_pair(
        cell, options, return_sequences=True, return_state=True, go_backwards=go_backwards
    )
    rng = np.random.default_rng(3)
    states = [rng.normal(size=(len(inputs), UNITS)).astype("float32") for _ in ours.state_size]
    assert_close(ours(inputs, initial_state=states), stock(inputs, initial_state=states))
    assert_close(
        ours(inputs, mask=mask, initial_state=states),
        stock(inputs, mask=mask, initial_state=states),
    )


def test_single_tensor_initial_state_is_accepted(batch):
    inputs, _ = batch
    stock, ours = make_pair("gru", {})
    state = np.full((len(inputs), UNITS), 0.3, "float32")
    assert_close(ours(inputs, initial_state=state), stock(inputs, initial_state=[state]))


@pytest.mark.parametrize("cell,options", VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
def test_matches_stock_keras_inside_bidirectional(cell, options, return_sequences, batch):
    inputs, mask = batch
    options = dict(options, return_sequences=return_sequences)
    stock = keras.layers.Bidirectional(STOCK[cell](UNITS, **options))
    ours = keras.layers.Bidirectional(recurrent_layer(cell, UNITS, **options))
    stock.build((None, None, FEATURES))
    ours.build((None, None, FEATURES))
    randomize(stock, seed=4)
    ours.set_weights(stock.get_weights())
    # Bidirectional zeroes masked outputs when it returns sequences; the flag must reach ours.
    assert ours.forward_layer.zero_output_for_mask == return_sequences
    assert ours.backward_layer.go_backwards
    assert_close(ours(inputs), stock(inputs))
    assert_close(ours(inputs, mask=mask), stock(inputs, mask=mask))
    if return_sequences:
        padded = ~mask
        assert np.all(np.asarray(ours(inputs, mask=mask))[padded] == 0.0)


@pytest.mark.parametrize("cell,options", VARIANTS, ids=VARIANT_IDS)
def test_two_stacked_layers_match_stock_keras(cell, options, batch):
    inputs, mask = batch
    # Zeroed padding plus a Masking layer: the mask must flow from layer to layer by itself.
    inputs = np.where(mask[..., None], inputs, 0.0).astype("float32")
    stock_layers = [
        STOCK[cell](UNITS, return_sequences=True, **options),
        STOCK[cell](UNITS, **options),
    ]
    our_layers = [
        recurrent_layer(cell, UNITS, return_sequences=True, **options),
        recurrent_layer(cell, UNITS, **options),
    ]
    stock, ours = (
        keras.Sequential([keras.Input((None, FEATURES)), keras.layers.Masking(0.0), *layers])
        for layers in (stock_layers, our_layers)
    )
    randomize(stock, seed=5)
    ours.set_weights(stock.get_weights())
    assert_close(ours(inputs), stock(inputs))
    # The stacked result differs from the unmasked one, so the mask was really used.
    unmasked = our_layers[1](our_layers[0](inputs))
    assert not np.allclose(np.asarray(unmasked), np.asarray(ours(inputs)), atol=1e-3)


@pytest.mark.parametrize("cell,options", VARIANTS, ids=VARIANT_IDS)
def test_matches_stock_keras_without_bias_and_with_a_scattered_mask(cell, options, batch):
    inputs, _ = batch
    # The loop itself handles any mask (only fused kernels need right padding).
    scattered = np.random.default_rng(8).random(inputs.shape[:2]) < 0.5
    options = dict(options, use_bias=False, activation="relu")
    stock, ours = make_pair(cell, options, return_sequences=True)
    assert ours.bias is None
    assert_close(ours(inputs, mask=scattered), stock(inputs, mask=scattered))


def test_lstm_forget_bias_starts_at_one_like_keras():
    stock, ours = keras.layers.LSTM(3), LSTM(3)
    stock.build((None, None, 2))
    ours.build((None, None, 2))
    np.testing.assert_array_equal(ours.bias.numpy(), stock.cell.bias.numpy())
    np.testing.assert_array_equal(ours.bias.numpy(), [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    plain = LSTM(3, unit_forget_bias=False, bias_initializer="ones")
    plain.build((None, None, 2))
    assert np.all(plain.bias.numpy() == 1.0)


# ---------------------------------------------------------------- masking


@pytest.mark.parametrize("cell,options", VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backward"])
def test_padded_batch_equals_each_sequence_alone(cell, options, go_backwards, batch):
    inputs, mask = batch
    _, ours = make_pair(
        cell, options, go_backwards=go_backwards, return_sequences=True, return_state=True
    )
    padded = [np.asarray(t) for t in ours(inputs, mask=mask)]
    for row, length in enumerate(LENGTHS):
        alone = [np.asarray(t) for t in ours(inputs[row : row + 1, :length])]
        # Outputs follow processing order: backwards, the padding is processed first.
        steps = slice(0, length) if not go_backwards else slice(TIME - length, TIME)
        assert_close(padded[0][row : row + 1, steps], alone[0])
        assert_close([state[row : row + 1] for state in padded[1:]], alone[1:])


@pytest.mark.parametrize("cell,options", VARIANTS, ids=VARIANT_IDS)
def test_fully_masked_sequence_keeps_the_initial_state(cell, options, batch):
    inputs, mask = batch
    mask = mask.copy()
    mask[1] = False
    _, ours = make_pair(cell, options, return_sequences=True, return_state=True)
    outputs = [np.asarray(t) for t in ours(inputs, mask=mask)]
    for output in outputs:
        assert np.all(np.isfinite(output))
    # Nothing was read, so the zero initial state passes through untouched.
    for output in outputs:
        assert np.all(output[1] == 0.0)


# ---------------------------------------------------------------- dropout


@pytest.mark.parametrize("cell", ["gru", "lstm", "simple_rnn"])
@pytest.mark.parametrize(
    "rates", [(0.4, 0.0), (0.0, 0.4), (0.3, 0.3)], ids=["dropout", "recurrent", "both"]
)
def test_dropout_only_acts_in_training(cell, rates, batch):
    inputs, mask = batch
    _, plain = make_pair(cell, {}, return_sequences=True)
    noisy = recurrent_layer(
        cell, UNITS, return_sequences=True, dropout=rates[0], recurrent_dropout=rates[1], seed=7
    )
    noisy.build((None, None, FEATURES))
    noisy.set_weights(plain.get_weights())
    inference = noisy(inputs, mask=mask, training=False)
    assert_close(inference, plain(inputs, mask=mask))
    trained = np.asarray(noisy(inputs, mask=mask, training=True))
    assert np.all(np.isfinite(trained))
    assert not np.allclose(trained, np.asarray(inference), atol=1e-4)


# ---------------------------------------------------------------- layer checks and serialization


@pytest.mark.parametrize(
    "factory,expected_shape",
    [
        (lambda: GRU(UNITS, return_sequences=True), (4, TIME, UNITS)),
        (lambda: GRU(UNITS, reset_after=False, go_backwards=True), (4, UNITS)),
        (lambda: LSTM(UNITS, return_state=True), [(4, UNITS)] * 3),
        (
            lambda: SimpleRNN(
                UNITS, return_sequences=True, dropout=0.2, recurrent_dropout=0.2, seed=1
            ),
            (4, TIME, UNITS),
        ),
    ],
    ids=["gru", "gru_reset_before", "lstm_state", "simple_rnn_dropout"],
)
def test_layer_checks(factory, expected_shape, batch, tmp_path):
    inputs, mask = batch
    run_layer_checks(factory, inputs, tmp_path, mask=mask, expected_output_shape=expected_shape)


@pytest.mark.parametrize("cell,options", VARIANTS, ids=VARIANT_IDS)
def test_config_holds_every_argument(cell, options):
    arguments = dict(
        return_sequences=True,
        return_state=True,
        go_backwards=True,
        dropout=0.1,
        recurrent_dropout=0.2,
        seed=9,
        **options,
    )
    layer = recurrent_layer(cell, 3, **arguments)
    config = layer.get_config()
    expected = dict(units=3, **arguments)
    assert {key: config[key] for key in expected} == expected
    assert type(layer).from_config(config).get_config() == config


def test_compute_mask_and_output_shape():
    layer = LSTM(3, return_sequences=True, return_state=True)
    mask = np.ones((2, 4), bool)
    assert layer.compute_output_shape((2, 4, 7)) == [(2, 4, 3), (2, 3), (2, 3)]
    out_mask = layer.compute_mask(np.zeros((2, 4, 7), "float32"), mask)
    assert out_mask[0] is mask and out_mask[1:] == [None, None]
    assert GRU(3).compute_mask(None, mask) is None
    assert GRU(3, return_sequences=True).compute_output_shape((None, None, 2)) == (None, None, 3)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("units", [0, -3, 2.5, "8", None])
def test_invalid_units_name_the_value(units):
    with pytest.raises(ValueError, match="units") as info:
        GRU(units)
    assert repr(units) in str(info.value)


@pytest.mark.parametrize("name", ["dropout", "recurrent_dropout"])
@pytest.mark.parametrize("rate", [1.0, -0.1, 1.5])
def test_invalid_dropout_names_the_value(name, rate):
    with pytest.raises(ValueError, match=name) as info:
        LSTM(4, **{name: rate})
    assert repr(rate) in str(info.value)


def test_unknown_cell_lists_the_choices():
    with pytest.raises(ValueError) as info:
        recurrent_layer("nope", 4)
    message = str(info.value)
    assert "'nope'" in message
    for choice in ("gru", "lstm", "simple_rnn"):
        assert choice in message
    assert sorted(nlpkit.layers.RECURRENT_LAYERS) == [
        "gru", "lstm", "mamba", "mingru", "minlstm", "simple_rnn"
    ]


def test_wrong_number_of_initial_states(batch):
    inputs, _ = batch
    layer = LSTM(UNITS)
    with pytest.raises(ValueError, match="2 initial state"):
        layer(inputs, initial_state=[np.zeros((len(inputs), UNITS), "float32")])
