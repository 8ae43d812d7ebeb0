"""Distribution strategies by name, and where each worker of a cluster may write."""

import os

import tensorflow as tf

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

    Every worker of a multi-worker run saves (the collective ops need all of
    them), but only the chief's files are kept in `out_dir`.
    """
    if is_chief(strategy):
        return out_dir
    resolver = strategy.cluster_resolver
    return os.path.join(out_dir, "workers", f"{resolver.task_type}_{resolver.task_id}")
