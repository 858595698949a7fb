"""What the README's "Reproducibility" promises: same seed and flags on one machine give bit-identical
weights and the same evaluation report; ``--deterministic`` keeps that under other thread counts."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]

#: conftest's ``tiny_trained_run`` configuration, so its run (trained once per session) is run "a".
TINY = dict(model="measure_vae", dataset="embedded", hidden_size=16, latent_dim=6, embedding_dim=4,
            num_layers=1, discriminator_hidden=16, batch_size=32, train_steps=4, checkpoint_every=4, eval_every=1000,
            transpose=False, xla=False, seed=1)


def checkpoint_arrays(run_dir) -> dict:
    """Every variable of the run's latest checkpoint (model and optimiser), by checkpoint key."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(run_dir)))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map() if "OBJECT_GRAPH" not in k}


def assert_bit_identical(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    assert len(a) > 10  # the model's weights, not an empty checkpoint
    differ = [k for k in a if np.asarray(a[k]).tobytes() != np.asarray(b[k]).tobytes()]
    assert not differ, f"{len(differ)} of {len(a)} checkpoint values differ, e.g. {differ[:3]}"


def train_tiny(run_dir, cache_dir, **overrides) -> None:
    from musicvae_xai.config import RunConfig
    from musicvae_xai.training.loop import Trainer

    config = RunConfig(**{**TINY, **overrides, "run_dir": str(run_dir), "cache_dir": str(cache_dir)})
    Trainer(config, progress=False).run()


def test_same_seed_same_flags_give_bit_identical_weights_and_report(tmp_path, tiny_trained_run,
                                                                  embedded_cache_dir):
    from musicvae_xai.config import RunConfig
    from musicvae_xai.evaluation import EvaluationOptions, evaluate_run

    first = tiny_trained_run("measure_vae")
    saved = RunConfig.load(str(first)).to_dict()
    # the fixture's run is this test's configuration (its AdversarialVAE setting is not a MeasureVAE's: dropped)
    assert {k: saved[k] for k in TINY if k in saved} == {k: v for k, v in TINY.items() if k in saved}
    assert set(TINY) - set(saved) == {"discriminator_hidden"}
    train_tiny(tmp_path / "b", embedded_cache_dir)
    assert_bit_identical(checkpoint_arrays(first), checkpoint_arrays(tmp_path / "b"))
    options = EvaluationOptions(split="test", max_measures=32, sweep_measures=2, sweep_steps=3, seed=0)
    reports = [evaluate_run(str(run), options) for run in (first, tmp_path / "b")]
    for report in reports:
        report.pop("run_dir")
    assert json.dumps(reports[0], sort_keys=True) == json.dumps(reports[1], sort_keys=True)


def test_comparison_sees_one_ulp():
    """The weight comparison above can fail: one value one float32 ulp away is a difference."""
    a = {f"v{i}": np.linspace(-1, 1, 7, dtype=np.float32) * i for i in range(12)}
    b = {k: v.copy() for k, v in a.items()}
    b["v5"][3] = np.nextafter(b["v5"][3], np.float32(2))
    assert_bit_identical(a, {k: v.copy() for k, v in a.items()})
    with pytest.raises(AssertionError, match="1 of 12 checkpoint values differ"):
        assert_bit_identical(a, b)


def test_deterministic_is_a_resumable_flag_with_help():
    from musicvae_xai.config import HELP, RESUMABLE_FIELDS, RunConfig

    assert RunConfig().deterministic is False
    assert "enable_op_determinism" in HELP["deterministic"]
    assert "deterministic" in RESUMABLE_FIELDS  # how a run is computed, not what is trained
    assert RunConfig.from_dict({k: v for k, v in RunConfig().to_dict().items() if k != "deterministic"})


_CHILD = """
import sys
import tensorflow as tf
threads = int(sys.argv[1])
tf.config.threading.set_intra_op_parallelism_threads(threads)
tf.config.threading.set_inter_op_parallelism_threads(threads)
sys.path.insert(0, sys.argv[4])
from test_reproducibility import train_tiny
from musicvae_xai.training import determinism
train_tiny(sys.argv[2], sys.argv[3], deterministic=True, eval_summaries=False)  # no piano rolls: not compared
assert determinism.is_enabled()
print("threads", tf.config.threading.get_intra_op_parallelism_threads())
"""


@pytest.mark.slow
def test_deterministic_runs_are_bit_identical_across_thread_counts(tmp_path, embedded_cache_dir):
    """--deterministic in two processes with 1 and 2 intra-/inter-op threads (another machine's
    scheduling on the same CPU type): bit-identical checkpoints. Subprocesses because TF's thread
    pools and op determinism are fixed per process."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    for threads in (1, 2):
        proc = subprocess.run([sys.executable, "-c", _CHILD, str(threads), str(tmp_path / f"t{threads}"),
                               str(embedded_cache_dir), str(REPO_ROOT / "tests")],
                              env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert f"threads {threads}" in proc.stdout
    assert_bit_identical(checkpoint_arrays(tmp_path / "t1"), checkpoint_arrays(tmp_path / "t2"))


def test_regenerate_figures_dry_run_prints_runnable_steps(tmp_path):
    """tools/regenerate_figures.sh --dry-run: the steps it would run analyse the shipped pretrained model
    into a fresh folder, copy the PNGs into the README's figure folder and take the explorer screenshot
    with an existing tool (not with --no-screenshot); an unknown argument is refused."""
    import importlib.util
    import shlex

    script = REPO_ROOT / "tools" / "regenerate_figures.sh"
    env = {**os.environ, "OUT_DIR": str(tmp_path / "figures_run")}
    for extra, screenshot in (([], True), (["--no-screenshot"], False)):
        proc = subprocess.run(["bash", str(script), "--dry-run", *extra], env=env, capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        steps = [shlex.split(line[2:]) for line in proc.stdout.splitlines() if line.startswith("+ ")]
        assert steps[0][1:4] == ["-m", "musicvae_xai.pretrained", "analysis"]
        assert f"--output_dir={tmp_path / 'figures_run'}" in steps[0]
        assert importlib.util.find_spec("musicvae_xai.pretrained.__main__") is not None
        copy = steps[-2] if screenshot else steps[-1]
        assert copy[0] == "cp" and copy[-1] == "docs/figures/"
        if screenshot:
            assert steps[-1][1] == "tools/explorer_screenshot.py" and (REPO_ROOT / steps[-1][1]).is_file()
            assert "--out=docs/explorer.png" in steps[-1]
    assert not (tmp_path / "figures_run").exists()  # a dry run runs nothing
    bad = subprocess.run(["bash", str(script), "--bogus"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "unknown argument --bogus" in bad.stderr
