"""Tests of musicvae_xai.metrics on synthetic latent codes whose answers are known."""

import json

import numpy as np
import pytest
from scipy import stats

from musicvae_xai import metrics

N = 1000
#: Each of 4 attributes a monotone function of its own dim (0..3); dims 4..7 are free noise.
INTENDED = [0, 1, 2, 3]


def _disentangled(n: int = N, seed: int = 0):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 8))
    a = np.stack([2.0 * z[:, 0] + 1.0,              # linear
                  np.tanh(z[:, 1]),                 # saturating
                  np.exp(z[:, 2] / 2.0),            # skewed
                  np.round(z[:, 3] * 4.0) / 4.0],   # on a grid, like the musical attributes
                 axis=1)
    return z, a


def _entangled(n: int = N, seed: int = 0):
    """Every dim is an equal-weight +-mix of all 4 independent attributes (an orthogonal Hadamard mix)."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, 4))
    hadamard = np.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]]) / 2.0
    return a @ hadamard, a


@pytest.fixture(scope="module")
def disentangled():
    return _disentangled()


@pytest.fixture(scope="module")
def entangled():
    return _entangled()


# ---------------------------------------------------------------------------------------------------
# Known answers


def test_disentangled_code_scores_high(disentangled):
    z, a = disentangled
    report = metrics.interpretability(z, a, attribute_names=["lin", "tanh", "exp", "grid"],
                                      intended_dims=INTENDED)
    rows = report["per_attribute"]
    assert [r["dim"] for r in rows] == INTENDED
    assert [r["attribute"] for r in rows] == ["lin", "tanh", "exp", "grid"]
    assert all(r["is_intended"] for r in rows)
    assert report["intended_fraction"] == 1.0
    assert rows[0]["r2"] == pytest.approx(1.0, abs=1e-9)       # exactly linear
    assert rows[3]["r2"] > 0.99                                # linear up to rounding
    assert rows[1]["r2"] > 0.9 and rows[2]["r2"] > 0.85        # monotone but curved
    assert report["mean"] == pytest.approx(np.mean([r["r2"] for r in rows]))
    assert metrics.mig(z, a) > 0.9
    assert metrics.sap(z, a) > 0.9
    assert metrics.modularity(z, a) > 0.9
    assert metrics.modularity_mi_weighted(z, a) > 0.99
    assert metrics.spearman_correlation_score(z, a) > 0.99     # rank correlation ignores the curvature


def test_entangled_code_scores_low(entangled):
    z, a = entangled
    assert metrics.mig(z, a) < 0.05
    assert metrics.sap(z, a) < 0.05
    # Theoretical modularity is 0; what remains is the estimator's noise on equal MIs.
    assert metrics.modularity(z, a) < 0.6
    # Each dim has Pearson r = 1/2 with each attribute: Spearman rho = (6/pi) arcsin(1/4) = 0.483.
    assert metrics.spearman_correlation_score(z, a) == pytest.approx(6 / np.pi * np.arcsin(0.25), abs=0.05)
    for row in metrics.interpretability(z, a)["per_attribute"]:
        assert row["r2"] == pytest.approx(0.25, abs=0.06)


def test_disentangled_beats_entangled(disentangled, entangled):
    for metric in (metrics.mig, metrics.sap, metrics.modularity, metrics.modularity_mi_weighted,
                   metrics.spearman_correlation_score):
        assert metric(*disentangled) > metric(*entangled) + 0.4, metric.__name__


def test_distractor_dim_keeps_the_right_dim_and_narrows_the_gaps(disentangled):
    z, a = disentangled
    rng = np.random.default_rng(1)
    rho = 0.95
    distractor = rho * z[:, 0] + np.sqrt(1 - rho ** 2) * rng.standard_normal(N)
    zd = np.concatenate([z, distractor[:, None]], axis=1)

    assert [r["dim"] for r in metrics.interpretability(zd, a)["per_attribute"]] == INTENDED
    # MI of the distractor with the (linear) attribute 0 is the Gaussian -log(1 - rho^2) / 2 = 1.16 nats.
    mi = metrics.mutual_information_matrix(zd, a)
    assert mi[8, 0] == pytest.approx(-0.5 * np.log(1 - rho ** 2), abs=0.15)
    # Only attribute 0 loses gap: SAP by its R^2 with the distractor, MIG by its MI over H(a_0); both
    # averaged over the 4 attributes.
    r2 = np.corrcoef(zd.T, a[:, 0])[-1, :-1] ** 2      # R^2 of attribute 0 on each of the 9 dims
    old_second = np.sort(r2[:8])[-2]                     # a noise dim's, near 0
    assert r2[8] == pytest.approx(rho ** 2, abs=0.02)
    assert metrics.sap(z, a) - metrics.sap(zd, a) == pytest.approx((r2[8] - old_second) / 4, abs=1e-9)
    h0 = metrics.attribute_entropy(a)[0]
    expected_drop = min(mi[8, 0], mi[0, 0]) / h0 / 4
    assert metrics.mig(z, a) - metrics.mig(zd, a) == pytest.approx(expected_drop, abs=0.01)
    assert metrics.mig(zd, a) < metrics.mig(z, a) - 0.03


def test_attribute_entropy_is_shannon_entropy_for_grid_values():
    a = np.round(np.random.default_rng(0).standard_normal((N, 1)) * 2) / 2
    _, counts = np.unique(a, return_counts=True)
    p = counts / counts.sum()
    assert metrics.attribute_entropy(a)[0] == pytest.approx(-(p * np.log(p)).sum(), abs=0.1)


def test_scc_drops_insignificant_correlations():
    rng = np.random.default_rng(3)
    z = rng.standard_normal((20, 1))
    a = 0.3 * z + rng.standard_normal((20, 1))
    rho, p = stats.spearmanr(z[:, 0], a[:, 0])
    assert p > 0.05 and abs(rho) > 0
    assert metrics.spearman_correlation_score(z, a) == 0.0
    assert metrics.spearman_correlation_score(z, a, alpha=1.0) == pytest.approx(abs(rho))


def test_scc_matches_scipy_with_ties():
    rng = np.random.default_rng(4)
    z = rng.integers(0, 5, size=(60, 3)).astype(float)
    a = np.stack([z[:, 0] + rng.integers(0, 3, 60), rng.integers(0, 4, 60) * 1.0], axis=1)
    expected = []
    for k in range(2):
        best = 0.0
        for d in range(3):
            rho, p = stats.spearmanr(z[:, d], a[:, k])
            best = max(best, abs(rho) if p <= 0.05 else 0.0)
        expected.append(best)
    assert metrics.spearman_correlation_score(z, a) == pytest.approx(np.mean(expected), abs=1e-9)


def test_modularity_from_a_hand_built_mi_matrix():
    z, a = _disentangled(n=20)
    z, a = z[:, :3], a[:, :2]
    mi = np.array([[1.0, 0.0],     # modular: 1
                   [1.0, 1.0],     # informs about both equally: 0
                   [0.0, 0.0]])    # uninformative: 0, and counted in the plain mean (ar-vae)
    assert metrics.modularity(z, a, mi=mi) == pytest.approx(1 / 3)
    # weights theta = (1, 1, 0): (1 * 1 + 1 * 0) / 2
    assert metrics.modularity_mi_weighted(z, a, mi=mi) == pytest.approx(0.5)
    # dim 0: delta = 1^2 / (2^2 * 1) = 1/4 -> 0.75; two uninformative dims score 0
    mi = np.array([[2.0, 1.0], [0, 0], [0, 0]])
    assert metrics.modularity(z, a, mi=mi) == pytest.approx(0.75 / 3)
    assert metrics.modularity_mi_weighted(z, a, mi=mi) == pytest.approx(0.75)


def test_modularity_three_attributes_plain_and_weighted_means():
    z, a = _disentangled(n=20)
    z, a = z[:, :2], a[:, :3]
    mi = np.array([[2.0, 1.0, 1.0],    # delta = (1 + 1) / (4 * 2) = 1/4 -> 0.75
                   [0.5, 0.0, 0.5]])   # delta = 0.25 / (0.25 * 2) = 1/2 -> 0.5
    assert metrics.modularity(z, a, mi=mi) == pytest.approx((0.75 + 0.5) / 2)
    assert metrics.modularity_mi_weighted(z, a, mi=mi) == pytest.approx((2 * 0.75 + 0.5 * 0.5) / 2.5)
    # Matches Ridgeway & Mozer's template form 1 - sum_k (m - t)^2 / (theta^2 (K - 1)) row by row.
    theta = mi.max(axis=1)
    template = np.zeros_like(mi)
    template[np.arange(2), mi.argmax(axis=1)] = theta
    per_dim = 1 - ((mi - template) ** 2).sum(axis=1) / (theta ** 2 * 2)
    assert metrics.modularity(z, a, mi=mi) == pytest.approx(per_dim.mean())


def test_mig_from_a_hand_built_mi_matrix_is_not_clipped():
    z, a = _disentangled(n=50)
    z, a = z[:, :3], a[:, :2]
    h = metrics.attribute_entropy(a)
    mi = np.array([[1.5 * h[0], 0.1 * h[1]],
                   [0.0, 0.4 * h[1]],
                   [0.0, 0.0]])
    # attribute 0: (1.5 h - 0) / h = 1.5 (above 1, kept); attribute 1: (0.4 - 0.1) h / h = 0.3
    assert metrics.mig(z, a, mi=mi) == pytest.approx((1.5 + 0.3) / 2)


def test_mig_above_one_from_the_estimator():
    """A dim that copies a grid-valued attribute: the two k-NN estimates disagree and MIG exceeds 1."""
    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, size=(200, 1)).astype(float)
    z = np.hstack([a + 1e-3 * rng.standard_normal((200, 1)), rng.standard_normal((200, 1))])
    mi = metrics.mutual_information_matrix(z, a)
    h = metrics.attribute_entropy(a)[0]
    assert mi[0, 0] > h                                   # the estimator's I(z_0; a) > its I(a; a)
    assert metrics.mig(z, a) == pytest.approx((mi[0, 0] - mi[1, 0]) / h)
    assert metrics.mig(z, a) > 1.0


def test_precomputed_mi_gives_the_same_scores(disentangled):
    z, a = disentangled
    mi = metrics.mutual_information_matrix(z, a, random_state=5)
    assert metrics.mig(z, a, random_state=5) == metrics.mig(z, a, random_state=5, mi=mi)
    assert metrics.modularity(z, a, random_state=5) == metrics.modularity(z, a, mi=mi)
    assert metrics.modularity_mi_weighted(z, a, random_state=5) == metrics.modularity_mi_weighted(z, a, mi=mi)
    report = metrics.disentanglement_report(z, a, random_state=5, intended_dims=INTENDED)
    alone = metrics.interpretability(z, a, random_state=5, intended_dims=INTENDED)
    assert report["interpretability"] == alone
    assert report["mig"] == metrics.mig(z, a, random_state=5)
    assert report["modularity"] == metrics.modularity(z, a, mi=mi)
    assert report["modularity_mi_weighted"] == metrics.modularity_mi_weighted(z, a, mi=mi)
    assert np.array_equal(np.array(report["mutual_information"]), mi)


# ---------------------------------------------------------------------------------------------------
# Reproducibility and output types


def test_reproducible_given_random_state(disentangled):
    z, a = disentangled  # attribute 3 is on a grid: its ties are broken by random_state's noise
    m0 = metrics.mutual_information_matrix(z, a, random_state=0)
    assert np.array_equal(m0, metrics.mutual_information_matrix(z, a, random_state=0))
    assert not np.array_equal(m0, metrics.mutual_information_matrix(z, a, random_state=1))
    assert metrics.disentanglement_report(z, a, random_state=7) == metrics.disentanglement_report(
        z, a, random_state=7)


def test_reports_are_json_serialisable(disentangled):
    z, a = disentangled
    report = metrics.disentanglement_report(z[:200], a[:200], attribute_names=list("abcd"),
                                            intended_dims=[0, 1, None, 5])
    assert json.loads(json.dumps(report)) == report
    rows = report["interpretability"]["per_attribute"]
    assert type(rows[0]["dim"]) is int and type(rows[0]["r2"]) is float
    assert [r["is_intended"] for r in rows] == [True, True, None, False]
    assert report["interpretability"]["intended_fraction"] == pytest.approx(2 / 3)
    independence = metrics.attribute_independence(np.arange(3.0), np.ones((1, 1, 3, 2)))
    assert json.loads(json.dumps(independence)) == independence


# ---------------------------------------------------------------------------------------------------
# Attribute independence


def test_attribute_independence_on_a_hand_built_sweep():
    control = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    up, down, flat, bump = [0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [7, 7, 7, 7, 7], [0, 1, 2, 1, 0]
    # [C=2, N=2 seeds, S=5, K=3]; rho: up +1, down -1, flat 0 (constant), bump 0 (symmetric).
    out = np.array([
        [np.array([up, flat, down]).T, np.array([up, flat, bump]).T],   # control 0
        [np.array([flat, up, bump]).T, np.array([down, up, bump]).T],   # control 1
    ], dtype=float)
    assert out.shape == (2, 2, 5, 3)
    result = metrics.attribute_independence(control, out)
    np.testing.assert_allclose(result["matrix"], [[1.0, 0.0, 0.5], [0.5, 1.0, 0.0]], atol=1e-12)
    np.testing.assert_allclose(result["signed_matrix"], [[1.0, 0.0, -0.5], [-0.5, 1.0, 0.0]], atol=1e-12)
    assert result["controllability"] == pytest.approx(1.0)
    assert result["leakage"] == pytest.approx(0.25)     # mean of 0, 0.5, 0.5, 0


def test_attribute_independence_matches_scipy_with_ties():
    rng = np.random.default_rng(2)
    control = np.linspace(-4, 4, 9)
    out = rng.integers(0, 4, size=(2, 3, 9, 2)).astype(float)
    out[0, 0, :, 1] = 1.0   # a constant output counts as rho 0
    result = metrics.attribute_independence(control, out)
    expected = np.zeros((2, 2))
    for c in range(2):
        for k in range(2):
            rhos = [0.0 if np.ptp(out[c, n, :, k]) == 0 else stats.spearmanr(control, out[c, n, :, k])[0]
                    for n in range(3)]
            expected[c, k] = np.mean(np.abs(rhos))
    np.testing.assert_allclose(result["matrix"], expected, atol=1e-12)
    assert result["controllability"] == pytest.approx((expected[0, 0] + expected[1, 1]) / 2)
    assert result["leakage"] == pytest.approx((expected[0, 1] + expected[1, 0]) / 2)


def test_attribute_independence_single_control_has_zero_leakage_and_constant_output_zero():
    result = metrics.attribute_independence([0.0, 1.0, 2.0], np.zeros((1, 2, 3, 1)))
    assert result == {"matrix": [[0.0]], "signed_matrix": [[0.0]], "controllability": 0.0, "leakage": 0.0}


@pytest.mark.parametrize("control, out, message", [
    (np.zeros((3, 1)), np.zeros((1, 1, 3, 1)), "1-D"),
    (np.arange(3.0), np.zeros((1, 3, 1)), "4-D"),
    (np.arange(3.0), np.zeros((1, 1, 4, 1)), "sweep steps"),
    (np.arange(3.0), np.zeros((2, 1, 3, 1)), "measured attributes"),
    (np.ones(3), np.zeros((1, 1, 3, 1)), "not swept"),
    (np.array([0.0]), np.zeros((1, 1, 1, 1)), "at least 2"),
    (np.arange(3.0), np.full((1, 1, 3, 1), np.nan), "finite"),
])
def test_attribute_independence_rejects_bad_input(control, out, message):
    with pytest.raises(ValueError, match=message):
        metrics.attribute_independence(control, out)


# ---------------------------------------------------------------------------------------------------
# Degenerate and bad input


def test_constant_dims_and_attributes_give_zeros_not_nan():
    z, a = _disentangled(n=300)
    z[:, 1] = 3.0      # dead dim: attribute 1 loses its dim
    a[:, 2] = 0.5      # attribute that never changes
    mi = metrics.mutual_information_matrix(z, a)
    assert np.all(mi[1] == 0) and np.all(mi[:, 2] == 0)
    rows = metrics.interpretability(z, a, intended_dims=INTENDED)["per_attribute"]
    assert rows[0]["dim"] == 0 and rows[3]["dim"] == 3
    assert rows[1]["dim"] != 1 and rows[1]["is_intended"] is False
    assert rows[2] == {"attribute": "attribute_2", "dim": None, "mi": 0.0, "r2": 0.0,
                       "intended_dim": 2, "is_intended": False}
    assert metrics.attribute_entropy(a)[2] == 0.0
    report = metrics.disentanglement_report(z, a)
    for key in ("mig", "sap", "scc", "modularity", "modularity_mi_weighted"):
        assert np.isfinite(report[key]) and 0.0 <= report[key] <= 1.0
    # Attributes 0 and 3 are perfectly captured, 2 is constant (0), 1 only by noise dims.
    assert report["sap"] < 0.6 and report["mig"] < 0.6


def test_all_constant_input_scores_zero():
    z = np.ones((10, 3))
    a = np.zeros((10, 2))
    report = metrics.disentanglement_report(z, a)
    assert report["mig"] == report["sap"] == report["scc"] == report["modularity"] == 0.0
    assert report["modularity_mi_weighted"] == 0.0
    assert [r["dim"] for r in report["interpretability"]["per_attribute"]] == [None, None]
    assert report["interpretability"]["mean"] == 0.0


def test_single_dim_and_single_attribute():
    z, a = _disentangled(n=300)
    z1, a1 = z[:, :1], a[:, :1]
    assert metrics.sap(z1, a1) == pytest.approx(1.0)            # the second-largest R^2 counts as 0
    assert metrics.mig(z1, a1) == pytest.approx(1.0, abs=0.02)
    # One attribute: every informative dim is modular (1), an uninformative one scores 0.
    informative = metrics.mutual_information_matrix(z, a1)[:, 0] > 0
    assert 0 < informative.sum() < z.shape[1]
    assert metrics.modularity(z, a1) == pytest.approx(informative.mean())
    assert metrics.modularity_mi_weighted(z, a1) == pytest.approx(1.0)


@pytest.mark.parametrize("z, a, message", [
    (np.zeros(10), np.zeros((10, 1)), "2-D"),
    (np.zeros((10, 2)), np.zeros((10, 1, 1)), "2-D"),
    (np.zeros((10, 2)), np.zeros((9, 1)), "rows"),
    (np.zeros((3, 2)), np.zeros((3, 1)), "at least"),
    (np.zeros((10, 0)), np.zeros((10, 1)), "no columns"),
    (np.full((10, 2), np.inf), np.zeros((10, 1)), "NaN or infinite"),
    (np.array([["x"] * 2] * 10), np.zeros((10, 1)), "real numbers"),
])
@pytest.mark.parametrize("metric", [metrics.interpretability, metrics.mig, metrics.sap,
                                    metrics.spearman_correlation_score, metrics.modularity,
                                    metrics.modularity_mi_weighted,
                                    metrics.mutual_information_matrix])
def test_bad_shapes_raise_value_error(metric, z, a, message):
    with pytest.raises(ValueError, match=message):
        metric(z, a)


def test_bad_arguments_raise_value_error():
    z, a = _disentangled(n=50)
    with pytest.raises(ValueError, match="intended_dims has 2"):
        metrics.interpretability(z, a, intended_dims=[0, 1])
    with pytest.raises(ValueError, match="not a latent dim"):
        metrics.interpretability(z, a, intended_dims=[0, 1, 2, 8])
    with pytest.raises(ValueError, match="attribute_names has 1"):
        metrics.interpretability(z, a, attribute_names=["x"])
    with pytest.raises(ValueError, match="shape"):
        metrics.mig(z, a, mi=np.zeros((4, 4)))
    with pytest.raises(ValueError, match="alpha"):
        metrics.spearman_correlation_score(z, a, alpha=0.0)
