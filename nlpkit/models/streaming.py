"""Streaming ``step`` signatures: one time step and the states in, the output and new states out.

A streaming model runs a recurrent network one time step per call, the way a keyboard or a
language model generating token by token does. The TFLite ``step`` signature written here
holds no state of its own: every recurrent state is an explicit input *and* output named
``state_<k>_<part>`` (``k`` counts the recurrent layers of the stack from 0; ``part`` is ``h``
for the hidden state and ``c`` for an LSTM's cell state, or the layer's own ``state_parts``:
``conv`` and ``ssm`` for `nlpkit.layers.Mamba`'s convolution window and SSM state), so the caller carries the states
between ``invoke()`` calls and can save, restore or fork them.

What streams: a chain of

- nlpkit recurrent layers (anything with ``step(inputs_t, states)``,
  ``get_initial_state(batch_size)`` and ``state_size``), running forwards;
- layers that act on each time step independently — ``Dense``, ``Activation``, the dropout
  layers (identity in inference), ``TimeDistributed`` around one of these, and any layer
  whose class sets ``applies_per_time_step = True``;
- an ``Embedding`` as the first layer, which makes the step's input one token id.

Masks do not exist in a stream: every step fed to the model is a real step. Bidirectional
layers and ``go_backwards=True`` need the whole sequence and raise `NotStreamableError`.
"""

import keras
import tensorflow as tf

from nlpkit.errors import NotStreamableError

STEP_SIGNATURE = "step"
STATE_PREFIX = "state_"

# Layers that transform each time step independently and need no sequence axis.
_PER_STEP_LAYERS = (
    keras.layers.Dense,
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.ELU,
    keras.layers.Dropout,
    keras.layers.SpatialDropout1D,
    keras.layers.GaussianNoise,
    keras.layers.GaussianDropout,
    keras.layers.AlphaDropout,
    keras.layers.Identity,
)


