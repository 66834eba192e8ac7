"""The public recurrent layers' constructors: every argument explicit, in the config, and
configs written by earlier nlpkit versions still load."""

import inspect
import pydoc

import keras
import numpy as np
import pytest

from nlpkit.layers import GRU, LSTM, SimpleRNN

LAYERS = [LSTM, GRU, SimpleRNN]

# Stock Keras' constructor arguments, which nlpkit's layers take under the same names.
KERAS_ARGUMENTS = {
    LSTM: inspect.signature(keras.layers.LSTM.__init__).parameters,
    GRU: inspect.signature(keras.layers.GRU.__init__).parameters,
    SimpleRNN: inspect.signature(keras.layers.SimpleRNN.__init__).parameters,
}
NLPKIT_ARGUMENTS = ("layer_norm", "zero_output_for_mask", "fast_backward", "jit_compile")


def named_parameters(cls):
    return {
        name: parameter
        for name, parameter in inspect.signature(cls.__init__).parameters.items()
        if name != "self" and parameter.kind is not parameter.VAR_KEYWORD
    }


@pytest.mark.parametrize("cls", LAYERS, ids=lambda cls: cls.__name__)
def test_every_keras_argument_is_a_named_parameter_with_the_keras_default(cls):
    ours = named_parameters(cls)
    for name, parameter in KERAS_ARGUMENTS[cls].items():
        if name == "self" or parameter.kind is parameter.VAR_KEYWORD:
            continue
        assert name in ours, f"{cls.__name__} lacks Keras' argument {name!r}"
        assert ours[name].default == parameter.default, name
    for name in NLPKIT_ARGUMENTS:
        assert name in ours


@pytest.mark.parametrize("cls", LAYERS, ids=lambda cls: cls.__name__)
def test_help_and_the_docstring_show_every_argument(cls):
    text = pydoc.render_doc(cls, renderer=pydoc.plaintext)
    doc = inspect.getdoc(cls)
    for name in named_parameters(cls):
        assert f"{name}=" in text or name == "units", name
        assert f"\n    {name}: " in doc, f"{cls.__name__} docstring lacks Args entry {name!r}"
    assert doc.rstrip().splitlines()[-1].startswith("    ") and "Example:" in doc


def non_default_arguments(cls):
    arguments = dict(
        activation="relu",
        use_bias=False,
        kernel_initializer="he_normal",
        recurrent_initializer="glorot_normal",
        bias_initializer="ones",
        kernel_regularizer=keras.regularizers.L2(0.01),
        recurrent_regularizer=keras.regularizers.L1(0.02),
        bias_regularizer=keras.regularizers.L1L2(0.1, 0.2),
        activity_regularizer=keras.regularizers.L2(0.03),
        kernel_constraint=keras.constraints.MaxNorm(2.0),
        recurrent_constraint=keras.constraints.NonNeg(),
        bias_constraint=keras.constraints.UnitNorm(),
        dropout=0.25,
        recurrent_dropout=0.125,
        seed=3,
        layer_norm=True,
        return_sequences=True,
        return_state=True,
        go_backwards=True,
        stateful=True,
        unroll=True,
        zero_output_for_mask=True,
        fast_backward=False,
        use_cudnn=False,
        jit_compile=False,
    )
    if cls is LSTM:
        arguments.update(recurrent_activation="hard_sigmoid", unit_forget_bias=False)
    if cls is GRU:
        arguments.update(recurrent_activation="hard_sigmoid", reset_after=False)
    return arguments


@pytest.mark.parametrize("cls", LAYERS, ids=lambda cls: cls.__name__)
def test_config_holds_every_constructor_argument_and_round_trips(cls):
    arguments = non_default_arguments(cls)
    assert set(arguments) | {"units"} == set(named_parameters(cls))
    layer = cls(7, name="encoder", **arguments)
    config = layer.get_config()
    assert set(named_parameters(cls)) <= set(config)
    assert config["units"] == 7 and config["name"] == "encoder"
    for name in ("use_bias", "dropout", "seed", "unroll", "stateful", "jit_compile", "use_cudnn"):
        assert config[name] == arguments[name], name
    assert config["kernel_regularizer"]["config"] == {"l2": 0.01}
    assert config["recurrent_constraint"]["class_name"] == "NonNeg"
    assert config["activity_regularizer"]["config"] == {"l2": 0.03}
    clone = cls.from_config(config)
    assert clone.get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is cls and restored.get_config() == config


