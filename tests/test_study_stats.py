"""Genre-level statistics of the study report: hierarchical bootstrap, genre agreement, Holm correction, and
the findings' verdicts on synthetic results (full grids and partial ones such as one curve point)."""

import numpy as np
import pytest

from musicvae_xai.study import findings, stats

GENRES = ("irish", "turkish", "classical", "pop")
ATTRS = ["rhythmic_complexity", "note_range", "note_density", "average_interval_jump"]


def _record(model, dataset, latent, attrs=4, seed=0, **metrics):
    return {"status": "ok", "name": f"{model}-z{latent:03d}-{dataset}-a{attrs}-s{seed}",
            "grid": {"model": model, "dataset": dataset, "latent_dim": latent, "attributes": ATTRS[:attrs],
                     "attribute_count": attrs, "seed": seed},
            "metrics": metrics}


def _paired(effects, sizes=(8, 16, 32, 64), seeds=(0, 1, 2), noise=0.01, metric="token_accuracy", seed=0):
    """Both models on every genre of ``effects`` ({genre: MeasureVAE - AdversarialVAE}), with configuration- and
    seed-level noise."""
    gen = np.random.default_rng(seed)
    out = []
    for ds, effect in effects.items():
        for z in sizes:
            base = 0.8 + gen.normal(0, noise)
            for s in seeds:
                out.append(_record("measure_vae", ds, z, seed=s, **{metric: base + effect + gen.normal(0, noise)}))
                out.append(_record("adversarial_vae", ds, z, seed=s, **{metric: base + gen.normal(0, noise)}))
    return out


def test_bootstrap_interval_and_verdict_known_answers():
    assert stats.verdict((0.01, 0.03)) == stats.SUPPORTED
    assert stats.verdict((-0.03, -0.01)) == stats.CONTRADICTED
    assert stats.verdict((-0.01, 0.02)) == stats.INCONCLUSIVE
    for effect, verdict in ((0.1, stats.SUPPORTED), (-0.1, stats.CONTRADICTED)):
        f = findings.finding_reconstruction(_paired({g: effect for g in GENRES}, noise=0.02, seed=1))
        e = f.numbers["effect"]
        assert f.verdict == verdict and e["configurations"] == 16 and tuple(e["seeds"]) == (3, 3)
        assert abs(e["estimate"] - effect) < 0.03 and e["ci"][0] < e["estimate"] < e["ci"][1]
        assert (e["ci"][0] > 0) if effect > 0 else (e["ci"][1] < 0)
    # zero effect: an interval that straddles zero, whatever the (random) wins
    f = findings.finding_reconstruction(_paired({g: 0.0 for g in GENRES}, noise=0.02, seed=3))
    assert f.verdict == stats.INCONCLUSIVE and f.numbers["effect"]["ci"][0] < 0 < f.numbers["effect"]["ci"][1]
    # leakage: positive effect = AdversarialVAE leaks less
    f2 = findings.finding_independence(_paired({g: 0.2 for g in GENRES}, noise=0.02, metric="leakage", seed=1))
    assert f2.verdict == stats.SUPPORTED
    # the interval is reproducible (seeded) and a mean of one value per configuration is exact
    groups = [[0.1], [0.2], [0.3], [0.4]]
    est, draws = stats.mean_draws(groups, draws=2000)
    assert est == pytest.approx(0.25) and len(draws) == 2000 and draws.min() >= 0.1 and draws.max() <= 0.4
    assert np.array_equal(stats.mean_draws(groups, draws=2000)[1], draws)
    # a cell's seeds are resampled with replacement: one cell [0, 1] gives means in {0, .5, 1}, ~1/4, 1/2, 1/4
    _, d = stats.mean_draws([[0.0, 1.0]], draws=20000)
    assert set(np.unique(d)) == {0.0, 0.5, 1.0} and abs(np.mean(d == 0.5) - 0.5) < 0.02
    assert findings.finding_reconstruction([]).verdict == stats.INCONCLUSIVE


def test_holm_matches_a_hand_computation():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> monotone: 0.06
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.2, None, 0.01]) == [pytest.approx(0.2), None, pytest.approx(0.02)]  # m = 2
    assert stats.holm([0.6, 0.7]) == [1.0, 1.0]  # capped at 1
    assert stats.holm([]) == []


def test_sign_test_and_bootstrap_p_known_answers():
    assert stats.sign_test_p([0.1, 0.2, 0.3, 0.4]) == pytest.approx(0.125)  # the smallest four genres can give
    assert stats.sign_test_p([0.1, -0.2, 0.3, 0.4]) == pytest.approx(0.625)
    assert stats.sign_test_p([0.0]) is None
    assert stats.bootstrap_p(np.ones(999)) == pytest.approx(1 / 1000)
    assert stats.bootstrap_p(np.r_[-np.ones(500), np.ones(500)]) == 1.0
    assert stats.bootstrap_p(np.r_[-np.ones(20), np.ones(980)]) == pytest.approx(41 / 1001)
    assert stats.agreeing([0.1, -0.2, 0.3, 0.0], -1.0) == 1
    assert stats.genre_verdict((0.01, 0.02), 4, 4) == stats.SUPPORTED
    assert stats.genre_verdict((0.01, 0.02), 4, 3) == stats.INCONCLUSIVE
    assert stats.genre_verdict((-0.02, -0.01), 3, 3) == stats.INCONCLUSIVE


