"""LanguageModelExport: what write_bundle receives for a language model."""

import numpy as np
import pytest

from nlpkit.export import LanguageModelExport, StreamingStack
from nlpkit.models import LanguageModel


def test_export_streams_the_model_layers_and_refuses_a_stateful_model():
    model = LanguageModel(30, embedding_dim=4, units=6, num_layers=2, cell="gru")
    model(np.zeros((2, 3), "int32"))
    export = LanguageModelExport(model)
    assert isinstance(export.stack, StreamingStack)
    assert export.stack.state_names == ("state_0_h", "state_1_h")
    (name, (function, signature)), = export.tflite_endpoints().items()
    assert name == "step" and [spec.name for spec in signature] == ["token_id", "state_0_h", "state_1_h"]
    outputs = function(np.array([3], np.int32), np.zeros((1, 6), "float32"), np.zeros((1, 4), "float32"))
    logits, _ = model.step(np.array([3], np.int32), model.initial_states(1))
    np.testing.assert_allclose(outputs["logits"], logits, atol=1e-6)
    serve, serve_signature = export.serving_endpoint(_tokenizer())
    assert [spec.name for spec in serve_signature] == ["prompt", "max_tokens"]

    stateful = LanguageModel(30, embedding_dim=4, units=6, num_layers=1, stateful=True)
    stateful(np.zeros((2, 3), "int32"))
    with pytest.raises(ValueError, match="to_stateless"):
        LanguageModelExport(stateful)


def _tokenizer():
    from nlpkit.data import build_lm_tokenizer
    from nlpkit.text import WordTokenizer

    return WordTokenizer.from_python(build_lm_tokenizer("a b c\n", "word"))
