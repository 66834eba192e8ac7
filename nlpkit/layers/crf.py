"""Linear-chain conditional random field: forward-algorithm loss and Viterbi decoding.

A tagger computes unary *emission* scores ``(batch, time, num_tags)``; the CRF adds a
score for every pair of adjacent tags (``transitions[from, to]``) and, optionally, for the
first and last tag of each sentence. The score of a tag sequence ``y`` of length ``L`` is

    start[y_0] + sum_t emissions[t, y_t] + sum_{t>=1} transitions[y_{t-1}, y_t] + end[y_{L-1}]

and the model is ``p(y | x) = exp(score(y)) / Z`` over all ``num_tags ** L`` sequences.
Training maximises ``log p`` (the log-partition ``log Z`` comes from the forward algorithm);
inference takes the single best sequence (Viterbi).

Masks are right-padded (every sentence occupies a prefix of the time axis). Invalid tag
sequences of a scheme (``O -> I-PER`` in BIO) can be forbidden with `allowed_transitions`;
forbidden moves get `FORBIDDEN_SCORE` added in training *and* decoding, so the model is a
distribution over valid sequences only.

The per-step arithmetic uses ``keras.ops``. The Viterbi loops are TensorFlow
(``tf.while_loop`` + ``TensorArray``) because they must convert to TFLite built-in ops
(``WHILE``), with the weights read before the loop (see `nlpkit.layers.recurrent.read_weight`).
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

# keras.src: the functions Keras' own losses and metrics use to read and attach masks.
from keras.src.backend import get_keras_mask, set_keras_mask
from keras.src.losses.loss import scale_loss_for_distribution

from nlpkit.layers.recurrent import read_weight

# Added to forbidden transitions. Finite rather than -inf: -inf turns into NaN in
# `inf - inf` (logsumexp shifts, gradients), and float16 cannot hold much more than 6.5e4.
# Forward and Viterbi take a max/logsumexp at every step, so one allowed predecessor
# keeps a state's score finite no matter how many forbidden moves the sequence offers.
FORBIDDEN_SCORE = -1e4

_SCHEME_ALIASES = {"BIO": "BIO", "IOB2": "BIO", "IOB1": "IOB1", "BIOES": "BIOES", "IOBES": "BIOES"}
_SCHEME_PREFIXES = {"BIO": ("B", "I"), "IOB1": ("B", "I"), "BIOES": ("B", "I", "E", "S")}


def _parse_tag(tag, scheme, index):
    if not isinstance(tag, str):
        raise ValueError(f"Tags must be strings. Received: tags[{index}]={tag!r}")
    if tag == "O":
        return "O", None
    prefix, separator, entity = tag.partition("-")
    prefixes = _SCHEME_PREFIXES[scheme]
    if not separator or not entity or prefix not in prefixes:
        raise ValueError(
            f"Tag {tag!r} (tags[{index}]) is not valid in the {scheme} scheme: expected 'O' "
            f"or '<prefix>-<type>' with a prefix in {list(prefixes)}."
        )
    return prefix, entity


def _is_allowed(scheme, previous, following):
    """Whether tag ``following`` may come right after ``previous`` (None = sentence edge)."""
    continues = (
        previous is not None
        and following is not None
        and previous[0] in ("B", "I")
        and previous[1] == following[1]
    )
    if scheme == "BIOES":
        # Chunks close explicitly (E-, S-): nothing may start or end while one is open.
        closed = previous is None or previous[0] in ("O", "E", "S")
        if following is None:
            return closed
        return continues if following[0] in ("I", "E") else closed
    if following is None:
        return True
    # BIO opens every chunk with B-, so I- only continues one; IOB1 opens chunks with I-
    # and uses B- only to split two adjacent chunks of one type.
    continuation_only = "I" if scheme == "BIO" else "B"
    return continues if following[0] == continuation_only else True


def allowed_transitions(tags, scheme="BIO"):
    """The transitions a tag scheme allows, as boolean masks for `CRF`.

    Args:
        tags: list of str, the tag vocabulary in id order, e.g. ``["O", "B-PER", "I-PER"]``.
            Every tag is ``"O"`` or ``<prefix>-<type>``.
        scheme: "BIO" (alias "IOB2": chunks open with B-), "IOB1" (chunks open with I-;
            B- only between two adjacent chunks of one type) or "BIOES" (alias "IOBES":
            single-token chunks are S-, chunks close with E-). Case-insensitive.

    Returns:
        ``(matrix, start, end)``: numpy bool arrays ``(num_tags, num_tags)`` with
        ``matrix[i, j]`` true when tag ``j`` may follow tag ``i``, and ``(num_tags,)`` masks
        of the tags a sentence may start and end with.

    Example:
        >>> matrix, start, end = allowed_transitions(["O", "B-PER", "I-PER"], "BIO")
        >>> bool(matrix[0, 2]), bool(matrix[1, 2]), bool(start[2])  # O->I, B->I, start->I
        (False, True, False)
    """
    if not isinstance(scheme, str) or scheme.upper() not in _SCHEME_ALIASES:
        raise ValueError(
            f"`scheme` must be one of {sorted(_SCHEME_ALIASES)}. Received: scheme={scheme!r}"
        )
    scheme = _SCHEME_ALIASES[scheme.upper()]
    if isinstance(tags, str) or not len(tags):
        raise ValueError(f"`tags` must be a non-empty list of str. Received: tags={tags!r}")
    parsed = [_parse_tag(tag, scheme, index) for index, tag in enumerate(tags)]
    duplicates = sorted({tag for tag in tags if list(tags).count(tag) > 1})
    if duplicates:
        raise ValueError(f"`tags` must be unique. Received duplicates: {duplicates}")
    matrix = np.array([[_is_allowed(scheme, p, f) for f in parsed] for p in parsed], bool)
    start = np.array([_is_allowed(scheme, None, f) for f in parsed], bool)
    end = np.array([_is_allowed(scheme, p, None) for p in parsed], bool)
    return matrix, start, end


def _bool_array(value, shape, name):
    if value is None:
        return None
    array = np.asarray(value)
    if array.shape != shape or not (array.dtype == bool or np.isin(array, (0, 1)).all()):
        raise ValueError(
            f"`{name}` must be a boolean array of shape {shape}. Received: {name} with shape "
            f"{array.shape} and dtype {array.dtype}: {value!r}"
        )
    return array.astype(bool)


@keras.saving.register_keras_serializable(package="nlpkit")
class CRF(keras.layers.Layer):
    """Linear-chain CRF over emission scores: Viterbi tags out, log-likelihood for training.

    ``crf(emissions, mask=mask)`` returns the best tag sequence of every sentence as int32
    ``(batch, time)``, 0 at padding. It converts to TFLite with built-in ops only (batch 1,
    any length). ``crf.log_likelihood(emissions, tags, mask)`` gives ``log p(tags)`` per
    sentence (forward algorithm) and ``crf.negative_log_likelihood`` its negated mean, the
    training loss; `CRFModel` wraps an emission model so that plain ``model.fit`` trains
    both. The mask comes from the ``mask`` argument or from Keras mask propagation
    (e.g. ``Embedding(mask_zero=True)``) and must be right-padded. A sentence of length 0
    has log-likelihood 0 and decodes to zeros.

    Computation runs in float32 under a float16/bfloat16 dtype policy (a sum over a long
    sentence loses too much precision in 16 bits) and in float64 under a float64 policy.
    Forbidden transitions (``allowed_*`` false) score `FORBIDDEN_SCORE` in the loss and
    in decoding, so the model normalises over valid tag sequences only.

    Args:
        num_tags: int, the number of tags (size of the emissions' last axis).
        use_boundary_transitions: bool, default True. Learn ``start_transitions`` and
            ``end_transitions``, scores for the first and last tag of a sentence.
        allowed_transitions: optional ``(num_tags, num_tags)`` bool array (or nested
            list): ``[i][j]`` false forbids tag ``j`` right after tag ``i``. Default None
            (all allowed). `allowed_transitions()` builds it for BIO, IOB1 and BIOES.
        allowed_start: optional ``(num_tags,)`` bool array: tags a sentence may start
            with. Applies with or without boundary transitions. Default None (all).
        allowed_end: optional ``(num_tags,)`` bool array: tags a sentence may end with.
            Default None (all).
        transitions_initializer: initializer of ``transitions``, default "zeros" (a CRF
            starts as independent per-token classifiers; the data breaks the symmetry).
        boundary_initializer: initializer of the start/end vectors, default "zeros".

    Example:
        >>> crf = CRF.from_tags(["O", "B-PER", "I-PER"], "BIO")
        >>> emissions = np.random.normal(size=(2, 4, 3)).astype("float32")
        >>> mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0]], bool)
        >>> paths = crf(emissions, mask=mask)        # int32 (2, 4), zeros at padding
        >>> tags = np.array([[1, 2, 0, 0], [0, 1, 0, 0]])
        >>> crf.log_likelihood(emissions, tags, mask).shape
        TensorShape([2])
        >>> loss = crf.negative_log_likelihood(emissions, tags, mask)  # scalar
    """

    def __init__(
        self,
        num_tags,
        use_boundary_transitions=True,
        allowed_transitions=None,
        allowed_start=None,
        allowed_end=None,
        transitions_initializer="zeros",
        boundary_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        is_int = isinstance(num_tags, (int, np.integer)) and not isinstance(num_tags, bool)
        if not is_int or num_tags < 1:
            raise ValueError(f"`num_tags` must be a positive int. Received: num_tags={num_tags!r}")
        self.num_tags = int(num_tags)
        self.use_boundary_transitions = bool(use_boundary_transitions)
        self.allowed_transitions = _bool_array(
            allowed_transitions, (self.num_tags, self.num_tags), "allowed_transitions"
        )
        self.allowed_start = _bool_array(allowed_start, (self.num_tags,), "allowed_start")
        self.allowed_end = _bool_array(allowed_end, (self.num_tags,), "allowed_end")
        self.transitions_initializer = keras.initializers.get(transitions_initializer)
        self.boundary_initializer = keras.initializers.get(boundary_initializer)
        self.supports_masking = True
        self.input_spec = keras.InputSpec(ndim=3)

    @classmethod
    def from_tags(cls, tags, scheme="BIO", **kwargs):
        """A CRF over ``tags`` that forbids the transitions ``scheme`` does not allow.

        Example:
            >>> crf = CRF.from_tags(["O", "B-LOC", "I-LOC", "B-PER", "I-PER"], "BIO")
        """
        matrix, start, end = allowed_transitions(tags, scheme)
        return cls(
            len(tags),
            allowed_transitions=matrix,
            allowed_start=start,
            allowed_end=end,
            **kwargs,
        )

    def build(self, emissions_shape):
        if emissions_shape[-1] is not None and emissions_shape[-1] != self.num_tags:
            raise ValueError(
                f"{self.name} has num_tags={self.num_tags} but received emissions of shape "
                f"{tuple(emissions_shape)}; the last axis must hold one score per tag."
            )
        # autocast=False: under mixed precision the parameters are read in float32, which
        # the float32 CRF arithmetic needs (a float16 read would round them first).
        self.transitions = self.add_weight(
            shape=(self.num_tags, self.num_tags),
            initializer=self.transitions_initializer,
            name="transitions",
            autocast=False,
        )
        self.start_transitions = self.end_transitions = None
        if self.use_boundary_transitions:
            self.start_transitions = self.add_weight(
                shape=(self.num_tags,),
                initializer=self.boundary_initializer,
                name="start_transitions",
                autocast=False,
            )
            self.end_transitions = self.add_weight(
                shape=(self.num_tags,),
                initializer=self.boundary_initializer,
                name="end_transitions",
                autocast=False,
            )
        self.built = True

    # -- parameters and inputs ---------------------------------------------------------------

    @property
    def math_dtype(self):
        """The float dtype of the CRF arithmetic: float32 under 16-bit policies."""
        dtype = self.compute_dtype
        return "float32" if dtype in ("float16", "bfloat16") else dtype

    def _penalty(self, allowed, shape):
        penalty = np.zeros(shape, np.float32)
        if allowed is not None:
            penalty[~allowed] = FORBIDDEN_SCORE
        return ops.convert_to_tensor(penalty, dtype=self.math_dtype)

    def transition_scores(self):
        """``(transitions, start, end)`` as tensors, constraint penalties included.

        Without boundary transitions ``start``/``end`` hold only the penalties (zeros when
        unconstrained). Reading the weights here, outside any loop, is what lets the TFLite
        converter freeze them.
        """
        if not self.built:
            self.build((None, None, self.num_tags))
        dtype = self.math_dtype
        k = self.num_tags
        transitions = ops.cast(read_weight(self.transitions), dtype)
        transitions = transitions + self._penalty(self.allowed_transitions, (k, k))
        start = self._penalty(self.allowed_start, (k,))
        end = self._penalty(self.allowed_end, (k,))
        if self.use_boundary_transitions:
            start = start + ops.cast(read_weight(self.start_transitions), dtype)
            end = end + ops.cast(read_weight(self.end_transitions), dtype)
        return transitions, start, end

    def _scores_or_own(self, transition_scores):
        return self.transition_scores() if transition_scores is None else tuple(transition_scores)

    def _prepare(self, emissions, mask):
        """Casts and checks the inputs; returns them padded with one masked step.

        The extra masked step at the end makes every loop below start from step 0 even
        for a zero-length time axis; masked steps change nothing, so results are exact.
        """
        emissions = ops.convert_to_tensor(emissions)
        if len(emissions.shape) != 3:
            raise ValueError(
                f"{self.name} expects emissions of shape (batch, time, num_tags). "
                f"Received shape {tuple(emissions.shape)}."
            )
        if emissions.shape[-1] is not None and emissions.shape[-1] != self.num_tags:
            raise ValueError(
                f"{self.name} has num_tags={self.num_tags} but received emissions of shape "
                f"{tuple(emissions.shape)}."
            )
        if not self.built:
            self.build(emissions.shape)
        emissions = ops.cast(emissions, self.math_dtype)
        shape = ops.shape(emissions)
        if mask is None:
            mask = ops.ones(shape[:2], dtype="bool")
        mask = ops.cast(mask, "bool")
        emissions = ops.concatenate(
            [emissions, ops.zeros((shape[0], 1, self.num_tags), dtype=emissions.dtype)], axis=1
        )
        mask = ops.concatenate([mask, ops.zeros((shape[0], 1), dtype="bool")], axis=1)
        return emissions, mask

    # -- training ----------------------------------------------------------------------------

    def sequence_score(self, emissions, tags, mask=None, transition_scores=None):
        """The unnormalised score of the given tag sequences, ``(batch,)``.

        Tags at padding positions are ignored (any value, e.g. -1, is fine there).
        ``transition_scores``, here and in the methods below: an optional
        ``(transitions, start, end)`` triple used instead of `transition_scores()`, e.g.
        the mean of several CRFs' scores when an ensemble decodes as one CRF.
        """
        emissions, mask = self._prepare(emissions, mask)
        transitions, start, end = self._scores_or_own(transition_scores)
        tags = ops.cast(tags, "int32")
        tags = ops.concatenate([tags, ops.zeros((ops.shape(tags)[0], 1), "int32")], axis=1)
        tags = ops.where(mask, tags, 0)
        weights = ops.cast(mask, emissions.dtype)
        one_hot = ops.one_hot(tags, self.num_tags, dtype=emissions.dtype)
        score = ops.sum(ops.sum(emissions * one_hot, axis=-1) * weights, axis=1)
        # Right padding: a valid step t >= 1 always has a valid step t - 1 before it.
        pairs = tags[:, :-1] * self.num_tags + tags[:, 1:]
        pair_scores = ops.take(ops.reshape(transitions, (-1,)), pairs)
        score = score + ops.sum(pair_scores * weights[:, 1:], axis=1)
        lengths = ops.sum(ops.cast(mask, "int32"), axis=1)
        at_last = ops.one_hot(ops.maximum(lengths - 1, 0), ops.shape(tags)[1], dtype="int32")
        last = ops.sum(tags * at_last, axis=1)
        edges = ops.take(start, tags[:, 0]) + ops.take(end, last)
        return score + ops.where(lengths > 0, edges, ops.zeros_like(edges))

    def log_partition(self, emissions, mask=None, transition_scores=None):
        """``log Z`` per sentence by the forward algorithm, ``(batch,)``; 0 for empty rows."""
        emissions, mask = self._prepare(emissions, mask)
        transitions, start, end = self._scores_or_own(transition_scores)
        steps = ops.transpose(emissions, (1, 0, 2))
        step_mask = ops.expand_dims(ops.transpose(mask), -1)
        pair = ops.expand_dims(transitions, 0)

        def step(t, alpha):
            # logsumexp over the previous tag: stable (max-shifted) and differentiable.
            following = ops.logsumexp(ops.expand_dims(alpha, -1) + pair, axis=1) + steps[t]
            return ops.where(step_mask[t], following, alpha)

        alpha = ops.fori_loop(1, ops.shape(steps)[0], step, start + steps[0])
        log_z = ops.logsumexp(alpha + end, axis=1)
        nonempty = ops.any(mask, axis=1)
        return ops.where(nonempty, log_z, ops.zeros_like(log_z))

    def log_likelihood(self, emissions, tags, mask=None, transition_scores=None):
        """``log p(tags | emissions)`` per sentence, ``(batch,)``; 0 for empty sentences.

        Args:
            emissions: float ``(batch, time, num_tags)`` unary scores.
            tags: int ``(batch, time)`` gold tag ids; values at padding are ignored.
            mask: optional bool ``(batch, time)``, right-padded. Default: no padding.
        """
        if mask is None:
            mask = get_keras_mask(emissions)
        return self.sequence_score(emissions, tags, mask, transition_scores) - self.log_partition(
            emissions, mask, transition_scores
        )

    def negative_log_likelihood(self, emissions, tags, mask=None, sample_weight=None, transition_scores=None):
        """The training loss: mean negative log-likelihood per sentence (a scalar).

        With ``sample_weight`` (one weight per sentence) it is ``sum(w * nll) / batch``,
        Keras' "sum_over_batch_size" reduction.
        """
        nll = -self.log_likelihood(emissions, tags, mask, transition_scores)
        if sample_weight is not None:
            nll = nll * ops.reshape(ops.cast(sample_weight, nll.dtype), (-1,))
        return ops.mean(nll)

    # -- inference ---------------------------------------------------------------------------

    def viterbi_decode(self, emissions, mask=None, transition_scores=None):
        """The best tag sequence and its score per sentence.

        Returns:
            ``(paths, scores)``: int32 ``(batch, time)`` with 0 at padding, and float
            ``(batch,)`` scores (`sequence_score` of the path; 0 for empty sentences).
        """
        if mask is None:
            mask = get_keras_mask(emissions)
        time = ops.shape(emissions)[1]
        emissions, mask = self._prepare(emissions, mask)
        transitions, start, end = self._scores_or_own(transition_scores)
        steps = tf.transpose(emissions, [1, 0, 2])
        step_mask = tf.expand_dims(tf.transpose(mask), -1)
        num_steps = tf.shape(steps)[0]
        pair = tf.expand_dims(transitions, 0)
        # A padding step points every tag back to itself, so the best final tag walks
        # back unchanged to the sentence's last real step.
        identity = tf.range(self.num_tags, dtype=tf.int32)[tf.newaxis]
        element_shape = tf.TensorShape([emissions.shape[0], self.num_tags])
        backpointers = tf.TensorArray(tf.int32, size=num_steps, element_shape=element_shape)

        def forward(t, score, backpointers):
            candidates = tf.expand_dims(score, -1) + pair
            best_previous = tf.argmax(candidates, axis=1, output_type=tf.int32)
            following = tf.reduce_max(candidates, axis=1) + steps[t]
            keep = step_mask[t]
            backpointers = backpointers.write(t, tf.where(keep, best_previous, identity))
            return t + 1, tf.where(keep, following, score), backpointers

        _, score, backpointers = tf.while_loop(
            lambda t, *_: t < num_steps, forward, (tf.constant(1), start + steps[0], backpointers)
        )
        final = score + end
        best_last = tf.argmax(final, axis=1, output_type=tf.int32)
        best_score = tf.reduce_max(final, axis=1)
        path = tf.TensorArray(
            tf.int32, size=num_steps, element_shape=tf.TensorShape([emissions.shape[0]])
        )

        def backward(t, tag, path):
            path = path.write(t, tag)
            return t - 1, tf.gather(backpointers.read(t), tag, batch_dims=1), path

        _, first, path = tf.while_loop(
            lambda t, *_: t > 0, backward, (num_steps - 1, best_last, path)
        )
        path = path.write(0, first)
        paths = tf.transpose(path.stack())[:, :time]
        paths = tf.where(mask[:, :time], paths, tf.zeros_like(paths))
        nonempty = tf.reduce_any(mask, axis=1)
        return paths, tf.where(nonempty, best_score, tf.zeros_like(best_score))

    def call(self, emissions, mask=None):
        return self.viterbi_decode(emissions, mask)[0]

    def compute_output_spec(self, emissions, mask=None):
        return keras.KerasTensor(emissions.shape[:-1], dtype="int32")

    def compute_output_shape(self, emissions_shape):
        return tuple(emissions_shape[:-1])

    def get_config(self):
        config = super().get_config()

        def as_list(array):
            return None if array is None else array.tolist()

        config.update(
            {
                "num_tags": self.num_tags,
                "use_boundary_transitions": self.use_boundary_transitions,
                "allowed_transitions": as_list(self.allowed_transitions),
                "allowed_start": as_list(self.allowed_start),
                "allowed_end": as_list(self.allowed_end),
                "transitions_initializer": keras.initializers.serialize(
                    self.transitions_initializer
                ),
                "boundary_initializer": keras.initializers.serialize(self.boundary_initializer),
            }
        )
        return config


class OwnLossCompile:
    """Mixin for models that train on a loss of their own and predict tag ids.

    ``compile()`` takes no loss (the model's ``compute_loss`` supplies it) and turns the
    string metric "accuracy" into token accuracy: Keras resolves "accuracy" from the
    prediction's shape, which for tag ids ``(batch, time)`` means CategoricalAccuracy, an
    argmax over the time axis. Subclasses name their loss in ``OWN_LOSS``.

    Example:
        >>> class Tagger(OwnLossCompile, keras.Model):
        ...     OWN_LOSS = "the CRF's negative log-likelihood"
    """

    OWN_LOSS = "its own loss"

    def compile(self, optimizer="rmsprop", loss=None, metrics=None, **kwargs):
        if loss is not None:
            raise ValueError(
                f"{type(self).__name__} trains on {self.OWN_LOSS}; compile() takes no loss. "
                f"Received: loss={loss!r}"
            )
        if isinstance(metrics, (list, tuple)):
            metrics = [
                keras.metrics.Accuracy(name=metric)
                if isinstance(metric, str) and metric.lower() in ("accuracy", "acc")
                else metric
                for metric in metrics
            ]
        super().compile(optimizer=optimizer, metrics=metrics, **kwargs)

    def compile_from_config(self, config):
        # Keras skips compiling a reloaded model whose class overrides compile(); this
        # compile only rewrites arguments, so the saved configuration applies as is.
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)


@keras.saving.register_keras_serializable(package="nlpkit")
class CRFModel(OwnLossCompile, keras.Model):
    """Trains an emission model and a `CRF` together with plain ``compile`` + ``fit``.

    ``model(x)`` returns the emitter's scores (with their Keras mask); the loss is the CRF's
    mean negative log-likelihood of ``y`` (int tag ids ``(batch, time)``, any value at
    padding), computed in `compute_loss` from those scores, so ``compile`` takes no loss.
    Metrics given to ``compile`` and ``predict`` see the Viterbi paths (int32, 0 at
    padding; metrics ignore padding through the mask; ``"accuracy"`` means token accuracy).
    `decode` does the same as a tensor function, for export endpoints.

    Args:
        emitter: a Keras model or layer mapping the inputs to emissions
            ``(batch, time, crf.num_tags)``; its output's Keras mask marks the padding
            (e.g. from ``Embedding(mask_zero=True)``). Without one, nothing is padding.
        crf: the `CRF` layer.

    Example:
        >>> emitter = keras.Sequential([
        ...     keras.layers.Embedding(100, 16, mask_zero=True),
        ...     keras.layers.Dense(3),
        ... ])
        >>> model = CRFModel(emitter, CRF.from_tags(["O", "B-PER", "I-PER"], "BIO"))
        >>> model.compile(optimizer=keras.optimizers.Adam(0.05))
        >>> model.fit(token_ids, tag_ids, epochs=10, verbose=0)  # ids: int (n, time)
        >>> paths = model.predict(token_ids)                     # Viterbi tags
    """

    OWN_LOSS = "the CRF's negative log-likelihood"

    def __init__(self, emitter, crf, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(crf, CRF):
            raise ValueError(f"`crf` must be an nlpkit CRF layer. Received: crf={crf!r}")
        self.emitter = emitter
        self.crf = crf
        # The CRF is not called in `call`; its weights must exist before fit builds the
        # optimizer (and before weights are loaded into a reloaded model).
        if not crf.built:
            crf.build((None, None, crf.num_tags))

    def call(self, inputs, training=False):
        return self.emitter(inputs, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = self.crf.negative_log_likelihood(
            y_pred, y, mask=get_keras_mask(y_pred), sample_weight=sample_weight
        )
        for extra in self.losses:
            loss = loss + ops.cast(extra, loss.dtype)
        # Under tf.distribute each replica's gradients are summed: Keras' own losses divide
        # by the number of replicas, so a custom loss must too (a no-op on one device).
        return scale_loss_for_distribution(loss)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        if getattr(self, "_compile_metrics", None) is not None:
            y_pred = self._paths(y_pred)
        return super().compute_metrics(x, y, y_pred, sample_weight)

    def _paths(self, emissions):
        mask = get_keras_mask(emissions)
        paths = self.crf(emissions, mask=mask)
        if mask is not None:
            # Metrics weight their values by the prediction's mask: padding never counts.
            set_keras_mask(paths, mask)
        return paths

    def decode(self, inputs):
        """Viterbi tag ids ``(batch, time)`` for the inputs, 0 at padding."""
        return self._paths(self(inputs, training=False))

    def predict_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self.decode(x)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "emitter": keras.saving.serialize_keras_object(self.emitter),
                "crf": keras.saving.serialize_keras_object(self.crf),
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        emitter = keras.saving.deserialize_keras_object(config.pop("emitter"))
        crf = keras.saving.deserialize_keras_object(config.pop("crf"))
        return cls(emitter, crf, **config)
