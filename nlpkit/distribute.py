"""Where a recipe trains: ``tf.distribute`` strategy, mixed precision, seeds, data sharding.

Every recipe goes through `setup_training` once, before it creates any model:

    setup = setup_training(strategy=config.strategy, mixed_precision=config.mixed_precision,
                           seed=config.seed, batch_size=config.batch_size)
    model = setup.build(build_model, config, ...)   # under strategy.scope(): on every replica
    model.fit(setup.dataset(train), validation_data=setup.dataset(valid), ...)
    model = setup.local_model(model)              # a single-device copy to evaluate and export

Batch sizes are global: ``--batch-size 64`` over 4 replicas gives each replica 16 rows
per step, so a run keeps its optimisation settings (learning rate, steps per epoch) when
it moves from one device to several, and its results stay comparable.
`TrainingSetup.dataset` cuts every global batch of the input pipeline into equal
per-replica slices; on several workers each one reads the whole pipeline and keeps the
slices of its own replicas (sharding by data, not by file), which is why every worker
must build the same pipeline (same files, same shuffle seed).
"""

import contextlib
import dataclasses
import json
import os
import tempfile
from pathlib import Path

from nlpkit.errors import NlpkitError

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


def create_strategy(name="default"):
    """The ``tf.distribute.Strategy`` called ``name``.

    Args:
        name: one of `STRATEGIES`:
            "default": the current (normally single-device) strategy.
            "mirrored": ``MirroredStrategy`` over the visible GPUs, or over the logical
                CPU devices when there is no GPU (several only when configured with
                ``tf.config.set_logical_device_configuration``).
            "multi_worker": ``MultiWorkerMirroredStrategy``; the cluster comes from the
                ``TF_CONFIG`` environment variable, which must be set.
            "tpu": ``TPUStrategy`` when a TPU cluster resolver finds a TPU.

    Returns:
        the strategy.

    Raises:
        NlpkitError: an unknown name, ``multi_worker`` without a usable ``TF_CONFIG``, or
            ``tpu`` without a TPU.

    Example:
        >>> strategy = create_strategy("mirrored")
        >>> strategy.num_replicas_in_sync  # the number of GPUs (1 on a plain CPU machine)
        1
    """
    import tensorflow as tf

    if name not in STRATEGIES:
        raise NlpkitError(f"--strategy must be one of {list(STRATEGIES)}. Received: {name!r}")
    if name == "default":
        return tf.distribute.get_strategy()
    if name in _STRATEGY_CACHE:
        return _STRATEGY_CACHE[name]
    if name == "mirrored":
        devices = [device.name for device in tf.config.list_logical_devices("GPU")]
        if not devices:
            devices = [device.name for device in tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(devices=devices)
    elif name == "multi_worker":
        _check_tf_config(os.environ.get("TF_CONFIG"))
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        strategy = _tpu_strategy()
    _STRATEGY_CACHE[name] = strategy
    return strategy


# One strategy of each kind per process: a second MirroredStrategy over the same devices
# numbers its collective ops from the same start, and its gradient all-reduces then meet
# the first one's and fail with "Shape mismatch in the collective instance" (measured with
# two logical CPUs; TensorFlow allows only one multi-worker strategy per process anyway).
_STRATEGY_CACHE = {}


def _tpu_strategy():
    import tensorflow as tf

    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        raise NlpkitError(
            f"--strategy tpu: no TPU found ({type(error).__name__}: {error}). Run on a TPU VM "
            "or set TPU_NAME; use --strategy mirrored for GPUs."
        ) from None
    return tf.distribute.TPUStrategy(resolver)


def _check_tf_config(text):
    # MultiWorkerMirroredStrategy silently trains alone when TF_CONFIG is missing or
    # malformed; a user who asked for several workers should hear about it instead.
    if not text:
        raise NlpkitError(
            "--strategy multi_worker needs the TF_CONFIG environment variable, e.g. "
            '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", '
            '"index": 0}}, set on every worker with its own task index. Received: TF_CONFIG unset'
        )
    try:
        config = json.loads(text)
        workers = config["cluster"]["worker"]
        task = config["task"]
        task["type"], task["index"]
    except (ValueError, KeyError, TypeError) as error:
        raise NlpkitError(
            f"TF_CONFIG must be JSON with cluster.worker (a list of host:port) and task.type / "
            f"task.index ({type(error).__name__}: {error}). Received: TF_CONFIG={text!r}"
        ) from None
    if not isinstance(workers, list) or not workers:
        raise NlpkitError(f"TF_CONFIG cluster.worker must be a non-empty list of host:port. Received: {workers!r}")


def configure_precision(mixed_precision=False):
    """Sets the global Keras dtype policy and returns its name.

    Mixed precision computes in 16 bits and keeps the variables in float32:
    ``mixed_float16`` on a GPU (tensor cores; Keras adds dynamic loss scaling when the
    model is compiled) and ``mixed_bfloat16`` elsewhere (CPUs and TPUs have bfloat16
    units, and its float32 exponent range needs no loss scaling). nlpkit's output layers
    are float32 and its CRF computes in float32, so softmax, CRF and the losses keep full
    precision. ``False`` restores ``float32``: the policy is process-wide.

    Example:
        >>> configure_precision(True)   # on a CPU machine
        'mixed_bfloat16'
    """
    import keras
    import tensorflow as tf

    if not isinstance(mixed_precision, bool):
        raise ValueError(f"`mixed_precision` must be a bool. Received: mixed_precision={mixed_precision!r}")
    if not mixed_precision:
        name = "float32"
    elif tf.config.list_logical_devices("GPU"):
        name = "mixed_float16"
    else:
        name = "mixed_bfloat16"
    keras.mixed_precision.set_global_policy(name)
    return name


def per_replica_batch_size(batch_size, strategy):
    """The rows each replica gets from a global batch of ``batch_size``.

    Raises:
        NlpkitError: when ``batch_size`` is not a positive multiple of the number of
            replicas (the split would be uneven and the per-replica batch change from
            step to step).

    Example:
        >>> per_replica_batch_size(64, strategy)  # 4 replicas
        16
    """
    replicas = strategy.num_replicas_in_sync
    if not isinstance(batch_size, int) or batch_size < 1 or batch_size % replicas:
        lower = max(replicas, batch_size // replicas * replicas) if isinstance(batch_size, int) else replicas
        raise NlpkitError(
            f"--batch-size is the global batch and must be a positive multiple of the "
            f"{replicas} replicas of this strategy. Received: batch_size={batch_size!r} "
            f"(try {lower} or {lower + replicas})"
        )
    return batch_size // replicas


def worker_index(strategy):
    """This process's worker index (0, the chief, outside multi-worker training)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return 0
    # MultiWorkerMirroredStrategy has no separate chief task unless the cluster names one;
    # then worker 0 is a plain worker and the chief is the "chief" task.
    cluster = resolver.cluster_spec().as_dict()
    if resolver.task_type == "chief":
        return 0
    return int(resolver.task_id) + (1 if "chief" in cluster else 0)


def _rows(batch):
    import tensorflow as tf

    return tf.shape(tf.nest.flatten(batch)[0])[0]


def _replica_slices(batch, replicas, first, count):
    """A dataset of ``count`` equal row slices of ``batch``: those of replicas ``first...``."""
    import tensorflow as tf

    size = _rows(batch) // replicas

    def slices(tensor):
        kept = tensor[first * size : (first + count) * size]
        return tf.reshape(kept, tf.concat([[count, size], tf.shape(tensor)[1:]], axis=0))

    pieces = tf.nest.map_structure(slices, batch)
    # `flat_map` passes a tuple element as separate arguments and a single one (a dict or
    # a tensor) as itself; the slices must keep that structure.
    return tf.data.Dataset.from_tensor_slices(pieces if len(pieces) > 1 else pieces[0])


def _logs_as_vectors(step):
    import tensorflow as tf

    def vector_step(data):
        logs = step(data)
        if not isinstance(logs, dict):
            return logs
        return {name: tf.reshape(value, [1]) if value.shape.rank == 0 else value for name, value in logs.items()}

    return vector_step


def _prepare_for_distribution(model, strategy):
    import tensorflow as tf

    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        for name in ("train_step", "test_step"):
            setattr(model, name, _logs_as_vectors(getattr(model, name)))

    keras_version = model._maybe_symbolic_build

    def first_replica(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    def maybe_symbolic_build(iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = tf.nest.map_structure(first_replica, next(batches))
                break
        return keras_version(data_batch=data_batch)

    # An attribute of this model only: Keras looks the method up on the instance.
    model._maybe_symbolic_build = maybe_symbolic_build


@dataclasses.dataclass
class TrainingSetup:
    """The device side of one training run; made by `setup_training`.

    Args:
        strategy: the ``tf.distribute.Strategy`` models are built under.
        strategy_name: the name it was asked for (one of `STRATEGIES`).
        precision: the global Keras dtype policy name (float32, mixed_float16, mixed_bfloat16).
        seed: int or None, the seed every random generator was given.
        batch_size: int or None, the global batch size (checked against the replicas).

    Example:
        >>> setup = setup_training(strategy="mirrored", batch_size=32)
        >>> model = setup.build(build_model, config)
        >>> model.fit(setup.dataset(train_batches), epochs=3)
    """

    strategy: object
    strategy_name: str
    precision: str
    seed: object = None
    batch_size: object = None

    @property
    def num_replicas(self):
        return self.strategy.num_replicas_in_sync

    @property
    def distributed(self):
        """Whether models are built under a strategy other than the default one."""
        return self.strategy_name != "default"

    @property
    def worker_index(self):
        return worker_index(self.strategy)

    @property
    def is_chief(self):
        return self.worker_index == 0

    def scope(self):
        """Context in which models (and their optimizers) must be created and compiled."""
        return self.strategy.scope() if self.distributed else contextlib.nullcontext()

    def build(self, build_model, *args, **kwargs):
        """``build_model(*args, **kwargs)`` under `scope`, made ready for distributed ``fit``.

        ``build_model`` must return a built, compiled model (the recipes' ``build_model``
        does). Under a distributed strategy, Keras' first ``fit``/``evaluate`` builds the
        compiled metrics from a batch it all-reduces across the replicas
        (``strategy.reduce("MEAN", batch)``); that fails for a multi-worker strategy
        ("Attempt to convert a value (PerReplica...)") and whenever replicas hold batches of
        different shapes. The model returned here builds them from the first replica's
        slice of that batch instead, which has the shapes the metrics need.

        On several workers Keras reduces the per-step logs with
        ``strategy.reduce("MEAN", value, axis=0)``, which fails on scalars ("Invalid
        reduction dimension 0 for input with 0 dimensions", tensorflow/tensorflow#72388);
        this model's train and test steps return them as 1-element vectors, which that
        reduction averages over the replicas into scalars again.
        """
        with self.scope():
            model = build_model(*args, **kwargs)
        if self.distributed:
            _prepare_for_distribution(model, self.strategy)
        return model

    def dataset(self, dataset):
        """Distributes a batched ``tf.data`` pipeline of global batches for ``fit``/``evaluate``.

        Returns ``dataset`` itself under the default strategy. Otherwise every global batch
        is cut into one equal slice per replica (rows ``[r * n, (r + 1) * n)`` go to
        replica ``r``), and each worker keeps the slices of its own replicas: every worker
        reads the whole pipeline and keeps its share of each batch, like the auto-shard
        policy ``DATA``, which is why every worker must build the same pipeline (same
        data, same shuffle seed).

        Slicing here rather than letting ``tf.distribute`` rebatch matters for padded,
        length-bucketed batches: ``tf.distribute`` cannot tell the batch size of a bucketed
        pipeline and then rewrites its batching so each replica pads its own smaller batch;
        the replicas' sparse embedding gradients then differ in shape and their all-reduce
        fails. Slices of one padded batch all share its shape. A batch whose rows do not
        split evenly loses its last ``rows % replicas`` rows (batches with fewer rows than
        replicas are skipped) for that pass; training reshuffles, so other rows each epoch,
        and the final evaluations run on `local_model` over all rows.
        """
        if not self.distributed:
            return dataset
        replicas = self.num_replicas

        def dataset_fn(context):
            per_worker = replicas // context.num_input_pipelines
            first = context.input_pipeline_id * per_worker
            usable = dataset.filter(lambda *batch: _rows(batch) >= replicas)
            return usable.flat_map(lambda *batch: _replica_slices(batch, replicas, first, per_worker))

        return self.strategy.distribute_datasets_from_function(dataset_fn)

    def output_dir(self, path):
        """Where this process writes ``path``'s files: ``path`` itself on the chief.

        The other workers of a multi-worker run write to ``<path>.worker-<index>``: every
        worker has to run the same program, but two processes writing one bundle (or one
        backup) would overwrite each other's files.
        """
        path = Path(path)
        if self.is_chief:
            return path
        return path.with_name(f"{path.name}.worker-{self.worker_index}")

    def local_model(self, model):
        """A float32 copy of ``model`` outside the strategy, for evaluation, prediction and export.

        Under a distributed strategy a model's variables are mirrored and every
        ``predict`` is split across replicas (across workers, too, gathering the rows of
        all of them); the recipes' evaluation and export code expects one device. Under
        mixed precision the copy computes in float32: TFLite has no bfloat16 kernels, and
        the figures a recipe reports must come from what the bundle holds. Training is
        over at this point, so the global dtype policy goes back to float32 as well, and
        whatever the export builds afterwards (stateless copies, step wrappers) is float32.
        The copy goes through the model's own ``.keras`` round trip, so it is exactly what
        the bundle will hold. Returns ``model`` itself when it is on one device in float32.
        """
        mixed = self.precision != "float32"
        if not (self.distributed or mixed):
            return model
        import keras

        from nlpkit.models import load_keras_model

        keras.mixed_precision.set_global_policy("float32")
        with tempfile.TemporaryDirectory(prefix="nlpkit-local-model-") as directory:
            path = Path(directory) / "model.keras"
            model.save(path)
            if mixed:
                rewrite_keras_config(path, float32_config)
            return load_keras_model(path)

    def describe(self):
        """A one-line summary for the training log."""
        return (f"strategy {self.strategy_name} ({type(self.strategy).__name__}, {self.num_replicas} "
                f"replica(s), worker {self.worker_index}), precision {self.precision}, seed {self.seed}")


def float32_config(config):
    """``config`` (a ``.keras`` model config) with every mixed dtype policy made float32.

    Policies appear as serialized ``DTypePolicy`` objects or as bare names under a
    ``dtype`` key; both forms are rewritten, at any depth (nested layers, wrappers).
    """
    if isinstance(config, list):
        return [float32_config(item) for item in config]
    if not isinstance(config, dict):
        return config
    if config.get("class_name") == "DTypePolicy" and str(config.get("config", {}).get("name", "")).startswith("mixed_"):
        return {**config, "config": {**config["config"], "name": "float32"}}
    rewritten = {key: float32_config(value) for key, value in config.items()}
    if isinstance(rewritten.get("dtype"), str) and rewritten["dtype"].startswith("mixed_"):
        rewritten["dtype"] = "float32"
    return rewritten


def rewrite_keras_config(path, rewrite):
    """Applies ``rewrite`` to the model config inside the ``.keras`` archive at ``path``."""
    import zipfile

    path = Path(path)
    staging = path.with_suffix(".rewritten.keras")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(staging, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "config.json":
                data = json.dumps(rewrite(json.loads(data))).encode("utf-8")
            target.writestr(item, data)
    staging.replace(path)


def setup_training(*, strategy="default", mixed_precision=False, seed=None, deterministic=False, batch_size=None):
    """Seeds, dtype policy and distribution strategy of a training run, set up once.

    Call it first thing in a recipe's ``train``: ``MultiWorkerMirroredStrategy`` must be
    created before TensorFlow runs any op, and the dtype policy must be set before layers
    are created.

    Args:
        strategy: str, one of `STRATEGIES` (see `create_strategy`).
        mixed_precision: bool, see `configure_precision`.
        seed: int or None. Seeds Python, NumPy and TensorFlow, so two runs on the same
            device with the same seed train identical weights.
        deterministic: bool. Also make TensorFlow pick deterministic kernels
            (``tf.config.experimental.enable_op_determinism``). CPU kernels are already
            deterministic; GPU runs need this to repeat bit for bit and get slower.
        batch_size: int or None, the global batch size, checked to split evenly.

    Returns:
        `TrainingSetup`.

    Example:
        >>> setup = setup_training(strategy="default", mixed_precision=False, seed=1234)
        >>> setup.num_replicas
        1
    """
    import keras
    import tensorflow as tf

    if strategy not in STRATEGIES:
        raise NlpkitError(f"--strategy must be one of {list(STRATEGIES)}. Received: {strategy!r}")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise ValueError(f"`seed` must be a non-negative int or None. Received: seed={seed!r}")
    # The strategy first: a multi-worker strategy has to start its collective runtime
    # before anything initialises TensorFlow's devices.
    distribution = create_strategy(strategy)
    precision = configure_precision(mixed_precision)
    if seed is not None:
        keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    setup = TrainingSetup(distribution, strategy, precision, seed, batch_size)
    if batch_size is not None:
        per_replica_batch_size(batch_size, distribution)
    return setup
