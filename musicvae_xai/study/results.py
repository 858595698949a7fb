"""Reading a study's ``result.json`` files and aggregating them over seeds.

Every function takes plain result records (dicts written by ``musicvae_xai.study.worker``), so the
report can be made from a study folder or from result files copied elsewhere (``docs/results/``).
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
from typing import Optional, Sequence

import numpy as np

RESULT_FILENAME = "result.json"
STUDY_FILENAME = "study.json"
BASELINES_FILENAME = "baselines.json"


@dataclasses.dataclass(frozen=True)
class Metric:
    key: str
    label: str
    higher_is_better: Optional[bool]
    meaning: str


#: The metrics of the report, in table order (keys of a result's ``metrics``).
METRICS = (
    Metric("token_accuracy", "Recon. acc.", True,
           "reconstruction accuracy: share of the 24 tokens of a test measure reproduced by greedy decoding "
           "(no teacher forcing) from a sampled latent code"),
    Metric("note_accuracy", "Note acc.", True,
           "the same, counted only on ticks whose target is a pitch or a rest (not `hold`, `start` or `end`), "
           "which the many easy `hold` tokens cannot inflate"),
    Metric("kl_per_measure", "KL", None,
           "KL divergence of the posterior from the N(0, I) prior per measure (nats); higher means the "
           "code carries more information, lower means a smoother, more prior-like latent space"),
    Metric("interpretability_mean", "Interp.", True,
           "interpretability: for each attribute, the latent dim with the highest mutual information "
           "with it and the R^2 of a linear fit of the attribute on that dim; mean over attributes"),
    Metric("mig", "MIG", True,
           "mutual information gap: (largest - second largest MI of an attribute with any latent dim) / "
           "entropy of the attribute, mean over attributes, not clipped (the k-NN MI estimates can make it "
           "slightly negative); high when one dim alone carries an attribute"),
    Metric("sap", "SAP", True,
           "separated attribute predictability: gap between the two best single-dim linear R^2 scores of "
           "an attribute, mean over attributes"),
    Metric("scc", "SCC", True,
           "Spearman correlation coefficient: largest |rank correlation| of an attribute with any latent "
           "dim (0 when not significant), mean over attributes"),
    Metric("modularity", "Modul.", True,
           "modularity (Ridgeway & Mozer, as ar-vae computes it): how much each latent dim depends on one attribute "
           "only, plain mean over dims (the MI-weighted variant is kept in results as `modularity_mi_weighted`)"),
    Metric("controllability", "Control.", True,
           "controllability: sweeping a control (a regularised latent dim of MeasureVAE, an attribute input "
           "of AdversarialVAE) over its range and decoding, the mean |Spearman rho| between the control value "
           "and the attribute it is meant to move"),
    Metric("leakage", "Leakage", False,
           "leakage: in the same sweeps, the mean |Spearman rho| between a control and the attributes it "
           "is NOT meant to move; lower means more independent attributes"),
)
METRIC_KEYS = tuple(m.key for m in METRICS)
MODEL_LABELS = {"measure_vae": "MeasureVAE", "adversarial_vae": "AdversarialVAE"}
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


def attribute_count_label(attributes: Sequence[str]) -> str:
    n = len(attributes)
    return f"{n} attribute{'s' if n != 1 else ''} ({', '.join(attributes)})"
