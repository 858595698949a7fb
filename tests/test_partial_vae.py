"""A model with a setting of its own, added in two source files (models/partial_vae.py and one settings
class and register line in models/registry.py): its flag, checks, config.json and behaviour."""

import numpy as np
import pytest
import tensorflow as tf
from absl import flags

from musicvae_xai import settings
from musicvae_xai.config import ConfigError, RunConfig
from musicvae_xai.models.base import build_model

TWO = ("note_density", "contour")


def _config(**changes) -> RunConfig:
    return RunConfig(model="partial_vae", hidden_size=8, latent_dim=4, embedding_dim=4, num_layers=1,
                     attributes=TWO, seed=2, **changes)


def test_its_setting_is_a_flag_a_check_and_a_config_json_key(tmp_path):
    fv = flags.FlagValues()
    settings.define_flags(RunConfig, flag_values=fv)
    fv(["prog", "--model=partial_vae", "--regularised_count=2", "--beta=0.5"])
    config = settings.from_flags(RunConfig, flag_values=fv).validate()
    assert config.regularised_count == 2 and config.beta == 0.5 and "PartialVAE" in fv["regularised_count"].help
    assert RunConfig.load(config.save(str(tmp_path))).regularised_count == 2
    with pytest.raises(ConfigError, match="regularised_count must be at least 0, got -1"):
        _config(regularised_count=-1).validate()
    with pytest.raises(AttributeError, match="has no setting 'regularised_count'"):
        RunConfig().regularised_count  # noqa: B018


def test_only_the_first_attributes_are_regularised_and_controlled():
    model = build_model(_config(regularised_count=1))
    assert [(c.name, c.attribute) for c in model.controls] == [("z[0]", "note_density")]
    vocab = model.vocabulary
    tokens = tf.constant(np.random.default_rng(0).integers(0, vocab.size, (6, 24)), tf.int32)
    out = model.eval_metrics(tokens, model.measure_attributes(tokens))
    assert "ar_note_density" in out and "ar_contour" not in out
    assert build_model(_config(regularised_count=0)).controls == []
