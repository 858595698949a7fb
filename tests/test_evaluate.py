"""Evaluation (musicvae_xai.evaluation and the musicvae_xai.evaluate command line) on tiny trained runs."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

from musicvae_xai.config import MODEL_VERSION

from musicvae_xai import evaluation, inference, token_accuracy
from musicvae_xai.config import ConfigError
from musicvae_xai.evaluation import EvaluationOptions, evaluate_run, format_report
from musicvae_xai.representation import Vocabulary

REPO = pathlib.Path(__file__).resolve().parents[1]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}
MODELS = ["measure_vae", "adversarial_vae"]
SMALL = dict(max_measures=48, sweep_measures=3, sweep_steps=4, seed=3)
TOP_KEYS = {"model", "dataset", "split", "seed", "num_measures", "latent_dim", "attributes", "token_accuracy",
            "note_accuracy", "token_accuracy_mean_z", "note_accuracy_mean_z", "kl_per_measure", "kl_per_dim",
            "interpretability", "mig", "sap", "scc", "modularity", "modularity_mi_weighted", "mutual_information",
            "baselines", "attribute_independence", "notes", "run_dir", "checkpoint"}
#: The decoder-input model's accuracies with its attributes replaced (``evaluation.side_information``).
SIDE_INFORMATION_KEYS = {"token_accuracy_bin_centres", "token_accuracy_train_mean"}
BASELINE_KEYS = {"majority_token", "majority_token_accuracy", "majority_note_accuracy",
                 "per_tick_majority_token_accuracy", "per_tick_majority_note_accuracy", "measures",
                 "train_measures"}


@pytest.fixture(scope="module", params=MODELS)
def evaluated(request, tiny_trained_run):
    run_dir = tiny_trained_run(request.param)
    return run_dir, evaluate_run(str(run_dir), EvaluationOptions(**SMALL))


def test_report_keys_types_and_ranges(evaluated):
    run_dir, report = evaluated
    assert set(report) == TOP_KEYS | (SIDE_INFORMATION_KEYS if report["model"] == "adversarial_vae" else set())
    assert json.loads(json.dumps(report)) == report
    assert report["num_measures"] == 48 and report["split"] == "test" and report["seed"] == 3
    assert report["checkpoint"] == "ckpt-4" and report["run_dir"] == str(run_dir)
    for key in ("token_accuracy", "note_accuracy", "token_accuracy_mean_z", "note_accuracy_mean_z",
                "sap", "scc", "modularity", "modularity_mi_weighted"):
        assert 0.0 <= report[key] <= 1.0, key
    assert report["mig"] >= 0.0       # unclipped: estimator noise may take it above 1
    assert set(report["baselines"]) == BASELINE_KEYS
    z_dim, names = report["latent_dim"], report["attributes"]
    assert len(report["kl_per_dim"]) == z_dim and min(report["kl_per_dim"]) >= 0
    assert report["kl_per_measure"] == pytest.approx(sum(report["kl_per_dim"]), rel=1e-4)
    assert np.array(report["mutual_information"]).shape == (z_dim, len(names))
    rows = report["interpretability"]["per_attribute"]
    assert [r["attribute"] for r in rows] == names
    ind = report["attribute_independence"]
    c = len(ind["controls"])
    assert np.array(ind["matrix"]).shape == (c, len(ind["attributes"]))
    assert ind["attributes"][:c] == [ctrl["attribute"] for ctrl in ind["controls"]]
    assert len(ind["values"]) == c and all(len(v) == 4 for v in ind["values"])
    assert ind["num_measures"] == 3
    assert 0 <= ind["controllability"] <= 1 and 0 <= ind["leakage"] <= 1


def test_intended_dims_follow_the_controls(evaluated):
    _, report = evaluated
    controls = report["attribute_independence"]["controls"]
    rows = report["interpretability"]["per_attribute"]
    latent = {c["attribute"]: c["index"] for c in controls if c["kind"] == "latent_dim"}
    assert [r["intended_dim"] for r in rows] == [latent.get(r["attribute"]) for r in rows]
    if report["model"] == "measure_vae":
        assert [r["intended_dim"] for r in rows] == [0, 1, 2, 3]
        assert report["notes"] == []
    else:  # no latent-dim controls: nothing is intended, and the report says why
        assert all(r["is_intended"] is None for r in rows)
        assert report["interpretability"]["intended_fraction"] is None
        assert report["notes"] == [evaluation.NO_LATENT_CONTROL_NOTE]


def test_same_seed_same_report_other_seed_other_sample(evaluated):
    run_dir, report = evaluated
    again = evaluate_run(str(run_dir), EvaluationOptions(**SMALL))
    assert again == report
    other = evaluate_run(str(run_dir), EvaluationOptions(**{**SMALL, "seed": 4}))
    assert other["mutual_information"] != report["mutual_information"]


def test_printed_table_names_every_metric(evaluated):
    _, report = evaluated
    table = format_report(report)
    for text in ("token accuracy", "note accuracy (ticks whose target is a pitch or rest)", "KL per measure",
                 "Interpretability", "MIG", "SAP", "SCC", "modularity", "MI-weighted", "controllability",
                 "leakage", "rhythmic complexity", "average interval jump", "majority", "per-tick",
                 f"({report['baselines']['majority_token']})"):
        assert text in table, text
    base = report["baselines"]
    row = next(line for line in table.splitlines() if line.startswith("  token accuracy"))
    assert row.split()[-2:] == [f"{base['majority_token_accuracy']:.3f}",
                                f"{base['per_tick_majority_token_accuracy']:.3f}"]
    for c in report["attribute_independence"]["controls"]:    # one matrix row per control
        head = c["name"] if c["kind"] == "latent_dim" else f"{evaluation._short(c['attribute'])} input"
        assert f"\n  {head}" in table, head


def test_baselines_are_scored_on_the_evaluated_measures(evaluated):
    run_dir, report = evaluated
    config, _ = inference.load_run(str(run_dir))
    test = inference.split_tokens(config, "test")
    train = inference.split_tokens(config, "train")
    scored = test[inference.subsample(len(test), SMALL["max_measures"], SMALL["seed"])]
    expected = token_accuracy.majority_baselines(train, scored, config.vocabulary)
    assert report["baselines"] == expected
    assert report["baselines"]["measures"] == report["num_measures"] == 48
    # Another split: the same training-fitted predictors, scored on that split's measures.
    val = evaluate_run(str(run_dir), EvaluationOptions(**{**SMALL, "split": "validation"}))
    validation = inference.split_tokens(config, "validation")
    scored_val = validation[inference.subsample(len(validation), SMALL["max_measures"], SMALL["seed"])]
    assert val["baselines"] == token_accuracy.majority_baselines(train, scored_val, config.vocabulary)
    assert val["baselines"]["majority_token"] == report["baselines"]["majority_token"]
    assert val["baselines"] != report["baselines"]


def test_evaluate_model_without_training_tokens_says_so(evaluated):
    run_dir, report = evaluated
    config, model = inference.load_run(str(run_dir))
    tokens = inference.split_tokens(config, "test")
    alone = evaluation.evaluate_model(config, model, tokens, EvaluationOptions(**SMALL))
    assert alone["baselines"] is None and alone["notes"][-1] == evaluation.NO_BASELINE_NOTE
    assert alone["token_accuracy"] == report["token_accuracy"]
    assert "majority" in format_report(alone)


class _FakeRunner:
    """Decodes every code to fixed tokens: what reconstruction() sees from a model."""

    vocabulary = Vocabulary()

    def __init__(self, decoded):
        self.decoded = decoded

    def decode(self, z, controls=None):
        return self.decoded


def test_note_accuracy_ignores_hold_and_padding_ticks():
    v = Vocabulary()
    target = np.full((2, 24), v.hold_id, np.int32)
    target[:, ::6] = v.encode([60])[0]               # 4 onsets per measure, 20 holds
    decoded = np.full((2, 24), v.hold_id, np.int32)  # every hold right, every onset wrong
    out = evaluation.reconstruction(_FakeRunner(decoded), target, np.zeros((2, 3)), np.zeros((2, 3)), None)
    assert out["token_accuracy"] == pytest.approx(20 / 24)
    assert out["note_accuracy"] == 0.0
    # The first measure opens a piece (start padding before its onset), the second ends one (end padding
    # after a rest); the decoder gets every note tick right and every padding tick wrong.
    target[0, :6] = v.start_id
    target[1, 12] = v.rest_id
    target[1, 13:] = v.end_id
    decoded = target.copy()
    decoded[target == v.start_id] = v.end_id
    decoded[target == v.end_id] = v.hold_id
    out = evaluation.reconstruction(_FakeRunner(decoded), target, np.zeros((2, 3)), np.zeros((2, 3)), None)
    assert out["note_accuracy"] == 1.0                # 3 + 3 note ticks (pitches and the rest), all right
    assert out["token_accuracy"] == pytest.approx((48 - 6 - 11) / 48)
    out = evaluation.reconstruction(_FakeRunner(target), target, np.zeros((2, 3)), np.zeros((2, 3)), None)
    assert out["token_accuracy"] == out["note_accuracy_mean_z"] == 1.0


def test_bad_runs_raise_one_line(tmp_path, tiny_trained_run):
    with pytest.raises(ConfigError, match="does not exist"):
        evaluate_run(str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="no saved configuration"):
        evaluate_run(str(tmp_path))
    run = tmp_path / "copy"
    shutil.copytree(tiny_trained_run("measure_vae"), run)
    os.remove(run / "FINISHED")
    with pytest.raises(ConfigError, match="training has not finished"):
        evaluate_run(str(run))
    report = evaluate_run(str(run), EvaluationOptions(**SMALL, expect_finished=False))
    assert report["num_measures"] == 48
    for f in run.glob("ckpt-*"):
        f.unlink()
    (run / "checkpoint").unlink()
    with pytest.raises(ConfigError, match="no checkpoint found"):
        evaluate_run(str(run), EvaluationOptions(expect_finished=False))
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        evaluate_run(str(tiny_trained_run("measure_vae")), EvaluationOptions(split="dev"))
    with pytest.raises(ValueError, match="sweep_steps must be at least 2"):
        EvaluationOptions(sweep_steps=1).validate()


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "musicvae_xai.evaluate", *args], capture_output=True, text=True,
                          env=ENV, cwd=REPO, timeout=600)


@pytest.mark.slow
def test_cli_writes_json_and_prints_the_table(tiny_trained_run, tmp_path):
    run_dir = tiny_trained_run("measure_vae")
    out = tmp_path / "reports" / "eval.json"
    proc = run_cli(f"--run_dir={run_dir}", f"--output={out}", "--max_measures=48", "--sweep_measures=3",
                   "--sweep_steps=4", "--seed=3")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "controllability" in proc.stdout and f"wrote {out}" in proc.stdout
    report = json.loads(out.read_text())
    assert set(report) == TOP_KEYS
    assert report == evaluate_run(str(run_dir), EvaluationOptions(**SMALL))


def test_cli_without_a_checkpoint_exits_with_one_line(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model": "measure_vae", "hidden_size": 16,
                                                        "model_version": MODEL_VERSION}))
    proc = run_cli(f"--run_dir={tmp_path}")
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {tmp_path}: no checkpoint found (has training run?)"]
    assert not (tmp_path / "evaluation_test.json").exists()
