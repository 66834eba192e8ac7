"""One shared check for every nlpkit layer and model (keras-hub's ``run_layer_test`` style).

A layer passes when it builds from its input, runs eagerly and symbolically with the shapes it
announces, trains for one step inside a tiny functional model (every trainable weight moves),
and survives both serialization paths: ``get_config``/``from_config`` with copied weights, and
a ``.keras`` file loaded back with ``safe_mode=True``. Both must reproduce the outputs.
"""

import inspect

import keras
import numpy as np

# Loading must rebuild classes from their registered names, never from pickled code.
SAFE_MODE = True


def _first(outputs):
    # Layers with ``return_state`` answer a list; the output proper comes first.
    return outputs[0] if isinstance(outputs, (list, tuple)) else outputs


def _as_list(outputs):
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def _shape_tuple(shape):
    return tuple(None if dim is None else int(dim) for dim in shape)


def _assert_config_has_constructor_args(obj):
    # keras-hub's rule: get_config() returns every constructor argument under its own name.
    config = obj.get_config()
    for name, parameter in inspect.signature(type(obj).__init__).parameters.items():
        if name == "self" or parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
            continue
        assert name in config, (
            f"{type(obj).__name__}.get_config() lacks constructor argument {name!r}"
        )


def _assert_same(actual, expected, atol, what):
    for index, (a, e) in enumerate(zip(_as_list(actual), _as_list(expected))):
        np.testing.assert_allclose(
            np.asarray(a), np.asarray(e), atol=atol, rtol=0, err_msg=f"{what}, output {index}"
        )


def _assert_weights_moved(before, layer):
    after = layer.get_weights()
    for weight, old, new in zip(layer.weights, before, after):
        if weight.trainable:
            assert not np.array_equal(old, new), (
                f"one fit step left {weight.path} unchanged: no gradient reaches it"
            )


def _fit_one_step(model, inputs, seed):
    # Targets of the output's shape make the loss depend on every output unit.
    output = _first(model(inputs))
    targets = np.random.default_rng(seed).normal(size=tuple(output.shape)).astype("float32")
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    batch = len(inputs[0] if isinstance(inputs, list) else inputs)
    history = model.fit(inputs, targets, batch_size=batch, epochs=1, verbose=0)
    loss = history.history["loss"][-1]
    assert np.isfinite(loss), f"fit step gave a non-finite loss: {loss}"


def _save_and_reload(model, tmp_path, name):
    path = tmp_path / f"{name}.keras"
    model.save(path)
    return keras.saving.load_model(path, safe_mode=SAFE_MODE)


