"""musicvae_xai.serving.local: LocalModel runs an export in-process behind the shared interface."""

import os

import numpy as np
import pytest

from musicvae_xai.serving import ServingError
from musicvae_xai.serving.local import resolve_export_dir


@pytest.fixture(scope="module")
def local_models(local_model):
    return {m: local_model(m) for m in ("measure_vae", "adversarial_vae")}


def test_export_base_resolves_to_newest_version(tiny_export, tmp_path):
    base = str(tiny_export("measure_vae"))
    assert resolve_export_dir(base) == os.path.join(base, "1")
    assert resolve_export_dir(os.path.join(base, "1")) == os.path.join(base, "1")
    with pytest.raises(FileNotFoundError, match="no SavedModel"):
        resolve_export_dir(str(tmp_path))


@pytest.mark.parametrize("model_name", ["measure_vae", "adversarial_vae"])
def test_metadata_assets_and_outputs(model_name, local_models, reference):
    local = local_models[model_name]
    meta = local.metadata()
    assert meta["model"] == model_name and meta["version"] == 1
    assert set(meta["signatures"]) == {"encode", "decode", "reconstruct", "traverse", "sample", "serving_default"}
    assert local.assets["export"]["model_name"] == model_name
    assert set(local.assets) >= {"config", "vocabulary", "attributes", "controls", "export"}
    out = reference(model_name)
    k = len(local.assets["attributes"]["names"])
    assert out["encode"]["z_mean"].shape == (3, 6) and out["encode"]["attributes"].shape == (3, k)
    assert out["decode"]["probabilities"].shape == (3, 24, local.assets["vocabulary"]["size"])
    np.testing.assert_allclose(out["decode"]["probabilities"].sum(-1), 1.0, rtol=1e-5)
    assert out["traverse"]["tokens"].shape == (3, 3, 24) and out["traverse"]["attributes"].shape == (3, 3, k)
    np.testing.assert_array_equal(out["reconstruct"]["tokens"], out["serving_default"]["tokens"])
    assert out["sample"]["tokens"].dtype == np.int32


def test_errors_name_the_export_signature_and_input(local_models):
    local = local_models["measure_vae"]
    where = f"local export {local.export_dir}, model 'measure_vae'"
    with pytest.raises(ServingError, match=rf"{where}, signature 'decode', input 'z': expected float32 \[B, 6\], "
                                           r"got shape \[2, 5\]"):
        local.decode(np.zeros((2, 5)))
    with pytest.raises(ServingError, match=r"signature 'nope': unknown signature; this model offers decode, encode"):
        local.predict("nope", {"tokens": np.zeros((1, 24), int)})
    with pytest.raises(ServingError, match=r"signature 'encode': assertion failed: \[input tokens: token ids must "
                                           r"be in \[0, 34\)"):
        local.encode(np.full((1, 24), 99))
    adversarial = local_models["adversarial_vae"]
    with pytest.raises(ServingError, match=r"input 'controls': this model decodes with controls: pass controls "
                                           r"float32 \[B, 4\]"):
        adversarial.decode(np.zeros((1, 6), np.float32))
