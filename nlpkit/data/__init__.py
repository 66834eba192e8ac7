"""Data layer: file readers, the dataset registry and (with TensorFlow) input pipelines."""

from nlpkit.lazy import lazy_attributes

from nlpkit.data.datasets import (
    DatasetSpec,
    SplitSpec,
    available,
    canonical_split,
    dataset_path,
    get_spec,
    load,
    parse_dataset_splits,
    register,
    unregister,
)
from nlpkit.data.passages import join_passages, passage_groups, split_passages, tag_by_passages
from nlpkit.data.readers import (
    LabelledText,
    ParallelPair,
    TaggedSentence,
    iter_lines,
    read_classification,
    read_conll,
    read_lines,
    read_parallel,
    read_parallel_tsv,
    read_text,
)

# The tf.data pipelines need TensorFlow; load them on first use so the readers and the
# registry stay importable (and fast to import) without it.
_LAZY = {
    "classification_dataset": "nlpkit.data.pipelines",
    "bucket_boundaries": "nlpkit.data.pipelines",
    "tagging_dataset": "nlpkit.data.pipelines",
}

__getattr__ = lazy_attributes(globals(), _LAZY)

# Language modelling: streams and windows are numpy; lm_dataset imports TensorFlow when called.
from nlpkit.data.language_model import (
    build_lm_tokenizer,
    detokenize,
    encode_stream,
    lm_dataset,
    lm_normalizer,
    start_token_id,
    stream_windows,
)
