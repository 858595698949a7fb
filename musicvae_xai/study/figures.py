"""Figures of the study report: each metric against latent size, one colour per dataset, one panel per
model and attribute count; every seed is a point and a line joins the means over seeds. Written with
matplotlib's Agg backend (no display needed)."""

from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np

from musicvae_xai.metric_registry import Metric
from musicvae_xai.models import registry as model_registry
from musicvae_xai.study.results import DATASET_ORDER, METRICS, ok, ordered, spread_over_seeds

#: Models in table and figure order (the model registry's).
MODEL_ORDER = model_registry.names()


def metric_figure(records: Sequence[dict], metric: Metric, path: str, expected: Sequence[dict] = (),
                  baselines: Optional[dict] = None, split: str = "test") -> str:
    """Saves the figure of ``metric`` at ``path`` (PNG); returns the path.

    Panels: rows = models, columns = attribute sets (by count), every one the grid (``expected``
    entries) has even when still empty; x = latent size (log2 axis, the grid's sizes); per dataset one
    point per seed (offset sideways by dataset so datasets do not hide each other) and a line through
    the means over seeds. For token accuracy, ``baselines`` ({dataset: baselines}) adds each dataset's
    majority-token accuracy on ``split`` -- the split the results were evaluated on -- as a dashed line.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    means = spread_over_seeds(records, metric.key)
    rows = ordered({k[0] for k in means} | {e["model"] for e in expected}, MODEL_ORDER) or list(MODEL_ORDER)
    sets = sorted({k[2] for k in means} | {tuple(e["attributes"]) for e in expected},
                  key=lambda s: (len(s), s)) or [()]
    datasets = ordered({k[1] for k in means}, DATASET_ORDER)
    colors = {ds: f"C{i}" for i, ds in enumerate(ordered(set(datasets) | set(DATASET_ORDER[:4]), DATASET_ORDER))}
    fig, axes = plt.subplots(len(rows), len(sets), figsize=(4.2 * len(sets) + 1.4, 3.2 * len(rows) + 0.6),
                             squeeze=False, sharex=True, sharey=True)
    sizes = sorted({k[3] for k in means} | {int(e["latent_dim"]) for e in expected})
    show_baseline = metric.key == "token_accuracy" and baselines
    for i, model in enumerate(rows):
        for j, attr_set in enumerate(sets):
            ax = axes[i][j]
            for d, ds in enumerate(datasets):
                cells = sorted((k[3], v) for k, v in means.items() if k[0] == model and k[1] == ds and k[2] == attr_set)
                if not cells:
                    continue
                offset = 2 ** (0.06 * (d - (len(datasets) - 1) / 2))  # sideways on the log2 axis
                xs = [z * offset for z, v in cells for _ in v[3]]
                ys = [y for _, v in cells for y in v[3]]
                ax.scatter(xs, ys, s=12, color=colors[ds], alpha=0.6, linewidths=0)
                ax.plot([z * offset for z, _ in cells], [v[0] for _, v in cells], color=colors[ds], linewidth=1.2,
                        label=ds)
            if show_baseline:
                for ds in datasets:
                    maj = ((baselines.get(ds) or {}).get(split) or {}).get("majority_token_accuracy")
                    if maj is not None:
                        ax.axhline(maj, color=colors[ds], linestyle="--", linewidth=0.8, alpha=0.7)
            ax.set_xscale("log", base=2)
            if sizes:
                ax.set_xticks(sizes)
                ax.set_xticklabels([str(s) for s in sizes])
            ax.set_title(f"{model_registry.label(model)}, {len(attr_set)} attributes", fontsize=10)
            ax.grid(alpha=0.3)
            if i == len(rows) - 1:
                ax.set_xlabel("latent size")
            if j == 0:
                ax.set_ylabel(metric.label)
    handles, labels = [], []
    for ax in axes.ravel():
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=False):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if handles:
        fig.legend(handles, labels, loc="center right", fontsize=9, title="dataset")
    direction = {True: "higher is better", False: "lower is better", None: ""}[metric.higher_is_better]
    note = f"; dashed: majority-token baseline on {split}" if show_baseline else ""
    fig.suptitle(f"{metric.label} against latent size, every seed a point" +
                 (f" ({direction}{note})" if direction else ""),
                 fontsize=11)
    fig.tight_layout(rect=(0, 0, 1 - 1.3 / fig.get_figwidth(), 0.95))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def all_figures(records: Sequence[dict], folder: str, expected: Sequence[dict] = (),
                baselines: Optional[dict] = None, split: str = "test") -> dict:
    """{metric key: path} of one figure per metric in ``folder`` (nothing when no result is ok)."""
    if not ok(records):
        return {}
    out = {}
    for metric in METRICS:
        values = [r["metrics"].get(metric.key) for r in ok(records)]
        if not any(v is not None and np.isfinite(v) for v in values):
            continue
        out[metric.key] = metric_figure(records, metric, os.path.join(folder, f"{metric.key}.png"), expected,
                                        baselines, split)
    return out
