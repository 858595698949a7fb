"""MeasureVAE against ar-vae's reference: parameter count, KL by hand, each architecture flag, and the
refusal of configurations saved before model_version 2 (docs/FIDELITY.md)."""

import json

import numpy as np
import pytest
import tensorflow as tf

from musicvae_xai import config as config_lib
from musicvae_xai.config import ConfigError, RunConfig
from musicvae_xai.models.base import build_model

TWO = ("rhythmic_complexity", "note_range")


def small(**overrides) -> RunConfig:
    base = dict(hidden_size=8, latent_dim=4, embedding_dim=4, num_layers=2, attributes=TWO, seed=1)
    base.update(overrides)
    return RunConfig(**base)


def tokens(cfg, n=6, seed=0):
    return tf.constant(np.random.default_rng(seed).integers(0, cfg.vocabulary.size, (n, 24)), tf.int32)


def numpy_kl(mean, scale):
    """KL(N(mean, scale) || N(0, 1)) per example, summed over dims: 0.5 (mu^2 + s^2 - 1 - 2 log s)."""
    return 0.5 * np.sum(mean ** 2 + scale ** 2 - 1.0 - 2.0 * np.log(scale), axis=1)


def test_reference_parameter_count_and_shapes():
    cfg = small()
    model = build_model(cfg)
    v = cfg.vocabulary.size
    assert v == 34
    # V=34, E=4, H=8, Z=4, 2 layers; a GRU layer has input I*3H + recurrent H*3H + two biases 2*3H.
    encoder = (34 * 4                                   # embedding 136
               + 2 * (4 * 24 + 8 * 24 + 48)             # bi-GRU layer 1: 2 x 336 = 672
               + 2 * (16 * 24 + 8 * 24 + 48)            # bi-GRU layer 2 (input 2H): 2 x 624 = 1248
               + 2 * (32 * 16 + 16 + 16 * 4 + 4))       # mu / log sigma heads 4H -> 2H (SELU) -> Z: 2 x 596
    decoder = (1 + 4                                    # b_0 (scalar beat input) and x_0 (first tick input, E)
               + 4 * 16 + 16                            # z -> beat GRU states (2 layers x H)
               + (1 * 24 + 8 * 24 + 48) + (8 * 24 + 8 * 24 + 48)    # beat GRU: 264 + 432
               + 8 * 16 + 16                            # beat output -> tick GRU states
               + 8 * 8 + 8                              # c_i = SELU(Linear(H -> H)) beat conditioning
               + (12 * 24 + 8 * 24 + 48) + (8 * 24 + 8 * 24 + 48)   # tick GRU (input E + H): 528 + 432
               + 34 * 4                                 # decoder's own embedding
               + 8 * 34 + 34)                           # output Linear H -> V
    assert encoder == 3248 and decoder == 2399
    assert model.count_params() == encoder + decoder
    assert model(tokens(cfg)).shape == (6, 24, v)


def test_kl_and_total_loss_match_hand_computation():
    cfg = small(beta=0.37)
    model = build_model(cfg)
    x = tokens(cfg, 8)
    out = model.compute_losses(x, tf.random.uniform([8, 2]), 0, 8, training=False)
    enc = model.encode(x)
    kl = numpy_kl(enc["z_mean"].numpy().astype(np.float64), enc["z_scale"].numpy().astype(np.float64)).mean()
    # ar-vae: kld.sum(1).mean(); the loss adds beta times it.
    assert float(out["kl"]) == pytest.approx(kl, rel=1e-4)
    rest = float(out["reconstruction_loss"]) + cfg.gamma * sum(float(out[f"ar_{a}"]) for a in TWO)
    assert float(out["loss"]) == pytest.approx(rest + 0.37 * kl, rel=1e-4)


def test_beat_conditioning_flag_adds_the_projection():
    on, off = build_model(small()), build_model(small(beat_conditioning=False))
    assert on.count_params() - off.count_params() == 8 * 8 + 8
    assert "beat_condition" not in " ".join(w.path for w in off.weights)


