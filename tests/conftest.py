"""Shared pytest fixtures: paths to the real datasets beside the repo, quiet TensorFlow."""

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO_ROOT.parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def shared_datasets() -> pathlib.Path:
    """../shared/datasets, or skip when the checkout has no shared/ beside it."""
    if not SHARED_DATASETS.is_dir():
        pytest.skip("../shared/datasets is not present beside this checkout")
    return SHARED_DATASETS


# ---------------------------------------------------------------------------------------------------
# Tiny trained runs for the consumers of a trained model (evaluation, analysis, the explain API)


@pytest.fixture(scope="session")
def embedded_cache_dir(tmp_path_factory) -> pathlib.Path:
    """A dataset cache folder shared by the tiny runs (the embedded dataset is built into it once)."""
    return tmp_path_factory.mktemp("embedded_cache")


@pytest.fixture(scope="session")
def tiny_trained_run(tmp_path_factory, embedded_cache_dir):
    """``get(model="measure_vae") -> run_dir``: a finished run of a tiny model (hidden 16, latent 6,
    4 steps) on the embedded dataset without transposition, trained once per session and model.
    Skips when the model's module does not exist yet."""
    runs = {}

    def get(model: str = "measure_vae") -> pathlib.Path:
        if model not in runs:
            import importlib.util

            if importlib.util.find_spec(f"musicvae_xai.models.{model}") is None:
                pytest.skip(f"musicvae_xai.models.{model} does not exist")
            from musicvae_xai.config import RunConfig
            from musicvae_xai.training.loop import Trainer

            run_dir = tmp_path_factory.mktemp(f"tiny_{model}")
            config = RunConfig(model=model, dataset="embedded", cache_dir=str(embedded_cache_dir),
                               run_dir=str(run_dir), hidden_size=16, latent_dim=6, embedding_dim=4,
                               discriminator_hidden=16, batch_size=32, train_steps=4, checkpoint_every=4,
                               eval_every=1000, transpose=False, xla=False, seed=1)
            Trainer(config, progress=False).run()
            runs[model] = run_dir
        return runs[model]

    return get


# ---------------------------------------------------------------------------------------------------
# Exports of the tiny runs, and a TF-Serving stand-in loaded with them (export and serving tests)


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory, tiny_trained_run):
    """``get(model="measure_vae") -> export base`` (``<tmp>/<model>/1``): the tiny run of that model
    exported once per session (without the reload check, which the export tests run themselves)."""
    exports = {}
    root = tmp_path_factory.mktemp("exports")

    def get(model: str = "measure_vae") -> pathlib.Path:
        if model not in exports:
            from musicvae_xai.export import export_run

            run_dir = tiny_trained_run(model)
            export_run(str(run_dir), str(root / model), verify=False)
            exports[model] = root / model
        return exports[model]

    return get


@pytest.fixture(scope="session")
def serving_backend(tiny_export):
    """``SavedModelBackend`` of ``tests/serving_doubles.py`` serving both tiny exports under their model
    names, loaded through TF's C++ SavedModel loader as TF-Serving does."""
    from serving_doubles import SavedModelBackend

    backend = SavedModelBackend({m: str(tiny_export(m)) for m in ("measure_vae", "adversarial_vae")})
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def local_model(tiny_export):
    """``get(model) -> LocalModel`` of that tiny export, loaded once per session."""
    loaded = {}

    def get(model: str = "measure_vae"):
        if model not in loaded:
            from musicvae_xai.serving.local import LocalModel
            loaded[model] = LocalModel(str(tiny_export(model)))
        return loaded[model]

    return get


@pytest.fixture(scope="session")
def reference(local_model):
    """``get(model, seed) -> {verb: outputs}``: ``serving_doubles.call_every_verb`` on the LocalModel,
    computed once per session, what every remote client must reproduce."""
    cache = {}

    def get(model: str, seed: int = 0) -> dict:
        if (model, seed) not in cache:
            from serving_helpers import call_every_verb
            cache[model, seed] = call_every_verb(local_model(model), seed=seed)
        return cache[model, seed]

    return get
