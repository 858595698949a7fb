"""The pretrained MeasureVAE shipped in the package (musicvae_xai/pretrained): it loads through
``Explainer.pretrained()``, the explorer opens it by default, its flagfile reproduces its saved
configuration, and on a fixed subset of its test split (tests/fixtures/pretrained_irish_test.npz, see
tests/fixtures/README.md) it meets the figures the package promises (every attribute's R^2 on
its own latent dim >= 0.8, controllability >= 0.85) and the figures measured when it was built."""

import json
import os
import pathlib

import numpy as np
import pytest

from musicvae_xai import inference, pretrained
from musicvae_xai.cli import configs_dir
from musicvae_xai.evaluation import evaluate_model
from musicvae_xai.explain import Explainer

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "pretrained_irish_test.npz"


@pytest.fixture(scope="module")
def explainer():
    return Explainer.pretrained()


@pytest.fixture(scope="module")
def fixture_tokens():
    with np.load(FIXTURE) as data:
        return data["tokens"].astype(np.int32), data["rows"]


def test_the_fixture_is_the_documented_subset_of_the_test_split(fixture_tokens):
    tokens, rows = fixture_tokens
    shipped = pretrained.figures()["fixture"]
    assert tokens.shape == (pretrained.FIXTURE_MEASURES, 24) == (shipped["num_measures"], 24)
    expected = inference.subsample(shipped["rows_of_test_split"], pretrained.FIXTURE_MEASURES, pretrained.FIXTURE_SEED)
    np.testing.assert_array_equal(rows, expected)


def test_the_shipped_model_meets_its_figures_on_the_fixture(explainer, fixture_tokens):
    tokens, _ = fixture_tokens
    report = evaluate_model(explainer.config, explainer.model, tokens, pretrained.fixture_options(),
                            runner=explainer.runner)
    got = pretrained.summarise(report)
    assert pretrained.shortfalls(got) == [], got
    # The figures measured when the model was built, on the same measures (to round-off: another CPU
    # type may decode a few measures differently).
    shipped = pretrained.figures()["fixture"]
    for name, r2 in got["r2_own_dim"].items():
        assert r2 == pytest.approx(shipped["r2_own_dim"][name], abs=0.02), name
    assert got["controllability"] == pytest.approx(shipped["controllability"], abs=0.02)
    assert got["note_accuracy"] == pytest.approx(shipped["note_accuracy"], abs=0.02)
    # Far better than predicting the most frequent token of each tick (fitted on the training split).
    assert got["token_accuracy"] > shipped["per_tick_token_accuracy"] + 0.05
    assert got["note_accuracy"] > shipped["per_tick_note_accuracy"] + 0.2


def test_the_explainer_runs_the_export_the_explorer_opens(explainer, fixture_tokens):
    assert pretrained.explorer_export(None, None) == pretrained.export_dir()
    assert pretrained.explorer_export("elsewhere", None) == "elsewhere"
    assert pretrained.explorer_export(None, "http://localhost:8501") is None
    assert explainer.config.dataset == "irish" and explainer.config.model == "measure_vae"
    assert [c.name for c in explainer.controls] == ["z[0]", "z[1]", "z[2]", "z[3]"]
    tokens = fixture_tokens[0][:8]
    sweep = explainer.traverse(explainer.encode(tokens), "note_density", steps=5)
    density = sweep.attributes[..., sweep.attribute_index("note_density")]
    assert (density[:, -1] > density[:, 0]).mean() >= 0.75  # pushing z[2] up adds notes


def test_the_export_is_small_and_its_flagfile_reproduces_its_configuration():
    folder = pathlib.Path(pretrained.export_dir())
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    assert size <= 8 * 2 ** 20, size
    with open(folder / "assets.extra" / "config.json", encoding="utf-8") as f:
        saved = json.load(f)
    flags = {}
    with open(os.path.join(configs_dir(), f"{pretrained.CONFIG}.flags"), encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith("--"):
                key, _, value = line[2:].partition("=")
                if not _ and key.startswith("no"):
                    key, value = key[2:], "false"
                flags[key] = value or "true"
    for key in ("data_root", "run_dir"):  # where the data and the run are, not what was trained
        flags.pop(key, None)
    assert flags, "no flags read"
    for key, value in flags.items():
        assert key in saved, key
        want = saved[key]
        if isinstance(want, bool):
            assert value == str(want).lower(), key
        elif isinstance(want, list):
            assert value.split(",") == want, key
        elif isinstance(want, (int, float)):
            assert float(value) == pytest.approx(want), key
        else:
            assert value == want, key


@pytest.mark.parametrize("model", ["measure_vae", "adversarial_vae"])
def test_any_export_explains_as_the_run_it_came_from(tiny_trained_run, tiny_export, model):
    """``Explainer.from_export`` (the serving signatures behind ``ExportedVAE``) gives what
    ``Explainer.from_run_dir`` (the Keras model) gives: codes, decodings, sweeps and their controls."""
    run, exported = Explainer.from_run_dir(tiny_trained_run(model)), Explainer.from_export(str(tiny_export(model)))
    assert exported.config == run.config
    assert exported.controls == run.controls and exported.attribute_names == run.attribute_names
    tokens = inference.split_tokens(run.config, "test")[:10]
    a, b = run.encode(tokens), exported.encode(tokens)
    np.testing.assert_allclose(b.z_mean, a.z_mean, atol=1e-5)
    np.testing.assert_allclose(b.z_scale, a.z_scale, atol=1e-5)
    if a.controls is None:
        assert b.controls is None
    else:
        np.testing.assert_allclose(b.controls, a.controls, atol=1e-6)
    np.testing.assert_array_equal(exported.decode(a.z, a.controls), run.decode(a.z, a.controls))
    control = run.controls[-1].attribute
    np.testing.assert_array_equal(exported.traverse(a, control, steps=4).tokens,
                                  run.traverse(a, control, steps=4).tokens)
    with pytest.raises(ValueError, match="tokens must have shape"):
        exported.encode(np.zeros((2, 5), np.int32))
