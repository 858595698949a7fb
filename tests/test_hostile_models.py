"""Hostile models: a damaged export (the shipped one, truncated, bit-flipped, garbage, a config.json
that is a folder or a FIFO), a configuration that disagrees with its checkpoint, and sizes with no
sensible bound. Each gives one line naming the file or setting, and nothing hangs."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from musicvae_xai.config import ConfigError, RunConfig


def damage(export, how: str):
    variables = export / "variables" / "variables.data-00000-of-00001"
    config = export / "assets.extra" / "config.json"
    if how == "truncated variables":
        with open(variables, "r+b") as f:
            f.truncate(variables.stat().st_size // 2)
    elif how == "bit-flipped variables":
        data = bytearray(variables.read_bytes())
        data[len(data) // 2] ^= 0xFF
        variables.write_bytes(bytes(data))
    elif how == "garbage variables index":
        (export / "variables" / "variables.index").write_bytes(os.urandom(3000))
    elif how == "garbage saved_model.pb":
        (export / "saved_model.pb").write_bytes(os.urandom(5000))
    elif how == "config.json a folder":
        config.unlink()
        config.mkdir()
    elif how == "config.json a FIFO":
        config.unlink()
        os.mkfifo(config)
    elif how == "garbage config.json":
        config.write_text("{garbage")


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("how, names", [
    ("truncated variables", "variables: cannot be restored"),
    ("bit-flipped variables", "variables: cannot be restored"),
    ("garbage variables index", "variables: cannot be restored"),
    ("garbage saved_model.pb", "saved_model.pb: not a SavedModel"),
    ("config.json a folder", "config.json: not a regular file"),
    ("config.json a FIFO", "config.json: not a regular file"),
    ("garbage config.json", "config.json: not valid JSON"),
])
def test_a_damaged_export_is_one_line_naming_the_file(tmp_path, how, names):
    from musicvae_xai import pretrained
    from musicvae_xai.explain import Explainer

    export = tmp_path / "measure_vae_irish" / "1"
    shutil.copytree(pretrained.export_dir(), export)
    damage(export, how)
    with pytest.raises(ConfigError) as e:
        Explainer.from_export(str(export))
    message = str(e.value)
    assert names in message and str(export) in message and "\n" not in message and "damaged" in message


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_config_that_disagrees_with_its_checkpoint_is_one_line(tiny_trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_trained_run(), run)
    config = json.loads((run / "config.json").read_text())
    config["latent_dim"] = config["latent_dim"] + 2
    (run / "config.json").write_text(json.dumps(config))
    r = subprocess.run([sys.executable, "-m", "musicvae_xai.cli.evaluate", f"--run_dir={run}"], capture_output=True,
                       text=True, timeout=500, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode != 0 and len(lines) == 1, r.stderr[-3000:]
    assert "the checkpoint does not match config.json" in lines[0] and str(run) in lines[0]


@pytest.mark.parametrize("field, value", [("hidden_size", 10 ** 6), ("embedding_dim", 10 ** 6), ("num_layers", 1000),
                                          ("discriminator_hidden", 10 ** 6), ("discriminator_layers", 1000),
                                          ("adversarial_encoder_layers", 1000), ("num_bins", 10 ** 6),
                                          ("batch_size", 10 ** 9)])
def test_sizes_have_an_upper_bound(field, value):
    with pytest.raises(ConfigError, match=f"{field} must be in \\[.*, got {value}"):
        # the discriminator's and encoder's sizes are AdversarialVAE's own settings
        RunConfig(model="adversarial_vae", **{field: value}).validate()


@pytest.mark.timeout(120)
def test_a_huge_hidden_size_is_refused_before_any_allocation():
    r = subprocess.run([sys.executable, "-m", "musicvae_xai.cli.train", "--config=quickstart",
                        "--hidden_size=1000000", "--run_dir=/nonexistent/never"], capture_output=True, text=True,
                       timeout=100, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 1 and lines == ["error: hidden_size must be in [1, 8192], got 1000000"], r.stderr[-2000:]
