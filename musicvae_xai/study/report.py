"""The study report: every ``result.json`` of a study folder -> one markdown file plus figures.

    path, figures = write_report("docs/results/cpu_v2", "docs/RESULTS.md")

The report is written for a reader who has not seen the code: what was run and with which settings,
how much of the grid has results (trainings not run are listed, never silently left out; the report
works on a partial grid and gives n seeds per cell), the majority-token baselines on the split the
models were evaluated on, the paper's four findings, each with an effect per genre and across genres, a
hierarchical bootstrap interval, the genres agreeing in sign, p-values Holm-corrected over the report's
family of tests and a verdict (``musicvae_xai.study.findings``, ``musicvae_xai.study.stats``), the
reduction from the paper's scale (``musicvae_xai.study.scale``), one table per model x dataset x
attribute set with every metric per latent size as mean ± sd over seeds, figures with every seed as a
point (``musicvae_xai.study.figures``) in ``<output stem>_figures/`` beside the markdown, run costs,
and a glossary of the metrics. A ``NOTES.md`` in the study folder (context from whoever ran it: why a
setting was chosen, what was rerun) is included after "What was run".
"""

from __future__ import annotations

import os
import time
from collections import Counter
from typing import Optional, Sequence

import numpy as np

from musicvae_xai.study import findings as findings_mod
from musicvae_xai.study import stats
from musicvae_xai.study.baselines_report import baseline_section as _baseline_section
from musicvae_xai.study.baselines_report import evaluation_split, run_baseline
from musicvae_xai.study.markdown import cell as _fmt
from musicvae_xai.study.markdown import rank as _rank
from musicvae_xai.study.markdown import table as _table
from musicvae_xai.study.scale import scale_section as _scale_section
from musicvae_xai.study.figures import MODEL_ORDER, all_figures
from musicvae_xai.models.registry import label as model_label
from musicvae_xai.study.results import (DATASET_ORDER, METRICS, load_baselines, load_expected,
                                        load_results, load_study_info, ok, ordered, spread_over_seeds)

#: Optional file of the study folder whose text the report includes under "Notes on this run".
NOTES_FILENAME = "NOTES.md"
_SETTINGS = ("hidden_size", "embedding_dim", "num_layers", "dropout", "batch_size", "learning_rate", "epochs",
             "train_steps", "beta", "gamma", "delta", "teacher_forcing", "lambda_d", "lambda_kl", "num_bins",
             "sampling_k", "discriminator_hidden", "clip_norm", "transpose", "allow_cut_time", "min_pitch",
             "max_pitch", "xla")


class ReportError(ValueError):
    """A report that cannot be made (one line)."""


def _settings_section(good: Sequence[dict]) -> list:
    lines = []
    values: dict = {}
    for r in good:
        for k in _SETTINGS:
            if k in r.get("flags", {}):
                v = r["flags"][k]
                values.setdefault(k, Counter())[str(v)] += 1
    common = [f"`{k}={next(iter(c))}`" for k, c in values.items() if len(c) == 1]
    varying = [f"`{k}` ({', '.join(f'{v}: {n}' for v, n in c.most_common())})" for k, c in values.items() if len(c) > 1]
    if common:
        lines.append("Training settings shared by every configuration with a result: " + ", ".join(common) + ".")
    if varying:
        lines.append("")
        lines.append("Settings that differ between configurations (value: how many): " + "; ".join(varying) + ".")
    opts = Counter(tuple(sorted((r.get("evaluation_options") or {}).items())) for r in good)
    if opts:
        o = dict(opts.most_common(1)[0][0])
        size = "every measure" if not o.get("max_measures") else f"{o['max_measures']} measures drawn at random"
        lines.append("")
        lines.append(f"Evaluation: the `{o.get('split', 'test')}` split ({size}, seed {o.get('seed', 0)}); control "
                     f"sweeps from {o.get('sweep_measures')} measures in {o.get('sweep_steps')} steps.")
    return lines


