"""Distribution strategies by name, where each worker of a cluster may write, and a
repair that lets Keras 3 `model.fit` run on several workers."""

import tensorflow as tf

from keras_mvf import _compat
from keras_mvf.utils import files

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


def get_strategy(strategy=None):
    """Returns a `tf.distribute.Strategy` for a name, or `strategy` itself if it is one.

    Args:
        strategy: None or `"default"` (the current strategy: one device),
            `"mirrored"` (every local GPU, or every logical CPU device when there is
            no GPU), `"multi_worker"` (several hosts, configured by the `TF_CONFIG`
            environment variable), `"tpu"` (the TPU of this runtime), or a
            `tf.distribute.Strategy`.
    """
    if isinstance(strategy, tf.distribute.Strategy):
        return strategy
    if strategy in (None, "default"):
        return tf.distribute.get_strategy()
    if strategy == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    if strategy == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if strategy == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(
        f"`strategy` must be one of {STRATEGIES} or a tf.distribute.Strategy. "
        f"Received: strategy={strategy!r}"
    )


def is_chief(strategy):
    """True unless `strategy` runs on several workers and this one is not the chief."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def worker_dir(out_dir, strategy):
    """`out_dir` for the chief; a private subfolder for every other worker.

    Every worker of a multi-worker run backs up its own training state (each
    must restore it to resume), in its own folder; only the chief writes logs,
    checkpoints and the final model.
    """
    if is_chief(strategy):
        return out_dir
    resolver = strategy.cluster_resolver
    return files.join(out_dir, "workers", f"{resolver.task_type}_{resolver.task_id}")


def is_multi_worker(strategy):
    """True when `strategy` is a MultiWorkerMirroredStrategy spanning several workers."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and (
        strategy.num_replicas_in_sync > len(strategy.extended.worker_devices)
    )


def repair_multi_worker_fit(model):
    """Lets `model.fit` and `model.evaluate` run under a multi-worker strategy.

    Keras 3.15's TensorFlow trainer (`keras/src/backend/tensorflow/trainer.py`,
    keras-team/keras#20585) fails there twice. `_maybe_symbolic_build` averages
    the first `(x, y)` batch over the workers with one `strategy.reduce` call,
    which MultiWorkerMirroredStrategy cannot apply to a tuple (it passes the
    tuple to its collective ops as one tensor); and `reduce_per_replica`
    averages each step's logs with `strategy.reduce("MEAN", log, axis=0)`,
    which needs an axis that scalar logs lack. Here the model is built from
    this worker's own first batch (only its shapes and dtypes are used), and
    `train_step` and `test_step` give every log a leading axis of one, which
    that reduction averages over the replicas. Nothing else changes: gradients
    and weights are kept in sync by TensorFlow's collectives, and epoch logs are
    read from metric variables summed over all workers.
    """
    strategy = model.distribute_strategy

    def build_from_local_batch(iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = tf.nest.map_structure(
                    lambda value: strategy.experimental_local_results(value)[0], next(batches)
                )
                break
        with strategy.scope():
            _compat.symbolic_build(model, data_batch)

    def with_replica_axis(step):
        return lambda data: tf.nest.map_structure(lambda log: log[None], step(data))

    _compat.replace_symbolic_build(model, build_from_local_batch)
    model.train_step = with_replica_axis(model.train_step)
    model.test_step = with_replica_axis(model.test_step)
