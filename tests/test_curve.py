"""Evaluation during training (``training.curve``, ``curve.json``), AdversarialVAE's attribute input and
discriminator z, and the side-information ablation of the evaluation."""

import json

import numpy as np
import pytest
import tensorflow as tf

from musicvae_xai import metric_registry
from musicvae_xai.config import ConfigError, RunConfig
from musicvae_xai.training import curve
from musicvae_xai.training.loop import Trainer

from tests.conftest import TINY_DATA
from tests.test_adversarial_vae import make_model, random_tokens, small_config


def test_curve_points_rounds_epochs_merges_steps_and_keeps_the_range():
    config = RunConfig(curve_epochs=("0.15", "0.6", "6"), curve_steps=("848", "10", "4000"))
    assert config.curve_epochs == (0.15, 0.6, 6.0) and config.curve_steps == (848, 10, 4000)
    # 1,000 steps per epoch: 150, 600 and 6,000 (beyond the 3,000 trained) from epochs; 10 and 848 steps.
    assert curve.curve_points(config, 1000, 3000) == [10, 150, 600, 848]
    assert curve.curve_points(RunConfig(curve_epochs=(0.0001,)), 100, 50) == [1]  # never step 0
    assert curve.curve_points(RunConfig(), 100, 50) == []


@pytest.mark.parametrize("field, value", [("curve_epochs", ("-1",)), ("curve_epochs", ("x",)),
                                          ("curve_steps", ("0",)), ("curve_steps", ("1.5",)),
                                          ("curve_epochs", ("inf",))])
def test_bad_curve_points_are_refused_in_one_line(field, value):
    with pytest.raises(ConfigError, match=field):
        RunConfig(**{field: value}).validate()


def test_curve_fields_survive_a_save_and_may_change_on_resume(tmp_path):
    config = RunConfig(curve_epochs=(0.3, 6), curve_steps=(848,), run_dir=str(tmp_path))
    config.save(str(tmp_path))
    loaded = RunConfig.load(str(tmp_path))
    assert loaded.curve_epochs == (0.3, 6.0) and loaded.curve_steps == (848,)
    assert not RunConfig(curve_steps=(5,)).differences(RunConfig())  # resumable: not what is trained


def _tiny(run_dir, cache_dir, model="measure_vae", steps=10, **kw):
    return RunConfig(model=model, **TINY_DATA, cache_dir=str(cache_dir), run_dir=str(run_dir), hidden_size=16,
                     latent_dim=6, embedding_dim=4, num_layers=1, discriminator_hidden=16, batch_size=32,
                     train_steps=steps, checkpoint_every=1000, eval_every=1000, eval_summaries=False, xla=False,
                     seed=1, curve_steps=(5, 10), curve_measures=48, **kw)


@pytest.mark.slow
def test_curve_json_holds_every_result_metric_and_resumes(tmp_path, embedded_cache_dir, monkeypatch):
    run = tmp_path / "run"
    Trainer(_tiny(run, embedded_cache_dir, steps=5), progress=False).run()
    first = curve.read_curve(str(run))
    assert [p["step"] for p in first["points"]] == [5]
    point = first["points"][0]
    assert point["epoch"] == pytest.approx(5 / first["steps_per_epoch"])
    assert point["measures_seen"] == 5 * 32
    for split in curve.CURVE_SPLITS:
        assert point[split]["num_measures"] == 48
        for metric in metric_registry.METRICS:  # every metric of a result.json
            assert metric.key in point[split]
        assert point[split]["baselines"]["majority_token_accuracy"] >= 0
    # TensorBoard shows the same points.
    assert list((run / "curve_test").iterdir()) and list((run / "curve_validation").iterdir())

    # Interrupted while evaluating step 5: its checkpoint exists, its point does not.
    payload = json.loads((run / curve.CURVE_FILENAME).read_text())
    payload["points"] = []
    (run / curve.CURVE_FILENAME).write_text(json.dumps(payload))
    recorded = []
    original = curve.CurveRecorder.record

    def spy(self, model, step):
        recorded.append(step)
        return original(self, model, step)

    monkeypatch.setattr(curve.CurveRecorder, "record", spy)
    Trainer(_tiny(run, embedded_cache_dir, steps=10), progress=False).run()
    assert recorded == [5, 10]  # the restored step first, then the new point, each once
    assert [p["step"] for p in curve.read_curve(str(run))["points"]] == [5, 10]


