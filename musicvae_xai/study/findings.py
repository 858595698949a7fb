"""The paper's four findings (SPEC section 1), each tested against a study's results.

``assess(records)`` returns one ``Finding`` per claim with a verdict -- "supported", "not supported",
"mixed" (or "partly supported") or "not enough results" -- and the numbers that decide it. The rules
are fixed here, before looking at any numbers, and stated in each finding's ``rule``:

1. MeasureVAE reconstructs better than AdversarialVAE: over configurations run for both models (same
   dataset, latent size, attributes and seed), MeasureVAE has the higher reconstruction accuracy in at
   least 2/3 of the pairs and on average; "not supported" when the opposite holds; else "mixed".
2. AdversarialVAE has better attribute independence: the same pairing on leakage (lower is better).
3. MeasureVAE gives interpretable dimensions of control across genres, best on pop: (a) in every
   genre MeasureVAE's regularised dims are the ones that carry their attributes (mean intended
   fraction >= 0.75) with mean interpretability >= 0.5; (b) pop has the highest mean interpretability
   of the genres (needs pop and another genre). Both: supported; one: partly supported.
4. With 4 regularised attributes, 32 or 64 latent dims are MeasureVAE's best trade-off: per dataset,
   reconstruction accuracy and interpretability are min-max scaled over the latent sizes run, the
   trade-off score of a latent size is the mean of the two, averaged over datasets; supported when the
   best latent size is 32 or 64 (needs at least three latent sizes, one of them 32 or 64).
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import numpy as np

from musicvae_xai.study.results import DATASET_ORDER, key_of, metric_value, ok, ordered

SUPPORTED, NOT_SUPPORTED, MIXED, PARTLY, NOT_ENOUGH = (
    "supported", "not supported", "mixed", "partly supported", "not enough results")
INTERPRETABLE_R2 = 0.5
INTENDED_FRACTION = 0.75
TRADE_OFF_SIZES = (32, 64)


@dataclasses.dataclass
class Finding:
    number: int
    claim: str
    verdict: str
    rule: str
    evidence: list  # markdown lines with the deciding numbers
    numbers: dict  # the same numbers, machine-readable

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _pairs(records: Sequence[dict], metric: str) -> list:
    """[(key without model, measure_vae value, adversarial_vae value)] of configurations run for both."""
    by_model: dict = {"measure_vae": {}, "adversarial_vae": {}}
    for r in ok(records):
        model = r["grid"]["model"]
        v = metric_value(r, metric)
        if model in by_model and v is not None and np.isfinite(v):
            by_model[model][key_of(r, drop=("model",))] = v
    common = sorted(set(by_model["measure_vae"]) & set(by_model["adversarial_vae"]), key=str)
    return [(k, by_model["measure_vae"][k], by_model["adversarial_vae"][k]) for k in common]


def _paired_verdict(wins: int, n: int, mean_diff: float) -> str:
    if n == 0:
        return NOT_ENOUGH
    if wins >= 2 * n / 3 and mean_diff > 0:
        return SUPPORTED
    if wins <= n / 3 and mean_diff < 0:
        return NOT_SUPPORTED
    return MIXED


def _per_dataset_lines(pairs: list, better, fmt: str = "{:.3f}") -> list:
    lines = []
    for ds in ordered([k[0] for k, _, _ in pairs], DATASET_ORDER):
        sub = [(m, a) for k, m, a in pairs if k[0] == ds]
        wins = sum(1 for m, a in sub if better(m, a))
        lines.append(f"{ds}: MeasureVAE {fmt.format(np.mean([m for m, _ in sub]))} vs AdversarialVAE "
                     f"{fmt.format(np.mean([a for _, a in sub]))} (MeasureVAE ahead in {wins} of {len(sub)})")
    return lines


def finding_reconstruction(records: Sequence[dict], expected_pairs: Optional[int] = None) -> Finding:
    claim = "MeasureVAE reconstructs better than AdversarialVAE."
    rule = ("Pairs of configurations that differ only in the model; supported when MeasureVAE's test "
            "reconstruction accuracy is higher in at least 2/3 of the pairs and on average.")
    pairs = _pairs(records, "token_accuracy")
    notes = _pairs(records, "note_accuracy")
    n = len(pairs)
    if not n:
        return Finding(1, claim, NOT_ENOUGH, rule, ["No configuration was run for both models."], {"pairs": 0})
    diff = float(np.mean([m - a for _, m, a in pairs]))
    wins = sum(1 for _, m, a in pairs if m > a)
    note_diff = float(np.mean([m - a for _, m, a in notes])) if notes else None
    note_wins = sum(1 for _, m, a in notes if m > a)
    evidence = [f"{n} pair(s){_coverage(n, expected_pairs)}: MeasureVAE has the higher reconstruction accuracy "
                f"in {wins}; mean difference (MeasureVAE - AdversarialVAE) {diff:+.3f}."]
    if note_diff is not None:
        evidence.append(f"Note accuracy (onset ticks only): MeasureVAE ahead in {note_wins} of {len(notes)}, "
                        f"mean difference {note_diff:+.3f}.")
    evidence += _per_dataset_lines(pairs, lambda m, a: m > a)
    return Finding(1, claim, _paired_verdict(wins, n, diff), rule, evidence,
                   {"pairs": n, "measure_vae_wins": wins, "mean_difference": diff,
                    "note_accuracy_mean_difference": note_diff, "note_accuracy_wins": note_wins})


def finding_independence(records: Sequence[dict], expected_pairs: Optional[int] = None) -> Finding:
    claim = "AdversarialVAE has better attribute independence."
    rule = ("Pairs of configurations that differ only in the model; supported when AdversarialVAE's leakage "
            "(mean |Spearman rho| between a swept control and the attributes it should not move) is lower in "
            "at least 2/3 of the pairs and on average.")
    pairs = _pairs(records, "leakage")
    n = len(pairs)
    if not n:
        return Finding(2, claim, NOT_ENOUGH, rule, ["No configuration was run for both models."], {"pairs": 0})
    diff = float(np.mean([m - a for _, m, a in pairs]))  # > 0: adversarial leaks less
    wins = sum(1 for _, m, a in pairs if a < m)
    ctrl = _pairs(records, "controllability")
    evidence = [f"{n} pair(s){_coverage(n, expected_pairs)}: AdversarialVAE leaks less in {wins}; mean leakage "
                f"MeasureVAE {np.mean([m for _, m, _ in pairs]):.3f} vs AdversarialVAE "
                f"{np.mean([a for _, _, a in pairs]):.3f}."]
    if ctrl:
        evidence.append(f"For context, controllability (higher is better): MeasureVAE "
                        f"{np.mean([m for _, m, _ in ctrl]):.3f} vs AdversarialVAE "
                        f"{np.mean([a for _, _, a in ctrl]):.3f}; low leakage means little when the control "
                        "does not move its own attribute either.")
    evidence += [line.replace("MeasureVAE ahead", "AdversarialVAE leaks less")
                 for line in _per_dataset_lines(pairs, lambda m, a: a < m)]
    return Finding(2, claim, _paired_verdict(wins, n, diff), rule, evidence,
                   {"pairs": n, "adversarial_vae_wins": wins, "mean_leakage_difference": diff})


def finding_interpretability(records: Sequence[dict]) -> Finding:
    claim = ("MeasureVAE gives interpretable dimensions of control across genres, and does best on "
             "low-complexity music (pop).")
    rule = (f"(a) in every genre with results, MeasureVAE's regularised dims carry their attributes (mean "
            f"intended fraction >= {INTENDED_FRACTION}) with mean interpretability >= {INTERPRETABLE_R2}; (b) pop has "
            "the highest mean interpretability. Both: supported; one: partly supported.")
    mv = [r for r in ok(records) if r["grid"]["model"] == "measure_vae"]
    if not mv:
        return Finding(3, claim, NOT_ENOUGH, rule, ["No MeasureVAE configuration has results."], {})
    per: dict = {}
    for r in mv:
        interp = metric_value(r, "interpretability_mean")
        if interp is None or not np.isfinite(interp):  # a result without it says nothing about this finding
            continue
        d = per.setdefault(r["grid"]["dataset"], {"interp": [], "intended": [], "ctrl": []})
        d["interp"].append(interp)
        frac = r["metrics"].get("interpretability_intended_fraction")
        if frac is not None:
            d["intended"].append(float(frac))
        c = metric_value(r, "controllability")
        if c is not None:
            d["ctrl"].append(c)
    if not per:
        return Finding(3, claim, NOT_ENOUGH, rule, ["No MeasureVAE result has an interpretability score."], {})
    table, evidence = {}, []
    for ds in ordered(per, DATASET_ORDER):
        d = per[ds]
        row = {"configs": len(d["interp"]), "interpretability": float(np.mean(d["interp"])),
               "intended_fraction": float(np.mean(d["intended"])) if d["intended"] else None,
               "controllability": float(np.mean(d["ctrl"])) if d["ctrl"] else None}
        table[ds] = row
        frac = "-" if row["intended_fraction"] is None else f"{row['intended_fraction']:.2f}"
        ctrl = "-" if row["controllability"] is None else f"{row['controllability']:.3f}"
        evidence.append(f"{ds} ({row['configs']} config(s)): interpretability {row['interpretability']:.3f}, "
                        f"intended fraction {frac}, controllability {ctrl}")
    part_a = all(row["interpretability"] >= INTERPRETABLE_R2 and (row["intended_fraction"] or 0) >= INTENDED_FRACTION
                 for row in table.values())
    genres = [g for g in table if g != "embedded"]
    if "pop" in table and len(genres) >= 2:
        best = max(genres, key=lambda g: table[g]["interpretability"])
        part_b = best == "pop"
        evidence.append(f"Highest mean interpretability: {best}.")
    else:
        part_b = None
        evidence.append("Part (b) needs results on pop and at least one other genre.")
    evidence.insert(0, f"(a) {'holds' if part_a else 'does not hold'} in the {len(table)} genre(s) with results; "
                       f"(b) {'holds' if part_b else 'cannot be judged' if part_b is None else 'does not hold'}.")
    if part_b is None:
        verdict = PARTLY if part_a else NOT_SUPPORTED
        if len(table) < 2:
            verdict = NOT_ENOUGH
    else:
        verdict = SUPPORTED if part_a and part_b else PARTLY if part_a or part_b else NOT_SUPPORTED
    return Finding(3, claim, verdict, rule, evidence, {"per_dataset": table, "part_a": part_a, "part_b": part_b})


def finding_trade_off(records: Sequence[dict]) -> Finding:
    claim = "With 4 regularised attributes, 32 or 64 latent dimensions are MeasureVAE's best trade-off."
    rule = ("MeasureVAE with four attributes; per dataset, reconstruction accuracy and interpretability are "
            "min-max scaled over the latent sizes run; a size's trade-off score is the mean of the two, averaged "
            "over datasets; supported when the best size is 32 or 64.")
    mv = [r for r in ok(records) if r["grid"]["model"] == "measure_vae" and len(r["grid"]["attributes"]) == 4]
    sizes = sorted({int(r["grid"]["latent_dim"]) for r in mv})
    if len(sizes) < 3 or not set(sizes) & set(TRADE_OFF_SIZES):
        return Finding(4, claim, NOT_ENOUGH, rule,
                       [f"Needs MeasureVAE four-attribute results at three or more latent sizes including 32 or 64; "
                        f"have {', '.join(map(str, sizes)) or 'none'}."], {"latent_sizes": sizes})
    scores: dict = {}
    raw: dict = {}
    for ds in {r["grid"]["dataset"] for r in mv}:
        rows: dict = {}
        for r in mv:
            if r["grid"]["dataset"] == ds:
                rows.setdefault(int(r["grid"]["latent_dim"]), []).append(
                    (metric_value(r, "token_accuracy"), metric_value(r, "interpretability_mean")))
        if len(rows) < 2:
            continue
        acc = {z: float(np.mean([a for a, _ in v])) for z, v in rows.items()}
        itp = {z: float(np.mean([i for _, i in v])) for z, v in rows.items()}
        for z in rows:
            s = (_scaled(acc, z) + _scaled(itp, z)) / 2
            scores.setdefault(z, []).append(s)
            raw.setdefault(z, []).append((acc[z], itp[z]))
    if len(scores) < 3:
        return Finding(4, claim, NOT_ENOUGH, rule, ["Needs one dataset with several latent sizes."], {})
    mean_score = {z: float(np.mean(v)) for z, v in scores.items()}
    best = max(sorted(mean_score), key=lambda z: mean_score[z])
    evidence = [f"Best trade-off at latent size {best} (score {mean_score[best]:.2f})."]
    for z in sorted(mean_score):
        acc = np.mean([a for a, _ in raw[z]])
        itp = np.mean([i for _, i in raw[z]])
        evidence.append(f"latent {z}: score {mean_score[z]:.2f} (reconstruction accuracy {acc:.3f}, "
                        f"interpretability {itp:.3f}, {len(scores[z])} dataset(s))")
    verdict = SUPPORTED if best in TRADE_OFF_SIZES else NOT_SUPPORTED
    return Finding(4, claim, verdict, rule, evidence, {"scores": mean_score, "best": best})


def _scaled(values: dict, key) -> float:
    lo, hi = min(values.values()), max(values.values())
    return 0.5 if hi - lo < 1e-12 else (values[key] - lo) / (hi - lo)


def _coverage(n: int, expected: Optional[int]) -> str:
    return f" of the {expected} the grid defines" if expected and expected > n else ""


def assess(records: Sequence[dict], expected_pairs: Optional[int] = None) -> list:
    """The four findings, in the paper's order."""
    return [finding_reconstruction(records, expected_pairs), finding_independence(records, expected_pairs),
            finding_interpretability(records), finding_trade_off(records)]
