"""``--deterministic``: TensorFlow's op determinism for training and evaluation.

``tf.config.experimental.enable_op_determinism()`` makes every op that has a nondeterministic kernel
either use a deterministic one or raise ``UnimplementedError``, and makes ``tf.data`` keep its order
under parallelism. It is process-wide (TF has no public way to turn it off again): ``Trainer.run``
applies it before the run's first op, ``evaluate_run`` after loading a run that was trained with it.

It does not make results identical across machines: oneDNN and Eigen pick their kernels by the CPU's
instruction set, so float round-off can still differ between CPUs (see the README's "Reproducibility").
"""

from __future__ import annotations

import tensorflow as tf


def apply(deterministic: bool) -> bool:
    """Enables TF op determinism when ``deterministic``; returns whether it is enabled in this process."""
    if deterministic and not is_enabled():
        tf.config.experimental.enable_op_determinism()
    return is_enabled()


def is_enabled() -> bool:
    """Whether TF op determinism is enabled in this process (by ``apply`` or by the caller)."""
    from tensorflow.python.framework import config as tf_config  # the public API has no getter

    return bool(tf_config.is_op_determinism_enabled())