def test_classes_input_feeds_bin_indices_and_bin_centres_stay_in_their_bin():
    config = small_config(attribute_input="classes")
    tokens = random_tokens(config.vocabulary, 64)
    model, stats = make_model(config, tokens)
    values = model.measure_attributes(tf.constant(tokens)).numpy()
    classes = model.decoder_controls(values).numpy()
    edges = np.asarray(stats["bin_edges"], np.float32)
    expected = (values[:, :, None] > edges[None]).sum(-1)
    np.testing.assert_array_equal(classes, expected)
    assert classes.min() >= 0 and classes.max() <= config.num_bins - 1
    centres = model.bin_centre_controls(values).numpy()
    np.testing.assert_array_equal(model.decoder_controls(centres).numpy(), classes)
    assert np.all(centres >= np.asarray(stats["min"]) - 1e-6) and np.all(centres <= np.asarray(stats["max"]) + 1e-6)
    continuous = make_model(small_config(), tokens)[0]
    assert not np.allclose(continuous.decoder_controls(values).numpy(), classes)
    np.testing.assert_allclose(model.mean_controls(3).numpy(), np.tile(stats["mean"], (3, 1)), rtol=1e-6)


def test_fresh_z_changes_the_discriminator_step_only():
    outs = {}
    for mode in ("fresh", "shared"):
        config = small_config(discriminator_z=mode)
        tokens = random_tokens(config.vocabulary, 32)
        model = make_model(config, tokens)[0]
        attributes = model.measure_attributes(tf.constant(tokens))
        optimizers = model.make_optimizers()
        outs[mode] = model.train_step_replica(optimizers, tf.constant(tokens), attributes,
                                              tf.constant(1, tf.int64), 32)
    assert float(outs["fresh"]["reconstruction_loss"]) == pytest.approx(float(outs["shared"]["reconstruction_loss"]))
    assert float(outs["fresh"]["discriminator_loss"]) != float(outs["shared"]["discriminator_loss"])


def test_side_information_ablation_is_reported_for_the_adversarial_model_only():
    from musicvae_xai.config import EvaluationOptions
    from musicvae_xai.evaluation import evaluate_model

    from musicvae_xai.models.base import build_model

    for model_name, expect in (("adversarial_vae", True), ("measure_vae", False)):
        config = small_config() if expect else RunConfig(model=model_name, hidden_size=16, latent_dim=6,
                                                         embedding_dim=4, seed=3)
        tokens = random_tokens(config.vocabulary, 96)
        model = make_model(config, tokens)[0] if expect else build_model(config)
        report = evaluate_model(config, model, tokens, EvaluationOptions(sweep_measures=8, sweep_steps=3),
                                train_tokens=tokens)
        summary = metric_registry.summarize_evaluation(report)
        for key in ("token_accuracy_bin_centres", "token_accuracy_train_mean"):
            assert (summary[key] is not None) == expect
            if expect:
                assert 0.0 <= summary[key] <= 1.0


def _fake_curve_study(root, models, seeds=(0, 1), adversarial_better=True, classes=False):
    """Run folders with curve.json files: both models, four genres, points at 0.6 and 6 epochs."""
    rng = np.random.default_rng(0)
    for model in models:
        for dataset in ("irish", "turkish", "classical", "pop"):
            for seed in seeds:
                run = root / f"{model}-z032-{dataset}-a4-s{seed}"
                run.mkdir(parents=True)
                points = []
                for step in (60, 600, 848):
                    gap = 0.05 if model == "adversarial_vae" and adversarial_better else 0.0
                    metrics = {"token_accuracy": 0.8 + gap + step * 1e-5 + rng.normal(0, 0.002),
                               "note_accuracy": 0.5, "leakage": 0.4 - gap, "controllability": 0.8,
                               "interpretability_mean": 0.9 if model == "measure_vae" else 0.05,
                               "interpretability": [], "kl_per_measure": 30.0,
                               "token_accuracy_bin_centres": 0.82 if model == "adversarial_vae" else None,
                               "token_accuracy_train_mean": 0.79 if model == "adversarial_vae" else None}
                    points.append({"step": step, "epoch": step / 100, "measures_seen": step * 64,
                                   "validation": dict(metrics), "test": dict(metrics)})
                (run / curve.CURVE_FILENAME).write_text(json.dumps({"format": 1, "steps_per_epoch": 100,
                                                                    "batch_size": 64, "points": points}))


