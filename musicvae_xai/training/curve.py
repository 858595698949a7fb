"""Evaluation during training: a run's learning curve, ``curve.json`` in its run folder.

At every point of ``RunConfig.curve_epochs`` / ``curve_steps`` the trainer saves a checkpoint and then
evaluates the model as it is, with ``evaluation.evaluate_model`` on fixed measures of the validation
and test splits (``curve_measures`` of each, drawn once with the evaluation seed), and appends one
point to ``curve.json``::

    {"format": 1, "steps_per_epoch": 2473, "batch_size": 64,
     "points": [{"step": 371, "epoch": 0.15, "measures_seen": 23744,
                 "validation": {...}, "test": {...}}, ...]}

where each split's dict holds every metric of a study's ``result.json`` (``metric_registry.
summarize_evaluation``). The same scalars go to TensorBoard under ``curve_validation`` and ``curve_test``.

Resuming: a point is evaluated right after its checkpoint is written, so an interrupted run resumes
from that checkpoint and evaluates the point before it trains on (``pending``); points already in the
file are never evaluated twice. The file is rewritten atomically after each point.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Optional

import numpy as np
from absl import logging

from musicvae_xai.config import EvaluationOptions, RunConfig
from musicvae_xai.metric_registry import summarize_evaluation

CURVE_FILENAME = "curve.json"
CURVE_FORMAT = 1
#: The splits evaluated at every point, in this order.
CURVE_SPLITS = ("validation", "test")


def epoch_step(epochs: float, steps_per_epoch: int) -> int:
    """The step (int, at least 1) at which ``epochs`` of training end."""
    return max(1, int(round(float(epochs) * steps_per_epoch)))


def curve_points(config: RunConfig, steps_per_epoch: int, total_steps: int) -> list:
    """The sorted steps (int) at which ``config`` asks for an evaluation, within 1..total_steps: each
    epoch of ``curve_epochs`` rounded to a step, and each step of ``curve_steps``."""
    steps = {epoch_step(e, steps_per_epoch) for e in config.curve_epochs}
    steps |= {int(s) for s in config.curve_steps}
    return sorted(s for s in steps if 1 <= s <= total_steps)


def read_curve(run_dir: str) -> Optional[dict]:
    """The parsed ``curve.json`` of ``run_dir``, or None when it is missing or unreadable."""
    try:
        with open(os.path.join(run_dir, CURVE_FILENAME), encoding="utf-8") as f:
            value = json.load(f)
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) and isinstance(value.get("points"), list) else None


def _scalars(metrics: dict) -> dict:
    """The finite scalar metrics of a summary (lists and nulls left out)."""
    return {k: float(v) for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


class CurveRecorder:
    """Evaluates a live model at curve points and keeps ``curve.json`` (chief only).

    ``splits``: {name: int32 [N, 24] token ids} of the evaluated splits (``CURVE_SPLITS``);
    ``train_tokens`` int32 [M, 24]: fits the majority-token baselines, scored on the same measures;
    ``options``: the evaluation options (``split`` is replaced by each split's name; ``max_measures`` by
    the config's ``curve_measures``).
    """

    def __init__(self, config: RunConfig, splits: dict, train_tokens: np.ndarray, steps_per_epoch: int,
                 options: Optional[EvaluationOptions] = None, writers: Optional[dict] = None):
        self.config = config
        self.run_dir = config.run_dir
        self.splits = {k: v for k, v in splits.items() if v is not None and len(v)}
        self.train_tokens = train_tokens
        self.steps_per_epoch = int(steps_per_epoch)
        base = options or EvaluationOptions(sweep_measures=32)
        self.options = {name: dataclasses.replace(base, split=name, max_measures=config.curve_measures).validate()
                        for name in self.splits}
        self.writers = writers or {}
        self._runner = None
        existing = read_curve(self.run_dir)
        self.points = list(existing["points"]) if existing else []

    def done(self) -> set:
        """Steps already in ``curve.json``."""
        return {int(p["step"]) for p in self.points if isinstance(p, dict) and "step" in p}

    def record(self, model, step: int) -> dict:
        """Evaluates ``model`` at ``step`` on every split, appends the point and rewrites the file."""
        from musicvae_xai import evaluation, inference  # TensorFlow: only once a point is evaluated

        if self._runner is None or self._runner.model is not model:
            self._runner = inference.Runner(model, self.options[next(iter(self.options))].batch_size)
        point = {"step": int(step), "epoch": step / self.steps_per_epoch,
                 "measures_seen": int(step) * self.config.batch_size}
        for name, tokens in self.splits.items():
            report = evaluation.evaluate_model(self.config, model, tokens, self.options[name],
                                               runner=self._runner, train_tokens=self.train_tokens)
            point[name] = summarize_evaluation(report)  # with the baselines on these measures
            self._summaries(name, step, point[name])
        self.points = [p for p in self.points if p.get("step") != step] + [point]
        self.points.sort(key=lambda p: p["step"])
        self._write()
        logging.info("curve point at step %d (epoch %.3g): %s", step, point["epoch"],
                     " ".join(f"{n} token_accuracy={point[n].get('token_accuracy', float('nan')):.4f}"
                              for n in self.splits))
        return point

    def _summaries(self, split: str, step: int, metrics: dict) -> None:
        writer = self.writers.get(split)
        if writer is None:
            return
        import tensorflow as tf
        with writer.as_default(step=step):
            for k, v in _scalars(metrics).items():
                tf.summary.scalar(k, v)
        writer.flush()

    def _write(self) -> None:
        payload = {"format": CURVE_FORMAT, "steps_per_epoch": self.steps_per_epoch,
                   "batch_size": self.config.batch_size, "splits": list(self.splits), "points": self.points}
        path = os.path.join(self.run_dir, CURVE_FILENAME)
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=1, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
