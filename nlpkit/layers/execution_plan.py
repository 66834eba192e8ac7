"""Which path a recurrent layer's call runs, and why every other path does not.

`nlpkit.layers.RecurrentLayer` (SimpleRNN, LSTM, GRU) can run a sequence several ways. It
decides once per call, in `RecurrentLayer.execution_plan`, and its ``call`` runs what the
plan says; the plan is also what a user reads to learn why a layer is slow or does not
fuse. The paths, in the order a layer prefers them:

- ``"fused_tflite"``: the LSTM traced for the TFLite converter to fuse into
  ``UNIDIRECTIONAL_SEQUENCE_LSTM`` (`nlpkit.layers.fused_lstm`; inference inside
  ``lstm_export_form`` only);
- ``"unrolled"``: the steps written out as straight-line code at a static length
  (``unroll=True``, or inside `nlpkit.layers.export_context.unrolled_trace`);
- ``"cudnn"``: the backend's cuDNN kernel. The backend decides last (it needs a GPU, and
  Keras' ``cudnn_ok`` must accept the configuration); where it declines, the plan's
  ``fallback`` runs, silently, as in Keras;
- ``"fast_backward"``: training through the hand-written backward pass
  (`nlpkit.layers.fast_backward`);
- ``"while_loop"``: nlpkit's ``tf.while_loop`` (`nlpkit.layers.recurrent.run_recurrence`),
  which always can run.

``compiled`` says whether XLA compiles the loop that runs (``fast_backward`` or
``while_loop``, also as the fallback of ``cudnn``); the ``"xla"`` entry of ``reasons`` says
why not.
"""

import dataclasses
import types

PATHS = ("fused_tflite", "unrolled", "cudnn", "fast_backward", "while_loop")
# The paths that run a loop of nlpkit's own, which XLA may compile.
LOOP_PATHS = ("fast_backward", "while_loop")


@dataclasses.dataclass(frozen=True)
class ExecutionPlan:
    """The path one call of a recurrent layer takes (`RecurrentLayer.execution_plan`).

    Args:
        path: str, one of `PATHS`: what the call runs.
        compiled: bool, default False. XLA compiles the loop that runs (``path``, or
            ``fallback`` when the backend declines cuDNN).
        fallback: str or None, default None. With ``path="cudnn"``, the path that runs
            where the backend declines the kernel (no GPU, or Keras' ``cudnn_ok``).
        reasons: mapping, default empty. Why each path not taken was not (path -> str), and
            under ``"xla"`` why the loop is not compiled.
        notes: tuple of str, default (). Facts that bear on the plan but do not change it
            (e.g. that no GPU is visible for a cuDNN plan).

    Example:
        >>> plan = nlpkit.layers.LSTM(8).execution_plan((32, 20, 16), training=True)
        >>> plan.path, plan.fallback, plan.reasons["while_loop"]
        ('cudnn', 'fast_backward', 'cudnn comes first')
    """

    path: str
    compiled: bool = False
    fallback: object = None
    reasons: types.MappingProxyType = dataclasses.field(default_factory=dict)
    notes: tuple = ()

    def __post_init__(self):
        if self.path not in PATHS:
            raise ValueError(f"`path` must be one of {PATHS}. Received: path={self.path!r}")
        if self.fallback is not None and self.fallback not in LOOP_PATHS:
            raise ValueError(
                f"`fallback` must be None or one of {LOOP_PATHS}. Received: fallback={self.fallback!r}"
            )
        # Frozen all through: the reasons cannot be edited after the choice either.
        object.__setattr__(self, "reasons", types.MappingProxyType(dict(self.reasons)))

    @property
    def loop(self):
        """The path of nlpkit's own that runs: ``path`` or, for cuDNN, ``fallback``."""
        return self.fallback if self.path == "cudnn" else self.path

    def __str__(self):
        """One line: the path, its fallback, then why not each other path."""
        path = self.path
        if self.path == "cudnn":
            path = f"cudnn, else {self.fallback}"
        if self.compiled:
            path += " (XLA)"
        why_not = "; ".join(f"not {name}: {reason}" for name, reason in self.reasons.items())
        return "; ".join([path, *self.notes] + ([why_not] if why_not else []))


def choose(candidates, compiled=False, xla_reason=None, notes=()):
    """The plan that takes the first eligible path of ``candidates``.

    Args:
        candidates: ``(path, reason)`` pairs in order of preference; ``reason`` is None
            where the path can run, else why it cannot. The last must be eligible.
        compiled: bool, default False. See `ExecutionPlan`.
        xla_reason: str or None. Why the loop is not compiled (kept when not ``compiled``).
        notes: tuple of str, see `ExecutionPlan`.

    Example:
        >>> choose([("cudnn", "use_cudnn=False"), ("while_loop", None)]).path
        'while_loop'
    """
    eligible = [path for path, reason in candidates if reason is None]
    if not eligible:
        raise ValueError(f"No path can run; the candidates were {candidates!r}")
    path = eligible[0]
    fallback = next((name for name in eligible[1:] if name in LOOP_PATHS), None) if path == "cudnn" else None
    reasons = {
        name: reason if reason is not None else f"{path} comes first"
        for name, reason in candidates
        if name not in (path, fallback)
    }
    runs_loop = (fallback or path) in LOOP_PATHS
    if not runs_loop:
        reasons["xla"] = f"{path} runs no loop of nlpkit's own to compile"
    elif not compiled:
        reasons["xla"] = xla_reason
    return ExecutionPlan(
        path, compiled=bool(compiled and runs_loop), fallback=fallback, reasons=reasons, notes=tuple(notes)
    )
