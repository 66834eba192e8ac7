"""Language-model generation from a bundle's TFLite ``step`` model; numpy and LiteRT, no TensorFlow."""

from pathlib import Path

import numpy as np

from nlpkit.decoding.search import log_softmax
from nlpkit.decoding.language_model import generate_text
from nlpkit.lite.runtime import load_signature_runner
from nlpkit.manifest import bundle_assets, bundle_file, read_manifest
from nlpkit.text.python_tokenizers import load_tokenizer

_MODEL_KEYS = {"float32": "tflite", "int8": "tflite_int8"}


class TFLiteStepFunction:
    """A streaming TFLite ``step`` signature (batch 1) as an `nlpkit.decoding` step function.

    The signature is the one `nlpkit.export.StreamingStack` writes: one token id in, one
    output (the logits) and the states out, every state being both an input and an output.
    The step function takes any number of rows and invokes the signature once per row;
    its states are the signature's, in sorted name order (`state_names`).

    Args:
        model: path of a ``.tflite`` file, or its contents as bytes.
        signature: str, default "step".
        num_threads: int, default 1.

    Example:
        >>> step = TFLiteStepFunction("saved_models/lm/model.tflite")
        >>> log_probs, states = step(np.array([2], np.int32), step.initial_states(1))
    """

    def __init__(self, model, signature="step", num_threads=1):
        self._runner = load_signature_runner(model, signature, num_threads=num_threads)
        inputs = self._runner.get_input_details()
        outputs = self._runner.get_output_details()
        self.state_names = tuple(sorted(name for name in inputs if name in outputs))
        step_inputs = [name for name in inputs if name not in outputs]
        step_outputs = [name for name in outputs if name not in inputs]
        if not self.state_names or len(step_inputs) != 1 or len(step_outputs) != 1:
            raise ValueError(
                f"Signature {signature!r} is not a one-input, one-output streaming step: its "
                f"inputs are {sorted(inputs)} and its outputs {sorted(outputs)}."
            )
        (self.input_name,) = step_inputs
        (self.output_name,) = step_outputs
        self._input_dtype = inputs[self.input_name]["dtype"]
        self._state_details = {name: inputs[name] for name in self.state_names}

    def initial_states(self, batch_size):
        """Zero states, one ``(batch_size, size)`` array per name of `state_names`."""
        return [
            np.zeros((batch_size,) + tuple(int(d) for d in detail["shape"][1:]), detail["dtype"])
            for detail in self._state_details.values()
        ]

    def logits(self, token_ids, states):
        """``(logits, new_states)``: one invocation per row."""
        token_ids = np.asarray(token_ids).reshape(-1)
        rows_logits, rows_states = [], []
        for row, token in enumerate(token_ids):
            feed = {name: np.ascontiguousarray(state[row : row + 1]) for name, state in zip(self.state_names, states)}
            results = self._runner(**{self.input_name: np.array([token], self._input_dtype)}, **feed)
            rows_logits.append(np.array(results[self.output_name][0]))
            rows_states.append([np.array(results[name][0]) for name in self.state_names])
        new_states = [np.stack([row_states[k] for row_states in rows_states]) for k in range(len(self.state_names))]
        return np.stack(rows_logits), new_states

    def __call__(self, token_ids, states):
        logits, new_states = self.logits(token_ids, states)
        return log_softmax(logits), new_states


class LanguageModelGenerator:
    """Generates text with a language-model bundle's TFLite step model; imports no TensorFlow.

    Prompts are tokenized by the bundle's pure-Python tokenizer and read after the start
    token; the search is `nlpkit.decoding`'s, the same code that runs the Keras model, so
    greedy output equals the Keras model's token for token (tested on 10 prompts x 200
    tokens).

    Args:
        bundle_dir: a bundle written by `nlpkit.export.write_language_model_bundle`.
        precision: "float32" (default, ``model.tflite``) or "int8" (``model.int8.tflite``).
        num_threads: int, default 1.

    Example:
        >>> generator = LanguageModelGenerator("saved_models/lm")
        >>> generator.generate("the river", max_new_tokens=40)
        >>> generator.generate(["the river"], 40, method="sample", temperature=0.8, seed=3)
    """

    task = "language_model"

    def __init__(self, bundle_dir, precision="float32", num_threads=1):
        if precision not in _MODEL_KEYS:
            raise ValueError(f"`precision` must be one of {sorted(_MODEL_KEYS)}. Received: {precision!r}")
        self._read_bundle(bundle_dir)
        model_path = bundle_file(self.bundle_dir, self.manifest, _MODEL_KEYS[precision])
        self.step = TFLiteStepFunction(model_path, num_threads=num_threads)

    def _read_bundle(self, bundle_dir):
        """Manifest and tokenizer: all but the step function."""
        self.bundle_dir = Path(bundle_dir)
        self.manifest = read_manifest(self.bundle_dir, task=self.task)
        self.tokenizer = load_tokenizer(bundle_assets(self.bundle_dir, self.manifest))

    def generate_with_ids(self, prompts, max_new_tokens, method="greedy", **options):
        """``(texts, generation)`` for a list of prompts; see `nlpkit.decoding.generate_text`."""
        return generate_text(self.step, self.tokenizer, prompts, max_new_tokens, method, **options)

    def generate(self, prompts, max_new_tokens=100, method="greedy", **options):
        """Continuation text of a prompt (str in, str out) or of each prompt of a list.

        Args:
            prompts: str or list of str.
            max_new_tokens: int, default 100.
            method: "greedy" (default), "sample" or "beam".
            **options: ``temperature``, ``top_k``, ``top_p``, ``seed``, ``beam_width``,
                ``length_penalty``, ``stop_ids`` (see `nlpkit.decoding`).
        """
        texts, _ = self.generate_with_ids(prompts, max_new_tokens, method, **options)
        return texts[0] if isinstance(prompts, str) else texts
