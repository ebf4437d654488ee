"""CovLasso at requested support sizes k, on a moment matrix: the one k-search of the package.

:func:`solve_k` runs the CovLasso for all targets in batched, warm-started calls along a
decreasing lam grid (relative to each target's ``lam_max``), then refines lam by geometric
bisection so that each target's support size is as close as possible to each requested k.
:func:`neudep_utils.dependencies.fit_covlasso_k` (the study's folds) and
:class:`neudep_utils.CovLasso` (the estimator) both call it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm as plain_tqdm

from ..timing import count
from ._validate import allowed_mask, check_psd, check_S, check_targets
from .api import CovLassoResult, _solve_valid, lam_max

__all__ = ["KSolution", "pack", "solve_k"]


def pack(coef_dense: np.ndarray, width: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Dense coefficient rows to padded ``(cols, vals)``, non-zeros first.

    Parameters
    ----------
    coef_dense : ndarray, shape (T, n)
        Dense coefficients.
    width : int, optional
        Columns of the output (default: the largest support, at least 1).

    Returns
    -------
    cols : ndarray of int64, shape (T, width)
        Partner columns, -1 where padded.
    vals : ndarray of float64, shape (T, width)
        Their coefficients, 0 where padded.
    """
    nz = coef_dense != 0
    m = max(int(nz.sum(axis=1).max(initial=0)), 1) if width is None else width
    order = np.argsort(~nz, axis=1, kind="stable")[:, :m]
    vals = np.take_along_axis(coef_dense, order, axis=1)
    cols = np.where(vals != 0, order, -1)
    return cols.astype(np.int64), np.where(cols >= 0, vals, 0.0)


@dataclass
class KSolution:
    """The CovLasso solution of T targets whose support size is closest to one requested k.

    Attributes
    ----------
    k_requested : int
        The requested support size.
    targets : ndarray of int64, shape (T,)
        Target indices.
    cols : ndarray of int64, shape (T, m)
        Partner columns, -1 padded.
    coef : ndarray of float64, shape (T, m)
        CovLasso (shrunk) coefficients aligned with ``cols``.
    k : ndarray of int64, shape (T,)
        Support size reached (-1 when no solve gave a usable support).
    lam : ndarray, shape (T,)
        Absolute lam of the solution (NaN when none).
    lam_max : ndarray, shape (T,)
        Each target's :func:`~neudep_utils.covlasso.lam_max`.
    gap : ndarray, shape (T,)
        Duality gap (objective units).
    objective : ndarray, shape (T,)
        CovLasso objective.
    """

    k_requested: int
    targets: np.ndarray
    cols: np.ndarray
    coef: np.ndarray
    k: np.ndarray
    lam: np.ndarray
    lam_max: np.ndarray
    gap: np.ndarray
    objective: np.ndarray

    @property
    def lam_ratio(self) -> np.ndarray:
        """``lam / lam_max`` (NaN where ``lam_max == 0``), shape (T,)."""
        return self.lam / np.where(self.lam_max > 0, self.lam_max, np.nan)

    def dense(self, n: int) -> np.ndarray:
        """Dense coefficients.

        Parameters
        ----------
        n : int
            Number of columns (categories) of ``S``.

        Returns
        -------
        ndarray, shape (T, n)
            Row ``t`` is theta of ``targets[t]``.
        """
        out = np.zeros((self.targets.size, n))
        ok = self.cols >= 0
        rows = np.repeat(np.arange(self.targets.size), self.cols.shape[1])[ok.ravel()]
        out[rows, self.cols[ok]] = self.coef[ok]
        return out


