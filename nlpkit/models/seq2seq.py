"""Attentive recurrent encoder-decoder for translation (Bahdanau et al. 2015; Luong et al. 2015).

- Encoder: source embedding -> ``encoder_layers`` bidirectional nlpkit GRU/LSTM layers; the
  top layer's outputs are the memory the decoder attends over (padding masked).
- Bridge: each final encoder state (forward and backward joined) goes through a ``tanh``
  dense layer to start the decoder, so encoder and decoder may differ in width.
- Decoder: target embedding -> one nlpkit GRU/LSTM cell with attention, one step at a time.
  With Luong attention the cell runs first and its output queries the memory; with input
  feeding the previous attentional vector joins the next input. With Bahdanau attention the
  previous decoder state queries the memory and the context joins the cell's input. Both
  then form the attentional vector ``tanh(W_c [context; h])``, which the output projection
  (optionally tied to the target embedding, Press & Wolf 2017) turns into logits.

Training is teacher forcing with ``model.fit``: inputs ``{"source_ids", "decoder_input_ids"}``
(the target after the start id), targets the target followed by the end id, padding 0. The
model supplies its own loss (`compute_loss`): label-smoothed cross-entropy over the real
target tokens (Szegedy et al. 2016), so ``compile`` takes only the optimizer.

Inference runs the same step function (`step`) from the states `decoding_states` returns,
which is the ``(token_ids, states) -> (logits, new_states)`` contract of `nlpkit.decoding`:
greedy and beam search, batched, in Keras (`nlpkit.decoding.KerasDecoderStep`) and on the
TFLite ``encode`` / ``decode_step`` signatures alike.
"""

import keras
from keras import ops
from keras.src.losses.loss import scale_loss_for_distribution

from nlpkit.layers import (
    RECURRENT_LAYERS,
    AdditiveAttention,
    Bidirectional,
    MultiplicativeAttention,
    recurrent_layer,
)
from nlpkit.layers.cells import GRUCell, LSTMCell, SimpleRNNCell
from nlpkit.layers.fast_backward import fast_backward_recurrence
from nlpkit.layers.recurrent import compute_dtype_scope, run_recurrence
from nlpkit.manifest import DecodingSettings, TranslationSection
from nlpkit.models.language_model import TiedOutput
from nlpkit.models.task import TaskModel
from nlpkit.text.subword import EOS_ID

ATTENTIONS = ("luong", "bahdanau")
INPUT_NAMES = ("source_ids", "decoder_input_ids")
_CELLS = {"gru": GRUCell, "lstm": LSTMCell, "simple_rnn": SimpleRNNCell}


def label_smoothed_loss(target_ids, logits, label_smoothing=0.0, pad_id=0, sample_weight=None):
    """Mean label-smoothed cross-entropy over the non-padding target tokens.

    Each token's loss is ``(1 - e) * -log p(y) + e * mean_v(-log p(v))``: the smoothing mass
    is spread uniformly over the vocabulary.

    Args:
        target_ids: int ``(batch, time)``; ``pad_id`` marks padding, which does not count.
        logits: float ``(batch, time, vocabulary)``.
        label_smoothing: float in [0, 1), default 0.
        pad_id: int, default 0.
        sample_weight: optional ``(batch,)`` or ``(batch, time)`` weights.

    Returns:
        A float32 scalar (0 for a batch without target tokens).

    Example:
        >>> label_smoothed_loss(np.array([[4, 0]]), np.zeros((1, 2, 8), "float32")).numpy().round(4)
        2.0794
    """
    losses, weights = label_smoothed_token_losses(target_ids, logits, label_smoothing, pad_id, sample_weight)
    return ops.sum(losses * weights) / ops.maximum(ops.sum(weights), 1.0)


