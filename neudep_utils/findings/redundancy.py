"""Covariance redundancy and sparsity (notebook 03): spectra, effective rank, residual identities,
category-subset experiments covering every category, whether a target's redundancy predicts the
support its dependency needs, and the bootstrap stability of the selected partners.

Conventions: rows are logit vectors (one per image view); ``S`` is a PSD moment matrix (the
centred covariance unless said otherwise). For a target ``i`` the *unregularized residual* is
``r_i = min_theta E[(f_i - theta^T f_{-i})^2] = S_ii - S_{i,-i} S_{-i,-i}^+ S_{-i,i}``, which equals
``1 / (S^-1)_ii`` when ``S`` is invertible and is bounded below by ``lambda_min(S)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.linalg
from scipy.stats import rankdata
from tqdm.auto import tqdm

from .. import covlasso
from ..dependencies import Fold, dense_least_squares, depset_from_coef
from ..metrics import bootstrap_ci, evaluate, metric_ci
from ..moments import second_moment

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
    refits, ``rr_lasso`` (L, T) of the raw lasso coefficients, ``gap`` (L, T) relative duality
    gaps, and the coefficients ``coef`` and ``refit`` (L, T, n).
    """
    p = covlasso.path(C, targets=targets, lam_ratios=np.asarray(lam_ratios), tol=tol, warn=False)
    L = p.coefs.shape[0]
    k = p.support_size
    rr = np.empty((L, len(targets)))
    rr_l = np.empty((L, len(targets)))
    refit = np.empty_like(p.coefs)
    for ell in range(L):
        refit[ell] = covlasso.refit(C, p.coefs[ell], targets=targets, psd_tol=None)
        rr[ell] = oos_relative_residual(refit[ell], targets, mu, X_eval)
        rr_l[ell] = oos_relative_residual(p.coefs[ell], targets, mu, X_eval)
    return {"k": k, "rr": rr, "rr_lasso": rr_l, "gap": p.relative_gap, "coef": p.coefs,
            "refit": refit}


@dataclass
class PathStudy:
    """One model's CovLasso path over all its targets, judged out of sample.

    ``k``, ``rr`` (L, T): support size and held-out 1 - R^2 of the least-squares refit at each
    lam; ``gap`` (L, T) relative duality gaps; ``r_in`` (T,) in-sample unregularized relative
    residual (minimum-norm least squares on all other logits); ``k_needed`` (T,) the smallest
    support reaching held-out 1 - R^2 <= ``threshold`` (NaN: never); ``k_median`` (L,),
    ``acc_replaced`` (L,) pooled held-out target-class accuracy after replacement with the refit,
    ``drop_ci`` (L, 2) 95% interval of its drop against the unmodified model ``acc_base``;
    ``k_functional``: the smallest median support at which the upper end of that interval is
    within ``tolerance`` (NaN: never along the path).
    """

    lam_ratios: np.ndarray
    targets: np.ndarray
    k: np.ndarray
    rr: np.ndarray
    gap: np.ndarray
    r_in: np.ndarray
    k_needed: np.ndarray
    k_median: np.ndarray
    acc_replaced: np.ndarray
    acc_base: float
    drop_ci: np.ndarray
    k_functional: float
    coef: np.ndarray | None = None


