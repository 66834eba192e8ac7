"""nlpkit's cells: the Keras cell API, inside stock ``keras.layers.RNN`` and inside our layers."""

import io
import zipfile

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

import nlpkit.layers
from nlpkit.layers import GRU, LSTM, GRUCell, LSTMCell, SimpleRNN, SimpleRNNCell
from tests.layers.test_recurrent import assert_close, randomize, right_padded

UNITS = 5
FEATURES = 4
TIME = 6
LENGTHS = [TIME, 4, 1, 3]

# (our cell, stock cell, our layer, extra options)
VARIANTS = [
    (GRUCell, keras.layers.GRUCell, GRU, {"reset_after": True}),
    (GRUCell, keras.layers.GRUCell, GRU, {"reset_after": False}),
    (LSTMCell, keras.layers.LSTMCell, LSTM, {}),
    (SimpleRNNCell, keras.layers.SimpleRNNCell, SimpleRNN, {}),
]
VARIANT_IDS = ["gru", "gru_reset_before", "lstm", "simple_rnn"]


@pytest.fixture(scope="module")
def batch():
    return right_padded(LENGTHS)


def built(layer, input_shape=(None, None, FEATURES)):
    layer.build(input_shape)
    return layer


@pytest.mark.parametrize("ours,stock,layer_class,options", VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backward"])
def test_cell_in_keras_rnn_matches_stock_cell_and_our_layer(
    ours, stock, layer_class, options, go_backwards, batch
):
    inputs, mask = batch
    rnn_options = dict(return_sequences=True, return_state=True, go_backwards=go_backwards)
    stock_rnn = built(keras.layers.RNN(stock(UNITS, **options), **rnn_options))
    our_rnn = built(keras.layers.RNN(ours(UNITS, **options), **rnn_options))
    layer = built(layer_class(UNITS, **options, **rnn_options))
    randomize(stock_rnn, seed=2)
    # The cell's weights have the stock cell's names, shapes and order.
    assert [w.path.split("/")[-1] for w in our_rnn.weights] == [
        w.path.split("/")[-1] for w in stock_rnn.weights
    ]
    our_rnn.set_weights(stock_rnn.get_weights())
    layer.set_weights(stock_rnn.get_weights())
    for call_mask in (None, mask):
        expected = stock_rnn(inputs, mask=call_mask)
        assert_close(our_rnn(inputs, mask=call_mask), expected)
        assert_close(layer(inputs, mask=call_mask), expected)


@pytest.mark.parametrize("ours,stock,layer_class,options", VARIANTS, ids=VARIANT_IDS)
def test_cell_api_matches_keras(ours, stock, layer_class, options):
    cell, reference = ours(UNITS, **options), stock(UNITS, **options)
    sizes = reference.state_size
    sizes = sizes if isinstance(sizes, list) else [sizes]
    assert cell.state_size == sizes and cell.output_size == UNITS
    built(cell, (None, FEATURES))
    built(reference, (None, FEATURES))
    randomize(reference, seed=3)
    cell.set_weights(reference.get_weights())

    states = cell.get_initial_state(batch_size=3)
    assert [tuple(s.shape) for s in states] == [(3, size) for size in sizes]
    assert all(np.all(np.asarray(s) == 0.0) for s in states)
    rng = np.random.default_rng(4)
    inputs = rng.normal(size=(3, FEATURES)).astype("float32")
    states = [rng.normal(size=(3, size)).astype("float32") for size in sizes]
    output, new_states = cell(inputs, states)
    expected_output, expected_states = reference(inputs, states if len(sizes) > 1 else states[0])
    assert_close(output, expected_output)
    expected_states = expected_states if isinstance(expected_states, list) else [expected_states]
    assert_close(new_states, expected_states)
    # The first state is the output, as Keras' RNN layer expects.
    assert_close(new_states[0], output)


def test_layer_holds_its_cell_and_reads_the_cells_arguments():
    layer = LSTM(UNITS, dropout=0.25, layer_norm=True, unit_forget_bias=False, seed=3)
    assert isinstance(layer.cell, LSTMCell) and layer.cell.units == UNITS
    assert (layer.dropout, layer.layer_norm, layer.unit_forget_bias, layer.seed) == (
        0.25, True, False, 3
    )
    built(layer)
    assert layer.kernel is layer.cell.kernel and layer.bias is layer.cell.bias
    assert layer.state_size == [UNITS, UNITS]
    assert GRU(3, reset_after=False).cell.reset_after is False
    # The layer owns no weights of its own: get_weights() is the cell's, stock order first.
    assert [w.path.split("/")[-1] for w in layer.weights][:3] == [
        "kernel", "recurrent_kernel", "bias"
    ]
    assert len(layer.weights) == len(layer.cell.weights)


def test_step_runs_the_cell(batch):
    inputs, _ = batch
    layer = built(GRU(UNITS, return_sequences=True))
    randomize(layer, seed=5)
    expected = np.asarray(layer(inputs))
    states = layer.get_initial_state(len(inputs))
    for t in range(TIME):
        output, states = layer.step(inputs[:, t], states)
        assert_close(output, expected[:, t])


def test_dropout_masks_stay_fixed_over_a_sequence_in_keras_rnn():
    # A linear cell with identity weights makes every step's output its own input times the
    # dropout mask (scaled by 1 / keep), so equal inputs show whether the mask changes.
    cell = SimpleRNNCell(
        3,
        activation="linear",
        dropout=0.5,
        seed=1,
        kernel_initializer="identity",
        recurrent_initializer="zeros",
    )
    rnn = keras.layers.RNN(cell, return_sequences=True)
    inputs = np.ones((4, 5, 3), "float32")

    @tf.function
    def train_call(x):
        return rnn(x, training=True)

    outputs = np.asarray(train_call(inputs))
    assert set(np.unique(outputs)) <= {0.0, 2.0}
    assert 0.0 in outputs and 2.0 in outputs
    np.testing.assert_array_equal(outputs, np.repeat(outputs[:, :1], 5, axis=1))
    # Masks are drawn again for the next sequence, and inference uses none.
    assert not np.array_equal(np.asarray(train_call(inputs)), outputs)
    np.testing.assert_array_equal(np.asarray(rnn(inputs)), inputs)


@pytest.mark.parametrize("ours,stock,layer_class,options", VARIANTS, ids=VARIANT_IDS)
def test_cell_config_round_trip(ours, stock, layer_class, options):
    cell = ours(3, dropout=0.1, recurrent_dropout=0.2, seed=4, layer_norm=True, **options)
    config = cell.get_config()
    assert config["layer_norm"] is True and config["dropout"] == 0.1
    assert type(cell).from_config(config).get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(cell))
    assert type(restored) is ours and restored.get_config() == config


