"""Entity-level (span) precision, recall and F1, as conlleval and seqeval's default mode count them.

Unlike the other metric modules this one imports Keras, for the ``SpanF1``
metric class; ``span_f1`` and ``format_span_report`` themselves run no
TensorFlow code.

An entity counts as correct when its type, first and last token all match a
gold entity. Where entities are comes from one rule,
``nlpkit.text.tag_schemes.chunk_boundary`` (conlleval's), used both by
``span_f1`` (through ``extract_spans``) and by ``SpanF1`` (through tables built
from it), so the two count the same entities, also in malformed sequences
(``I-`` starts, type switches inside a chunk, stray ``E-``/``S-``). As in
seqeval, a ratio with a zero denominator is 0.0, and the overall scores are
micro averages (totals over all types).

Deliberate differences from ``seqeval`` (tested against it in
``tests/metrics/test_entity_spans.py``):

* Tags are checked against the scheme and a bad one raises, naming it;
  seqeval warns and reads ``"PER"``, ``"B-"`` or ``E-X`` in BIO data anyway.
* Only seqeval's default, conlleval-compatible mode is reproduced, for IOB1,
  BIO and BIOES alike (seqeval's strict mode has no IOB1). Its strict mode,
  which drops malformed chunks instead of reading them, is not offered; on
  well-formed BIOES the two modes agree.
* ``per_type`` also carries ``predicted`` and ``correct`` counts, and the
  report has conlleval's token accuracy.
"""

import keras
import numpy as np
from keras import ops

from nlpkit.text.tag_schemes import (
    TagSchemeError,
    chunk_boundary,
    extract_spans,
    normalize_scheme,
    parse_tag,
)

__all__ = ["span_f1", "format_span_report", "SpanF1"]

_REPORT_KEYS = (
    "precision",
    "recall",
    "f1",
    "num_true",
    "num_predicted",
    "num_correct",
    "accuracy",
    "num_tokens",
    "per_type",
)


def _scores(correct, predicted, true):
    """Precision, recall, F1 with seqeval's arithmetic (same operations, so the same floats)."""
    precision = correct / predicted if predicted else 0.0
    recall = correct / true if true else 0.0
    denominator = precision + recall
    f1 = 2 * precision * recall / denominator if denominator else 0.0
    return float(precision), float(recall), float(f1)


def _report_from_counts(counts, num_tokens, correct_tokens):
    """Build the ``span_f1`` dict from ``{type: (correct, predicted, true)}`` and token counts.

    Types with neither gold nor predicted entities are left out, like seqeval
    does, so the report does not depend on how large a tag vocabulary was.
    """
    per_type = {}
    for type_ in sorted(counts):
        correct, predicted, true = (int(value) for value in counts[type_])
        if not (predicted or true):
            continue
        precision, recall, f1 = _scores(correct, predicted, true)
        per_type[type_] = {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": true,
            "predicted": predicted,
            "correct": correct,
        }
    num_correct = sum(entry["correct"] for entry in per_type.values())
    num_predicted = sum(entry["predicted"] for entry in per_type.values())
    num_true = sum(entry["support"] for entry in per_type.values())
    precision, recall, f1 = _scores(num_correct, num_predicted, num_true)
    num_tokens = int(num_tokens)
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "num_true": num_true,
        "num_predicted": num_predicted,
        "num_correct": num_correct,
        "accuracy": float(correct_tokens / num_tokens) if num_tokens else 0.0,
        "num_tokens": num_tokens,
        "per_type": per_type,
    }


def _sentence_spans(tags, scheme, which, index):
    try:
        return extract_spans(tags, scheme)
    except TagSchemeError as error:
        raise TagSchemeError(f"{which} sentence {index}: {error}") from None