class _Best:
    """Per requested k and target, the solution closest to k seen so far (ties: the smaller
    support) and the bracket of lams around k: ``hi`` the smallest lam seen with support < k,
    ``lo`` the largest lam seen with support > k."""

    def __init__(self, ks: tuple[int, ...], T: int, width: int):
        K = len(ks)
        self.ks, self.width = ks, width
        self.k = np.full((K, T), -1, dtype=np.int64)
        self.cols = np.full((K, T, width), -1, dtype=np.int64)
        self.vals = np.zeros((K, T, width))
        self.lam = np.full((K, T), np.nan)
        self.gap = np.full((K, T), np.nan)
        self.obj = np.full((K, T), np.nan)
        self.hi = np.full((K, T), np.inf)
        self.lo = np.zeros((K, T))

    def record(self, rows: np.ndarray, lam: np.ndarray, res: CovLassoResult,
               kk: list[int] | None = None) -> None:
        """Update the brackets and the closest solutions of the targets ``rows`` from ``res``
        (solved at ``lam``), for every k or the indices ``kk``."""
        sz = res.support_size
        hi, lo = self.hi, self.lo
        for a in range(len(self.ks)) if kk is None else kk:
            k = self.ks[a]
            hi[a, rows] = np.where((sz < k) & (lam < hi[a, rows]), lam, hi[a, rows])
            lo[a, rows] = np.where((sz > k) & (lam > lo[a, rows]), lam, lo[a, rows])
            d_new = np.abs(sz - k)
            d_old = np.where(self.k[a, rows] < 0, np.iinfo(np.int64).max,
                             np.abs(self.k[a, rows] - k))
            better = (d_new < d_old) | ((d_new == d_old) & (sz < self.k[a, rows]))
            better &= sz <= self.width
            if not better.any():
                continue
            r = rows[better]
            c, v = pack(res.coef[better], self.width)
            self.k[a, r] = sz[better]
            self.cols[a, r] = c
            self.vals[a, r] = v
            self.lam[a, r] = lam[better]
            self.gap[a, r] = res.gap[better]
            self.obj[a, r] = res.objective[better]

    def bisection(self, n_allowed: np.ndarray, n: int
                  ) -> tuple[list[tuple[int, np.ndarray, np.ndarray]], np.ndarray, np.ndarray,
                             np.ndarray]:
        """One bisection round of every k in one batch: ``parts`` (per k index that needs it,
        its targets' rows and the geometric mid-points of their brackets), the batch's rows,
        lams and dense warm starts (the closest solutions so far). The rows of a k depend only
        on that k's bracket and closest solution, so batching them changes no number."""
        parts = []
        for a, k in enumerate(self.ks):
            hi, lo = self.hi, self.lo
            need = (self.k[a] != k) & np.isfinite(hi[a]) & (lo[a] > 0) & (lo[a] < hi[a])
            need &= n_allowed >= k
            rows = np.flatnonzero(need)
            if rows.size:
                parts.append((a, rows, np.sqrt(hi[a, rows] * lo[a, rows])))
        if not parts:
            return parts, np.empty(0, np.int64), np.empty(0), np.empty((0, n))
        rows = np.concatenate([p[1] for p in parts])
        lam = np.concatenate([p[2] for p in parts])
        w = np.zeros((rows.size, n))
        c = np.concatenate([self.cols[a, r] for a, r, _ in parts])
        v = np.concatenate([self.vals[a, r] for a, r, _ in parts])
        np.put_along_axis(w, np.maximum(c, 0), np.where(c >= 0, v, 0.0), 1)
        return parts, rows, lam, w

    def solutions(self, targets: np.ndarray, lmax: np.ndarray) -> dict[int, KSolution]:
        """The closest solution of every target, one :class:`KSolution` per k."""
        out = {}
        for a, k in enumerate(self.ks):
            m = max(int(self.k[a].max(initial=1)), 1)
            out[k] = KSolution(k_requested=k, targets=targets, cols=self.cols[a, :, :m],
                               coef=self.vals[a, :, :m], k=self.k[a], lam=self.lam[a],
                               lam_max=lmax, gap=self.gap[a], objective=self.obj[a])
        return out


