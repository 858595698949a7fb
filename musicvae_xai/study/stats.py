"""Statistics of the study report: hierarchical bootstrap intervals, Wilcoxon tests and verdicts.

A study result is one number per *cell* (a grid configuration without its seed) and seed. Every
effect of the report is a mean over configurations of a per-configuration quantity averaged over the
seeds that configuration has (a partial grid may have one, two or three). Its uncertainty comes from
a two-level bootstrap: each of ``BOOTSTRAP_DRAWS`` draws resamples the configurations with replacement
and, inside each chosen configuration, its seeds with replacement (numpy ``default_rng`` seeded with
``BOOTSTRAP_SEED``, so the report is reproducible). The 95% interval is the 2.5th..97.5th percentile of
the draws. A paired Wilcoxon signed-rank test (``scipy.stats.wilcoxon``, two-sided) across
configurations of the seed-averaged differences gives a p-value beside it.

The verdict is decided by the interval alone (``verdict``): entirely on the finding's side of zero
-> supported; entirely on the other side -> contradicted; else inconclusive.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import numpy as np

BOOTSTRAP_DRAWS = 10_000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95
SUPPORTED, CONTRADICTED, INCONCLUSIVE = "supported", "contradicted", "inconclusive"


@dataclasses.dataclass
class Effect:
    """An effect oriented so that positive means "as the finding claims".

    estimate: mean over configurations of the seed-averaged quantity; ci: (low, high) percentile
    interval of the bootstrap draws; p_value: two-sided Wilcoxon signed-rank p across configurations
    (None when it cannot be computed: fewer than two configurations or every difference zero);
    configurations: how many configurations enter; seeds: (fewest, most) seeds of a configuration.
    """

    estimate: float
    ci: tuple
    p_value: Optional[float]
    configurations: int
    seeds: tuple
    verdict: str

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def describe(self, digits: int = 3) -> str:
        """``+0.012 [95% CI +0.004, +0.020], Wilcoxon p = 0.003, 56 configurations, 3 seeds each``."""
        p = "n/a" if self.p_value is None else f"{self.p_value:.3g}"
        lo, hi = self.seeds
        seeds = f"{lo} seed{'s' if lo != 1 else ''} each" if lo == hi else f"{lo}-{hi} seeds each"
        return (f"{self.estimate:+.{digits}f} [{int(CONFIDENCE * 100)}% CI {self.ci[0]:+.{digits}f}, "
                f"{self.ci[1]:+.{digits}f}], Wilcoxon p = {p}, {self.configurations} configuration(s), {seeds}")


def verdict(ci: Sequence[float]) -> str:
    """supported when the interval lies above zero, contradicted below, inconclusive otherwise."""
    lo, hi = float(ci[0]), float(ci[1])
    if lo > 0:
        return SUPPORTED
    if hi < 0:
        return CONTRADICTED
    return INCONCLUSIVE


def rng(seed: int = BOOTSTRAP_SEED) -> np.random.Generator:
    return np.random.default_rng(seed)


def interval(draws: np.ndarray, confidence: float = CONFIDENCE) -> tuple:
    """(low, high) percentile interval of 1-D ``draws``."""
    tail = (1.0 - confidence) / 2 * 100
    lo, hi = np.percentile(np.asarray(draws, dtype=np.float64), [tail, 100 - tail])
    return float(lo), float(hi)


def wilcoxon_p(differences: Sequence[float]) -> Optional[float]:
    """Two-sided p-value of the Wilcoxon signed-rank test that ``differences`` are centred on zero
    (``scipy.stats.wilcoxon``, zeros dropped); None for fewer than two values or all zeros."""
    from scipy import stats

    d = np.asarray([x for x in differences if np.isfinite(x)], dtype=np.float64)
    if len(d) < 2 or not np.any(d != 0):
        return None
    return float(stats.wilcoxon(d).pvalue)


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
    ta, ca = seed_table(a)
    tb, cb = seed_table(b)
    chosen = generator.integers(0, len(a), size=(draws, len(a)))
    d = resampled_seed_means(ta, ca, chosen, generator) - resampled_seed_means(tb, cb, chosen, generator)
    return float(diffs.mean()), d.mean(axis=1), diffs


def paired_effect(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]], draws: int = BOOTSTRAP_DRAWS,
                  seed: int = BOOTSTRAP_SEED) -> Effect:
    """The Effect of ``a - b`` over paired configurations (positive: a is higher)."""
    estimate, boot, diffs = paired_draws(a, b, draws, rng(seed))
    ci = interval(boot)
    counts = [len(x) for x in a] + [len(y) for y in b]
    return Effect(estimate, ci, wilcoxon_p(diffs), len(diffs), (min(counts), max(counts)), verdict(ci))
