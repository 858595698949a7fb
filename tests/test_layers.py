"""Shared layers: every weight of both models (GRU cells held in lists too) is checkpointed; the stacked
GRU step and the autoregressive tick both decoders share compute what they say."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from musicvae_xai.config import RunConfig
from musicvae_xai.models.base import build_model
from musicvae_xai.models.layers import FusedGRUCell, autoregressive_tick, step_stacked_cells
from musicvae_xai.training.loop import data_statistics, statistics_bins


@pytest.mark.parametrize("model_name", ["measure_vae", "adversarial_vae"])
def test_a_model_only_checkpoint_restores_every_weight(model_name, tmp_path):
    """``tf.train.Checkpoint(model=...)`` (what ``checkpoints.restore_model`` uses) must reach the
    GRU cells and discriminator layers that Keras 3 keeps in lists."""
    config = RunConfig(model=model_name, hidden_size=8, latent_dim=4, embedding_dim=4, num_bins=4, seed=1)
    tokens = np.random.default_rng(0).integers(0, config.vocabulary.size, (32, 24))
    stats = data_statistics(tokens, config.vocabulary, config.attributes, statistics_bins(config))
    saved = build_model(config, data_statistics=stats)
    path = tf.train.Checkpoint(model=saved).save(str(tmp_path / "ckpt"))
    other = build_model(RunConfig(**{**config.to_dict(), "seed": 2}), data_statistics=stats)
    assert [v.path for v in saved.weights] == [v.path for v in other.weights]

    def differing():
        return [v.path for v, w in zip(saved.weights, other.weights, strict=True)
                if not np.array_equal(v.numpy(), w.numpy())]

    assert any("recurrent_kernel" in p for p in differing())  # another seed: the GRU cells differ
    tf.train.Checkpoint(model=other).restore(path).assert_consumed()
    assert differing() == []


def _cells(num_layers, in_dim, units):
    cells = [FusedGRUCell(units, name=f"c{i}") for i in range(num_layers)]
    for i, cell in enumerate(cells):
        cell.build((None, in_dim if i == 0 else units))
        for w in cell.weights:  # non-zero biases, so a mixed-up projection cannot pass
            w.assign(np.random.default_rng(i).normal(size=w.shape).astype(np.float32) * 0.5)
    return cells


def test_step_stacked_cells_feeds_each_cell_the_new_state_below():
    cells = _cells(3, 5, 4)
    x = tf.constant(np.random.default_rng(9).normal(size=(2, 5)), tf.float32)
    states = [tf.constant(np.full((2, 4), 0.1 * i), tf.float32) for i in range(3)]
    expected = list(states)
    inp = cells[0].project_inputs(x)
    for i, cell in enumerate(cells):
        expected[i] = cell.step(inp if i == 0 else cells[i].project_inputs(expected[i - 1]), expected[i])
    top = step_stacked_cells(cells, cells[0].project_inputs(x), states)
    for got, want in zip(states, expected, strict=True):  # updated in place
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    np.testing.assert_array_equal(top.numpy(), expected[-1].numpy())


def test_autoregressive_tick_feeds_the_previous_token_and_returns_the_argmax():
    cells = _cells(2, 6, 4)
    output = keras.layers.Dense(7)
    output.build((None, 4))
    table = tf.constant(np.random.default_rng(1).normal(size=(7, 12)), tf.float32)
    condition = tf.constant(np.random.default_rng(2).normal(size=(3, 12)), tf.float32)
    prev = tf.constant([0, 3, 6], tf.int32)
    states = [tf.zeros([3, 4]), tf.zeros([3, 4])]
    logits, greedy = autoregressive_tick(cells, output, table, prev, condition, states)
    h0 = cells[0].step(tf.gather(table, prev) + condition, tf.zeros([3, 4]))
    h1 = cells[1].step(cells[1].project_inputs(h0), tf.zeros([3, 4]))
    np.testing.assert_allclose(logits.numpy(), output(h1).numpy(), rtol=1e-6)
    np.testing.assert_array_equal(greedy.numpy(), np.argmax(logits.numpy(), axis=-1))
    other, _ = autoregressive_tick(cells, output, table, tf.constant([1, 3, 6], tf.int32), condition,
                                   [tf.zeros([3, 4]), tf.zeros([3, 4])])
    assert not np.allclose(other.numpy()[0], logits.numpy()[0]) and np.allclose(other.numpy()[1:],
                                                                                 logits.numpy()[1:])
