"""Running a study: dataset caches and baselines first, then every configuration in its own process.

    spec = grid.load_study(resolve_config("cpu_v2", "study"))
    entries = grid.expand(spec, "studies/cpu_small")
    summary = StudyRunner(spec, entries, "studies/cpu_small", parallel=2).run()

* ``prepare`` builds each distinct dataset cache once, in this process, before any configuration starts
  (so parallel workers never race on a cache) and computes the dataset's majority-token baselines; a
  dataset that cannot be built fails only its own configurations.
* Each configuration runs ``python -m musicvae_xai.cli.study_worker --run_dir=STUDY_DIR/NAME`` with a fixed
  thread budget (TF_NUM_INTRAOP_THREADS, TF_NUM_INTEROP_THREADS, OMP_NUM_THREADS), its output in
  ``NAME/worker.log``; at most ``parallel`` run at once. Each worker has its own process group and
  dies with the runner, even a SIGKILLed one (``study.lifeline``); a configuration whose run_dir another
  process holds (``training.runlock``) is recorded as failed without touching it.
* Resuming: a configuration whose ``result.json`` says "ok" for the same settings is skipped; any other
  is (re)run, and the worker continues from what the previous attempt left (checkpoints, evaluation,
  export). A worker that dies without writing its result is recorded as failed with the end of its log.
* One runner per study folder: a second one is refused naming the first's pid (``RUNNER_LOCK_FILENAME``).
* Progress (done / running / remaining, ETA) goes to ``log`` on every event and every
  ``status_every`` seconds, and to ``STUDY_DIR/status.json``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from typing import Callable, Optional, Sequence

import numpy as np

from musicvae_xai import token_accuracy
from musicvae_xai.datasets.config import DEFAULT_CACHE_DIR, dataset_config
from musicvae_xai.study import grid as grid_mod
from musicvae_xai.study.lifeline import PARENT_ENV
from musicvae_xai.training import runlock
from musicvae_xai.study.worker import (ENTRY_FILENAME, RESULT_FILENAME, failure_record, read_json,
                                       same_settings, write_json)

STUDY_FILENAME = "study.json"
STATUS_FILENAME = "status.json"
BASELINES_FILENAME = "baselines.json"
LOG_FILENAME = "worker.log"
EXPORTS_DIRNAME = "exports"
#: The lock a runner holds on its study folder (``training.runlock``): one runner per folder.
RUNNER_LOCK_FILENAME = ".runner.lock"


def available_cpus() -> int:
    """CPUs this process may use (respects affinity / a Slurm allocation)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def thread_env(threads: int, base: Optional[dict] = None) -> dict:
    """The environment of a worker limited to ``threads`` compute threads."""
    env = dict(os.environ if base is None else base)
    env.update({"TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": str(threads),
                "OMP_NUM_THREADS": str(threads), "TF_CPP_MIN_LOG_LEVEL": env.get("TF_CPP_MIN_LOG_LEVEL", "2")})
    return env


def format_duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return "unknown"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def majority_baselines(built) -> dict:
    """Majority-token baselines of a built dataset (``datasets.BuiltDataset``), per split.

    Predicting the most frequent training token at every tick gives ``majority_token_accuracy`` (and,
    over the ticks whose target is a pitch or a rest, ``majority_note_accuracy``); predicting the most
    frequent training token of each of the 24 tick positions gives ``per_tick_majority_token_accuracy``
    and ``per_tick_majority_note_accuracy``. Note accuracies count only pitch and rest targets, as the
    evaluation's ``note_accuracy`` does (not hold, start or end). One dict per split present
    ("validation", "test"): compare a model's accuracy on a split with the baseline of the SAME split
    (the study evaluates on ``test``). Values are floats in [0, 1]; ``note_fraction`` is the share of
    ticks whose target is a pitch or rest.
    """
    vocab = built.vocabulary
    train = np.asarray(built.tokens("train"))
    out = {}
    for split in ("validation", "test"):
        tokens = np.asarray(built.tokens(split))
        if not len(tokens):
            continue
        scored = token_accuracy.majority_baselines(train, tokens, vocab)
        out["majority_token"], out["train_measures"] = scored.pop("majority_token"), scored.pop("train_measures")
        note = token_accuracy.note_tick_mask(tokens, vocab)
        out[split] = dict(scored, hold_fraction=float(np.mean(tokens == vocab.hold_id)),
                          note_fraction=float(note.mean()))
    return out