def _coverage_section(records: Sequence[dict], expected: Sequence[dict]) -> tuple:
    by_name = {r.get("name"): r for r in records}
    names = [e["name"] for e in expected] or list(by_name)
    grid = {e["name"]: e for e in expected}
    for r in records:
        grid.setdefault(r.get("name"), r["grid"])
    counts = Counter(by_name[n]["status"] if n in by_name else "not run" for n in names)
    total = len(names)
    seeds = sorted({int(grid[n].get("seed", 0)) for n in names})
    lines = [f"**{counts.get('ok', 0)} of {total} trainings have results** (configurations x seeds; seeds "
             f"{', '.join(map(str, seeds))}), {counts.get('failed', 0)} failed, {counts.get('not run', 0)} have not "
             "been run yet.",
             "",
             "The report works with a partial grid: every effect below uses only the configurations that have "
             "results on both sides of its comparison, a configuration's value is the mean over the seeds it has, "
             "and the tables give the number of seeds (n) of every cell. Cells below: `latent size (seeds with a "
             "result)`."]
    groups: dict = {}
    for n in names:
        g = grid[n]
        key = (g["model"], g["dataset"], len(g["attributes"]))
        state = by_name[n]["status"] if n in by_name else "not run"
        groups.setdefault(key, {"ok": Counter(), "failed": [], "not run": []})
        cell = (int(g["latent_dim"]), int(g.get("seed", 0)))
        if state == "ok":
            groups[key]["ok"][cell[0]] += 1
        else:
            groups[key][state].append(cell)
    rows = []
    cells = lambda xs: ", ".join(f"{z} s{s}" for z, s in sorted(xs)) or "–"  # noqa: E731
    for key in sorted(groups, key=lambda k: (_rank(k[0], MODEL_ORDER), _rank(k[1], DATASET_ORDER), k[1], k[2])):
        g = groups[key]
        rows.append([model_label(key[0]), key[1], key[2],
                     ", ".join(f"{z} ({n})" for z, n in sorted(g["ok"].items())) or "–", cells(g["failed"]),
                     cells(g["not run"])])
    lines += [""] + _table(["model", "dataset", "attributes", "latent sizes done (seeds)", "failed",
                            "not run yet"], rows)
    failed = [r for r in records if r.get("status") == "failed"]
    if failed:
        lines += ["", "Failures:", ""]
        lines += [f"- `{r.get('name')}` failed in {r.get('stage')}: {r.get('error')}" for r in failed]
    return lines, counts


def _metric_tables(records: Sequence[dict]) -> list:
    spread = {m.key: spread_over_seeds(records, m.key) for m in METRICS}
    keys = set()
    for v in spread.values():
        keys |= {k[:3] for k in v}
    lines = []
    arrow = {True: " ↑", False: " ↓", None: ""}
    header = ["latent", "n"] + [m.label + arrow[m.higher_is_better] for m in METRICS]
    for model in ordered({k[0] for k in keys}, MODEL_ORDER):
        for ds in ordered({k[1] for k in keys if k[0] == model}, DATASET_ORDER):
            for attr_set in sorted({k[2] for k in keys if k[:2] == (model, ds)}, key=lambda s: (len(s), s)):
                lines += ["", f"### {model_label(model)} · {ds} · {len(attr_set)} attributes",
                          "", f"Attributes: {', '.join(attr_set)}.", ""]
                sizes = sorted({k[3] for v in spread.values() for k in v if k[:3] == (model, ds, attr_set)})
                rows = []
                for z in sizes:
                    key = (model, ds, attr_set, z)
                    n = max((spread[m.key].get(key, (None, None, 0))[2] for m in METRICS), default=0)
                    rows.append([z, n] + [_mean_sd(spread[m.key].get(key), m.digits) for m in METRICS])
                lines += _table(header, rows)
    return lines


def _mean_sd(cell, digits: int = 3) -> str:
    """``0.812 ± 0.010`` (mean ± sd over seeds, ``digits`` decimals); the mean alone for one seed; – for none."""
    if cell is None:
        return "–"
    mean, sd, _, _ = cell
    return _fmt(mean, digits) if sd is None else f"{mean:.{digits}f} ± {sd:.{digits}f}"