def path_study(data, fold: Fold, lam_ratios: Sequence[float], threshold: float,
               targets: np.ndarray | None = None, tolerance: float = 0.05, n_boot: int = 1000,
               keep_coef: int = 0) -> PathStudy:
    """The CovLasso path of every target on ``fold``'s moments (``data``: the
    :class:`~neudep_utils.cache.LogitData` the fold indexes), each point refitted by least
    squares and judged on the fold's eval images: fidelity (1 - R^2), and C1's functional
    criterion, target-class accuracy after replacement. ``keep_coef``: keep the path
    coefficients of the first ``keep_coef`` targets (for plots)."""

    t = np.arange(data.n_classes) if targets is None else np.asarray(targets)
    X_eval = data.centre_view(fold.eval_idx).astype(np.float64)
    lp = lasso_path_fidelity(fold.S, fold.mu, X_eval, t, lam_ratios)
    L = lp["k"].shape[0]
    acc, drop = np.empty(L), np.empty((L, 2))
    base = float("nan")
    for ell in range(L):
        dep = depset_from_coef(fold, t, lp["refit"][ell], "CovLasso support + LS")
        m = evaluate(data, [fold], [dep])
        acc[ell], base = m.summary()["acc_replaced"], m.summary()["acc_base"]
        drop[ell] = metric_ci(m, "acc_drop", n_boot, 0)
    dense = dense_least_squares(fold, t).dense()
    r_in = covlasso.residual(fold.S, dense, t) / np.diag(fold.S)[t]
    k_med = np.median(lp["k"], axis=1)
    ok = drop[:, 1] <= tolerance
    return PathStudy(np.asarray(lam_ratios, float), t, lp["k"], lp["rr"], lp["gap"], r_in,
                     k_at_fidelity(lp["k"], lp["rr"], threshold), k_med, acc, base, drop,
                     float(k_med[ok].min()) if ok.any() else float("nan"),
                     lp["coef"][:, :keep_coef] if keep_coef else None)


# --------------------------------------------------------------------------------------------
# Category subsets
# --------------------------------------------------------------------------------------------


