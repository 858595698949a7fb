"""The public API at the package top (``from musicvae_xai import Explainer``), imported lazily so that
``import musicvae_xai`` does not load TensorFlow, and what the loaded objects print: model, latent
size, controls and source."""

import glob
import os
import pathlib
import re
import subprocess
import sys

import pytest

import musicvae_xai

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_import_does_not_load_tensorflow_until_a_name_is_used(tmp_path):
    code = ("import sys\n"
            "import musicvae_xai\n"
            "assert 'tensorflow' not in sys.modules, 'import musicvae_xai loaded tensorflow'\n"
            "assert 'Explainer' in dir(musicvae_xai) and 'Explainer' in musicvae_xai.__all__\n"
            "from musicvae_xai import Explainer\n"
            "assert 'tensorflow' in sys.modules and Explainer.__module__ == 'musicvae_xai.explain'\n"
            "print('ok')\n")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr


def test_every_public_name_is_the_object_of_its_module():
    from musicvae_xai import explain, serving

    assert musicvae_xai.Explainer is explain.Explainer and musicvae_xai.ExplainError is explain.ExplainError
    for name in ("LocalModel", "RestClient", "GrpcClient", "connect", "ServingError"):
        assert getattr(musicvae_xai, name) is getattr(serving, name)
    for name in musicvae_xai.__all__:
        assert getattr(musicvae_xai, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'Nonesuch'"):
        musicvae_xai.Nonesuch  # noqa: B018


def test_the_names_the_docs_import_from_the_top_exist():
    texts = [REPO_ROOT / "README.md", *map(pathlib.Path, glob.glob(str(REPO_ROOT / "docs" / "**" / "*.md"),
                                                                    recursive=True))]
    imported = set()
    for path in texts:
        text = path.read_text(encoding="utf-8")
        assert "from musicvae_xai.explain import Explainer" not in text, f"{path}: import Explainer from the top"
        for names in re.findall(r"from musicvae_xai import ([\w, ]+)", text):
            imported |= {n.strip() for n in names.split(",") if n.strip()}
    assert "Explainer" in imported
    assert imported <= set(musicvae_xai.__all__), imported - set(musicvae_xai.__all__)


CONTROLS = "controls=['z[0] rhythmic_complexity', 'z[1] note_range', 'z[2] note_density', 'z[3] average_interval_jump']"


def test_the_pretrained_explainer_and_its_model_print_what_they_hold():
    from musicvae_xai import Explainer, LocalModel, pretrained

    ex = Explainer.pretrained()
    where = pretrained.export_dir()
    assert repr(ex) == f"Explainer(model='measure_vae', latent_dim=16, {CONTROLS}, source='export {where}')"
    assert str(ex) == repr(ex)
    assert repr(ex.model) == f"ExportedVAE(model='measure_vae', latent_dim=16, {CONTROLS}, source='export {where}')"
    assert repr(LocalModel(where)) == (f"LocalModel(model='measure_vae_irish', version=1, architecture='measure_vae', "
                                       f"latent_dim=16, {CONTROLS}, source='local export {where}')")


def test_an_explainer_of_a_run_names_its_run_dir(tiny_trained_run):
    from musicvae_xai import Explainer

    ex = Explainer.from_run_dir(str(tiny_trained_run("adversarial_vae")))
    text = repr(ex)
    assert text.startswith("Explainer(model='adversarial_vae', latent_dim=6, controls=['rhythmic_complexity', ")
    assert text.endswith(f", source='run_dir {ex.config.run_dir}')")


def test_a_remote_client_shows_its_model_once_it_has_the_metadata(serving_backend):
    from serving_doubles import RestDouble

    from musicvae_xai import RestClient

    with RestDouble(serving_backend, max_lifetime=300) as double:
        client = RestClient(double.url, "adversarial_vae")
        before = repr(client)  # no request made for it
        assert before == f"RestClient(model='adversarial_vae', source='REST server {client.url}')"
        client.metadata()
        assert repr(client) == (f"RestClient(model='adversarial_vae', version=1, latent_dim=6, "
                                f"controls='4 decoder inputs', source='REST server {client.url}')")
        client = RestClient(double.url, "measure_vae", version=1)
        client.metadata()
        assert "latent_dim=6, controls='latent dims'" in repr(client)
        client.close()
