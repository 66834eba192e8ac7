"""The task registry: one row per task, read by `nlpkit.serving`, the CLI and re-export.

A row names, for one task of `nlpkit.manifest.TASKS`: its model class (a
`nlpkit.models.TaskModel`), its predictor per exported form, the ``nlpkit.json`` fields a
re-export keeps, the parity check a re-export runs, and the CLI's evaluate and output
functions. Entries are ``"module:attribute"`` strings, imported when used, so reading the
registry imports neither TensorFlow nor the modules of the other tasks (`nlpkit.lite`
stays TensorFlow-free).

Adding a task means: its model (`nlpkit/models/`), its manifest section
(`nlpkit.manifest.SECTIONS`), its predictors (`nlpkit/lite/` and `nlpkit/serving.py`),
its evaluate and output functions (`nlpkit/evaluation.py`), and one row here.
"""

import dataclasses
import importlib

from nlpkit.errors import BundleError
from nlpkit.manifest import TASKS

FORMATS = ("tflite", "keras", "saved_model")


@dataclasses.dataclass(frozen=True)
class Task:
    """One task's row of `TASK_REGISTRY`.

    Attributes:
        name: the task's one name (manifest ``task``, data-set registry, module names).
        model: the `nlpkit.models.TaskModel` subclass.
        predictors: exported form (one of `FORMATS`) -> predictor class; the ``tflite``
            one also takes ``precision`` and ``num_threads``.
        kept_fields: ``nlpkit.json`` fields a re-export (``nlpkit export``) carries over.
        sample_parity: ``(staged_bundle_dir) -> report``, the parity check of a re-export,
            on the embedded sample's sentences.
        evaluate: ``(args) -> report`` of ``nlpkit evaluate``.
        output: ``(texts, predictor, args)`` that prints ``nlpkit predict``'s lines.
    """

    name: str
    model: str
    predictors: dict
    kept_fields: tuple
    sample_parity: str
    evaluate: str
    output: str

    def load(self, field, key=None):
        """The object a ``"module:attribute"`` entry names (``key`` picks one of ``predictors``)."""
        reference = getattr(self, field)
        if key is not None:
            reference = reference[key]
        module, attribute = reference.split(":")
        return getattr(importlib.import_module(module), attribute)


TASK_REGISTRY = {
    task.name: task
    for task in (
        Task(
            name="classification",
            model="nlpkit.models:TextClassifier",
            predictors={
                "tflite": "nlpkit.lite:TextClassifierPredictor",
                "keras": "nlpkit.serving:KerasClassifier",
                "saved_model": "nlpkit.serving:SavedModelClassifier",
            },
            kept_fields=("metrics", "config", "raw_labels"),
            sample_parity="nlpkit.evaluation:classification_sample_parity",
            evaluate="nlpkit.evaluation:evaluate_classification",
            output="nlpkit.evaluation:print_classified",
        ),
        Task(
            name="tagging",
            model="nlpkit.models:SequenceTagger",
            predictors={
                "tflite": "nlpkit.lite:SequenceTaggerPredictor",
                "keras": "nlpkit.serving:KerasTagger",
                "saved_model": "nlpkit.serving:SavedModelTagger",
            },
            kept_fields=("metrics", "config", "tag_scheme", "output_scheme"),
            sample_parity="nlpkit.evaluation:tagging_sample_parity",
            evaluate="nlpkit.evaluation:evaluate_tagging",
            output="nlpkit.evaluation:print_tagged",
        ),
        Task(
            name="language_model",
            model="nlpkit.models:LanguageModel",
            predictors={
                "tflite": "nlpkit.lite:LanguageModelGenerator",
                "keras": "nlpkit.serving:KerasGenerator",
                "saved_model": "nlpkit.serving:SavedModelGenerator",
            },
            kept_fields=("metrics", "config", "samples"),
            sample_parity="nlpkit.evaluation:language_model_sample_parity",
            evaluate="nlpkit.evaluation:evaluate_language_model",
            output="nlpkit.evaluation:print_generated",
        ),
        Task(
            name="translation",
            model="nlpkit.models:Seq2Seq",
            predictors={
                "tflite": "nlpkit.lite:Translator",
                "keras": "nlpkit.serving:KerasTranslator",
                "saved_model": "nlpkit.serving:SavedModelTranslator",
            },
            kept_fields=("metrics", "config", "languages", "examples"),
            sample_parity="nlpkit.evaluation:translation_sample_parity",
            evaluate="nlpkit.evaluation:evaluate_translation",
            output="nlpkit.evaluation:print_generated",
        ),
    )
}
assert tuple(TASK_REGISTRY) == TASKS, "one registry row per task of nlpkit.manifest.TASKS"


def task_of(bundle_dir, manifest):
    """The registry row of a bundle's task, or `BundleError` naming the bundle and the tasks known.

    Example:
        >>> task_of("saved_models/sentiment", read_manifest("saved_models/sentiment")).name
        'classification'
    """
    name = manifest.get("task")
    if name not in TASK_REGISTRY:
        raise BundleError(f"{bundle_dir}: bundle task is {name!r}; known tasks: {list(TASK_REGISTRY)}.")
    return TASK_REGISTRY[name]
