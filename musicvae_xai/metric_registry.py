"""The metric registry: every scalar score of an evaluation, declared once.

Each ``Metric`` says where its value is in an evaluation report (``evaluation.evaluate_model``'s
JSON), what it is called, which direction is better, how it is printed and what it means. The
readers iterate over ``METRICS`` instead of copying keys:

* ``summarize_evaluation``: a result.json's (and a curve point's) ``metrics`` holds every metric under ``key``;
* ``study.report`` / ``study.figures``: a table column, a figure and a glossary entry per metric
  with ``in_study`` (in this order);
* ``evaluation.format_report``: the metrics with a ``table`` line ("disentanglement",
  "independence") are printed there, in this order;
* the evaluation JSON itself holds ``metrics.disentanglement_report``'s keys as they are, so a latent
  metric added there is in the JSON and, registered here, everywhere else.

A new metric: compute it (``metrics.py``), register it here. This module imports nothing beyond the
standard library (no TensorFlow, no numpy).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Optional


@dataclasses.dataclass(frozen=True)
class Metric:
    """One scalar metric; ``source`` is its dotted path in an evaluation report ("mig",
    "interpretability.mean"), or ``derive(report)`` computes it from the report."""

    key: str                                  # name in a result's "metrics"
    label: str                                # short name in study tables and figures
    higher_is_better: Optional[bool]          # None: neither direction is better
    meaning: str                              # glossary text
    source: str = ""                          # dotted path in the evaluation report (default: key)
    derive: Optional[Callable[[dict], Any]] = None
    digits: int = 3                           # decimals when printed
    in_study: bool = False                    # a column, figure and glossary entry of the study report
    table: Optional[str] = None               # line of the evaluation table: "disentanglement", "independence"
    table_label: str = ""                     # its name on that line
    table_note: str = ""                      # words after it in parentheses (independence line)
    qualifies: Optional[str] = None           # printed in parentheses after this other metric's value

    @property
    def direction(self) -> str:
        """'higher', 'lower' or '' (which value is better)."""
        return {True: "higher", False: "lower", None: ""}[self.higher_is_better]

    def value(self, report: dict):
        """The metric's value in an evaluation report; None when the report lacks it (e.g. an older
        report without ``modularity_mi_weighted``, a model without controls)."""
        if self.derive is not None:
            return self.derive(report)
        node: Any = report
        for part in (self.source or self.key).split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def format(self, value, missing: str = "-", digits: Optional[int] = None) -> str:
        """``value`` with ``digits`` (default ``self.digits``) decimals; ``missing`` for None/NaN."""
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return missing
        return f"{value:.{self.digits if digits is None else digits}f}"


def active_dims(report: dict) -> Optional[int]:
    """How many latent dims of an evaluation report have a mean KL above ``ACTIVE_DIM_NATS`` (None without
    ``kl_per_dim``)."""
    dims = report.get("kl_per_dim")
    return None if dims is None else int(sum(1 for k in dims if k > ACTIVE_DIM_NATS))


#: A latent dim whose mean KL exceeds this many nats counts as active (used, not collapsed).
ACTIVE_DIM_NATS = 0.01

_METRICS: list = []


def register(metric: Metric) -> Metric:
    """Adds ``metric`` at the end of the order; a second metric with the same key is refused."""
    if any(m.key == metric.key for m in _METRICS):
        raise ValueError(f"metric {metric.key!r} is already registered")
    _METRICS.append(metric)
    return metric


def metrics(in_study: Optional[bool] = None, table: Optional[str] = None) -> tuple:
    """The registered metrics in order, optionally only those in the study report / on a table line."""
    return tuple(m for m in _METRICS if (in_study is None or m.in_study == in_study)
                 and (table is None or m.table == table))


def get(key: str) -> Metric:
    for m in _METRICS:
        if m.key == key:
            return m
    raise KeyError(f"unknown metric {key!r}")


def summarize(report: dict) -> dict:
    """{key: value} of every registered metric in an evaluation report."""
    return {m.key: m.value(report) for m in _METRICS}


def summarize_evaluation(report: dict) -> dict:
    """The small metrics dict of a result (and of a learning-curve point) from an
    ``evaluation.evaluate_model`` report: every registered metric under its key, plus the per-attribute
    interpretability rows, the independence matrix (empty for a model without controls) and the
    majority-token ``baselines`` scored on exactly the evaluated measures (None when the evaluation had no
    training split to fit them on)."""
    interp = report["interpretability"]
    ind = report["attribute_independence"]
    return {
        "num_measures": report["num_measures"],
        **summarize(report),
        "interpretability": [{k: row[k] for k in ("attribute", "dim", "r2", "intended_dim", "is_intended")}
                             for row in interp["per_attribute"]],
        "independence_attributes": ind["attributes"],
        "independence_matrix": ind["matrix"],
        "baselines": report.get("baselines"),
    }


# -- the metrics of this library, in the study report's column order ---------------------------------
register(Metric("token_accuracy", "Recon. acc.", True,
                "reconstruction accuracy: share of the 24 tokens of a test measure reproduced by greedy decoding "
                "(no teacher forcing) from a sampled latent code", in_study=True))
register(Metric("note_accuracy", "Note acc.", True,
                "the same, counted only on ticks whose target is a pitch or a rest (not `hold`, `start` or `end`), "
                "which the many easy `hold` tokens cannot inflate", in_study=True))
register(Metric("token_accuracy_mean_z", "Token acc. (mean z)", True,
                "reconstruction accuracy decoding from the posterior mean instead of a sample"))
register(Metric("note_accuracy_mean_z", "Note acc. (mean z)", True,
                "note accuracy decoding from the posterior mean instead of a sample"))
register(Metric("token_accuracy_bin_centres", "Acc. (bin centres)", True,
                "reconstruction accuracy of a decoder-input model (AdversarialVAE) when each attribute it is "
                "given is replaced by the centre of its ordinal bin (null for other models)"))
register(Metric("token_accuracy_train_mean", "Acc. (train mean)", True,
                "the same with every attribute set to its training-split mean: what the decoder can "
                "reconstruct without being told the measure's attributes (null for other models)"))
register(Metric("kl_per_measure", "KL", None,
                "KL divergence of the posterior from the N(0, I) prior per measure (nats); higher means the "
                "code carries more information, lower means a smoother, more prior-like latent space",
                in_study=True))
register(Metric("active_dims", "Active dims", None,
                f"latent dims whose mean KL exceeds {ACTIVE_DIM_NATS} nats", derive=active_dims, digits=0))
register(Metric("interpretability_mean", "Interp.", True,
                "interpretability: for each attribute, the latent dim with the highest mutual information "
                "with it and the R^2 of a linear fit of the attribute on that dim; mean over attributes",
                source="interpretability.mean", in_study=True))
register(Metric("interpretability_intended_fraction", "Intended fraction", True,
                "share of the attributes whose most informative dim is the one meant to carry them (null "
                "where no control is a latent dim)", source="interpretability.intended_fraction"))
register(Metric("mig", "MIG", True,
                "mutual information gap: (largest - second largest MI of an attribute with any latent dim) / "
                "entropy of the attribute, mean over attributes, not clipped (the k-NN MI estimates can make it "
                "slightly negative); high when one dim alone carries an attribute",
                in_study=True, table="disentanglement", table_label="MIG"))
register(Metric("sap", "SAP", True,
                "separated attribute predictability: gap between the two best single-dim linear R^2 scores of "
                "an attribute, mean over attributes", in_study=True, table="disentanglement", table_label="SAP"))
register(Metric("scc", "SCC", True,
                "Spearman correlation coefficient: largest |rank correlation| of an attribute with any latent "
                "dim (0 when not significant), mean over attributes",
                in_study=True, table="disentanglement", table_label="SCC"))
register(Metric("modularity", "Modul.", True,
                "modularity (Ridgeway & Mozer, as ar-vae computes it): how much each latent dim depends on one "
                "attribute only, plain mean over dims (the MI-weighted variant is kept in results as "
                "`modularity_mi_weighted`)", in_study=True, table="disentanglement", table_label="modularity"))
register(Metric("modularity_mi_weighted", "Modul. (MI-weighted)", True,
                "modularity with each dim weighted by its largest MI (our variant)",
                table="disentanglement", table_label="MI-weighted", qualifies="modularity"))
register(Metric("controllability", "Control.", True,
                "controllability: sweeping a control (a regularised latent dim of MeasureVAE, an attribute input "
                "of AdversarialVAE) over its range and decoding, the mean |Spearman rho| between the control value "
                "and the attribute it is meant to move",
                source="attribute_independence.controllability", in_study=True, table="independence",
                table_label="controllability", table_note="diagonal mean"))
register(Metric("leakage", "Leakage", False,
                "leakage: in the same sweeps, the mean |Spearman rho| between a control and the attributes it "
                "is NOT meant to move; lower means more independent attributes",
                source="attribute_independence.leakage", in_study=True, table="independence",
                table_label="leakage", table_note="off-diagonal mean"))

#: Every registered metric, in order (a snapshot for readers that iterate at import time).
METRICS = metrics()
