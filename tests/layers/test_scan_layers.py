"""The recurrent-layer contract for the parallel-scan layers MinGRU, MinLSTM and Mamba.

Each layer must behave like nlpkit's loop layers (`tests/layers/test_recurrent.py`): the
scan and the single step agree over long sequences, right-padded masks keep the states,
``go_backwards``, ``initial_state``, ``stateful``, ``Bidirectional`` and the name registry
work, and the layer passes the shared layer checks. The layer-specific math is pinned in
test_min_gru.py, test_min_lstm.py and test_mamba.py.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from nlpkit.layers import (
    RECURRENT_LAYERS,
    SCAN_LAYERS,
    Bidirectional,
    Mamba,
    MinGRU,
    MinLSTM,
    recurrent_layer,
)
from tests.layer_checks import run_layer_checks

UNITS = 6
FEATURES = 4
KINDS = ["mingru", "minlstm", "mamba"]
# Mamba small enough for fast tests: 12 channels, 4 states each.
OPTIONS = {"mingru": {}, "minlstm": {}, "mamba": {"d_state": 4, "expand": 2}}


def make(kind, **kwargs):
    return recurrent_layer(kind, UNITS, **OPTIONS[kind], **kwargs)


def randomize(layer, seed):
    """Random weights of a scale that keeps outputs near unit size (but not at zero)."""
    rng = np.random.default_rng(seed)
    values = []
    for weight in layer.weights:
        shape = tuple(weight.shape)
        if weight.path.endswith("A_log"):
            values.append(np.log(rng.uniform(0.5, 4.0, shape)))
        elif weight.path.endswith("dt_bias"):
            values.append(rng.uniform(-3.0, 0.0, shape))
        elif len(shape) == 2:
            values.append(rng.normal(scale=1.2 / np.sqrt(shape[0]), size=shape))
        else:
            values.append(rng.normal(scale=0.5, size=shape))
    layer.set_weights([value.astype("float32") for value in values])


def built(kind, seed=0, batch=None, **kwargs):
    keras.utils.set_random_seed(seed)
    layer = make(kind, **kwargs)
    layer.build((batch, None, FEATURES))
    randomize(layer, seed)
    return layer


def right_padded(lengths, time, seed=0):
    """Inputs with a right-padded mask; the padding holds large junk that must not leak."""
    rng = np.random.default_rng(seed)
    inputs = rng.normal(size=(len(lengths), time, FEATURES)).astype("float32")
    mask = np.arange(time)[None, :] < np.asarray(lengths)[:, None]
    inputs[~mask] = 50.0
    return inputs, mask


def run_steps(layer, inputs, states=None):
    step = tf.function(layer.step)
    states = layer.get_initial_state(len(inputs)) if states is None else states
    outputs = []
    for t in range(inputs.shape[1]):
        output, states = step(inputs[:, t], states)
        outputs.append(output.numpy())
    return np.stack(outputs, 1), [state.numpy() for state in states]


def assert_varied(outputs):
    # A scan stuck at zero or saturated would match anything.
    assert np.abs(outputs).max() > 0.1 and outputs.std() > 0.05


@pytest.mark.parametrize("kind", KINDS)
def test_scan_and_step_agree_over_300_steps(kind):
    layer = built(kind, return_sequences=True, return_state=True)
    inputs = np.random.default_rng(1).normal(size=(2, 300, FEATURES)).astype("float32")
    sequence, *final_states = layer(inputs)
    assert_varied(sequence.numpy())
    stepped, stepped_states = run_steps(layer, inputs)
    np.testing.assert_allclose(stepped, sequence.numpy(), rtol=0, atol=1e-4)
    for ours, reference in zip(final_states, stepped_states):
        np.testing.assert_allclose(ours.numpy(), reference, rtol=0, atol=1e-4)
    assert [s.shape[1] for s in final_states] == layer.state_size


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backward"])
def test_padded_batch_equals_each_sequence_alone(kind, go_backwards):
    layer = built(kind, return_sequences=True, return_state=True, go_backwards=go_backwards)
    lengths, time = [9, 4, 1, 0], 9
    inputs, mask = right_padded(lengths, time)
    sequence, *states = layer(inputs, mask=mask)
    for row, length in enumerate(lengths):
        if length == 0:
            # Nothing read: the states stay zero and so do the outputs.
            assert all(np.all(state.numpy()[row] == 0) for state in states)
            assert np.all(sequence.numpy()[row] == 0)
            continue
        alone, *alone_states = layer(inputs[row : row + 1, :length])
        padding = time - length
        # Outputs stay in processing order: backwards, the padding is read first (zeros out);
        # forwards, it comes last and repeats the last real output.
        if go_backwards:
            real, padded = sequence.numpy()[row, padding:], sequence.numpy()[row, :padding]
            np.testing.assert_array_equal(padded, 0.0)
        else:
            real, padded = sequence.numpy()[row, :length], sequence.numpy()[row, length:]
            np.testing.assert_allclose(padded, np.broadcast_to(real[-1], padded.shape), atol=1e-6)
        np.testing.assert_allclose(real, alone.numpy()[0], atol=2e-5, rtol=0)
        for state, alone_state in zip(states, alone_states):
            np.testing.assert_allclose(state.numpy()[row], alone_state.numpy()[0], atol=2e-5, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_zero_output_for_mask_zeroes_the_padded_steps(kind):
    layer = built(kind, return_sequences=True, zero_output_for_mask=True)
    inputs, mask = right_padded([5, 2], 5)
    outputs = layer(inputs, mask=mask).numpy()
    assert np.all(outputs[1, 2:] == 0) and np.all(outputs[1, :2] != 0)


@pytest.mark.parametrize("kind", KINDS)
def test_initial_state_continues_a_split_sequence(kind):
    layer = built(kind, return_sequences=True, return_state=True)
    inputs = np.random.default_rng(2).normal(size=(2, 90, FEATURES)).astype("float32")
    whole = layer(inputs)[0].numpy()
    first, *states = layer(inputs[:, :40])
    second = layer(inputs[:, 40:], initial_state=states)[0].numpy()
    np.testing.assert_allclose(np.concatenate([first.numpy(), second], 1), whole, atol=2e-5, rtol=0)
    # The step form continues from the same states.
    stepped, _ = run_steps(layer, inputs[:, 40:45], states)
    np.testing.assert_allclose(stepped, whole[:, 40:45], atol=2e-5, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_stateful_calls_continue_and_reset(kind):
    layer = built(kind, batch=2, return_sequences=True, stateful=True)
    reference = built(kind, return_sequences=True)
    reference.set_weights(layer.get_weights())
    inputs = np.random.default_rng(3).normal(size=(2, 30, FEATURES)).astype("float32")
    chunks = [layer(inputs[:, k : k + 10]).numpy() for k in (0, 10, 20)]
    expected = reference(inputs).numpy()
    np.testing.assert_allclose(np.concatenate(chunks, 1), expected, atol=2e-5, rtol=0)
    assert len(layer.get_weights()) == len(reference.get_weights())
    layer.reset_states()
    assert all(np.all(variable.numpy() == 0) for variable in layer.states)
    np.testing.assert_allclose(layer(inputs[:, :10]).numpy(), expected[:, :10], atol=2e-5, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_bidirectional_is_forward_plus_reversed_backward(kind):
    forward = built(kind, return_sequences=True)
    wrapper = Bidirectional(make(kind, return_sequences=True))
    inputs, mask = right_padded([7, 3], 7, seed=4)
    wrapper(inputs, mask=mask)
    wrapper.forward_layer.set_weights(forward.get_weights())
    wrapper.backward_layer.set_weights(forward.get_weights())
    outputs = wrapper(inputs, mask=mask).numpy()
    assert outputs.shape == (2, 7, 2 * UNITS)
    for row, length in enumerate([7, 3]):
        real = inputs[row : row + 1, :length]
        np.testing.assert_allclose(outputs[row, :length, :UNITS], forward(real).numpy()[0], atol=2e-5)
        backward = forward(real[:, ::-1]).numpy()[0, ::-1]
        np.testing.assert_allclose(outputs[row, :length, UNITS:], backward, atol=2e-5)
        # Keras sets zero_output_for_mask on both halves of a sequence-returning wrapper.
        np.testing.assert_array_equal(outputs[row, length:], 0.0)


@pytest.mark.parametrize("kind", KINDS)
def test_layer_checks(kind, tmp_path):
    inputs, mask = right_padded([6, 4, 1], 6)
    run_layer_checks(
        lambda: make(kind, return_sequences=True, dropout=0.1, seed=3),
        inputs,
        tmp_path,
        mask=mask,
        expected_output_shape=(3, 6, UNITS),
        atol=1e-5,
    )


@pytest.mark.parametrize("kind", KINDS)
def test_layer_checks_with_states_backwards(kind, tmp_path):
    inputs, mask = right_padded([5, 2], 5, seed=1)
    layer = make(kind)
    sizes = layer.state_size
    run_layer_checks(
        lambda: make(kind, return_state=True, go_backwards=True),
        inputs,
        tmp_path,
        mask=mask,
        expected_output_shape=[(2, UNITS)] + [(2, size) for size in sizes],
        atol=1e-5,
    )


def test_registry_and_recurrent_dropout():
    assert set(SCAN_LAYERS) <= set(RECURRENT_LAYERS)
    for kind, cls in (("mingru", MinGRU), ("minlstm", MinLSTM), ("mamba", Mamba)):
        layer = recurrent_layer(kind, 8, return_sequences=True, recurrent_dropout=0.0)
        assert type(layer) is cls and layer.units == 8 and layer.return_sequences
        with pytest.raises(ValueError, match=r"'" + kind + r"' .*Received: recurrent_dropout=0.2"):
            recurrent_layer(kind, 8, recurrent_dropout=0.2)


@pytest.mark.parametrize("kind", KINDS)
def test_compute_output_shape_and_mask(kind):
    layer = make(kind, return_sequences=True, return_state=True)
    shapes = layer.compute_output_shape((2, 5, 3))
    assert shapes == [(2, 5, UNITS)] + [(2, size) for size in layer.state_size]
    mask = np.ones((2, 5), bool)
    out_mask = layer.compute_mask(np.zeros((2, 5, 3), "float32"), mask)
    assert out_mask[0] is mask and all(m is None for m in out_mask[1:])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "argument, value",
    [("units", 0), ("units", 2.5), ("dropout", 1.0), ("return_sequences", "yes")],
)
def test_invalid_arguments_name_the_value(kind, argument, value):
    arguments = {"units": UNITS, argument: value}
    with pytest.raises(ValueError, match=argument) as info:
        RECURRENT_LAYERS[kind](**arguments)
    assert repr(value) in str(info.value)


@pytest.mark.parametrize("kind", KINDS)
def test_dropout_only_acts_in_training(kind):
    layer = built(kind, return_sequences=True, dropout=0.5, seed=1)
    inputs = np.random.default_rng(5).normal(size=(2, 6, FEATURES)).astype("float32")
    inference = layer(inputs).numpy()
    np.testing.assert_array_equal(layer(inputs, training=False).numpy(), inference)
    assert not np.allclose(layer(inputs, training=True).numpy(), inference)