class StreamingStack(tf.Module):
    """A chain of recurrent and per-time-step layers, run one time step at a time.

    The stack is the streaming twin of a full-sequence model built from the same layers (and
    the same weights): feeding it a sequence step by step, carrying the states, gives the
    outputs the full model gives with ``return_sequences=True``. It offers the step as a
    Keras-side function (`step`) and as a TFLite endpoint for `nlpkit.export.convert`
    (`tflite_endpoints`), batch 1, built-in ops only and without a ``WHILE`` loop.

    Args:
        model: what to stream — one nlpkit recurrent layer, a list or tuple of built layers
            in call order, a ``keras.Sequential``, or a functional ``keras.Model`` whose
            layers form a single chain from one input to one output (nested Sequential and
            functional models are unrolled). Subclassed models have no inspectable layer
            order: pass their layers as a list.
        input_name: str or None, default None. Name of the step's input; None means
            ``"token_id"`` (int32, shape ``(1,)``) when the stack starts with an
            ``Embedding`` and ``"inputs"`` (shape ``(1, features)``) otherwise.
        output_name: str, default ``"output"``. Name of the step's output, e.g.
            ``"logits"`` for a language model.

    Example:
        >>> model = keras.Sequential([
        ...     keras.layers.Embedding(100, 16),
        ...     nlpkit.layers.LSTM(32, return_sequences=True),
        ...     keras.layers.Dense(100),
        ... ])
        >>> model.build((None, None))
        >>> stack = StreamingStack(model, output_name="logits")
        >>> stack.state_names
        ('state_0_h', 'state_0_c')
        >>> content = convert(stack, stack.tflite_endpoints())  # signature "step"
    """

    def __init__(self, model, input_name=None, output_name="output"):
        super().__init__(name="streaming_stack")
        layers = _unroll(model)
        if not layers:
            raise NotStreamableError(f"Nothing to stream: {model!r} holds no layers.")
        recurrent = []
        for position, layer in enumerate(layers):
            _check_streamable(layer, position)
            if _is_recurrent(layer):
                recurrent.append(layer)
        if not recurrent:
            names = [layer.name for layer in layers]
            raise NotStreamableError(
                f"The stack {names} has no recurrent layer, so it has no state to carry."
            )
        for name, value in (("input_name", input_name), ("output_name", output_name)):
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"`{name}` must be a non-empty str. Received: {name}={value!r}")
        self.layers = tuple(layers)
        self.recurrent_layers = tuple(recurrent)
        self.takes_token_ids = isinstance(layers[0], keras.layers.Embedding)
        self.input_name = input_name or ("token_id" if self.takes_token_ids else "inputs")
        self.output_name = output_name
        self.state_sizes = tuple(
            int(size) for layer in recurrent for size in _state_sizes(layer)
        )
        self.state_names = tuple(
            f"{STATE_PREFIX}{k}_{part}"
            for k, layer in enumerate(recurrent)
            for part in _state_parts(layer)
        )
        taken = {self.input_name, self.output_name} & set(self.state_names)
        if taken or self.input_name == self.output_name:
            raise ValueError(
                f"`input_name`={self.input_name!r} and `output_name`={self.output_name!r} must "
                f"differ from each other and from the state names {list(self.state_names)}."
            )
        self._input_features = None if self.takes_token_ids else _input_features(layers[0])

    def initial_states(self, batch_size=1):
        """Zero states in `state_names` order, from each layer's ``get_initial_state``."""
        states = []
        for layer in self.recurrent_layers:
            states.extend(layer.get_initial_state(batch_size))
        return states

    def step(self, inputs_t, states):
        """Runs one time step in inference mode.

        Args:
            inputs_t: ``(batch,)`` int token ids when the stack starts with an ``Embedding``,
                else ``(batch, features)`` floats.
            states: list of ``(batch, size)`` tensors in `state_names` order.

        Returns:
            ``(output_t, new_states)``, ``new_states`` again in `state_names` order.
        """
        states = list(states)
        if len(states) != len(self.state_names):
            raise ValueError(
                f"The stack carries {len(self.state_names)} states {list(self.state_names)}; "
                f"received {len(states)}."
            )
        x, new_states, offset = inputs_t, [], 0
        for layer in self.layers:
            if _is_recurrent(layer):
                count = len(_state_sizes(layer))
                x, layer_states = layer.step(x, states[offset : offset + count])
                new_states.extend(layer_states)
                offset += count
            elif isinstance(layer, keras.layers.TimeDistributed):
                # The wrapper expects a time axis; one step has none, so call what it wraps.
                x = layer.layer(x, training=False)
            else:
                x = layer(x, training=False)
        return x, new_states

    def input_signature(self):
        """The ``tf.TensorSpec`` list of the step: the input, then the states (batch 1)."""
        first = self.layers[0]
        if self.takes_token_ids:
            inputs = tf.TensorSpec([1], tf.int32, name=self.input_name)
        else:
            inputs = tf.TensorSpec(
                [1, self._input_features], first.compute_dtype, name=self.input_name
            )
        dtypes = [
            layer.compute_dtype for layer in self.recurrent_layers for _ in _state_sizes(layer)
        ]
        return [inputs] + [
            tf.TensorSpec([1, size], dtype, name=name)
            for name, size, dtype in zip(self.state_names, self.state_sizes, dtypes)
        ]

    def tflite_endpoints(self, name=STEP_SIGNATURE):
        """The step as ``{name: (function, input_signature)}`` for `nlpkit.export.convert`.

        The function returns a dict: `output_name` and every state name.
        """
        state_names = self.state_names

        def step(inputs_t, *states):
            output, new_states = self.step(inputs_t, states)
            return {self.output_name: output, **dict(zip(state_names, new_states))}

        return {name: (step, self.input_signature())}


def _unroll(model):
    """The layers of ``model`` in call order, nested models expanded, input layers dropped."""
    if isinstance(model, (list, tuple)):
        items = list(model)
    elif isinstance(model, keras.Sequential):
        items = list(model.layers)
    elif isinstance(model, keras.Model):
        if not hasattr(model, "outputs"):
            raise NotStreamableError(
                f"{model.name} ({type(model).__name__}) is a subclassed model whose layer order "
                "cannot be read; pass its layers as a list in call order instead."
            )
        items = _functional_chain(model)
    elif isinstance(model, keras.layers.Layer):
        items = [model]
    else:
        raise TypeError(
            "`model` must be a Keras layer, a list of layers or a Keras model. "
            f"Received: {model!r} of type {type(model).__name__}"
        )
    layers = []
    for item in items:
        if isinstance(item, keras.layers.InputLayer):
            continue
        if isinstance(item, keras.Model):
            layers.extend(_unroll(item))
        elif isinstance(item, keras.layers.Layer):
            layers.append(item)
        else:
            raise TypeError(f"Every entry must be a Keras layer. Received: {item!r}")
    return layers


