"""The learning-curve report: do the study's verdicts hold as training goes on?

Reads the runs of a curve study (``configs/study/curves.flags``: both models, latent 32, four
attributes, every genre, several seeds, each run's ``curve.json`` written by ``training.curve``) and,
optionally, the AdversarialVAE runs given their attributes as bin indices
(``configs/study/curves_classes.flags``), and writes a markdown report with figures:

* coverage: which points each run has reached (runs still training count with the points they have);
* figures: each metric against training (epochs, log axis), one panel per genre, one colour per model,
  every seed a point and a line through the means; and against steps for the matched-steps comparison;
* the verdict of findings 1-3 (``findings.assess`` on the test metrics of the runs at that point) at
  every matched-epochs and matched-steps point, and one sentence per finding on its scope;
* whether the 0.6-epoch (cpu_v2) models had converged, per genre and model: the largest gain in
  validation token accuracy (mean over seeds) at any later matched-epochs point up to 6 epochs over the
  one at 0.6 (converged when below ``CONVERGED_GAIN``; a curve that rises and falls back still counts its
  rise);
* the side-information ablation: AdversarialVAE's test token accuracy decoded with the true attributes,
  their bin centres and the training mean, beside MeasureVAE's.

    python -m musicvae_xai.study curves --study_dir=docs/results/curves \
        --classes_dir=docs/results/curves_classes --output=docs/CURVES.md
"""

from __future__ import annotations

import json
import os
import re
from typing import Optional, Sequence

import numpy as np

from musicvae_xai import attributes as attrs
from musicvae_xai.study import findings
from musicvae_xai.study.markdown import cell
from musicvae_xai.study.results import DATASET_ORDER, ordered
from musicvae_xai.training.curve import CURVE_FILENAME, epoch_step

EPOCH_POINTS = (0.15, 0.3, 0.6, 1.2, 2.4, 6.0)
STEP_POINTS = (848, 2473, 4412, 8480)
#: The cpu_v2 budget, whose models the convergence table judges.
BASE_EPOCHS = 0.6
#: A run counts as converged at BASE_EPOCHS when no later point up to 6 epochs gains this much validation
#: token accuracy over it.
CONVERGED_GAIN = 0.01
#: The matched-epochs points from BASE_EPOCHS on: where verdicts get a scope and convergence is judged.
FROM_BASE = tuple(e for e in EPOCH_POINTS if e >= BASE_EPOCHS)
#: What "converged" means, and what the ablation table holds, in both reports (CURVES.md and RESULTS.md).
CONVERGED_RULE = (f"Converged at {BASE_EPOCHS:g} epochs means no later point up to {EPOCH_POINTS[-1]:g} epochs is "
                  f"{CONVERGED_GAIN} or more above it")
ABLATION_TEXT = ("Test token accuracy, mean over seeds, decoding the sampled z with what the AdversarialVAE decoder "
                 "is given (the true attributes, their bin centres, or the training split's mean); MeasureVAE "
                 "gets no attributes")
FIGURE_METRICS = (("token_accuracy", "test token accuracy"), ("note_accuracy", "test note accuracy"),
                  ("interpretability_mean", "test interpretability"), ("controllability", "controllability"),
                  ("leakage", "leakage"), ("kl_per_measure", "KL per measure (nats)"))
VARIANTS = {"measure_vae": "MeasureVAE", "adversarial_vae": "AdversarialVAE",
            "adversarial_vae/classes": "AdversarialVAE (bin-index attributes)"}
_NAME = re.compile(r"^(?P<model>[a-z_]+)-z(?P<latent>\d+)-(?P<dataset>[a-z0-9_]+)-a(?P<count>\d+)-s(?P<seed>\d+)$")
_ATTRIBUTE_SETS = {2: attrs.DEFAULT_TWO, 4: attrs.DEFAULT_FOUR}


def load_runs(study_dir: str, variant_suffix: str = "") -> list:
    """Every run folder of ``study_dir`` with a ``curve.json``: {"name", "variant", "grid", "points",
    "steps_per_epoch", "finished"}; ``variant_suffix`` ("/classes") tells apart a second study of one model."""
    runs = []
    for name in sorted(os.listdir(study_dir)) if os.path.isdir(study_dir) else []:
        match = _NAME.match(name)
        path = os.path.join(study_dir, name, CURVE_FILENAME)
        if not match or not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8") as f:
            curve = json.load(f)
        count = int(match["count"])
        grid = {"model": match["model"], "latent_dim": int(match["latent"]), "dataset": match["dataset"],
                "attributes": list(_ATTRIBUTE_SETS.get(count, ())), "attribute_count": count,
                "seed": int(match["seed"])}
        runs.append({"name": name, "variant": match["model"] + variant_suffix, "grid": grid,
                     "points": curve.get("points", []), "steps_per_epoch": int(curve["steps_per_epoch"]),
                     "finished": os.path.isfile(os.path.join(study_dir, name, "result.json"))})
    return runs