def span_f1(true_sentences, predicted_sentences, scheme="BIO"):
    """Entity-level precision, recall and F1, overall (micro) and per entity type.

    The numbers equal ``seqeval``'s default mode (``mode=None``) and the
    conlleval script, malformed sequences included; every sentence is scored
    on its own, so no entity runs across a sentence boundary.

    Args:
        true_sentences: sequence of sequences of str. Gold tags, one list per sentence.
        predicted_sentences: sequence of sequences of str. Predicted tags, the
            same number of sentences, each as long as its gold sentence.
        scheme: str, default ``"BIO"``. ``IOB1``, ``BIO``/``IOB2`` or
            ``BIOES``/``IOBES``: which tags are accepted. Chunks are read by
            the same conlleval rule in every scheme.

    Returns:
        dict of plain Python values (``json.dumps`` works on it):
        ``precision``, ``recall``, ``f1`` (floats, over all types);
        ``num_true``, ``num_predicted``, ``num_correct`` (entity counts);
        ``accuracy`` (token-level: tags equal, as conlleval reports it) and
        ``num_tokens``; ``per_type``: ``{type: {"precision", "recall", "f1",
        "support", "predicted", "correct"}}`` for each type found in the gold
        or the predicted tags, sorted by name, ``support`` being the number
        of gold entities.

    Raises:
        TagSchemeError: a tag is outside the scheme; the message names the
            tag, its sentence and position.
        ValueError: the sentence counts or the lengths of a sentence pair differ.

    Example:
        >>> report = span_f1([["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "I-PER", "O", "B-ORG"]])
        >>> report["f1"], report["per_type"]["PER"]["support"]
        (0.5, 1)
    """
    scheme = normalize_scheme(scheme)
    arguments = {"true_sentences": true_sentences, "predicted_sentences": predicted_sentences}
    for name, value in arguments.items():
        if isinstance(value, str) or (len(value) and isinstance(value[0], str)):
            raise TypeError(
                f"{name} must be a sequence of sentences (each a sequence of tags), "
                f"got {value!r:.80}; wrap a single sentence in a list"
            )
    if len(true_sentences) != len(predicted_sentences):
        raise ValueError(
            f"true_sentences and predicted_sentences must hold the same number of sentences, "
            f"got {len(true_sentences)} and {len(predicted_sentences)}"
        )
    counts = {}
    num_tokens = 0
    correct_tokens = 0
    for index, (true_tags, predicted_tags) in enumerate(zip(true_sentences, predicted_sentences)):
        true_tags = list(true_tags)
        predicted_tags = list(predicted_tags)
        if len(true_tags) != len(predicted_tags):
            raise ValueError(
                f"sentence {index} has {len(true_tags)} gold tags but "
                f"{len(predicted_tags)} predicted tags"
            )
        true_spans = _sentence_spans(true_tags, scheme, "gold", index)
        predicted_spans = _sentence_spans(predicted_tags, scheme, "predicted", index)
        # Spans are distinct within a sentence, so set intersection counts each match once.
        matched = set(true_spans).intersection(predicted_spans)
        for spans, slot in ((matched, 0), (predicted_spans, 1), (true_spans, 2)):
            for type_, _, _ in spans:
                entry = counts.setdefault(type_, [0, 0, 0])
                entry[slot] += 1
        num_tokens += len(true_tags)
        correct_tokens += sum(t == p for t, p in zip(true_tags, predicted_tags))
    return _report_from_counts(counts, num_tokens, correct_tokens)


def format_span_report(report):
    """Render a ``span_f1`` (or ``SpanF1.report``) dict as a fixed-width table.

    Args:
        report: dict. The output of ``span_f1`` or ``SpanF1.report()``, also
            after a JSON round trip.

    Returns:
        str. A conlleval-style summary line, then precision, recall, F1,
        support (gold entities) and predicted counts per type and overall.
        Percent values as conlleval prints them. No trailing newline.

    Raises:
        ValueError: ``report`` lacks a key ``span_f1`` writes.

    Example:
        >>> report = span_f1([["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "I-PER", "O", "B-ORG"]])
        >>> print(format_span_report(report))
        processed 4 tokens with 2 entities; found: 2 entities; correct: 1.
        accuracy:  75.00%
        type     precision  recall     f1  support  predicted
        LOC           0.00    0.00   0.00        1          0
        ORG           0.00    0.00   0.00        0          1
        PER         100.00  100.00 100.00        1          1
        overall      50.00   50.00  50.00        2          2
    """
    missing = [key for key in _REPORT_KEYS if key not in report]
    if missing:
        raise ValueError(f"report is missing keys {missing}; pass the dict from span_f1")
    rows = [
        (name, *(entry[key] for key in ("precision", "recall", "f1", "support", "predicted")))
        for name, entry in report["per_type"].items()
    ]
    rows.append(
        (
            "overall",
            report["precision"],
            report["recall"],
            report["f1"],
            report["num_true"],
            report["num_predicted"],
        )
    )
    width = max(len("type"), *(len(str(row[0])) for row in rows))
    lines = [
        f"processed {report['num_tokens']} tokens with {report['num_true']} entities; "
        f"found: {report['num_predicted']} entities; correct: {report['num_correct']}.",
        f"accuracy: {100 * report['accuracy']:6.2f}%",
        f"{'type':<{width}}  {'precision':>9}  {'recall':>6} {'f1':>6}  "
        f"{'support':>7}  {'predicted':>9}",
    ]
    for name, precision, recall, f1, support, predicted in rows:
        lines.append(
            f"{name:<{width}}  {100 * precision:>9.2f}  {100 * recall:>6.2f} {100 * f1:>6.2f}  "
            f"{support:>7d}  {predicted:>9d}"
        )
    return "\n".join(lines)