def _cost_section(good: Sequence[dict]) -> list:
    rows = []
    for model in ordered({r["grid"]["model"] for r in good}, MODEL_ORDER):
        rs = [r for r in good if r["grid"]["model"] == model]
        wall = [r.get("wall_seconds", {}).get("total") for r in rs]
        wall = [w for w in wall if w]
        cpu = [r.get("cpu_seconds", {}).get("total") for r in rs]
        cpu = [c for c in cpu if c]
        mps = [r.get("throughput", {}).get("measures_per_second") for r in rs]
        mps = [m for m in mps if m]
        rows.append([model_label(model), len(rs), _fmt(float(np.mean(wall)), 0) if wall else "–",
                     _fmt(float(np.mean(cpu)), 0) if cpu else "–", _fmt(float(np.mean(mps)), 0) if mps else "–"])
    if not rows:
        return []
    threads = Counter(r.get("threads") for r in good).most_common(1)[0][0]
    lines = [f"Per configuration, mean over those with results ({threads} thread(s) each). Wall time depends on "
             "what else the machine was doing; CPU time (user + system of the worker process) much less so.", ""]
    return lines + _table(["model", "configs", "wall seconds (train + evaluate + export)", "CPU seconds",
                           "training measures / second"], rows)


def _glossary() -> list:
    lines = [f"- **{m.label}** ({m.key}): {m.meaning}." for m in METRICS]
    lines.append("- For AdversarialVAE the attributes are decoder inputs, not latent dims, so no latent dim is meant "
                 "to carry an attribute: its interpretability, MIG, SAP, SCC and modularity measure how much "
                 "attribute information is *left* in z (its training tries to remove it; lower is the intended "
                 "outcome there). Its controllability and leakage come from sweeping the attribute inputs.")
    return lines


def _display_path(path: Optional[str]) -> Optional[str]:
    """A packaged study file as its path in the repository (``musicvae_xai/configs/...``), wherever the study
    ran (a worktree, site-packages); any other path unchanged."""
    marker = "musicvae_xai/configs/"
    posix = (path or "").replace(os.sep, "/")
    if marker in posix:
        return marker + posix.rsplit(marker, 1)[1]
    return path


def _holm_flag(e: Optional[dict]) -> str:
    """``†`` for a verdict other than inconclusive whose Holm-adjusted p is 0.05 or more."""
    weak = e and e.get("verdict") != stats.INCONCLUSIVE and (e.get("p_holm") is None or e["p_holm"] >= 0.05)
    return " †" if weak else ""


def _summary_rows(assessed: Sequence) -> list:
    """The findings table: one row per finding with its effect, interval, genres agreeing, p, Holm p and verdict;
    a finding with two parts (finding 3: ``part_a``, ``part_b``) gets one row per part, each with the part's
    verdict."""
    def cells(e: Optional[dict]) -> list:
        if not e:
            return ["–"] * 5
        agree = "–" if e.get("genres") is None else f"{e['genres_agreeing']} of {e['genres']}"
        p = lambda v: "–" if v is None else f"{v:.2g}"  # noqa: E731
        return [f"{e['estimate']:+.3f}", f"[{e['ci'][0]:+.3f}, {e['ci'][1]:+.3f}]", agree,
                p(e["p_value"]), p(e.get("p_holm"))]

    rows = []
    for f in assessed:
        if "part_a" not in f.numbers:
            e = f.numbers.get("effect")
            rows.append([f.number, f.claim, *cells(e), f"**{f.verdict}**{_holm_flag(e)}"])
            continue
        parts = [("a", f.numbers.get("part_a")), ("b", f.numbers.get("part_b"))]
        for i, (name, e) in enumerate(parts):
            part = f"part ({name}): {e['verdict']}{_holm_flag(e)}" if e else f"part ({name}): not assessed"
            rows.append([f.number if i == 0 else "", f.claim if i == 0 else "", *cells(e),
                         f"**{f.verdict}** ({part})" if i == 0 else part])
    return rows


