"""`TaskModel`: what every task model tells the bundle writer about itself.

A task model (`TextClassifier`, `SequenceTagger`, `LanguageModel`, `Seq2Seq`) is a
``keras.Model`` that also says which task it solves and how it is served. The bundle writer
(`nlpkit.export.write_bundle`) reads nothing else, so it has no branch per task, and a fifth
task is a fifth subclass plus one row of `nlpkit.tasks.TASK_REGISTRY`.
"""


class TaskModel:
    """Mixin of nlpkit's task models: task name, serving and TFLite endpoints, manifest section.

    Subclasses set ``task`` (one of `nlpkit.manifest.TASKS`) and implement
    `serving_endpoints` and `tflite_endpoints`; the other two methods have defaults.

    Example:
        >>> class Scorer(TaskModel, keras.Model):
        ...     task = "classification"
        ...     def serving_endpoints(self, tokenizer, label_names): ...
        ...     def tflite_endpoints(self): ...
    """

    task = None

    def serving_endpoints(self, tokenizer, label_names):
        """SavedModel signatures: name -> ``(function, input_signature)``, ``serving_default`` among them.

        The functions take strings and tokenize inside the graph with ``tokenizer`` (an
        `nlpkit.text` graph tokenizer), so a SavedModel user needs nothing but TensorFlow.
        """
        raise NotImplementedError(f"{type(self).__name__} does not define serving_endpoints")

    def tflite_endpoints(self):
        """TFLite signatures: name -> ``(function, input_signature)``, int32 ids in, batch 1."""
        raise NotImplementedError(f"{type(self).__name__} does not define tflite_endpoints")

    def export_model(self):
        """The model that is saved and converted (a stateful language model exports its stateless copy)."""
        return self

    def manifest_section(self, tokenizer):
        """Task fields of ``nlpkit.json`` beyond labels (e.g. a language model's ``generation``)."""
        del tokenizer
        return {}