def test_hierarchical_draws_resample_genres_with_replacement():
    values = [1.0, 2.0, 3.0, 4.0]
    per = [np.full((20_000, 4), v) for v in values]  # no inner noise: each genre always gives its own value
    draws = stats.hierarchical_draws(per, stats.rng(0))
    assert draws.min() >= 1.0 and draws.max() <= 4.0 and np.mean(draws) == pytest.approx(2.5, abs=0.02)
    # a draw of four picks of genre 1 happens with probability (1/4)^4
    assert np.mean(draws == 1.0) == pytest.approx(0.25 ** 4, abs=0.002)
    # a genre picked twice gets two independent inner resamples (slot j of its draws)
    slots = [np.tile(np.arange(4.0), (10, 1)) for _ in values]
    assert np.allclose(stats.hierarchical_draws(slots, stats.rng(0)), 1.5)


def test_all_four_genres_agreeing_with_the_interval_off_zero_is_supported():
    f = findings.finding_reconstruction(_paired({g: 0.05 for g in GENRES}))
    e = f.numbers["effect"]
    assert f.verdict == stats.SUPPORTED and e["ci"][0] > 0 and e["genres"] == 4 and e["genres_agreeing"] == 4
    assert e["p_method"] == stats.HIERARCHICAL and e["p_value"] < 0.01 and e["sign_test_p"] == pytest.approx(0.125)
    assert e["configurations"] == 16 and e["configurations_per_genre"] == (4, 4) and e["seeds"] == (3, 3)
    assert "n = 4 genres x 4 configurations x 3 seeds" in f.evidence[0]
    assert set(f.numbers["per_dataset"]) == set(GENRES)
    assert all(p["p_method"] == stats.WILCOXON for p in f.numbers["per_dataset"].values())
    assert findings.finding_reconstruction(_paired({g: -0.05 for g in GENRES})).verdict == stats.CONTRADICTED


def test_one_genre_disagreeing_is_inconclusive_even_with_the_interval_off_zero():
    f = findings.finding_independence(_paired({"irish": 0.2, "turkish": 0.2, "classical": -0.02, "pop": 0.2},
                                              metric="leakage"))
    e = f.numbers["effect"]
    assert e["ci"][0] > 0 and e["genres_agreeing"] == 3  # the interval alone would say supported
    assert f.verdict == stats.INCONCLUSIVE
    assert "classical disagrees in sign" in " ".join(f.evidence)


def test_too_few_genres_or_no_pairs_is_inconclusive():
    f = findings.finding_reconstruction(_paired({g: 0.05 for g in GENRES[:3]}))
    assert f.verdict == stats.INCONCLUSIVE and f.numbers["effect"]["ci"][0] > 0
    assert "needs all 4 genres" in " ".join(f.evidence)
    assert findings.finding_reconstruction([]).verdict == stats.INCONCLUSIVE
    noisy = findings.finding_reconstruction(_paired({g: 0.0 for g in GENRES}, noise=0.02, seed=3))
    assert noisy.verdict == stats.INCONCLUSIVE


def test_assess_holm_corrects_every_printed_p_value_as_one_family():
    records = _paired({g: 0.05 for g in GENRES}) + _paired({g: 0.01 for g in GENRES}, metric="note_accuracy")
    assessed = findings.assess(records)
    tests = findings.family(assessed)
    # finding 1: across genres, its note-accuracy context, four genres (finding 2: no leakage in these records)
    assert [label for _, label, _ in tests][:2] == ["test token accuracy, across genres",
                                                     "note accuracy, across genres (no verdict)"]
    assert len(tests) == 6
    raw = [e["p_value"] for _, _, e in tests]
    assert [e["p_holm"] for _, _, e in tests] == pytest.approx(stats.holm(raw))
    assert assessed[0].numbers["effect"]["p_holm"] == tests[0][2]["p_holm"]
    assert "family of 6 tests" in assessed[0].evidence[-1]


