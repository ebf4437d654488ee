"""Reference solvers for tests and benchmarks: cvxpy and scikit-learn, one target at a time.

They solve the same problem on a factor ``X`` (r, n) with ``S = X^T X`` (:func:`psd_factor`) and
are far slower than :func:`neudep_utils.covlasso.solve`; cvxpy and scikit-learn are dev
dependencies, imported only when called. Check any output with
:func:`neudep_utils.covlasso.duality_gap`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from . import _validate as V

__all__ = ["psd_factor", "solve_cvxpy", "solve_sklearn"]

_EPS = float(np.finfo(np.float64).eps)


def psd_factor(S: np.ndarray) -> np.ndarray:
    """A factor ``X`` with ``S ~= X^T X`` from the eigen-decomposition.

    Negative and rounding-level eigenvalues (below ``n eps lambda_max``) are dropped.

    Parameters
    ----------
    S : array_like, shape (n, n)
        Symmetric PSD matrix.

    Returns
    -------
    X : ndarray, shape (r, n)
        ``r`` = the number of eigenvalues kept.
    """
    S = V.check_S(S)
    w, Vec = np.linalg.eigh(S)
    cut = max(float(w.max()), 0.0) * S.shape[0] * _EPS
    keep = w > cut
    return np.sqrt(w[keep])[:, None] * Vec[:, keep].T


def solve_cvxpy(
    S: np.ndarray,
    lam: float | np.ndarray,
    targets: Sequence[int] | np.ndarray | None = None,
    candidates: np.ndarray | None = None,
    solver: str = "CLARABEL",
    X: np.ndarray | None = None,
) -> np.ndarray:
    """Reference: one cvxpy least-squares + l1 problem per target on a factor of S.

    Parameters
    ----------
    S : array_like, shape (n, n)
    lam : float or array_like, shape (T,)
        Absolute penalty.
    targets : sequence of int, shape (T,), optional
    candidates : ndarray of bool, shape (n,) or (T, n), optional
    solver : str, default "CLARABEL"
        cvxpy solver name (CLARABEL runs with tolerances 1e-12).
    X : ndarray, shape (r, n), optional
        A factor with ``S = X^T X``, to skip the eigen-decomposition.

    Returns
    -------
    coef : ndarray, shape (T, n)
    """
    import cvxpy as cp

    S, t, lams, allowed = V.prepare(S, lam, targets, candidates)
    if X is None:
        X = psd_factor(S)
    coef = np.zeros((t.size, S.shape[0]))
    for r, i in enumerate(t):
        a = np.flatnonzero(allowed[r])
        if a.size == 0:
            continue
        th = cp.Variable(a.size)
        loss = cp.sum_squares(X[:, i] - X[:, a] @ th)
        prob = cp.Problem(cp.Minimize(loss + lams[r] * cp.norm1(th)))
        if solver == "CLARABEL":
            prob.solve(solver=solver, tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12,
                       max_iter=500)
        else:
            prob.solve(solver=solver)
        coef[r, a] = th.value
    return coef


def solve_sklearn(
    S: np.ndarray,
    lam: float | np.ndarray,
    targets: Sequence[int] | np.ndarray | None = None,
    candidates: np.ndarray | None = None,
    method: str = "cd",
    tol: float = 1e-12,
    max_iter: int = 100_000,
    X: np.ndarray | None = None,
) -> np.ndarray:
    """Reference: scikit-learn per target with the Gram matrix precomputed.

    scikit-learn minimises ``1/(2 N) ||y - X w||^2 + alpha ||w||_1``; with a factor X (N = r
    rows, ``X^T X = S``) this is ``P / (2 N)`` with ``alpha = lam / (2 N)``.

    Parameters
    ----------
    S : array_like, shape (n, n)
    lam : float or array_like, shape (T,)
        Absolute penalty.
    targets : sequence of int, shape (T,), optional
    candidates : ndarray of bool, shape (n,) or (T, n), optional
    method : {"cd", "lars"}, default "cd"
        ``Lasso(precompute=Gram)`` or ``LassoLars(precompute=Gram)``.
    tol : float, default 1e-12
        scikit-learn's tolerance (``cd`` only).
    max_iter : int, default 100000
    X : ndarray, shape (r, n), optional
        A factor with ``S = X^T X``, to skip the eigen-decomposition.

    Returns
    -------
    coef : ndarray, shape (T, n)
    """
    from sklearn.linear_model import Lasso, LassoLars

    S, t, lams, allowed = V.prepare(S, lam, targets, candidates)
    if method not in ("cd", "lars"):
        raise ValueError(f"method must be 'cd' or 'lars'; got {method!r}")
    if X is None:
        X = psd_factor(S)
    N = X.shape[0]
    coef = np.zeros((t.size, S.shape[0]))
    for r, i in enumerate(t):
        a = np.flatnonzero(allowed[r])
        if a.size == 0 or N == 0:
            continue
        Xa = np.asfortranarray(X[:, a])
        y = X[:, i]
        gram = np.ascontiguousarray(S[np.ix_(a, a)])
        alpha = lams[r] / (2.0 * N)
        if method == "cd":
            m = Lasso(alpha=alpha, fit_intercept=False, precompute=gram, tol=tol,
                      max_iter=max_iter, selection="cyclic")
        else:
            m = LassoLars(alpha=alpha, fit_intercept=False, precompute=gram, max_iter=max_iter,
                          eps=_EPS)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m.fit(Xa, y)
        coef[r, a] = m.coef_
    return coef
