"""CovLasso dependencies at requested support sizes k, fitted once and cached on disk.

:func:`fit_covlasso_k` runs the CovLasso (:mod:`neudep_utils.covlasso`) for all targets in
batched, warm-started calls along a decreasing lam grid (relative to each target's ``lam_max``),
then refines lam by bisection so that each target's support size is as close as possible to each
requested k. :func:`fit_covlasso_k_cached` memoises it on disk, keyed by the fold's moments, the
request and the solver's source.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .. import covlasso as cl
from .._io import atomic_save_npz, load_npz_checked
from . import depset as _depset_module
from .depset import DepSet, make_depset, pack
from .folds import Fold

__all__ = ["fit_covlasso_k", "fit_covlasso_k_cached", "load_depsets", "save_depsets"]


def fit_covlasso_k(fold: Fold, ks: Sequence[int],
                   targets: np.ndarray | Sequence[int] | None = None,
                   candidates: np.ndarray | None = None, *,
                   ratios: np.ndarray | None = None, refine: int = 4, tol: float = 1e-6,
                   max_iter: int = 20_000, psd_checked: bool = False,
                   progress: bool = False) -> dict[int, DepSet]:
    """CovLasso dependencies of every target with support size closest to each ``k`` in ``ks``.

    All targets are solved together (one batched :func:`neudep_utils.covlasso.solve` call per lam
    step, warm-started from the previous step) along ``ratios`` (lam / lam_max, decreasing;
    default 48 geometric steps from 0.995 to 0.005); a target leaves the path once its support
    exceeds ``1.25 max(ks) + 5``. Then ``refine`` rounds of geometric bisection between the
    bracketing lams move each target's support closer to each k. Ties prefer the smaller support.
    ``candidates``: (n,) or (T, n) boolean mask of allowed partner columns. The coefficients are
    the CovLasso solution itself (shrunk); use :func:`least_squares_on_support` for a refit.
    ``psd_checked``: the caller knows ``fold.S`` is a moment matrix (skips the PSD check);
    ``progress``: a progress bar over the path's lam steps and the bisection rounds.
    """
    from tqdm.auto import tqdm

    S = fold.S
    n = S.shape[0]
    t = cl._validate.check_targets(targets, n)  # refuses float targets (1.7 is not 1)
    T = t.size
    ks = tuple(sorted({int(k) for k in ks}))
    if not ks or ks[0] < 1:
        raise ValueError(f"ks must be positive support sizes, got {ks}")
    allowed = cl.allowed_mask(S, t, candidates)
    ratios = np.geomspace(0.995, 0.005, 48) if ratios is None else np.sort(np.asarray(ratios))[::-1]
    if not psd_checked:
        cl.check_psd(S)  # once; the many solves below skip it
    lmax = cl.lam_max(S, t, candidates)
    n_allowed = allowed.sum(1)
    K = len(ks)
    width = min(int(1.25 * ks[-1]) + 8, n)
    kmax_stop = int(1.25 * ks[-1]) + 5
    best_k = np.full((K, T), -1, dtype=np.int64)
    best_cols = np.full((K, T, width), -1, dtype=np.int64)
    best_vals = np.zeros((K, T, width))
    best_lam = np.full((K, T), np.nan)
    best_gap = np.full((K, T), np.nan)
    best_obj = np.full((K, T), np.nan)
    hi = np.full((K, T), np.inf)  # smallest lam seen with support < k
    lo = np.zeros((K, T))  # largest lam seen with support > k

    def record(rows: np.ndarray, lam: np.ndarray, res: cl.CovLassoResult,
               kk: np.ndarray | None = None) -> None:
        sz = res.support_size
        for a in range(K) if kk is None else kk:
            k = ks[a]
            hi[a, rows] = np.where((sz < k) & (lam < hi[a, rows]), lam, hi[a, rows])
            lo[a, rows] = np.where((sz > k) & (lam > lo[a, rows]), lam, lo[a, rows])
            d_new = np.abs(sz - k)
            d_old = np.where(best_k[a, rows] < 0, np.iinfo(np.int64).max,
                             np.abs(best_k[a, rows] - k))
            better = (d_new < d_old) | ((d_new == d_old) & (sz < best_k[a, rows]))
            better &= sz <= width
            if not better.any():
                continue
            r = rows[better]
            c, v = pack(res.coef[better], width)
            best_k[a, r] = sz[better]
            best_cols[a, r] = c
            best_vals[a, r] = v
            best_lam[a, r] = lam[better]
            best_gap[a, r] = res.gap[better]
            best_obj[a, r] = res.objective[better]

    warm = np.zeros((T, n))
    active = np.ones(T, dtype=bool)
    bar = tqdm(total=len(ratios) + refine * K, desc=f"CovLasso path ({T} targets)",
               disable=not progress, leave=False)
    for r in ratios:
        bar.update()
        rows = np.flatnonzero(active)
        if rows.size == 0:
            break
        lam = r * lmax[rows]
        res = cl.solve(S, lam, t[rows], allowed[rows], tol=tol, warm_start=warm[rows],
                       max_iter=max_iter, warn=False, psd_tol=None)
        warm[rows] = res.coef
        record(rows, lam, res)
        active[rows[res.support_size > kmax_stop]] = False
        active &= lmax > 0
    bar.n = len(ratios)
    for _ in range(refine):
        for a, k in enumerate(ks):
            bar.update()
            need = (best_k[a] != k) & np.isfinite(hi[a]) & (lo[a] > 0) & (lo[a] < hi[a])
            need &= n_allowed >= k
            rows = np.flatnonzero(need)
            if rows.size == 0:
                continue
            lam = np.sqrt(hi[a, rows] * lo[a, rows])
            w = np.zeros((rows.size, n))
            c = best_cols[a, rows]
            np.put_along_axis(w, np.maximum(c, 0), np.where(c >= 0, best_vals[a, rows], 0.0), 1)
            res = cl.solve(S, lam, t[rows], allowed[rows], tol=tol, warm_start=w,
                           max_iter=max_iter, warn=False, psd_tol=None)
            record(rows, lam, res, kk=[a])
    bar.close()
    out = {}
    for a, k in enumerate(ks):
        m = max(int(best_k[a].max(initial=1)), 1)
        out[k] = make_depset(fold, t, best_cols[a, :, :m], best_vals[a, :, :m], "CovLasso",
                              k_requested=k, lam=best_lam[a],
                              lam_ratio=best_lam[a] / np.where(lmax > 0, lmax, np.nan),
                              gap=best_gap[a], objective=best_obj[a])
    return out


def _digest(*parts) -> str:
    import hashlib

    h = hashlib.sha256()
    for p in parts:
        if p is None:
            h.update(b"none")
        elif isinstance(p, np.ndarray):
            a = np.ascontiguousarray(p)
            h.update(str((a.dtype, a.shape)).encode())
            h.update(a.tobytes())
        else:
            h.update(repr(p).encode())
        h.update(b"|")
    return h.hexdigest()


_DEPSET_ARRAYS = ("targets", "cols", "coef", "intercept", "lam", "lam_ratio", "gap", "objective")


@functools.lru_cache(maxsize=1)
def _code_digest() -> str:
    """sha256 of the source of the CovLasso package and of the modules that build a DepSet."""
    h = hashlib.sha256()
    files = sorted(Path(cl.__file__).parent.glob("*.py")) + [Path(__file__),
                                                            Path(_depset_module.__file__)]
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def save_depsets(path: str | os.PathLike[str], deps: dict[int, DepSet]) -> None:
    """Write ``{k: DepSet}`` to one ``.npz`` (atomic)."""

    arrays = {}
    for k, d in deps.items():
        for name in _DEPSET_ARRAYS:
            v = getattr(d, name)
            if v is not None:
                arrays[f"{k}__{name}"] = v
        arrays[f"{k}__meta"] = np.array([d.n_total, -1 if d.k_requested is None else d.k_requested])
        arrays[f"{k}__method"] = np.array(d.method)
    atomic_save_npz(Path(path), **arrays)


def load_depsets(path: str | os.PathLike[str]) -> dict[int, DepSet] | None:
    """Read what :func:`save_depsets` wrote; ``None`` when missing or unreadable."""

    z = load_npz_checked(Path(path))
    if z is None:
        return None
    out = {}
    for k in sorted({int(key.split("__")[0]) for key in z}):
        g = {name: z.get(f"{k}__{name}") for name in _DEPSET_ARRAYS}
        n_total, kr = (int(v) for v in z[f"{k}__meta"])
        out[k] = DepSet(n_total=n_total, method=str(z[f"{k}__method"]),
                        k_requested=None if kr < 0 else kr, **g)
    return out


def fit_covlasso_k_cached(fold: Fold, ks: Sequence[int],
                          targets: np.ndarray | Sequence[int] | None = None,
                          candidates: np.ndarray | None = None, *,
                          cache_dir: str | os.PathLike[str] | None = None,
                          **kw) -> dict[int, DepSet]:
    """:func:`fit_covlasso_k`, memoised on disk under ``cache_dir`` (None: no cache).

    The key is a sha256 of the fold's moments (S, mu, centring), ks, targets, candidates and the
    keyword arguments, so notebooks sharing an ``output_dir`` reuse each other's fits.
    """
    if cache_dir is None:
        return fit_covlasso_k(fold, ks, targets, candidates, **kw)

    t = None if targets is None else cl._validate.check_targets(targets, fold.S.shape[0])
    c = None if candidates is None else np.asarray(candidates, bool)
    # the code that produces the fits is part of the key: a changed solver never serves old fits
    key = _digest("covlasso_k-v2", _code_digest(), fold.S, fold.mu, fold.center,
                  tuple(sorted(set(ks))), t, c,
                  sorted((a, v) for a, v in kw.items() if a not in ("progress", "psd_checked")))
    path = Path(cache_dir) / f"deps-{key[:24]}.npz"
    got = load_depsets(path)
    if got is not None:
        return got
    out = fit_covlasso_k(fold, ks, targets, candidates, **kw)
    save_depsets(path, out)
    return out


# --------------------------------------------------------------------------------------------
# baselines at equal k
