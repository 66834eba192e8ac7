"""Recurrent language model: embedding -> stacked nlpkit recurrent layers -> (tied) output projection.

The regularisation follows AWD-LSTM (Merity, Keskar & Socher 2018, "Regularizing and
Optimizing LSTM Language Models", §4), which is what makes a recurrent LM good on small data:

- embedding dropout: whole word types are dropped from the embedding matrix for a batch
  (Gal & Ghahramani 2016), so every occurrence of a dropped word in the batch is zero;
- locked (variational) dropout: one mask per sequence, the same at every time step, on the
  embeddings, between recurrent layers and on the last layer's output;
- weight dropout (DropConnect, Wan et al. 2013) on the hidden-to-hidden kernels, one mask
  per batch: the model hands each layer the masked kernel for the duration of a training
  call (`_recurrent_kernel`). The layers read their recurrent kernel once per call, before
  the loop, also on the hand-written backward path (`nlpkit.layers.fast_backward`), which
  takes the kernel as an input and returns its gradient — so the fast backward still runs,
  the gradient reaches the variable through the mask (tested equal to autodiff), and the
  cost is one ``units x 4 units`` multiply per layer per batch (no measurable change in
  step time at 2 x 650 units, B=32, T=70);
- weight tying (Press & Wolf 2017; Inan et al. 2017): the output projection is the
  transposed embedding matrix, so the last recurrent layer has ``embedding_dim`` units.
"""

import contextlib

import keras
import tensorflow as tf
from keras import ops

from nlpkit.data.language_model import (
    NEWLINE_SPACES_PATTERN,
    display_tokens,
    start_token_id,
    tokenizer_level,
)
from nlpkit.layers import RECURRENT_LAYERS, recurrent_layer
from nlpkit.manifest import LanguageModelSection
from nlpkit.models.streaming import StreamingStack
from nlpkit.models.task import TaskModel