@dataclasses.dataclass
class _Running:
    name: str
    process: subprocess.Popen
    started: float
    log: object


class StudyRunner:
    """Runs ``entries`` (validated ``grid.Entry``s of ``spec``) under ``study_dir``; see module doc.

    parallel: configurations at once; threads_per_config: compute threads each (0: the spec's, or
    available CPUs // parallel); retry_failed: rerun configurations whose result says failed;
    log: progress line sink; worker_argv: command of one worker (tests replace it); grid_entries: the
    whole grid when ``entries`` is a selection (``study.json`` lists it, so the report knows what is
    missing).
    """

    def __init__(self, spec: grid_mod.StudySpec, entries: Sequence[grid_mod.Entry], study_dir: str,
                 parallel: int = 1, threads_per_config: int = 0, retry_failed: bool = True,
                 log: Callable[[str], None] = print, status_every: float = 60.0,
                 worker_argv: Optional[Callable[[str], list]] = None, poll_seconds: float = 0.5,
                 grid_entries: Optional[Sequence[grid_mod.Entry]] = None):
        if parallel < 1:
            raise grid_mod.StudyError(f"--parallel must be at least 1, got {parallel}")
        self.spec, self.entries, self.study_dir = spec, list(entries), study_dir
        self.grid_entries = list(grid_entries) if grid_entries is not None else self.entries
        self.parallel = parallel
        self.threads = threads_per_config or spec.threads_per_config or max(1, available_cpus() // parallel)
        self.retry_failed = retry_failed
        self.log = log
        self.status_every = status_every
        self.worker_argv = worker_argv or (lambda run_dir: [sys.executable, "-m", "musicvae_xai.cli.study_worker",
                                                            f"--run_dir={run_dir}"])
        self.poll_seconds = poll_seconds
        self.baselines: dict = {}
        self.data_errors: dict = {}

    # -- bookkeeping -----------------------------------------------------------------------------
    def run_dir(self, entry: grid_mod.Entry) -> str:
        return entry.config.run_dir

    def export_base(self, entry: grid_mod.Entry) -> Optional[str]:
        return os.path.join(self.study_dir, EXPORTS_DIRNAME, entry.name) if self.spec.export else None

    def previous_result(self, entry: grid_mod.Entry) -> Optional[dict]:
        return read_json(os.path.join(self.run_dir(entry), RESULT_FILENAME))

    def is_done(self, entry: grid_mod.Entry) -> bool:
        """True when the entry has an "ok" result for these settings and evaluation options (or a failed
        one, without retry)."""
        result = self.previous_result(entry)
        if result is None or not same_settings(result.get("flags"), entry.config.to_dict()):
            return False
        if result.get("status") == "failed":
            return not self.retry_failed
        return (result.get("status") == "ok" and result.get("evaluation_options") == self.spec.evaluation_options()
                and bool(result.get("export_dir")) == bool(self.spec.export))

    def write_study_file(self) -> None:
        """Writes ``study.json``: the parsed study and every entry of its grid (name + coordinates)."""
        os.makedirs(self.study_dir, exist_ok=True)
        payload = {"study": self.spec.to_dict(),
                   "entries": [{"name": e.name, **e.grid} for e in self.grid_entries]}
        write_json(os.path.join(self.study_dir, STUDY_FILENAME), payload)

    # -- data ------------------------------------------------------------------------------------
    def prepare(self, entries: Optional[Sequence[grid_mod.Entry]] = None) -> None:
        """Builds (or reuses) the dataset cache of every distinct dataset configuration of ``entries``
        and computes its baselines; records a dataset that fails in ``self.data_errors``."""
        from musicvae_xai import datasets  # here: the readers it loads import music21 (seconds)

        entries = self.entries if entries is None else entries
        groups: dict = {}
        for e in entries:
            cfg = dataset_config(e.config)
            cache_dir = e.config.cache_dir or DEFAULT_CACHE_DIR
            key = json.dumps([cfg.to_dict(), cache_dir], sort_keys=True)
            groups.setdefault(key, (cfg, cache_dir, []))[2].append(e.name)
        path = os.path.join(self.study_dir, BASELINES_FILENAME)
        stored = read_json(path) or {}
        for cfg, cache_dir, names in groups.values():
            self.log(f"[study] dataset {cfg.name}: building or reusing its cache in {cache_dir} "
                     f"({len(names)} configuration(s))")
            try:
                built = datasets.build(cfg, cache_dir, progress=False)
                baselines = majority_baselines(built)
                baselines["cache"] = os.path.basename(str(built.path))
            except (ValueError, FileNotFoundError, OSError) as e:
                message = f"dataset {cfg.name} could not be built: {e}"
                self.log(f"[study] {message}")
                for name in names:
                    self.data_errors[name] = message
                continue
            for name in names:
                self.baselines[name] = baselines
            stored[os.path.basename(str(built.path))] = {"dataset": cfg.name, **baselines}
        os.makedirs(self.study_dir, exist_ok=True)
        write_json(path, stored)

    # -- running ---------------------------------------------------------------------------------
    def _write_entry(self, entry: grid_mod.Entry) -> str:
        run_dir = self.run_dir(entry)
        os.makedirs(run_dir, exist_ok=True)
        payload = {"name": entry.name, "grid": entry.grid, "config": entry.config.to_dict(),
                   "evaluation": self.spec.evaluation_options(), "export_base": self.export_base(entry),
                   "verify_export": self.spec.verify_export, "threads": self.threads,
                   "baselines": self.baselines.get(entry.name)}
        write_json(os.path.join(run_dir, ENTRY_FILENAME), payload)
        return run_dir

    def _start(self, entry: grid_mod.Entry) -> _Running:
        run_dir = self._write_entry(entry)
        log = open(os.path.join(run_dir, LOG_FILENAME), "a", encoding="utf-8")
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} worker start, {self.threads} thread(s)\n")
        log.flush()
        # Its own process group (stopped with one killpg) and our pid, so that it dies with us (lifeline).
        process = subprocess.Popen(self.worker_argv(run_dir), stdout=log, stderr=subprocess.STDOUT,
                                   env={**thread_env(self.threads), PARENT_ENV: str(os.getpid())},
                                   start_new_session=True)
        return _Running(entry.name, process, time.time(), log)

    def _finish(self, running: _Running, entry: grid_mod.Entry) -> dict:
        running.log.close()
        result = self.previous_result(entry)
        fresh = result is not None and result.get("status") in ("ok", "failed") and \
            os.path.getmtime(os.path.join(self.run_dir(entry), RESULT_FILENAME)) >= running.started - 1
        if not fresh:
            tail = _log_tail(os.path.join(self.run_dir(entry), LOG_FILENAME))
            error = f"worker exited with status {running.process.returncode} without a result" + \
                (f"; last log line: {tail}" if tail else "")
            result = failure_record(self._entry_payload(entry), "worker", error,
                                    os.path.join(self.run_dir(entry), LOG_FILENAME))
            if not runlock.holder(self.run_dir(entry)):  # never write into a run_dir another process holds
                write_json(os.path.join(self.run_dir(entry), RESULT_FILENAME), result)
        return result

    def _entry_payload(self, entry: grid_mod.Entry) -> dict:
        return {"name": entry.name, "grid": entry.grid, "config": entry.config.to_dict()}

    def run(self) -> dict:
        """Prepares data, runs every configuration not done yet; returns the summary
        {"ok": [...], "failed": [...], "skipped": [...]} (names). Ctrl-C stops the workers and returns
        (their checkpoints stay for the next run) by raising KeyboardInterrupt. A second runner on the
        same study folder is refused (StudyError naming the first's pid) before it writes anything."""
        try:
            runlock.acquire(self.study_dir, RUNNER_LOCK_FILENAME, "study runner")
        except runlock.RunDirLockedError as e:
            raise grid_mod.StudyError(str(e)) from None
        try:
            return self._run()
        finally:
            runlock.release(self.study_dir, RUNNER_LOCK_FILENAME)

    def _run(self) -> dict:
        self.write_study_file()
        skipped = [e.name for e in self.entries if self.is_done(e)]
        todo = [e for e in self.entries if e.name not in set(skipped)]
        self.log(f"[study] {len(self.entries)} configuration(s): {len(skipped)} already done, {len(todo)} to run, "
                 f"{self.parallel} at a time with {self.threads} thread(s) each")
        ok, failed = [], []
        if todo:
            self.prepare(todo)
        by_name = {e.name: e for e in todo}
        queue = []
        for e in todo:
            if e.name in self.data_errors:
                write_json(os.path.join(self._write_entry(e), RESULT_FILENAME),
                           failure_record(self._entry_payload(e), "data", self.data_errors[e.name]))
                failed.append(e.name)
                self.log(f"[study] FAILED {e.name} (data): {self.data_errors[e.name]}")
            else:
                queue.append(e)
        durations = [r["wall_seconds"]["total"] for r in (self.previous_result(e) for e in self.entries
                                                          if e.name in skipped)
                     if r and r.get("status") == "ok" and r.get("wall_seconds", {}).get("total")]
        running: list = []
        last_status = time.time()
        try:
            while queue or running:
                while queue and len(running) < self.parallel:
                    e = queue.pop(0)
                    holder = runlock.holder(self.run_dir(e))
                    if holder:  # another runner or trainer is on it: leave its run_dir alone
                        failed.append(e.name)
                        self.log(f"[study] FAILED {e.name} (lock): run_dir {self.run_dir(e)} is in use ({holder})")
                        continue
                    running.append(self._start(e))
                    self.log(f"[study] started {e.name}")
                time.sleep(self.poll_seconds)
                for r in list(running):
                    if r.process.poll() is None:
                        continue
                    running.remove(r)
                    result = self._finish(r, by_name[r.name])
                    took = time.time() - r.started
                    if result.get("status") == "ok":
                        ok.append(r.name)
                        durations.append(took)
                        m = result["metrics"]
                        self.log(f"[study] done {r.name} in {format_duration(took)}: token accuracy "
                                 f"{m['token_accuracy']:.3f}, note accuracy {m['note_accuracy']:.3f}, "
                                 f"interpretability {m['interpretability_mean']:.3f}")
                    else:
                        failed.append(r.name)
                        self.log(f"[study] FAILED {r.name} ({result.get('stage')}): {result.get('error')}")
                    self._progress(ok, failed, skipped, running, queue, durations)
                    last_status = time.time()
                if running and time.time() - last_status >= self.status_every:
                    self._progress(ok, failed, skipped, running, queue, durations)
                    last_status = time.time()
        except KeyboardInterrupt:
            self.log(f"[study] interrupted: stopping {len(running)} worker(s); rerun the same command to resume")
            _stop(running)
            raise
        except BaseException:
            _stop(running)  # no worker outlives the runner
            raise
        self._progress(ok, failed, skipped, [], [], durations)
        return {"ok": ok, "failed": failed, "skipped": skipped}

    def _progress(self, ok, failed, skipped, running, queue, durations) -> None:
        done = len(ok) + len(failed) + len(skipped)
        total = len(self.entries)
        eta = None
        if durations:
            mean = float(np.mean(durations))
            now = time.time()
            left = mean * len(queue) + sum(max(mean - (now - r.started), 0.0) for r in running)
            eta = left / self.parallel
        elif not running and not queue:
            eta = 0.0
        line = (f"[study] {done}/{total} done ({len(ok)} ok now, {len(failed)} failed, {len(skipped)} done "
                f"before), {len(running)} running, {len(queue)} remaining, ETA {format_duration(eta)}")
        self.log(line)
        write_json(os.path.join(self.study_dir, STATUS_FILENAME), {
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "total": total, "ok": ok, "failed": failed,
            "skipped": skipped, "running": [r.name for r in running], "remaining": [e.name for e in queue],
            "eta_seconds": eta})


def _stop(running: list, grace: float = 30.0) -> None:
    """SIGTERM to each worker's process group, SIGKILL to those still alive after ``grace`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for r in running:
            if r.process.poll() is None:
                try:
                    os.killpg(r.process.pid, sig)
                except OSError:  # already gone
                    pass
        deadline = time.time() + grace
        for r in running:
            try:
                r.process.wait(timeout=max(0.0, deadline - time.time()))
            except subprocess.TimeoutExpired:
                pass
        if all(r.process.poll() is not None for r in running):
            break
    for r in running:
        r.log.close()


def _log_tail(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = [ln.strip() for ln in f.read().splitlines()[-50:] if ln.strip()]
    except OSError:
        return ""
    for line in reversed(lines):  # prefer the line that names the error
        if "Error" in line or line.startswith("error"):
            return line[:300]
    return lines[-1][:300] if lines else ""
