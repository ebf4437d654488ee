"""Dependencies: sparse linear dependencies of target logits, fitted on a fold's moments.

A :class:`DepSet` holds, for T targets, ``f_t ~ intercept_t + sum_m coef[t, m] f_{cols[t, m]}``.
Ways to get one:

- :func:`fit_covlasso_k`: the CovLasso (:mod:`neudep_utils.covlasso`) for all targets in batched,
  warm-started calls along a decreasing lam grid (relative to each target's ``lam_max``), then lam
  refined by bisection so that each target's support size is as close as possible to each
  requested k. :func:`fit_covlasso_k_cached` memoises it on disk.
- :func:`least_squares_on_support`: least squares on given partner columns (batched), the one
  refit of the study; :func:`baselines` builds the equal-k baselines (random partners, most
  correlated partners, the CovLasso support refitted) with it.
- :func:`dense_least_squares`: least squares on *all* allowed columns, the no-sparsity reference.

With ``fold.center`` every dependency has an intercept ``b = mu_i - theta^T mu`` (fit-set means);
with the second moment there is none. Partner candidates are a boolean mask, (n,) or (T, n)
(:func:`candidate_mask` builds the cross-model ones).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from . import covlasso as cl
from .folds import Fold

__all__ = [
    "DepSet",
    "baselines",
    "candidate_mask",
    "dense_least_squares",
    "depset_from_coef",
    "fit_covlasso_k",
    "fit_covlasso_k_cached",
    "least_squares_on_support",
    "load_depsets",
    "min_norm_inverse",
    "random_support",
    "save_depsets",
    "topcorr_support",
]


def candidate_mask(n_total: int, allowed: slice | np.ndarray | None = None,
                   targets: np.ndarray | None = None, exclude_same: int | None = None) -> np.ndarray:
    """Boolean candidate mask: columns in ``allowed`` (a slice or an index/bool array).

    With ``targets`` and ``exclude_same=offset`` the result is (T, n_total) and column
    ``targets[t] + offset`` is removed for row t (cross-model: B's own category of A's target).
    """
    m = np.zeros(n_total, dtype=bool)
    if allowed is None:
        m[:] = True
    else:
        m[allowed] = True
    if exclude_same is None:
        return m
    if targets is None:
        raise ValueError("exclude_same needs targets")
    t = np.asarray(targets)
    M = np.repeat(m[None], t.size, axis=0)
    M[np.arange(t.size), t + exclude_same] = False
    return M


@dataclass
class DepSet:
    """Sparse linear dependencies of T targets: ``f_t ~ intercept_t + sum_m coef[t, m] f_{cols[t, m]}``.

    ``cols`` (T, m) int64 partner columns, -1 padded; ``coef`` (T, m) float64 (0 where padded);
    ``k`` (T,) support sizes; ``lam`` (T,) absolute lam (NaN for least-squares baselines);
    ``gap`` (T,) CovLasso duality gap (objective units; NaN for baselines); ``method`` a label.
    """

    targets: np.ndarray
    cols: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    n_total: int
    method: str
    k_requested: int | None = None
    lam: np.ndarray | None = None
    lam_ratio: np.ndarray | None = None
    gap: np.ndarray | None = None
    objective: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    @property
    def k(self) -> np.ndarray:
        """Support size per target (non-zero coefficients)."""
        return ((self.cols >= 0) & (self.coef != 0)).sum(axis=1)

    def matrix(self) -> sp.csr_matrix:
        """(T, n_total) sparse coefficient matrix."""
        T, m = self.cols.shape
        ok = (self.cols >= 0) & (self.coef != 0)
        rows = np.repeat(np.arange(T), m)[ok.ravel()]
        return sp.csr_matrix((self.coef[ok], (rows, self.cols[ok])), shape=(T, self.n_total))

    def dense(self) -> np.ndarray:
        """(T, n_total) dense coefficients."""
        return self.matrix().toarray()

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted target logits (N, T) for logit rows ``X`` (N, n_total)."""
        M = self.matrix()
        X = np.asarray(X, np.float64)
        if M.nnz > 0.02 * M.shape[0] * M.shape[1]:  # dense enough for BLAS
            return X @ M.toarray().T + self.intercept[None]
        return np.asarray((M @ X.T).T) + self.intercept[None]

    def partners(self, t: int) -> list[tuple[int, float]]:
        """``[(column, coefficient), ...]`` of row ``t`` by decreasing |coefficient|."""
        ok = (self.cols[t] >= 0) & (self.coef[t] != 0)
        c, v = self.cols[t][ok], self.coef[t][ok]
        o = np.argsort(-np.abs(v), kind="stable")
        return [(int(c[j]), float(v[j])) for j in o]

    def subset(self, rows: np.ndarray) -> DepSet:
        """The dependencies of some rows (targets)."""
        def sel(a):
            return None if a is None else a[rows]
        return replace(self, targets=self.targets[rows], cols=self.cols[rows],
                       coef=self.coef[rows], intercept=self.intercept[rows], lam=sel(self.lam),
                       lam_ratio=sel(self.lam_ratio), gap=sel(self.gap),
                       objective=sel(self.objective))


