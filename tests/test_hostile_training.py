"""Hostile conditions for training: a second trainer on a run_dir in use, a
SIGKILLed study runner, damaged checkpoints, a full disk, a read-only run-dir parent and leftovers of an
interrupted checkpoint save. Tiny models (one GRU layer of 16, latent 6), a few steps each; every subprocess has a
timeout."""

import glob
import logging
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from musicvae_xai.config import RunConfig
from musicvae_xai.training import checkpoints, runlock
from musicvae_xai.training.loop import Trainer

REPO = pathlib.Path(__file__).resolve().parents[1]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}


def tiny(run_dir, cache_dir, **overrides) -> RunConfig:
    """A tiny run: one GRU layer, and no piano-roll summaries (test_tensorboard.py looks at those); what is
    tested here (locks, checkpoint fallback, write errors) does not depend on the model's size."""
    base = dict(model="measure_vae", dataset="embedded", cache_dir=str(cache_dir), run_dir=str(run_dir),
                hidden_size=16, latent_dim=6, embedding_dim=4, num_layers=1, batch_size=32, train_steps=4,
                checkpoint_every=2, eval_every=1000, transpose=False, xla=False, seed=3, eval_summaries=False)
    base.update(overrides)
    return RunConfig(**base)


def cli_flags(run_dir, cache_dir, train_steps=4):
    return ["--model=measure_vae", "--dataset=embedded", f"--cache_dir={cache_dir}", f"--run_dir={run_dir}",
            "--hidden_size=16", "--latent_dim=6", "--embedding_dim=4", "--num_layers=1", "--batch_size=32",
            f"--train_steps={train_steps}", "--checkpoint_every=2", "--eval_every=100000", "--notranspose",
            "--noxla", "--seed=3", "--log_every=100000", "--noeval_summaries"]


def error_lines(stderr: str) -> list:
    assert "Traceback" not in stderr, stderr[-3000:]
    return [ln for ln in stderr.splitlines() if ln.startswith("error:")]


def wait_for(predicate, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def lock_pid(run_dir) -> int:
    """The pid written into run_dir's lock file (0 when none yet)."""
    try:
        text = (pathlib.Path(run_dir) / runlock.LOCK_FILENAME).read_text()
    except OSError:
        return 0
    fields = dict(p.split("=", 1) for p in text.split() if "=" in p)
    return int(fields.get("pid", 0))


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def weights(run_dir):
    _, model = checkpoints.restore_model(str(run_dir))
    return [v.numpy() for v in model.trainable_variables]


# ---------------------------------------------------------------------------------------------------
# One trainer per run_dir; workers die with their runner


@pytest.mark.slow
def test_second_trainer_on_a_run_dir_in_use_fails_at_once_naming_the_holder(tmp_path, embedded_cache_dir):
    run_dir = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-m", "musicvae_xai.train",
                               *cli_flags(run_dir, embedded_cache_dir, train_steps=10 ** 6)],
                              env=ENV, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        pid = wait_for(lambda: lock_pid(run_dir) if holder.poll() is None else -1, 240, "the first trainer's lock")
        assert pid == holder.pid, holder.stderr.read()[-3000:] if pid == -1 else pid
        # Stopped, it keeps holding the lock without taking CPU from the processes below.
        holder.send_signal(signal.SIGSTOP)
        assert runlock.holder(str(run_dir)) == f"pid {pid}"

        # In this process: refused before any data or model is built.
        t0 = time.time()
        with pytest.raises(runlock.RunDirLockedError, match=f"in use by another trainer \\(pid {pid}\\)"):
            Trainer(tiny(run_dir, embedded_cache_dir, train_steps=10 ** 6), progress=False).run()
        assert time.time() - t0 < 5

        # The command line: one error line naming the pid.
        second = subprocess.run([sys.executable, "-m", "musicvae_xai.train",
                                 *cli_flags(run_dir, embedded_cache_dir, train_steps=10 ** 6)],
                                env=ENV, cwd=REPO, capture_output=True, text=True, timeout=180)
        assert second.returncode == 1
        assert error_lines(second.stderr) == [f"error: run_dir {run_dir} is in use by another trainer (pid {pid}); "
                                              "wait for it to finish or stop it"], second.stderr[-2000:]

        # The study worker on the same run_dir: the same line, and it writes nothing into the run_dir.
        from musicvae_xai.study.worker import ENTRY_FILENAME, RESULT_FILENAME, write_json
        write_json(str(run_dir / ENTRY_FILENAME),
                   {"name": "held", "config": tiny(run_dir, embedded_cache_dir).to_dict(), "evaluation": {}})
        worker = subprocess.run([sys.executable, "-m", "musicvae_xai.cli.study_worker", f"--run_dir={run_dir}"],
                                env=ENV, cwd=REPO, capture_output=True, text=True, timeout=180)
        assert worker.returncode == 1
        assert len(error_lines(worker.stderr)) == 1 and f"(pid {pid})" in worker.stderr, worker.stderr[-2000:]
        assert not (run_dir / RESULT_FILENAME).exists()
    finally:
        holder.kill()
        holder.wait(timeout=60)
    # Released by the kernel when the holder dies, even by SIGKILL: the next trainer takes it.
    assert runlock.holder(str(run_dir)) is None
    runlock.acquire(str(run_dir))
    try:
        assert lock_pid(run_dir) == os.getpid()
        runlock.acquire(str(run_dir))  # re-entrant in one process (the worker, then its trainer)
        runlock.release(str(run_dir))
        assert runlock.holder(str(run_dir)) is None  # this process holds it: nobody *else* does
    finally:
        runlock.release(str(run_dir))


