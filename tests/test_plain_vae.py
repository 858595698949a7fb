"""The plain VAE (``--model=plain_vae``): MeasureVAE's encoder and decoder without attribute
regularisation. It builds, trains, evaluates (independence not applicable), exports and opens in the
explorer without controls; tiny models, few steps."""

import json

import numpy as np
import pytest
import tensorflow as tf

from musicvae_xai import attributes as attrs
from musicvae_xai.config import RunConfig
from musicvae_xai.models.base import build_model

SMALL_EVAL = dict(max_measures=48, sweep_measures=3, sweep_steps=4, seed=3)


def _config(model: str, **kw) -> RunConfig:
    return RunConfig(**{"model": model, "hidden_size": 16, "latent_dim": 6, "embedding_dim": 4, "seed": 3, **kw})


def _batch(config: RunConfig, n: int = 8):
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, config.vocabulary.size, size=(n, 24)).astype(np.int32)
    a = attrs.compute(tokens, config.vocabulary, config.attributes).astype(np.float32)
    return tf.constant(tokens), tf.constant(a)


def test_same_network_as_measure_vae_and_no_controls():
    plain, measure = build_model(_config("plain_vae")), build_model(_config("measure_vae"))
    assert type(plain).__name__ == "PlainVAE" and plain.name == "plain_vae"
    assert plain.controls == [] and not plain.needs_controls and plain.default_controls(None) is None
    assert [v.shape for v in plain.trainable_variables] == [v.shape for v in measure.trainable_variables]
    for a, b in zip(plain.trainable_variables, measure.trainable_variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())  # same seed, same architecture: same weights


def test_loss_is_measure_vae_at_gamma_zero():
    """Same weights and batch: the plain VAE's loss is MeasureVAE's with gamma = 0 (reconstruction + beta KL),
    whatever --gamma says, and it has no attribute-regularisation terms."""
    config = _config("plain_vae", gamma=5.0)
    plain = build_model(config)
    measure = build_model(_config("measure_vae", gamma=0.0))
    tokens, a = _batch(config)
    out = plain.compute_losses(tokens, a, step=1, global_batch_size=8)
    ref = measure.compute_losses(tokens, a, step=1, global_batch_size=8)
    assert not any(k.startswith("ar_") for k in out) and any(k.startswith("ar_") for k in ref)
    for key in ("loss", "reconstruction_loss", "kl", "token_accuracy"):
        assert float(out[key]) == float(ref[key]), key
    assert float(out["loss"]) == float(out["reconstruction_loss"] + config.beta * out["kl"])
    metrics = plain.eval_metrics(tokens, a)
    assert set(metrics) == {"loss", "reconstruction_loss", "kl", "token_accuracy"}


def test_a_training_step_changes_the_weights_and_latent_dim_may_be_below_the_attribute_count():
    config = _config("plain_vae", latent_dim=2)  # no dim per attribute needed: nothing is regularised
    config.validate()
    model = build_model(config)
    optimizers = model.make_optimizers()
    tokens, a = _batch(config)
    before = [v.numpy().copy() for v in model.trainable_variables]
    out = model.train_step_replica(optimizers, tokens, a, tf.constant(0, tf.int64), 8, 0)
    assert np.isfinite(float(out["loss"]))
    assert any(not np.array_equal(b, v.numpy()) for b, v in zip(before, model.trainable_variables, strict=True))


def test_training_summaries_without_controls(tmp_path):
    """The validation pictures of a model without controls: reconstructions, no traversals, no failure."""
    from musicvae_xai.training.summaries import MusicSummaries

    config = _config("plain_vae")
    model = build_model(config)
    tokens, _ = _batch(config, 4)
    music = MusicSummaries(model, tokens.numpy(), config.vocabulary, audio_examples=0)
    with tf.summary.create_file_writer(str(tmp_path)).as_default():
        music.write(1)
    assert not music.failed and music.controls == []