def point_at(run: dict, epochs: Optional[float] = None, steps: Optional[int] = None) -> Optional[dict]:
    """The run's curve point at ``epochs`` (rounded to a step as ``training.curve`` does) or ``steps``."""
    step = steps if steps is not None else epoch_step(epochs, run["steps_per_epoch"])
    return next((p for p in run["points"] if p["step"] == step), None)


def records_at(runs: Sequence[dict], variants: Sequence[str], split: str = "test", **where) -> list:
    """Result-shaped records ({"status", "name", "grid", "metrics"}) of ``runs`` of ``variants`` at one
    point (``epochs=`` or ``steps=``), each variant counted as its base model for ``findings``."""
    out = []
    for run in runs:
        point = point_at(run, **where) if run["variant"] in variants else None
        if point is not None and split in point:
            grid = {**run["grid"], "model": run["variant"].split("/")[0]}
            out.append({"status": "ok", "name": run["name"], "grid": grid, "metrics": point[split]})
    return out


def _effect(finding) -> dict:
    """{part: estimate or None}: "" for findings 1 and 2 (one effect), "a" and "b" for finding 3."""
    numbers = finding.numbers or {}
    if finding.number == 3:
        return {part: (numbers.get(f"part_{part}") or {}).get("estimate") for part in ("a", "b")}
    effect = numbers.get("effect")
    return {"": effect.get("estimate") if isinstance(effect, dict) else None}


def _effect_text(effect: dict) -> str:
    """``+0.012`` for one effect, ``a +0.39, b -0.05`` for two parts."""
    if list(effect) == [""]:
        return cell(effect[""], sign=True)
    return ", ".join(f"{part} {cell(v, sign=True)}" for part, v in effect.items())


def verdicts_at(runs: Sequence[dict], variants: Sequence[str], **where) -> list:
    """[(finding number, verdict, effect ({part: estimate or None}, ``_effect``), runs used)] of findings 1-3
    at one point."""
    records = records_at(runs, variants, **where)
    if not records:
        return []
    assessed = findings.assess(records)[:3]
    return [(f.number, f.verdict, _effect(f), len(records)) for f in assessed]


def _series(runs: Sequence[dict], variant: str, dataset: str, metric: str, split: str, x: str) -> dict:
    """{x value: [value per seed]} of one variant and genre."""
    out: dict = {}
    for run in runs:
        if run["variant"] != variant or run["grid"]["dataset"] != dataset:
            continue
        for p in run["points"]:
            v = (p.get(split) or {}).get(metric)
            if v is not None and np.isfinite(v):
                out.setdefault(round(p[x], 4) if x == "epoch" else p[x], []).append(float(v))
    return out