def label_smoothed_token_losses(target_ids, logits, label_smoothing=0.0, pad_id=0, sample_weight=None):
    """Per-token label-smoothed cross-entropy and the tokens' weights (0 at padding).

    Arguments as in `label_smoothed_loss`, which is ``sum(losses * weights) / sum(weights)``.

    Returns:
        ``(losses, weights)``, float32 ``(batch, time)`` each.

    Example:
        >>> losses, weights = label_smoothed_token_losses(np.array([[4, 0]]), np.zeros((1, 2, 8), "float32"))
        >>> weights.numpy().tolist()
        [[1.0, 0.0]]
    """
    target_ids = ops.cast(target_ids, "int32")
    log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
    nll = -ops.squeeze(ops.take_along_axis(log_probs, ops.expand_dims(target_ids, -1), axis=-1), -1)
    loss = nll
    if label_smoothing:
        loss = (1.0 - label_smoothing) * nll - label_smoothing * ops.mean(log_probs, axis=-1)
    weights = ops.cast(ops.not_equal(target_ids, pad_id), "float32")
    if sample_weight is not None:
        sample_weight = ops.cast(sample_weight, "float32")
        if len(sample_weight.shape) == 1:
            sample_weight = ops.expand_dims(sample_weight, -1)
        weights = weights * sample_weight
    return loss, weights


