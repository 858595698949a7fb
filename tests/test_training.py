"""Training loop: distribution scaling, multi-worker agreement, exact resume after SIGKILL, bad input.

Every model name in MODELS goes through the same tests.
"""

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import tensorflow as tf

from musicvae_xai.config import RunConfig
from musicvae_xai.training import checkpoints
from musicvae_xai.training.loop import NonFiniteLossError, Trainer

MODELS = ["measure_vae", "adversarial_vae"]
REPO = pathlib.Path(__file__).resolve().parents[1]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}


def tiny(run_dir, cache_dir, **overrides) -> RunConfig:
    """A tiny run: one GRU layer, and no piano-roll summaries (test_tensorboard.py looks at those). The
    distribution and resume tests below keep two layers (dropout between them draws random numbers)."""
    base = dict(dataset="embedded", cache_dir=str(cache_dir), run_dir=str(run_dir), hidden_size=16,
                latent_dim=6, embedding_dim=4, num_layers=1, batch_size=32, train_steps=4, checkpoint_every=2,
                eval_every=1000, xla=False, seed=5, eval_summaries=False)
    base.update(overrides)
    return RunConfig(**base)


def run_cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "musicvae_xai.train", *args], capture_output=True, text=True,
                          env=ENV, cwd=REPO, timeout=timeout)


def weights_of(run_dir):
    _, model = checkpoints.restore_model(str(run_dir))
    return [v.numpy() for v in model.trainable_variables]