def curve_figure(runs: Sequence[dict], metric: str, label: str, path: str, x: str = "epoch",
                 split: str = "test") -> str:
    """Saves ``metric`` against training (x = "epoch" or "step", log axis) at ``path``: one panel per
    genre, one colour per model variant, seeds as points, means as lines."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    datasets = ordered({r["grid"]["dataset"] for r in runs}, DATASET_ORDER)
    variants = [v for v in VARIANTS if any(r["variant"] == v for r in runs)]
    fig, axes = plt.subplots(1, max(1, len(datasets)), figsize=(3.6 * max(1, len(datasets)) + 1.0, 3.4),
                             squeeze=False, sharey=True)
    for j, ds in enumerate(datasets):
        ax = axes[0][j]
        for i, variant in enumerate(variants):
            series = _series(runs, variant, ds, metric, split, x)
            if not series:
                continue
            xs = sorted(series)
            ax.scatter([v for v in xs for _ in series[v]], [y for v in xs for y in series[v]], s=10,
                       color=f"C{i}", alpha=0.5, linewidths=0)
            ax.plot(xs, [np.mean(series[v]) for v in xs], color=f"C{i}", linewidth=1.3, label=VARIANTS[variant])
        if x == "epoch":
            ax.axvline(BASE_EPOCHS, color="0.6", linestyle=":", linewidth=1)
        ax.set_xscale("log")
        ticks = EPOCH_POINTS if x == "epoch" else STEP_POINTS
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks], rotation=45 if x == "step" else 0)
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_title(ds)
        ax.set_xlabel("epochs" if x == "epoch" else "steps of 64 measures")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(label)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _mean(runs, variant, dataset, metric, split, **where) -> Optional[float]:
    values = [point_at(r, **where) for r in runs if r["variant"] == variant and r["grid"]["dataset"] == dataset]
    values = [(p.get(split) or {}).get(metric) for p in values if p is not None]
    values = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(values)) if values else None


def verdict_table(runs: Sequence[dict], variants: Sequence[str]) -> list:
    """Markdown rows: one per curve point, the verdict and effect of findings 1-3 there."""
    lines = ["| point | runs | 1: MeasureVAE reconstructs better | 2: AdversarialVAE leaks less | "
             "3: interpretable across genres, best on pop |", "|---|---|---|---|---|"]
    for kind, values in (("epochs", EPOCH_POINTS), ("steps", STEP_POINTS)):
        for value in values:
            rows = verdicts_at(runs, variants, **{kind: value})
            if not rows:
                continue
            cells = [f"{v} ({_effect_text(e)})" for _, v, e, _ in rows]
            lines.append(f"| {value:g} {kind} | {rows[0][3]} | " + " | ".join(cells) + " |")
    return lines


def scope_sentences(runs: Sequence[dict], variants: Sequence[str], hidden: Optional[int]) -> list:
    """One sentence per finding: its verdict at every matched-epochs point from 0.6 and at every matched-steps
    point reached, the budget and hidden size it holds at, the seeds it rests on, and whether the sign of its
    effect stayed the same from 0.6 epochs on."""
    claims = {1: "MeasureVAE reconstructs better than AdversarialVAE",
              2: "AdversarialVAE has better attribute independence",
              3: "MeasureVAE's dimensions are interpretable across genres, best on pop"}
    reached = [(e, verdicts_at(runs, variants, epochs=e)) for e in FROM_BASE]
    reached = [(e, rows) for e, rows in reached if rows]
    if not reached:
        return ["No run has reached 0.6 epochs yet."]

    def seeds_at(e):
        found = sorted({rec["grid"]["seed"] for rec in records_at(runs, variants, epochs=e)})
        return ("seed " if len(found) == 1 else "seeds ") + ", ".join(str(x) for x in found)

    first, last = seeds_at(reached[0][0]), seeds_at(reached[-1][0])
    seed_text = first if first == last else f"{first} at {reached[0][0]:g} epochs, {last} at {reached[-1][0]:g}"
    steps = [(n, verdicts_at(runs, variants, steps=n)) for n in STEP_POINTS]
    steps = [(n, rows) for n, rows in steps if rows]
    out = []
    for number in (1, 2, 3):
        path = [(e, next(r for r in rows if r[0] == number)) for e, rows in reached]
        flips = [part for part in path[0][1][2]
                 if len({np.sign(r[2][part]) for _, r in path if r[2].get(part) not in (None, 0)}) > 1]
        stable = ("its effect keeps its sign" if not flips else
                  "its effect changes sign" if flips == [""] else
                  f"part {' and '.join(flips)} of its effect changes sign")
        trail = ", ".join(f"{r[1]} at {e:g}" for e, r in path)
        matched = ", ".join(f"{next(r for r in rows if r[0] == number)[1]} at {n:,}" for n, rows in steps)
        matched = f"; at matched steps {matched} steps" if matched else ""
        out.append(f"- **Finding {number}** ({claims[number]}): {trail} epochs{matched} (hidden {hidden}, batch "
                   f"64, latent 32, four attributes, {seed_text}); from {path[0][0]:g} to {path[-1][0]:g} epochs "
                   f"{stable}.")
    return out


def _convergence(runs: Sequence[dict]) -> list:
    """[(genre, model label, [validation token accuracy at each matched-epochs point from 0.6], largest gain of
    a later point over 0.6, "yes" | "no" | "not yet known")] per genre and model with a 0.6-epoch point."""
    out = []
    for ds in ordered({r["grid"]["dataset"] for r in runs}, DATASET_ORDER):
        for variant, label in VARIANTS.items():
            values = [_mean(runs, variant, ds, "token_accuracy", "validation", epochs=e) for e in FROM_BASE]
            if values[0] is None:
                continue
            reached = [v for v in values[1:] if v is not None]
            gain = max(reached) - values[0] if reached else None
            if gain is None or (gain < CONVERGED_GAIN and values[-1] is None):
                verdict = "not yet known"
            else:
                verdict = "yes" if gain < CONVERGED_GAIN else "no"
            out.append((ds, label, values, gain, verdict))
    return out


def convergence_table(runs: Sequence[dict]) -> list:
    """Per genre and model: validation token accuracy (seed mean) at the matched-epochs points from 0.6,
    the largest gain of a later point over 0.6, and whether the 0.6-epoch model had converged."""
    lines = ["| genre | model | " + " | ".join(f"{e:g} ep." for e in FROM_BASE)
             + " | best gain over 0.6 | converged at 0.6? |",
             "|---|---|" + "---|" * (len(FROM_BASE) + 2)]
    for ds, label, values, gain, verdict in _convergence(runs):
        lines.append(f"| {ds} | {label} | " + " | ".join(cell(v) for v in values) +
                     f" | {cell(gain, sign=True)} | {verdict} |")
    return lines


def convergence_sentence(runs: Sequence[dict]) -> str:
    """Per genre, whether its models at the cpu_v2 budget (0.6 epochs) had converged, with the largest later
    gain in validation token accuracy."""
    rows = _convergence(runs)
    if not rows:
        return "No run has reached 0.6 epochs yet, so whether the cpu_v2 models had converged is not yet known."
    parts = []
    for ds in ordered({r[0] for r in rows}, DATASET_ORDER):
        models = [f"{label} {verdict}" + (f" ({cell(gain, sign=True)})" if gain is not None else "")
                  for d, label, _, gain, verdict in rows if d == ds]
        parts.append(f"{ds}: " + ", ".join(models))
    return (f"**Had the cpu_v2 models converged?** {CONVERGED_RULE} in validation token accuracy (the largest "
            "later gain in brackets): " + "; ".join(parts) + ".")


def ablation_table(runs: Sequence[dict]) -> list:
    """Test token accuracy with the attributes an AdversarialVAE decoder is given, beside MeasureVAE's."""
    columns = (("measure_vae", "token_accuracy", "MeasureVAE"),
               ("adversarial_vae", "token_accuracy", "Adv.: true attributes"),
               ("adversarial_vae", "token_accuracy_bin_centres", "Adv.: bin centres"),
               ("adversarial_vae", "token_accuracy_train_mean", "Adv.: training mean"),
               ("adversarial_vae/classes", "token_accuracy", "Adv. (bin indices): true bins"),
               ("adversarial_vae/classes", "token_accuracy_train_mean", "Adv. (bin indices): training mean"))
    present = [c for c in columns if any(r["variant"] == c[0] for r in runs)]
    lines = ["| point | genre | " + " | ".join(c[2] for c in present) + " |", "|---|---|" + "---|" * len(present)]
    for e in (BASE_EPOCHS, EPOCH_POINTS[-1]):
        for ds in ordered({r["grid"]["dataset"] for r in runs}, DATASET_ORDER):
            values = [_mean(runs, v, ds, m, "test", epochs=e) for v, m, _ in present]
            if any(v is not None for v in values):
                lines.append(f"| {e:g} epochs | {ds} | " + " | ".join(cell(v) for v in values) + " |")
    return lines


