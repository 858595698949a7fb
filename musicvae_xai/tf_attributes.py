"""The TensorFlow twins of ``musicvae_xai.attributes`` (docs/METHOD.md section 3).

Every ``tf_`` function takes an int tensor of token ids [..., 24] and a ``Vocabulary`` and returns
float32 [...] with the same values as its numpy twin (tests/test_attributes.py checks they agree), so a
model can compute the attributes inside its graph. Names, orders and constants come from
``musicvae_xai.attributes``, which imports no TensorFlow.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

from musicvae_xai.attributes import (
    AVERAGE_INTERVAL_JUMP, CONTOUR, DEFAULT_FOUR, METRICAL_WEIGHTS, NOTE_DENSITY, NOTE_RANGE, RANGE_NORM,
    RHYTHMIC_COMPLEXITY, S_BEFORE_T, validate_names)
from musicvae_xai.representation import MEASURE_TICKS, Vocabulary


def _tf_prepare(ids, vocab: Vocabulary):
    ids = tf.convert_to_tensor(ids)
    onset = ids < vocab.num_pitches
    pitch = tf.cast(ids + vocab.min_pitch, tf.float32)
    return onset, pitch


def _tf_consecutive(onset):
    cum = tf.cumsum(tf.cast(onset, tf.int32), axis=-1)
    s_before_t = tf.constant(S_BEFORE_T)
    return (onset[..., :, None] & onset[..., None, :] & s_before_t
            & tf.equal(cum[..., None, :] - cum[..., :, None], 1))


def tf_rhythmic_complexity(ids, vocab: Vocabulary):
    onset, _ = _tf_prepare(ids, vocab)
    w = tf.constant(METRICAL_WEIGHTS)
    return tf.reduce_sum(tf.cast(onset, tf.float32) * w, axis=-1) / tf.constant(METRICAL_WEIGHTS.sum())


def tf_note_range(ids, vocab: Vocabulary):
    onset, pitch = _tf_prepare(ids, vocab)
    hi = tf.reduce_max(tf.where(onset, pitch, -np.inf), axis=-1)
    lo = tf.reduce_min(tf.where(onset, pitch, np.inf), axis=-1)
    n = tf.reduce_sum(tf.cast(onset, tf.int32), axis=-1)
    return tf.where(n >= 2, (hi - lo) / RANGE_NORM, 0.0)


def tf_note_density(ids, vocab: Vocabulary):
    onset, _ = _tf_prepare(ids, vocab)
    return tf.reduce_sum(tf.cast(onset, tf.float32), axis=-1) / float(MEASURE_TICKS)


def tf_average_interval_jump(ids, vocab: Vocabulary):
    onset, pitch = _tf_prepare(ids, vocab)
    pairs = _tf_consecutive(onset)
    jumps = tf.abs(pitch[..., None, :] - pitch[..., :, None])
    total = tf.reduce_sum(tf.where(pairs, jumps, 0.0), axis=[-2, -1])
    count = tf.reduce_sum(tf.cast(pairs, tf.float32), axis=[-2, -1])
    return tf.where(count > 0, total / tf.maximum(count, 1.0), 0.0)


def tf_contour(ids, vocab: Vocabulary):
    onset, pitch = _tf_prepare(ids, vocab)
    pairs = _tf_consecutive(onset)
    steps = pitch[..., None, :] - pitch[..., :, None]
    return tf.reduce_sum(tf.where(pairs, steps, 0.0), axis=[-2, -1]) / RANGE_NORM


TF_FUNCTIONS: dict[str, Callable] = {
    RHYTHMIC_COMPLEXITY: tf_rhythmic_complexity,
    NOTE_RANGE: tf_note_range,
    NOTE_DENSITY: tf_note_density,
    AVERAGE_INTERVAL_JUMP: tf_average_interval_jump,
    CONTOUR: tf_contour,
}


def tf_compute(ids, vocab: Vocabulary, names: Sequence[str] = DEFAULT_FOUR):
    """float32 [..., K]: the named attributes of an int tensor of token ids [..., 24]."""
    names = validate_names(names)
    return tf.stack([TF_FUNCTIONS[n](ids, vocab) for n in names], axis=-1)