@pytest.fixture(scope="module")
def cache_dir(once_per_run):
    """A dataset cache shared by the tests (built once per test run)."""
    from musicvae_xai import datasets
    from musicvae_xai.training.loop import dataset_config
    return once_per_run("training_cache", lambda path: datasets.build(dataset_config(tiny("unused", path)),
                                                                      str(path), progress=False))


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_mirrored_over_two_cpus_matches_one_device(model, tmp_path, cache_dir):
    script = textwrap.dedent(f"""
        import sys, numpy as np, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from musicvae_xai.config import RunConfig
        from musicvae_xai.training.loop import Trainer
        out = {{}}
        for strategy in ("default", "mirrored"):
            cfg = RunConfig(model={model!r}, dataset="embedded", cache_dir={str(cache_dir)!r},
                            run_dir={str(tmp_path)!r} + "/" + strategy, hidden_size=16, latent_dim=6,
                            embedding_dim=4, batch_size=32, train_steps=3, checkpoint_every=3,
                            eval_every=1000, xla=False, seed=5, dropout=0.5, strategy=strategy,
                            eval_summaries=False)
            trainer = Trainer(cfg, progress=False)
            trainer.run()
            out[strategy] = [v.numpy() for v in trainer.model.trainable_variables]
            print("REPLICAS", strategy, trainer.strategy.num_replicas_in_sync)
        diff = max(float(np.abs(a - b).max()) for a, b in zip(out["default"], out["mirrored"]))
        moved = max(float(np.abs(a).max()) for a in out["default"])
        print("MAXDIFF", diff, moved)
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=ENV, cwd=REPO,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "REPLICAS mirrored 2" in res.stdout
    diff, moved = map(float, res.stdout.split("MAXDIFF")[1].split()[:2])
    assert diff < 1e-5 and moved > 0


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_multi_worker_processes_train_and_agree(model, tmp_path, cache_dir):
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    script = textwrap.dedent(f"""
        import sys, numpy as np
        from musicvae_xai.config import RunConfig
        from musicvae_xai.training.loop import Trainer
        cfg = RunConfig(model={model!r}, dataset="embedded", cache_dir={str(cache_dir)!r},
                        run_dir={str(tmp_path / 'run')!r}, hidden_size=16, latent_dim=6, embedding_dim=4,
                        batch_size=32, train_steps=3, checkpoint_every=3, eval_every=1000, xla=False, seed=5,
                        strategy="multi_worker", eval_summaries=False)
        trainer = Trainer(cfg, progress=False)
        trainer.run()
        np.savez(sys.argv[1], *[v.numpy() for v in trainer.model.trainable_variables])
    """)
    procs = []
    for i in range(2):
        env = {**ENV, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})}
        procs.append(subprocess.Popen([sys.executable, "-c", script, str(tmp_path / f"w{i}.npz")], env=env,
                                      cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=False):
        assert p.returncode == 0, err[-3000:]
    w0, w1 = np.load(tmp_path / "w0.npz"), np.load(tmp_path / "w1.npz")
    for k in w0.files:
        np.testing.assert_allclose(w0[k], w1[k], atol=1e-6)
    # Only the chief wrote checkpoints; the other worker's scratch directory is gone.
    assert checkpoints.latest_checkpoint(str(tmp_path / "run")).endswith("ckpt-3")
    assert not list((tmp_path / "run" / ".scratch").glob("worker_1/ckpt-*"))


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_resume_after_sigkill_is_exact(model, tmp_path, cache_dir):
    common = [f"--model={model}", "--dataset=embedded", f"--cache_dir={cache_dir}", "--hidden_size=16",
              "--latent_dim=6", "--embedding_dim=4", "--batch_size=32", "--train_steps=24",
              "--checkpoint_every=4", "--eval_every=1000", "--noxla", "--seed=5", "--log_every=1",
              "--noeval_summaries"]
    straight = run_cli(*common, f"--run_dir={tmp_path / 'straight'}")
    assert straight.returncode == 0, straight.stderr[-3000:]

    killed_dir = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "musicvae_xai.train", *common, f"--run_dir={killed_dir}"],
                            env=ENV, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    def latest_step() -> int:  # the checkpoint the run would resume from (the state file, not ckpt-N.*
        latest = checkpoints.latest_checkpoint(str(killed_dir))  # files, which are written before it)
        return int(latest.rsplit("-", 1)[1]) if latest else 0

    deadline = time.time() + 300
    while time.time() < deadline and latest_step() < 8:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    latest = checkpoints.latest_checkpoint(str(killed_dir))
    assert latest is not None and not (killed_dir / "FINISHED").exists()
    killed_at = int(latest.rsplit("-", 1)[1])
    assert 8 <= killed_at < 24

    resumed = run_cli(*common, f"--run_dir={killed_dir}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {latest}" in resumed.stderr
    for a, b in zip(weights_of(tmp_path / "straight"), weights_of(killed_dir), strict=False):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_flagfile_and_command_line_override(tmp_path, cache_dir):
    flagfile = tmp_path / "t.flags"
    flagfile.write_text("--dataset=embedded\n--hidden_size=16\n--latent_dim=6\n--train_steps=2\n--noxla\n"
                        "--batch_size=32\n--embedding_dim=4\n--eval_every=1000\n--noeval_summaries\n--num_layers=1\n")
    res = run_cli(f"--flagfile={flagfile}", "--hidden_size=8", f"--cache_dir={cache_dir}",
                  f"--run_dir={tmp_path / 'run'}")
    assert res.returncode == 0, res.stderr[-3000:]
    saved = RunConfig.load(str(tmp_path / "run"))
    assert saved.hidden_size == 8 and saved.latent_dim == 6
    assert (tmp_path / "run" / "FINISHED").exists()
    assert list((tmp_path / "run" / "train").glob("events.out.tfevents*"))


@pytest.mark.parametrize("args, message", [
    (["--attributes=rhythmic_complexity,loudness"], "unknown attribute(s) loudness"),
    (["--latent_dim=3"], "latent_dim=3 is smaller than the 4 regularised attributes"),
    (["--flagfile=/nonexistent/x.flags"], "flagfile /nonexistent/x.flags does not exist"),
    (["--dataset=nope"], "nope"),
])
def test_bad_input_gives_one_line_and_writes_nothing(args, message, tmp_path, cache_dir):
    run_dir = tmp_path / "run"
    res = run_cli(*args, f"--run_dir={run_dir}", f"--cache_dir={cache_dir}", "--train_steps=1")
    assert res.returncode != 0
    assert message in res.stderr
    assert "Traceback" not in res.stderr
    assert not (run_dir / "config.json").exists()


def test_foreign_run_dir_is_refused_untouched(tmp_path, cache_dir):
    cfg = tiny(tmp_path / "run", cache_dir, train_steps=2)
    Trainer(cfg, progress=False).run()
    before = (tmp_path / "run" / "config.json").read_text()
    res = run_cli("--dataset=embedded", "--hidden_size=32", "--latent_dim=6", "--num_layers=1",
                  f"--run_dir={tmp_path / 'run'}",
                  f"--cache_dir={cache_dir}", "--train_steps=2")
    assert res.returncode != 0 and "different configuration" in res.stderr and "hidden_size" in res.stderr
    assert "Traceback" not in res.stderr
    assert (tmp_path / "run" / "config.json").read_text() == before
    assert checkpoints.latest_checkpoint(str(tmp_path / "run")).endswith("ckpt-2")


def test_nan_loss_stops_naming_the_step_and_keeps_last_good_checkpoint(tmp_path, cache_dir, monkeypatch):
    from musicvae_xai.models.measure_vae import MeasureVAE
    original = MeasureVAE.compute_losses

    def poisoned(self, tokens, attributes, step, *args, **kwargs):
        out = original(self, tokens, attributes, step, *args, **kwargs)
        out["loss"] = tf.where(tf.cast(step, tf.int64) >= 6, tf.constant(np.nan, tf.float32), out["loss"])
        return out

    monkeypatch.setattr(MeasureVAE, "compute_losses", poisoned)
    cfg = tiny(tmp_path / "run", cache_dir, train_steps=20, checkpoint_every=5)
    with pytest.raises(NonFiniteLossError, match="at step 7"):
        Trainer(cfg, progress=False).run()
    assert checkpoints.latest_checkpoint(str(tmp_path / "run")).endswith("ckpt-5")
    assert not (tmp_path / "run" / "FINISHED").exists()
    weights_of(tmp_path / "run")  # the kept checkpoint restores
