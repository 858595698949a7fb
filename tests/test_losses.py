"""Loss terms against brute-force and closed-form computations."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from musicvae_xai.models import losses


def brute_force_ar(z, a, delta):
    b = len(z)
    total = 0.0
    for i, j in itertools.product(range(b), range(b)):
        total += abs(np.tanh(delta * (z[i] - z[j])) - np.sign(a[i] - a[j]))
    return total / (b * b)


def test_attribute_regularization_matches_brute_force():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(7, 3)).astype(np.float32)
    a = rng.integers(0, 4, size=(7, 3)).astype(np.float32)  # ties included
    got = losses.attribute_regularization_loss(tf.constant(z), tf.constant(a), delta=10.0).numpy()
    want = [brute_force_ar(z[:, k], a[:, k], 10.0) for k in range(3)]
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_attribute_regularization_is_small_when_z_orders_like_a():
    a = np.arange(8, dtype=np.float32)[:, None]
    ordered = losses.attribute_regularization_loss(tf.constant(a * 1.0), tf.constant(a)).numpy()
    reversed_ = losses.attribute_regularization_loss(tf.constant(-a), tf.constant(a)).numpy()
    assert ordered[0] < 0.01 < 1.5 < reversed_[0]


def test_kl_matches_closed_form():
    rng = np.random.default_rng(1)
    mean = rng.normal(size=(5, 4)).astype(np.float32)
    scale = rng.uniform(0.2, 2.0, size=(5, 4)).astype(np.float32)
    closed = 0.5 * np.sum(scale**2 + mean**2 - 1.0 - 2.0 * np.log(scale), axis=1)
    np.testing.assert_allclose(losses.kl_per_example(mean, scale).numpy(), closed, rtol=1e-5)
    np.testing.assert_allclose(losses.kl_loss(mean, scale, 5).numpy(), closed.mean(), rtol=1e-5)


def test_reconstruction_loss_is_mean_cross_entropy_and_shares_add_up():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(6, 24, 9)).astype(np.float32)
    targets = rng.integers(0, 9, size=(6, 24)).astype(np.int32)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    want = -np.take_along_axis(logp, targets[..., None], -1).mean()
    full = losses.reconstruction_loss(logits, targets, 6).numpy()
    np.testing.assert_allclose(full, want, rtol=1e-5)
    halves = sum(losses.reconstruction_loss(logits[s], targets[s], 6).numpy()
                 for s in (slice(0, 3), slice(3, 6)))
    np.testing.assert_allclose(halves, full, rtol=1e-5)


def test_token_accuracy_with_mask():
    logits = tf.one_hot([[0, 1, 2, 3]], 4) * 5.0
    targets = tf.constant([[0, 1, 0, 0]])
    assert losses.token_accuracy(logits, targets).numpy() == pytest.approx(0.5)
    mask = tf.constant([[True, False, True, False]])
    assert losses.token_accuracy(logits, targets, mask).numpy() == pytest.approx(0.5)


def test_ordinal_targets_classes_and_accuracy():
    values = tf.constant([[0.05, 3.0], [0.5, 0.0], [0.95, 9.0]])
    edges = tf.constant([[0.25, 0.5, 0.75], [1.0, 2.0, 3.0]])  # 4 bins per attribute
    targets = losses.ordinal_targets(values, edges).numpy()
    np.testing.assert_array_equal(targets[0], [[0, 0, 0], [1, 1, 0]])  # 3.0 is not above the edge 3.0
    np.testing.assert_array_equal(losses.ordinal_classes(targets).numpy(), [[0, 2], [1, 0], [3, 3]])
    logits = np.where(targets > 0, 4.0, -4.0).astype(np.float32)
    assert float(losses.ordinal_accuracy(logits, targets)) == 1.0
    logits[1, 0] = [4.0, 4.0, -4.0]  # predicts class 2 for a class-1 example: one miss in six
    assert float(losses.ordinal_accuracy(logits, targets)) == pytest.approx(5 / 6)


def test_ordinal_bce_matches_brute_force_and_shares_add_up():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(6, 2, 7)).astype(np.float32)
    targets = (rng.uniform(size=(6, 2, 7)) > 0.5).astype(np.float32)
    p = 1.0 / (1.0 + np.exp(-logits))
    want = -(targets * np.log(p) + (1 - targets) * np.log(1 - p)).mean()
    full = losses.ordinal_bce(logits, targets, 6).numpy()
    np.testing.assert_allclose(full, want, rtol=1e-5)
    halves = sum(losses.ordinal_bce(logits[s], targets[s], 6).numpy() for s in (slice(0, 2), slice(2, 6)))
    np.testing.assert_allclose(halves, full, rtol=1e-5)


def test_kl_definitions_match_hand_computation():
    rng = np.random.default_rng(4)
    mean = rng.normal(size=(5, 3)).astype(np.float32)
    scale = rng.uniform(0.2, 2.0, size=(5, 3)).astype(np.float32)
    # KL(N(m, s) || N(0, 1)) = 0.5 (m^2 + s^2 - 1) - log s, per dim.
    per_dim = 0.5 * (mean.astype(np.float64) ** 2 + scale ** 2 - 1.0) - np.log(scale.astype(np.float64))
    # MeasureVAE (ar-vae): sum over dims, mean over the batch; the reported per-measure "kl" metric too.
    assert float(losses.kl_loss(mean, scale, 5)) == pytest.approx(per_dim.sum(1).mean(), rel=1e-5)
    # AdversarialVAE (Kawai's FaderVAE): mean over dims and batch.
    assert float(losses.kl_loss_mean_over_dims(mean, scale, 5)) == pytest.approx(per_dim.mean(), rel=1e-5)
    # Per-replica shares: two halves of a global batch of 5 add up to the whole.
    halves = (losses.kl_loss_mean_over_dims(mean[:2], scale[:2], 5)
              + losses.kl_loss_mean_over_dims(mean[2:], scale[2:], 5))
    assert float(halves) == pytest.approx(per_dim.mean(), rel=1e-5)