def test_logits_relu_flag():
    cfg = small()  # reference: ReLU on the logits
    logits = build_model(cfg)(tokens(cfg)).numpy()
    assert logits.min() == 0.0
    plain = build_model(small(logits_relu=False))(tokens(cfg)).numpy()
    assert plain.min() < 0.0


def test_clip_log_scale_flag():
    for clip in (False, True):
        model = build_model(small(clip_log_scale=clip))
        model.encoder.posterior.scale_out.bias.assign(tf.fill([4], 20.0))
        model.encoder.posterior.scale_out.kernel.assign(tf.zeros_like(model.encoder.posterior.scale_out.kernel))
        scale = model.encode(tokens(small()))["z_scale"].numpy()
        assert np.allclose(scale, np.exp(5.0 if clip else 20.0), rtol=1e-5)


def test_init_flag_reference_is_xavier_normal_with_pytorch_biases():
    ref = build_model(small(hidden_size=64, init="reference"))
    keras_init = build_model(small(hidden_size=64, init="keras"))
    cell = ref.decoder.tick_cells[1]  # input [64, 192]: Xavier std sqrt(2 / (64 + 192))
    assert np.std(cell.input_kernel.numpy()) == pytest.approx(np.sqrt(2 / 256), rel=0.05)
    bias = cell.input_bias.numpy()
    assert np.abs(bias).max() <= 1 / 8 and np.std(bias) > 0.03  # U(+-1/sqrt(H)), H = 64
    assert np.all(keras_init.decoder.tick_cells[1].input_bias.numpy() == 0)
    assert np.all(ref.decoder.first_input.numpy() == 0) and np.all(ref.decoder.beat_input.numpy() == 0)


def test_decoder_dropout_only_with_a_seed():
    cfg = small(dropout=0.5)
    model = build_model(cfg)
    z = tf.random.normal([5, 4], seed=1)
    seed = tf.constant([1, 2], tf.int32)
    plain = model.decoder(z).numpy()
    assert np.array_equal(plain, model.decoder(z).numpy())
    dropped = model.decoder(z, seed=seed).numpy()
    assert not np.allclose(plain, dropped)
    no_rate = build_model(small(dropout=0.0))
    assert np.allclose(no_rate.decoder(z).numpy(), no_rate.decoder(z, seed=seed).numpy())


def test_saved_config_without_model_version_is_refused(tmp_path):
    cfg = small()
    cfg.save(str(tmp_path))
    assert RunConfig.load(str(tmp_path)) == cfg
    path = tmp_path / "config.json"
    saved = json.loads(path.read_text())
    del saved["model_version"]
    path.write_text(json.dumps(saved))
    with pytest.raises(ConfigError) as e:
        RunConfig.load(str(tmp_path))
    message = str(e.value)
    assert "\n" not in message and "model_version" in message and str(path) in message
    saved["model_version"] = 1
    with pytest.raises(ConfigError, match="has model_version 1"):
        config_lib.check_saved_version(saved, "export")


def test_run_dir_of_old_definition_is_refused_by_restore(tmp_path):
    from musicvae_xai.training import checkpoints
    d = small().to_dict()
    del d["model_version"]
    (tmp_path / "config.json").write_text(json.dumps(d))
    with pytest.raises(ConfigError, match="no model_version field"):
        checkpoints.restore_model(str(tmp_path))
    with pytest.raises(ConfigError, match="no model_version field"):
        checkpoints.check_run_dir(small(run_dir=str(tmp_path)))


def test_export_of_old_definition_is_refused(tmp_path):
    from musicvae_xai.serving.local import LocalModel
    export = tmp_path / "exports" / "m" / "1"
    (export / "assets.extra").mkdir(parents=True)
    (export / "saved_model.pb").write_bytes(b"")  # never read: the configuration is checked first
    d = small().to_dict()
    del d["model_version"]
    (export / "assets.extra" / "config.json").write_text(json.dumps(d))
    with pytest.raises(ConfigError) as e:
        LocalModel(str(export))
    assert "\n" not in str(e.value) and "no model_version field" in str(e.value)
