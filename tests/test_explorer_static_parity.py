"""The model in the browser agrees with the SavedModel: the static site's TensorFlow.js forward pass
(musicvae_xai/explorer/web/musicvae.js) against the export's own signatures, in headless Chromium, on
the 512 fixed test measures of the pretrained MeasureVAE and on a tiny trained AdversarialVAE: the
latent means within 1e-4 and the greedy tokens identical on at least 99% of the measures (decode from
the SavedModel's latent means), traversals likewise, on the WebAssembly backend the page picks and
on the JavaScript CPU backend it falls back to."""

import os

import numpy as np
import pytest
from static_browser import chromium, open_site

from musicvae_xai import pretrained
from musicvae_xai.explorer.static_site import build_site
from musicvae_xai.serving.local import LocalModel, resolve_export_dir

pytestmark = pytest.mark.slow
FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "pretrained_irish_test.npz")
MAX_Z_DIFF, MIN_SAME = 1e-4, 0.99


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def _fixture_tokens() -> np.ndarray:
    return np.load(FIXTURE)["tokens"].astype(np.int32)


def _browser_run(page, tokens, z, controls, control, values) -> dict:
    """encode(tokens), decode(z, controls) and traverse(tokens[:16], control, values) in the page."""
    return page.evaluate(
        """([tokens, z, controls, control, values]) => {
             const m = window.staticExplorer.model;
             const enc = m.encode(tokens);
             const dec = m.decode(z, controls, true);
             const conf = dec.probabilities.map((p, b) => p.map((row, t) => row[dec.tokens[b][t]]));
             const tr = m.traverse(tokens.slice(0, 16), control, values);
             return {z: enc.zMean, scale: enc.zScale, attributes: enc.attributes, tokens: dec.tokens,
                     confidence: conf, traverse: tr.tokens, traverse_attributes: tr.attributes};
           }""", [tokens.tolist(), z.tolist(), None if controls is None else controls.tolist(), control, values])


def _compare(model, site: str, browser, tokens: np.ndarray, query: str = "") -> dict:
    """Runs the SavedModel (a ``LocalModel``) and the page on the same inputs; returns the figures and
    asserts the bounds."""
    needs_controls = bool(model.assets["export"]["needs_controls"])
    enc = model.encode(tokens)
    z = np.asarray(enc["z_mean"], np.float32)
    controls = np.array(enc["attributes"], np.float32) if needs_controls else None  # a copy: changed below
    if needs_controls:  # a quarter of the rows asks for other attribute values (some outside the range)
        rng = np.random.default_rng(0)
        controls[::4] += rng.normal(0.0, 1.0, controls[::4].shape).astype(np.float32) * controls.std(0)
    dec = model.decode(z, controls)
    values = np.linspace(-2.0, 2.0, 5).astype(np.float32) if not needs_controls else np.linspace(
        model.assets["controls"]["controls"][0]["low"], model.assets["controls"]["controls"][0]["high"], 5
    ).astype(np.float32)
    trav = model.traverse(tokens[:16], 0, values)
    with open_site(browser, site, query) as (page, errors):
        got = _browser_run(page, tokens, z, controls, 0, values.tolist())
        assert not errors, errors
    same = (np.asarray(got["tokens"]) == np.asarray(dec["tokens"])).all(axis=1).mean()
    z_diff = np.abs(np.asarray(got["z"]) - z).max()
    figures = {"measures": len(tokens), "same_tokens": float(same), "max_z_diff": float(z_diff),
               "max_scale_diff": float(np.abs(np.asarray(got["scale"]) - np.asarray(enc["z_scale"])).max()),
               "traverse_same": float((np.asarray(got["traverse"]) == np.asarray(trav["tokens"])).all(-1).mean())}
    print(f"{model.export_dir}{query}: {figures}")
    assert z_diff <= MAX_Z_DIFF
    assert figures["max_scale_diff"] <= MAX_Z_DIFF * 10
    assert same >= MIN_SAME
    assert figures["traverse_same"] >= MIN_SAME
    np.testing.assert_allclose(got["attributes"], enc["attributes"], atol=1e-5)
    np.testing.assert_allclose(got["traverse_attributes"], trav["attributes"], atol=1e-5)
    # the probability of each chosen token, as the SavedModel gives it
    probs = np.take_along_axis(np.asarray(dec["probabilities"]), np.asarray(dec["tokens"])[..., None], -1)[..., 0]
    rows = (np.asarray(got["tokens"]) == np.asarray(dec["tokens"])).all(axis=1)
    np.testing.assert_allclose(np.asarray(got["confidence"])[rows], probs[rows], atol=1e-4)
    return figures


def test_pretrained_measure_vae_in_the_browser_matches_the_savedmodel(browser, tmp_path):
    site = str(tmp_path / "site")
    build_site(site)
    tokens = _fixture_tokens()
    assert len(tokens) == pretrained.FIXTURE_MEASURES
    model = LocalModel(pretrained.export_dir())
    _compare(model, site, browser, tokens)
    _compare(model, site, browser, tokens[:16], query="?backend=cpu")


def test_adversarial_vae_in_the_browser_matches_the_savedmodel(browser, tiny_export, tmp_path):
    export_dir = resolve_export_dir(str(tiny_export("adversarial_vae")))
    site = str(tmp_path / "site")
    build_site(site, export_dir)
    model = LocalModel(export_dir)
    _compare(model, site, browser, _fixture_tokens())
    _compare(model, site, browser, _fixture_tokens()[:16], query="?backend=cpu")