@pytest.mark.parametrize(
    "cell",
    [
        lambda: LSTMCell(UNITS, layer_norm=True),
        lambda: GRUCell(UNITS, dropout=0.2, recurrent_dropout=0.2, seed=1),
    ],
    ids=["lstm_layer_norm", "gru_dropout"],
)
def test_keras_rnn_with_our_cell_trains_saves_and_loads(cell, batch, tmp_path):
    # (run_layer_checks does not fit here: keras.layers.RNN.from_config pops the cell
    # out of the config it is given.)
    inputs, mask = batch
    sequences = keras.Input((None, FEATURES))
    step_mask = keras.Input((None,), dtype="bool")
    rnn = keras.layers.RNN(cell(), return_sequences=True)
    model = keras.Model([sequences, step_mask], rnn(sequences, mask=step_mask))
    model.compile(keras.optimizers.SGD(0.1), "mse")
    before = model.get_weights()
    targets = np.random.default_rng(0).normal(size=(len(inputs), TIME, UNITS))
    model.fit([inputs, mask], targets, batch_size=len(inputs), verbose=0)
    for weight, old in zip(model.weights, before):
        assert not np.array_equal(weight.numpy(), old), f"{weight.path} did not train"
    model.save(tmp_path / "rnn.keras")
    reloaded = keras.saving.load_model(tmp_path / "rnn.keras", safe_mode=True)
    assert type(reloaded.layers[-1].cell) is type(rnn.cell)
    assert_close(reloaded([inputs, mask]), model([inputs, mask]), atol=1e-6)


@pytest.mark.parametrize(
    "make",
    [
        lambda: LSTMCell(0),
        lambda: GRUCell(2.5),
        lambda: SimpleRNNCell(True),
        lambda: LSTMCell(3, dropout=1.0),
        lambda: GRUCell(3, layer_norm="yes"),
    ],
    ids=["zero_units", "float_units", "bool_units", "dropout", "layer_norm"],
)
def test_invalid_cell_arguments_name_the_value(make):
    with pytest.raises(ValueError, match="Received"):
        make()


def test_layer_refuses_something_that_is_not_a_cell():
    with pytest.raises(ValueError, match="cell=.*Dense"):
        nlpkit.layers.RecurrentLayer(keras.layers.Dense(3))


def _move_cell_weights_onto_layers(keras_file, legacy_file):
    """Rewrites a ``.keras`` file into the layout of nlpkit before layers held cells.

    Back then a layer stored its weights under ``<layer>/vars`` and had no cell entry.
    """
    with zipfile.ZipFile(keras_file) as source, zipfile.ZipFile(legacy_file, "w") as target:
        for name in source.namelist():
            if name != "model.weights.h5":
                target.writestr(name, source.read(name))
        buffer = io.BytesIO(source.read("model.weights.h5"))
        with h5py.File(buffer, "r+") as weights:
            cells = []
            weights.visit(lambda path: cells.append(path) if path.endswith("/cell") else None)
            for cell_path in cells:
                layer_vars = weights[cell_path.rsplit("/", 1)[0] + "/vars"]
                for key, dataset in weights[cell_path + "/vars"].items():
                    layer_vars.create_dataset(key, data=dataset[()])
                del weights[cell_path]
        target.writestr("model.weights.h5", buffer.getvalue())


def test_keras_files_from_before_layers_held_cells_still_load(batch, tmp_path):
    inputs, mask = batch
    model = keras.Sequential(
        [
            keras.Input((None, FEATURES)),
            keras.layers.Bidirectional(GRU(UNITS, return_sequences=True)),
            LSTM(3),
        ]
    )
    randomize(model, seed=6)
    model.save(tmp_path / "current.keras")
    _move_cell_weights_onto_layers(tmp_path / "current.keras", tmp_path / "legacy.keras")
    with zipfile.ZipFile(tmp_path / "legacy.keras") as archive:
        with h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as weights:
            assert "layers/lstm/vars/2" in weights and "layers/lstm/cell" not in weights
    reloaded = keras.saving.load_model(tmp_path / "legacy.keras")
    assert_close(reloaded.get_weights(), model.get_weights(), atol=0)
    assert_close(reloaded(inputs), model(inputs))
