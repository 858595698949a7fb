"""Statistics of the study report: genre-level effects, hierarchical bootstrap, Holm correction, verdicts.

The design. A study result is one number per genre (dataset), configuration (the other grid axes:
latent size, attribute set; the model is the compared condition) and seed. The configurations of a
genre share its training data and test measures, so they are not independent draws: the *genre* is the
unit of generalisation, and a study of the paper's grid has four of them.

* **Per genre**: the effect is the mean over the genre's configurations of a per-configuration quantity
  averaged over the seeds that configuration has (a partial grid may have one, two or three). Its 95%
  interval comes from a two-level bootstrap (configurations with replacement, then the seeds inside each
  chosen configuration), and a paired Wilcoxon signed-rank test across the genre's configurations of the
  seed-averaged differences gives its p-value (``scipy.stats.wilcoxon``, two-sided).
* **Across genres**: the effect is the mean of the genre effects (every genre weighs the same). Its 95%
  interval comes from a three-level *hierarchical bootstrap*: each of ``BOOTSTRAP_DRAWS`` draws resamples
  the genres with replacement, then the configurations inside each chosen genre, then the seeds inside
  each chosen configuration (a genre drawn twice gets two independent inner resamples). Its p-value is the
  two-sided bootstrap p of the same draws, ``(2 min(#draws <= 0, #draws >= 0) + 1) / (B + 1)`` capped at 1,
  so it is below 0.05 when (up to one draw) the 95% interval excludes zero. Beside it: how many genres
  agree in sign with the overall effect, and the two-sided sign test over genres
  (``scipy.stats.binomtest``), whose smallest value with four genres is 2 / 2^4 = 0.125 -- four genres
  cannot make a sign test significant at 0.05, which is why the verdict asks for all of them to agree
  rather than for a genre-level p-value.
* **Verdict** (``genre_verdict``): *supported* or *contradicted* needs the across-genre interval entirely
  on one side of zero AND every one of at least ``GENRES_REQUIRED`` genres agreeing in sign with it;
  anything else (fewer genres, one genre disagreeing, an interval across zero) is *inconclusive*. The
  p-values do not decide the verdict.
* **Multiplicity**: ``holm`` gives Holm-Bonferroni adjusted p-values for a family of tests (the report's
  family: every p-value it prints; ``musicvae_xai.study.findings.assess``).

Draws use numpy ``default_rng`` seeded with ``BOOTSTRAP_SEED``, so the report is reproducible.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Optional, Sequence

import numpy as np

BOOTSTRAP_DRAWS = 10_000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95
#: Genres an across-genre verdict needs (the paper's grid has four: Irish, Turkish, classical, pop).
GENRES_REQUIRED = 4
SUPPORTED, CONTRADICTED, INCONCLUSIVE = "supported", "contradicted", "inconclusive"
HIERARCHICAL, WILCOXON, BOOTSTRAP = "hierarchical bootstrap", "Wilcoxon", "bootstrap"


@dataclasses.dataclass
class Effect:
    """An effect oriented so that positive means "as the finding claims".

    estimate: the effect (a genre's: mean over its configurations of the seed-averaged quantity;
    across genres: mean of the genre effects); ci: (low, high) percentile interval of the bootstrap
    draws; p_value: two-sided p of ``p_method`` (None when it cannot be computed); configurations: how
    many configurations enter in all; seeds: (fewest, most) seeds of a configuration; verdict.
    Across genres also: genres (how many), genres_agreeing (how many have the sign of ``estimate``),
    configurations_per_genre (fewest, most), sign_test_p (two-sided sign test over genres). p_holm: the
    Holm-adjusted p in the report's family of tests, once ``holm`` has been applied.
    """

    estimate: float
    ci: tuple
    p_value: Optional[float]
    configurations: int
    seeds: tuple
    verdict: str
    p_method: str = WILCOXON
    genres: Optional[int] = None
    genres_agreeing: Optional[int] = None
    configurations_per_genre: Optional[tuple] = None
    sign_test_p: Optional[float] = None
    p_holm: Optional[float] = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def describe(self, digits: int = 3) -> str:
        """``-0.030 [95% CI -0.046, -0.016]; 4 of 4 genres agree in sign (sign test p = 0.125); hierarchical
        bootstrap p = 0.0002; n = 4 genres x 14 configurations x 3 seeds``."""
        return describe(self.to_dict(), digits)


def _range(lo_hi: Sequence[int], unit: str) -> str:
    lo, hi = int(lo_hi[0]), int(lo_hi[1])
    return f"{lo if lo == hi else f'{lo}-{hi}'} {unit}{'s' if hi != 1 else ''}"


def effective_n(effect: Mapping) -> str:
    """``4 genres x 14 configurations x 3 seeds`` (``14 configurations x 3 seeds`` within one genre)."""
    inner = f"{_range(effect['seeds'], 'seed')}"
    if effect.get("genres") is None:
        return f"{effect['configurations']} configuration{'s' if effect['configurations'] != 1 else ''} x {inner}"
    per = effect.get("configurations_per_genre") or (effect["configurations"], effect["configurations"])
    return f"{effect['genres']} genre{'s' if effect['genres'] != 1 else ''} x {_range(per, 'configuration')} x {inner}"


def _p(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.2g}"


def describe(effect: Mapping, digits: int = 3) -> str:
    """One line of an effect given as ``Effect.to_dict()``: estimate, interval, genre agreement, p, n."""
    lo, hi = effect["ci"]
    parts = [f"{effect['estimate']:+.{digits}f} [{int(CONFIDENCE * 100)}% CI {lo:+.{digits}f}, {hi:+.{digits}f}]"]
    if effect.get("genres") is not None:
        parts.append(f"{effect['genres_agreeing']} of {effect['genres']} genres agree in sign (sign test p = "
                     f"{_p(effect.get('sign_test_p'))})")
    p = f"{effect.get('p_method', WILCOXON)} p = {_p(effect['p_value'])}"
    if effect.get("p_holm") is not None:
        p += f" (Holm {_p(effect['p_holm'])})"
    return "; ".join(parts + [p, f"n = {effective_n(effect)}"])


def verdict(ci: Sequence[float]) -> str:
    """supported when the interval lies above zero, contradicted below, inconclusive otherwise."""
    lo, hi = float(ci[0]), float(ci[1])
    if lo > 0:
        return SUPPORTED
    if hi < 0:
        return CONTRADICTED
    return INCONCLUSIVE


def genre_verdict(ci: Sequence[float], genres: int, agreeing: int, required: int = GENRES_REQUIRED) -> str:
    """The interval's verdict when at least ``required`` genres enter and all of them agree in sign with
    the effect; inconclusive otherwise."""
    if genres < required or agreeing < genres:
        return INCONCLUSIVE
    return verdict(ci)


def rng(seed: int = BOOTSTRAP_SEED) -> np.random.Generator:
    return np.random.default_rng(seed)


def interval(draws: np.ndarray, confidence: float = CONFIDENCE) -> tuple:
    """(low, high) percentile interval of 1-D ``draws``."""
    tail = (1.0 - confidence) / 2 * 100
    lo, hi = np.percentile(np.asarray(draws, dtype=np.float64), [tail, 100 - tail])
    return float(lo), float(hi)


def bootstrap_p(draws: np.ndarray) -> float:
    """Two-sided bootstrap p that the effect whose draws these are is zero:
    ``(2 min(#draws <= 0, #draws >= 0) + 1) / (B + 1)``, capped at 1 (never exactly 0: the smallest is
    about 1 / B)."""
    d = np.asarray(draws, dtype=np.float64)
    tail = min(int(np.sum(d <= 0)), int(np.sum(d >= 0)))
    return float(min(1.0, (2 * tail + 1) / (len(d) + 1)))


def wilcoxon_p(differences: Sequence[float]) -> Optional[float]:
    """Two-sided p-value of the Wilcoxon signed-rank test that ``differences`` are centred on zero
    (``scipy.stats.wilcoxon``, zeros dropped); None for fewer than two values or all zeros."""
    from scipy import stats

    d = np.asarray([x for x in differences if np.isfinite(x)], dtype=np.float64)
    if len(d) < 2 or not np.any(d != 0):
        return None
    return float(stats.wilcoxon(d).pvalue)


def sign_test_p(values: Sequence[float]) -> Optional[float]:
    """Two-sided sign test that positive and negative ``values`` are equally likely (zeros dropped;
    ``scipy.stats.binomtest``); None without a non-zero value. With n values all of one sign it is
    2 / 2^n: 0.125 for four genres."""
    from scipy import stats

    d = np.asarray([x for x in values if np.isfinite(x) and x != 0], dtype=np.float64)
    if not len(d):
        return None
    return float(stats.binomtest(int(np.sum(d > 0)), len(d), 0.5).pvalue)


def agreeing(values: Sequence[float], sign_of: float) -> int:
    """How many ``values`` have the (non-zero) sign of ``sign_of``."""
    s = np.sign(sign_of)
    return int(sum(1 for v in values if s != 0 and np.sign(v) == s))


def holm(p_values: Sequence[Optional[float]]) -> list:
    """Holm-Bonferroni adjusted p-values, in the input order; None entries stay None and are not counted.

    With m p-values sorted ascending p_(1) <= ... <= p_(m): adjusted p_(i) = max over j <= i of
    min(1, (m - j + 1) p_(j)).
    """
    idx = [i for i, p in enumerate(p_values) if p is not None]
    out: list = [None] * len(p_values)
    m, running = len(idx), 0.0
    for rank, i in enumerate(sorted(idx, key=lambda i: p_values[i])):
        running = max(running, min(1.0, (m - rank) * float(p_values[i])))
        out[i] = running
    return out


def seed_table(groups: Sequence[Sequence[float]]) -> tuple:
    """(values [G, S] float64 padded with NaN, counts [G] int) of G cells of 1..S seed values each."""
    counts = np.array([len(g) for g in groups], dtype=np.int64)
    if len(groups) == 0 or counts.min() < 1:
        raise ValueError("every cell needs at least one value")
    table = np.full((len(groups), int(counts.max())), np.nan)
    for i, g in enumerate(groups):
        table[i, :len(g)] = np.asarray(g, dtype=np.float64)
    return table, counts


def resampled_seed_means(table: np.ndarray, counts: np.ndarray, chosen: np.ndarray,
                         generator: np.random.Generator) -> np.ndarray:
    """Mean of a with-replacement resample of the seeds of each chosen cell.

    table [G, S], counts [G] (``seed_table``); chosen: int array of cell indices, any shape [...];
    returns float64 [...]: for each entry, ``counts[cell]`` seeds drawn with replacement and averaged.
    """
    k = counts[chosen]
    width = table.shape[1]
    picks = np.floor(generator.random(chosen.shape + (width,)) * k[..., None]).astype(np.int64)
    values = table[chosen[..., None], picks]  # picks < k: never a NaN pad
    used = np.arange(width) < k[..., None]
    return np.where(used, values, 0.0).sum(axis=-1) / k


def mean_draws(groups: Sequence[Sequence[float]], draws: int = BOOTSTRAP_DRAWS,
               generator: Optional[np.random.Generator] = None) -> tuple:
    """(estimate, draws [B]) of the mean over cells of each cell's seed mean; every draw resamples
    the cells, then the seeds inside each chosen cell."""
    generator = generator or rng()
    table, counts = seed_table(groups)
    estimate = float(np.mean([np.mean(g) for g in groups]))
    chosen = generator.integers(0, len(groups), size=(draws, len(groups)))
    return estimate, resampled_seed_means(table, counts, chosen, generator).mean(axis=1)


def _paired_resample(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]], shape: tuple,
                     generator: np.random.Generator) -> np.ndarray:
    """Draws of shape ``shape`` of mean_c (mean_s a[c] - mean_s b[c]): each resamples the configurations
    once for both conditions, then the seeds of each condition independently."""
    ta, ca = seed_table(a)
    tb, cb = seed_table(b)
    chosen = generator.integers(0, len(a), size=tuple(shape) + (len(a),))
    d = resampled_seed_means(ta, ca, chosen, generator) - resampled_seed_means(tb, cb, chosen, generator)
    return d.mean(axis=-1)


def paired_draws(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]], draws: int = BOOTSTRAP_DRAWS,
                 generator: Optional[np.random.Generator] = None) -> tuple:
    """(estimate, draws [B], per-configuration differences [C]) of mean_c (mean_s a[c] - mean_s b[c]).

    a, b: the seed values of the same C configurations under two conditions (seeds need not match in
    number). Each draw resamples the configurations once for both conditions, then the seeds of each
    condition independently.
    """
    if len(a) != len(b) or not len(a):
        raise ValueError("paired_draws needs the same, non-zero number of configurations on both sides")
    generator = generator or rng()
    diffs = np.array([np.mean(x) - np.mean(y) for x, y in zip(a, b, strict=False)], dtype=np.float64)
    return float(diffs.mean()), _paired_resample(a, b, (draws,), generator), diffs


def _seed_range(*sides: Sequence[Sequence[float]]) -> tuple:
    counts = [len(x) for side in sides for x in side]
    return min(counts), max(counts)


def paired_effect(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]], draws: int = BOOTSTRAP_DRAWS,
                  seed: int = BOOTSTRAP_SEED) -> Effect:
    """The Effect of ``a - b`` over paired configurations of one genre (positive: a is higher), with a
    Wilcoxon p across the configurations."""
    estimate, boot, diffs = paired_draws(a, b, draws, rng(seed))
    ci = interval(boot)
    return Effect(estimate, ci, wilcoxon_p(diffs), len(diffs), _seed_range(a, b), verdict(ci))


def hierarchical_draws(per_genre: Sequence[np.ndarray], generator: np.random.Generator) -> np.ndarray:
    """Across-genre draws [B] from within-genre draws.

    per_genre: G arrays [B, G], genre g's independent inner resamples (configurations, then seeds) of
    its effect, one per draw and genre slot. Each draw picks G genres with replacement and averages the
    inner resample of the picked genre in each slot.
    """
    stacked = np.stack([np.asarray(p, dtype=np.float64) for p in per_genre])  # [G, B, G]
    n_genres, n_draws = stacked.shape[0], stacked.shape[1]
    chosen = generator.integers(0, n_genres, size=(n_draws, n_genres))
    return stacked[chosen, np.arange(n_draws)[:, None], np.arange(n_genres)[None, :]].mean(axis=1)


def genre_effect(estimates: Sequence[float], boot: np.ndarray, configurations: Sequence[int], seeds: tuple,
                 required: int = GENRES_REQUIRED) -> Effect:
    """The across-genre Effect: mean of the genre ``estimates`` with the hierarchical ``boot`` draws [B],
    the genres agreeing in sign, the sign test over genres and ``genre_verdict``."""
    estimate = float(np.mean(estimates))
    ci = interval(boot)
    agree = agreeing(estimates, estimate)
    return Effect(estimate, ci, bootstrap_p(boot), int(sum(configurations)), seeds,
                  genre_verdict(ci, len(estimates), agree, required), HIERARCHICAL, len(estimates), agree,
                  (min(configurations), max(configurations)), sign_test_p(estimates))


def paired_genre_effects(by_genre: Mapping[str, tuple], draws: int = BOOTSTRAP_DRAWS,
                         seed: int = BOOTSTRAP_SEED) -> tuple:
    """(across-genre Effect, {genre: Effect}) of ``a - b``.

    by_genre: {genre: (a, b)}, each side a list over the genre's configurations of its seed values (the
    same configurations on both sides, at least one). Each genre's Effect has its own two-level interval
    (the first slot of its inner resamples) and a Wilcoxon p across its configurations; the across-genre
    Effect is the mean of the genre effects with a hierarchical-bootstrap interval and p (genres, then
    configurations, then seeds).
    """
    if not by_genre:
        raise ValueError("paired_genre_effects needs at least one genre")
    generator = rng(seed)
    per, inner = {}, []
    for g, (a, b) in by_genre.items():
        if len(a) != len(b) or not len(a):
            raise ValueError(f"genre {g}: needs the same, non-zero number of configurations on both sides")
        boot = _paired_resample(a, b, (draws, len(by_genre)), generator)  # [B, G]: one slot per genre pick
        diffs = np.array([np.mean(x) - np.mean(y) for x, y in zip(a, b, strict=True)], dtype=np.float64)
        ci = interval(boot[:, 0])
        per[g] = Effect(float(diffs.mean()), ci, wilcoxon_p(diffs), len(diffs), _seed_range(a, b), verdict(ci))
        inner.append(boot)
    overall = genre_effect([e.estimate for e in per.values()], hierarchical_draws(inner, generator),
                           [e.configurations for e in per.values()],
                           _seed_range(*[side for pair in by_genre.values() for side in pair]))
    return overall, per
