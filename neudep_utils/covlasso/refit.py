"""Post-processing of CovLasso solutions: least squares on a support (lam = 0 on the allowed
block), refits of a solution, and residuals."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from . import _validate as V
from .certificates import residual_raw
from .results import CovLassoPath, CovLassoResult

_EPS = float(np.finfo(np.float64).eps)

# ---------------------------------------------------------------------------------------------
# lam = 0: least squares on the allowed block
# ---------------------------------------------------------------------------------------------


def _lstsq_batched(S: np.ndarray, targets: np.ndarray, allowed: np.ndarray, coef: np.ndarray,
                   rcond: float = 1e-10) -> np.ndarray:
    """Least squares for groups of targets sharing one allowed block, one factorization a group.

    Targets whose allowed set plus themselves is a shared set ``C`` use the inverse of ``S_CC``
    (``theta = -P[:, i] / P_ii``); targets sharing the allowed set itself (cross-model blocks) use
    one eigen-solve of ``S_CC`` for all their right-hand sides. Only well-conditioned blocks
    (``lambda_min > rcond * lambda_max``) are handled; returns the mask of targets solved.
    """
    T, n = allowed.shape
    done = np.zeros(T, dtype=bool)
    with_t = allowed.copy()
    with_t[np.arange(T), targets] = True
    for keys, include_target in ((with_t, True), (allowed, False)):
        groups: dict[bytes, list[int]] = {}
        for t in np.flatnonzero(~done):
            groups.setdefault(np.packbits(keys[t]).tobytes(), []).append(int(t))
        for members in groups.values():
            if len(members) < 2:
                continue
            C = np.flatnonzero(keys[members[0]])
            if C.size == 0:
                continue
            w, Vec = np.linalg.eigh(S[np.ix_(C, C)])
            if not (w[0] > rcond * max(w[-1], 0.0) > 0):
                continue
            m = np.asarray(members)
            if include_target:
                P = (Vec / w) @ Vec.T  # inverse of S_CC
                pos = np.searchsorted(C, targets[m])
                sol = -P[:, pos] / P[pos, pos]  # (|C|, len(m))
                sol[pos, np.arange(m.size)] = 0.0
            else:
                sol = (Vec / w) @ (Vec.T @ S[np.ix_(C, targets[m])])
            coef[np.ix_(m, C)] = sol.T
            done[m] = True
    return done


def _lstsq_targets(
    S: np.ndarray, targets: np.ndarray, allowed: np.ndarray, coef: np.ndarray
) -> None:
    """Min-norm least squares per target on its allowed block, through a factor of S."""
    todo = ~_lstsq_batched(S, targets, allowed, coef)
    if not todo.any():
        return
    w, Vec = np.linalg.eigh(S)
    cut = max(w.max(), 0.0) * S.shape[0] * _EPS
    keep = w > cut
    X = np.sqrt(w[keep])[:, None] * Vec[:, keep].T  # (r, n), S ~= X^T X
    for t, i in enumerate(targets):
        if not todo[t]:
            continue
        a = np.flatnonzero(allowed[t])
        if a.size == 0 or X.shape[0] == 0:
            continue
        sol, *_ = np.linalg.lstsq(X[:, a], X[:, i], rcond=None)
        coef[t, a] = sol


# ---------------------------------------------------------------------------------------------
# post-processing
# ---------------------------------------------------------------------------------------------


def lstsq_on_support(S: np.ndarray, targets: np.ndarray, cols: np.ndarray,
                     rcond: float = 1e-10) -> np.ndarray:
    """The one least squares on a support: for each target ``targets[t]``, the solution of
    ``S_AA x = S_{A,i}`` on its partner columns ``A = cols[t]`` (-1 padded).

    Parameters
    ----------
    S : (n, n) PSD moment matrix (centred covariance: ordinary least squares with intercept).
    targets : (T,) int target columns.
    cols : (T, m) int partner columns, -1 where padded.
    rcond : blocks whose Cholesky factor is worse conditioned than ``rcond`` (on the eigenvalue
        scale) get the minimum-norm solution instead (pseudo-inverse dropping eigenvalues below
        ``rcond * lambda_max``), so collinear partners stay finite.

    Returns
    -------
    (T, m) coefficients aligned with ``cols`` (0 where padded).
    """
    import scipy.linalg

    S = np.asarray(S, dtype=np.float64)
    t = np.asarray(targets, np.int64)
    cols = np.asarray(cols, np.int64)
    out = np.zeros(cols.shape)
    # LAPACK's potrf / potrs called directly: what scipy.linalg.cho_factor / cho_solve
    # (check_finite=False) call with the same arguments, without their per-call wrappers (a
    # third of the time of thousands of small solves); the same numbers
    potrf, potrs = scipy.linalg.get_lapack_funcs(("potrf", "potrs"), (S,))
    for r in range(t.size):
        ok = np.flatnonzero(cols[r] >= 0)
        if ok.size == 0:
            continue
        a = cols[r, ok]
        G, rhs = S[a[:, None], a], S[a, t[r]]
        c, info = potrf(G, lower=False, overwrite_a=False, clean=False)
        if info < 0:
            raise ValueError(f"LAPACK potrf: illegal value in argument {-info}")
        d = np.abs(np.diag(c))
        if info == 0 and not d.min() ** 2 <= rcond * d.max() ** 2:
            x, info = potrs(c, rhs, lower=False, overwrite_b=False)
            if info != 0:
                raise ValueError(f"LAPACK potrs: illegal value in argument {-info}")
            out[r, ok] = x
        else:  # not positive definite, or ill-conditioned: minimum norm
            w, Vec = np.linalg.eigh(G)
            keep = w > rcond * max(float(w.max()), 0.0)
            out[r, ok] = Vec[:, keep] @ ((Vec[:, keep].T @ rhs) / w[keep])
    return out


def refit(
    S: np.ndarray,
    coef: np.ndarray | CovLassoResult | CovLassoPath,
    targets: Sequence[int] | np.ndarray | None = None,
    candidates: np.ndarray | None = None,
    *,
    psd_tol: float | None = V.PSD_RTOL,
) -> np.ndarray:
    """Least squares restricted to each row's support (relaxed lasso).

    Solves ``S_AA x = S_Ai`` on the support block through :func:`lstsq_on_support` (Cholesky;
    minimum norm for singular supports). The support is the finite non-zero entries: NaN or inf
    coefficients are not support (a ``RuntimeWarning`` names their rows).

    Parameters
    ----------
    S : array_like, shape (n, n)
    coef : array_like, shape (T, n) or (L, T, n), or CovLassoResult or CovLassoPath
        Coefficients whose supports are refitted; a result of :func:`solve` (or :func:`path`)
        stands for its ``coef`` (``coefs``) and its ``targets``.
    targets : sequence of int, shape (T,), optional
        Defaults to the result's targets, else ``0..T-1`` (only allowed when T == n).
    candidates : ndarray of bool, shape (n,) or (T, n), optional
        Further restricts the support.
    psd_tol : float or None
        As in :func:`solve` (checked once).

    Returns
    -------
    coef : ndarray, same shape as ``coef``
    """
    if isinstance(coef, (CovLassoResult, CovLassoPath)):
        if targets is None:
            targets = coef.targets
        coef = coef.coef if isinstance(coef, CovLassoResult) else coef.coefs
    elif not isinstance(coef, (np.ndarray, list, tuple)) and not hasattr(coef, "__array__"):
        raise TypeError(f"refit(S, coef): coef must be an array of coefficients or a "
                        f"CovLassoResult from solve(); got {type(coef).__name__}")
    S = V.check_S(S)
    if psd_tol is not None:
        V.check_psd(S, psd_tol)
    n = S.shape[0]
    c = np.asarray(coef, dtype=np.float64)
    if c.ndim == 3:
        return np.stack([refit(S, ci, targets, candidates, psd_tol=None) for ci in c])
    if c.ndim != 2 or c.shape[1] != n:
        raise ValueError(f"coef must have shape (T, n) or (L, T, n) with n = {n}; got {c.shape}")
    T = c.shape[0]
    if targets is None and T != n:
        raise ValueError(f"coef has {T} rows != n = {n}; pass targets= to say which row is which")
    t = V.check_targets(targets, n)
    if t.size != T:
        raise ValueError(f"targets has {t.size} entries but coef has {T} rows")
    finite = np.isfinite(c)
    if not finite.all():
        bad = np.flatnonzero(~finite.all(axis=1))
        warnings.warn(f"refit: coef has NaN or inf in {bad.size} row(s) (e.g. rows "
                      f"{bad[:5].tolist()}); those entries are not counted as support",
                      RuntimeWarning, stacklevel=2)
    support = finite & (c != 0) & V.allowed_masks(S, t, V.check_candidates(candidates, n, T))
    m = max(int(support.sum(1).max(initial=0)), 1)
    order = np.argsort(~support, axis=1, kind="stable")[:, :m]
    cols = np.where(np.take_along_axis(support, order, axis=1), order, -1)
    sol = lstsq_on_support(S, t, cols)
    out = np.zeros_like(c)
    keep = cols.ravel() >= 0
    rows = np.repeat(np.arange(T), m)[keep]
    out[rows, cols.ravel()[keep]] = sol.ravel()[keep]
    return out


def residual(
    S: np.ndarray, coef: np.ndarray, targets: Sequence[int] | np.ndarray | None = None
) -> np.ndarray:
    """Unpenalised residual ``E[(f_i - theta^T f)^2] = S_ii - 2 theta^T S_i + theta^T S theta``.

    Parameters
    ----------
    S : array_like, shape (n, n)
    coef : array_like, shape (T, n)
    targets : sequence of int, shape (T,), optional
        Defaults to all n (only when T == n).

    Returns
    -------
    residual : ndarray, shape (T,)
        Clipped at 0 (rounding).
    """
    S = V.check_S(S)
    n = S.shape[0]
    c = np.atleast_2d(np.asarray(coef, dtype=np.float64))
    if c.ndim != 2 or c.shape[1] != n:
        raise ValueError(f"coef must have shape (T, n) with n = {n}; got {c.shape}")
    if targets is None and c.shape[0] != n:
        raise ValueError(f"coef has {c.shape[0]} rows != n = {n}; pass targets=")
    t = V.check_targets(targets, n)
    if t.size != c.shape[0]:
        raise ValueError(f"targets has {t.size} entries but coef has {c.shape[0]} rows")
    return residual_raw(S, c, t)


def relative_residual(
    S: np.ndarray, coef: np.ndarray, targets: Sequence[int] | np.ndarray | None = None
) -> np.ndarray:
    """:func:`residual` divided by ``S_ii``.

    With a centred covariance S this is ``1 - R^2`` (S_ii is the variance of f_i). With the
    uncentred second moment it is the residual relative to ``E[f_i^2]`` (no intercept), which is
    smaller than ``1 - R^2`` whenever the logit has a non-zero mean.

    Parameters
    ----------
    S, coef, targets
        As in :func:`residual`.

    Returns
    -------
    relative_residual : ndarray, shape (T,)
        NaN where ``S_ii == 0``.
    """
    S = V.check_S(S)
    n = S.shape[0]
    t = V.check_targets(targets, n) if targets is not None else np.arange(n)
    r = residual(S, coef, targets)
    d = S[t, t]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(d > 0, r / np.where(d > 0, d, 1.0), np.nan)
