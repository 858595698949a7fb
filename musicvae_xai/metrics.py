"""Disentanglement, interpretability and controllability metrics of docs/METHOD.md section 6, on numpy arrays.

Token-level reconstruction accuracies and their majority-token baselines are in
``musicvae_xai.token_accuracy``.

Inputs are latent codes ``z`` float [N, D] (N measures, D latent dims) and attributes ``a`` float [N, K]
(K measured attributes of the same measures); any real dtype is accepted and computed in float64.
Every metric returns plain Python values (``float``, ``int``, ``None``, ``list``, ``dict``), so results
go straight into ``json.dump``; only :func:`mutual_information_matrix` returns an
array.

Mutual information (MI) is the continuous k-nearest-neighbour (Kraskov-Stoegbauer-Grassberger) estimate
with k = 3, in nats, from ``sklearn.feature_selection.mutual_info_regression``; the estimator breaks ties
with 1e-10-scale noise drawn from ``random_state``, so the same inputs and ``random_state`` always give the
same numbers. scikit-learn clips negative estimates to 0.

Degenerate input never yields NaN. A column that is exactly constant (a dead latent dim, an attribute
that never changes) carries no information: its MI, R^2 and Spearman rho with anything are 0, and each
metric documents what its score is then. Arrays of the wrong rank, mismatched N, fewer than
``MIN_SAMPLES`` rows, or non-finite values raise ``ValueError``.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from scipy import stats
from sklearn.feature_selection import mutual_info_regression

#: Neighbours of the k-NN mutual information estimator (docs/METHOD.md section 6).
MI_NEIGHBORS = 3
#: Fewest rows the metrics accept (the k-NN estimator needs more than k samples).
MIN_SAMPLES = MI_NEIGHBORS + 1
#: Significance level below which a Spearman correlation counts in the SCC.
SCC_ALPHA = 0.05


# ----------------------------------------------------------------------------------------------------
# Validation and small helpers


def _check_matrix(x, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array [N, {'D' if name == 'z' else 'K'}], got shape {x.shape}"
                         + (" (use x.reshape(-1, 1) for a single column)" if x.ndim == 1 else ""))
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise ValueError(f"{name} must hold real numbers, got dtype {x.dtype}")
    x = x.astype(np.float64)
    if x.shape[1] == 0:
        raise ValueError(f"{name} has no columns (shape {x.shape})")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def _check_za(z, a) -> tuple[np.ndarray, np.ndarray]:
    """Validates and returns (z float64 [N, D], a float64 [N, K])."""
    z = _check_matrix(z, "z")
    a = _check_matrix(a, "a")
    if z.shape[0] != a.shape[0]:
        raise ValueError(f"z has {z.shape[0]} rows but a has {a.shape[0]}; both need one row per measure")
    if z.shape[0] < MIN_SAMPLES:
        raise ValueError(f"need at least {MIN_SAMPLES} samples, got {z.shape[0]}")
    return z, a


def _check_mi(mi, d: int, k: int) -> np.ndarray:
    mi = np.asarray(mi, dtype=np.float64)
    if mi.shape != (d, k):
        raise ValueError(f"precomputed mi must have shape [D, K] = {(d, k)}, got {mi.shape}")
    if not np.all(np.isfinite(mi)) or np.any(mi < 0):
        raise ValueError("precomputed mi must be finite and non-negative")
    return mi


def _is_constant(x: np.ndarray, axis: int = 0) -> np.ndarray:
    """bool: the values along ``axis`` are all exactly equal."""
    return np.ptp(x, axis=axis) == 0


def _pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r between each column of x [N, D] and each column of y [N, K] -> float64 [D, K].

    0 where either column is constant (the correlation is undefined there).
    """
    xc = x - x.mean(axis=0)
    yc = y - y.mean(axis=0)
    xn = np.linalg.norm(xc, axis=0)
    yn = np.linalg.norm(yc, axis=0)
    den = np.outer(xn, yn)
    valid = np.outer(~_is_constant(x) & (xn > 0), ~_is_constant(y) & (yn > 0))
    r = np.divide(xc.T @ yc, den, out=np.zeros(den.shape), where=valid)
    return np.clip(r, -1.0, 1.0)


