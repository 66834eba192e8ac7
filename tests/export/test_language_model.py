"""A language model as a TaskModel: what write_bundle receives from it."""

import numpy as np
import pytest

from nlpkit.data import build_lm_tokenizer
from nlpkit.models import LanguageModel, StreamingStack
from nlpkit.text import WordTokenizer


def test_model_streams_its_layers_and_a_stateful_model_exports_its_stateless_copy():
    model = LanguageModel(30, embedding_dim=4, units=6, num_layers=2, cell="gru")
    model(np.zeros((2, 3), "int32"))
    assert model.task == "language_model" and model.export_model() is model
    stack = model.streaming_stack()
    assert isinstance(stack, StreamingStack) and stack.state_names == ("state_0_h", "state_1_h")
    (name, (function, signature)), = model.tflite_endpoints().items()
    assert name == "step" and [spec.name for spec in signature] == ["token_id", "state_0_h", "state_1_h"]
    outputs = function(np.array([3], np.int32), np.zeros((1, 6), "float32"), np.zeros((1, 4), "float32"))
    logits, _ = model.step(np.array([3], np.int32), model.initial_states(1))
    np.testing.assert_allclose(outputs["logits"], logits, atol=1e-6)
    twin = build_lm_tokenizer("a b c\n", "word")
    (name, (serve, serve_signature)), = model.serving_endpoints(WordTokenizer.from_python(twin), None).items()
    assert name == "serving_default" and [spec.name for spec in serve_signature] == ["prompt", "max_tokens"]
    section = model.manifest_section(twin)["generation"]
    assert section["state_names"] == ["state_0_h", "state_1_h"] and section["level"] == "word"

    stateful = LanguageModel(30, embedding_dim=4, units=6, num_layers=1, stateful=True)
    stateful(np.zeros((2, 3), "int32"))
    with pytest.raises(ValueError, match="to_stateless"):
        stateful.tflite_endpoints()
    copy = stateful.export_model()
    assert not copy.stateful and [w.shape for w in copy.weights] == [w.shape for w in stateful.weights]