def _family_rows(assessed: Sequence) -> list:
    """One row per test of the Holm family: finding, test, method, effective n, p, Holm p."""
    return [[number, label, e.get("p_method", stats.WILCOXON), stats.effective_n(e), f"{e['p_value']:.2g}",
             "–" if e.get("p_holm") is None else f"{e['p_holm']:.2g}"]
            for number, label, e in findings_mod.family(assessed)]


def _statistics_lines() -> list:
    """How the findings are tested: the design, the intervals, the p-values and the verdict rule."""
    draws = f"{stats.BOOTSTRAP_DRAWS:,} draws, seed {stats.BOOTSTRAP_SEED}"
    return [
        "Each finding is an *effect* oriented so that a positive value means \"as the paper claims\". The genre is "
        "the unit of generalisation: the configurations of one genre share its training data and its test measures, "
        "so they are not independent draws, and the grid has four genres. Findings 1 and 2 are first computed per "
        "genre -- the mean over the genre's configurations of the seed-averaged difference, with a "
        f"{int(stats.CONFIDENCE * 100)}% bootstrap interval over its configurations and seeds and a paired Wilcoxon "
        "signed-rank p across its configurations (`scipy.stats.wilcoxon`) -- and the overall effect is the mean of "
        f"the genre effects, with a {int(stats.CONFIDENCE * 100)}% *hierarchical* bootstrap interval ({draws}; each "
        "draw resamples the genres with replacement, then the configurations inside each chosen genre, then the "
        "seeds inside each chosen configuration). Its p-value is the two-sided bootstrap p of the same draws "
        f"(smallest possible value 1/{stats.BOOTSTRAP_DRAWS + 1:,}): below 0.05 exactly when, up to one draw, the "
        "interval excludes zero. Each effect states its effective n (genres x configurations per genre x seeds).",
        "",
        "**Verdict**, by a rule fixed before the numbers were seen: **supported** or **contradicted** needs the "
        f"interval entirely on one side of zero **and** all {stats.GENRES_REQUIRED} genres agreeing in sign with the "
        "effect; anything else is **inconclusive**. The p-values do not decide it. With four genres the evidence "
        "across genres is thin, and the report says so rather than hiding it: a two-sided sign test over four genres "
        "cannot go below p = 0.125 (all four agreeing), so \"all four agree\" is a consistency requirement, not a "
        "significance test at the genre level; and a hierarchical resample can only recombine the four genres "
        "observed, so its interval cannot reach beyond the most extreme genre and its p says how consistently these "
        "four genres point one way given the noise of their configurations and seeds -- not how a fifth genre would "
        "behave. A verdict therefore speaks for these four genres at this training budget.",
        "",
        "**Multiplicity.** Every p-value the report prints belongs to one family and is Holm-corrected over it "
        "(Holm-Bonferroni: the i-th smallest of m p-values is multiplied by m - i + 1, then made monotone): the "
        "across-genre test of each finding and finding-3 part, the two context effects (note accuracy, "
        "controllability) and the per-genre Wilcoxon tests of findings 1 and 2 (table below). A verdict whose "
        "Holm-adjusted p is 0.05 or more is marked **†**: its interval is off zero on its own, but not once the "
        "report's other tests are accounted for; read it as weak.",
        ""]


def _study_lines(info: dict) -> list:
    if not info:
        return []
    sets = "; ".join(", ".join(s) for s in info.get("attribute_sets", []))
    return [f"Study file: `{_display_path(info.get('path'))}` (its comments explain the choice of settings). "
            "Grid: models "
            f"{', '.join(info.get('models', []))}; latent sizes {', '.join(map(str, info.get('latent_sizes', [])))}; "
            f"datasets {', '.join(info.get('datasets', []))}; attribute sets [{sets}]; seeds "
            f"{', '.join(map(str, info.get('seeds', [])))}.", ""] + _override_lines(info.get("overrides") or [])


def _override_lines(overrides: Sequence[dict]) -> list:
    """One line naming the study's per-configuration overrides (``--override``), or none."""
    parts = []
    for o in overrides:
        when = ", ".join(f"{k}={v}" for k, v in (o.get("when") or {}).items())
        parts.append(f"`{o.get('field')}={o.get('value')}` where {when}")
    return ["Overrides (so these settings differ between configurations below): " + "; ".join(parts) + ".", ""] \
        if parts else []


