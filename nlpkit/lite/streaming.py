"""Running a streaming TFLite ``step`` signature with the states held in numpy, no TensorFlow."""

import numpy as np

from nlpkit.lite.runtime import load_signature_runner


class StreamingRunner:
    """Feeds a TFLite ``step`` signature one time step at a time and carries its states.

    The ``step`` signatures nlpkit writes (`nlpkit.export.StreamingStack`) keep no state in
    the interpreter: each state is an input and an output of the same name. This runner
    finds those names (every name that is both an input and an output), starts them at
    zero, feeds each call's new states into the next, and can `reset` them or start from
    states saved by another runner — e.g. to continue a stream in a later session.

    Args:
        model: path of a ``.tflite`` file, or its contents as bytes.
        signature: str, default ``"step"``. The streaming signature to run.
        num_threads: int, default 1.
        states: optional dict ``name -> array`` to start from (as returned by `states`);
            default zeros.

    Example:
        >>> runner = StreamingRunner("saved_models/lm/model.tflite")
        >>> logits = runner.step(17)          # one token id in, logits of the next out
        >>> saved = runner.states            # numpy copies, safe to keep
        >>> runner.reset()                   # back to zero states
        >>> later = StreamingRunner("saved_models/lm/model.tflite", states=saved)
    """

    def __init__(self, model, signature="step", num_threads=1, states=None):
        if not isinstance(num_threads, int) or num_threads < 1:
            raise ValueError(
                f"`num_threads` must be a positive int. Received: num_threads={num_threads!r}"
            )
        self.model = model
        self.signature = signature
        self.num_threads = num_threads
        self._runner = load_signature_runner(model, signature, num_threads=num_threads)
        inputs = self._runner.get_input_details()
        outputs = self._runner.get_output_details()
        self.state_names = tuple(sorted(name for name in inputs if name in outputs))
        step_inputs = [name for name in inputs if name not in outputs]
        self.output_names = tuple(name for name in outputs if name not in inputs)
        if not self.state_names or len(step_inputs) != 1 or not self.output_names:
            raise ValueError(
                f"Signature {signature!r} is not a streaming step: it needs one step input, at "
                "least one output, and states that are both inputs and outputs. Its inputs are "
                f"{sorted(inputs)} and its outputs {sorted(outputs)}."
            )
        (self.input_name,) = step_inputs
        self._input_detail = inputs[self.input_name]
        self._state_details = {name: inputs[name] for name in self.state_names}
        self.reset(states)

    @property
    def states(self):
        """The current states, ``name -> array`` (copies: later steps do not change them)."""
        return {name: value.copy() for name, value in self._states.items()}

    def reset(self, states=None):
        """Sets the states to zero, or to ``states`` (a dict with every state name)."""
        if states is None:
            self._states = {
                name: np.zeros(detail["shape"], detail["dtype"])
                for name, detail in self._state_details.items()
            }
            return
        if not isinstance(states, dict) or set(states) != set(self.state_names):
            received = sorted(states) if isinstance(states, dict) else type(states).__name__
            raise ValueError(
                f"`states` must be a dict with exactly the keys {sorted(self.state_names)}. "
                f"Received: {received}"
            )
        fresh = {}
        for name, detail in self._state_details.items():
            value = np.asarray(states[name], dtype=detail["dtype"])
            if value.size != int(np.prod(detail["shape"])):
                raise ValueError(
                    f"State {name!r} must hold {_shape(detail)} values. "
                    f"Received shape {value.shape}"
                )
            fresh[name] = value.reshape(detail["shape"]).copy()
        self._states = fresh

    def step(self, inputs_t):
        """Runs one time step and keeps the new states.

        Args:
            inputs_t: the step's input without the batch axis: one token id (int) for a
                stack that starts with an embedding, else a ``(features,)`` vector.

        Returns:
            The output without the batch axis, e.g. ``(vocabulary_size,)`` logits; a dict
            ``name -> array`` when the signature has several non-state outputs.
        """
        detail = self._input_detail
        value = np.asarray(inputs_t, dtype=detail["dtype"])
        if value.size != int(np.prod(detail["shape"])):
            raise ValueError(
                f"Input {self.input_name!r} takes {_shape(detail)[1:] or 'one value'} "
                f"per step (batch 1). Received shape {value.shape}"
            )
        results = self._runner(**{self.input_name: value.reshape(detail["shape"])}, **self._states)
        self._states = {name: np.array(results[name]) for name in self.state_names}
        outputs = {name: np.array(results[name][0]) for name in self.output_names}
        return outputs[self.output_names[0]] if len(outputs) == 1 else outputs

    def run(self, inputs):
        """Steps through a whole sequence (time first, no batch axis) and stacks the outputs.

        The states carry on from the current ones and are kept at the end, so consecutive
        calls continue one stream.
        """
        if len(inputs) == 0:
            raise ValueError(
                "`inputs` must hold at least one time step. Received an empty sequence."
            )
        outputs = [self.step(inputs_t) for inputs_t in inputs]
        if isinstance(outputs[0], dict):
            return {name: np.stack([output[name] for output in outputs]) for name in outputs[0]}
        return np.stack(outputs)


def _shape(detail):
    # Interpreter details hold numpy ints; plain ints read better in error messages.
    return tuple(int(size) for size in detail["shape"])