@keras.saving.register_keras_serializable(package="nlpkit")
class Seq2Seq(TaskModel, keras.Model):
    """Bidirectional recurrent encoder, attentive recurrent decoder, teacher forcing (see the module docstring).

    Args:
        source_vocabulary_size: int, number of source ids (padding 0 included).
        target_vocabulary_size: int, number of target ids (padding 0, start, end included).
        embedding_dim: int, default 256. Width of both embeddings.
        units: int, default 256. Hidden size of every encoder direction and of the decoder.
        encoder_layers: int, default 1. Stacked bidirectional encoder layers.
        cell: "gru" (default), "lstm" or "simple_rnn", for encoder and decoder.
        attention: "luong" (default; multiplicative "general" score) or "bahdanau" (additive).
        attention_units: int or None (default: ``units``). Hidden width of additive scores.
        input_feeding: bool, default True. Luong only: feed the previous attentional vector
            into the next decoder input.
        tie_embeddings: bool, default False. Use the transposed target embedding as the
            output projection (the attentional vector then has ``embedding_dim`` units).
        dropout: float in [0, 1), default 0.2. On embeddings, between encoder layers and on
            the attentional vector before the output projection.
        label_smoothing: float in [0, 1), default 0.1. Of the model's own loss.
        bos_id: int, default 2. Start id the decoder input begins with.
        eos_id: int, default 3. End id that closes targets and ends decoding.
        seed: optional int for the dropout masks.
        **kwargs: `keras.Model` arguments (name).

    Example:
        >>> model = Seq2Seq(100, 120, embedding_dim=16, units=32)
        >>> model.compile("adam")
        >>> inputs = {"source_ids": np.array([[5, 6, 3]]), "decoder_input_ids": np.array([[2, 7, 8]])}
        >>> model(inputs).shape
        (1, 3, 120)
        >>> states = model.decoding_states(inputs["source_ids"])
        >>> logits, states = model.step(np.array([2]), states)
    """

    def __init__(
        self,
        source_vocabulary_size,
        target_vocabulary_size,
        embedding_dim=256,
        units=256,
        encoder_layers=1,
        cell="gru",
        attention="luong",
        attention_units=None,
        input_feeding=True,
        tie_embeddings=False,
        dropout=0.2,
        label_smoothing=0.1,
        bos_id=2,
        eos_id=3,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (
            ("source_vocabulary_size", source_vocabulary_size),
            ("target_vocabulary_size", target_vocabulary_size),
            ("embedding_dim", embedding_dim),
            ("units", units),
            ("encoder_layers", encoder_layers),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
        if attention_units is not None and (
            isinstance(attention_units, bool) or not isinstance(attention_units, int) or attention_units < 1
        ):
            raise ValueError(f"`attention_units` must be None or a positive int. Received: attention_units={attention_units!r}")
        if cell not in RECURRENT_LAYERS:
            raise ValueError(f"`cell` must be one of {sorted(RECURRENT_LAYERS)}. Received: cell={cell!r}")
        if attention not in ATTENTIONS:
            raise ValueError(f"`attention` must be one of {ATTENTIONS}. Received: attention={attention!r}")
        for name, flag in (("input_feeding", input_feeding), ("tie_embeddings", tie_embeddings)):
            if not isinstance(flag, bool):
                raise ValueError(f"`{name}` must be a bool. Received: {name}={flag!r}")
        for name, rate in (("dropout", dropout), ("label_smoothing", label_smoothing)):
            if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
                raise ValueError(f"`{name}` must be a float in [0, 1). Received: {name}={rate!r}")
        for name, token in (("bos_id", bos_id), ("eos_id", eos_id)):
            if isinstance(token, bool) or not isinstance(token, int) or not 0 < token < target_vocabulary_size:
                raise ValueError(
                    f"`{name}` must be an id in [1, target_vocabulary_size={target_vocabulary_size}). "
                    f"Received: {name}={token!r}"
                )
        self.source_vocabulary_size = source_vocabulary_size
        self.target_vocabulary_size = target_vocabulary_size
        self.embedding_dim = embedding_dim
        self.units = units
        self.encoder_layers = encoder_layers
        self.cell = cell
        self.attention = attention
        self.attention_units = attention_units
        self.input_feeding = input_feeding
        self.tie_embeddings = tie_embeddings
        self.dropout = float(dropout)
        self.label_smoothing = float(label_smoothing)
        self.bos_id = bos_id
        self.eos_id = eos_id
        self.seed = seed

        # Unit-variance vectors rather than Keras' +-0.05: with the default, encoder states
        # start so small that the attention scores are flat and their weights get almost no
        # gradient (measured at 8 dimensions: the additive query kernel's largest gradient
        # was 4e-11, 1e-6 with this initializer). Tied
        # logits also start near unit scale, as in `LanguageModel`.
        limit = (3.0 / embedding_dim) ** 0.5
        self.source_embedding = keras.layers.Embedding(
            source_vocabulary_size, embedding_dim, mask_zero=True, name="source_embedding",
            embeddings_initializer=keras.initializers.RandomUniform(-limit, limit, seed=seed),
        )
        self.target_embedding = keras.layers.Embedding(
            target_vocabulary_size, embedding_dim, mask_zero=True, name="target_embedding",
            embeddings_initializer=keras.initializers.RandomUniform(-limit, limit, seed=None if seed is None else seed + 1),
        )
        self.encoder = [
            Bidirectional(
                recurrent_layer(cell, units, return_sequences=True, return_state=index == encoder_layers - 1),
                name=f"encoder_{index}",
            )
            for index in range(encoder_layers)
        ]
        # Source embedding, between encoder layers, then one for the decoder side (target
        # embedding and attentional vector).
        self.dropouts = [
            keras.layers.Dropout(dropout, seed=None if seed is None else seed + index, name=f"dropout_{index}")
            for index in range(encoder_layers + 1)
        ]
        state_count = 2 if cell == "lstm" else 1
        self.bridges = [
            keras.layers.Dense(units, activation="tanh", name=f"bridge_{index}") for index in range(state_count)
        ]
        self.decoder_cell = _CELLS[cell](units, name="decoder_cell")
        if attention == "luong":
            self.attention_layer = MultiplicativeAttention("general", name="attention")
        else:
            self.attention_layer = AdditiveAttention(attention_units or units, name="attention")
        self.attentional_dim = embedding_dim if tie_embeddings else units
        self.attentional = keras.layers.Dense(
            self.attentional_dim, activation="tanh", use_bias=False, name="attentional"
        )
        if tie_embeddings:
            self.output_layer = TiedOutput(dtype="float32", name="tied_output")
            self.output_layer.tie(self.target_embedding)
        else:
            self.output_layer = keras.layers.Dense(target_vocabulary_size, dtype="float32", name="output")

    # -- building -------------------------------------------------------------------------------

    @property
    def memory_dim(self):
        """Width of the encoder outputs the decoder attends over (both directions)."""
        return 2 * self.units

    @property
    def decoder_input_dim(self):
        if self.attention == "bahdanau":
            return self.embedding_dim + self.memory_dim
        return self.embedding_dim + (self.attentional_dim if self.input_feeding else 0)

    def build(self, input_shape=None):
        # Sublayers that `call` reaches only through their methods are built here, so the
        # weights exist (and load) before the first step.
        self.source_embedding.build((None, None))
        self.target_embedding.build((None, None))
        width = self.embedding_dim
        for layer in self.encoder:
            layer.build((None, None, width))
            width = 2 * self.units
        for bridge in self.bridges:
            bridge.build((None, 2 * self.units))
        self.decoder_cell.build((None, self.decoder_input_dim))
        self.attention_layer.build([(None, self.units), (None, None, self.memory_dim)])
        self.attentional.build((None, self.memory_dim + self.units))
        self.output_layer.build((None, self.attentional_dim))
        self.built = True

    # -- encoder --------------------------------------------------------------------------------

    def encode(self, source_ids, training=False):
        """``(memory, memory_mask, decoder_cell_states)`` for source ids ``(batch, time)``."""
        source_ids = ops.cast(source_ids, "int32")
        mask = ops.not_equal(source_ids, 0)
        x = self.dropouts[0](self.source_embedding(source_ids), training=training)
        states = None
        for index, layer in enumerate(self.encoder):
            outputs = layer(x, mask=mask, training=training)
            if index == len(self.encoder) - 1:
                x, states = outputs[0], outputs[1:]
            else:
                x = self.dropouts[index + 1](outputs, training=training)
        half = len(states) // 2
        decoder_states = [
            bridge(ops.concatenate([forward, backward], axis=-1))
            for bridge, forward, backward in zip(self.bridges, states[:half], states[half:])
        ]
        return x, mask, decoder_states

    # -- decoder --------------------------------------------------------------------------------

    def _decoder_step(self, embedded, states, memory, keys, memory_mask):
        """One decoder step: ``states = [attentional, *cell_states]`` -> the same, one step on."""
        previous, cell_states = states[0], list(states[1:])
        if self.attention == "bahdanau":
            context, _ = self.attention_layer.attend(cell_states[0], memory, keys, memory_mask)
            output, cell_states = self.decoder_cell.call(ops.concatenate([embedded, context], -1), cell_states)
        else:
            inputs = ops.concatenate([embedded, previous], -1) if self.input_feeding else embedded
            output, cell_states = self.decoder_cell.call(inputs, cell_states)
            context, _ = self.attention_layer.attend(output, memory, keys, memory_mask)
        attentional = self.attentional(ops.concatenate([context, output], -1))
        return [attentional, *cell_states]

    def _initial_decoder_states(self, cell_states):
        batch = ops.shape(cell_states[0])[0]
        return [ops.zeros((batch, self.attentional_dim), cell_states[0].dtype), *cell_states]

    def call(self, inputs, training=False):
        source_ids, decoder_input_ids = _unpack(inputs)
        memory, memory_mask, cell_states = self.encode(source_ids, training=training)
        keys = self.attention_layer.project_memory(memory)
        embedded = self.dropouts[-1](self.target_embedding(ops.cast(decoder_input_ids, "int32")), training=training)
        cell = self.decoder_cell
        # The embedding part of every step's cell input is projected for all steps at once,
        # and the recurrent weights are read once, outside the loop. Target padding sits at
        # the end and its logits carry no loss, so the loops run every step unmasked.
        projected = ops.matmul(embedded, cell.kernel[: self.embedding_dim])
        if cell.input_bias() is not None:
            projected = projected + cell.input_bias()
        if self.attention == "luong" and not self.input_feeding:
            attentional = self._decode_without_feeding(projected, cell_states, memory, keys, memory_mask, training)
        else:
            attentional = self._decode_step_by_step(projected, cell_states, memory, keys, memory_mask)
        attentional = self.dropouts[-1](attentional, training=training)
        return self.output_layer(attentional)

    def _decode_without_feeding(self, projected, cell_states, memory, keys, memory_mask, training):
        # Nothing flows from attention back into the recurrence: the decoder RNN runs over
        # the whole target as one layer call (with the hand-written backward pass while
        # training) and attention covers all steps in one batched product.
        cell = self.decoder_cell
        fast = cell.fast_backward_inputs() if training else None
        if fast is not None:
            name, recurrent_kernel, recurrent_bias = fast
            _, outputs, _ = fast_backward_recurrence(
                name, projected, cell_states, recurrent_kernel, recurrent_bias, return_sequences=True
            )
        else:
            _, outputs, _ = run_recurrence(cell.make_step(None), projected, cell_states, return_sequences=True)
        context, _ = self.attention_layer.attend(outputs, memory, keys, memory_mask)
        return self.attentional(ops.concatenate([context, outputs], -1))

    def _decode_step_by_step(self, projected, cell_states, memory, keys, memory_mask):
        cell = self.decoder_cell
        feed_kernel = cell.kernel[self.embedding_dim :]
        recurrent_step = cell.make_step(None)

        def step(projected_t, states):
            previous, states = states[0], list(states[1:])
            if self.attention == "bahdanau":
                context, _ = self.attention_layer.attend(states[0], memory, keys, memory_mask)
                states = recurrent_step(projected_t + ops.matmul(context, feed_kernel), states)
            else:
                if self.input_feeding:
                    projected_t = projected_t + ops.matmul(previous, feed_kernel)
                states = recurrent_step(projected_t, states)
                context, _ = self.attention_layer.attend(states[0], memory, keys, memory_mask)
            return [self.attentional(ops.concatenate([context, states[0]], -1)), *states]

        # `run_recurrence` collects states[0]: the attentional vectors.
        _, attentional, _ = run_recurrence(
            step, projected, self._initial_decoder_states(cell_states), return_sequences=True
        )
        return attentional

    def compute_output_shape(self, input_shape):
        if isinstance(input_shape, dict):
            target_shape = input_shape["decoder_input_ids"]
        else:
            target_shape = input_shape[1]
        return tuple(target_shape) + (self.target_vocabulary_size,)

    # -- loss -----------------------------------------------------------------------------------

    def compile(self, optimizer="adam", loss=None, **kwargs):
        if loss is not None:
            raise ValueError(
                "Seq2Seq trains on its own label-smoothed cross-entropy over non-padding tokens; "
                f"compile() takes no loss. Received: loss={loss!r}"
            )
        super().compile(optimizer=optimizer, **kwargs)

    def compile_from_config(self, config):
        # Keras skips compiling a reloaded model whose class overrides compile(); this
        # compile only checks its arguments, so the saved configuration applies as is.
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        import tensorflow as tf

        losses, weights = label_smoothed_token_losses(y, y_pred, self.label_smoothing, 0, sample_weight)
        count = ops.sum(weights)
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            # Replicas' gradients are summed: dividing each replica's token-loss sum by the
            # token count of the whole global batch makes that sum the gradient of the
            # global per-token mean (replicas hold different numbers of target tokens, so
            # a mean of per-replica means would weight tokens unevenly).
            count = context.all_reduce("SUM", count)
        loss = ops.sum(losses * weights) / ops.maximum(count, 1.0)
        for extra in self.losses:
            loss = loss + scale_loss_for_distribution(ops.cast(extra, loss.dtype))
        return loss

    # -- one step at a time (nlpkit.decoding) ---------------------------------------------------

    @property
    def decoder_state_count(self):
        """Number of recurrent decoder states (attentional vector and cell states)."""
        return 1 + len(self.bridges)

    def decoding_states(self, source_ids):
        """The initial decoding states for source ids ``(batch, time)`` (inference mode).

        ``[attentional, *cell_states, memory, keys, memory_mask]``: every entry has the
        batch first, so a search may reorder or subset rows; the last three do not change
        from step to step. The mask is float32 (1 at real source positions).
        """
        memory, mask, cell_states = self.encode(source_ids, training=False)
        keys = self.attention_layer.project_memory(memory)
        return [*self._initial_decoder_states(cell_states), memory, keys, ops.cast(mask, memory.dtype)]

    def step(self, token_ids, states):
        """One decoder step: ``(batch,)`` previous token ids and the states in.

        Returns ``(logits, new_states)``, logits ``(batch, target_vocabulary_size)``; running
        it from `decoding_states` over ``decoder_input_ids`` gives the logits of ``call``.
        """
        states = list(states)
        count = self.decoder_state_count
        if len(states) != count + 3:
            raise ValueError(f"{self.name} steps with {count + 3} states; received {len(states)}.")
        memory, keys, mask = states[count:]
        embedded = self.target_embedding(ops.cast(token_ids, "int32"))
        with compute_dtype_scope(self):
            new_states = self._decoder_step(embedded, states[:count], memory, keys, mask)
        return self.output_layer(new_states[0]), [*new_states, memory, keys, mask]

    @property
    def decoding_state_names(self):
        """Names of the `decoding_states`, in order (the TFLite signatures' tensor names)."""
        cell_names = ["state_h", "state_c"] if self.cell == "lstm" else ["state_h"]
        return ["attentional", *cell_names, "memory", "keys", "memory_mask"]

    # -- export ---------------------------------------------------------------------------------

    def tflite_endpoints(self):
        """The TFLite signatures: ``encode`` and ``decode_step`` (batch 1, any source length).

        ``encode``: ``source_ids`` int32 ``(1, time)`` (end id included) -> the decoding
        states by name (`decoding_state_names`). ``decode_step``: ``token_id`` int32 ``(1,)``,
        the recurrent states and ``memory``, ``keys``, ``memory_mask`` -> ``logits``
        ``(1, target_vocabulary_size)`` and the new recurrent states under the same names.
        Nothing is kept between calls: the states travel in and out explicitly.
        """
        import tensorflow as tf

        names = self.decoding_state_names
        count = self.decoder_state_count
        key_dim = self.units if self.attention == "luong" else (self.attention_units or self.units)
        widths = [self.attentional_dim] + [self.units] * (count - 1)
        state_specs = [tf.TensorSpec([1, width], tf.float32, name=name) for name, width in zip(names, widths)]
        memory_specs = [
            tf.TensorSpec([1, None, self.memory_dim], tf.float32, name="memory"),
            tf.TensorSpec([1, None, key_dim], tf.float32, name="keys"),
            tf.TensorSpec([1, None], tf.float32, name="memory_mask"),
        ]

        def encode(source_ids):
            return dict(zip(names, self.decoding_states(source_ids)))

        def decode_step(token_id, *states):
            logits, new_states = self.step(token_id, list(states))
            return {"logits": logits, **dict(zip(names[:count], new_states[:count]))}

        return {
            "encode": (encode, [tf.TensorSpec([1, None], tf.int32, name="source_ids")]),
            "decode_step": (decode_step, [tf.TensorSpec([1], tf.int32, name="token_id"), *state_specs, *memory_specs]),
        }

    task = "translation"
    # How the exported bundle translates (beam width, length limits); not part of the model's
    # config, since it changes no weight: set it before export, e.g. ``model.decoding =
    # DecodingSettings(beam_width=5)``.
    decoding = DecodingSettings()

    def manifest_section(self, tokenizer):
        """``translation``: start and end ids, state names and `decoding`, read by `nlpkit.lite.Translator`."""
        del tokenizer
        return TranslationSection(
            bos_id=int(self.bos_id),
            eos_id=int(self.eos_id),
            state_names=tuple(self.decoding_state_names),
            recurrent_states=int(self.decoder_state_count),
            decoding=self.decoding,
        ).to_manifest()

    def serving_endpoints(self, tokenizer, label_names=None):
        """SavedModel signatures: ``serving_default`` (beam search, `decoding`'s width) and ``greedy``.

        Both take ``source`` strings, tokenize them in the graph with ``tokenizer`` (the
        `nlpkit.text.SentencePieceTokenizer`), and return ``translation`` strings and
        ``token_ids``. ``label_names`` is unused.
        """
        import tensorflow as tf

        del label_names
        settings = self.decoding

        def make(beam_width):
            def serve(source):
                ids = tokenizer(source)
                if settings.max_source_length:
                    ids = ids[:, : max(settings.max_source_length - 1, 0)]
                ends = tf.fill([tf.shape(source)[0], 1], tf.constant(EOS_ID, tf.int32))
                ids = tf.concat([ids, tf.RaggedTensor.from_tensor(ends)], axis=1).to_tensor(default_value=0)
                tokens = self.translate_graph(
                    ids, beam_width, settings.length_penalty, settings.max_length_ratio, settings.max_length_offset
                )
                return {"translation": tokenizer.detokenize(tokens), "token_ids": tokens}

            return serve, [tf.TensorSpec([None], tf.string, name="source")]

        return {"serving_default": make(settings.beam_width), "greedy": make(1)}

    def translate_graph(self, source_ids, beam_width=1, length_penalty=1.0, max_length_ratio=2.0, max_length_offset=10):
        """Token ids of the translations of right-padded ``source_ids`` as one TensorFlow graph.

        Beam search (greedy with ``beam_width=1``) by `nlpkit.decoding.graph_search`; row
        ``i`` generates at most ``int(max_length_ratio * length_i + max_length_offset)``
        tokens. Returns int32 ``(batch, steps)``, the end id included, 0 after it.
        """
        import tensorflow as tf

        from nlpkit.decoding.graph_search import graph_beam_search

        source_ids = tf.cast(source_ids, tf.int32)
        lengths = tf.reduce_sum(tf.cast(tf.not_equal(source_ids, 0), tf.float32), axis=1)
        limits = tf.cast(tf.floor(max_length_ratio * lengths + max_length_offset), tf.int32)
        return graph_beam_search(
            self.step, self.decoding_states(source_ids), self.bos_id, self.eos_id, limits,
            self.target_vocabulary_size, beam_width, length_penalty,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "source_vocabulary_size": self.source_vocabulary_size,
                "target_vocabulary_size": self.target_vocabulary_size,
                "embedding_dim": self.embedding_dim,
                "units": self.units,
                "encoder_layers": self.encoder_layers,
                "cell": self.cell,
                "attention": self.attention,
                "attention_units": self.attention_units,
                "input_feeding": self.input_feeding,
                "tie_embeddings": self.tie_embeddings,
                "dropout": self.dropout,
                "label_smoothing": self.label_smoothing,
                "bos_id": self.bos_id,
                "eos_id": self.eos_id,
                "seed": self.seed,
            }
        )
        return config


def _unpack(inputs):
    if isinstance(inputs, dict):
        missing = [name for name in INPUT_NAMES if name not in inputs]
        if missing:
            raise ValueError(f"Seq2Seq inputs need {list(INPUT_NAMES)}; missing {missing}. Received keys {sorted(inputs)}")
        return inputs["source_ids"], inputs["decoder_input_ids"]
    if isinstance(inputs, (list, tuple)) and len(inputs) == 2:
        return inputs[0], inputs[1]
    raise ValueError(
        f"Seq2Seq inputs are {{'source_ids', 'decoder_input_ids'}} or a pair. Received: {type(inputs).__name__}"
    )