def _notes_lines(study_dir: str) -> list:
    """The study folder's ``NOTES.md`` (context written by whoever ran the study), or nothing."""
    try:
        with open(os.path.join(study_dir, NOTES_FILENAME), encoding="utf-8") as f:
            text = f.read().strip()
    except OSError:
        return []
    return ["## Notes on this run", "", f"_From `{NOTES_FILENAME}` in the study folder._", "", text, ""] if text else []


def build_markdown(records: Sequence[dict], expected: Sequence[dict], figures: dict, figure_folder: str,
                   study_dir: str, unreadable: Sequence[str] = (), study_info: Optional[dict] = None,
                   baselines: Optional[dict] = None, notes: Sequence[str] = (),
                   scope: Sequence[str] = ()) -> str:
    """The report's markdown. ``scope``: sentences on how far each verdict holds as training goes on
    (``curves.study_scope``), given under the findings table."""
    good = ok(records)
    lines = ["# Study results: VAE architectures, latent sizes, datasets and attributes", "",
             f"_Generated by `python -m musicvae_xai.study report --study_dir={study_dir}` on "
             f"{time.strftime('%Y-%m-%d')} from {len(records)} result file(s). Do not edit by hand; rerun the "
             "report when more configurations finish._", "",
             "This re-runs the comparison of Bryan-Kinns, Zhang, Zhao and Banar (\"Exploring Variational Auto-Encoder "
             "Architectures, Configurations, and Datasets for Generative Music Explainable AI\", 2024): two models "
             "that make one-bar melodies (24 tokens of a 4/4 measure) controllable through musical attributes -- "
             "**MeasureVAE**, whose first latent dims are regularised to grow with the attributes, and "
             "**AdversarialVAE**, whose decoder takes the attributes as inputs while a discriminator pushes them "
             "out of the latent code -- over latent sizes 4 to 256, four genres (Irish folk, Turkish folk, "
             "classical, pop) and two or four attributes (rhythmic complexity, note range; plus note density and "
             "average interval jump). Every configuration is trained, evaluated on held-out pieces and exported.",
             "", "## What was run", ""]
    lines += _study_lines(study_info or {})
    lines += _settings_section(good) or ["No configuration has finished yet."]
    lines += ([""] + list(notes)) if notes else []
    lines += ["", "## Coverage", ""]
    cov, counts = _coverage_section(records, expected)
    lines += cov
    if unreadable:
        lines += ["", f"{len(unreadable)} result file(s) could not be read and were skipped: "
                      + ", ".join(f"`{p}`" for p in unreadable[:10])]
    lines += ["", "## Did the models learn? Majority-token baselines", ""] + _baseline_section(records, baselines)
    expected_pairs = _expected_pairs(expected)
    missing = counts.get("not run", 0) + counts.get("failed", 0)
    lines += ["", "## The paper's four findings, re-examined", ""] + _statistics_lines()
    if missing:
        lines += [f"**Caution:** {missing} of the {sum(counts.values())} trainings have no result, so these "
                  "verdicts are preliminary: they speak only for the configurations and seeds that have results.", ""]
    assessed = findings_mod.assess(records, expected_pairs)
    lines += _table(["#", "claim", "effect", "95% CI", "genres agreeing", "p", "Holm p", "verdict"],
                    _summary_rows(assessed))
    lines += ["", "Findings 1, 2 and 4: hierarchical bootstrap interval and p across genres. Finding 3 has two parts, "
                  "each with its own effect and interval, and is supported only when both are: (a) the lowest genre's "
                  f"MeasureVAE interpretability minus {findings_mod.INTERPRETABLE_R2}, (b) pop's lead over the closest "
                  "other genre; the genres are its compared conditions, so its intervals and p-values resample "
                  "configurations and seeds within each genre, and \"genres agreeing\" counts the genres above 0.5 "
                  "(a) and the other genres pop leads (b).", ""]
    if scope:
        lines += ["**How far the verdicts hold with training.** The learning curves (`docs/CURVES.md`) retrain "
                  "latent 32 with four attributes in every genre to 6 epochs, ten times the budget above, and give "
                  "each finding's verdict along the way:", ""] + list(scope) + [""]
    family = _family_rows(assessed)
    if family:
        lines += [f"The family of {len(family)} tests the Holm correction runs over:", ""]
        lines += _table(["finding", "test", "p from", "n", "p", "Holm p"], family) + [""]
    for f in assessed:
        lines += [f"### {f.number}. {f.claim}", "", f"**Verdict: {f.verdict}.**", "", f"_Rule:_ {f.rule}", ""]
        lines += [f"- {e}" for e in f.evidence] + [""]
    lines += _scale_section(good)
    lines += ["## Tables", "",
              "One table per model, dataset and attribute set; one row per latent size: mean ± standard deviation "
              "over the seeds with results (n of them; the mean alone when n = 1). ↑: higher is better, ↓: lower is "
              "better. The metrics are explained at the end."]
    lines += _metric_tables(records) if good else ["", "No results yet."]
    if figures:
        lines += ["", "## Figures", "", "Each metric against latent size: one panel per model and attribute count, "
                  "one colour per dataset; every seed is a point (slightly offset sideways so they do not hide each "
                  "other) and the line joins the means over seeds.", ""]
        for m in METRICS:
            if m.key in figures:
                rel = os.path.join(figure_folder, os.path.basename(figures[m.key]))
                lines += [f"![{m.label} against latent size]({rel})", ""]
    cost = _cost_section(good)
    if cost:
        lines += ["", "## Cost", ""] + cost
    lines += ["", "## The metrics", ""] + _glossary() + [""]
    return "\n".join(lines)


