"""CovLasso for massive n: targets solved a block at a time, sparse results, bounded memory.

:func:`..api.solve` returns dense (T, n) coefficients and builds a (T, n) candidate mask, which
for all targets of n = 21,841 categories (ImageNet-21k) would be two more n x n arrays beside S.
:func:`solve_blocks` checks S once, then solves ``block`` targets per kernel call and keeps only
each target's support (CSR rows), so the memory beyond S is O(block * n + total support). ``S``
may be float32 (half of the 3.8 GB float64 S at n = 21,841) and may be a read-only memory map
(``np.load(path, mmap_mode="r")``): it is never copied. Each target's solution depends only on S,
its index and its lam (not on the block or the thread), so any split of the targets (blocks
here, ranks in :mod:`.sharded`) gives the same numbers bit for bit.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._io import atomic_save_npz
from . import _validate as V
from ._kernels import lam_max_rows
from .api import CovLassoResult, _solve_valid


@dataclass
class SparseCovLassoResult:
    """Solutions for T targets over n categories, coefficients as CSR rows.

    Attributes
    ----------
    n : int
        Number of categories.
    targets : ndarray of int, shape (T,)
    indptr : ndarray of int64, shape (T + 1,)
        Row ``t``'s support is ``indices[indptr[t]:indptr[t + 1]]`` (increasing).
    indices : ndarray of int64, shape (nnz,)
    data : ndarray of float64, shape (nnz,)
        The non-zero coefficients.
    objective, gap, lam, lam_max : ndarray, shape (T,)
        As in :class:`..api.CovLassoResult`.
    n_iter : ndarray of int, shape (T,)
    converged : ndarray of bool, shape (T,)
    """

    n: int
    targets: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    objective: np.ndarray
    gap: np.ndarray
    lam: np.ndarray
    lam_max: np.ndarray
    n_iter: np.ndarray
    converged: np.ndarray

    @property
    def support_size(self) -> np.ndarray:
        """Number of non-zero coefficients per target, shape (T,)."""
        return np.diff(self.indptr)

    @property
    def relative_gap(self) -> np.ndarray:
        """gap / objective (objective floored at the smallest positive float), shape (T,)."""
        return self.gap / np.maximum(self.objective, np.finfo(np.float64).tiny)

    def to_dense(self) -> CovLassoResult:
        """The same solutions as a dense :class:`..api.CovLassoResult` ((T, n) coefficients)."""
        T = self.targets.size
        coef = np.zeros((T, self.n))
        rows = np.repeat(np.arange(T), np.diff(self.indptr))
        coef[rows, self.indices] = self.data
        return CovLassoResult(coef, self.objective, self.gap, self.lam, self.targets,
                              self.n_iter, self.converged, self.lam_max)

    def to_npz(self, path) -> None:
        """Write the result to ``path`` (``.npz``, atomically)."""
        atomic_save_npz(Path(path), **{k: np.asarray(v) for k, v in self.__dict__.items()})

    @classmethod
    def from_npz(cls, path) -> SparseCovLassoResult:
        """Read a result written by :meth:`to_npz`."""
        with np.load(path) as z:
            kw = {k: z[k] for k in z.files}
        kw["n"] = int(kw["n"])
        return cls(**kw)

    @classmethod
    def concatenate(cls, parts: Sequence[SparseCovLassoResult]) -> SparseCovLassoResult:
        """Stack results of disjoint target sets over the same n (rows in the order given)."""
        if not parts:
            raise ValueError("concatenate needs at least one result")
        n = parts[0].n
        if any(p.n != n for p in parts):
            raise ValueError(f"results over different n: {sorted({p.n for p in parts})}")
        offs = np.cumsum([0] + [p.indices.size for p in parts])
        indptr = np.concatenate([np.zeros(1, np.int64)]
                                + [p.indptr[1:] + o for p, o in zip(parts, offs[:-1], strict=True)])
        cat = {k: np.concatenate([getattr(p, k) for p in parts])
               for k in ("targets", "indices", "data", "objective", "gap", "lam", "lam_max",
                         "n_iter", "converged")}
        return cls(n=n, indptr=indptr.astype(np.int64), **cat)

    def take(self, order: np.ndarray) -> SparseCovLassoResult:
        """The rows ``order`` (an index array into the T targets), in that order."""
        order = np.asarray(order, dtype=np.int64)
        starts, stops = self.indptr[order], self.indptr[order + 1]
        sel = np.concatenate([np.arange(a, b) for a, b in zip(starts, stops, strict=True)]
                             + [np.zeros(0, np.int64)])
        indptr = np.concatenate([[0], np.cumsum(stops - starts)]).astype(np.int64)
        return SparseCovLassoResult(
            n=self.n, targets=self.targets[order], indptr=indptr, indices=self.indices[sel],
            data=self.data[sel], objective=self.objective[order], gap=self.gap[order],
            lam=self.lam[order], lam_max=self.lam_max[order], n_iter=self.n_iter[order],
            converged=self.converged[order])


def solve_blocks(
    S: np.ndarray,
    lam: float | np.ndarray | None = None,
    targets: Sequence[int] | np.ndarray | None = None,
    *,
    lam_ratio: float | None = None,
    tol: float = 1e-8,
    max_iter: int = 20_000,
    block: int = 256,
    warn: bool = True,
    psd_tol: float | None = V.PSD_RTOL,
) -> SparseCovLassoResult:
    """:func:`..api.solve` (from zero, with its continuation) for many targets, ``block`` at a
    time, keeping sparse coefficients.

    Parameters
    ----------
    S : array_like, shape (n, n)
        Symmetric PSD moment matrix; float32 is kept as float32, and a C-contiguous array
        (e.g. ``np.load(path, mmap_mode="r")``) is not copied.
    lam : float or array_like, shape (T,), optional
        Absolute penalty (give exactly one of ``lam`` and ``lam_ratio``).
    targets : sequence of int, shape (T,), optional
        Target indices (default: all n).
    lam_ratio : float, optional
        ``lam = lam_ratio * lam_max`` per target.
    tol, max_iter, warn
        As in :func:`..api.solve`.
    block : int, default 256
        Targets per kernel call (memory beyond S: about ``block * n`` float64 and bool).
    psd_tol : float or None
        As in :func:`..api.solve`; the check factors a float64 copy of S, so pass ``None`` for an
        S known to be PSD (e.g. built as a Gram matrix) when n is massive.

    Returns
    -------
    SparseCovLassoResult
        Rows in the order of ``targets``; equal bit for bit to the rows of ``solve``.
    """
    S = V.check_S(S, keep_float32=True)
    if psd_tol is not None:
        V.check_psd(S, psd_tol)
    n = S.shape[0]
    t_all = V.check_targets(targets, n)
    T = t_all.size
    if (lam is None) == (lam_ratio is None):
        raise ValueError("give exactly one of lam (absolute) or lam_ratio (relative to lam_max)")
    if lam_ratio is not None and not (np.isfinite(lam_ratio) and lam_ratio >= 0):
        raise ValueError(f"lam_ratio must be a finite number >= 0; got {lam_ratio!r}")
    lams_all = None if lam is None else V.check_lam(lam, T)
    if not (np.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be a positive number; got {tol!r}")
    if int(max_iter) < 1:
        raise ValueError(f"max_iter must be >= 1; got {max_iter!r}")
    if int(block) < 1:
        raise ValueError(f"block must be >= 1; got {block!r}")
    diag_ok = np.diag(S) > 0
    parts = []
    for b0 in range(0, T, int(block)):
        t = t_all[b0:b0 + int(block)]
        allowed = np.repeat(diag_ok[None, :], t.size, axis=0)
        allowed[np.arange(t.size), t] = False
        lm = lam_max_rows(S, t, allowed)
        lams = lam_ratio * lm if lams_all is None else lams_all[b0:b0 + t.size]
        theta, obj, gap, iters, ok = _solve_valid(S, t, np.ascontiguousarray(lams), allowed,
                                                  np.zeros((t.size, n)), float(tol),
                                                  int(max_iter), continuation=True)
        rr, cc = np.nonzero(theta)
        indptr = np.searchsorted(rr, np.arange(t.size + 1)).astype(np.int64)
        parts.append(SparseCovLassoResult(
            n=n, targets=t, indptr=indptr, indices=cc.astype(np.int64), data=theta[rr, cc],
            objective=obj, gap=gap, lam=np.asarray(lams, float), lam_max=lm, n_iter=iters,
            converged=ok))
    out = SparseCovLassoResult.concatenate(parts)
    if warn and not np.all(out.converged):
        bad = out.targets[~out.converged]
        warnings.warn(
            f"CovLasso: {bad.size} target(s) hit max_iter={max_iter} before gap <= tol={tol:g} "
            f"(e.g. targets {bad[:5].tolist()}); see result.converged / result.gap",
            RuntimeWarning, stacklevel=2)
    return out