@keras.saving.register_keras_serializable(package="nlpkit")
class TiedOutput(keras.layers.Layer):
    """Output projection sharing an embedding's matrix: ``logits = x @ E^T + b``.

    The embedding belongs to the model that ties the two (`LanguageModel`), which calls
    `tie` after building both; the tie itself is not a weight and not part of the config,
    so this layer only exists inside such a model. It acts on every time step on its own
    (``applies_per_time_step``), so `nlpkit.export.StreamingStack` streams it.

    Args:
        use_bias: bool, default True. Add a learned bias per vocabulary entry.
        **kwargs: `keras.layers.Layer` arguments (name, dtype).

    Example:
        >>> embedding = keras.layers.Embedding(100, 16)
        >>> embedding.build((None, None))
        >>> output = TiedOutput()
        >>> output.tie(embedding)
        >>> output(np.zeros((2, 5, 16), "float32")).shape
        (2, 5, 100)
    """

    applies_per_time_step = True

    def __init__(self, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(use_bias, bool):
            raise ValueError(f"`use_bias` must be a bool. Received: use_bias={use_bias!r}")
        self.use_bias = use_bias
        # Untracked: the embedding's weights are saved once, by the embedding itself.
        object.__setattr__(self, "_embedding", None)

    def tie(self, embedding):
        """Shares ``embedding``'s matrix (a built or unbuilt ``keras.layers.Embedding``)."""
        if not isinstance(embedding, keras.layers.Embedding):
            raise ValueError(
                f"`embedding` must be a keras.layers.Embedding. Received: {embedding!r}"
            )
        object.__setattr__(self, "_embedding", embedding)

    def _matrix(self):
        if self._embedding is None:
            raise ValueError(
                f"TiedOutput {self.name!r} is not tied to an embedding; call tie(embedding) first."
            )
        return self._embedding.embeddings

    def build(self, input_shape):
        embedding = self._embedding
        if embedding is None:
            raise ValueError(
                f"TiedOutput {self.name!r} is not tied to an embedding; call tie(embedding) first."
            )
        if input_shape[-1] is not None and input_shape[-1] != embedding.output_dim:
            raise ValueError(
                f"TiedOutput {self.name!r} receives {input_shape[-1]} features but the tied "
                f"embedding has output_dim={embedding.output_dim}; they must be equal."
            )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(shape=(embedding.input_dim,), initializer="zeros", name="bias")

    def call(self, inputs):
        shape = ops.shape(inputs)
        flat = inputs if len(inputs.shape) == 2 else ops.reshape(inputs, (-1, shape[-1]))
        logits = ops.matmul(flat, ops.transpose(self._matrix()))
        if self.bias is not None:
            logits = logits + self.bias
        if len(inputs.shape) == 2:
            return logits
        return ops.reshape(logits, tuple(shape[:-1]) + (-1,))

    def compute_output_shape(self, input_shape):
        size = self._embedding.input_dim if self._embedding is not None else None
        return tuple(input_shape[:-1]) + (size,)

    def get_config(self):
        config = super().get_config()
        config.update({"use_bias": self.use_bias})
        return config


def _has_recurrent_kernel(layer):
    # The parallel-scan layers (MinGRU, MinLSTM, Mamba) hold no cell and no
    # hidden-to-hidden kernel: nothing for weight dropout to drop.
    return getattr(getattr(layer, "cell", None), "recurrent_kernel", None) is not None


@contextlib.contextmanager
def _recurrent_kernel(cell, kernel):
    """Makes ``cell`` read ``kernel`` as its recurrent kernel for the duration of one call.

    The cell reads ``self.recurrent_kernel`` once per call, before its loop (also for the
    hand-written backward pass, which takes the kernel as an input and returns its
    gradient), so a dropped-out tensor put there is what the whole call uses, and the
    gradient flows through the mask to the variable. ``object.__setattr__`` bypasses
    Keras' attribute tracking, so the layer's weights never change.
    """
    variable = cell.recurrent_kernel
    object.__setattr__(cell, "recurrent_kernel", kernel)
    try:
        yield
    finally:
        object.__setattr__(cell, "recurrent_kernel", variable)


@keras.saving.register_keras_serializable(package="nlpkit")
class LanguageModel(TaskModel, keras.Model):
    """Predicts the next token at every step: token ids ``(batch, time)`` in, logits out.

    ``num_layers`` nlpkit recurrent layers (`nlpkit.layers.LSTM` by default) over an
    embedding, with AWD-LSTM regularisation (see the module docstring). With
    ``tie_weights`` the output projection is the transposed embedding matrix and the last
    recurrent layer has ``embedding_dim`` units (the others ``units``).

    Besides ``call`` (whole windows, what ``fit`` trains), the model runs one step at a time
    (`step`, `initial_states`): that is what generation, the SavedModel's greedy loop and
    the TFLite ``step`` signature (`streaming_layers` for `nlpkit.export.StreamingStack`)
    use, so all of them compute the same thing.

    With ``stateful=True`` (truncated BPTT over parallel streams, `nlpkit.data.lm_dataset`)
    the recurrent layers keep their final states from one batch to the next; the batch
    size is then fixed by the first call, `reset_states` zeroes them (use
    `ResetStatesCallback` with ``fit``), and `to_stateless` gives the copy to save and export.

    Args:
        vocabulary_size: int, number of token ids (padding included).
        embedding_dim: int, default 400.
        units: int, default 1150. Hidden size of every recurrent layer except, with
            ``tie_weights``, the last one.
        num_layers: int, default 3.
        cell: "lstm" (default), or any other key of `nlpkit.layers.RECURRENT_LAYERS`
            ("gru", "simple_rnn", "mingru", "minlstm", "mamba").
        tie_weights: bool, default True. Share the embedding matrix with the output layer.
        embedding_dropout: float, default 0.1. Fraction of word types dropped per batch.
        input_dropout: float, default 0.65. Locked dropout on the embeddings.
        dropout: float, default 0.3. Locked dropout between recurrent layers.
        output_dropout: float, default 0.4. Locked dropout on the last layer's output.
        weight_dropout: float, default 0.5. DropConnect on the recurrent kernels; the
            parallel-scan cells ("mingru", "minlstm", "mamba") have none, and it does not
            apply to them.
        stateful: bool, default False. Carry states across batches (see above).
        seed: optional int, seed of every dropout mask.
        **kwargs: `keras.Model` arguments (name).

    Example:
        >>> model = LanguageModel(vocabulary_size=1000, embedding_dim=32, units=64, num_layers=2)
        >>> model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        >>> model(np.zeros((4, 35), "int32")).shape
        (4, 35, 1000)
        >>> logits, states = model.step(np.array([5], "int32"), model.initial_states(1))
    """

    def __init__(
        self,
        vocabulary_size,
        embedding_dim=400,
        units=1150,
        num_layers=3,
        cell="lstm",
        tie_weights=True,
        embedding_dropout=0.1,
        input_dropout=0.65,
        dropout=0.3,
        output_dropout=0.4,
        weight_dropout=0.5,
        stateful=False,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (
            ("vocabulary_size", vocabulary_size),
            ("embedding_dim", embedding_dim),
            ("units", units),
            ("num_layers", num_layers),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
        if cell not in RECURRENT_LAYERS:
            raise ValueError(f"`cell` must be one of {sorted(RECURRENT_LAYERS)}. Received: cell={cell!r}")
        for name, rate in (
            ("embedding_dropout", embedding_dropout),
            ("input_dropout", input_dropout),
            ("dropout", dropout),
            ("output_dropout", output_dropout),
            ("weight_dropout", weight_dropout),
        ):
            if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
                raise ValueError(f"`{name}` must be a float in [0, 1). Received: {name}={rate!r}")
        for name, flag in (("tie_weights", tie_weights), ("stateful", stateful)):
            if not isinstance(flag, bool):
                raise ValueError(f"`{name}` must be a bool. Received: {name}={flag!r}")
        self.vocabulary_size = vocabulary_size
        self.embedding_dim = embedding_dim
        self.units = units
        self.num_layers = num_layers
        self.cell = cell
        self.tie_weights = tie_weights
        self.embedding_dropout = float(embedding_dropout)
        self.input_dropout = float(input_dropout)
        self.dropout = float(dropout)
        self.output_dropout = float(output_dropout)
        self.weight_dropout = float(weight_dropout)
        self.stateful = stateful
        self.seed = seed

        # Uniform with variance 1 / embedding_dim: tied logits h . E[v] then start near unit
        # scale. Keras' default (+-0.05 at any width) leaves a small tied model's logits so
        # flat that the output bias learns the unigram distribution long before the
        # recurrent layers receive a useful gradient (measured: a 2-layer stateful model
        # with 8-64 dimensions stalled at the unigram perplexity).
        limit = (3.0 / embedding_dim) ** 0.5
        self.embedding = keras.layers.Embedding(
            vocabulary_size, embedding_dim, embeddings_initializer=keras.initializers.RandomUniform(-limit, limit, seed=seed),
            name="embedding",
        )
        sizes = [units] * num_layers
        if tie_weights:
            sizes[-1] = embedding_dim
        self.recurrent_layers = [
            recurrent_layer(cell, size, return_sequences=True, stateful=stateful, name=f"{cell}_{index}")
            for index, size in enumerate(sizes)
        ]
        # noise_shape (batch, 1, features): one mask per sequence, shared by all time steps.
        rates = [input_dropout] + [dropout] * (num_layers - 1) + [output_dropout]
        self.locked_dropouts = [
            keras.layers.Dropout(rate, noise_shape=(None, 1, None), seed=_offset(seed, index),
                                 name=f"locked_dropout_{index}")
            for index, rate in enumerate(rates)
        ]
        if tie_weights:
            self.output_layer = TiedOutput(dtype="float32", name="tied_output")
            self.output_layer.tie(self.embedding)
        else:
            self.output_layer = keras.layers.Dense(vocabulary_size, dtype="float32", name="output")
        if embedding_dropout or weight_dropout:
            self.seed_generator = keras.random.SeedGenerator(seed)

    # -- training-time regularisation ---------------------------------------------------------

    def _drop_word_types(self, vectors, token_ids):
        # One keep/drop decision per vocabulary entry, looked up per token: a word dropped
        # in this batch is dropped at every position where it occurs.
        keep = keras.random.uniform((self.vocabulary_size,), seed=self.seed_generator)
        scale = ops.cast(keep >= self.embedding_dropout, vectors.dtype) / (1.0 - self.embedding_dropout)
        return vectors * ops.expand_dims(ops.take(scale, token_ids), -1)

    def _dropped_kernel(self, layer):
        kernel = layer.cell.recurrent_kernel
        mask = keras.random.dropout(
            ops.ones(kernel.shape, kernel.dtype), self.weight_dropout, seed=self.seed_generator
        )
        return kernel * mask

    def call(self, token_ids, training=False):
        token_ids = ops.cast(token_ids, "int32")
        x = self.embedding(token_ids)
        if training and self.embedding_dropout > 0:
            x = self._drop_word_types(x, token_ids)
        x = self.locked_dropouts[0](x, training=training)
        for layer, dropout in zip(self.recurrent_layers, self.locked_dropouts[1:]):
            if training and self.weight_dropout > 0 and _has_recurrent_kernel(layer):
                with _recurrent_kernel(layer.cell, self._dropped_kernel(layer)):
                    x = layer(x, training=training)
            else:
                x = layer(x, training=training)
            x = dropout(x, training=training)
        return self.output_layer(x)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.vocabulary_size,)

    # -- one step at a time ---------------------------------------------------------------------

    @property
    def state_sizes(self):
        """Sizes of the carried states in `initial_states` order (layer by layer, h before c)."""
        return [size for layer in self.recurrent_layers for size in layer.state_size]

    def initial_states(self, batch_size):
        """Zero states, one ``(batch_size, size)`` tensor per entry of `state_sizes`."""
        states = []
        for layer in self.recurrent_layers:
            states.extend(layer.get_initial_state(batch_size))
        return states

    def step(self, token_ids, states):
        """One step in inference mode: ``(batch,)`` token ids and the states in.

        Returns ``(logits, new_states)`` with logits ``(batch, vocabulary_size)``; running it
        over a sequence gives the logits ``call`` gives (without dropout). Never reads or
        writes the variables of a stateful model.
        """
        states = list(states)
        if len(states) != len(self.state_sizes):
            raise ValueError(
                f"{self.name} carries {len(self.state_sizes)} states; received {len(states)}."
            )
        x = self.embedding(ops.cast(token_ids, "int32"))
        new_states, offset = [], 0
        for layer in self.recurrent_layers:
            count = len(layer.state_size)
            x, layer_states = layer.step(x, states[offset : offset + count])
            new_states.extend(layer_states)
            offset += count
        return self.output_layer(x), new_states

    def streaming_layers(self):
        """The layers `step` runs, in order, for `nlpkit.export.StreamingStack`.

        Dropout is left out: it is the identity outside training.
        """
        return [self.embedding, *self.recurrent_layers, self.output_layer]

    def reset_states(self):
        """Zeroes the carried states of a stateful model (no-op otherwise)."""
        for layer in self.recurrent_layers:
            layer.reset_state()

    def reset_state(self):
        """Alias of `reset_states`."""
        self.reset_states()

    def to_stateless(self):
        """A stateless copy with the same weights (any batch size; what bundles save)."""
        config = self.get_config()
        config["stateful"] = False
        copy = type(self).from_config(config)
        copy(ops.zeros((1, 1), "int32"))
        copy.set_weights(self.get_weights())
        return copy

    # -- export ---------------------------------------------------------------------------------

    def greedy_continuation(self, token_ids, lengths, max_new_tokens):
        """Greedy generation as one TensorFlow graph (``tf.while_loop``), for serving.

        Args:
            token_ids: int ``(batch, time)`` right-padded prompts (each at least one token).
            lengths: int ``(batch,)`` prompt lengths.
            max_new_tokens: int scalar tensor, the number of tokens to generate.

        Returns:
            int32 ``(batch, max_new_tokens)``: the most likely next token at every step,
            the same tokens as `nlpkit.decoding.greedy` over `step`.
        """
        token_ids = tf.cast(token_ids, tf.int32)
        lengths = tf.cast(lengths, tf.int32)
        max_new_tokens = tf.maximum(tf.cast(max_new_tokens, tf.int32), 0)
        batch = tf.shape(token_ids)[0]
        states = [tf.convert_to_tensor(state) for state in self.initial_states(batch)]
        logits = tf.zeros([batch, self.vocabulary_size], self.output_layer.compute_dtype)

        # Prompts differ in length: a row whose prompt has ended keeps its states and logits.
        def read_prompt(t, states, logits):
            new_logits, new_states = self.step(token_ids[:, t], states)
            active = tf.expand_dims(t < lengths, -1)
            states = [tf.where(active, new, old) for new, old in zip(new_states, states)]
            return t + 1, states, tf.where(active, new_logits, logits)

        _, states, logits = tf.while_loop(
            lambda t, *_: t < tf.shape(token_ids)[1], read_prompt, (tf.constant(0), states, logits)
        )
        generated = tf.TensorArray(tf.int32, size=max_new_tokens, element_shape=[None])

        def generate(t, states, logits, generated):
            token = tf.argmax(logits, axis=-1, output_type=tf.int32)
            generated = generated.write(t, token)
            logits, states = self.step(token, states)
            return t + 1, states, logits, generated

        _, _, _, generated = tf.while_loop(
            lambda t, *_: t < max_new_tokens, generate, (tf.constant(0), states, logits, generated)
        )
        # An empty TensorArray whose element shape holds the dynamic batch cannot be stacked.
        return tf.cond(
            max_new_tokens > 0,
            lambda: tf.transpose(tf.reshape(generated.stack(), [max_new_tokens, batch])),
            lambda: tf.zeros([batch, 0], tf.int32),
        )

    task = "language_model"

    def export_model(self):
        """The stateless copy of a stateful model (a saved file must not be tied to one batch size)."""
        return self.to_stateless() if self.stateful else self

    def streaming_stack(self):
        """`StreamingStack` over `streaming_layers`: the TFLite ``step`` signature and its state names."""
        if self.stateful:
            raise ValueError(
                f"Export a stateless model: {self.name} is stateful, so its saved file would "
                "be tied to one batch size. Pass model.to_stateless() (or model.export_model())."
            )
        return StreamingStack(self.streaming_layers(), output_name="logits")

    def tflite_endpoints(self):
        """The TFLite ``step`` signature: ``token_id`` int32 ``(1,)`` and the states in, ``logits`` and new states out.

        Batch 1, built-in ops only, no loop: the caller carries the states (``state_<k>_h``,
        and ``_c`` for an LSTM) from call to call (see `nlpkit.models.StreamingStack`).
        """
        return self.streaming_stack().tflite_endpoints()

    def manifest_section(self, tokenizer):
        """``generation``: what `nlpkit.lite.LanguageModelGenerator` needs to drive ``step``."""
        stack = self.streaming_stack()
        return LanguageModelSection(
            level=tokenizer_level(tokenizer),
            start_id=int(start_token_id(tokenizer.vocabulary)),
            state_names=tuple(stack.state_names),
            step_input=stack.input_name,
            step_output=stack.output_name,
        ).to_manifest()

    def serving_endpoints(self, tokenizer, label_names=None):
        """SavedModel signatures: ``serving_default``, the `serving_endpoint` greedy generator."""
        return {"serving_default": self.serving_endpoint(tokenizer, label_names)}

    def serving_endpoint(self, tokenizer, label_names=None):
        """``serving_default``: prompt strings and a token count in, generated text out.

        Tokenization runs in the graph through ``tokenizer`` (an `nlpkit.text` graph
        tokenizer from `nlpkit.data.build_lm_tokenizer`); every prompt is read after the
        start token (`nlpkit.data.start_token_id`), so an empty prompt is valid, and
        ``max_tokens`` tokens are generated greedily. Outputs: ``text`` (the continuation,
        detokenized like `nlpkit.data.detokenize`) and ``token_ids``.

        ``label_names`` is unused (the bundle writer passes it to every task model).
        """
        del label_names
        start = start_token_id(tokenizer.vocabulary)
        level = tokenizer_level(tokenizer)
        shown = tf.constant(display_tokens(tokenizer.vocabulary))

        def serve(prompt, max_tokens):
            ids = tokenizer(prompt)
            starts = tf.fill([tf.shape(prompt)[0], 1], tf.constant(start, tf.int32))
            ids = tf.concat([tf.RaggedTensor.from_tensor(starts), ids], axis=1)
            tokens = self.greedy_continuation(ids.to_tensor(default_value=0), ids.row_lengths(), max_tokens)
            pieces = tf.gather(shown, tokens)
            if level == "char":
                text = tf.strings.reduce_join(pieces, axis=-1)
            else:
                text = tf.strings.reduce_join(pieces, axis=-1, separator=" ")
                text = tf.strings.regex_replace(text, NEWLINE_SPACES_PATTERN, "\n")
            return {"text": text, "token_ids": tokens}

        return serve, [
            tf.TensorSpec([None], tf.string, name="prompt"),
            tf.TensorSpec([], tf.int32, name="max_tokens"),
        ]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "embedding_dim": self.embedding_dim,
                "units": self.units,
                "num_layers": self.num_layers,
                "cell": self.cell,
                "tie_weights": self.tie_weights,
                "embedding_dropout": self.embedding_dropout,
                "input_dropout": self.input_dropout,
                "dropout": self.dropout,
                "output_dropout": self.output_dropout,
                "weight_dropout": self.weight_dropout,
                "stateful": self.stateful,
                "seed": self.seed,
            }
        )
        return config


def _offset(seed, index):
    # Distinct seeds per dropout layer: equal seeds would give equal masks at every layer.
    return None if seed is None else seed + 1 + index


class ResetStatesCallback(keras.callbacks.Callback):
    """Zeroes the states of a stateful model when an epoch, an evaluation or a prediction starts.

    Truncated BPTT carries the states from one batch to the next within a pass over the
    stream; a new pass starts from the beginning of the stream, so from zero states.
    Calls the model's ``reset_states()`` or, without one, ``reset_state()`` of every layer
    that has it.

    Example:
        >>> model.fit(train, validation_data=valid, epochs=10, callbacks=[ResetStatesCallback()])
    """

    def _reset(self):
        model = self.model
        if hasattr(model, "reset_states"):
            model.reset_states()
            return
        for layer in model._flatten_layers(include_self=False):
            if getattr(layer, "stateful", False) and hasattr(layer, "reset_state"):
                layer.reset_state()

    def on_epoch_begin(self, epoch, logs=None):
        self._reset()

    def on_test_begin(self, logs=None):
        self._reset()

    def on_predict_begin(self, logs=None):
        self._reset()