def solve_k(S: np.ndarray, ks: Sequence[int],
            targets: np.ndarray | Sequence[int] | None = None,
            candidates: np.ndarray | None = None, *,
            ratios: np.ndarray | None = None, refine: int = 4, tol: float = 1e-6,
            max_iter: int = 20_000, psd_checked: bool = False,
            progress: bool = False) -> dict[int, KSolution]:
    """CovLasso solutions of every target with support size closest to each ``k`` in ``ks``.

    All targets are solved together (one batched :func:`~neudep_utils.covlasso.solve` call per
    lam step, warm-started from the previous step) along ``ratios`` (lam / lam_max, decreasing;
    default 48 geometric steps from 0.995 to 0.005); a target leaves the path once its support
    exceeds ``max(ks) + 5``. Then ``refine`` rounds of geometric bisection between the
    bracketing lams move each target's support closer to each k. Ties prefer the smaller support.

    Parameters
    ----------
    S : ndarray, shape (n, n)
        Symmetric PSD moment matrix (float64).
    ks : sequence of int
        Requested support sizes (>= 1).
    targets : sequence of int, shape (T,), optional
        Target indices (default: all n).
    candidates : ndarray of bool, shape (n,) or (T, n), optional
        Allowed partner columns.
    ratios : ndarray, optional
        The lam / lam_max grid of the path (sorted decreasing here).
    refine : int, default 4
        Bisection rounds per k.
    tol : float, default 1e-6
        Relative duality-gap tolerance of every solve.
    max_iter : int, default 20000
        Cap on coordinate sweeps per solve.
    psd_checked : bool, default False
        The caller knows ``S`` is PSD (skips the one eigenvalue check).
    progress : bool, default False
        A progress bar over the path's lam steps and the bisection rounds.

    Returns
    -------
    dict of int to KSolution
        One :class:`KSolution` per distinct requested k (the coefficients are the CovLasso
        solution itself, shrunk; refit with :func:`~neudep_utils.covlasso.lstsq_on_support`).
    """
    bar_type = plain_tqdm  # tqdm.auto warns at its import in a kernel without ipywidgets
    if progress:
        from tqdm.auto import tqdm as bar_type  # noqa: PLC0415 - only when a bar is asked for

    S = check_S(S)  # once: every solve below gets the validated matrix
    n = S.shape[0]
    t = check_targets(targets, n)  # refuses float targets (1.7 is not 1)
    T = t.size
    ks = tuple(sorted({int(k) for k in ks}))
    if not ks or ks[0] < 1:
        raise ValueError(f"ks must be positive support sizes, got {ks}")
    allowed = allowed_mask(S, t, candidates)
    ratios = np.geomspace(0.995, 0.005, 48) if ratios is None else np.sort(np.asarray(ratios))[::-1]
    if not (np.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be a positive number; got {tol!r}")
    if int(max_iter) < 1:
        raise ValueError(f"max_iter must be >= 1; got {max_iter!r}")
    if not psd_checked:
        check_psd(S)  # once; the many solves below skip it
    lmax = lam_max(S, t, candidates)
    n_allowed = allowed.sum(1)
    width = min(int(1.25 * ks[-1]) + 8, n)
    kmax_stop = ks[-1] + 5  # was 1.25 ks[-1] + 5: same solutions, a third less CPU
    best = _Best(ks, T, width)

    def run(rows: np.ndarray, lam: np.ndarray, warm: np.ndarray, what: str) -> CovLassoResult:
        """The batched solve of the rows ``rows`` (targets ``t[rows]``, duplicates allowed) at
        ``lam`` from ``warm``: :func:`~.api.solve` without its per-call input checks."""
        al = allowed[rows]
        th, obj, gap, it, ok = _solve_valid(S, t[rows], np.ascontiguousarray(lam, np.float64),
                                            al, np.where(al, warm, 0.0), float(tol),
                                            int(max_iter))
        count(what, rows.size)
        return CovLassoResult(th, obj, gap, lam, t[rows], it, ok, lmax[rows])

    count("covlasso k-searches (targets)", T)
    warm = np.zeros((T, n))
    active = np.ones(T, dtype=bool)
    bar = bar_type(total=len(ratios) + refine, desc=f"CovLasso path ({T} targets)",
                   disable=not progress, leave=False)
    for r in ratios:
        bar.update()
        rows = np.flatnonzero(active)
        if rows.size == 0:
            break
        lam = r * lmax[rows]
        res = run(rows, lam, warm[rows], "covlasso path solves")
        warm[rows] = res.coef
        best.record(rows, lam, res)
        active[rows[res.support_size > kmax_stop]] = False
        active &= lmax > 0
    bar.n = len(ratios)
    for _ in range(refine):
        bar.update()
        parts, rows, lam, w = best.bisection(n_allowed, n)  # every k's step in one solve
        if not parts:
            continue
        res = run(rows, lam, w, "covlasso bisection solves")
        o = 0
        for a, r, la in parts:
            sl = slice(o, o + r.size)
            o += r.size
            best.record(r, la, CovLassoResult(res.coef[sl], res.objective[sl], res.gap[sl],
                                              la, res.targets[sl], res.n_iter[sl],
                                              res.converged[sl], res.lam_max[sl]), kk=[a])
    bar.close()
    return best.solutions(t, lmax)
