"""Applying gradients under tf.distribute, with clipping by the norm of the *global* gradient.

Keras 3 optimizers, called in a replica context, all-reduce (SUM) the gradients they are given
before updating. Each replica's gradient is its share of the global-batch loss (see ``losses``), so
that sum is the gradient one device would compute on the whole batch. Clipping must act on that
global gradient, not on each replica's share: ``apply_gradients`` here sums the shares itself,
clips the sum by its global norm, divides by the replica count and hands the result to the
optimiser, whose own SUM restores the clipped global gradient. With one replica it is plain
``tf.clip_by_global_norm``.
"""

from __future__ import annotations

from typing import Optional, Sequence

import tensorflow as tf


def clip_by_global_norm_across_replicas(grads: Sequence, clip_norm: float) -> tuple:
    """Clips gradients (tensors, IndexedSlices or None) by the norm of the replica-summed gradient.

    Returns (per-replica gradients, global norm float32 scalar): summed over the replicas in sync,
    the returned gradients equal the global gradient clipped to norm ``clip_norm``. ``None`` entries
    stay ``None``.
    """
    dense = [None if g is None else tf.convert_to_tensor(g) for g in grads]
    present = [g for g in dense if g is not None]
    ctx = tf.distribute.get_replica_context()
    replicas = ctx.num_replicas_in_sync if ctx is not None else 1
    if replicas > 1:
        present = ctx.all_reduce(tf.distribute.ReduceOp.SUM, present)
    clipped, norm = tf.clip_by_global_norm(present, clip_norm)
    if replicas > 1:
        clipped = [g / float(replicas) for g in clipped]
    it = iter(clipped)
    return [None if g is None else next(it) for g in dense], norm


def apply_gradients(optimizer, grads: Sequence, variables: Sequence, clip_norm: float = 0.0
                    ) -> Optional[tf.Tensor]:
    """Applies per-replica gradients ``grads`` to ``variables`` with ``optimizer``.

    ``clip_norm`` > 0 clips the global (all-replica) gradient to that norm first and returns the
    unclipped global norm (float32 scalar); ``clip_norm`` <= 0 applies the gradients unchanged and
    returns None.
    """
    norm = None
    # Dense gradients only: MultiWorkerMirroredStrategy fails to all-reduce IndexedSlices (embedding
    # gradients) with "destinations can not be empty"; the tables are small.
    grads = [None if g is None else tf.convert_to_tensor(g) for g in grads]
    if clip_norm > 0:
        grads, norm = clip_by_global_norm_across_replicas(grads, clip_norm)
    optimizer.apply_gradients(zip(grads, variables, strict=True))
    return norm