def test_assess_on_a_curve_point_partial_grid():
    """One curve point: latent 32, four attributes, 1-3 seeds, 1-4 genres. Never crashes; says what is missing."""
    def point(genres, seeds, effect=0.05, interp=0.8):
        gen = np.random.default_rng(1)
        out = []
        for ds in genres:
            for s in seeds:
                m = {"token_accuracy": 0.8 + effect + gen.normal(0, 0.005), "leakage": 0.5,
                     "interpretability_mean": interp + (0.1 if ds == "pop" else 0) + gen.normal(0, 0.005)}
                out.append(_record("measure_vae", ds, 32, seed=s, **m))
                out.append(_record("adversarial_vae", ds, 32, seed=s, token_accuracy=0.8 + gen.normal(0, 0.005),
                                   leakage=0.6))
        return out

    full = findings.assess(point(GENRES, (0, 1, 2)))
    assert [f.verdict for f in full] == [stats.SUPPORTED, stats.CONTRADICTED, stats.SUPPORTED, stats.INCONCLUSIVE]
    assert full[0].numbers["effect"]["configurations_per_genre"] == (1, 1)
    assert "three or more latent sizes" in full[3].evidence[0]
    for genres in (GENRES[:1], GENRES[:2], GENRES[:3]):
        for seeds in ((0,), (0, 1), (0, 1, 2)):
            out = findings.assess(point(genres, seeds))
            assert [f.number for f in out] == [1, 2, 3, 4]
            assert all(f.verdict == stats.INCONCLUSIVE for f in out), (genres, seeds)
    one_seed = findings.assess(point(GENRES, (0,)))
    assert one_seed[2].verdict == stats.INCONCLUSIVE  # a single run per genre has no spread to resample
    assert "single run" in " ".join(one_seed[2].evidence)
    assert "needs all 4 genres" in " ".join(findings.assess(point(GENRES[:2], (0, 1)))[0].evidence)


def _interp(levels, sizes=(8, 16, 32), seeds=(0, 1)):
    gen = np.random.default_rng(0)
    return [_record("measure_vae", ds, z, attrs=2, seed=s, interpretability_mean=v + gen.normal(0, 0.005),
                    interpretability_intended_fraction=1.0)
            for ds, v in levels.items() for z in sizes for s in seeds]


def test_interpretability_finding_needs_every_genre():
    levels = {"irish": 0.7, "turkish": 0.6, "classical": 0.55, "pop": 0.9}
    f3 = findings.finding_interpretability(_interp(levels))
    assert f3.verdict == stats.SUPPORTED and f3.numbers["part_b"]["closest_genre"] == "irish"
    assert f3.numbers["part_a"]["genres_agreeing"] == 4 and f3.numbers["part_b"]["genres_agreeing"] == 3
    assert findings.finding_interpretability(_interp({**levels, "pop": 0.65})).verdict == stats.CONTRADICTED
    assert findings.finding_interpretability(_interp({**levels, "classical": 0.3})).verdict == stats.CONTRADICTED
    three = findings.finding_interpretability(_interp({g: levels[g] for g in ("irish", "turkish", "pop")}))
    assert three.verdict == stats.INCONCLUSIVE and "needs all 4 genres" in " ".join(three.evidence)
    assert findings.finding_interpretability(_interp({"pop": 0.9})).verdict == stats.INCONCLUSIVE


def test_trade_off_finding_resamples_genres_and_needs_them_to_agree():
    gen = np.random.default_rng(0)
    curve = {4: (0.70, 0.9), 16: (0.80, 0.85), 32: (0.85, 0.8), 64: (0.86, 0.6), 256: (0.87, 0.2)}
    rec = [_record("measure_vae", ds, z, seed=s, token_accuracy=a + gen.normal(0, 0.002),
                   interpretability_mean=i + gen.normal(0, 0.002))
           for ds in GENRES for z, (a, i) in curve.items() for s in (0, 1, 2)]
    f4 = findings.finding_trade_off(rec, draws=2000)
    assert f4.verdict == stats.SUPPORTED and f4.numbers["best"] == 32
    assert f4.numbers["effect"]["genres_agreeing"] == 4 and f4.numbers["effect"]["p_method"] == stats.HIERARCHICAL
    assert f4.numbers["probability_best"][32] > 0.95
    assert sum(f4.numbers["probability_best"].values()) == pytest.approx(1.0)
    # on pop, 16 has 32's accuracy: pop's gap turns negative and the genres no longer agree
    pop16 = [dict(r, metrics=dict(r["metrics"], token_accuracy=r["metrics"]["token_accuracy"] + 0.1))
             if r["grid"]["dataset"] == "pop" and r["grid"]["latent_dim"] == 16 else r for r in rec]
    f4d = findings.finding_trade_off(pop16, draws=2000)
    assert f4d.verdict == stats.INCONCLUSIVE and "pop disagrees in sign" in " ".join(f4d.evidence)
    one_seed = [r for r in rec if r["grid"]["seed"] == 0]
    f4o = findings.finding_trade_off(one_seed, draws=2000)
    assert f4o.verdict == stats.INCONCLUSIVE and "cells have one seed" in " ".join(f4o.evidence)
    two_genres = [r for r in rec if r["grid"]["dataset"] in ("pop", "irish")]
    assert findings.finding_trade_off(two_genres, draws=2000).verdict == stats.INCONCLUSIVE
    assert findings.finding_trade_off([r for r in rec if r["grid"]["latent_dim"] in (4, 32)]).verdict \
        == stats.INCONCLUSIVE  # two latent sizes