def coverage_lines(runs: Sequence[dict]) -> list:
    lines = ["| run | points reached | last step | last epoch | finished |", "|---|---|---|---|---|"]
    for r in sorted(runs, key=lambda r: (r["variant"], DATASET_ORDER.index(r["grid"]["dataset"])
                                          if r["grid"]["dataset"] in DATASET_ORDER else 99, r["grid"]["seed"])):
        last = r["points"][-1] if r["points"] else {"step": 0, "epoch": 0.0}
        name = r["name"] + (" (bin indices)" if r["variant"].endswith("/classes") else "")
        lines.append(f"| {name} | {len(r['points'])} | {last['step']} | {last['epoch']:.3g} | "
                     f"{'yes' if r['finished'] else 'no'} |")
    return lines


def build_report(runs: Sequence[dict], figures: dict, figure_folder: str, hidden: Optional[int] = 64) -> str:
    """The markdown report of ``runs`` (``load_runs``) with ``figures`` ({key: path}) in ``figure_folder``."""
    rel = lambda p: f"{os.path.basename(figure_folder)}/{os.path.basename(p)}"  # noqa: E731
    n_variants = sorted({r["variant"] for r in runs})
    lines = ["# Learning curves: do the verdicts hold as training goes on?", "",
             "Generated by `python -m musicvae_xai.study curves` from the runs' `curve.json` files "
             "(configs/study/curves.flags and curves_classes.flags: latent 32, four attributes, hidden 64, "
             "batch 64, every genre, evaluated during training on 1,000 fixed validation and 1,000 fixed test "
             "measures). Verdicts follow the rules of the study report (docs/RESULTS.md), applied to the runs "
             "at each point; runs still training count with the points they have reached.", "",
             f"{len(runs)} run(s): " + ", ".join(f"{sum(r['variant'] == v for r in runs)} {VARIANTS.get(v, v)}"
                                                 for v in n_variants) + ".", "",
             "## Verdicts and their scope", ""]
    lines += scope_sentences(runs, ("measure_vae", "adversarial_vae"), hidden) + [""]
    lines += ["### At every point (AdversarialVAE given standardised attribute values)", ""]
    lines += verdict_table(runs, ("measure_vae", "adversarial_vae")) + [""]
    if any(r["variant"] == "adversarial_vae/classes" for r in runs):
        lines += ["### At every point, AdversarialVAE given bin indices as the authors' script feeds them", "",
                  "Finding 3 compares MeasureVAE's genres only, so its column repeats the table above.", ""]
        lines += verdict_table(runs, ("measure_vae", "adversarial_vae/classes")) + [""]
    lines += ["Each cell: verdict (effect, positive = as the paper claims). Matched epochs give every genre the "
              "same share of its data; matched steps the same number of updates (848, 2,473 and 4,412 are the "
              "cpu_v2 budgets of classical, Irish and pop).", "",
              "## Had the cpu_v2 models converged?", "",
              f"Validation token accuracy, mean over seeds. {CONVERGED_RULE}.", ""]
    lines += convergence_table(runs) + ["", "## How much of finding 1 is the attributes", "", f"{ABLATION_TEXT}.", ""]
    lines += ablation_table(runs) + ["", "## Figures", ""]
    for key, path in figures.items():
        lines += [f"![{key}]({rel(path)})", ""]
    lines += ["## Coverage", ""] + coverage_lines(runs) + [""]
    lines += ["At the paper's scale (configs/study/paper.flags: hidden 512, batch 256, 30 epochs) the curves are "
              "not run: that needs a GPU.", ""]
    return "\n".join(lines)


