"""The paper's four findings (docs/METHOD.md section 1), each tested against a study's results with statistics.

``assess(records)`` returns one ``Finding`` per claim. Each has an *effect* oriented so that positive
means "as the paper claims", a 95% bootstrap interval that resamples configurations and seeds, a
Wilcoxon signed-rank p-value across configurations, and a verdict -- "supported", "contradicted" or
"inconclusive" -- decided by the interval alone (``musicvae_xai.study.stats``), never by a count of
wins. The rules are fixed here, before looking at any numbers, and stated in each finding's ``rule``:

1. MeasureVAE reconstructs better than AdversarialVAE: effect = mean over configurations run for both
   models (same dataset, latent size and attributes) of MeasureVAE's minus AdversarialVAE's test
   token accuracy, each averaged over its seeds.
2. AdversarialVAE has better attribute independence: the same pairing on leakage, MeasureVAE minus
   AdversarialVAE (positive: AdversarialVAE leaks less).
3. MeasureVAE gives interpretable dimensions of control across genres, best on pop: (a) effect = the
   lowest genre's mean interpretability minus 0.5; (b) effect = the smallest, over the other genres,
   of pop's mean paired advantage in interpretability (configurations matched on latent size and
   attributes). Supported when both intervals are above zero, contradicted when either is below.
4. With 4 regularised attributes, 32 or 64 latent dims are MeasureVAE's best trade-off: per dataset,
   reconstruction accuracy and interpretability (seed means) are min-max scaled over the latent sizes
   run; a size's score is the mean of the two, averaged over datasets. Effect = the better of 32 and
   64's score minus the best other size's. Draws resample the seeds of every (dataset, latent size)
   cell; they also give, for each latent size, the probability that it has the best score.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import numpy as np

from musicvae_xai.study import stats
from musicvae_xai.study.results import DATASET_ORDER, key_of, metric_value, ok, ordered
from musicvae_xai.study.stats import CONTRADICTED, INCONCLUSIVE, SUPPORTED

INTERPRETABLE_R2 = 0.5
TRADE_OFF_SIZES = (32, 64)


@dataclasses.dataclass
class Finding:
    number: int
    claim: str
    verdict: str
    rule: str
    evidence: list  # markdown lines with the deciding numbers
    numbers: dict  # the same numbers, machine-readable (effects as Effect.to_dict())

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def cells(records: Sequence[dict], metric: str, model: Optional[str] = None, attribute_count: Optional[int] = None,
          drop: Sequence[str] = ("model", "seed")) -> dict:
    """{grid key without ``drop``: [value per seed]} of the ok results (of ``model``), finite values only."""
    out: dict = {}
    for r in ok(records):
        g = r["grid"]
        if (model and g["model"] != model) or (attribute_count and len(g["attributes"]) != attribute_count):
            continue
        v = metric_value(r, metric)
        if v is not None and np.isfinite(v):
            out.setdefault(key_of(r, drop=drop), []).append(v)
    return out


def _model_pairs(records: Sequence[dict], metric: str) -> tuple:
    """(keys (dataset, attributes, latent), MeasureVAE seed values, AdversarialVAE seed values)."""
    mv, av = cells(records, metric, "measure_vae"), cells(records, metric, "adversarial_vae")
    keys = sorted(set(mv) & set(av), key=lambda k: (_rank(k[0]), k[0], len(k[1]), k[2]))
    return keys, [mv[k] for k in keys], [av[k] for k in keys]


def _rank(dataset: str) -> int:
    return DATASET_ORDER.index(dataset) if dataset in DATASET_ORDER else len(DATASET_ORDER)


def _coverage(n: int, expected: Optional[int]) -> str:
    return f" of the {expected} the grid defines" if expected and expected > n else ""


def _paired_finding(number: int, claim: str, rule: str, records: Sequence[dict], metric: str, label: str,
                    expected: Optional[int], context: Sequence[tuple] = ()) -> Finding:
    keys, mv, av = _model_pairs(records, metric)
    if len(keys) < 2:
        return Finding(number, claim, INCONCLUSIVE, rule,
                       [f"Needs at least two configurations run for both models; have {len(keys)}."],
                       {"configurations": len(keys)})
    effect = stats.paired_effect(mv, av)
    evidence = [f"Effect ({label}, MeasureVAE - AdversarialVAE): {effect.describe()}"
                f"{_coverage(len(keys), expected)}.",
                f"Means: MeasureVAE {np.mean([np.mean(v) for v in mv]):.3f}, AdversarialVAE "
                f"{np.mean([np.mean(v) for v in av]):.3f}."]
    numbers = {"effect": effect.to_dict(), "configurations": len(keys)}
    for key, text in context:
        ck, cmv, cav = _model_pairs(records, key)
        if len(ck) >= 2:
            e = stats.paired_effect(cmv, cav)
            evidence.append(f"{text}: {e.describe()}.")
            numbers[f"{key}_effect"] = e.to_dict()
    per = {}
    for ds in ordered({k[0] for k in keys}, DATASET_ORDER):
        idx = [i for i, k in enumerate(keys) if k[0] == ds]
        if len(idx) >= 2:
            e = stats.paired_effect([mv[i] for i in idx], [av[i] for i in idx])
            per[ds] = e.to_dict()
            evidence.append(f"{ds}: {e.describe()} ({e.verdict} within this genre).")
    numbers["per_dataset"] = per
    return Finding(number, claim, effect.verdict, rule, evidence, numbers)


def finding_reconstruction(records: Sequence[dict], expected_pairs: Optional[int] = None) -> Finding:
    claim = "MeasureVAE reconstructs better than AdversarialVAE."
    rule = ("Effect: mean over configurations run for both models (same dataset, latent size, attributes) of "
            "MeasureVAE's minus AdversarialVAE's test token accuracy, each averaged over its seeds. Supported when "
            "the 95% bootstrap interval (configurations and seeds resampled) is above zero, contradicted when below, "
            "else inconclusive.")
    return _paired_finding(1, claim, rule, records, "token_accuracy", "test token accuracy", expected_pairs,
                           [("note_accuracy", "Note accuracy (pitch and rest targets only), same pairing, no verdict")])


def finding_independence(records: Sequence[dict], expected_pairs: Optional[int] = None) -> Finding:
    claim = "AdversarialVAE has better attribute independence."
    rule = ("Effect: mean over configurations run for both models of MeasureVAE's minus AdversarialVAE's leakage "
            "(mean |Spearman rho| between a swept control and the attributes it should not move; positive: "
            "AdversarialVAE leaks less), seed-averaged. Verdict by the 95% bootstrap interval as in finding 1.")
    return _paired_finding(2, claim, rule, records, "leakage", "leakage", expected_pairs,
                           [("controllability", "For context, controllability (MeasureVAE - AdversarialVAE; "
                             "low leakage means little when the control does not move its own attribute either)")])


def finding_interpretability(records: Sequence[dict]) -> Finding:
    claim = ("MeasureVAE gives interpretable dimensions of control across genres, and does best on "
             "low-complexity music (pop).")
    rule = (f"(a) effect = the lowest genre's mean MeasureVAE interpretability minus {INTERPRETABLE_R2} "
            "(configurations and seeds resampled per genre); (b) effect = the smallest, over the other genres, of "
            "pop's mean paired advantage in interpretability over configurations matched on latent size and "
            "attributes. Supported when both 95% intervals are above zero, contradicted when either is below, "
            "else inconclusive.")
    by_genre: dict = {}
    for (ds, attrs_, z), values in cells(records, "interpretability_mean", "measure_vae",
                                         drop=("model", "seed")).items():
        if ds != "embedded":
            by_genre.setdefault(ds, {})[(attrs_, z)] = values
    sparse = {g: len(v) for g, v in by_genre.items() if len(v) < 2}  # too few to resample: left out
    by_genre = {g: v for g, v in by_genre.items() if g not in sparse}
    if len(by_genre) < 2:
        return Finding(3, claim, INCONCLUSIVE, rule,
                       ["Needs MeasureVAE interpretability in at least two genres with two or more configurations "
                        f"each; have {', '.join(f'{g}: {len(v)}' for g, v in by_genre.items()) or 'none'}"
                        + "".join(f", {g}: {n}" for g, n in sparse.items()) + "."], {})
    generator = stats.rng()
    genres = ordered(by_genre, DATASET_ORDER)
    fractions = cells(records, "interpretability_intended_fraction", "measure_vae", drop=("model", "seed"))
    evidence, per = [], {}
    if sparse:
        evidence.append("Left out for now (fewer than two configurations with results): "
                        + ", ".join(f"{g} ({n})" for g, n in sparse.items()) + ".")
    a_draws, a_est = [], {}
    for g in genres:
        est, draws = stats.mean_draws(list(by_genre[g].values()), generator=generator)
        a_est[g], ci = est, stats.interval(draws)
        a_draws.append(draws)
        frac = [np.mean(v) for (ds, at, z), v in fractions.items() if ds == g]
        per[g] = {"interpretability": est, "ci": ci, "configurations": len(by_genre[g]),
                  "intended_fraction": float(np.mean(frac)) if frac else None}
        evidence.append(f"{g}: mean interpretability {est:.3f} [95% CI {ci[0]:.3f}, {ci[1]:.3f}], "
                        f"{len(by_genre[g])} configuration(s); regularised dim is the most informative one for "
                        f"{'–' if not frac else f'{np.mean(frac):.0%}'} of attributes")
    worst = min(genres, key=lambda g: a_est[g])
    a_ci = stats.interval(np.min(np.stack(a_draws), axis=0) - INTERPRETABLE_R2)
    a_p = stats.wilcoxon_p([np.mean(v) - INTERPRETABLE_R2 for v in by_genre[worst].values()])
    counts = [len(v) for g in genres for v in by_genre[g].values()]
    part_a = stats.Effect(a_est[worst] - INTERPRETABLE_R2, a_ci, a_p, len(by_genre[worst]),
                          (min(counts), max(counts)), stats.verdict(a_ci))
    evidence.insert(0, f"(a) lowest genre {worst}, interpretability - {INTERPRETABLE_R2}: {part_a.describe()} "
                       f"-> {part_a.verdict}.")
    numbers = {"per_dataset": per, "part_a": part_a.to_dict(), "part_b": None}
    if "pop" in by_genre:
        b_draws, b_est, rivals = [], {}, {}
        for g in genres:
            if g == "pop":
                continue
            common = sorted(set(by_genre["pop"]) & set(by_genre[g]))
            if len(common) < 2:
                continue
            est, draws, diffs = stats.paired_draws([by_genre["pop"][k] for k in common],
                                                   [by_genre[g][k] for k in common], generator=generator)
            b_est[g], rivals[g] = est, diffs
            b_draws.append(draws)
        if b_draws:
            rival = min(b_est, key=lambda g: b_est[g])
            b_ci = stats.interval(np.min(np.stack(b_draws), axis=0))
            part_b = stats.Effect(b_est[rival], b_ci, stats.wilcoxon_p(rivals[rival]), len(rivals[rival]),
                                  part_a.seeds, stats.verdict(b_ci))
            numbers["part_b"] = {**part_b.to_dict(), "closest_genre": rival}
            evidence.insert(1, f"(b) pop minus the closest other genre ({rival}): {part_b.describe()} "
                               f"-> {part_b.verdict}.")
    if numbers["part_b"] is None:
        evidence.insert(1, "(b) needs pop and another genre with two or more matched configurations.")
        verdict = CONTRADICTED if part_a.verdict == CONTRADICTED else INCONCLUSIVE
    else:
        parts = (part_a.verdict, numbers["part_b"]["verdict"])
        verdict = CONTRADICTED if CONTRADICTED in parts else SUPPORTED if parts == (SUPPORTED, SUPPORTED) \
            else INCONCLUSIVE
    return Finding(3, claim, verdict, rule, evidence, numbers)


def _scaled(x: np.ndarray) -> np.ndarray:
    """Min-max scaling along the last axis; 0.5 where every value is equal."""
    lo, hi = x.min(axis=-1, keepdims=True), x.max(axis=-1, keepdims=True)
    span = hi - lo
    return np.where(span < 1e-12, 0.5, (x - lo) / np.where(span < 1e-12, 1.0, span))


def trade_off_scores(acc: np.ndarray, itp: np.ndarray) -> np.ndarray:
    """Trade-off score per latent size of one dataset: mean of min-max scaled accuracy and
    interpretability. acc, itp: [..., Z] float -> [..., Z]."""
    return (_scaled(acc) + _scaled(itp)) / 2


def finding_trade_off(records: Sequence[dict], draws: int = stats.BOOTSTRAP_DRAWS) -> Finding:
    claim = "With 4 regularised attributes, 32 or 64 latent dimensions are MeasureVAE's best trade-off."
    rule = ("MeasureVAE with four attributes; per dataset, test token accuracy and interpretability (seed means) are "
            "min-max scaled over the latent sizes run; a size's score is the mean of the two, averaged over datasets. "
            "Effect = the better of 32 and 64's score minus the best other size's; its 95% interval and each size's "
            "probability of scoring best come from bootstrap draws over the seeds of every (dataset, latent size). "
            "Supported when the interval is above zero, contradicted when below, else inconclusive (always "
            "inconclusive unless every cell has two or more seeds: a cell with one seed has no spread to resample, "
            "and the draws would understate the uncertainty).")
    runs: dict = {}  # (dataset, latent) -> [(acc, interp)] of runs that have both
    for r in ok(records):
        g = r["grid"]
        if g["model"] == "measure_vae" and len(g["attributes"]) == 4:
            a, i = metric_value(r, "token_accuracy"), metric_value(r, "interpretability_mean")
            if a is not None and i is not None and np.isfinite(a) and np.isfinite(i):
                runs.setdefault((g["dataset"], int(g["latent_dim"])), []).append((a, i))
    datasets = [ds for ds in ordered({k[0] for k in runs}, DATASET_ORDER)
                if sum(1 for k in runs if k[0] == ds) >= 2]
    sizes = sorted({z for ds, z in runs if ds in datasets})
    if len(sizes) < 3 or not set(sizes) & set(TRADE_OFF_SIZES) or not set(sizes) - set(TRADE_OFF_SIZES):
        return Finding(4, claim, INCONCLUSIVE, rule,
                       ["Needs MeasureVAE four-attribute results at three or more latent sizes including 32 or 64 "
                        f"and another size; have {', '.join(map(str, sizes)) or 'none'}."], {"latent_sizes": sizes})
    generator = stats.rng()
    total = np.zeros((draws + 1, len(sizes)))  # row 0: the point estimate from the seed means
    present = np.zeros(len(sizes))
    per_dataset = {}
    for ds in datasets:
        zs = [z for z in sizes if (ds, z) in runs]
        cols = [sizes.index(z) for z in zs]
        a_tab, counts = stats.seed_table([[a for a, _ in runs[(ds, z)]] for z in zs])
        i_tab, _ = stats.seed_table([[i for _, i in runs[(ds, z)]] for z in zs])
        chosen = np.broadcast_to(np.arange(len(zs)), (draws, len(zs)))
        # the same seed picks for accuracy and interpretability: both come from the same runs
        state = generator.bit_generator.state
        a_boot = stats.resampled_seed_means(a_tab, counts, chosen, generator)
        generator.bit_generator.state = state
        i_boot = stats.resampled_seed_means(i_tab, counts, chosen, generator)
        a_all = np.vstack([np.nanmean(a_tab, axis=1), a_boot])
        i_all = np.vstack([np.nanmean(i_tab, axis=1), i_boot])
        score = trade_off_scores(a_all, i_all)
        total[:, cols] += score
        present[cols] += 1
        per_dataset[ds] = {z: float(score[0, j]) for j, z in enumerate(zs)}
    score = total / present
    best_idx = np.argmax(score[1:], axis=1)
    probability = {z: float(np.mean(best_idx == j)) for j, z in enumerate(sizes)}
    claimed = [j for j, z in enumerate(sizes) if z in TRADE_OFF_SIZES]
    others = [j for j, z in enumerate(sizes) if z not in TRADE_OFF_SIZES]
    gap = score[:, claimed].max(axis=1) - score[:, others].max(axis=1)
    ci = stats.interval(gap[1:])
    ds_gaps = [max(v[z] for z in v if z in TRADE_OFF_SIZES) - max(v[z] for z in v if z not in TRADE_OFF_SIZES)
               for v in per_dataset.values() if set(v) & set(TRADE_OFF_SIZES) and set(v) - set(TRADE_OFF_SIZES)]
    counts = [len(v) for v in runs.values()]
    verdict = stats.verdict(ci) if min(counts) >= 2 else INCONCLUSIVE
    effect = stats.Effect(float(gap[0]), ci, stats.wilcoxon_p(ds_gaps), len(ds_gaps), (min(counts), max(counts)),
                          verdict)
    best = sizes[int(np.argmax(score[0]))]
    evidence = [f"Effect (score of the better of 32 and 64 minus the best other size): {effect.describe(2)} "
                "(Wilcoxon across datasets).",
                f"Best trade-off with the seed means: latent size {best} (score {score[0, sizes.index(best)]:.2f}).",
                "Probability of being the best size over the bootstrap draws: "
                + ", ".join(f"{z}: {probability[z]:.2f}" for z in sizes) + "."]
    if min(counts) < 2:
        single = sum(1 for c in counts if c < 2)
        evidence.append(f"{single} of {len(counts)} (dataset, latent size) cells have one seed, which the draws "
                        "cannot move, so the interval understates the uncertainty: the verdict stays inconclusive "
                        "until every cell has two or more seeds.")
    for j, z in enumerate(sizes):
        a = np.mean([np.mean([a for a, _ in runs[k]]) for k in runs if k[1] == z])
        i = np.mean([np.mean([i for _, i in runs[k]]) for k in runs if k[1] == z])
        n = [len(runs[k]) for k in runs if k[1] == z]
        evidence.append(f"latent {z}: score {score[0, j]:.2f} (token accuracy {a:.3f}, interpretability {i:.3f}; "
                        f"{int(present[j])} dataset(s), {min(n) if min(n) == max(n) else f'{min(n)}-{max(n)}'} seed(s) "
                        "per dataset)")
    return Finding(4, claim, verdict, rule, evidence,
                   {"effect": effect.to_dict(), "scores": {z: float(score[0, j]) for j, z in enumerate(sizes)},
                    "best": best, "probability_best": probability, "per_dataset": per_dataset})


def assess(records: Sequence[dict], expected_pairs: Optional[int] = None) -> list:
    """The four findings, in the paper's order."""
    return [finding_reconstruction(records, expected_pairs), finding_independence(records, expected_pairs),
            finding_interpretability(records), finding_trade_off(records)]
