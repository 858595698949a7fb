"""``--cpu_threading``: how a training process spreads its ops over the cores of a machine without GPUs.

TensorFlow's default on a C-core CPU is C inter-op threads (independent ops run concurrently) times C
intra-op threads (each op splits its work over the cores). Our training steps are graphs of many small,
mostly independent ops (two encoder directions, stacked decoder layers, per-weight gradient products),
so the two levels compete for the same cores. ``ops`` gives every core to the inter-op pool and runs
each op on one core: measured on the 2-core development CPU (``bench/train_bench.py``, quiet), a
MeasureVAE step at hidden 128 / batch 256 took 0.183 s instead of 0.234 s (1.28x), the quickstart's
(hidden 128, batch 64) 0.051 s instead of 0.061 s, an AdversarialVAE step at hidden 128 1.39x less, and
both models 1.05x less at hidden 512. ``tensorflow`` keeps TensorFlow's defaults.

The policy is applied once, before the process's first op, and only where it is ours to decide: a GPU,
``TF_NUM_INTEROP_THREADS`` / ``TF_NUM_INTRAOP_THREADS`` in the environment (the study runner sets them
for its parallel workers), thread counts already set in the process, or an already initialised
runtime (a library caller that ran ops first) leave TensorFlow's settings as they are, and so does
``--xla``: an XLA program parallelises inside itself over the intra-op pool, and one intra-op thread
made its step at hidden 128 take 0.330 s instead of 0.189 s.

Thread counts can change float round-off (a reduction split over two threads adds in another order),
so a run is bit-identical to another only under the same policy on the same machine.
"""

from __future__ import annotations

import os

import tensorflow as tf

from musicvae_xai.config import CPU_THREADING as POLICIES


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def apply(policy: str, xla: bool = False) -> str:
    """Applies ``policy`` (one of ``POLICIES``) to this process's TensorFlow runtime if it is still
    ours to set; returns one line saying what the thread settings are and why. ``xla``: the training
    step is compiled with XLA, whose program parallelises inside itself over the intra-op pool (one
    intra-op thread made an XLA step at hidden 128 take 0.330 s instead of 0.189 s), so ``ops``
    keeps TensorFlow's defaults then."""
    if policy not in POLICIES:
        raise ValueError(f"cpu_threading must be one of {', '.join(POLICIES)}, got {policy!r}")
    if policy == "tensorflow":
        return "TensorFlow's default thread pools (--cpu_threading=tensorflow)"
    env = {k: os.environ[k] for k in ("TF_NUM_INTEROP_THREADS", "TF_NUM_INTRAOP_THREADS") if os.environ.get(k)}
    if env:
        return "thread pools from the environment: " + ", ".join(f"{k}={v}" for k, v in env.items())
    inter = tf.config.threading.get_inter_op_parallelism_threads()
    intra = tf.config.threading.get_intra_op_parallelism_threads()
    if inter or intra:
        return f"thread pools already set in this process: {inter} inter-op x {intra} intra-op"
    if xla:
        return "TensorFlow's default thread pools (--xla: XLA parallelises inside its program)"
    if tf.config.list_physical_devices("GPU"):
        return "TensorFlow's default thread pools (a GPU is present)"
    cores = usable_cores()
    try:
        tf.config.threading.set_inter_op_parallelism_threads(cores)
        tf.config.threading.set_intra_op_parallelism_threads(1)
    except RuntimeError:  # the runtime is initialised: TensorFlow can no longer change its pools
        return "TensorFlow's thread pools unchanged (its runtime was already initialised in this process)"
    return f"{cores} inter-op thread(s) x 1 intra-op thread (--cpu_threading=ops)"