def test_trains_and_evaluates_with_independence_not_applicable(tiny_trained_run):
    from musicvae_xai import evaluation
    from musicvae_xai.evaluation import EvaluationOptions, evaluate_run, format_report
    from musicvae_xai.study.worker import summarize_evaluation

    run_dir = tiny_trained_run("plain_vae")
    assert json.loads((run_dir / "config.json").read_text())["model"] == "plain_vae"
    report = evaluate_run(str(run_dir), EvaluationOptions(**SMALL_EVAL))
    ind = report["attribute_independence"]
    assert ind["applicable"] is False and ind["controls"] == [] and ind["matrix"] == []
    assert ind["controllability"] is None and ind["leakage"] is None
    assert ind["attributes"] == list(attrs.DEFAULT_FOUR)
    assert report["notes"] == [evaluation.NO_CONTROLS_NOTE]
    rows = report["interpretability"]["per_attribute"]  # still measured
    assert [r["attribute"] for r in rows] == list(attrs.DEFAULT_FOUR)
    assert all(0.0 <= r["r2"] <= 1.0 and r["intended_dim"] is None for r in rows)
    assert report["interpretability"]["intended_fraction"] is None and 0.0 <= report["sap"] <= 1.0
    assert np.array(report["mutual_information"]).shape == (6, 4)
    text = format_report(report)
    assert "Attribute independence: not applicable" in text and "R^2" in text
    summary = summarize_evaluation(report)
    assert summary["controllability"] is None and summary["independence_matrix"] == []
    assert summary["interpretability_mean"] == report["interpretability"]["mean"]


def test_exports_with_zero_controls_and_serves(tiny_export):
    from musicvae_xai.serving.local import LocalModel

    export = tiny_export("plain_vae")
    client = LocalModel(str(export))
    controls = client.assets["controls"]
    assert controls["controls"] == [] and controls["kind"] == "latent_dim" and "sample_controls" not in controls
    signatures = client.metadata()["signatures"]
    assert "controls" not in signatures["decode"]["inputs"]
    vocab = RunConfig().vocabulary
    tokens = np.full([2, 24], vocab.hold_id, np.int32)
    tokens[:, 0] = vocab.encode([60])[0]
    enc = client.encode(tokens)
    assert enc["z_mean"].shape == (2, 6) and enc["attributes"].shape == (2, 4)
    out = client.decode(enc["z_mean"])
    assert out["tokens"].shape == (2, 24)
    swept = client.traverse(tokens, 5, np.linspace(-2, 2, 3).astype(np.float32))  # any latent dim of z
    assert swept["tokens"].shape == (2, 3, 24) and swept["attributes"].shape == (2, 3, 4)


def test_export_is_verified_with_warmup_requests(tiny_trained_run, tmp_path):
    """As the study exports: reloaded and every signature's warm-up request run (verify=True)."""
    from musicvae_xai import export

    path = export.export_run(str(tiny_trained_run("plain_vae")), str(tmp_path / "plain"), verify=True)
    warmup = tmp_path / "plain" / "1" / "assets.extra" / export.WARMUP_FILENAME
    assert path == str(tmp_path / "plain" / "1") and warmup.stat().st_size > 0


def test_opens_in_the_explorer_without_controls(tiny_export):
    pytest.importorskip("flask")
    from musicvae_xai.explorer import model_info as mi
    from musicvae_xai.explorer.app import create_app
    from musicvae_xai.explorer.data import load_music_data
    from musicvae_xai.explorer.engine import Explorer
    from musicvae_xai.serving.local import LocalModel

    client = LocalModel(str(tiny_export("plain_vae")))
    info = mi.model_info(client)
    assert info.controls == [] and not info.needs_controls and info.model == "plain_vae"
    ex = Explorer(client, info, lambda: load_music_data(info.config, info.vocabulary, train_limit=200))
    ex.start_loading(background=False)
    assert ex.status()["state"] == "ready", ex.status()
    web = create_app(ex, "test backend").test_client()
    page = web.get("/api/model").get_json()
    assert page["controls"] == [] and page["pairs"] == [] and page["initial_controls"] is None
    assert page["upload_types"] == sorted([".abc", ".mid", ".midi", ".musicxml", ".mxl", ".xml"])
    decoded = web.post("/api/decode", json={"z": [0.0] * 6, "controls": None})
    assert decoded.status_code == 200 and len(decoded.get_json()["tokens"]) == 24
    seed = web.get("/api/seeds").get_json()
    assert seed["pieces"], seed
    state = web.post("/api/encode", json={"tokens": seed["pieces"][0]["tokens"][0]}).get_json()
    assert len(state["z"]) == 6 and state["controls"] is None and state["values"] == []
