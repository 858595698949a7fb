"""tf.data input pipeline: (token ids, attributes) batches from a built dataset's tokens."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from musicvae_xai import attributes
from musicvae_xai.representation import MEASURE_TICKS, Vocabulary



def measure_attributes(tokens: np.ndarray, vocab: Vocabulary, names: Sequence[str]) -> np.ndarray:
    """float32 [N, K]: ``musicvae_xai.attributes.compute`` over int token ids [N, 24]."""
    return attributes.compute(np.asarray(tokens).reshape(-1, MEASURE_TICKS), vocab, names)


def make_tf_dataset(tokens: np.ndarray, vocab: Vocabulary, attribute_names: Sequence[str], batch_size: int,
                    shuffle: bool = True, seed: int = 0, repeat: bool = False, drop_remainder: bool = True,
                    attributes: Optional[np.ndarray] = None):
    """tf.data.Dataset of (int32 [B, 24] token ids, float32 [B, K] attributes).

    tokens: int [N, 24] ids in ``vocab``; attribute_names: K names from ``musicvae_xai.attributes``
    (computed once, here, on the input measures). shuffle: a full reshuffle every epoch, seeded by
    ``seed`` (same seed -> same order); repeat: loop forever; drop_remainder: drop a last short
    batch; attributes: float32 [N, K] precomputed for ``tokens`` (skips recomputing them). Prefetches.
    """
    import tensorflow as tf  # here: the dataset build (this package) imports no TensorFlow

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    tokens = np.ascontiguousarray(np.asarray(tokens, dtype=np.int32).reshape(-1, MEASURE_TICKS))
    if len(tokens) and (tokens.min() < 0 or tokens.max() >= vocab.size):
        raise ValueError(f"token ids outside vocabulary of size {vocab.size}")
    attrs = measure_attributes(tokens, vocab, attribute_names) if attributes is None else np.asarray(
        attributes, np.float32)
    if len(attrs) != len(tokens):
        raise ValueError(f"{len(attrs)} attribute rows for {len(tokens)} measures")
    n = len(tokens)
    tok_t = tf.constant(tokens)
    att_t = tf.constant(attrs.reshape(n, len(attrs[0]) if n else len(tuple(attribute_names))))
    ds = tf.data.Dataset.range(n)
    if shuffle and n:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    ds = ds.map(lambda idx: (tf.gather(tok_t, idx), tf.gather(att_t, idx)),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)