STUDY = """\
--models=measure_vae
--latent_sizes=6
--datasets=embedded
--attribute_set=two
--seeds=0
--hidden_size=16
--embedding_dim=4
--batch_size=32
--train_steps=1000000
--checkpoint_every=1000000
--log_every=1000000
--eval_every=1000000
--notranspose
--xla=false
--cache_dir={cache_dir}
--threads_per_config=1
--noexport
"""


@pytest.mark.slow
def test_sigkilled_study_runner_takes_its_worker_with_it(tmp_path, embedded_cache_dir):
    study = tmp_path / "s.flags"
    study.write_text(STUDY.format(cache_dir=embedded_cache_dir))
    study_dir = tmp_path / "study"
    runner = subprocess.Popen([sys.executable, "-m", "musicvae_xai.study", f"--study={study}",
                               f"--study_dir={study_dir}", "--parallel=1"], env=ENV, cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    worker = 0
    try:
        def worker_training():
            if runner.poll() is not None:
                return -1
            dirs = [d for d in study_dir.glob("*") if (d / runlock.LOCK_FILENAME).exists()] \
                if study_dir.is_dir() else []
            return lock_pid(dirs[0]) if dirs else 0

        worker = wait_for(worker_training, 300, "the study worker to lock its run_dir")
        assert worker > 0, runner.stdout.read()[-3000:]
        with open(f"/proc/{worker}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        assert int(fields[1]) == runner.pid  # the runner's child ...
        assert int(fields[2]) == worker  # ... leading its own process group
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=30)
        wait_for(lambda: not alive(worker), 15, f"worker {worker} to die with its runner")
    finally:
        if worker > 0 and alive(worker):
            os.kill(worker, signal.SIGKILL)
        if runner.poll() is None:
            runner.kill()
    run_dir = next(study_dir.glob("measure_vae-*"))
    assert runlock.holder(str(run_dir)) is None


@pytest.mark.slow
def test_study_runner_leaves_a_run_dir_another_process_holds_alone(tmp_path, embedded_cache_dir):
    from musicvae_xai.study import grid
    from musicvae_xai.study.runner import StudyRunner

    study = tmp_path / "s.flags"
    study.write_text(STUDY.format(cache_dir=embedded_cache_dir))
    spec = grid.load_study(str(study))
    entries = grid.expand(spec, str(tmp_path / "d"))
    run_dir = entries[0].config.run_dir
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from musicvae_xai.training import runlock; "
                               "runlock.acquire(sys.argv[1]); print('held', flush=True); time.sleep(120)", run_dir],
                              env=ENV, cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        lines = []
        crash = [sys.executable, "-c", "raise SystemExit(3)"]  # must never start
        summary = StudyRunner(spec, entries, str(tmp_path / "d"), log=lines.append, poll_seconds=0.05,
                              worker_argv=lambda d: crash).run()
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert summary["failed"] == [entries[0].name]
    assert f"[study] FAILED {entries[0].name} (lock): run_dir {run_dir} is in use (pid {holder.pid})" in lines
    assert sorted(os.listdir(run_dir)) == [runlock.LOCK_FILENAME]  # no entry.json, log or result.json


