"""The paper's four findings (docs/METHOD.md section 1), each tested against a study's results with statistics.

``assess(records)`` returns one ``Finding`` per claim. Each has an *effect* oriented so that positive
means "as the paper claims", a 95% bootstrap interval, p-values Holm-adjusted over the report's family of
tests, and a verdict -- "supported", "contradicted" or "inconclusive" -- decided by the interval and the
agreement of the genres (``musicvae_xai.study.stats``), never by a count of wins or a p-value. The genre
is the unit of generalisation: a verdict other than inconclusive needs all ``stats.GENRES_REQUIRED`` (four)
genres. The rules are fixed here, before looking at any numbers, and stated in each finding's ``rule``:

1. MeasureVAE reconstructs better than AdversarialVAE: per genre, effect = mean over the configurations
   run for both models (same latent size and attributes) of MeasureVAE's minus AdversarialVAE's test
   token accuracy, each averaged over its seeds; overall effect = mean of the genre effects, with a
   hierarchical bootstrap interval (genres, configurations, seeds).
2. AdversarialVAE has better attribute independence: the same on leakage, MeasureVAE minus
   AdversarialVAE (positive: AdversarialVAE leaks less).
3. MeasureVAE gives interpretable dimensions of control across genres, best on pop: (a) effect = the
   lowest genre's mean interpretability minus 0.5; (b) effect = the smallest, over the other genres, of
   pop's mean paired advantage in interpretability (configurations matched on latent size and
   attributes). The genres are the compared conditions here, so the intervals resample configurations
   and seeds within each genre. Supported when both parts are, contradicted when either is.
4. With 4 regularised attributes, 32 or 64 latent dims are MeasureVAE's best trade-off: per genre,
   reconstruction accuracy and interpretability (seed means) are min-max scaled over the latent sizes
   run; a size's score is the mean of the two, averaged over genres. Effect = the better of 32 and 64's
   score minus the best other size's. Draws resample the genres, then the seeds of every (genre, latent
   size) cell; they also give, for each latent size, the probability that it has the best score.

Partial grids (a subset of genres, latent sizes or seeds, e.g. one curve point) are assessed on what they
have; a finding without enough data says so and stays inconclusive.
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
    tests: list = dataclasses.field(default_factory=list)  # [(label, effect dict of ``numbers``)] with p-values

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


def _pairs_by_genre(records: Sequence[dict], metric: str) -> dict:
    """{genre: (MeasureVAE seed values, AdversarialVAE seed values) per configuration}, genres in report order."""
    keys, mv, av = _model_pairs(records, metric)
    out: dict = {}
    for k, m, a in zip(keys, mv, av, strict=True):
        side = out.setdefault(k[0], ([], []))
        side[0].append(m)
        side[1].append(a)
    return out


def _rank(dataset: str) -> int:
    return DATASET_ORDER.index(dataset) if dataset in DATASET_ORDER else len(DATASET_ORDER)


def _coverage(n: int, expected: Optional[int]) -> str:
    return f" of the {expected} the grid defines" if expected and expected > n else ""


def _genre_rule_note(effect: stats.Effect, per: dict, what: str = "genre") -> Optional[str]:
    """Why the genre rule leaves a finding inconclusive (too few genres, a genre of the other sign), or None."""
    if effect.genres < stats.GENRES_REQUIRED:
        return (f"Inconclusive by rule: a verdict needs all {stats.GENRES_REQUIRED} genres, and only "
                f"{effect.genres} ({', '.join(per)}) have results.")
    other = [g for g, e in per.items() if np.sign(e) != np.sign(effect.estimate)]
    if other:
        return (f"Inconclusive by rule: {', '.join(other)} {'disagrees' if len(other) == 1 else 'disagree'} in sign "
                f"with the overall effect; a verdict needs every {what} to agree.")
    return None


def _paired_finding(number: int, claim: str, rule: str, records: Sequence[dict], metric: str, label: str,
                    expected: Optional[int], context: Sequence[tuple] = ()) -> Finding:
    by_genre = _pairs_by_genre(records, metric)
    n = sum(len(a) for a, _ in by_genre.values())
    if not n:
        return Finding(number, claim, INCONCLUSIVE, rule,
                       ["Needs at least one configuration run for both models; have 0."], {"configurations": 0})
    effect, per = stats.paired_genre_effects(by_genre)
    mv = [np.mean(v) for a, _ in by_genre.values() for v in a]
    av = [np.mean(v) for _, b in by_genre.values() for v in b]
    evidence = [f"Effect ({label}, MeasureVAE - AdversarialVAE, mean of the genre effects): {effect.describe()}"
                f"{_coverage(n, expected)}.",
                f"Means over configurations: MeasureVAE {np.mean(mv):.3f}, AdversarialVAE {np.mean(av):.3f}."]
    note = _genre_rule_note(effect, {g: e.estimate for g, e in per.items()})
    if note:
        evidence.insert(1, note)
    numbers = {"effect": effect.to_dict(), "configurations": n}
    tests = [(f"{label}, across genres", numbers["effect"])]
    for key, text in context:
        c = _pairs_by_genre(records, key)
        if c:
            e = stats.paired_genre_effects(c)[0]
            evidence.append(f"{text}: {e.describe()}.")
            numbers[f"{key}_effect"] = e.to_dict()
            tests.append((f"{key.replace('_', ' ')}, across genres (no verdict)", numbers[f"{key}_effect"]))
    numbers["per_dataset"] = {g: e.to_dict() for g, e in per.items()}
    for g, e in per.items():
        evidence.append(f"{g}: {e.describe()} (interval {'off zero' if e.verdict != INCONCLUSIVE else 'across zero'} "
                        "within this genre).")
        tests.append((f"{label}, {g}", numbers["per_dataset"][g]))
    return Finding(number, claim, effect.verdict, rule, evidence, numbers, tests)


_GENRE_RULE = (f"Supported or contradicted needs that interval entirely on one side of zero AND all "
               f"{stats.GENRES_REQUIRED} genres agreeing in sign with the effect; anything else is inconclusive.")


def finding_reconstruction(records: Sequence[dict], expected_pairs: Optional[int] = None) -> Finding:
    claim = "MeasureVAE reconstructs better than AdversarialVAE."
    rule = ("Per genre, effect = mean over the configurations run for both models (same latent size and attributes) "
            "of MeasureVAE's minus AdversarialVAE's test token accuracy, each averaged over its seeds, with a 95% "
            "bootstrap interval over the genre's configurations and seeds. Overall effect = mean of the genre "
            "effects, with a 95% hierarchical bootstrap interval (genres, then configurations, then seeds). "
            + _GENRE_RULE)
    return _paired_finding(1, claim, rule, records, "token_accuracy", "test token accuracy", expected_pairs,
                           [("note_accuracy", "Note accuracy (pitch and rest targets only), same pairing, no verdict")])


def finding_independence(records: Sequence[dict], expected_pairs: Optional[int] = None) -> Finding:
    claim = "AdversarialVAE has better attribute independence."
    rule = ("As finding 1 on leakage (mean |Spearman rho| between a swept control and the attributes it should not "
            "move), MeasureVAE minus AdversarialVAE: positive when AdversarialVAE leaks less. " + _GENRE_RULE)
    return _paired_finding(2, claim, rule, records, "leakage", "leakage", expected_pairs,
                           [("controllability", "For context, controllability (MeasureVAE - AdversarialVAE; "
                             "low leakage means little when the control does not move its own attribute either)")])


def _min_part(estimates: dict, draws: list, offset: float, runs: dict, required: int) -> tuple:
    """(Effect, note) of a part of finding 3: the smallest of ``estimates`` ({genre: value}) minus ``offset``,
    its interval from the element-wise minimum of the within-genre ``draws`` ([B] each). Supported or
    contradicted only with ``required`` estimates and two or more runs in every genre of ``runs``
    ({genre: (configurations, (fewest, most) seeds)})."""
    boot = np.min(np.stack(draws), axis=0) - offset
    ci = stats.interval(boot)
    values = [v - offset for v in estimates.values()]
    few = [g for g, (c, s) in runs.items() if c * s[1] < 2]
    verdict = stats.verdict(ci) if len(values) >= required and not few else INCONCLUSIVE
    configs = [c for c, _ in runs.values()]
    seeds = (min(s[0] for _, s in runs.values()), max(s[1] for _, s in runs.values()))
    effect = stats.Effect(float(min(values)), ci, stats.bootstrap_p(boot), sum(configs), seeds, verdict,
                          stats.BOOTSTRAP, len(values), stats.agreeing(values, 1.0), (min(configs), max(configs)),
                          stats.sign_test_p(values))
    note = None
    if len(values) < required:
        note = f"inconclusive by rule: needs all {stats.GENRES_REQUIRED} genres, have {len(runs)}"
    elif few:
        note = f"inconclusive by rule: {', '.join(few)} has a single run, with no spread to resample"
    return effect, note


def finding_interpretability(records: Sequence[dict]) -> Finding:
    claim = ("MeasureVAE gives interpretable dimensions of control across genres, and does best on "
             "low-complexity music (pop).")
    rule = (f"(a) effect = the lowest genre's mean MeasureVAE interpretability minus {INTERPRETABLE_R2}; (b) effect "
            "= the smallest, over the other genres, of pop's mean paired advantage in interpretability over "
            "configurations matched on latent size and attributes. The genres are the compared conditions here, so "
            "each interval is the minimum, draw by draw, of within-genre bootstrap draws (configurations, then "
            "seeds), and both effects are minima over genres: a part is supported only when every genre agrees "
            "(all above 0.5; pop ahead of every other genre). A part's verdict needs all "
            f"{stats.GENRES_REQUIRED} genres and two or more runs in each; its interval above zero -> supported, "
            "below -> contradicted. The finding is supported when both parts are, contradicted when either is, "
            "else inconclusive.")
    by_genre: dict = {}
    for (ds, attrs_, z), values in cells(records, "interpretability_mean", "measure_vae",
                                         drop=("model", "seed")).items():
        if ds != "embedded":
            by_genre.setdefault(ds, {})[(attrs_, z)] = values
    if len(by_genre) < 2:
        return Finding(3, claim, INCONCLUSIVE, rule,
                       ["Needs MeasureVAE interpretability in at least two genres; have "
                        f"{', '.join(f'{g}: {len(v)} configuration(s)' for g, v in by_genre.items()) or 'none'}."], {})
    generator = stats.rng()
    genres = ordered(by_genre, DATASET_ORDER)
    runs = {g: (len(by_genre[g]), (min(map(len, by_genre[g].values())), max(map(len, by_genre[g].values()))))
            for g in genres}
    fractions = cells(records, "interpretability_intended_fraction", "measure_vae", drop=("model", "seed"))
    evidence, per, a_draws, a_est = [], {}, [], {}
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
    part_a, note_a = _min_part(a_est, a_draws, INTERPRETABLE_R2, runs, stats.GENRES_REQUIRED)
    evidence.insert(0, f"(a) lowest genre {worst}, interpretability - {INTERPRETABLE_R2}: {part_a.describe()} -> "
                       f"{part_a.verdict}{f' ({note_a})' if note_a else ''}.")
    numbers = {"per_dataset": per, "part_a": part_a.to_dict(), "part_b": None}
    tests = [(f"(a) lowest genre minus {INTERPRETABLE_R2}", numbers["part_a"])]
    if "pop" in by_genre:
        b_draws, b_est = [], {}
        for g in genres:
            common = sorted(set(by_genre["pop"]) & set(by_genre[g])) if g != "pop" else []
            if common:
                est, draws, _ = stats.paired_draws([by_genre["pop"][k] for k in common],
                                                   [by_genre[g][k] for k in common], generator=generator)
                b_est[g] = est
                b_draws.append(draws)
        if b_draws:
            rival = min(b_est, key=lambda g: b_est[g])
            part_b, note_b = _min_part(b_est, b_draws, 0.0, {g: runs[g] for g in ["pop", *b_est]},
                                        stats.GENRES_REQUIRED - 1)
            numbers["part_b"] = {**part_b.to_dict(), "closest_genre": rival}
            tests.append(("(b) pop minus the closest other genre", numbers["part_b"]))
            evidence.insert(1, f"(b) pop minus the closest other genre ({rival}): {part_b.describe()} (pop "
                               f"ahead of {part_b.genres_agreeing} of {len(b_est)} other genres) -> "
                               f"{part_b.verdict}{f' ({note_b})' if note_b else ''}.")
    if numbers["part_b"] is None:
        evidence.insert(1, "(b) needs pop and another genre with a matched configuration.")
        verdict = CONTRADICTED if part_a.verdict == CONTRADICTED else INCONCLUSIVE
    else:
        parts = (part_a.verdict, numbers["part_b"]["verdict"])
        verdict = CONTRADICTED if CONTRADICTED in parts else SUPPORTED if parts == (SUPPORTED, SUPPORTED) \
            else INCONCLUSIVE
    return Finding(3, claim, verdict, rule, evidence, numbers, tests)


def _scaled(x: np.ndarray) -> np.ndarray:
    """Min-max scaling along the last axis; 0.5 where every value is equal."""
    lo, hi = x.min(axis=-1, keepdims=True), x.max(axis=-1, keepdims=True)
    span = hi - lo
    return np.where(span < 1e-12, 0.5, (x - lo) / np.where(span < 1e-12, 1.0, span))


def trade_off_scores(acc: np.ndarray, itp: np.ndarray) -> np.ndarray:
    """Trade-off score per latent size of one dataset: mean of min-max scaled accuracy and
    interpretability. acc, itp: [..., Z] float -> [..., Z]."""
    return (_scaled(acc) + _scaled(itp)) / 2


def _trade_off_gap(score: np.ndarray, sizes: Sequence[int]) -> np.ndarray:
    """score [..., Z] -> [...]: the better of 32 and 64's score minus the best other size's."""
    claimed = [j for j, z in enumerate(sizes) if z in TRADE_OFF_SIZES]
    others = [j for j, z in enumerate(sizes) if z not in TRADE_OFF_SIZES]
    return score[..., claimed].max(axis=-1) - score[..., others].max(axis=-1)


def finding_trade_off(records: Sequence[dict], draws: int = stats.BOOTSTRAP_DRAWS) -> Finding:
    claim = "With 4 regularised attributes, 32 or 64 latent dimensions are MeasureVAE's best trade-off."
    rule = ("MeasureVAE with four attributes, at the latent sizes run on every genre; per genre, test token "
            "accuracy and interpretability (seed means) are min-max scaled over those sizes; a size's score is the "
            "mean of the two, averaged over genres. Effect = the better of 32 and 64's score minus the best other "
            "size's; its 95% interval and each size's probability of scoring best come from hierarchical bootstrap "
            "draws (genres, then the seeds of every (genre, latent size) cell). " + _GENRE_RULE + " Also always "
            "inconclusive unless every cell has two or more seeds: a cell with one seed has no spread to resample, "
            "and the draws would understate the uncertainty.")
    runs: dict = {}  # (dataset, latent) -> [(acc, interp)] of runs that have both
    for r in ok(records):
        g = r["grid"]
        if g["model"] == "measure_vae" and len(g["attributes"]) == 4:
            a, i = metric_value(r, "token_accuracy"), metric_value(r, "interpretability_mean")
            if a is not None and i is not None and np.isfinite(a) and np.isfinite(i):
                runs.setdefault((g["dataset"], int(g["latent_dim"])), []).append((a, i))
    datasets = ordered({k[0] for k in runs}, DATASET_ORDER)
    sizes = sorted(set.intersection(*[{z for d, z in runs if d == ds} for ds in datasets])) if datasets else []
    if len(sizes) < 3 or not set(sizes) & set(TRADE_OFF_SIZES) or not set(sizes) - set(TRADE_OFF_SIZES):
        return Finding(4, claim, INCONCLUSIVE, rule,
                       ["Needs MeasureVAE four-attribute results at three or more latent sizes run on every genre, "
                        f"including 32 or 64 and another size; have {', '.join(map(str, sizes)) or 'none'}."],
                       {"latent_sizes": sizes})
    generator = stats.rng()
    slots = len(datasets)
    point, boots, per_dataset = [], [], {}
    for ds in datasets:
        a_tab, counts = stats.seed_table([[a for a, _ in runs[(ds, z)]] for z in sizes])
        i_tab, _ = stats.seed_table([[i for _, i in runs[(ds, z)]] for z in sizes])
        chosen = np.broadcast_to(np.arange(len(sizes)), (draws, slots, len(sizes)))
        # the same seed picks for accuracy and interpretability: both come from the same runs
        state = generator.bit_generator.state
        a_boot = stats.resampled_seed_means(a_tab, counts, chosen, generator)
        generator.bit_generator.state = state
        i_boot = stats.resampled_seed_means(i_tab, counts, chosen, generator)
        score = trade_off_scores(np.nanmean(a_tab, axis=1), np.nanmean(i_tab, axis=1))
        point.append(score)
        boots.append(trade_off_scores(a_boot, i_boot))  # [B, slots, Z]
        per_dataset[ds] = {z: float(score[j]) for j, z in enumerate(sizes)}
    score = np.mean(point, axis=0)
    boot = stats.hierarchical_draws(boots, generator)  # [B, Z]
    best_idx = np.argmax(boot, axis=1)
    probability = {z: float(np.mean(best_idx == j)) for j, z in enumerate(sizes)}
    gap_boot = _trade_off_gap(boot, sizes)
    ds_gaps = [float(_trade_off_gap(p, sizes)) for p in point]
    counts = [len(runs[(ds, z)]) for ds in datasets for z in sizes]
    effect = stats.genre_effect(ds_gaps, gap_boot, [len(sizes)] * len(datasets), (min(counts), max(counts)))
    effect.estimate = float(_trade_off_gap(score, sizes))  # the gap of the mean scores, as the rule says
    effect.genres_agreeing = stats.agreeing(ds_gaps, effect.estimate)
    effect.verdict = stats.genre_verdict(effect.ci, len(datasets), effect.genres_agreeing) if min(counts) >= 2 \
        else INCONCLUSIVE
    best = sizes[int(np.argmax(score))]
    evidence = [f"Effect (score of the better of 32 and 64 minus the best other size): {effect.describe(2)}.",
                f"Best trade-off with the seed means: latent size {best} (score {score[sizes.index(best)]:.2f}).",
                "Probability of being the best size over the bootstrap draws: "
                + ", ".join(f"{z}: {probability[z]:.2f}" for z in sizes) + ".",
                "Per genre, the better of 32 and 64 minus the best other size: "
                + ", ".join(f"{ds} {g:+.2f}" for ds, g in zip(datasets, ds_gaps, strict=True)) + "."]
    note = _genre_rule_note(effect, dict(zip(datasets, ds_gaps, strict=True)))
    if note:
        evidence.insert(1, note)
    if min(counts) < 2:
        single = sum(1 for c in counts if c < 2)
        evidence.append(f"{single} of {len(counts)} (dataset, latent size) cells have one seed, which the draws "
                        "cannot move, so the interval understates the uncertainty: the verdict stays inconclusive "
                        "until every cell has two or more seeds.")
    for j, z in enumerate(sizes):
        a = np.mean([np.mean([a for a, _ in runs[(ds, z)]]) for ds in datasets])
        i = np.mean([np.mean([i for _, i in runs[(ds, z)]]) for ds in datasets])
        n = [len(runs[(ds, z)]) for ds in datasets]
        evidence.append(f"latent {z}: score {score[j]:.2f} (token accuracy {a:.3f}, interpretability {i:.3f}; "
                        f"{len(datasets)} dataset(s), {min(n) if min(n) == max(n) else f'{min(n)}-{max(n)}'} seed(s) "
                        "per dataset)")
    numbers = {"effect": effect.to_dict(), "scores": {z: float(score[j]) for j, z in enumerate(sizes)},
               "best": best, "probability_best": probability, "per_dataset": per_dataset}
    return Finding(4, claim, effect.verdict, rule, evidence, numbers, [("trade-off gap", numbers["effect"])])


def family(assessed: Sequence[Finding]) -> list:
    """The report's family of tests: [(finding number, label, effect dict)] of every test with a p-value."""
    return [(f.number, label, e) for f in assessed for label, e in f.tests if e.get("p_value") is not None]


def apply_holm(assessed: Sequence[Finding]) -> int:
    """Holm-adjusts the p-values of every test of ``assessed`` as one family: sets ``p_holm`` in the effect
    dicts of the findings' numbers and adds one evidence line per finding. Returns the family's size."""
    tests = family(assessed)
    for (_, _, e), p in zip(tests, stats.holm([e["p_value"] for _, _, e in tests]), strict=True):
        e["p_holm"] = p
    for f in assessed:
        mine = [(label, e) for number, label, e in tests if number == f.number]
        if mine:
            f.evidence.append(f"Holm-adjusted p in the report's family of {len(tests)} tests: "
                              + "; ".join(f"{label} {e['p_holm']:.2g}" for label, e in mine) + ".")
    return len(tests)


def assess(records: Sequence[dict], expected_pairs: Optional[int] = None) -> list:
    """The four findings, in the paper's order, with every p-value Holm-adjusted over all of them."""
    out = [finding_reconstruction(records, expected_pairs), finding_independence(records, expected_pairs),
           finding_interpretability(records), finding_trade_off(records)]
    apply_holm(out)
    return out
