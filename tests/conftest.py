"""Shared pytest fixtures: paths to the real datasets beside the repo, quiet TensorFlow, and tiny trained
runs and exports built once per test run (shared by every pytest-xdist worker of that run)."""

import contextlib
import fcntl
import os
import pathlib
import shutil

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
# Built once per test run: one folder that every xdist worker of the run sees, and a file lock per thing
# built in it (the first worker to ask builds it, the others wait for it and reuse it).


def shared_root(tmp_path_factory) -> pathlib.Path:
    """``<basetemp>/shared`` without xdist; under xdist the workers' basetemps are ``<run>/popen-gwN``,
    so their common parent ``<run>`` (this run's own, numbered by pytest) holds the shared folder."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    root = base / "shared"
    root.mkdir(exist_ok=True)
    return root


@contextlib.contextmanager
def _locked(path: pathlib.Path):
    """An exclusive ``fcntl.flock`` on ``path`` (created if missing), released on exit or process death."""
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def build_once(root: pathlib.Path, name: str, build) -> pathlib.Path:
    """``root/name``, made by ``build(folder)`` exactly once per test run whichever worker asks first; a
    build that raised is retried (from an empty folder) by the next asker, which sees the same error.
    Users must not modify what they get (copy it first)."""
    folder, done = root / name, root / f"{name}.done"
    with _locked(root / f"{name}.lock"):
        if not done.exists():
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir()
            build(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def once_per_run(tmp_path_factory):
    """``get(name, build) -> folder``: ``build_once`` in this run's shared folder, for a test module's
    own expensive, read-only fixture (trained once per run however many xdist workers use it)."""
    root = shared_root(tmp_path_factory)
    return lambda name, build: build_once(root, name, build)


# ---------------------------------------------------------------------------------------------------
# Tiny trained runs for the consumers of a trained model (evaluation, analysis, the explain API)

#: The embedded dataset as the tiny runs use it (no transposition).
TINY_DATA = dict(dataset="embedded", transpose=False)


@pytest.fixture(scope="session")
def embedded_cache_dir(tmp_path_factory) -> pathlib.Path:
    """A dataset cache folder shared by the tiny runs of every worker: the embedded dataset without
    transposition is built into it once per test run. Trainings may add other builds to it (the cache
    writes each build into a temporary folder and renames it into place, so concurrent builds are safe)."""
    def build(folder):
        from musicvae_xai import datasets
        from musicvae_xai.config import RunConfig
        from musicvae_xai.training.loop import dataset_config

        datasets.build(dataset_config(RunConfig(**TINY_DATA)), str(folder), progress=False)

    return build_once(shared_root(tmp_path_factory), "embedded_cache", build)


@pytest.fixture(scope="session")
def tiny_trained_run(tmp_path_factory, embedded_cache_dir):
    """``get(model="measure_vae") -> run_dir``: a finished run of a tiny model (one GRU layer of 16,
    latent 6, 4 steps) on the embedded dataset without transposition, trained once per test run and model (by
    whichever xdist worker asks first; the others reuse it). Read-only: tests that change a run copy it.
    A model name that is not registered, or whose module is missing, fails the test that asks for it."""
    runs = {}

    def get(model: str = "measure_vae") -> pathlib.Path:
        if model not in runs:
            from musicvae_xai.models import registry

            registry.spec(model).load()  # UnknownModelError, or ImportError naming the missing module

            def train(run_dir):
                from musicvae_xai.config import RunConfig
                from musicvae_xai.training.loop import Trainer

                config = RunConfig(model=model, **TINY_DATA, cache_dir=str(embedded_cache_dir),
                                   run_dir=str(run_dir), hidden_size=16, latent_dim=6, embedding_dim=4,
                                   num_layers=1, discriminator_hidden=16, batch_size=32, train_steps=4,
                                   checkpoint_every=4, eval_every=1000, xla=False, seed=1)
                Trainer(config, progress=False).run()

            runs[model] = build_once(shared_root(tmp_path_factory), f"tiny_{model}", train)
        return runs[model]

    return get


# ---------------------------------------------------------------------------------------------------
# Exports of the tiny runs, and a TF-Serving stand-in loaded with them (export and serving tests)


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory, tiny_trained_run):
    """``get(model="measure_vae") -> export base`` (``<tmp>/<model>/1``): the tiny run of that model
    exported once per test run (without the reload check, which the export tests run themselves);
    shared by the xdist workers like the run itself, and read-only alike."""
    exports = {}

    def get(model: str = "measure_vae") -> pathlib.Path:
        if model not in exports:
            run_dir = tiny_trained_run(model)

            def export(folder):
                from musicvae_xai.export import export_run

                export_run(str(run_dir), str(folder / model), verify=False)

            exports[model] = build_once(shared_root(tmp_path_factory), f"export_{model}", export) / model
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


# ---------------------------------------------------------------------------------------------------
# Scheduling under pytest-xdist: the slow tests first, spread over the workers


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Under xdist's default ``--dist load``, each worker first gets one block of consecutive tests
    (``len(items) // workers // 4`` of them, at most ``--maxschedchunk``) and the rest is handed out as
    workers free up. The ``slow`` tests (a minute or more each on 2 cores) are put into those first
    blocks, dealt in turn to each worker, so that they run at the start on every worker and the run
    ends with short tests that balance the workers (a slow test handed out last would leave the other
    worker idle behind it). Every other test keeps its collection order; without xdist nothing moves."""
    workers = getattr(config, "workerinput", {}).get("workercount", 0)
    # (a worker sees --dist as given on the command line: "no" when only -n was given, as pytest.ini does)
    if workers < 2 or config.getoption("dist", "no") not in ("load", "no") or len(items) < 2 * workers:
        return
    chunk = max(min(len(items) // workers // 4, config.getoption("maxschedchunk", None) or len(items)), 2)
    slow = [item for item in items if item.get_closest_marker("slow")]
    rest = [item for item in items if not item.get_closest_marker("slow")]
    dealt = [slow[w::workers][:chunk] for w in range(workers)]
    overflow = [item for w in range(workers) for item in slow[w::workers][chunk:]]
    ordered = []
    for block in dealt:
        fill = chunk - len(block)
        ordered += block + rest[:fill]
        rest = rest[fill:]
    items[:] = ordered + overflow + rest