@pytest.mark.parametrize("cls", LAYERS, ids=lambda cls: cls.__name__)
def test_regularizers_add_losses_and_constraints_sit_on_the_weights(cls):
    layer = cls(
        3,
        kernel_regularizer="l2",
        recurrent_regularizer="l2",
        bias_regularizer="l2",
        activity_regularizer="l2",
        kernel_constraint="non_neg",
    )
    layer(np.ones((2, 4, 5), "float32"))
    # Three weight penalties plus the activity penalty of the call.
    assert len(layer.losses) == 4
    assert isinstance(layer.kernel.constraint, keras.constraints.NonNeg)
    assert layer.kernel_regularizer is layer.cell.kernel_regularizer


def test_only_layer_base_arguments_are_left_to_kwargs():
    with pytest.raises(ValueError, match="time_major"):
        LSTM(3, time_major=True)
    layer = GRU(3, name="g", dtype="float64", trainable=False)
    assert layer.cell.dtype_policy.name == "float64" and layer.cell.trainable is False
    with pytest.raises(ValueError, match="unroll=.yes."):
        SimpleRNN(3, unroll="yes")


# Configs written by nlpkit before the constructors listed their arguments (the layer took
# ``units, ..., **kwargs``); every key is one the current constructors accept.
_DTYPE = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": None}
_COMMON = {
    "name": "enc", "trainable": True, "dtype": _DTYPE, "return_sequences": True, "return_state": False,
    "go_backwards": True, "stateful": False, "zero_output_for_mask": False, "jit_compile": False, "units": 7,
    "activation": "tanh", "use_bias": True,
    "kernel_initializer": {"module": "keras.initializers", "class_name": "HeNormal",
                           "config": {"seed": None, "input_axes": None, "output_axes": None}, "registered_name": None},
    "recurrent_initializer": {"module": "keras.initializers", "class_name": "Orthogonal",
                              "config": {"seed": None, "gain": 1.0}, "registered_name": None},
    "bias_initializer": {"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": None},
    "dropout": 0.25, "recurrent_dropout": 0.125, "seed": 3, "layer_norm": True,
}
SAVED_CONFIGS = {
    LSTM: {**_COMMON, "recurrent_activation": "hard_sigmoid", "unit_forget_bias": False,
           "fast_backward": False, "use_cudnn": False},
    GRU: {**_COMMON, "reset_after": False, "recurrent_activation": "sigmoid", "fast_backward": False,
          "use_cudnn": False},
    SimpleRNN: {**_COMMON, "fast_backward": False, "use_cudnn": False},
}
# How a `.keras` file names a default LSTM (keras.saving.serialize_keras_object), same era.
SAVED_LSTM = {
    "module": "nlpkit.layers.lstm", "class_name": "LSTM", "registered_name": "nlpkit>LSTM",
    "config": {
        "name": "old", "trainable": True, "dtype": _DTYPE, "return_sequences": False, "return_state": False,
        "go_backwards": False, "stateful": False, "zero_output_for_mask": False, "jit_compile": "auto",
        "units": 4, "activation": "tanh", "use_bias": True,
        "kernel_initializer": {"module": "keras.initializers", "class_name": "GlorotUniform",
                               "config": {"seed": None, "input_axes": None, "output_axes": None},
                               "registered_name": None},
        "recurrent_initializer": _COMMON["recurrent_initializer"], "bias_initializer": _COMMON["bias_initializer"],
        "dropout": 0.0, "recurrent_dropout": 0.0, "seed": None, "layer_norm": False,
        "recurrent_activation": "sigmoid", "unit_forget_bias": True, "fast_backward": True, "use_cudnn": "auto",
    },
}


@pytest.mark.parametrize("cls", LAYERS, ids=lambda cls: cls.__name__)
def test_configs_saved_before_explicit_signatures_still_load(cls):
    saved = SAVED_CONFIGS[cls]
    layer = cls.from_config(dict(saved))
    config = layer.get_config()
    # Every saved value comes back; the new arguments take their defaults.
    assert {key: config[key] for key in saved} == saved
    assert config["unroll"] is False and config["kernel_regularizer"] is None
    assert config["activity_regularizer"] is None and config["bias_constraint"] is None
    assert cls.from_config(config).get_config() == config
    output = layer(np.ones((2, 3, 4), "float32"))
    assert tuple(output.shape) == (2, 3, 7)


def test_a_serialized_layer_saved_before_explicit_signatures_still_loads():
    layer = keras.saving.deserialize_keras_object(SAVED_LSTM, safe_mode=True)
    assert type(layer) is LSTM and layer.name == "old" and layer.units == 4
    config = layer.get_config()
    assert {key: config[key] for key in SAVED_LSTM["config"]} == SAVED_LSTM["config"]
