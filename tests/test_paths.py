"""Paths as a user gives them: a relative ``--run_dir`` resumed, a configuration name beside a folder of
the same name, and the datasets cache located by one environment variable or flag."""

import logging
import os
import subprocess
import sys

import pytest

from musicvae_xai import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_checkpoints_of_a_relative_run_dir_are_not_doubled(tmp_path, monkeypatch):
    from musicvae_xai.training.checkpoints import checkpoint_candidates

    monkeypatch.chdir(tmp_path)
    run_dir = os.path.join("runs", "quickstart")
    os.makedirs(run_dir)
    for step in (2, 4):
        open(os.path.join(run_dir, f"ckpt-{step}.index"), "w").close()
    with open(os.path.join(run_dir, "checkpoint"), "w") as f:  # as tf.train.CheckpointManager writes it
        f.write('model_checkpoint_path: "ckpt-4"\nall_model_checkpoint_paths: "ckpt-2"\n'
                'all_model_checkpoint_paths: "ckpt-4"\n')
    assert checkpoint_candidates(run_dir) == [os.path.join(run_dir, "ckpt-4"), os.path.join(run_dir, "ckpt-2")]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_relative_run_dir_resumes_without_false_warnings(tmp_path, monkeypatch, embedded_cache_dir, caplog):
    from musicvae_xai.config import RunConfig
    from musicvae_xai.training.loop import Trainer

    monkeypatch.chdir(tmp_path)
    config = RunConfig(model="measure_vae", dataset="embedded", cache_dir=str(embedded_cache_dir),
                       run_dir=os.path.join("runs", "quickstart"), hidden_size=16, latent_dim=6, embedding_dim=4,
                       num_layers=1, batch_size=32, train_steps=2, checkpoint_every=2, eval_every=1000,
                       transpose=False, xla=False, seed=3, eval_summaries=False)
    Trainer(config).run()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        Trainer(RunConfig(**{**config.to_dict(), "train_steps": 4})).run()
    text = caplog.text
    assert "does not restore" not in text and "runs/quickstart/runs" not in text, text[-2000:]
    assert os.path.exists(os.path.join("runs", "quickstart", "ckpt-4.index"))


def test_a_name_beside_a_folder_of_that_name_is_the_shipped_configuration(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "quickstart").mkdir()  # e.g. inside runs/, after training the quickstart
    shipped = os.path.join(cli.configs_dir(), "quickstart.flags")
    assert cli.resolve_config("quickstart") == shipped
    assert cli.resolve_argv(["prog", "--flagfile=quickstart"]) == ["prog", f"--flagfile={shipped}"]
    own = tmp_path / "mine.flags"
    own.write_text("--train_steps=3\n")
    assert cli.resolve_config(str(own)) == str(own)  # a file is a path


def test_the_cache_location_is_set_by_one_environment_variable(tmp_path):
    code = ("from musicvae_xai.datasets.config import DEFAULT_CACHE_DIR; print(DEFAULT_CACHE_DIR); "
            "from musicvae_xai.config import RunConfig; from musicvae_xai.settings import help_texts; "
            "print(help_texts(RunConfig)['cache_dir'])")
    env = dict(os.environ, PYTHONPATH=REPO, MUSICVAE_XAI_CACHE=str(tmp_path / "cache"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    default, helptext = out.splitlines()
    assert default == str(tmp_path / "cache") and "$MUSICVAE_XAI_CACHE" in helptext
    env.pop("MUSICVAE_XAI_CACHE")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.splitlines()[0] == os.path.join(os.path.expanduser("~"), ".cache", "musicvae_xai")
