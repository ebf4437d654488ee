"""Covariance redundancy and sparsity (notebook 03): spectra, effective rank, residual identities,
category-subset experiments, bootstrap stability and a bottleneck head.

Conventions: rows are logit vectors (one per image view); ``S`` is a PSD moment matrix (the
centred covariance unless said otherwise). For a target ``i`` the *unregularized residual* is
``r_i = min_theta E[(f_i - theta^T f_{-i})^2] = S_ii - S_{i,-i} S_{-i,-i}^+ S_{-i,i}``, which equals
``1 / (S^-1)_ii`` when ``S`` is invertible and is bounded below by ``lambda_min(S)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from . import covlasso
from .moments import second_moment

_EPS = np.finfo(np.float64).eps


# --------------------------------------------------------------------------------------------
# Spectra
# --------------------------------------------------------------------------------------------


def spectrum(S: np.ndarray) -> np.ndarray:
    """Eigenvalues of a symmetric PSD matrix, descending, negatives (rounding) clipped to 0."""
    return np.clip(np.linalg.eigvalsh(np.asarray(S, dtype=np.float64))[::-1], 0.0, None)


def numerical_rank(eigs: np.ndarray, rtol: float | None = None) -> int:
    """Number of eigenvalues above ``rtol * max`` (default ``n * eps``, numpy's matrix_rank rule)."""
    e = np.asarray(eigs, dtype=np.float64)
    if e.size == 0 or e.max() <= 0:
        return 0
    tol = (e.size * _EPS if rtol is None else rtol) * e.max()
    return int((e > tol).sum())


def effective_rank(eigs: np.ndarray, kind: str = "entropy") -> float:
    """Effective rank of a spectrum.

    ``"entropy"``: ``exp(H(p))`` with ``p = lambda / sum(lambda)`` (Roy & Vetterli 2007);
    ``"participation"``: ``(sum lambda)^2 / sum lambda^2``. Both equal ``m`` for ``m`` equal
    non-zero eigenvalues and ``1`` for a rank-one matrix.
    """
    e = np.clip(np.asarray(eigs, dtype=np.float64), 0.0, None)
    tot = e.sum()
    if tot <= 0:
        return 0.0
    if kind == "entropy":
        p = e[e > 0] / tot
        return float(np.exp(-(p * np.log(p)).sum()))
    if kind == "participation":
        return float(tot**2 / (e**2).sum())
    raise ValueError(f"kind must be 'entropy' or 'participation', got {kind!r}")


def variance_rank(eigs: np.ndarray, frac: float = 0.99) -> int:
    """Smallest number of eigenvalues holding ``frac`` of the total variance."""
    e = np.sort(np.clip(np.asarray(eigs, dtype=np.float64), 0.0, None))[::-1]
    c = np.cumsum(e) / e.sum()
    return int(np.searchsorted(c, frac) + 1)


# --------------------------------------------------------------------------------------------
# Residual identities
# --------------------------------------------------------------------------------------------


def residual_inverse(S: np.ndarray, ridge: float = 0.0) -> np.ndarray:
    """``1 / ((S + ridge I)^-1)_ii`` for every i (the identity; needs S + ridge I invertible).

    With ``ridge > 0`` this is the residual of the ridge regression of ``f_i`` on the others
    *plus* the ridge penalty; the closed form of its coefficients is :func:`all_target_coef`.
    """
    A = np.asarray(S, dtype=np.float64) + ridge * np.eye(S.shape[0])
    P = np.linalg.inv(A)
    return 1.0 / np.diag(P)


def residual_schur(S: np.ndarray, targets: Sequence[int] | np.ndarray) -> np.ndarray:
    """Direct ``S_ii - S_{i,-i} x`` with ``x`` the min-norm least-squares solution of
    ``S_{-i,-i} x = S_{-i,i}`` (valid for singular S too)."""
    S = np.asarray(S, dtype=np.float64)
    n = S.shape[0]
    out = np.empty(len(targets))
    for r, i in enumerate(np.asarray(targets)):
        o = np.delete(np.arange(n), i)
        A, y = S[np.ix_(o, o)], S[o, i]
        try:  # positive definite block: Cholesky; else min-norm least squares
            x = scipy.linalg.solve(A, y, assume_a="pos")
        except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
            x = scipy.linalg.lstsq(A, y, lapack_driver="gelsy")[0]
        out[r] = max(S[i, i] - S[i, o] @ x, 0.0)
    return out


def all_target_coef(S: np.ndarray, ridge: float = 0.0) -> np.ndarray:
    """Coefficients ``theta_i`` (row i, ``theta_ii = 0``) of the regression of every ``f_i`` on all
    other logits, from one inverse: ``theta_i = -P_{-i,i} / P_ii`` with ``P = (S + ridge I)^-1``,
    i.e. the solution of ``(S_{-i,-i} + ridge I) theta = S_{-i,i}``."""
    n = S.shape[0]
    P = np.linalg.inv(np.asarray(S, dtype=np.float64) + ridge * np.eye(n))
    coef = -P / np.diag(P)[None, :]  # column i holds theta_i
    coef = coef.T.copy()
    np.fill_diagonal(coef, 0.0)
    return coef


# --------------------------------------------------------------------------------------------
# Out-of-sample fidelity
# --------------------------------------------------------------------------------------------


def oos_relative_residual(coef: np.ndarray, targets: np.ndarray, mu_fit: np.ndarray,
                          X_eval: np.ndarray) -> np.ndarray:
    """Out-of-sample ``1 - R^2`` of ``f_i ~ mu_i + theta^T (f - mu)`` (intercept from the fit mean)
    on eval rows: mean squared error over the eval variance of ``f_i``. ``coef`` (T, n)."""
    Xc = np.asarray(X_eval, dtype=np.float64) - mu_fit
    pred = Xc @ coef.T  # (N, T)
    err = Xc[:, targets] - pred
    var = np.asarray(X_eval, dtype=np.float64)[:, targets].var(axis=0)
    return (err**2).mean(axis=0) / var


def k_at_fidelity(k: np.ndarray, rr: np.ndarray, threshold: float) -> np.ndarray:
    """Per target (columns), the smallest support size ``k`` among path points with relative
    residual ``<= threshold``; NaN where the path never reaches it. ``k``, ``rr``: (L, T)."""
    ok = rr <= threshold
    kk = np.where(ok, k, np.inf).min(axis=0)
    return np.where(np.isfinite(kk), kk, np.nan)


def lasso_path_fidelity(C: np.ndarray, mu: np.ndarray, X_eval: np.ndarray, targets: np.ndarray,
                        lam_ratios: Sequence[float], tol: float = 1e-6) -> dict[str, np.ndarray]:
    """CovLasso path on ``C`` (fit), least-squares refit on each support, out-of-sample ``1 - R^2``.

    Returns ``k`` (L, T) support sizes, ``rr`` (L, T) out-of-sample relative residuals of the
    refits, ``rr_lasso`` (L, T) of the raw lasso coefficients, and ``gap`` (L, T) relative duality
    gaps.
    """
    p = covlasso.path(C, targets=targets, lam_ratios=np.asarray(lam_ratios), tol=tol, warn=False)
    L = p.coefs.shape[0]
    k = p.support_size
    rr = np.empty((L, len(targets)))
    rr_l = np.empty((L, len(targets)))
    for ell in range(L):
        ref = covlasso.refit(C, p.coefs[ell], targets=targets)
        rr[ell] = oos_relative_residual(ref, targets, mu, X_eval)
        rr_l[ell] = oos_relative_residual(p.coefs[ell], targets, mu, X_eval)
    return {"k": k, "rr": rr, "rr_lasso": rr_l, "gap": p.relative_gap, "coef": p.coefs}


# --------------------------------------------------------------------------------------------
# Category subsets
# --------------------------------------------------------------------------------------------


def nested_subsets(n: int, targets: np.ndarray, sizes: Sequence[int], seed: int) -> list[np.ndarray]:
    """Nested random category subsets of the given sizes, each containing all ``targets`` first
    (so the target positions inside every subset are ``0..T-1``)."""
    targets = np.asarray(targets)
    rest = np.setdiff1d(np.arange(n), targets)
    rest = np.random.default_rng(seed).permutation(rest)
    out = []
    for K in sizes:
        if K < len(targets) or K > n:
            raise ValueError(f"subset size {K} must be between {len(targets)} and {n}")
        out.append(np.concatenate([targets, rest[:K - len(targets)]]))
    return out


@dataclass
class SubsetResult:
    """Per (seed, K, target) numbers of :func:`subset_experiment` as flat arrays."""

    seed: np.ndarray
    K: np.ndarray
    target: np.ndarray
    r_in: np.ndarray  # in-sample unregularized relative residual, 1/(C^-1)_ii / C_ii
    lam_min_rel: np.ndarray  # lambda_min(C_K) / C_ii
    rr_ols: np.ndarray  # out-of-sample 1 - R^2 of least squares on all K-1 others
    rr_best: np.ndarray  # best out-of-sample 1 - R^2 over the CovLasso path (refit)
    k_best: np.ndarray  # support size at that best point
    k_fid: np.ndarray  # smallest k with out-of-sample 1 - R^2 <= threshold (NaN: never)

    def frame(self):
        """As a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame({f: getattr(self, f) for f in self.__dataclass_fields__})


def subset_experiment(X_fit: np.ndarray, X_eval: np.ndarray, targets: np.ndarray,
                      sizes: Sequence[int], seeds: Sequence[int], lam_ratios: Sequence[float],
                      threshold: float, progress: bool = True) -> SubsetResult:
    """Redundancy and dependency size as the number of categories K grows.

    For each seed, nested random subsets of K categories (all containing ``targets``); on each:
    the centred covariance of the fit rows restricted to the subset, the in-sample unregularized
    residual (identity ``1/(C^-1)_ii``; 0 when C is singular), ``lambda_min``, the out-of-sample
    residual of least squares on all others, and a CovLasso path with refits, giving the best
    out-of-sample residual and the smallest support reaching ``threshold``.
    """
    from tqdm.auto import tqdm

    n = X_fit.shape[1]
    mu_all = X_fit.mean(axis=0)
    C_all = second_moment(X_fit, center=True)
    T = len(targets)
    rows: dict[str, list] = {f: [] for f in SubsetResult.__dataclass_fields__}
    tpos = np.arange(T)
    jobs = [(s, K) for s in seeds for K in sizes]
    subsets = {s: dict(zip(sizes, nested_subsets(n, targets, sizes, s), strict=True))
               for s in seeds}
    for s, K in tqdm(jobs, disable=not progress, desc="category subsets"):
        sub = subsets[s][K]
        C = C_all[np.ix_(sub, sub)]
        eig = spectrum(C)
        diag = np.diag(C)[tpos]
        rank = numerical_rank(eig)
        coef_ols = np.zeros((T, K))
        if rank == K:
            P = np.linalg.inv(C)
            r_in = 1.0 / np.diag(P)[tpos]
            coef_ols = -P[tpos] / np.diag(P)[tpos, None]
            coef_ols[tpos, tpos] = 0.0
        else:
            r_in = residual_schur(C, tpos)
            for t in range(T):
                o = np.delete(np.arange(K), t)
                coef_ols[t, o] = scipy.linalg.lstsq(C[np.ix_(o, o)], C[o, t],
                                                    lapack_driver="gelsy")[0]
        rr_ols = oos_relative_residual(coef_ols, tpos, mu_all[sub], X_eval[:, sub])
        lp = lasso_path_fidelity(C, mu_all[sub], X_eval[:, sub], tpos, lam_ratios)
        best = lp["rr"].argmin(axis=0)
        rows["seed"].append(np.full(T, s))
        rows["K"].append(np.full(T, K))
        rows["target"].append(np.asarray(targets))
        rows["r_in"].append(r_in / diag)
        rows["lam_min_rel"].append(eig[-1] / diag)
        rows["rr_ols"].append(rr_ols)
        rows["rr_best"].append(lp["rr"][best, np.arange(T)])
        rows["k_best"].append(lp["k"][best, np.arange(T)])
        rows["k_fid"].append(k_at_fidelity(lp["k"], lp["rr"], threshold))
    return SubsetResult(**{f: np.concatenate(v) for f, v in rows.items()})


# --------------------------------------------------------------------------------------------
# Bootstrap stability of the selected partners
# --------------------------------------------------------------------------------------------


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard index of two index sets (1 when both are empty)."""
    a, b = set(np.flatnonzero(a).tolist()), set(np.flatnonzero(b).tolist())
    return 1.0 if not a and not b else len(a & b) / len(a | b)


def bootstrap_supports(logits: np.ndarray, targets: np.ndarray, lam_ratio: float, n_boot: int,
                       seed: int = 0, progress: bool = True) -> dict[str, np.ndarray]:
    """CovLasso supports at ``lam_ratio * lam_max`` on the full fit sample and on ``n_boot``
    bootstrap resamples of *images* (all views of a drawn image go together).

    ``logits``: (images, views, n). Returns ``support`` (T, n) bool on the full sample,
    ``freq`` (T, n) selection frequency over resamples and ``jaccard`` (n_boot, T) against the
    full-sample support.
    """
    from tqdm.auto import tqdm

    n_img, _, n = logits.shape
    C = second_moment(logits.reshape(-1, n), center=True)
    full = covlasso.solve(C, covlasso.relative_lams(C, lam_ratio, targets)[0], targets,
                          tol=1e-6, warn=False).coef != 0
    rng = np.random.default_rng(seed)
    freq = np.zeros((len(targets), n))
    jac = np.zeros((n_boot, len(targets)))
    for b in tqdm(range(n_boot), disable=not progress, desc="bootstrap"):
        draw = rng.integers(0, n_img, n_img)
        Cb = second_moment(logits[draw].reshape(-1, n), center=True)
        sb = covlasso.solve(Cb, covlasso.relative_lams(Cb, lam_ratio, targets)[0], targets,
                            tol=1e-6, warn=False).coef != 0
        freq += sb
        jac[b] = [jaccard(full[t], sb[t]) for t in range(len(targets))]
    return {"support": full, "freq": freq / n_boot, "jaccard": jac}


# --------------------------------------------------------------------------------------------
# Bottleneck head (the width argument)
# --------------------------------------------------------------------------------------------


@dataclass
class BottleneckHead:
    """A rank-``d`` linear head ``f' = mu + P (W h + b - mu)`` with ``P = V_d V_d^T`` the projection
    on the top-``d`` principal directions of the fit logits: the reduced-rank regression of the
    original logits on the features (the best rank-d linear map in mean squared error on the fit
    rows). Equivalently a linear bottleneck of width ``d``: ``h -> V_d^T (W h + b - mu)`` (d units)
    ``-> mu + V_d z`` (1000 logits)."""

    W: np.ndarray  # (n, D) effective weight of the rank-d head
    b: np.ndarray  # (n,)
    d: int

    def __call__(self, H: np.ndarray) -> np.ndarray:
        return np.asarray(H, dtype=np.float64) @ self.W.T + self.b


def fit_bottleneck(W: np.ndarray, b: np.ndarray, H_fit: np.ndarray, d: int) -> BottleneckHead:
    """Reduced-rank regression of the head's logits ``W h + b`` on ``h`` at rank ``d``."""
    W = np.asarray(W, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    F = np.asarray(H_fit, dtype=np.float64) @ W.T + b
    mu = F.mean(axis=0)
    _, _, Vt = np.linalg.svd(F - mu, full_matrices=False)
    V = Vt[:d].T  # (n, d)
    P = V @ V.T
    return BottleneckHead(W=P @ W, b=mu + P @ (b - mu), d=d)
