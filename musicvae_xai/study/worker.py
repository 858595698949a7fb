"""One configuration of a study, run in its own process: train -> evaluate -> export -> result.json.

    musicvae-study-worker --run_dir=STUDY_DIR/NAME     (python -m musicvae_xai.cli.study_worker)

reads ``STUDY_DIR/NAME/entry.json`` (written by the study runner: the configuration, evaluation
options, export folder, thread budget and the dataset's majority baselines) and runs each stage that
has not finished yet, so re-running it after an interruption continues where it stopped:

* train: skipped when the run has its ``FINISHED`` marker and a ``train_metrics.json`` of the same
  settings (``same_settings``); otherwise the trainer resumes from the run's latest checkpoint
  (``resumed_from_step`` records where it started; more ``train_steps`` continue a finished run);
* evaluate: skipped when ``evaluation_<split>.json`` was made with the same options and training did
  not run again (``study_stages.json`` records what each stage did);
* export: skipped when this run was exported and training did not run again (then a new version is
  written; versions are never overwritten), and when the study does not export.

It ends by writing ``result.json`` (see ``build_result``). An exception in a stage is written as a
``result.json`` with ``status: "failed"``, the stage and the error, and the process exits with status
1. An interruption (KeyboardInterrupt, a kill) writes nothing, so the next run resumes. The worker holds
the run_dir's lock (``training.runlock``) throughout: a second worker or trainer on it exits at once with
one line naming the holder's pid. Started by the runner, it dies with it (``study.lifeline``).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import time
import traceback
from typing import Optional

from musicvae_xai import __version__
from musicvae_xai.config import LOCATION_FIELDS, EvaluationOptions, RunConfig
from musicvae_xai.metric_registry import summarize_evaluation  # the metrics of a result.json
from musicvae_xai.study.hparams import HPARAMS_DIRNAME, write_hparams
from musicvae_xai.study.results import RESULT_FILENAME
from musicvae_xai.training import runlock

# TensorFlow (training, checkpoints, evaluation, export) is imported inside the stages that use it: the
# study runner imports this module (``same_settings``, the file names) and stays free of TensorFlow.

ENTRY_FILENAME = "entry.json"
TRAIN_METRICS_FILENAME = "train_metrics.json"
STAGES_FILENAME = "study_stages.json"
RESULT_FORMAT = 1


def same_settings(a: Optional[dict], b: Optional[dict]) -> bool:
    """True when two RunConfig dicts differ at most in ``LOCATION_FIELDS``, among the settings of their
    model (the shared ones and the model's own; a key of another model's settings, which older
    configurations held, does not count).

    A setting one side lacks (a configuration saved before the setting existed) counts as its default,
    so adding a setting with a default that keeps the old behaviour does not retrain a study."""
    if not isinstance(a, dict) or not isinstance(b, dict):
        return False
    defaults = RunConfig(model=a.get("model", RunConfig().model)).to_dict()
    keys = set(defaults) - LOCATION_FIELDS
    return all(a.get(k, defaults.get(k)) == b.get(k, defaults.get(k)) for k in keys)


def write_json(path: str, payload) -> None:
    """Writes ``payload`` as indented JSON to ``path`` atomically (temporary file + rename)."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def read_json(path: str) -> Optional[dict]:
    """The JSON object at ``path``, or None when it is missing or unreadable."""
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
        return value if isinstance(value, dict) else None
    except (OSError, ValueError):
        return None


def one_line(error: BaseException) -> str:
    """``Type: message`` on one line; for TensorFlow's "in user code:" errors, the line that names the
    actual problem (the last one) rather than the header."""
    text = [ln.strip() for ln in str(error).strip().splitlines() if ln.strip()]
    if not text:
        return type(error).__name__
    line = text[-1] if text[0].endswith("in user code:") and len(text) > 1 else text[0]
    return line if line.startswith(f"{type(error).__name__}:") else f"{type(error).__name__}: {line}"