def study_scope(study_dir: str, hidden: Optional[int] = 64) -> list:
    """What the study report (``report --curves_dir``) gives of the curve study in ``study_dir``: the scope
    sentences over both models, whether each genre's cpu_v2 models had converged, and the side-information
    ablation's table."""
    runs = load_runs(study_dir)
    if not runs:
        raise ValueError(f"{study_dir}: no run folder with a {CURVE_FILENAME}")
    return (scope_sentences(runs, ("measure_vae", "adversarial_vae"), hidden)
            + ["", convergence_sentence(runs), "",
               f"**How much of finding 1 is the attributes.** {ABLATION_TEXT}:", ""]
            + ablation_table(runs))


def write_report(study_dir: str, output: str, classes_dir: Optional[str] = None) -> tuple:
    """Writes the report to ``output`` and its figures beside it; returns (output, {key: figure path})."""
    runs = load_runs(study_dir) + (load_runs(classes_dir, "/classes") if classes_dir else [])
    if not runs:
        raise ValueError(f"{study_dir}: no run folder with a {CURVE_FILENAME}")
    folder = os.path.splitext(output)[0] + "_figures"
    os.makedirs(folder, exist_ok=True)
    figures = {}
    for metric, label in FIGURE_METRICS:
        figures[metric] = curve_figure(runs, metric, label, os.path.join(folder, f"{metric}_epochs.png"))
    for metric, label in FIGURE_METRICS[2::-2]:  # interpretability and token accuracy against steps
        figures[f"{metric}_steps"] = curve_figure(runs, metric, label, os.path.join(folder, f"{metric}_steps.png"),
                                                  x="step")
    with open(output, "w", encoding="utf-8") as f:
        f.write(build_report(runs, figures, folder))
    return output, figures