def _curve_scope(curves_dir: Optional[str]) -> list:
    if not curves_dir:
        return []
    from musicvae_xai.study import curves  # imports this module's neighbours only when asked

    try:
        return curves.study_scope(curves_dir)
    except ValueError as e:
        raise ReportError(f"--curves_dir: {e}") from e


def _expected_pairs(expected: Sequence[dict]) -> Optional[int]:
    """Configurations (dataset, attributes, latent size; seeds aside) the grid runs for both models."""
    models: dict = {}
    for e in expected:
        if e.get("model") in ("measure_vae", "adversarial_vae"):
            models.setdefault((e["dataset"], tuple(e["attributes"]), e["latent_dim"]), set()).add(e["model"])
    return sum(1 for v in models.values() if len(v) == 2) or None


def write_report(study_dir: str, output: str, curves_dir: Optional[str] = None) -> tuple:
    """Writes the markdown report of ``study_dir`` to ``output`` and its figures to
    ``<output stem>_figures/``; returns (output, {metric: figure path}). ``curves_dir``: a curve study
    (``configs/study/curves.flags``) whose scope sentences go under the findings."""
    if not os.path.isdir(study_dir):
        raise ReportError(f"study_dir {study_dir} does not exist")
    records, unreadable = load_results(study_dir)
    expected = load_expected(study_dir)
    if not records and not expected:
        raise ReportError(f"{study_dir}: no result.json and no study.json found; nothing to report")
    out_dir = os.path.dirname(os.path.abspath(output))
    folder_name = os.path.splitext(os.path.basename(output))[0] + "_figures"
    baselines = load_baselines(study_dir)
    split = evaluation_split(records)
    for r in ok(records):  # results carry the baselines they were measured against
        b, evaluated = run_baseline(r, split)
        if evaluated:  # on exactly the evaluated measures: preferred to the whole split's
            baselines[r["grid"]["dataset"]] = {**(baselines.get(r["grid"]["dataset"]) or {}), split: b,
                                               "majority_token": b.get("majority_token")}
        elif b:
            baselines.setdefault(r["grid"]["dataset"], r["baselines"])
    figures = all_figures(records, os.path.join(out_dir, folder_name), expected, baselines, split)
    text = build_markdown(records, expected, figures, folder_name, study_dir, unreadable, load_study_info(study_dir),
                          baselines, _notes_lines(study_dir), _curve_scope(curves_dir))
    os.makedirs(out_dir, exist_ok=True)
    tmp = output + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, output)
    return output, figures
