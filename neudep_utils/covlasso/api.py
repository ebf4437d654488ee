"""The public CovLasso API: batched certified solves, warm-started paths and post-processing.

The numba kernels live in :mod:`._kernels`, the certificate in :mod:`.certificates`, input
checks in :mod:`._validate`; this module validates, dispatches and packages results.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence

import numba
import numpy as np

from . import _validate as V
from ._kernels import N_COUNTERS, lam_max_rows, solve_batch
from .certificates import residual_raw
from .refit import _lstsq_targets, lstsq_on_support, refit, relative_residual, residual  # noqa: F401
from .results import CovLassoPath, CovLassoResult

# ---------------------------------------------------------------------------------------------
# lam scale
# ---------------------------------------------------------------------------------------------


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
    lam: float | np.ndarray | None = None,
    targets: Sequence[int] | np.ndarray | None = None,
    candidates: np.ndarray | None = None,
    tol: float = 1e-8,
    warm_start: np.ndarray | None = None,
    max_iter: int = 20_000,
    *,
    lam_ratio: float | np.ndarray | None = None,
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
    lam : float or array_like, shape (T,), optional
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
    lam_ratio : float or array_like, shape (T,), optional
        Penalty relative to each target's :func:`lam_max` (``lam = lam_ratio * lam_max``); give
        exactly one of ``lam`` and ``lam_ratio``.
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
        V.check_psd(S, psd_tol)
    n = S.shape[0]
    t = V.check_targets(targets, n)
    T = t.size
    if (lam is None) == (lam_ratio is None):
        raise ValueError("give exactly one of lam (absolute penalty) or lam_ratio (relative to "
                         "each target's lam_max), e.g. solve(S, lam_ratio=0.1)")
    if lam_ratio is not None:
        ratio = V.check_lam(lam_ratio, T, "lam_ratio")
        lam = ratio * lam_max_rows(S, t, V.allowed_masks(S, t, V.check_candidates(candidates,
                                                                                    n, T)))
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
                 theta: np.ndarray, tol: float, max_iter: int, continuation: bool = False,
                 counters: np.ndarray | None = None):
    """:func:`solve` on validated inputs (``theta`` (T, n) already zero outside ``allowed``).

    ``continuation`` (for a zero start) prepends loose solves at larger lams; ``counters``
    (T, ``N_COUNTERS``) int64, if given, receives the kernel's work counters. Returns
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
    obj, gap, iters, ok = _kernel_path(S, t, steps, dest, allowed, theta, coefs, tol, max_iter,
                                       counters)
    return coefs[0], obj[0], gap[0], iters[0], ok[0]


_COMPILE_NOTE = "compiling the CovLasso kernels (once per install, ~30 s)"
_compile_checked = False


def kernels_cold() -> bool:
    """Whether the next :func:`solve_batch` call compiles: not yet compiled in this process and
    no valid entry in numba's on-disk cache (a cache written for other source is stale)."""
    if solve_batch.signatures:
        return False
    try:
        return not solve_batch._cache._cache_file._load_index()  # numba's own index check
    except Exception:  # numba internals moved: say it may compile
        return True


def _announce_compile() -> None:
    """Print :data:`_COMPILE_NOTE` to stderr once per process, before a cold first compile."""
    global _compile_checked
    if _compile_checked:
        return
    _compile_checked = True
    if kernels_cold():
        print(_COMPILE_NOTE, file=sys.stderr, flush=True)


def _kernel_path(S: np.ndarray, t: np.ndarray, steps: np.ndarray, dest: np.ndarray,
                 allowed: np.ndarray, warm: np.ndarray, coefs: np.ndarray, tol: float,
                 max_iter: int, counters: np.ndarray | None = None):
    """Solve every (lam, target) point into ``coefs`` (R, T, n).

    Target ``t`` runs the decreasing lams ``steps[:, t]`` from ``warm[t]``; ``dest[:, t]`` is the
    row of ``coefs`` each step goes to (-1: a loose continuation step, not stored; -2: no step).
    Positive lams go to the numba kernel (one call, targets in parallel, each target's steps
    in turn); ``lam == 0`` points get the least-squares solution. Returns ``(objective, gap,
    n_iter, converged)``, each (R, T). ``counters`` (T, ``N_COUNTERS``), if given, receives
    the kernel's work counters (see :data:`._kernels.N_COUNTERS`).
    """
    R, T, n = coefs.shape
    obj = np.zeros((R, T))
    gap = np.zeros((R, T))
    iters = np.zeros((R, T), dtype=np.int64)
    ok = np.zeros((R, T), dtype=np.bool_)
    allowed = np.ascontiguousarray(allowed)
    if np.any(steps > 0):
        dmax = float(np.max(np.diag(S)))
        _announce_compile()
        with numba.parallel_chunksize(1):
            solve_batch(S, dmax, t, np.ascontiguousarray(steps), np.ascontiguousarray(dest),
                        allowed, warm, coefs, tol, max(tol, _CONT_TOL), max_iter, obj, gap,
                        iters, ok,
                        np.zeros((T, N_COUNTERS), dtype=np.int64) if counters is None
                        else counters)
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
        V.check_psd(S, psd_tol)
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