def covering_subsets(n: int, K: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Random subsets of ``K`` of the ``n`` categories in which every category is a target exactly
    once: ``[(subset, target positions inside it), ...]``. The categories are dealt in a seeded
    order into groups of ``K``; the leftover ones form one more subset, completed with random
    other categories that are not targets there."""
    if not 2 <= K <= n:
        raise ValueError(f"subset size {K} must be between 2 and {n}")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    m = n - n % K
    out = [(perm[i:i + K], np.arange(K)) for i in range(0, m, K)]
    rest = perm[m:]
    if rest.size:
        fill = rng.choice(perm[:m], K - rest.size, replace=False)
        out.append((np.concatenate([rest, fill]), np.arange(rest.size)))
    return out


@dataclass
class SubsetResult:
    """Per (seed, K, target) numbers of :func:`subset_experiment` as flat arrays."""

    seed: np.ndarray
    K: np.ndarray
    target: np.ndarray
    r_in: np.ndarray  # in-sample unregularized relative residual r_i / C_ii (0: exact)
    lam_min_rel: np.ndarray  # lambda_min(C_K) / C_ii
    rr_ols: np.ndarray  # out-of-sample 1 - R^2 of least squares on all K-1 others
    rr_best: np.ndarray  # best out-of-sample 1 - R^2 over the CovLasso path (refit)
    k_best: np.ndarray  # support size at that best point
    k_fid: np.ndarray  # smallest k with out-of-sample 1 - R^2 <= threshold (NaN: never)

    def frame(self):
        """As a pandas DataFrame."""
        return pd.DataFrame({f: getattr(self, f) for f in self.__dataclass_fields__})


def subset_experiment(X_fit: np.ndarray, X_eval: np.ndarray, sizes: Sequence[int],
                      seeds: Sequence[int], lam_ratios: Sequence[float], threshold: float,
                      progress: bool = True) -> SubsetResult:
    """Redundancy and dependency size as the number of categories K grows, for every category.

    For each seed and K, :func:`covering_subsets` makes every category a target once inside a
    random subset of K categories. On each subset: the centred covariance of the fit rows
    restricted to it, each target's in-sample unregularized relative residual (minimum-norm least
    squares on the other K - 1; 0 when the target is in their span), ``lambda_min``, the
    out-of-sample residual of that least squares, and a CovLasso path with refits giving the best
    out-of-sample residual and the smallest support reaching ``threshold``. With K = n there is
    one subset (all categories), computed once and shared by the seeds.
    """
    n = X_fit.shape[1]
    mu_all = X_fit.mean(axis=0)
    C_all = second_moment(X_fit, center=True)
    rows: dict[str, list] = {f: [] for f in SubsetResult.__dataclass_fields__}
    done: dict[int, list[tuple]] = {}
    jobs = [(s, K) for s in seeds for K in sizes]
    for s, K in tqdm(jobs, disable=not progress, desc="category subsets"):
        if K == n and n in done:
            parts = done[n]
        else:
            parts = []
            for sub, tpos in covering_subsets(n, K, s):
                C = C_all[np.ix_(sub, sub)]
                eig = spectrum(C)
                diag = np.diag(C)[tpos]
                fold = Fold(C, mu_all[sub], True, np.arange(0), None, X_fit.shape[0])
                coef = dense_least_squares(fold, tpos).dense()
                r_in = covlasso.residual(C, coef, tpos)
                rr_ols = oos_relative_residual(coef, tpos, mu_all[sub], X_eval[:, sub])
                lp = lasso_path_fidelity(C, mu_all[sub], X_eval[:, sub], tpos, lam_ratios)
                best = lp["rr"].argmin(axis=0)
                T = tpos.size
                parts.append((sub[tpos], r_in / diag, eig[-1] / diag, rr_ols,
                              lp["rr"][best, np.arange(T)], lp["k"][best, np.arange(T)],
                              k_at_fidelity(lp["k"], lp["rr"], threshold)))
            if K == n:
                done[n] = parts
        for tg, r_in, lmin, rr_ols, rr_best, k_best, k_fid in parts:
            rows["seed"].append(np.full(tg.size, s))
            rows["K"].append(np.full(tg.size, K))
            rows["target"].append(tg)
            for f, v in (("r_in", r_in), ("lam_min_rel", lmin), ("rr_ols", rr_ols),
                         ("rr_best", rr_best), ("k_best", k_best), ("k_fid", k_fid)):
                rows[f].append(v)
    return SubsetResult(**{f: np.concatenate(v) for f, v in rows.items()})


def redundancy_predicts_support(redundancy: np.ndarray, k_needed: np.ndarray,
                                n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """Does a target's covariance redundancy predict the support size its dependency needs?

    ``redundancy`` (T,): e.g. the in-sample unregularized relative residual ``r_i / S_ii`` (small
    = redundant); ``k_needed`` (T,): the smallest support reaching a held-out fidelity (``inf`` or
    NaN: never reached, ranked last). The paper's theory predicts a positive rank correlation (the
    more redundant, the fewer partners). Returns Spearman's rho over the targets, its 95%
    bootstrap interval (targets resampled), the number of targets, and how many reached the
    fidelity.
    """
    r = np.asarray(redundancy, float)
    k = np.where(np.isfinite(np.asarray(k_needed, float)), k_needed, np.inf)
    ok = np.isfinite(r)
    r, k = r[ok], k[ok]
    if r.size < 3 or np.ptp(r) == 0:
        return {"rho": float("nan"), "ci": (float("nan"), float("nan")), "n": int(r.size),
                "n_reached": int(np.isfinite(k).sum())}
    ra, rb = rankdata(r), rankdata(k)

    def rho(W):
        sw = W.sum(1, keepdims=True)
        ma, mb = (W @ ra)[:, None] / sw, (W @ rb)[:, None] / sw
        cov = (W * (ra - ma) * (rb - mb)).sum(1)
        va = (W * (ra - ma) ** 2).sum(1)
        vb = (W * (rb - mb) ** 2).sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return cov / np.sqrt(va * vb)

    point = float(rho(np.ones((1, r.size)))[0])
    return {"rho": point, "ci": bootstrap_ci(rho, r.size, n_boot, seed), "n": int(r.size),
            "n_reached": int(np.isfinite(k).sum())}


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