def _r2_matrix(z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """R^2 of the least-squares line a_k ~ w z_d + b for every (d, k) -> float64 [D, K].

    For one regressor with an intercept this is the squared Pearson correlation; 0 for constant columns.
    """
    return _pearson(z, a) ** 2


def _spearman(z: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spearman rho and two-sided p-value for every (dim, attribute) -> (float64 [D, K], float64 [D, K]).

    rho is the Pearson correlation of average ranks (as scipy.stats.spearmanr); the p-value uses the
    t distribution with N - 2 degrees of freedom, as scipy does. Constant columns give rho 0, p 1.
    """
    n = z.shape[0]
    rho = _pearson(stats.rankdata(z, axis=0), stats.rankdata(a, axis=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.abs(rho) * np.sqrt((n - 2) / np.maximum(1.0 - rho ** 2, 0.0))
    p = np.where(rho == 0, 1.0, 2.0 * stats.t.sf(t, n - 2))
    return rho, p


def _top_two(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Largest and second-largest value of each column of x [D, K] (second is 0 when D == 1)."""
    s = np.sort(x, axis=0)[::-1]
    second = s[1] if x.shape[0] > 1 else np.zeros(x.shape[1])
    return s[0], second


# ----------------------------------------------------------------------------------------------------
# Mutual information


def mutual_information_matrix(z, a, random_state: int = 0) -> np.ndarray:
    """Continuous k-NN mutual information (k = 3, nats) between every latent dim and every attribute.

    Args:
      z: float [N, D] latent codes.
      a: float [N, K] attributes.
      random_state: seed of the estimator's tie-breaking noise.

    Returns:
      float64 [D, K], entry (d, k) = I(z_d; a_k) >= 0; exactly 0 where z_d or a_k is constant.
    """
    z, a = _check_za(z, a)
    mi = np.zeros((z.shape[1], a.shape[1]))
    live = ~_is_constant(z)
    if not live.any():
        return mi
    for k in np.flatnonzero(~_is_constant(a)):
        mi[live, k] = mutual_info_regression(z[:, live], a[:, k], n_neighbors=MI_NEIGHBORS,
                                             random_state=random_state)
    return mi


def attribute_entropy(a, random_state: int = 0) -> np.ndarray:
    """MIG's normaliser: the k-NN estimate of I(a_k; a_k) for each attribute column -> float64 [K].

    For an attribute that takes values on a grid (all of docs/METHOD.md section 3's attributes do: note counts, pitch
    differences) this estimates its Shannon entropy H(a_k), the true upper bound of I(z_d; a_k).
    For a truly continuous attribute H is infinite, and this is the estimator's own ceiling
    (about psi(N) - psi(3)): what the same estimator reports for a dim that is an exact copy of a_k.
    Either way a dim that determines the attribute scores a ratio near 1. 0 for a constant attribute.

    Args:
      a: float [N, K] attributes.
      random_state: seed of the estimator's tie-breaking noise.
    """
    a = _check_matrix(a, "a")
    if a.shape[0] < MIN_SAMPLES:
        raise ValueError(f"need at least {MIN_SAMPLES} samples, got {a.shape[0]}")
    h = np.zeros(a.shape[1])
    for k in np.flatnonzero(~_is_constant(a)):
        h[k] = mutual_info_regression(a[:, k:k + 1], a[:, k], n_neighbors=MI_NEIGHBORS,
                                      random_state=random_state)[0]
    return h


# ----------------------------------------------------------------------------------------------------
# Latent-space metrics


def interpretability(z, a, random_state: int = 0, attribute_names: Optional[Sequence[str]] = None,
                     intended_dims: Optional[Sequence[Optional[int]]] = None, mi=None) -> dict:
    """Interpretability per attribute (Adel et al. 2018, as docs/METHOD.md section 6).

    For each attribute a_k the chosen dim r is the latent dim with the highest k-NN mutual information
    with a_k (the first on ties); the score is the R^2 of the least-squares line a_k ~ w z_r + b.

    Args:
      z: float [N, D] latent codes.
      a: float [N, K] attributes.
      random_state: seed of the MI estimator.
      attribute_names: K names for the report (default "attribute_0", ...).
      intended_dims: K ints (or None for an attribute without one): the dim each attribute was
        regularised onto, to report whether r is that dim.
      mi: optional precomputed ``mutual_information_matrix(z, a, random_state)`` [D, K].

    Returns:
      {"per_attribute": [{"attribute": str, "dim": int | None, "mi": float, "r2": float,
                          "intended_dim": int | None, "is_intended": bool | None}, ...],
       "mean": float (mean r2 over attributes),
       "intended_fraction": float | None (share of attributes with an intended dim whose r is it)}.
      When no dim has any information about a_k (every MI is 0, e.g. a constant attribute), "dim" is
      None, "r2" is 0.0 and "is_intended" is False.
    """
    z, a = _check_za(z, a)
    d, k_attrs = z.shape[1], a.shape[1]
    if attribute_names is None:
        attribute_names = [f"attribute_{k}" for k in range(k_attrs)]
    attribute_names = [str(n) for n in attribute_names]
    if len(attribute_names) != k_attrs:
        raise ValueError(f"attribute_names has {len(attribute_names)} entries but a has {k_attrs} columns")
    if intended_dims is not None:
        intended_dims = list(intended_dims)
        if len(intended_dims) != k_attrs:
            raise ValueError(f"intended_dims has {len(intended_dims)} entries but a has {k_attrs} columns")
        for r in intended_dims:
            if r is not None and (isinstance(r, bool) or not isinstance(r, (int, np.integer))
                                  or not 0 <= r < d):
                raise ValueError(f"intended dim {r!r} is not a latent dim index in [0, {d})")
    mi = mutual_information_matrix(z, a, random_state) if mi is None else _check_mi(mi, d, k_attrs)
    r2 = _r2_matrix(z, a)

    rows = []
    for k in range(k_attrs):
        best = int(np.argmax(mi[:, k]))
        informative = mi[best, k] > 0
        intended = None if intended_dims is None or intended_dims[k] is None else int(intended_dims[k])
        rows.append({
            "attribute": attribute_names[k],
            "dim": best if informative else None,
            "mi": float(mi[best, k]),
            "r2": float(r2[best, k]) if informative else 0.0,
            "intended_dim": intended,
            "is_intended": None if intended is None else bool(informative and best == intended),
        })
    judged = [row["is_intended"] for row in rows if row["is_intended"] is not None]
    return {
        "per_attribute": rows,
        "mean": float(np.mean([row["r2"] for row in rows])),
        "intended_fraction": float(np.mean(judged)) if judged else None,
    }


def mig(z, a, random_state: int = 0, mi=None) -> float:
    """Mutual Information Gap (Chen et al. 2018), unclipped as ar-vae's ``compute_mig``.

    The mean over attributes of (MI_1 - MI_2) / H(a_k), where MI_1, MI_2 are the largest and
    second-largest k-NN MI of a_k over latent dims (MI_2 = 0 when D = 1) and H(a_k) is
    ``attribute_entropy``: the same estimator's I(a_k; a_k), which is the Shannon entropy for a
    grid-valued attribute and the estimator's ceiling for a continuous one. A code where one dim
    determines a_k (the others independent of it) scores near 1, a code spreading a_k evenly over dims
    near 0. The ratio is not clipped: numerator and denominator are separate k-NN estimates, so a dim
    that determines a grid-valued attribute can score somewhat above 1 (e.g. 1.03), and that is
    reported as estimated. It is never negative (the estimator's MIs are >= 0 and MI_1 >= MI_2).
    Where ar-vae divides by H = 0 (a constant attribute) and gets NaN, that attribute contributes 0.

    Args:
      z: float [N, D] latent codes.
      a: float [N, K] attributes.
      random_state: seed of the MI estimator.
      mi: optional precomputed ``mutual_information_matrix(z, a, random_state)`` [D, K].

    Returns:
      float >= 0 (1 for a perfectly disentangled code, up to estimator noise in both directions).
    """
    z, a = _check_za(z, a)
    if mi is None:
        mi = mutual_information_matrix(z, a, random_state)
    mi = _check_mi(mi, z.shape[1], a.shape[1])
    h = attribute_entropy(a, random_state)
    first, second = _top_two(mi)
    gap = np.divide(first - second, h, out=np.zeros_like(h), where=h > 0)
    return float(np.mean(gap))


def sap(z, a) -> float:
    """Separated Attribute Predictability (Kumar et al. 2018) with linear-fit R^2 scores.

    For each attribute a_k, the R^2 of the least-squares line a_k ~ w z_d + b is computed for every dim
    d; the attribute's score is the largest R^2 minus the second largest (minus 0 when D = 1). Returns
    the mean over attributes, a float in [0, 1]. Constant dims and constant attributes have R^2 0, so a
    constant attribute contributes 0.
    """
    z, a = _check_za(z, a)
    first, second = _top_two(_r2_matrix(z, a))
    return float(np.mean(first - second))


def spearman_correlation_score(z, a, alpha: float = SCC_ALPHA) -> float:
    """Spearman correlation score (SCC): mean over attributes of the largest |rho| over latent dims.

    rho is Spearman's rank correlation between a_k and z_d (average ranks for ties); a correlation
    whose two-sided p-value exceeds ``alpha`` (0.05) counts as 0, as do constant dims and attributes.
    Returns a float in [0, 1].
    """
    z, a = _check_za(z, a)
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    rho, p = _spearman(z, a)
    score = np.where(p <= alpha, np.abs(rho), 0.0)
    return float(np.mean(score.max(axis=0)))


def _modularity_per_dim(mi: np.ndarray) -> np.ndarray:
    """Ridgeway & Mozer's modularity of each dim from the MI matrix [D, K] -> float64 [D].

    With theta_d = max_k m[d, k]: delta_d = (sum_k m[d, k]^2 - theta_d^2) / (theta_d^2 (K - 1)) and the
    dim scores 1 - delta_d; 0 for a dim with theta_d = 0 (as ar-vae's ``_modularity``); 1 for every
    informative dim when K = 1 (ar-vae divides 0 by 0 there and gets NaN).
    """
    theta = mi.max(axis=1)
    informative = theta > 0
    if mi.shape[1] == 1:
        return informative.astype(np.float64)
    off = (mi ** 2).sum(axis=1) - theta ** 2
    delta = np.divide(off, theta ** 2 * (mi.shape[1] - 1), out=np.ones(mi.shape[0]), where=informative)
    # delta is in [0, 1] by construction (every m[d, k] <= theta_d); the clip only absorbs round-off.
    return np.where(informative, 1.0 - np.clip(delta, 0.0, 1.0), 0.0)


def modularity(z, a, random_state: int = 0, mi=None) -> float:
    """Modularity (Ridgeway & Mozer 2018) as ar-vae's ``compute_modularity``: the plain mean over dims.

    For latent dim d with theta_d = max_k m[d, k] of the [D, K] k-NN mutual information matrix m, the
    template t_d has theta_d at that attribute and 0 elsewhere; delta_d = sum_k (m[d, k] - t_d[k])^2 /
    (theta_d^2 (K - 1)) and the dim's modularity is 1 - delta_d: 1 when the dim informs about one
    attribute only, 0 when it informs about all equally. A dim that carries no attribute information
    (theta_d = 0, e.g. a dead dim) scores 0, as in ar-vae, and still counts in the mean, so the many
    free dims of a large code weigh as much as the regularised ones (see
    :func:`modularity_mi_weighted`). With K = 1 every informative dim scores 1.

    z float [N, D], a float [N, K], random_state and mi [D, K] as for :func:`mig`. Returns a float in
    [0, 1]; 0.0 when no dim carries information.
    """
    z, a = _check_za(z, a)
    mi = mutual_information_matrix(z, a, random_state) if mi is None else _check_mi(mi, z.shape[1], a.shape[1])
    return float(np.mean(_modularity_per_dim(mi)))


def modularity_mi_weighted(z, a, random_state: int = 0, mi=None) -> float:
    """Our variant of :func:`modularity`: the per-dim scores averaged with weights theta_d.

    theta_d = max_k m[d, k] is how much the dim knows about its best attribute, so dims without
    attribute information (theta_d = 0) drop out and free dims whose MI is estimator noise near 0 barely
    count; the score then says how modular the informative dims are. Not in ar-vae or Ridgeway & Mozer.

    Args: as :func:`modularity`.

    Returns:
      float in [0, 1]; 0.0 when no dim carries information.
    """
    z, a = _check_za(z, a)
    mi = mutual_information_matrix(z, a, random_state) if mi is None else _check_mi(mi, z.shape[1], a.shape[1])
    theta = mi.max(axis=1)
    if not np.any(theta > 0):
        return 0.0
    return float(np.sum(theta * _modularity_per_dim(mi)) / np.sum(theta))


def disentanglement_report(z, a, random_state: int = 0, attribute_names: Optional[Sequence[str]] = None,
                           intended_dims: Optional[Sequence[Optional[int]]] = None) -> dict:
    """Every latent-space metric above, estimating the MI matrix once.

    Args: as :func:`interpretability`.

    Returns:
      {"interpretability": interpretability(...), "mig": float, "sap": float, "scc": float,
       "modularity": float, "modularity_mi_weighted": float, "mutual_information": [[float] * K] * D}.
    """
    z, a = _check_za(z, a)
    mi = mutual_information_matrix(z, a, random_state)
    return {
        "interpretability": interpretability(z, a, random_state, attribute_names, intended_dims, mi=mi),
        "mig": mig(z, a, random_state, mi=mi),
        "sap": sap(z, a),
        "scc": spearman_correlation_score(z, a),
        "modularity": modularity(z, a, random_state, mi=mi),
        "modularity_mi_weighted": modularity_mi_weighted(z, a, random_state, mi=mi),
        "mutual_information": mi.tolist(),
    }


# ----------------------------------------------------------------------------------------------------
# Attribute independence of a control sweep


def attribute_independence(control_values, output_attributes) -> dict:
    """Controllability and leakage of C controls from sweeps of each (docs/METHOD.md section 6).

    Control c (a regularised latent dim of MeasureVAE, an attribute input of the adversarial VAE) is
    swept over ``control_values`` with everything else fixed, for each of N seed measures, and the K
    attributes of each decoded output are measured. For every (control c, seed n, attribute k) this
    takes Spearman's rho between the control value and the measured attribute across the S steps
    (average ranks for ties); an attribute that does not change along the sweep has rho 0 (never NaN).

    Convention: control c is intended for attribute c, so the first C of the K measured attributes must
    be the controlled ones in control order; any further attributes (k >= C) are measured for leakage.

    Args:
      control_values: float [S], S >= 2, the sweep of one control (not all equal).
      output_attributes: float [C, N, S, K] with K >= C: attribute k of the output decoded from seed n
        with control c set to control_values[s].

    Returns:
      {"matrix": [C][K] floats, mean over seeds of |rho|;
       "signed_matrix": [C][K] floats, mean over seeds of rho (direction of the effect);
       "controllability": float, mean of the diagonal matrix[c][c] (higher: the control moves its
         attribute monotonically);
       "leakage": float, mean of the off-diagonal entries matrix[c][k], k != c (lower: the control
         leaves the other attributes alone); 0.0 when C = K = 1 (nothing off the diagonal)}.
    """
    x = np.asarray(control_values)
    y = np.asarray(output_attributes)
    if x.ndim != 1:
        raise ValueError(f"control_values must be a 1-D array [S], got shape {x.shape}")
    if y.ndim != 4:
        raise ValueError(f"output_attributes must be a 4-D array [C, N, S, K], got shape {y.shape}")
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    c_ctrl, n_seeds, s_steps, k_attrs = y.shape
    if x.shape[0] < 2:
        raise ValueError(f"a sweep needs at least 2 control values, got {x.shape[0]}")
    if s_steps != x.shape[0]:
        raise ValueError(f"output_attributes has {s_steps} sweep steps but control_values has {x.shape[0]}")
    if c_ctrl == 0 or n_seeds == 0:
        raise ValueError(f"output_attributes needs at least one control and one seed, got shape {y.shape}")
    if k_attrs < c_ctrl:
        raise ValueError(f"{c_ctrl} controls but only {k_attrs} measured attributes; "
                         "the first C attributes must be the controlled ones")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("control_values and output_attributes must be finite (no NaN or inf)")
    if _is_constant(x):
        raise ValueError("control_values are all equal: the control is not swept")

    rx = stats.rankdata(x)
    rx = rx - rx.mean()
    ry = stats.rankdata(y, axis=2)
    ry = ry - ry.mean(axis=2, keepdims=True)
    num = np.einsum("cnsk,s->cnk", ry, rx)
    den = np.linalg.norm(ry, axis=2) * np.linalg.norm(rx)
    valid = ~_is_constant(y, axis=2) & (den > 0)
    rho = np.clip(np.divide(num, den, out=np.zeros(den.shape), where=valid), -1.0, 1.0)

    matrix = np.abs(rho).mean(axis=1)
    diag = np.arange(c_ctrl)
    off = np.ones((c_ctrl, k_attrs), bool)
    off[diag, diag] = False
    return {
        "matrix": matrix.tolist(),
        "signed_matrix": rho.mean(axis=1).tolist(),
        "controllability": float(matrix[diag, diag].mean()),
        "leakage": float(matrix[off].mean()) if off.any() else 0.0,
    }