@keras.saving.register_keras_serializable(package="nlpkit")
class SpanF1(keras.metrics.Metric):
    """Entity-level F1 of a tagger, exact over an epoch, as a Keras metric.

    ``result()`` is the micro-averaged F1 over all entity types; ``report()``
    gives the full ``span_f1`` dict (per type, precision, recall, counts) for
    everything seen since the last reset. The metric keeps per-type counts of
    correct, predicted and gold entities (and of tokens) in variables, so the
    epoch value is the F1 of the epoch's totals, never an average of batch F1s,
    and it equals ``span_f1`` on the same sentences.

    Counting runs in the graph (no ``py_function``), so it works under
    ``jit_compile`` and in any ``tf.function``; see ``update_state``.
    Counts are float32 variables, exact up to 2**24 entities (or tokens) per
    counter between resets.

    Args:
        tags: sequence of str. The tag vocabulary: ``tags[i]`` is the tag of id
            ``i``. Every tag must belong to ``scheme``, except the one at
            ``padding_id``, which may be any string (e.g. ``"<pad>"``).
        scheme: str, default ``"BIO"``. ``IOB1``, ``BIO``/``IOB2`` or ``BIOES``/``IOBES``.
        padding_id: int or None, default None. Positions where ``y_true``
            equals this id are padding: they are skipped and act as sentence
            boundaries. A prediction of this id at a real token counts as ``O``.
        name: str, default ``"span_f1"``.
        dtype: dtype of ``result()``, default None (float32).

    ``update_state(y_true, y_pred, sample_weight=None)`` takes ``y_true`` as
    tag ids ``(batch, time)`` (or ``(batch, time, 1)``), and ``y_pred`` as tag
    ids of the same shape or as scores ``(batch, time, len(tags))`` (argmax is
    taken). ``sample_weight`` (from ``weighted_metrics``), of shape
    ``(batch,)`` or ``(batch, time)``, is read as a mask: a zero skips the
    token like padding does. Masked tokens split chunks, so with right padding
    each row is scored as the sentence formed by its unmasked prefix.

    Example:
        >>> tags = ["<pad>", "O", "B-PER", "I-PER"]
        >>> metric = SpanF1(tags, padding_id=0)
        >>> metric.update_state([[2, 3, 1, 0]], [[2, 3, 2, 1]])
        >>> round(float(metric.result()), 4)
        0.6667
    """

    def __init__(self, tags, scheme="BIO", padding_id=None, name="span_f1", dtype=None):
        super().__init__(name=name, dtype=dtype)
        if isinstance(tags, str) or not all(isinstance(tag, str) for tag in tags):
            raise TypeError(f"tags must be a sequence of str, got {tags!r:.200}")
        tags = list(tags)
        if len(tags) < 2:
            raise ValueError(f"tags must hold at least 'O' and one entity tag, got {tags!r}")
        duplicates = sorted({tag for tag in tags if tags.count(tag) > 1})
        if duplicates:
            raise ValueError(f"tags must be unique, got duplicates {duplicates}")
        self.scheme = normalize_scheme(scheme)
        if padding_id is not None and (
            isinstance(padding_id, bool)
            or not isinstance(padding_id, (int, np.integer))
            or not 0 <= padding_id < len(tags)
        ):
            raise ValueError(
                f"padding_id must be None or an int in [0, {len(tags)}), got {padding_id!r}"
            )
        self.tags = tags
        self.padding_id = None if padding_id is None else int(padding_id)

        # Id len(tags) is a virtual "O" placed before and after every row and
        # over masked tokens; the padding id reads as "O" too.
        effective = [
            "O" if index == self.padding_id else tag for index, tag in enumerate(tags)
        ] + ["O"]
        for index, tag in enumerate(effective[:-1]):
            try:
                parse_tag(tag, self.scheme)
            except TagSchemeError as error:
                raise TagSchemeError(f"tags[{index}]: {error}") from None
        self.entity_types = sorted({parse_tag(tag)[1] for tag in effective if tag != "O"})
        if not self.entity_types:
            raise ValueError(f"tags name no entity type (only 'O' and padding), got {tags!r}")
        self._boundary_id = len(tags)
        # Every pair of adjacent ids, tabulated once from the shared chunk rule:
        # the graph then decides chunk starts and ends with two gathers.
        size = len(effective)
        ends = np.zeros((size, size), dtype=np.int32)
        starts = np.zeros((size, size), dtype=np.int32)
        for previous in range(size):
            for current in range(size):
                ends[previous, current], starts[previous, current] = chunk_boundary(
                    effective[previous], effective[current]
                )
        self._end_table = ends.reshape(-1)
        self._start_table = starts.reshape(-1)
        type_index = {type_: i for i, type_ in enumerate(self.entity_types)}
        # "O" maps to one past the last type; one_hot columns [:num_types] drop it.
        self._type_table = np.array(
            [
                len(self.entity_types) if tag == "O" else type_index[parse_tag(tag)[1]]
                for tag in effective
            ],
            dtype=np.int32,
        )
        # Token accuracy compares tags, not ids, so a predicted padding id is right
        # wherever the gold tag is "O" (ids that read as "O" share one id here).
        outside_id = tags.index("O") if "O" in tags else self._boundary_id
        self._tag_table = np.array(
            [outside_id if tag == "O" else index for index, tag in enumerate(effective)],
            dtype=np.int32,
        )

        num_types = len(self.entity_types)
        self.true_positives = self.add_variable(
            shape=(num_types,), initializer="zeros", dtype="float32", name="true_positives"
        )
        self.predicted_entities = self.add_variable(
            shape=(num_types,), initializer="zeros", dtype="float32", name="predicted_entities"
        )
        self.true_entities = self.add_variable(
            shape=(num_types,), initializer="zeros", dtype="float32", name="true_entities"
        )
        self.num_tokens = self.add_variable(
            shape=(), initializer="zeros", dtype="float32", name="num_tokens"
        )
        self.correct_tokens = self.add_variable(
            shape=(), initializer="zeros", dtype="float32", name="correct_tokens"
        )

    def _chunk_flags(self, ids):
        """Per token: does a chunk start here, does one end here, which type (num_types for O)."""
        width = self._boundary_id + 1
        edge = ops.full_like(ids[:, :1], self._boundary_id)
        previous = ops.concatenate([edge, ids[:, :-1]], axis=1)
        following = ops.concatenate([ids[:, 1:], edge], axis=1)
        starts = ops.take(ops.convert_to_tensor(self._start_table), previous * width + ids)
        ends = ops.take(ops.convert_to_tensor(self._end_table), ids * width + following)
        types = ops.take(ops.convert_to_tensor(self._type_table), ids)
        return starts, ends, types

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add one batch's entity and token counts; see the class docstring for shapes."""
        # How matching is counted without a Python loop or py_function (which
        # would rule out XLA and leave the graph for every batch): chunk starts
        # and ends are per-token flags read from the tabulated pair rule. A
        # predicted chunk equals a gold chunk exactly when, at every one of its
        # tokens, both sequences agree on "starts here", "ends here" and type.
        # Predicted chunks never cross rows (each row is fenced by the virtual
        # "O"), so a cumulative sum of predicted starts over the flattened batch
        # numbers the chunks, and one segment sum counts disagreements per chunk.
        y_true = ops.convert_to_tensor(y_true)
        y_pred = ops.convert_to_tensor(y_pred)
        if len(y_true.shape) == 3 and y_true.shape[-1] == 1:
            y_true = ops.squeeze(y_true, axis=-1)
        if len(y_true.shape) != 2:
            raise ValueError(
                f"y_true must be tag ids of shape (batch, time), got shape {tuple(y_true.shape)}"
            )
        if len(y_pred.shape) == 3 and y_pred.shape[-1] == 1:
            y_pred = ops.squeeze(y_pred, axis=-1)
        elif len(y_pred.shape) == 3:
            if y_pred.shape[-1] is not None and y_pred.shape[-1] != len(self.tags):
                raise ValueError(
                    f"y_pred scores must have {len(self.tags)} tag columns (one per tag), "
                    f"got shape {tuple(y_pred.shape)}"
                )
            y_pred = ops.argmax(y_pred, axis=-1)
        if len(y_pred.shape) != 2:
            raise ValueError(
                "y_pred must be tag ids (batch, time) or scores (batch, time, num_tags), "
                f"got shape {tuple(y_pred.shape)}"
            )
        y_true = ops.cast(y_true, "int32")
        y_pred = ops.cast(y_pred, "int32")

        keep = ops.ones_like(y_true, dtype="bool")
        if self.padding_id is not None:
            keep = ops.not_equal(y_true, self.padding_id)
        if sample_weight is not None:
            sample_weight = ops.convert_to_tensor(sample_weight)
            if len(sample_weight.shape) == 3 and sample_weight.shape[-1] == 1:
                sample_weight = ops.squeeze(sample_weight, axis=-1)
            if len(sample_weight.shape) == 1:
                sample_weight = ops.expand_dims(sample_weight, axis=-1)
            keep = ops.logical_and(keep, ops.not_equal(sample_weight, 0))
        true_ids = ops.where(keep, y_true, self._boundary_id)
        pred_ids = ops.where(keep, y_pred, self._boundary_id)

        true_starts, true_ends, true_types = self._chunk_flags(true_ids)
        pred_starts, pred_ends, pred_types = self._chunk_flags(pred_ids)
        num_types = len(self.entity_types)

        def per_type(starts, types):
            one_hot = ops.one_hot(ops.reshape(types, (-1,)), num_types + 1, dtype="float32")
            weights = ops.cast(ops.reshape(starts, (-1, 1)), "float32")
            return ops.sum(one_hot[:, :num_types] * weights, axis=0)

        disagree = ops.logical_or(
            ops.logical_or(
                ops.not_equal(true_starts, pred_starts), ops.not_equal(true_ends, pred_ends)
            ),
            ops.not_equal(true_types, pred_types),
        )
        inside_predicted = ops.not_equal(pred_types, num_types)
        bad = ops.cast(ops.logical_and(disagree, inside_predicted), "int32")
        flat_bad = ops.reshape(bad, (-1,))
        flat_starts = ops.reshape(pred_starts, (-1,))
        chunk_number = ops.cumsum(flat_starts)
        # Chunk numbers run from 1 to at most batch * time; 0 collects the "O"s before the first.
        num_segments = ops.shape(flat_starts)[0] + 1
        bad_per_chunk = ops.segment_sum(flat_bad, chunk_number, num_segments=num_segments)
        chunk_is_clean = ops.equal(ops.take(bad_per_chunk, chunk_number), 0)
        matched = flat_starts * ops.cast(chunk_is_clean, "int32")

        self.true_positives.assign_add(per_type(matched, pred_types))
        self.predicted_entities.assign_add(per_type(pred_starts, pred_types))
        self.true_entities.assign_add(per_type(true_starts, true_types))
        self.num_tokens.assign_add(ops.sum(ops.cast(keep, "float32")))
        tag_table = ops.convert_to_tensor(self._tag_table)
        same_tag = ops.logical_and(
            keep, ops.equal(ops.take(tag_table, true_ids), ops.take(tag_table, pred_ids))
        )
        self.correct_tokens.assign_add(ops.sum(ops.cast(same_tag, "float32")))

    def result(self):
        correct = ops.sum(self.true_positives)
        precision = ops.divide_no_nan(correct, ops.sum(self.predicted_entities))
        recall = ops.divide_no_nan(correct, ops.sum(self.true_entities))
        f1 = ops.divide_no_nan(2 * precision * recall, precision + recall)
        return ops.cast(f1, self.dtype)

    def report(self):
        """The ``span_f1`` dict for everything counted since the last reset (eager only)."""
        counts = {
            type_: (correct, predicted, true)
            for type_, correct, predicted, true in zip(
                self.entity_types,
                np.asarray(ops.convert_to_numpy(self.true_positives)).round().astype(np.int64),
                np.asarray(ops.convert_to_numpy(self.predicted_entities)).round().astype(np.int64),
                np.asarray(ops.convert_to_numpy(self.true_entities)).round().astype(np.int64),
            )
        }
        num_tokens = int(round(float(ops.convert_to_numpy(self.num_tokens))))
        correct_tokens = int(round(float(ops.convert_to_numpy(self.correct_tokens))))
        return _report_from_counts(counts, num_tokens, correct_tokens)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"tags": list(self.tags), "scheme": self.scheme, "padding_id": self.padding_id}
        )
        return config
