"""Synthetic long-range dependency tasks, generated in code: adding, selective copy, delayed recall.

Each task draws fresh batches from a NumPy generator, so training never sees the same
example twice and the test set (another seed) measures what the model learned, not what it
memorised. Every input is a float array ``(batch, length, input_dim)`` (one-hot symbols or
real values), every answer sits at the last ``answer_steps`` time steps, which makes one
model shape fit all tasks: sequence layer -> last ``answer_steps`` outputs -> Dense.

- ``adding`` (Hochreiter & Schmidhuber, 1997; the form of Le et al., 2015): two channels,
  values uniform in [0, 1) and a marker channel with exactly two ones, one in each half;
  the answer is the sum of the two marked values (a regression). Predicting the mean, 1.0,
  scores a mean squared error of 1/6 (the variance of a sum of two uniforms); 0.01 or less
  counts as solved.
- ``selective_copy`` (Gu & Dao, 2023, §3.1, shortened): ``SELECTIVE_TOKENS`` data tokens at
  random positions among blanks, then as many query markers; the answers are the data
  tokens in order, one per query position. Chance accuracy is 1/8.
- ``delayed_recall``: a class symbol at the first step, random distractor symbols after
  it; the answer, at the last step, is the class. Chance accuracy is 1/8.

Example:
    >>> task = TASKS["adding"]
    >>> inputs, answers = task.batch(np.random.default_rng(0), batch_size=4, length=50)
    >>> inputs.shape, answers.shape
    ((4, 50, 2), (4, 1, 1))
"""

import dataclasses

import numpy as np

SELECTIVE_TOKENS = 4  # data tokens to copy
SELECTIVE_VOCABULARY = 8  # distinct data tokens
RECALL_CLASSES = 8
RECALL_DISTRACTORS = 4
SOLVED_MSE = 0.01


def _one_hot(symbols, depth):
    return np.eye(depth, dtype=np.float32)[symbols]


def adding_batch(rng, batch_size, length):
    """``(inputs (B, T, 2), sums (B, 1, 1))``: the adding problem."""
    if length < 2:
        raise ValueError(f"The adding problem needs length >= 2. Received: length={length}")
    values = rng.uniform(0.0, 1.0, (batch_size, length)).astype(np.float32)
    half = length // 2
    rows = np.arange(batch_size)
    first = rng.integers(0, half, batch_size)
    second = rng.integers(half, length, batch_size)
    markers = np.zeros((batch_size, length), np.float32)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    sums = values[rows, first] + values[rows, second]
    return np.stack([values, markers], axis=-1), sums.reshape(batch_size, 1, 1)


def selective_copy_batch(rng, batch_size, length):
    """``(inputs (B, T, V + 2), tokens (B, K))``: copy the K data tokens, in order, after the blanks.

    Symbols: 0 blank, 1..V data tokens, V + 1 the query marker; answers are data tokens
    shifted to 0..V-1.
    """
    count = SELECTIVE_TOKENS
    if length < 2 * count:
        raise ValueError(f"Selective copy needs length >= {2 * count}. Received: length={length}")
    blank_span = length - count
    symbols = np.zeros((batch_size, length), np.int64)
    symbols[:, blank_span:] = SELECTIVE_VOCABULARY + 1
    tokens = rng.integers(0, SELECTIVE_VOCABULARY, (batch_size, count))
    for row in range(batch_size):
        positions = np.sort(rng.choice(blank_span, count, replace=False))
        symbols[row, positions] = tokens[row] + 1
    return _one_hot(symbols, SELECTIVE_VOCABULARY + 2), tokens.astype(np.int32)


def delayed_recall_batch(rng, batch_size, length):
    """``(inputs (B, T, C + D), classes (B, 1))``: recall the class shown at step 0."""
    classes = rng.integers(0, RECALL_CLASSES, batch_size)
    symbols = RECALL_CLASSES + rng.integers(0, RECALL_DISTRACTORS, (batch_size, length))
    symbols[:, 0] = classes
    return _one_hot(symbols, RECALL_CLASSES + RECALL_DISTRACTORS), classes.reshape(batch_size, 1).astype(np.int32)


@dataclasses.dataclass(frozen=True)
class LongRangeTask:
    """One task: how to draw a batch and how its answers are scored.

    Attributes:
        name: the task's name (a key of `TASKS`).
        input_dim: features per time step.
        answer_steps: the answers sit at the last ``answer_steps`` steps.
        num_classes: 0 for a regression (one number per answer step), else the classes.
        chance: the score of a model that ignores the input (MSE for regression,
            accuracy for classification).
        generate: ``(rng, batch_size, length) -> (inputs, answers)``.
    """

    name: str
    input_dim: int
    answer_steps: int
    num_classes: int
    chance: float
    generate: object

    @property
    def is_regression(self):
        return self.num_classes == 0

    def batch(self, rng, batch_size, length):
        return self.generate(rng, batch_size, length)

    def solved(self, score):
        """Whether a test score counts as solving the task (MSE <= 0.01; accuracy >= 0.95)."""
        return score <= SOLVED_MSE if self.is_regression else score >= 0.95


TASKS = {
    "adding": LongRangeTask("adding", 2, 1, 0, 1.0 / 6.0, adding_batch),
    "selective_copy": LongRangeTask(
        "selective_copy", SELECTIVE_VOCABULARY + 2, SELECTIVE_TOKENS, SELECTIVE_VOCABULARY,
        1.0 / SELECTIVE_VOCABULARY, selective_copy_batch,
    ),
    "delayed_recall": LongRangeTask(
        "delayed_recall", RECALL_CLASSES + RECALL_DISTRACTORS, 1, RECALL_CLASSES,
        1.0 / RECALL_CLASSES, delayed_recall_batch,
    ),
}