def run_layer_checks(
    layer_factory,
    inputs,
    tmp_path,
    mask=None,
    expected_output_shape=None,
    expect_weights=True,
    atol=1e-6,
    seed=0,
):
    """Runs build, call, one fit step and both serialization round trips on a layer.

    The fit step trains a model ``Input -> Dense probe -> layer``; the probe must move too,
    which proves gradients flow through the layer to its inputs.

    Args:
        layer_factory: callable returning a fresh, unbuilt layer.
        inputs: float array ``(batch, time, features)`` (any rank; axis 1 is left dynamic), or
            a list of arrays for a layer called on a list (each gets its own Input and probe;
            a rank-2 member keeps its static shape).
        tmp_path: directory for the ``.keras`` file.
        mask: optional bool array ``(batch, time)`` passed as the layer's ``mask``.
        expected_output_shape: optional shape (or list of shapes with ``return_state``) the
            eager call must produce.
        expect_weights: bool, default True. Whether the layer owns trainable weights.
        atol: float, default 1e-6. Tolerance of the round-trip comparisons.
        seed: int, default 0. Seed of the fit targets.

    Returns:
        The built, trained layer.

    Example:
        >>> run_layer_checks(lambda: GRU(4, return_sequences=True), x, tmp_path, mask=m)
    """
    layer = layer_factory()
    assert not layer.built
    _assert_config_has_constructor_args(layer)
    outputs = layer(inputs, mask=mask)
    assert layer.built
    if expect_weights:
        assert layer.trainable_weights, f"{layer.name} built no trainable weights"
    for output in _as_list(outputs):
        assert np.all(np.isfinite(np.asarray(output))), f"{layer.name} gave non-finite outputs"
    eager_shapes = [tuple(output.shape) for output in _as_list(outputs)]
    if expected_output_shape is not None:
        expected = expected_output_shape
        if not isinstance(expected, list):
            expected = [expected]
        assert eager_shapes == [tuple(shape) for shape in expected]

    # Symbolic call with dynamic batch and time: the announced shapes must match the real ones.
    # A layer called on a list (attention: [query, memory]) gets one Input and probe per array.
    arrays = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    listed = isinstance(inputs, (list, tuple))
    symbolic_arrays = [
        # A (batch, features) member of a list (a decoder-step query) has no time axis.
        keras.Input(shape=tuple(array.shape[1:]) if listed and array.ndim == 2 else (None,) + tuple(array.shape[2:]),
                    dtype=array.dtype)
        for array in arrays
    ]
    model_inputs = list(symbolic_arrays)
    call_mask = None
    if mask is not None:
        call_mask = keras.Input(shape=(None,), dtype="bool")
        model_inputs.append(call_mask)
    # A trainable probe in front of the layer: it only learns if gradients pass through.
    probes = [keras.layers.Dense(array.shape[-1], name=f"probe_{index}") for index, array in enumerate(arrays)]
    probed = [probe(symbolic) for probe, symbolic in zip(probes, symbolic_arrays)]
    symbolic_layer = layer_factory()
    symbolic_outputs = symbolic_layer(probed if listed else probed[0], mask=call_mask)
    for symbolic, eager in zip(_as_list(symbolic_outputs), eager_shapes):
        announced = _shape_tuple(symbolic.shape)
        assert len(announced) == len(eager)
        assert announced[0] is None and announced[2:] == eager[2:], (announced, eager)
    model = keras.Model(model_inputs, _first(symbolic_outputs))
    model_data = arrays if mask is None else arrays + [mask]

    before = symbolic_layer.get_weights()
    probes_before = [probe.get_weights() for probe in probes]
    _fit_one_step(model, model_data, seed)
    if expect_weights:
        _assert_weights_moved(before, symbolic_layer)
    for probe, probe_before in zip(probes, probes_before):
        _assert_weights_moved(probe_before, probe)

    # get_config / from_config: same config, and the same outputs once the weights are copied.
    config = symbolic_layer.get_config()
    clone = type(symbolic_layer).from_config(config)
    assert clone.get_config() == config
    clone(inputs, mask=mask)
    clone.set_weights(symbolic_layer.get_weights())
    _assert_same(
        clone(inputs, mask=mask, training=False),
        symbolic_layer(inputs, mask=mask, training=False),
        atol,
        "from_config clone",
    )

    # Eager calls rather than predict(): tracing a recurrent loop costs more than these checks.
    expected = model(model_data, training=False)
    reloaded = _save_and_reload(model, tmp_path, f"layer_{symbolic_layer.name}")
    assert any(type(candidate) is type(symbolic_layer) for candidate in reloaded.layers)
    _assert_same(reloaded(model_data, training=False), expected, atol, ".keras reload")
    return symbolic_layer


def run_model_checks(model_factory, inputs, targets, tmp_path, loss, atol=1e-6):
    """The model-level twin of `run_layer_checks` for subclassed ``keras.Model`` task models.

    Args:
        model_factory: callable returning a fresh, unbuilt model.
        inputs: the model's input array.
        targets: targets for one fit step with ``loss``.
        tmp_path: directory for the ``.keras`` file.
        loss: a Keras loss name or object.
        atol: float, default 1e-6. Tolerance of the round-trip comparisons.

    Returns:
        ``(model, reloaded)``: the trained model and its ``.keras`` reload.

    Example:
        >>> run_model_checks(lambda: TextClassifier(50, 2), ids, labels, tmp_path,
        ...                  "sparse_categorical_crossentropy")
    """
    model = model_factory()
    _assert_config_has_constructor_args(model)
    outputs = model(inputs)
    assert np.all(np.isfinite(np.asarray(outputs)))

    before = [weight.numpy() for weight in model.trainable_weights]
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=loss)
    history = model.fit(inputs, targets, batch_size=len(inputs), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    for weight, old in zip(model.trainable_weights, before):
        assert not np.array_equal(old, weight.numpy()), (
            f"one fit step left {weight.path} unchanged: no gradient reaches it"
        )

    config = model.get_config()
    clone = type(model).from_config(config)
    assert clone.get_config() == config
    clone(inputs)
    clone.set_weights(model.get_weights())
    expected = model(inputs, training=False)
    _assert_same(clone(inputs, training=False), expected, atol, "from_config clone")

    reloaded = _save_and_reload(model, tmp_path, f"model_{model.name}")
    assert type(reloaded) is type(model)
    _assert_same(reloaded(inputs, training=False), expected, atol, ".keras reload")
    return model, reloaded
