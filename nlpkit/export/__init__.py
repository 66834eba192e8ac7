"""Export: .keras, SavedModel (strings in), TFLite (ids in, built-in ops only), bundles."""

from nlpkit.export.bundle import (
    TARGETS,
    ExportCheckError,
    check_targets,
    check_finite_weights,
    check_parity,
    library_versions,
    print_parity,
    update_manifest,
    write_bundle,
)
from nlpkit.export.saved_model import write_saved_model
from nlpkit.export.tflite import (
    NonBuiltinOpsError,
    OpAudit,
    assert_builtin_only,
    audit_ops,
    count_ops,
    convert,
)
from nlpkit.export.parity import classifier_parity, tagger_parity
from nlpkit.models.streaming import STEP_SIGNATURE, StreamingStack
from nlpkit.export.language_model import (
    LANGUAGE_MODEL_TASK,
    write_language_model_bundle,
)
from nlpkit.export.translation import (
    TRANSLATION_TASK,
    DecodingSettings,
    write_translation_bundle,
)