def cpu_seconds() -> float:
    """User + system CPU time of this process so far (every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _latest_step(run_dir: str) -> int:
    from musicvae_xai.training import checkpoints as ckpts
    path = ckpts.latest_checkpoint(run_dir)
    try:
        return int(path.rsplit("-", 1)[1]) if path else 0
    except (IndexError, ValueError):
        return 0


def train_stage(entry: dict, run_dir: str) -> dict:
    from musicvae_xai.training import checkpoints as ckpts
    from musicvae_xai.training.loop import Trainer

    path = os.path.join(run_dir, TRAIN_METRICS_FILENAME)
    done = read_json(path)
    if done is not None and os.path.exists(os.path.join(run_dir, ckpts.FINISHED_FILENAME)) \
            and same_settings(done.get("config"), entry["config"]):
        done["skipped"] = True
        return done
    config = RunConfig.from_dict(entry["config"])
    start = _latest_step(run_dir)
    t0 = time.time()
    metrics = Trainer(config, progress=False, evaluation=EvaluationOptions(**entry["evaluation"])).run()
    seconds = time.time() - t0
    out = {"metrics": {k: float(v) for k, v in metrics.items()}, "seconds": seconds, "resumed_from_step": start,
           "steps": int(metrics.get("steps", 0)), "config": entry["config"]}
    write_json(path, out)
    return out


def _stages(run_dir: str) -> dict:
    return read_json(os.path.join(run_dir, STAGES_FILENAME)) or {}


def _mark_stage(run_dir: str, **values) -> None:
    write_json(os.path.join(run_dir, STAGES_FILENAME), {**_stages(run_dir), **values})


def evaluate_stage(entry: dict, run_dir: str, force: bool = False) -> tuple:
    """(report, path, skipped): reuses the evaluation of an earlier attempt made with the same options
    on the same training, else evaluates (``force``: training has just changed)."""
    from musicvae_xai.evaluation import evaluate_run

    options = EvaluationOptions(**entry["evaluation"])
    path = os.path.join(run_dir, f"evaluation_{options.split}.json")
    report = read_json(path)
    if report is not None and not force and _stages(run_dir).get("evaluation") == entry["evaluation"]:
        return report, path, True
    report = evaluate_run(run_dir, options)
    write_json(path, report)
    _mark_stage(run_dir, evaluation=entry["evaluation"])
    return report, path, False


def export_stage(entry: dict, run_dir: str, force: bool = False) -> tuple:
    """(export path or None, skipped): version 1 normally; a new version when training has changed
    since an earlier export (versions are never overwritten)."""
    base = entry.get("export_base")
    if not base:
        return None, True
    done = _stages(run_dir).get("export")
    if done and os.path.isdir(done) and not force:
        return done, True
    from musicvae_xai.export import export_run
    version = None if os.path.isdir(os.path.join(base, "1")) else 1
    path = export_run(run_dir, base, version=version, verify=entry.get("verify_export", True))
    _mark_stage(run_dir, export=path)
    return path, False


def build_result(entry: dict, train: dict, evaluation: dict, timings: dict, export_dir: Optional[str],
                 evaluation_file: str, cpu: Optional[dict] = None) -> dict:
    """The ``result.json`` record of a finished configuration.

    Keys: format, status ("ok"), name, grid {model, latent_dim, dataset, attributes, attribute_count,
    seed}, flags (the complete RunConfig), metrics (``summarize_evaluation``; its ``baselines`` are the
    majority-token accuracies on exactly the evaluated measures), training {val_* and final training
    metrics, steps, resumed_from_step}, baselines (majority-token accuracies of the dataset's whole splits),
    wall_seconds and cpu_seconds {train, evaluate, export, total} (of the invocation that
    ran each stage; CPU = user + system time of the worker, less affected by a busy machine), throughput
    {measures_per_second, steps_per_second, batch_size}, threads, export_dir, host.
    """
    tm = train.get("metrics", {})
    batch = entry["config"]["batch_size"]
    mps = float(tm.get("measures_per_second", 0.0))
    return {
        "format": RESULT_FORMAT,
        "status": "ok",
        "name": entry["name"],
        "grid": entry["grid"],
        "flags": entry["config"],
        "metrics": summarize_evaluation(evaluation),
        "evaluation_options": entry["evaluation"],
        "training": {**{k: v for k, v in tm.items() if k != "measures_per_second"},
                     "resumed_from_step": train.get("resumed_from_step", 0)},
        "baselines": entry.get("baselines") or {},
        "wall_seconds": timings,
        "cpu_seconds": cpu or {},
        "throughput": {"measures_per_second": mps, "steps_per_second": mps / batch if batch else 0.0,
                       "batch_size": batch},
        "threads": entry.get("threads"),
        "export_dir": os.path.relpath(export_dir, os.path.dirname(os.path.abspath(entry["config"]["run_dir"])))
        if export_dir else None,  # relative to the study folder
        "evaluation_file": os.path.basename(evaluation_file),
        "host": {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
                 "library": __version__},
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def failure_record(entry: dict, stage: str, error: str, log: Optional[str] = None) -> dict:
    """The ``result.json`` of a configuration that failed in ``stage`` with the one-line ``error``."""
    return {"format": RESULT_FORMAT, "status": "failed", "name": entry.get("name"), "grid": entry.get("grid"),
            "flags": entry.get("config"), "stage": stage, "error": error, "log": log,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def run_entry(run_dir: str) -> dict:
    """Runs (or resumes) the configuration whose ``entry.json`` is in ``run_dir``; returns its result
    record (also written to ``run_dir/result.json``), with status "ok" or "failed"."""
    entry = read_json(os.path.join(run_dir, ENTRY_FILENAME))
    if entry is None:
        raise FileNotFoundError(f"{run_dir}: no readable {ENTRY_FILENAME} (written by the study runner)")
    with runlock.hold_run_dir(run_dir):  # RunDirLockedError (nothing written) when another process has it
        return _run_entry(entry, run_dir)


def _run_entry(entry: dict, run_dir: str) -> dict:
    threads = entry.get("threads")
    if threads:
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(int(threads))
    timings, cpu, stage = {}, {}, "train"
    result_path = os.path.join(run_dir, RESULT_FILENAME)
    t_all, c_all = time.time(), cpu_seconds()
    try:
        c0 = cpu_seconds()
        train = train_stage(entry, run_dir)
        timings["train"] = 0.0 if train.get("skipped") else train["seconds"]
        cpu["train"] = cpu_seconds() - c0
        stage = "evaluate"
        t0, c0 = time.time(), cpu_seconds()
        retrained = not train.get("skipped")
        report, eval_path, skipped = evaluate_stage(entry, run_dir, force=retrained)
        timings["evaluate"] = 0.0 if skipped else time.time() - t0
        cpu["evaluate"] = cpu_seconds() - c0
        stage = "export"
        t0, c0 = time.time(), cpu_seconds()
        export_dir, skipped = export_stage(entry, run_dir, force=retrained)
        timings["export"] = 0.0 if skipped else time.time() - t0
        cpu["export"] = cpu_seconds() - c0
        timings["total"] = time.time() - t_all
        cpu["total"] = cpu_seconds() - c_all
        result = build_result(entry, train, report, timings, export_dir, eval_path, cpu)
    except Exception as e:  # recorded; KeyboardInterrupt / SystemExit propagate and record nothing
        traceback.print_exc()
        result = failure_record(entry, stage, one_line(e))
    if result["status"] == "ok":
        log_hparams(run_dir, result)
    write_json(result_path, result)
    return result


def log_hparams(run_dir: str, result: dict) -> None:
    """Logs the configuration's hyper-parameters and final metrics for TensorBoard's HParams dashboard
    in ``run_dir/hparams`` (``musicvae_xai.study.hparams``), with the study's grid (``study.json`` of the
    study folder) as domains. A failure is recorded in ``result["hparams_error"]``, never fatal."""
    study = read_json(os.path.join(os.path.dirname(os.path.abspath(run_dir)), "study.json")) or {}
    try:
        write_hparams(os.path.join(run_dir, HPARAMS_DIRNAME), result, study.get("study"))
    except Exception as e:  # the result stands without its dashboard entry
        traceback.print_exc()
        result["hparams_error"] = one_line(e)
