"""MeasureVAE: shapes, teacher forcing, greedy decoding, controls, determinism."""

import numpy as np
import pytest
import tensorflow as tf

from musicvae_xai import attributes
from musicvae_xai.config import RunConfig
from musicvae_xai.models.base import build_model


@pytest.fixture(scope="module")
def model():
    return build_model(RunConfig(hidden_size=16, latent_dim=6, embedding_dim=4, seed=3))


def random_tokens(vocab, n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, vocab.size, size=(n, 24)).astype(np.int32)


def test_encode_decode_shapes_and_dtypes(model):
    v = model.vocabulary
    enc = model.encode(random_tokens(v, 5))
    assert enc["z_mean"].shape == (5, 6) and enc["z_scale"].shape == (5, 6)
    assert np.all(enc["z_scale"].numpy() > 0)
    np.testing.assert_array_equal(enc["z"].numpy(), enc["z_mean"].numpy())  # no seed: the mean
    sampled = model.encode(random_tokens(v, 5), seed=tf.constant([1, 2]))["z"].numpy()
    assert not np.allclose(sampled, enc["z_mean"].numpy())
    dec = model.decode(enc["z"])
    assert dec["tokens"].dtype == tf.int32 and dec["tokens"].shape == (5, 24)
    assert dec["probabilities"].shape == (5, 24, v.size)
    np.testing.assert_allclose(dec["probabilities"].numpy().sum(-1), 1.0, atol=1e-5)


def test_greedy_decoding_returns_argmax_of_its_own_chain(model):
    z = np.random.default_rng(1).normal(size=(4, 6)).astype(np.float32)
    dec = model.decode(z)
    np.testing.assert_array_equal(dec["tokens"].numpy(), np.argmax(dec["probabilities"].numpy(), -1))
    # Feeding the greedy output as teacher-forcing targets reproduces the same logits.
    forced = model.decoder(tf.constant(z), targets=dec["tokens"], teacher_force=tf.constant(True))
    np.testing.assert_allclose(tf.nn.softmax(forced).numpy(), dec["probabilities"].numpy(), atol=1e-5)


def test_teacher_forcing_uses_targets_only_when_forced(model):
    v = model.vocabulary
    z = tf.constant(np.random.default_rng(2).normal(size=(3, 6)).astype(np.float32))
    t1, t2 = random_tokens(v, 3, seed=5), random_tokens(v, 3, seed=6)
    t2[:, 0] = t1[:, 0]
    forced1 = model.decoder(z, targets=t1, teacher_force=tf.constant(True)).numpy()
    forced2 = model.decoder(z, targets=t2, teacher_force=tf.constant(True)).numpy()
    np.testing.assert_allclose(forced1[:, :1], forced2[:, :1], atol=1e-6)  # tick 0 sees only `start`
    assert not np.allclose(forced1[:, 1:], forced2[:, 1:])
    free1 = model.decoder(z, targets=t1, teacher_force=tf.constant(False)).numpy()
    free2 = model.decoder(z, targets=t2, teacher_force=tf.constant(False)).numpy()
    np.testing.assert_allclose(free1, free2, atol=1e-6)


def test_controls_are_the_regularised_dims(model):
    names = [c.attribute for c in model.controls]
    assert names == list(attributes.DEFAULT_FOUR)
    assert [c.index for c in model.controls] == [0, 1, 2, 3]
    z = np.zeros((2, 6), np.float32)
    zs, cs = model.apply_controls(z, None, 2, [-1.0, 0.0, 1.0])
    assert cs is None and zs.shape == (6, 6)
    np.testing.assert_allclose(zs.numpy()[:, 2], [-1, 0, 1, -1, 0, 1])
    assert np.all(zs.numpy()[:, [0, 1, 3, 4, 5]] == 0)


def test_bad_shapes_and_ids_are_named(model):
    with pytest.raises(ValueError, match=r"\[B, 24\]"):
        model.check_tokens(np.zeros((2, 23), np.int32))
    with pytest.raises(ValueError, match="token ids"):
        model.check_tokens(np.full((1, 24), 999))
    with pytest.raises(ValueError, match=r"\[B, 6\]"):
        model.check_latent(np.zeros((2, 5)))


@pytest.mark.parametrize("latent_dim", [4, 256])
def test_latent_sizes_build(latent_dim):
    m = build_model(RunConfig(hidden_size=8, latent_dim=latent_dim, embedding_dim=4))
    assert m.encode(np.zeros((1, 24), np.int32))["z_mean"].shape == (1, latent_dim)


_TWO_TRAININGS = """
import json, sys
import numpy as np
import tensorflow as tf
from musicvae_xai import attributes
from musicvae_xai.config import RunConfig
from musicvae_xai.models.base import build_model

def run():
    cfg = RunConfig(hidden_size=16, latent_dim=4, embedding_dim=4, seed=7, learning_rate=3e-3)
    m = build_model(cfg)
    opts = m.make_optimizers()
    v = m.vocabulary
    tokens = np.tile(v.encode([60, "hold", "hold", 62, "hold", "hold"] * 4), (8, 1))
    attrs = attributes.compute(tokens, v, cfg.attributes)
    step = tf.function(lambda t, a, s: m.train_step_replica(opts, t, a, s, 8, 0))
    losses = [float(step(tokens, attrs, tf.constant(i, tf.int64))["reconstruction_loss"]) for i in range(40)]
    return losses, [w.numpy() for w in m.trainable_variables]

(l1, w1), (l2, w2) = run(), run()
same = all(np.array_equal(a, b) for a, b in zip(w1, w2, strict=True))
json.dump({"l1": l1, "l2": l2, "weights_equal": same}, sys.stdout)
"""


def test_training_step_is_deterministic_and_learns():
    """Two trainings from one seed in one fresh process (other tests' process-wide TensorFlow state,
    e.g. logical CPU devices, stays out of it) give the same losses and weights, and the loss falls."""
    import json
    import os
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-c", _TWO_TRAININGS], capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p)))
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["l1"] == out["l2"] and out["weights_equal"]
    assert out["l1"][-1] < 0.5 * out["l1"][0]
