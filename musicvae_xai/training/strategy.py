"""tf.distribute set-up: which strategy, who is chief, and how the global batch is split.

* ``default``: one device.
* ``mirrored``: synchronous data parallelism over the local devices (GPUs, or logical CPUs).
* ``multi_worker``: ``MultiWorkerMirroredStrategy`` over the cluster described by ``TF_CONFIG``.

The global batch is split in row order: replica r of N gets rows [r*b, (r+1)*b) with b = B / N, so
per-example randomness drawn for the global batch and sliced by row (see ``MusicVAE.sample_latent``)
is the same however the batch is split.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf


def make_strategy(name: str) -> tf.distribute.Strategy:
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("--strategy=multi_worker needs the TF_CONFIG environment variable (see README)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {name!r}")


def task_info() -> tuple:
    """(task type, task index) from TF_CONFIG, or ('chief', 0) without a cluster."""
    cfg = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    task = cfg.get("task", {})
    return task.get("type", "chief"), int(task.get("index", 0))


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True on the one task that writes checkpoints, summaries and exports."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, task_index = task_info()
    if task_type == "chief":
        return True
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    return task_type == "worker" and task_index == 0 and "chief" not in cluster


def distribute_batches(strategy: tf.distribute.Strategy, make_global_dataset, global_batch_size: int):
    """A distributed dataset whose replica r receives rows [r*b, (r+1)*b) of each global batch.

    ``make_global_dataset()`` returns a dataset of global batches (identical on every worker).
    """
    n = strategy.num_replicas_in_sync
    if n == 1:
        return make_global_dataset()
    if global_batch_size % n:
        raise ValueError(f"batch_size={global_batch_size} is not divisible by the {n} replicas")
    per_replica = global_batch_size // n

    def dataset_fn(ctx: tf.distribute.InputContext):
        local = n // ctx.num_input_pipelines
        start = ctx.input_pipeline_id * local * per_replica
        ds = make_global_dataset()
        ds = ds.map(lambda t, a: (t[start:start + local * per_replica], a[start:start + local * per_replica]))
        return ds.rebatch(per_replica)

    options = tf.distribute.InputOptions(experimental_fetch_to_device=True)
    return strategy.distribute_datasets_from_function(dataset_fn, options)
