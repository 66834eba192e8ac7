"""`RecurrentLayer.execution_plan`: one plan per call, which ``call`` runs, with the reasons."""

import dataclasses
import logging

import numpy as np
import pytest
import tensorflow as tf

from nlpkit.layers import GRU, LSTM, ExecutionPlan, SimpleRNN
from nlpkit.layers.execution_plan import PATHS, choose
from nlpkit.layers.export_context import portable_trace, unrolled_trace
from nlpkit.layers.fused_lstm import lstm_export_form

SHAPE = (2, 6, 3)
INPUTS = np.random.default_rng(0).normal(size=SHAPE).astype("float32")


def test_every_path_not_taken_says_why():
    plan = GRU(4, layer_norm=True).execution_plan(SHAPE, training=True, traced=True)
    assert plan.path == "while_loop" and plan.fallback is None and not plan.compiled
    assert set(plan.reasons) == set(PATHS) - {"while_loop"} | {"xla"}
    assert plan.reasons["fast_backward"] == plan.reasons["cudnn"] == "layer_norm=True"
    assert "jit_compile=True" in plan.reasons["xla"]
    assert str(plan).startswith("while_loop; not fused_tflite: ")


def test_cudnn_is_planned_first_with_the_loop_that_runs_where_the_backend_declines():
    plan = LSTM(4).execution_plan(SHAPE, training=True)
    assert (plan.path, plan.fallback, plan.loop) == ("cudnn", "fast_backward", "fast_backward")
    if not tf.config.list_logical_devices("GPU"):
        assert "no GPU is visible" in plan.notes[0]
    masked = LSTM(4, return_sequences=True).execution_plan(SHAPE, masked=True)
    assert masked.path == "while_loop" and "zero_output_for_mask" in masked.reasons["cudnn"]
    assert SimpleRNN(4).execution_plan(SHAPE).reasons["cudnn"] == "cuDNN has no SimpleRNNCell kernel"
    dropped = GRU(4, recurrent_dropout=0.2, use_cudnn=False).execution_plan(SHAPE, training=True)
    assert dropped.path == "fast_backward" and dropped.reasons["cudnn"] == "use_cudnn=False"


def test_contexts_change_the_plan():
    layer = LSTM(4, use_cudnn=False)
    assert layer.execution_plan(SHAPE, traced=True).compiled
    assert layer.execution_plan(SHAPE, traced=False).reasons["xla"] == "eager calls never compile"
    assert not layer.execution_plan((None, 6, 3), traced=True).compiled
    with portable_trace():
        assert LSTM(4).execution_plan(SHAPE).reasons["cudnn"].startswith("exports trace")
    with unrolled_trace():
        assert layer.execution_plan(SHAPE).path == "unrolled"
        assert layer.execution_plan((2, None, 3)).reasons["unrolled"] == "the sequence length is not static"
    with lstm_export_form("fused") as export:
        assert layer.execution_plan((1, None, 3)).path == "fused_tflite"
        assert "batch size is not static" in layer.execution_plan((None, None, 3)).reasons["fused_tflite"]
    # Asking records nothing in the export; only calls do.
    assert export.fused == [] and export.kept_while == []


def _xla_calls(layer, spec, training):
    graph = tf.function(lambda x: layer(x, training=training)).get_concrete_function(spec).graph
    compiled = [
        op for op in graph.get_operations()
        if op.type in ("PartitionedCall", "StatefulPartitionedCall")
        and op.node_def.attr.get("_XlaMustCompile") is not None
        and op.node_def.attr["_XlaMustCompile"].b
    ]
    loops = [op for op in graph.get_operations() if op.type in ("While", "StatelessWhile")]
    return len(compiled), len(loops)


@pytest.mark.parametrize(
    "make, shape, training",
    [
        (lambda: GRU(4), SHAPE, False),
        (lambda: GRU(4), (None, 6, 3), False),
        (lambda: LSTM(4, layer_norm=True), SHAPE, True),
        (lambda: SimpleRNN(4), SHAPE, True),
        (lambda: SimpleRNN(4, unroll=True), SHAPE, True),
        (lambda: LSTM(4, unroll=True), (2, None, 3), False),
    ],
    ids=["gru_static", "gru_dynamic", "lstm_layer_norm_training", "rnn_training", "rnn_unroll", "unroll_dynamic"],
)
def test_call_runs_the_plan(make, shape, training, caplog):
    layer = make()
    plan = layer.execution_plan(shape, training=training, traced=True)
    with caplog.at_level(logging.DEBUG, logger="nlpkit.layers"):
        compiled, loops = _xla_calls(layer, tf.TensorSpec(shape), training)
    assert compiled == int(plan.compiled)
    assert (loops == 0) == (plan.path == "unrolled" or plan.compiled)
    # One line per trace of the call (Keras may trace it more than once).
    messages = {r.getMessage() for r in caplog.records if r.name == "nlpkit.layers"}
    assert messages == {f"{type(layer).__name__} {layer.name!r}: {plan}"}


@pytest.mark.parametrize("cls", [LSTM, GRU, SimpleRNN])
def test_unroll_gives_the_loops_outputs_and_gradients(cls):
    unrolled = cls(4, unroll=True, return_sequences=True, go_backwards=True)
    looped = cls(4, return_sequences=True, go_backwards=True, use_cudnn=False)
    mask = tf.constant(np.arange(SHAPE[1])[None] < np.array([[6], [3]]))
    results = []
    for layer in (unrolled, looped):
        layer.build(SHAPE)
        if results:
            layer.set_weights(unrolled.get_weights())
        x = tf.constant(INPUTS)
        with tf.GradientTape() as tape:
            tape.watch(x)
            outputs = layer(x, mask=mask, training=True)
            loss = tf.reduce_sum(outputs * tf.range(4, dtype=tf.float32))
        results.append([outputs] + tape.gradient(loss, [x] + layer.trainable_weights))
    for ours, reference in zip(*results):
        np.testing.assert_allclose(np.asarray(ours), np.asarray(reference), atol=1e-5, rtol=0)


def test_use_cudnn_true_names_the_reason():
    with pytest.raises(ValueError, match="'strict'.*use_cudnn=True.*layer_norm=True"):
        LSTM(4, use_cudnn=True, layer_norm=True, name="strict")(INPUTS)


def test_the_plan_is_frozen_and_validated():
    plan = choose([("cudnn", None), ("fast_backward", "fast_backward=False"), ("while_loop", None)])
    assert isinstance(plan, ExecutionPlan) and (plan.path, plan.fallback) == ("cudnn", "while_loop")
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.path = "while_loop"
    with pytest.raises(TypeError):
        plan.reasons["cudnn"] = "changed"
    with pytest.raises(ValueError, match="path='jit'"):
        ExecutionPlan("jit")