LIFELINE_PARENT = textwrap.dedent("""
    import os, subprocess, sys, time
    child = sys.argv[1]
    env = {**os.environ, "MUSICVAE_XAI_PARENT_PID": str(os.getpid())}
    p = subprocess.Popen([sys.executable, "-c", child], env=env, start_new_session=True)
    print(p.pid, flush=True)
    time.sleep(120)
""")
LIFELINE_CHILD = textwrap.dedent("""
    import importlib.util, sys, time
    spec = importlib.util.spec_from_file_location("lifeline", {path!r})
    lifeline = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lifeline)
    if {poll_only!r}:
        lifeline._set_pdeathsig = lambda sig: False  # as on a system without prctl
    print(lifeline.die_with_parent(poll_seconds=0.2), file=sys.stderr, flush=True)
    time.sleep(120)
""")


@pytest.mark.parametrize("poll_only", [False, True], ids=["prctl", "poll"])
def test_each_parent_death_mechanism_alone_kills_the_worker(poll_only):
    """The lifeline without TensorFlow: prctl(PR_SET_PDEATHSIG) and, as where prctl is missing, the
    os.getppid() poll each kill the child within seconds of a SIGKILL of its parent."""
    child = LIFELINE_CHILD.format(path=str(REPO / "musicvae_xai" / "study" / "lifeline.py"), poll_only=poll_only)
    parent = subprocess.Popen([sys.executable, "-c", LIFELINE_PARENT, child], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    pid = 0
    try:
        pid = int(parent.stdout.readline())
        expected = "['poll']" if poll_only else "['prctl', 'poll']"
        assert parent.stderr.readline().strip() == expected
        assert alive(pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        wait_for(lambda: not alive(pid), 5, "the child to die with its parent")
    finally:
        if pid and alive(pid):
            os.kill(pid, signal.SIGKILL)
        if parent.poll() is None:
            parent.kill()


# ---------------------------------------------------------------------------------------------------
# Resume falls back to the newest checkpoint that restores


@pytest.fixture(scope="module")
def straight_six(once_per_run, embedded_cache_dir):
    """Weights after six uninterrupted steps, what every resumed run below must reproduce (trained once
    per test run)."""
    run_dir = once_per_run("hostile_straight_six", lambda d: Trainer(tiny(d, embedded_cache_dir, train_steps=6),
                                                                     progress=False).run())
    return weights(run_dir)


@pytest.fixture
def four_steps(tmp_path, once_per_run, embedded_cache_dir):
    """``tmp_path/run``: a copy of a finished four-step run (checkpoints 2 and 4), trained once per test run."""
    shared = once_per_run("hostile_four_steps", lambda d: Trainer(tiny(d, embedded_cache_dir, train_steps=4),
                                                                 progress=False).run())
    run_dir = tmp_path / "run"
    shutil.copytree(shared, run_dir)
    return run_dir


def damage(path: str, how: str) -> None:
    data = bytearray(pathlib.Path(path).read_bytes())
    if how == "truncate":
        data = data[:len(data) // 2]
    else:
        data[len(data) // 2] ^= 0x04
    pathlib.Path(path).write_bytes(bytes(data))


@pytest.mark.slow
@pytest.mark.parametrize("how", ["truncate", "bitflip"])
def test_resume_skips_a_damaged_latest_checkpoint(how, four_steps, embedded_cache_dir, straight_six, caplog):
    run_dir = four_steps
    latest = checkpoints.latest_checkpoint(str(run_dir))
    assert latest.endswith("ckpt-4")
    damage(glob.glob(latest + ".data-*")[0], how)
    with caplog.at_level(logging.INFO, logger="absl"):
        result = Trainer(tiny(run_dir, embedded_cache_dir, train_steps=6), progress=False).run()
    text = caplog.text
    reason = "IndexError" if how == "truncate" else "DataLossError"
    assert f"skipping checkpoint {latest}: it does not restore ({reason}" in text, text[-3000:]
    assert f"resuming from {run_dir / 'ckpt-2'} at step 2" in text
    assert result["steps"] == 6
    # As if ckpt-4 had never existed. Not compared bit for bit: both trainings run in this pytest process,
    # where process-wide TensorFlow state left by other tests of the same xdist worker (e.g. logical CPU
    # devices) moved one weight by one float32 ulp in a full-suite run. Bit-exact resumption is tested
    # in fresh processes (test_training.py's SIGKILL resume, test_reproducibility.py).
    for a, b in zip(weights(run_dir), straight_six, strict=False):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.slow
def test_resume_refuses_when_no_checkpoint_restores(four_steps, embedded_cache_dir):
    run_dir = four_steps
    for data in glob.glob(str(run_dir / "ckpt-*.data-*")):
        damage(data, "truncate")
    with pytest.raises(checkpoints.CheckpointRestoreError, match="none of its 2 checkpoint\\(s\\) restores"):
        Trainer(tiny(run_dir, embedded_cache_dir, train_steps=6), progress=False).run()
    assert runlock.holder(str(run_dir)) is None  # released on the error


# ---------------------------------------------------------------------------------------------------
# Disk full, read-only parent, leftovers of an interrupted save

FAULTY_CLI = textwrap.dedent("""
    import errno, os, sys
    import tensorflow as tf
    mode, argv = sys.argv[1], sys.argv[2:]
    if mode in ("enospc", "exhausted"):
        original = tf.train.Checkpoint._write
        def full_disk(self, prefix, *args, **kwargs):
            if str(prefix).endswith("ckpt-4"):  # the second save: as TensorFlow does, a temporary folder first
                os.makedirs(str(prefix) + "_temp", exist_ok=True)
                if mode == "enospc":
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(prefix) + "_temp")
                raise tf.errors.ResourceExhaustedError(None, None, str(prefix) + "_temp/part-00000-of-00001."
                                                       "data-00000-of-00001.tempstate; No space left on device")
            return original(self, prefix, *args, **kwargs)
        tf.train.Checkpoint._write = full_disk
    elif mode == "readonly" and os.geteuid() == 0:  # root ignores permissions: raise what a user gets
        parent = os.environ["READONLY_PARENT"]
        real = os.makedirs
        def makedirs(name, *args, **kwargs):
            if str(name).startswith(parent):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(name))
            return real(name, *args, **kwargs)
        os.makedirs = makedirs
    sys.argv = ["train", *argv]
    from musicvae_xai import train
    train.run()
""")


def run_faulty(mode, *args, env=None):
    return subprocess.run([sys.executable, "-c", FAULTY_CLI, mode, *map(str, args)], env={**ENV, **(env or {})},
                          cwd=REPO, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["enospc", "exhausted"])
def test_disk_full_while_checkpointing_is_one_line_and_leaves_no_temporary_folder(mode, tmp_path,
                                                                                  embedded_cache_dir):
    run_dir = tmp_path / "run"
    res = run_faulty(mode, *cli_flags(run_dir, embedded_cache_dir, train_steps=6))
    assert res.returncode == 1, res.stderr[-3000:]
    reason = "no space left on device (OSError)" if mode == "enospc" else "ResourceExhaustedError: "
    [line] = error_lines(res.stderr)
    assert line.startswith(f"error: cannot write checkpoint {run_dir / 'ckpt-4'}: {reason}"), line
    assert line.endswith(f"; {run_dir / 'ckpt-2'} is kept"), line
    assert not glob.glob(str(run_dir / "ckpt-*_temp*"))
    assert checkpoints.latest_checkpoint(str(run_dir)).endswith("ckpt-2")
    assert runlock.holder(str(run_dir)) is None


@pytest.mark.slow
def test_read_only_run_dir_parent_is_one_line_naming_the_path(tmp_path, embedded_cache_dir):
    parent = tmp_path / "readonly"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        run_dir = parent / "run"
        res = run_faulty("readonly", *cli_flags(run_dir, embedded_cache_dir), env={"READONLY_PARENT": str(parent)})
    finally:
        parent.chmod(0o755)
    assert res.returncode == 1
    assert error_lines(res.stderr) == [f"error: cannot create the run directory {run_dir}: Permission denied"], \
        res.stderr[-3000:]
    assert not run_dir.exists()


@pytest.mark.slow
def test_leftover_temporary_checkpoint_folders_are_removed_on_the_next_run(four_steps, embedded_cache_dir, caplog):
    run_dir = four_steps
    left = [run_dir / "ckpt-6_temp", run_dir / "ckpt-8_temp_0a1b2c"]  # an interrupted save, sharded or not
    for folder in left:
        folder.mkdir()
        (folder / "part-00000-of-00001.data-00000-of-00001.tempstate123").write_bytes(b"\0" * 10)
    with caplog.at_level(logging.INFO, logger="absl"):
        Trainer(tiny(run_dir, embedded_cache_dir, train_steps=6), progress=False).run()
    for folder in left:
        assert not folder.exists()
        assert f"removed {folder}, left by an interrupted checkpoint save" in caplog.text
    assert checkpoints.latest_checkpoint(str(run_dir)).endswith("ckpt-6")
