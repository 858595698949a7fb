"""The study report's majority-token baselines: what a model must beat to have learned anything.

A result scored on exactly the measures it was evaluated on carries its baselines (``metrics["baselines"]``,
from its evaluation report); older results carry only their dataset's baselines on the whole split.
"""

from __future__ import annotations

from collections import Counter
from typing import Optional, Sequence

import numpy as np

from musicvae_xai.models.registry import label as model_label
from musicvae_xai.study.figures import MODEL_ORDER
from musicvae_xai.study.markdown import cell as _fmt
from musicvae_xai.study.markdown import rank as _rank
from musicvae_xai.study.markdown import table as _table
from musicvae_xai.study.results import DATASET_ORDER, ok, ordered


def evaluation_split(records: Sequence[dict]) -> str:
    """The split the results were evaluated on (the most common one; ``test`` when unknown)."""
    splits = Counter((r.get("evaluation_options") or {}).get("split", "test") for r in ok(records))
    return splits.most_common(1)[0][0] if splits else "test"


def split_baseline(baselines: Optional[dict], split: str) -> dict:
    """The baselines of ``split`` from one dataset's baselines record ({} if absent)."""
    return ((baselines or {}).get(split) or {}) if isinstance(baselines, dict) else {}


def run_baseline(record: dict, split: str) -> tuple:
    """(baselines, on_evaluated) of one result: the majority-token baselines scored on exactly the measures
    the run was evaluated on (``metrics["baselines"]``, from its evaluation report) when the result carries
    them (on_evaluated True), else the dataset's baselines on the whole ``split`` (False); ({}, False) if
    neither."""
    evaluated = (record.get("metrics") or {}).get("baselines")
    if isinstance(evaluated, dict) and evaluated.get("majority_token_accuracy") is not None:
        return evaluated, True
    return split_baseline(record.get("baselines"), split), False


def baseline_section(records: Sequence[dict], stored: Optional[dict] = None) -> list:
    """The report's baselines section: per dataset the baselines beside the models' accuracies, and the
    trainings that barely beat the majority-token baseline. ``stored``: the study's ``baselines.json``."""
    split = evaluation_split(records)
    per: dict = {}
    for ds, b in (stored or {}).items():
        if split_baseline(b, split):
            per[ds] = {"base": (split_baseline(b, split), b.get("majority_token"), False), "test": [], "note": []}
    for r in ok(records):
        ds = r["grid"]["dataset"]
        d = per.setdefault(ds, {"base": None, "test": [], "note": []})
        b, evaluated = run_baseline(r, split)
        if b and (d["base"] is None or (evaluated and not d["base"][2])):
            d["base"] = (b, b.get("majority_token") or (r.get("baselines") or {}).get("majority_token"), evaluated)
        d["test"].append(r["metrics"]["token_accuracy"])
        d["note"].append(r["metrics"]["note_accuracy"])
    if not per:
        return ["No results and no dataset baselines yet."]
    scopes = {d["base"][2] for d in per.values() if d["base"]}
    sizes = Counter((r.get("evaluation_options") or {}).get("max_measures") for r in ok(records))
    drawn = sizes.most_common(1)[0][0] if sizes else None
    if scopes == {True}:
        scope = ("Each baseline is scored on exactly the measures the models were evaluated on (from each run's "
                 "evaluation report).")
    elif True in scopes:
        scope = ("Where the results carry them, baselines are scored on exactly the measures the models were "
                 f"evaluated on; elsewhere (column \"baseline on\") on the whole `{split}` split.")
    else:
        scope = (f"These baselines are scored on the whole `{split}` split (column \"baseline on\")"
                 + (f", the models on {drawn:,} measures drawn from it at random (the evaluation's `max_measures`); "
                    "the results predate baselines scored on the evaluated measures themselves, so margins "
                    "near zero are within the sampling difference of the two sets." if drawn else "."))
    lines = ["A model has learned something only if it beats predicting the same token everywhere. The "
             "*majority-token* baseline predicts the most frequent training token (`hold`, the continuation "
             "of a note, in every dataset here) at all 24 ticks; the *per-tick* baseline predicts the most "
             "frequent training token of each tick position. Note accuracies count only ticks whose target is a "
             f"pitch or a rest. Baselines and model accuracies are on the same split, `{split}`; the models' are "
             "greedy reconstructions without teacher forcing. " + scope, ""]
    rows = []
    for ds in ordered(per, DATASET_ORDER):
        d = per[ds]
        base, token, evaluated = d["base"] or ({}, None, False)
        rng = lambda xs: f"{min(xs):.3f} / {np.median(xs):.3f} / {max(xs):.3f}" if xs else "–"  # noqa: E731
        maj = base.get("majority_token_accuracy")
        margin = f"{np.median(d['test']) - maj:+.3f}" if d["test"] and maj is not None else "–"
        n = base.get("measures")
        on = "–" if not n else f"{n:,} evaluated" if evaluated else f"{n:,} (whole split)"
        rows.append([ds, f"`{token}`" if token else "–", on, _fmt(maj), _fmt(base.get("majority_note_accuracy")),
                     _fmt(base.get("per_tick_majority_token_accuracy")),
                     _fmt(base.get("per_tick_majority_note_accuracy")), rng(d["test"]), margin, rng(d["note"])])
    lines += _table(["dataset", "majority token", "baseline on (measures)", "majority-token acc.",
                     "majority-token note acc.", "per-tick token acc.", "per-tick note acc.",
                     f"models: {split} token acc. (min / median / max)", "median margin over majority",
                     f"models: {split} note acc."], rows)
    below: dict = {}
    for r in ok(records):
        v = r["metrics"].get("token_accuracy")
        maj = run_baseline(r, split)[0].get("majority_token_accuracy")
        if v is not None and maj is not None and v <= maj + 0.02:
            g = r["grid"]
            below.setdefault((g["model"], g["dataset"], len(g["attributes"]), maj), []).append(
                (int(g["latent_dim"]), int(g.get("seed", 0)), v))
    if below:
        lines += ["", f"{sum(map(len, below.values()))} training(s) did not beat the majority-token baseline "
                      f"by more than 0.02 on `{split}`, so their other metrics describe a model that has barely "
                      "learned:", ""]
        rows = []
        for (model, ds, n, maj), runs in sorted(below.items(), key=lambda kv: (
                _rank(kv[0][0], MODEL_ORDER), _rank(kv[0][1], DATASET_ORDER), kv[0])):
            runs.sort()
            accs = [a for _, _, a in runs]
            rows.append([model_label(model), ds, n, ", ".join(f"{z} s{s}" for z, s, _ in runs),
                         f"{min(accs):.3f} – {max(accs):.3f}", _fmt(maj)])
        lines += _table(["model", "dataset", "attributes", "latent size, seed", f"{split} token acc.",
                         "majority-token acc."], rows)
    return lines
