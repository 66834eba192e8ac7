"""The cuDNN path: which configurations ask the backend kernel, and the fall-back on CPU.

No GPU is lent to this project's CI, so the kernel itself cannot run here; these tests pin
down the dispatch (what is offered to Keras' backend `lstm`/`gru`, with which arguments,
and what never is) and that the CPU fall-back gives the loop's outputs.
"""

import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from nlpkit.export import convert
from nlpkit.layers import GRU, LSTM, SimpleRNN, cells
from nlpkit.layers.export_context import portable_trace

INPUTS = np.random.default_rng(0).normal(size=(2, 6, 3)).astype("float32")
MASK = np.array([[True] * 6, [True] * 4 + [False] * 2])


@pytest.fixture
def offered(monkeypatch):
    """Records every call to the backend kernels, then lets the real ones decide (on CPU
    they raise NotImplementedError, so the layer falls back to its loop)."""
    calls = []
    real = cells.keras_backend

    def recorder(name):
        def kernel(*args, **kwargs):
            calls.append((name, args, kwargs))
            return getattr(real, name)(*args, **kwargs)

        return kernel

    monkeypatch.setattr(cells, "keras_backend", types.SimpleNamespace(lstm=recorder("lstm"), gru=recorder("gru")))
    return calls


def twin_without_cudnn(layer):
    config = layer.get_config()
    config["use_cudnn"] = False
    twin = type(layer).from_config(config)
    twin.build(INPUTS.shape)
    twin.set_weights(layer.get_weights())
    return twin


@pytest.mark.parametrize(
    "make, kernel",
    [
        (lambda: LSTM(4, return_sequences=True, go_backwards=True), "lstm"),
        (lambda: GRU(4), "gru"),
        (lambda: GRU(4, reset_after=False), "gru"),  # offered; Keras' cudnn_ok refuses it
    ],
)
def test_lstm_and_gru_offer_the_kernel_and_fall_back_to_the_same_outputs(offered, make, kernel):
    layer = make()
    outputs = np.asarray(layer(INPUTS))
    assert [call[0] for call in offered] == [kernel]
    _, args, kwargs = offered[0]
    assert kwargs["go_backwards"] == layer.go_backwards
    assert kwargs["return_sequences"] == layer.return_sequences
    assert kwargs["kernel"] is layer.kernel and kwargs["recurrent_kernel"] is layer.recurrent_kernel
    np.testing.assert_array_equal(outputs, np.asarray(twin_without_cudnn(layer)(INPUTS)))


def test_masked_last_output_is_offered_with_its_mask(offered):
    layer = LSTM(4)
    layer(INPUTS, mask=MASK)
    (_, args, _), = offered
    np.testing.assert_array_equal(np.asarray(args[3]), MASK)


@pytest.mark.parametrize(
    "make, call_kwargs",
    [
        (lambda: SimpleRNN(4), {}),
        (lambda: LSTM(4, layer_norm=True), {}),
        (lambda: GRU(4, use_cudnn=False), {}),
        (lambda: GRU(4, recurrent_dropout=0.3), {"training": True}),
        # cuDNN zeroes padded outputs; the loop carries the state unless told otherwise.
        (lambda: LSTM(4, return_sequences=True), {"mask": MASK}),
    ],
    ids=["simple_rnn", "layer_norm", "use_cudnn_false", "recurrent_dropout", "masked_sequences"],
)
def test_configurations_cudnn_cannot_match_never_reach_the_kernel(offered, make, call_kwargs):
    layer = make()
    layer(INPUTS, **call_kwargs)
    assert offered == []


def test_bidirectional_sequences_are_offered_because_padding_is_zeroed_there(offered):
    layer = keras.layers.Bidirectional(GRU(4, return_sequences=True))
    layer(INPUTS, mask=MASK)
    assert [call[0] for call in offered] == ["gru", "gru"]


def test_exports_trace_the_portable_loop(offered):
    inputs = keras.Input((None, 3), batch_size=1)
    model = keras.Model(inputs, GRU(4)(inputs))
    with portable_trace():
        model(INPUTS[:1])
    content = convert(model, {"run": (lambda x: {"h": model(x)}, [tf.TensorSpec([1, None, 3])])})
    assert content and offered == []
    model(INPUTS[:1])  # outside an export the kernel is offered again
    assert [call[0] for call in offered] == ["gru"]


def test_use_cudnn_true_without_a_gpu_names_the_layer():
    with pytest.raises(ValueError, match="'strict'.*use_cudnn=True"):
        LSTM(4, use_cudnn=True, name="strict")(INPUTS)
    with pytest.raises(ValueError, match="use_cudnn=.maybe."):
        GRU(4, use_cudnn="maybe")
