"""Shared layers: every weight of both models, including GRU cells held in lists, is checkpointed."""

import numpy as np
import pytest
import tensorflow as tf

from musicvae_xai.config import RunConfig
from musicvae_xai.models.base import build_model
from musicvae_xai.training.loop import data_statistics


@pytest.mark.parametrize("model_name", ["measure_vae", "adversarial_vae"])
def test_a_model_only_checkpoint_restores_every_weight(model_name, tmp_path):
    """``tf.train.Checkpoint(model=...)`` (what ``checkpoints.restore_model`` uses) must reach the
    GRU cells and discriminator layers that Keras 3 keeps in lists."""
    config = RunConfig(model=model_name, hidden_size=8, latent_dim=4, embedding_dim=4, num_bins=4, seed=1)
    tokens = np.random.default_rng(0).integers(0, config.vocabulary.size, (32, 24))
    stats = data_statistics(tokens, config.vocabulary, config.attributes, config.num_bins)
    saved = build_model(config, data_statistics=stats)
    path = tf.train.Checkpoint(model=saved).save(str(tmp_path / "ckpt"))
    other = build_model(RunConfig(**{**config.to_dict(), "seed": 2}), data_statistics=stats)
    assert [v.path for v in saved.weights] == [v.path for v in other.weights]

    def differing():
        return [v.path for v, w in zip(saved.weights, other.weights) if not np.array_equal(v.numpy(), w.numpy())]

    assert any("recurrent_kernel" in p for p in differing())  # another seed: the GRU cells differ
    tf.train.Checkpoint(model=other).restore(path).assert_consumed()
    assert differing() == []