def _pack(coef_dense: np.ndarray, width: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Dense (T, n) -> (cols, vals) with non-zeros first, -1/0 padded to ``width``."""
    nz = coef_dense != 0
    m = max(int(nz.sum(axis=1).max(initial=0)), 1) if width is None else width
    order = np.argsort(~nz, axis=1, kind="stable")[:, :m]
    vals = np.take_along_axis(coef_dense, order, axis=1)
    cols = np.where(vals != 0, order, -1)
    return cols.astype(np.int64), np.where(cols >= 0, vals, 0.0)


def _intercepts(fold: Fold, targets: np.ndarray, cols: np.ndarray, coef: np.ndarray) -> np.ndarray:
    if not fold.center:
        return np.zeros(targets.size)
    mu_c = np.where(cols >= 0, fold.mu[np.maximum(cols, 0)], 0.0)
    return fold.mu[targets] - (coef * mu_c).sum(axis=1)


def _make_depset(fold: Fold, targets, cols, coef, method, **kw) -> DepSet:
    cols = np.asarray(cols, np.int64)
    coef = np.where(cols >= 0, np.asarray(coef, np.float64), 0.0)
    return DepSet(np.asarray(targets, np.int64), cols, coef,
                  _intercepts(fold, np.asarray(targets), cols, coef), fold.n, method, **kw)


def depset_from_coef(fold: Fold, targets: np.ndarray, coef: np.ndarray,
                     method: str) -> DepSet:
    """A :class:`DepSet` from dense coefficients ``coef`` (T, n) (e.g. a point of
    :func:`neudep_utils.covlasso.path` or its refit), with the fold's intercepts."""
    cols, vals = _pack(np.asarray(coef, np.float64))
    return _make_depset(fold, targets, cols, vals, method)


# --------------------------------------------------------------------------------------------
# CovLasso at a target support size
# --------------------------------------------------------------------------------------------


def fit_covlasso_k(fold: Fold, ks: Sequence[int],
                   targets: np.ndarray | Sequence[int] | None = None,
                   candidates: np.ndarray | None = None, *,
                   ratios: np.ndarray | None = None, refine: int = 4, tol: float = 1e-6,
                   max_iter: int = 20_000) -> dict[int, DepSet]:
    """CovLasso dependencies of every target with support size closest to each ``k`` in ``ks``.

    All targets are solved together (one batched :func:`neudep_utils.covlasso.solve` call per lam
    step, warm-started from the previous step) along ``ratios`` (lam / lam_max, decreasing;
    default 48 geometric steps from 0.995 to 0.005); a target leaves the path once its support
    exceeds ``1.25 max(ks) + 5``. Then ``refine`` rounds of geometric bisection between the
    bracketing lams move each target's support closer to each k. Ties prefer the smaller support.
    ``candidates``: (n,) or (T, n) boolean mask of allowed partner columns. The coefficients are
    the CovLasso solution itself (shrunk); use :func:`least_squares_on_support` for a refit.
    """
    S = fold.S
    n = S.shape[0]
    t = np.arange(n) if targets is None else np.asarray(targets, dtype=np.int64)
    T = t.size
    ks = tuple(sorted({int(k) for k in ks}))
    if not ks or ks[0] < 1:
        raise ValueError(f"ks must be positive support sizes, got {ks}")
    allowed = cl.allowed_mask(S, t, candidates)
    ratios = np.geomspace(0.995, 0.005, 48) if ratios is None else np.sort(np.asarray(ratios))[::-1]
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
            c, v = _pack(res.coef[better], width)
            best_k[a, r] = sz[better]
            best_cols[a, r] = c
            best_vals[a, r] = v
            best_lam[a, r] = lam[better]
            best_gap[a, r] = res.gap[better]
            best_obj[a, r] = res.objective[better]

    warm = np.zeros((T, n))
    active = np.ones(T, dtype=bool)
    for r in ratios:
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
    for _ in range(refine):
        for a, k in enumerate(ks):
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
    out = {}
    for a, k in enumerate(ks):
        m = max(int(best_k[a].max(initial=1)), 1)
        out[k] = _make_depset(fold, t, best_cols[a, :, :m], best_vals[a, :, :m], "CovLasso",
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
    """sha256 of the source of the CovLasso package and of this module."""
    import hashlib

    h = hashlib.sha256()
    files = sorted(Path(cl.__file__).parent.glob("*.py")) + [Path(__file__)]
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def save_depsets(path: str | os.PathLike[str], deps: dict[int, DepSet]) -> None:
    """Write ``{k: DepSet}`` to one ``.npz`` (atomic)."""

    from .cache import atomic_save_npz

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

    from .cache import load_npz_checked

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

    t = None if targets is None else np.asarray(targets, np.int64)
    c = None if candidates is None else np.asarray(candidates, bool)
    # the code that produces the fits is part of the key: a changed solver never serves old fits
    key = _digest("covlasso_k-v2", _code_digest(), fold.S, fold.mu, fold.center,
                  tuple(sorted(set(ks))), t, c, sorted(kw.items()))
    path = Path(cache_dir) / f"deps-{key[:24]}.npz"
    got = load_depsets(path)
    if got is not None:
        return got
    out = fit_covlasso_k(fold, ks, targets, candidates, **kw)
    save_depsets(path, out)
    return out


# --------------------------------------------------------------------------------------------
# baselines at equal k
# --------------------------------------------------------------------------------------------


def least_squares_on_support(fold: Fold, targets: np.ndarray, cols: np.ndarray,
                             method: str = "LS", rcond: float = 1e-10) -> DepSet:
    """Least squares of each target on its partner columns (``cols`` (T, m), -1 padded):
    :func:`neudep_utils.covlasso.lstsq_on_support` on the fold's moments (centred: ordinary
    least squares with an intercept), with the fold's intercepts."""
    t = np.asarray(targets, np.int64)
    cols = np.asarray(cols, np.int64)
    if cols.shape[1] == 0:
        return _make_depset(fold, t, np.full((t.size, 1), -1), np.zeros((t.size, 1)), method)
    return _make_depset(fold, t, cols, cl.lstsq_on_support(fold.S, t, cols, rcond), method)


def min_norm_inverse(G: np.ndarray, rcond: float = 1e-12) -> tuple[np.ndarray, np.ndarray]:
    """What every least-squares solution on a (possibly singular) PSD block ``G`` needs.

    Returns ``P0 = pinv(G)`` (eigenvalues at most ``rcond * lambda_max`` dropped) and
    ``P = P0 + N / eps``, with ``N`` the projector onto the dropped (null) directions and
    ``eps = 1e-8 lambda_min_kept``: the inverse of ``G + eps I`` on the same eigenbasis. Ratios of
    ``P`` (``-P[:, i] / P[i, i]``, rank-one downdates) are then the limits of ridge regression as
    the ridge vanishes, i.e. the minimum-norm least-squares solutions, whether ``G`` is singular
    (a target in the span of the others) or not.
    """
    w, V = np.linalg.eigh(np.asarray(G, dtype=np.float64))
    keep = w > rcond * max(float(w.max(initial=0.0)), 0.0)
    if not keep.any():
        z = np.zeros_like(G, dtype=np.float64)
        return z, np.eye(len(G))
    Vk = V[:, keep]
    P0 = (Vk / w[keep]) @ Vk.T
    eps = 1e-8 * float(w[keep].min())
    N = V[:, ~keep] @ V[:, ~keep].T
    return P0, P0 + N / eps


def dense_least_squares(fold: Fold, targets: np.ndarray, columns: np.ndarray | None = None,
                        drop: np.ndarray | None = None, method: str = "dense LS",
                        rcond: float = 1e-12) -> DepSet:
    """Minimum-norm least squares of each target on *all* allowed columns (no sparsity): the
    dense reference, correct for singular moments (a logit layer of width d < n, or fewer fit
    rows than columns).

    ``columns``: the candidate columns (default all); a target inside them is excluded from its
    own row. ``drop`` (T,) optional extra column per target to exclude (-1: none; e.g. B's own
    category in cross-model fits). One eigendecomposition of ``S_CC`` serves every target
    (:func:`min_norm_inverse`): a target outside ``C`` gets ``pinv(S_CC) S_{C,i}``; a target
    inside, or a dropped column, is removed by the Schur-complement formulas applied to the
    vanishing-ridge inverse, which give the minimum-norm solution on the remaining columns (the
    textbook ``-pinv(S)[:, i] / pinv(S)_ii`` does so only when ``S_CC`` is invertible).
    """
    t = np.asarray(targets, np.int64)
    n = fold.n
    C = np.arange(n) if columns is None else np.asarray(columns, np.int64)
    P0, P = min_norm_inverse(fold.S[np.ix_(C, C)], rcond)
    pos = np.full(n, -1)
    pos[C] = np.arange(C.size)
    B = np.zeros((C.size, t.size))
    inside = pos[t] >= 0
    if inside.any():
        j = pos[t[inside]]
        B[:, inside] = -P[:, j] / P[j, j][None]
        B[j, np.flatnonzero(inside)] = 0.0
    if (~inside).any():
        B[:, ~inside] = P0 @ fold.S[np.ix_(C, t[~inside])]
    if drop is not None:
        d = np.asarray(drop, np.int64)
        rows = np.flatnonzero((d >= 0) & (pos[np.maximum(d, 0)] >= 0))
        for r in rows:  # rank-one downdates (cheap: one column each)
            j = pos[d[r]]
            if inside[r]:
                raise ValueError("drop is only supported for targets outside the columns")
            B[:, r] -= P[:, j] * (B[j, r] / P[j, j])
            B[j, r] = 0.0
    cols = np.broadcast_to(C, (t.size, C.size)).copy()
    coef = B.T.copy()
    cols = np.where(coef != 0, cols, -1)
    return _make_depset(fold, t, cols, coef, method)


def _topk_by_score(score: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """Columns of the ``ks[t]`` largest scores per row (-1 padded to max(ks))."""
    m = max(int(ks.max(initial=0)), 1)
    order = np.argsort(-score, axis=1, kind="stable")[:, :m]
    keep = np.arange(m)[None] < ks[:, None]
    keep &= np.isfinite(np.take_along_axis(score, order, axis=1))
    return np.where(keep, order, -1)


def random_support(fold: Fold, targets: np.ndarray, ks: np.ndarray,
                   candidates: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """``ks[t]`` partner columns per target drawn uniformly (seeded) from the allowed columns."""
    t = np.asarray(targets, np.int64)
    rng = np.random.default_rng(seed)
    score = np.where(cl.allowed_mask(fold.S, t, candidates), rng.random((t.size, fold.n)), -np.inf)
    return _topk_by_score(score, np.asarray(ks))


def topcorr_support(fold: Fold, targets: np.ndarray, ks: np.ndarray,
                    candidates: np.ndarray | None = None) -> np.ndarray:
    """The ``ks[t]`` allowed columns with the largest |correlation| with the target.

    Correlation from the fold's moments (centred: Pearson; second moment: cosine similarity).
    """
    t = np.asarray(targets, np.int64)
    d = np.sqrt(np.maximum(np.diag(fold.S), 1e-300))
    corr = np.abs(fold.S[t] / (d[t][:, None] * d[None]))
    score = np.where(cl.allowed_mask(fold.S, t, candidates), corr, -np.inf)
    return _topk_by_score(score, np.asarray(ks))


def baselines(fold: Fold, dep: DepSet, candidates: np.ndarray | None = None,
              seed: int = 0) -> dict[str, DepSet]:
    """Equal-k baselines of a CovLasso :class:`DepSet` (same support size per target).

    ``"random + LS"``: random allowed partners, least squares; ``"top-|corr| + LS"``: the most
    correlated allowed partners, least squares; ``"CovLasso support + LS"``: the CovLasso
    support refitted by least squares (relaxed lasso).
    """
    t, k = dep.targets, dep.k
    out = {
        "random + LS": least_squares_on_support(
            fold, t, random_support(fold, t, k, candidates, seed), "random + LS"),
        "top-|corr| + LS": least_squares_on_support(
            fold, t, topcorr_support(fold, t, k, candidates), "top-|corr| + LS"),
        "CovLasso support + LS": least_squares_on_support(fold, t, dep.cols, "CovLasso support + LS"),
    }
    for d in out.values():
        d.k_requested = dep.k_requested
    return out


