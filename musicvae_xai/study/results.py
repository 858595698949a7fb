"""Reading a study's ``result.json`` files and aggregating them over seeds.

Every function takes plain result records (dicts written by ``musicvae_xai.study.worker``), so the
report can be made from a study folder or from result files copied elsewhere (``docs/results/``).
"""

from __future__ import annotations

import glob
import json
import os
from typing import Optional, Sequence

import numpy as np

from musicvae_xai import metric_registry

#: What the study worker writes in each run folder (``study.worker``).
RESULT_FILENAME = "result.json"
STUDY_FILENAME = "study.json"
BASELINES_FILENAME = "baselines.json"


#: The metrics of the report, in table order (keys of a result's ``metrics``): those of the metric
#: registry marked ``in_study``.
METRICS = metric_registry.metrics(in_study=True)
METRIC_KEYS = tuple(m.key for m in METRICS)
DATASET_ORDER = ("irish", "turkish", "classical", "pop", "embedded")


def load_results(root: str) -> tuple:
    """(records, unreadable paths) of every ``result.json`` under ``root`` (recursively), sorted by name."""
    records, bad = [], []
    for path in sorted(glob.glob(os.path.join(root, "**", RESULT_FILENAME), recursive=True)):
        try:
            with open(path, encoding="utf-8") as f:
                record = json.load(f)
            if not isinstance(record, dict) or "status" not in record or "grid" not in record:
                raise ValueError("not a study result")
        except (OSError, ValueError):
            bad.append(path)
            continue
        record["_path"] = path
        records.append(record)
    records.sort(key=lambda r: r.get("name") or "")
    return records, bad


def load_expected(root: str) -> list:
    """The entries (name + grid) the study meant to run, from ``root/study.json`` (empty if absent)."""
    path = os.path.join(root, STUDY_FILENAME)
    try:
        with open(path, encoding="utf-8") as f:
            return list(json.load(f).get("entries", []))
    except (OSError, ValueError, AttributeError):
        return []


def load_baselines(root: str) -> dict:
    """{dataset: baselines} from ``root/baselines.json`` (written by the runner's data preparation)."""
    try:
        with open(os.path.join(root, BASELINES_FILENAME), encoding="utf-8") as f:
            stored = json.load(f)
    except (OSError, ValueError):
        return {}
    out = {}
    for value in stored.values() if isinstance(stored, dict) else []:
        if isinstance(value, dict) and "dataset" in value:
            out.setdefault(value["dataset"], value)
    return out


def load_study_info(root: str) -> dict:
    """The parsed study (``study.json``'s "study": path, grid axes, shared settings), or {}."""
    try:
        with open(os.path.join(root, STUDY_FILENAME), encoding="utf-8") as f:
            info = json.load(f).get("study", {})
        return info if isinstance(info, dict) else {}
    except (OSError, ValueError, AttributeError):
        return {}


def ok(records: Sequence[dict]) -> list:
    return [r for r in records if r.get("status") == "ok" and isinstance(r.get("metrics"), dict)]


def key_of(record: dict, drop: Sequence[str] = ()) -> tuple:
    """Grid coordinates (model, dataset, attributes, latent_dim, seed) minus the ``drop`` axes."""
    g = record["grid"]
    full = {"model": g["model"], "dataset": g["dataset"], "attributes": tuple(g["attributes"]),
            "latent_dim": int(g["latent_dim"]), "seed": int(g.get("seed", 0))}
    return tuple(v for k, v in full.items() if k not in drop)


def metric_value(record: dict, key: str) -> Optional[float]:
    value = record.get("metrics", {}).get(key)
    return None if value is None else float(value)


def spread_over_seeds(records: Sequence[dict], key: str) -> dict:
    """{(model, dataset, attributes, latent_dim): (mean, sd, n, [value per seed])} of metric ``key``;
    sd is the sample standard deviation over seeds (ddof=1), None for a single seed."""
    groups: dict = {}
    for r in ok(records):
        v = metric_value(r, key)
        if v is not None and np.isfinite(v):
            groups.setdefault(key_of(r, drop=("seed",)), []).append(v)
    return {k: (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else None, len(v), list(v))
            for k, v in groups.items()}


def ordered(values, order: Sequence[str]) -> list:
    """Sorted by position in ``order``, unknown values last (alphabetically)."""
    return sorted(set(values), key=lambda v: (order.index(v) if v in order else len(order), str(v)))

