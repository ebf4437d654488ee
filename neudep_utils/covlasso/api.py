"""The public CovLasso API: batched certified solves, warm-started paths and post-processing.

The numba kernels live in :mod:`._kernels`, the certificate in :mod:`.certificates`, input
checks in :mod:`._validate`; this module validates, dispatches and packages results.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numba
import numpy as np

from . import _validate as V
from ._kernels import lam_max_rows, solve_batch
from .certificates import residual_raw

_EPS = float(np.finfo(np.float64).eps)


# ---------------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------------


@dataclass
class CovLassoResult:
    """Solutions for a batch of T targets over n categories.

    Attributes
    ----------
    coef : ndarray, shape (T, n)
        ``coef[t]`` is theta for target ``targets[t]`` (exact zeros at the target and outside the
        candidates).
    objective : ndarray, shape (T,)
        ``P(theta)``.
    gap : ndarray, shape (T,)
        Duality gap in objective units, a certificate: ``objective - gap <= optimum <=
        objective``.
    lam : ndarray, shape (T,)
        Absolute penalty per target.
    targets : ndarray of int, shape (T,)
        Target indices.
    n_iter : ndarray of int, shape (T,)
        Coordinate sweeps (plus working-set rounds) per target, including the loose
        continuation solves at larger lams that a solve from zero starts with.
    converged : ndarray of bool, shape (T,)
        Whether ``gap <= tol * objective`` (or below the rounding floor) was reached within
        ``max_iter``.
    lam_max : ndarray, shape (T,)
        Smallest lam giving theta = 0, per target.
    """

    coef: np.ndarray
    objective: np.ndarray
    gap: np.ndarray
    lam: np.ndarray
    targets: np.ndarray
    n_iter: np.ndarray
    converged: np.ndarray
    lam_max: np.ndarray = field(default_factory=lambda: np.empty(0))

    @property
    def support_size(self) -> np.ndarray:
        """Number of non-zero coefficients k per target, shape (T,)."""
        return np.count_nonzero(self.coef, axis=1)

    @property
    def relative_gap(self) -> np.ndarray:
        """gap / objective (objective floored at the smallest positive float), shape (T,)."""
        return self.gap / np.maximum(self.objective, np.finfo(np.float64).tiny)

    def support(self, t: int) -> np.ndarray:
        """Indices of the non-zero coefficients of the ``t``-th target (row ``t``)."""
        return np.flatnonzero(self.coef[t])


@dataclass
class CovLassoPath:
    """A warm-started solution path over L lams for T targets (n categories).

    Attributes
    ----------
    coefs : ndarray, shape (L, T, n)
    objective, gap : ndarray, shape (L, T)
    lams : ndarray, shape (L, T)
        Absolute lams, in the order given.
    targets : ndarray of int, shape (T,)
    n_iter : ndarray of int, shape (L, T)
    converged : ndarray of bool, shape (L, T)
    lam_max : ndarray, shape (T,)
    """

    coefs: np.ndarray
    objective: np.ndarray
    gap: np.ndarray
    lams: np.ndarray
    targets: np.ndarray
    n_iter: np.ndarray
    converged: np.ndarray
    lam_max: np.ndarray = field(default_factory=lambda: np.empty(0))

    @property
    def support_size(self) -> np.ndarray:
        """(L, T) number of non-zero coefficients."""
        return np.count_nonzero(self.coefs, axis=2)

    @property
    def relative_gap(self) -> np.ndarray:
        """(L, T) gap / objective."""
        return self.gap / np.maximum(self.objective, np.finfo(np.float64).tiny)

    def __getitem__(self, ell: int) -> CovLassoResult:
        """The ``ell``-th point of the path as a :class:`CovLassoResult`."""
        return CovLassoResult(
            coef=self.coefs[ell],
            objective=self.objective[ell],
            gap=self.gap[ell],
            lam=self.lams[ell],
            targets=self.targets,
            n_iter=self.n_iter[ell],
            converged=self.converged[ell],
            lam_max=self.lam_max,
        )

    def __len__(self) -> int:
        return self.coefs.shape[0]


# ---------------------------------------------------------------------------------------------
# lam scale
# ---------------------------------------------------------------------------------------------


def _psd_tol(psd_tol: float) -> float:
    """``psd_tol`` checked: a finite number >= 0 (NaN would make every eigenvalue pass)."""
    if isinstance(psd_tol, (bool, np.bool_)) or not isinstance(psd_tol, (int, float, np.number)):
        raise ValueError(f"psd_tol must be a number >= 0 or None; got {psd_tol!r}")
    v = float(psd_tol)
    if not (np.isfinite(v) and v >= 0):
        raise ValueError(f"psd_tol must be a finite number >= 0 (or None to skip the check of an "
                         f"S already checked); got {psd_tol!r}")
    return v


def lam_max(
    S: np.ndarray,
    targets: Sequence[int] | np.ndarray | None = None,
    candidates: np.ndarray | None = None,
) -> np.ndarray:
    """The smallest lam giving theta = 0: ``max_j |2 S[j, i]|`` over the allowed ``j``.

    Parameters
    ----------
    S : array_like, shape (n, n)
        Symmetric PSD moment matrix.
    targets : sequence of int, shape (T,), optional
        Target indices (default: all n).
    candidates : ndarray of bool, shape (n,) or (T, n), optional
        Coefficients allowed to be non-zero.

    Returns
    -------
    lam_max : ndarray, shape (T,)
    """
    S = V.check_S(S)
    n = S.shape[0]
    t = V.check_targets(targets, n)
    allowed = V.allowed_masks(S, t, V.check_candidates(candidates, n, t.size))
    return lam_max_rows(S, t, allowed)


def relative_lams(
    S: np.ndarray,
    ratios: Sequence[float] | np.ndarray | float,
    targets: Sequence[int] | np.ndarray | None = None,
    candidates: np.ndarray | None = None,
) -> np.ndarray:
    """Absolute lams from ratios to each target's :func:`lam_max`.

    Parameters
    ----------
    S : array_like, shape (n, n)
    ratios : float or sequence of float, shape (L,)
        Non-negative ratios ``lam / lam_max``.
    targets, candidates
        As in :func:`lam_max`.

    Returns
    -------
    lams : ndarray, shape (L, T)
        ``ratios[:, None] * lam_max[None, :]``.
    """
    r = np.atleast_1d(np.asarray(ratios, dtype=np.float64))
    if r.ndim != 1 or not np.all(np.isfinite(r)) or np.any(r < 0):
        raise ValueError("ratios must be a 1-D sequence of finite non-negative numbers")
    return r[:, None] * lam_max(S, targets, candidates)[None, :]


# ---------------------------------------------------------------------------------------------
# solvers
# ---------------------------------------------------------------------------------------------


def solve(
    S: np.ndarray,
    lam: float | np.ndarray,
    targets: Sequence[int] | np.ndarray | None = None,
    candidates: np.ndarray | None = None,
    tol: float = 1e-8,
    warm_start: np.ndarray | None = None,
    max_iter: int = 20_000,
    *,
    warn: bool = True,
    psd_tol: float | None = V.PSD_RTOL,
) -> CovLassoResult:
    """Solve the CovLasso for each target, with a duality-gap certificate.

    Without ``warm_start``, each target with ``lam < 0.12 lam_max`` is first solved loosely
    (relative gap 0.1) at 0.3, 0.1, 0.03, ... times its ``lam_max`` (those above ``2.5 lam``)
    as a warm start (continuation); only the final point is returned.

    Stops when ``gap <= tol * objective`` or when ``gap`` is below the rounding floor
    ``256 eps (S_ii + 2|theta|^T|s| + ||theta||_1^2 max_j S_jj)`` (only reachable for lam near
    0). ``lam == 0`` returns the min-norm least-squares solution on the allowed block (via a
    factor of S and ``lstsq``); its ``gap`` is ``|2 theta^T g|`` (dual feasibility holds up to
    rounding).

    Parameters
    ----------
    S : array_like, shape (n, n)
        Symmetric PSD moment matrix (second moment or centred covariance).
    lam : float or array_like, shape (T,)
        Absolute penalty, shared or one per target (see :func:`relative_lams`).
    targets : sequence of int, shape (T,), optional
        Target indices (default: all n).
    candidates : ndarray of bool, shape (n,) or (T, n), optional
        Coefficients allowed to be non-zero (the target itself is always excluded, as are
        columns with ``S_jj == 0``).
    tol : float, default 1e-8
        Relative duality-gap tolerance.
    warm_start : array_like, shape (T, n), optional
        Initial coefficients (masked to the allowed set).
    max_iter : int, default 20000
        Cap on coordinate sweeps (plus rounds) per target, continuation included; targets that
        hit it get ``converged = False`` and a warning (unless ``warn=False``).
    warn : bool, default True
        Warn when a target did not converge.
    psd_tol : float or None, default ``PSD_RTOL``
        ``S`` with an eigenvalue below ``-psd_tol * trace(S)`` raises ``ValueError`` (the
        objective would be unbounded below); ``None`` skips the check for an ``S`` already
        checked (:func:`check_psd`).

    Returns
    -------
    CovLassoResult
        ``coef`` (T, n) with ``objective``, ``gap``, ``n_iter``, ``converged`` and ``lam_max``
        (T,) each.
    """
    S = V.check_S(S)
    if psd_tol is not None:
        V.check_psd(S, _psd_tol(psd_tol))
    n = S.shape[0]
    t = V.check_targets(targets, n)
    T = t.size
    lams = V.check_lam(lam, T)
    if not (np.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be a positive number; got {tol!r}")
    if int(max_iter) < 1:
        raise ValueError(f"max_iter must be >= 1; got {max_iter!r}")
    allowed = V.allowed_masks(S, t, V.check_candidates(candidates, n, T))
    if warm_start is None:
        theta = np.zeros((T, n))
    else:
        w = np.asarray(warm_start, dtype=np.float64)
        if w.shape != (T, n):
            raise ValueError(f"warm_start must have shape (len(targets), n) = {(T, n)}; got {w.shape}")
        if not np.all(np.isfinite(w)):
            raise ValueError("warm_start contains NaN or inf")
        theta = np.where(allowed, w, 0.0)
    theta, obj, gap, iters, ok = _solve_valid(S, t, lams, allowed, theta, float(tol),
                                              int(max_iter), continuation=warm_start is None)
    if warn and not np.all(ok):
        bad = t[~ok]
        warnings.warn(
            f"CovLasso: {bad.size} target(s) hit max_iter={max_iter} before gap <= tol={tol:g} "
            f"(e.g. targets {bad[:5].tolist()}); see result.converged / result.gap",
            RuntimeWarning,
            stacklevel=2,
        )
    lm = lam_max_rows(S, t, allowed)
    return CovLassoResult(theta, obj, gap, lams, t, iters, ok, lm)


#: continuation for single solves from zero: before ``lam``, each target is solved loosely (to a
#: relative gap of ``_CONT_TOL``) at the ladder ratios ``c * lam_max`` with ``c > 2.5 lam /
#: lam_max``; the support then grows a few coordinates at a time (fewer wasted additions and
#: working-set rounds at small lam).
_CONT_LADDER = (0.3, 0.1, 0.03, 0.01, 0.003, 0.001)
_CONT_TOL = 0.1


def _solve_valid(S: np.ndarray, t: np.ndarray, lams: np.ndarray, allowed: np.ndarray,
                 theta: np.ndarray, tol: float, max_iter: int, continuation: bool = False):
    """:func:`solve` on validated inputs (``theta`` (T, n) already zero outside ``allowed``).

    ``continuation`` (for a zero start) prepends loose solves at larger lams. Returns
    ``(theta, objective, gap, n_iter, converged)``.
    """
    T, n = theta.shape
    theta = np.ascontiguousarray(theta)
    steps = lams[None, :]
    dest = np.zeros((1, T), dtype=np.int64)
    if continuation:
        lm = lam_max_rows(S, t, allowed)
        c = np.asarray(_CONT_LADDER)[:, None]
        use = (lams[None, :] > 0) & (c * lm[None, :] > 2.5 * lams[None, :])
        if use.any():
            steps = np.vstack([c * lm[None, :], lams[None, :]])
            dest = np.vstack([np.where(use, -1, -2), np.zeros((1, T), dtype=np.int64)])
    coefs = theta.reshape(1, T, n)
    obj, gap, iters, ok = _kernel_path(S, t, steps, dest, allowed, theta, coefs, tol, max_iter)
    return coefs[0], obj[0], gap[0], iters[0], ok[0]


def _kernel_path(S: np.ndarray, t: np.ndarray, steps: np.ndarray, dest: np.ndarray,
                 allowed: np.ndarray, warm: np.ndarray, coefs: np.ndarray, tol: float,
                 max_iter: int):
    """Solve every (lam, target) point into ``coefs`` (R, T, n).

    Target ``t`` runs the decreasing lams ``steps[:, t]`` from ``warm[t]``; ``dest[:, t]`` is the
    row of ``coefs`` each step goes to (-1: a loose continuation step, not stored; -2: no step).
    Positive lams go to the numba kernel (one call, targets in parallel, each target's steps
    in turn); ``lam == 0`` points get the least-squares solution. Returns ``(objective, gap,
    n_iter, converged)``, each (R, T).
    """
    R, T, n = coefs.shape
    obj = np.zeros((R, T))
    gap = np.zeros((R, T))
    iters = np.zeros((R, T), dtype=np.int64)
    ok = np.zeros((R, T), dtype=np.bool_)
    allowed = np.ascontiguousarray(allowed)
    if np.any(steps > 0):
        dmax = float(np.max(np.diag(S)))
        with numba.parallel_chunksize(1):
            solve_batch(S, dmax, t, np.ascontiguousarray(steps), np.ascontiguousarray(dest),
                        allowed, warm, coefs, tol, max(tol, _CONT_TOL), max_iter, obj, gap,
                        iters, ok, np.zeros((T, 2), dtype=np.int64))
    zs, zt = np.nonzero((steps <= 0) & (dest >= 0))
    if zt.size:
        zl = dest[zs, zt]
        tz = np.unique(zt)
        th = np.zeros((tz.size, n))
        _lstsq_targets(S, t[tz], allowed[tz], th)
        r = residual_raw(S, th, t[tz])
        gvec = S[t[tz], :] - th @ S
        g0 = np.abs(2.0 * np.einsum("tj,tj->t", th, np.where(allowed[tz], gvec, 0.0)))
        pos = np.searchsorted(tz, zt)
        coefs[zl, zt] = th[pos]
        obj[zl, zt] = r[pos]
        gap[zl, zt] = g0[pos]
        iters[zl, zt] = 0
        ok[zl, zt] = True
    # theta is exactly 0 outside ``allowed``: the warm start is masked and neither the kernel
    # nor the least-squares branch writes there (tests check it)
    return obj, gap, iters, ok


def path(
    S: np.ndarray,
    lams: np.ndarray | Sequence[float] | None = None,
    targets: Sequence[int] | np.ndarray | None = None,
    candidates: np.ndarray | None = None,
    *,
    lam_ratios: np.ndarray | Sequence[float] | None = None,
    tol: float = 1e-8,
    max_iter: int = 20_000,
    warn: bool = True,
    psd_tol: float | None = V.PSD_RTOL,
) -> CovLassoPath:
    """Warm-started solution path, solved in decreasing-lam order per target.

    Parameters
    ----------
    S : array_like, shape (n, n)
        Symmetric PSD moment matrix.
    lams : array_like, shape (L,) or (L, T), optional
        Absolute lams, shared by all targets or one column per target.
    targets, candidates
        As in :func:`solve`.
    lam_ratios : array_like, shape (L,), optional
        Lams relative to each target's :func:`lam_max` (give exactly one of ``lams`` and
        ``lam_ratios``).
    tol, max_iter, warn, psd_tol
        As in :func:`solve` (``S`` is checked once for the whole path).

    Returns
    -------
    CovLassoPath
        ``coefs`` (L, T, n) and per-point arrays (L, T), in the order the lams were given.
    """
    S = V.check_S(S)
    if psd_tol is not None:
        V.check_psd(S, _psd_tol(psd_tol))
    n = S.shape[0]
    t = V.check_targets(targets, n)
    T = t.size
    if (lams is None) == (lam_ratios is None):
        raise ValueError("give exactly one of lams (absolute) or lam_ratios (relative to lam_max)")
    allowed = V.allowed_masks(S, t, V.check_candidates(candidates, n, T))
    lm = lam_max_rows(S, t, allowed)
    if lam_ratios is not None:
        r = np.atleast_1d(np.asarray(lam_ratios, dtype=np.float64))
        if r.ndim != 1 or not np.all(np.isfinite(r)) or np.any(r < 0):
            raise ValueError("ratios must be a 1-D sequence of finite non-negative numbers")
        L2 = r[:, None] * lm[None, :]
    else:
        a = np.asarray(lams, dtype=np.float64)
        if a.ndim == 1:
            a = np.repeat(a[:, None], T, axis=1)
        if a.ndim != 2 or a.shape[1] != T:
            raise ValueError(f"lams must have shape (L,) or (L, len(targets)) = (L, {T}); got {a.shape}")
        if not np.all(np.isfinite(a)) or np.any(a < 0):
            raise ValueError("lams must be finite and >= 0")
        L2 = a
    L = L2.shape[0]
    if L == 0:
        raise ValueError("the path needs at least one lam")
    order = np.argsort(-L2, axis=0, kind="stable")  # per target, decreasing lam
    if not (np.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be a positive number; got {tol!r}")
    if int(max_iter) < 1:
        raise ValueError(f"max_iter must be >= 1; got {max_iter!r}")
    coefs = np.zeros((L, T, n))
    steps = np.take_along_axis(L2, order, axis=0)
    obj, gap, iters, ok = _kernel_path(S, t, steps, order, allowed, np.zeros((T, n)), coefs,
                                       float(tol), int(max_iter))
    if warn and not np.all(ok):
        warnings.warn(
            f"CovLasso path: {int((~ok).sum())} (lam, target) point(s) hit max_iter={max_iter} "
            f"before gap <= tol={tol:g}; see path.converged",
            RuntimeWarning,
            stacklevel=2,
        )
    return CovLassoPath(coefs, obj, gap, L2, t, iters, ok, lm)


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
    for r in range(t.size):
        ok = np.flatnonzero(cols[r] >= 0)
        if ok.size == 0:
            continue
        a = cols[r, ok]
        G, rhs = S[np.ix_(a, a)], S[a, t[r]]
        try:
            c = scipy.linalg.cho_factor(G, check_finite=False)
            d = np.abs(np.diag(c[0]))
            if d.min() ** 2 <= rcond * d.max() ** 2:
                raise np.linalg.LinAlgError("ill-conditioned support block")
            out[r, ok] = scipy.linalg.cho_solve(c, rhs, check_finite=False)
        except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
            w, Vec = np.linalg.eigh(G)
            keep = w > rcond * max(float(w.max()), 0.0)
            out[r, ok] = Vec[:, keep] @ ((Vec[:, keep].T @ rhs) / w[keep])
    return out


def refit(
    S: np.ndarray,
    coef: np.ndarray,
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
    coef : array_like, shape (T, n) or (L, T, n)
        Coefficients whose supports are refitted.
    targets : sequence of int, shape (T,), optional
        Defaults to ``0..T-1``, only allowed when T == n.
    candidates : ndarray of bool, shape (n,) or (T, n), optional
        Further restricts the support.
    psd_tol : float or None
        As in :func:`solve` (checked once).

    Returns
    -------
    coef : ndarray, same shape as ``coef``
    """
    S = V.check_S(S)
    if psd_tol is not None:
        V.check_psd(S, _psd_tol(psd_tol))
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