def test_curves_report_gives_verdicts_at_each_point_convergence_and_the_ablation(tmp_path):
    from musicvae_xai.study import curves as curve_report

    _fake_curve_study(tmp_path / "curves", ("measure_vae", "adversarial_vae"))
    _fake_curve_study(tmp_path / "classes", ("adversarial_vae",), adversarial_better=False)
    out, figures = curve_report.write_report(str(tmp_path / "curves"), str(tmp_path / "CURVES.md"),
                                             str(tmp_path / "classes"))
    text = (tmp_path / "CURVES.md").read_text()
    assert len(figures) == 8 and all((tmp_path / "CURVES_figures" / f"{k}_epochs.png").exists()
                                     for k in ("token_accuracy", "leakage"))
    # AdversarialVAE reconstructs 0.05 better in every genre: finding 1 contradicted at 0.6 and 6 epochs.
    rows = [ln for ln in text.splitlines() if ln.startswith("| 0.6 epochs | 16 |")]
    assert rows and rows[0].split("|")[3].strip().startswith("contradicted (-0.05")
    assert "| 848 steps | 16 |" in text  # matched steps
    # The bin-index variant is assessed in its own table and reconstructs like MeasureVAE.
    assert "bin indices as the authors' script feeds them" in text
    # Convergence: validation accuracy gains 0.0054 from 0.6 to 6 epochs (its best later point): below 0.01.
    row = next(ln for ln in text.splitlines() if ln.startswith("| irish | MeasureVAE |"))
    assert row.endswith("| yes |") and float(row.split("|")[-3]) == pytest.approx(0.0054, abs=0.003)
    # The ablation table names what the decoder was given.
    assert "Adv.: bin centres" in text and "0.820" in text and "0.790" in text
    assert "**Finding 1**" in text and "keeps its sign" in text


def test_curve_scope_names_seeds_both_parts_of_finding_3_and_goes_into_the_study_report(tmp_path):
    from musicvae_xai.study import curves as curve_report
    from musicvae_xai.study import report

    _fake_curve_study(tmp_path / "curves", ("measure_vae", "adversarial_vae"))
    runs = curve_report.load_runs(str(tmp_path / "curves"))
    # MeasureVAE interpretability 0.9 in every genre: part (a) 0.9 - 0.5, part (b) pop's lead 0.
    row = next(r for r in curve_report.verdicts_at(runs, ("measure_vae", "adversarial_vae"), epochs=0.6)
               if r[0] == 3)
    assert row[2]["a"] == pytest.approx(0.4) and row[2]["b"] == pytest.approx(0.0, abs=1e-9)
    table = "\n".join(curve_report.verdict_table(runs, ("measure_vae", "adversarial_vae")))
    assert "(a +0.400, b " in table
    scope = curve_report.study_scope(str(tmp_path / "curves"))
    assert all("seeds 0, 1" in s for s in scope[:3]) and "seeds" not in scope[3]
    # Then whether each genre's cpu_v2 models had converged, and the side-information ablation's table.
    converged = next(s for s in scope if s.startswith("**Had the cpu_v2 models converged?**"))
    assert "irish: MeasureVAE yes (+0.005)" in converged
    assert any(s.startswith("| point | genre | MeasureVAE | Adv.: true attributes | Adv.: bin centres") for s in scope)
    assert scope[0].startswith("- **Finding 1**") and "contradicted at 0.6" in scope[0]
    assert "; at matched steps contradicted at 848 steps" in scope[0]  # the fake runs reach 848 steps
    text = report.build_markdown([], [], {}, "figs", str(tmp_path), scope=scope)
    assert "How far the verdicts hold with training" in text and scope[1] in text and converged in text
    with pytest.raises(report.ReportError, match="--curves_dir"):
        report._curve_scope(str(tmp_path / "empty"))