def _functional_chain(model):
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise NotStreamableError(
            f"{model.name} has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
            "streaming needs a chain from one input to one output."
        )
    # Walk back from the output through each tensor's producing node. Keras 3 keeps that
    # link on the symbolic tensor (`_keras_history`); `model.layers` alone would not show
    # branches, skip connections or extra tensor arguments such as `initial_state`.
    chain, tensor = [], model.outputs[0]
    while tensor is not model.inputs[0]:
        operation, node_index, _ = tensor._keras_history
        if isinstance(operation, keras.layers.InputLayer):
            break
        node = operation._inbound_nodes[node_index]
        if len(node.input_tensors) != 1:
            raise NotStreamableError(
                f"{operation.name} ({type(operation).__name__}) in {model.name} takes "
                f"{len(node.input_tensors)} tensors; streaming needs a chain where every "
                "layer takes the previous layer's output only."
            )
        chain.append(operation)
        tensor = node.input_tensors[0]
    return chain[::-1]


def _is_recurrent(layer):
    return (
        callable(getattr(layer, "step", None))
        and callable(getattr(layer, "get_initial_state", None))
        and hasattr(layer, "state_size")
    )


def _state_sizes(layer):
    size = layer.state_size
    return list(size) if isinstance(size, (list, tuple)) else [size]


def _state_parts(layer):
    # A layer may name its states (Mamba: "conv", "ssm"); else h, then c, then numbers.
    named = getattr(layer, "state_parts", None)
    if named is not None:
        return tuple(named)
    count = len(_state_sizes(layer))
    if count == 1:
        return ("h",)
    if count == 2:
        return ("h", "c")
    return tuple(str(index) for index in range(count))


def _is_per_step(layer):
    if isinstance(layer, keras.layers.TimeDistributed):
        return _is_per_step(layer.layer)
    if getattr(layer, "applies_per_time_step", False):
        return True
    if isinstance(layer, keras.layers.Softmax):
        return layer.axis in (-1, [-1], (-1,))
    return isinstance(layer, _PER_STEP_LAYERS)


def _check_streamable(layer, position):
    described = f"{layer.name} ({type(layer).__name__})"
    if not layer.built:
        raise NotStreamableError(
            f"{described} is not built; call the model on a batch (or build it) before streaming."
        )
    if isinstance(layer, keras.layers.Bidirectional) or hasattr(layer, "backward_layer"):
        raise NotStreamableError(
            f"{described} is bidirectional: its backward half reads the sequence from the end, "
            "so it cannot run one step at a time. Stream a unidirectional stack instead."
        )
    if _is_recurrent(layer):
        if getattr(layer, "go_backwards", False):
            raise NotStreamableError(
                f"{described} has go_backwards=True: it reads the sequence from the end, so it "
                "cannot run one step at a time."
            )
        return
    if isinstance(layer, keras.layers.RNN):
        raise NotStreamableError(
            f"{described} is a stock Keras recurrent layer without a single-step form; use the "
            "nlpkit.layers equivalent (same weight layout: copy the weights with set_weights)."
        )
    if isinstance(layer, keras.layers.Embedding):
        if position != 0:
            raise NotStreamableError(
                f"{described} is at position {position}; an Embedding can only stream as the "
                "first layer, turning the step's token id into a vector."
            )
        return
    if not _is_per_step(layer):
        raise NotStreamableError(
            f"{described} is not known to act on each time step independently, so it cannot "
            "stream. Streamable: nlpkit recurrent layers, a leading Embedding, "
            f"{sorted(cls.__name__ for cls in _PER_STEP_LAYERS)}, Softmax over the last axis, "
            "TimeDistributed around these, and layers with `applies_per_time_step = True`."
        )


def _input_features(layer):
    # The build config records the shape the layer was built for: (batch, time, features).
    config = layer.get_build_config() or {}
    shape = config.get("input_shape")
    if not isinstance(shape, (list, tuple)) or not shape or not isinstance(shape[-1], int):
        raise NotStreamableError(
            f"Cannot read the input feature size of {layer.name} ({type(layer).__name__}) "
            f"from its build config {config!r}; build it on inputs with a known last dimension."
        )
    return shape[-1]
