"""Shared analysis helpers of the notebooks: out-of-sample dependencies at a target support size.

The protocol (notebooks 01 and 02; 03/04 may reuse it):

1. **Data.** :func:`load_logits` concatenates the cached logits of one model over several image
   folders into a :class:`LogitData` (images, views, classes); :func:`stack_models` puts two models'
   logits of the same images side by side (``f = [f^A; f^B]``, 2n columns).
2. **Splits.** :func:`image_folds` assigns every image to one of K folds (seeded, stratified by
   class). :func:`crossfit` builds one :class:`Fold` per fold: moments from *every view*
   (centre + augmented) of the other folds' images, evaluation on the *centre view* of the
   fold's own images only. :func:`fold_from_moments` makes a fold from streamed moments (e.g. the
   1.28M ImageNet train images) with evaluation on a disjoint folder. No image is ever in the fit
   and the eval set of the same fold.
3. **Dependencies at support size k.** :func:`fit_covlasso_k` solves the CovLasso
   (:mod:`neudep_utils.covlasso`) for all targets in batched, warm-started calls along a
   decreasing lam grid (relative to each target's ``lam_max``), then refines lam by bisection so
   that each target's support size is as close as possible to each requested k. The result is one
   :class:`DepSet` per k (sparse: partner columns and coefficients per target, an intercept when
   the moments are centred, the lam used and the duality gap).
4. **Baselines at equal k** (:func:`baselines`): for every target the *same* support size as the
   CovLasso solution, partners chosen at random, by largest |correlation| with the target, or the
   CovLasso support itself, each followed by a least-squares refit on the fit moments.
   :func:`dense_least_squares` is the no-sparsity reference (all candidates).
5. **Metrics out of sample** (:func:`evaluate`): relative residual ``1 - R^2``, target-class
   accuracy after replacing the target's logit by its dependency (pooled over targets, against
   the unmodified model on the same images), false positives created, the WEAK metric (overall
   top-1 after one replacement) and the achieved k (definitions in :data:`METRIC_DEFINITIONS`),
   with per-image outcomes kept for :func:`metric_ci` / :func:`paired_diff_ci` (95% percentile
   bootstrap intervals over eval images, dependencies held fixed).
6. **Semantics, overlap, unseen categories**: :func:`nearness_vs_chance` (partners near their
   target in a taxonomy, against random partners), :func:`support_overlap` (two models' partner
   sets), :func:`unseen_categories` (rebuild classes hidden from model A's head from A's seen
   logits through dependencies learnt against model B).

:func:`fit_covlasso_k_cached` memoises fits on disk (keyed by the moments and arguments), so
notebooks sharing an ``output_dir`` reuse each other's fits.

Example::

    from neudep_utils import analysis as A
    data = A.load_logits("efficientnet_lite0", ["imagenet-val", "imagenet-sample"], views=1)
    folds = A.crossfit(data, n_folds=2, seed=0, center=True)
    deps = [A.fit_covlasso_k(f, ks=(5, 10)) for f in folds]          # {k: DepSet} per fold
    m = A.evaluate(data, folds, [d[10] for d in deps], keep_errors=True)
    m.summary()["acc_replaced"], A.metric_ci(m, "acc_drop")
    rand = [A.baselines(f, d[10])["random + LS"] for f, d in zip(folds, deps)]

Conventions: logit vectors have ``n`` classes in ImageNet-1k order; "target" is a column index of
the (possibly stacked) logit matrix; the classifier whose accuracy is judged is the first
``n_classes`` columns. With ``center=True`` the moments are the centred covariance and every
dependency has an intercept ``b = mu_i - theta^T mu`` (from the fit set); with ``center=False``
the moment is the second moment ``E[f f^T]`` and there is no intercept.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp

from . import covlasso as cl

__all__ = [
    "DEFAULT_KS",
    "METRIC_DEFINITIONS",
    "DepSet",
    "Fold",
    "LogitData",
    "Metrics",
    "baselines",
    "bootstrap_ci",
    "bootstrap_counts",
    "candidate_mask",
    "crossfit",
    "dense_least_squares",
    "evaluate",
    "fit_covlasso_k",
    "fit_covlasso_k_cached",
    "load_depsets",
    "metric_ci",
    "paired_diff_ci",
    "save_depsets",
    "scale_calibration",
    "fold_from_moments",
    "image_folds",
    "least_squares_on_support",
    "load_logits",
    "metrics_table",
    "nearness_vs_chance",
    "random_support",
    "stack_models",
    "support_overlap",
    "topcorr_support",
    "unseen_categories",
]

#: Support sizes every notebook reports against.
DEFAULT_KS = (1, 2, 3, 5, 10, 20, 50)


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------


@dataclass
class LogitData:
    """Per-image logits of one model (or two stacked models) on a set of images.

    ``logits``: (N images, V views, C columns) float32, view 0 the centre (evaluation) view.
    ``labels``: (N,) ImageNet-1k class index. ``image_ids``: ``"<folder>/<wnid>/<file>"``.
    ``n_classes``: the classifier's number of classes (the first ``n_classes`` columns);
    ``blocks``: model name -> column slice (one block per model).
    """

    logits: np.ndarray
    labels: np.ndarray
    image_ids: tuple[str, ...]
    blocks: dict[str, slice]
    n_classes: int = 1000

    @property
    def n_images(self) -> int:
        """N."""
        return self.logits.shape[0]

    @property
    def n_views(self) -> int:
        """V (1 + augmented views)."""
        return self.logits.shape[1]

    @property
    def models(self) -> tuple[str, ...]:
        """Model names in column order."""
        return tuple(self.blocks)

    def centre(self, idx: np.ndarray | None = None, block: str | None = None) -> np.ndarray:
        """Centre-view logits (N or len(idx), columns of ``block`` or all)."""
        x = self.logits[:, 0] if idx is None else self.logits[idx, 0]
        return x if block is None else x[:, self.blocks[block]]

    def top1(self, block: str | None = None, idx: np.ndarray | None = None) -> float:
        """Centre-view top-1 accuracy of a model block (default: the first)."""
        b = block or self.models[0]
        lab = self.labels if idx is None else self.labels[idx]
        return float((self.centre(idx, b).argmax(1) == lab).mean())


def load_logits(model: str, folders: Sequence[str | os.PathLike[str]], views: int = 0, *,
                cache_dir: str | os.PathLike[str] | None = None, progress: bool = False,
                seed: int = 0) -> LogitData:
    """Cached logits of ``model`` on the concatenation of ``folders`` (extracted once if missing).

    ``views``: augmented views per image beyond the centre view (the cache entry's ``views``).
    """
    from .cache import extract
    from .data import resolve_folder

    parts, labels, ids = [], [], []
    for f in folders:
        ls = extract(model, f, views, seed=seed, cache_dir=cache_dir, progress=progress)
        if ls.logits is None:
            raise ValueError(f"{model} on {f}: the cache entry holds moments only")
        if ls.skipped:  # unreadable images are not in the entry's arrays
            warnings.warn(f"{model} on {f}: {ls.skipped_note()}", stacklevel=2)
        parts.append(ls.logits)
        labels.append(ls.labels)
        tag = resolve_folder(f).name
        ids.extend(f"{tag}/{r}" for r in ls.image_ids)
    L = np.concatenate(parts)
    return LogitData(L, np.concatenate(labels), tuple(ids), {model: slice(0, L.shape[2])},
                     L.shape[2])


def stack_models(a: LogitData, b: LogitData) -> LogitData:
    """Side-by-side logits ``[f^A; f^B]`` of the same images (same ids, labels and views).

    The classifier of the stack is A (``n_classes`` = A's). Augmented views are stacked view by
    view: the cache seeds view ``v`` of image ``i`` identically for every model, so the crops
    coincide (up to each model's input resolution).
    """
    if a.image_ids != b.image_ids:
        raise ValueError("stack_models needs the same images in the same order")
    if not np.array_equal(a.labels, b.labels):
        raise ValueError("stack_models: labels differ")
    v = min(a.n_views, b.n_views)
    if set(a.blocks) & set(b.blocks):
        raise ValueError(f"models overlap: {set(a.blocks) & set(b.blocks)}")
    off = a.logits.shape[2]
    blocks = dict(a.blocks)
    blocks.update({m: slice(s.start + off, s.stop + off) for m, s in b.blocks.items()})
    L = np.concatenate([a.logits[:, :v], b.logits[:, :v]], axis=2)
    return LogitData(L, a.labels, a.image_ids, blocks, a.n_classes)


# --------------------------------------------------------------------------------------------
# splits
# --------------------------------------------------------------------------------------------


def image_folds(labels: np.ndarray, n_folds: int = 2, seed: int = 0) -> np.ndarray:
    """Fold id (0..K-1) per image, seeded and stratified by class.

    Each class's images are shuffled and dealt round-robin from a random starting fold, so a class
    with ``m`` images has ``floor(m/K)`` or ``ceil(m/K)`` in every fold; fold sizes differ by at
    most the number of classes.
    """
    if n_folds < 2:
        raise ValueError(f"n_folds must be >= 2, got {n_folds}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    fold = np.empty(labels.size, dtype=np.int64)
    start = 0
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        fold[idx] = (start + np.arange(idx.size)) % n_folds
        start = (start + idx.size) % n_folds
    # a random permutation of fold names removes the dependence on class order
    return rng.permutation(n_folds)[fold]


@dataclass
class Fold:
    """Moments of a fit set and the images judged with them.

    ``S``: centred covariance (``center``) or second moment of the fit rows; ``mu``: mean of the
    fit rows; ``fit``: fit image indices (``None`` when the moments came from elsewhere);
    ``eval``: eval image indices (centre view only); ``n_fit_rows``: number of fit rows (images
    x views).
    """

    S: np.ndarray
    mu: np.ndarray
    center: bool
    eval: np.ndarray
    fit: np.ndarray | None
    n_fit_rows: int

    @property
    def n(self) -> int:
        """Number of columns."""
        return self.S.shape[0]


def crossfit(data: LogitData, n_folds: int = 2, seed: int = 0, center: bool = True,
             fit_views: bool = True, folds: np.ndarray | None = None) -> list[Fold]:
    """K-fold cross-fitting at the image level.

    Fold ``k`` fits on the images of the other folds (all views when ``fit_views``, else centre
    views) and evaluates on its own images' centre views. ``folds`` overrides
    :func:`image_folds`.
    """
    f = image_folds(data.labels, n_folds, seed) if folds is None else np.asarray(folds)
    out = []
    for k in range(int(f.max()) + 1):
        fit = np.flatnonzero(f != k)
        ev = np.flatnonzero(f == k)
        X = data.logits[fit] if fit_views else data.logits[fit, :1]
        X = X.reshape(-1, X.shape[-1]).astype(np.float64)
        mu = X.mean(axis=0)
        S = cl.second_moment(X, center=center)
        out.append(Fold(S, mu, center, ev, fit, X.shape[0]))
    return out


def fold_from_moments(count: float, sum_f: np.ndarray, sum_ff: np.ndarray, eval_idx: np.ndarray,
                      center: bool = True) -> Fold:
    """A fold whose moments are streamed sums (e.g. ImageNet train), judged on ``eval_idx``."""
    S = cl.second_moment_from_sums(count, sum_f, sum_ff, center=center)
    return Fold(S, np.asarray(sum_f, float) / count, center, np.asarray(eval_idx), None, int(count))


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


# --------------------------------------------------------------------------------------------
# dependency sets
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# CovLasso at a target support size
# --------------------------------------------------------------------------------------------


def _rows_mask(cand: np.ndarray | None, n: int, T: int) -> np.ndarray:
    if cand is None:
        return np.ones((T, n), dtype=bool)
    c = np.asarray(cand, dtype=bool)
    return np.broadcast_to(c, (T, n)) if c.ndim == 1 else c


def fit_covlasso_k(fold: Fold, ks: Sequence[int] = DEFAULT_KS,
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
    cand = _rows_mask(candidates, n, T)
    ratios = np.geomspace(0.995, 0.005, 48) if ratios is None else np.sort(np.asarray(ratios))[::-1]
    lmax = cl.lam_max(S, t, candidates)
    n_allowed = (cand & (np.diag(S) > 0)[None]).sum(1) - cand[np.arange(T), t]
    K = len(ks)
    width = int(1.25 * ks[-1]) + 8
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
        res = cl.solve(S, lam, t[rows], cand[rows], tol=tol, warm_start=warm[rows],
                       max_iter=max_iter, warn=False)
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
            res = cl.solve(S, lam, t[rows], cand[rows], tol=tol, warm_start=w,
                           max_iter=max_iter, warn=False)
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


def save_depsets(path: str | os.PathLike[str], deps: dict[int, DepSet]) -> None:
    """Write ``{k: DepSet}`` to one ``.npz`` (atomic)."""
    from pathlib import Path

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
    from pathlib import Path

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


def fit_covlasso_k_cached(fold: Fold, ks: Sequence[int] = DEFAULT_KS,
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
    from pathlib import Path

    t = None if targets is None else np.asarray(targets, np.int64)
    c = None if candidates is None else np.asarray(candidates, bool)
    key = _digest("covlasso_k-v1", fold.S, fold.mu, fold.center, tuple(sorted(set(ks))), t, c,
                  sorted(kw.items()))
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
    """Least squares of each target on its partner columns (``cols`` (T, m), -1 padded), batched.

    Solves ``S_AA x = S_{A,i}`` (centred moments: ordinary least squares with an intercept) by a
    pseudo-inverse of each block (eigenvalues below ``rcond * max`` dropped), so collinear
    partners get the minimum-norm solution.
    """
    S = fold.S
    t = np.asarray(targets, np.int64)
    cols = np.asarray(cols, np.int64)
    T, m = cols.shape
    if m == 0:
        return _make_depset(fold, t, np.full((T, 1), -1), np.zeros((T, 1)), method)
    ok = cols >= 0
    c = np.maximum(cols, 0)
    G = S[c[:, :, None], c[:, None, :]]
    rhs = S[c, t[:, None]]
    diag_mean = np.where(ok, np.diagonal(G, axis1=1, axis2=2), 0).sum(1) / np.maximum(ok.sum(1), 1)
    pad = ~(ok[:, :, None] & ok[:, None, :])
    G = np.where(pad, 0.0, G)
    eye = np.eye(m, dtype=bool)[None] & ~ok[:, :, None]
    G = G + eye * np.maximum(diag_mean, 1e-12)[:, None, None]
    rhs = np.where(ok, rhs, 0.0)
    out = np.zeros((T, m))
    step = 256
    for s in range(0, T, step):
        w, V = np.linalg.eigh(G[s:s + step])
        cut = rcond * np.abs(w).max(axis=1, keepdims=True)
        inv = np.where(w > cut, 1.0 / np.where(w > cut, w, 1.0), 0.0)
        proj = np.einsum("tji,tj->ti", V, rhs[s:s + step]) * inv
        out[s:s + step] = np.einsum("tij,tj->ti", V, proj)
    out = np.where(ok, out, 0.0)
    return _make_depset(fold, t, cols, out, method)


def dense_least_squares(fold: Fold, targets: np.ndarray, columns: np.ndarray | None = None,
                        drop: np.ndarray | None = None, method: str = "dense LS",
                        rcond: float = 1e-12) -> DepSet:
    """Least squares of each target on *all* allowed columns (no sparsity): the dense reference.

    ``columns``: the candidate columns (default all); a target inside them is excluded from its
    own row (via ``theta = -P[:, i] / P_ii`` with ``P = pinv(S_CC)``). ``drop`` (T,) optional
    extra column per target to exclude (-1: none; e.g. B's own category in cross-model fits),
    removed by the exact rank-one downdate of the least-squares solution.
    """
    t = np.asarray(targets, np.int64)
    n = fold.n
    C = np.arange(n) if columns is None else np.asarray(columns, np.int64)
    P = np.linalg.pinv(fold.S[np.ix_(C, C)], rcond=rcond, hermitian=True)
    pos = np.full(n, -1)
    pos[C] = np.arange(C.size)
    B = np.zeros((C.size, t.size))
    inside = pos[t] >= 0
    if inside.any():
        j = pos[t[inside]]
        B[:, inside] = -P[:, j] / P[j, j][None]
        B[j, np.flatnonzero(inside)] = 0.0
    if (~inside).any():
        B[:, ~inside] = P @ fold.S[np.ix_(C, t[~inside])]
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


def _allowed(fold: Fold, targets: np.ndarray, candidates: np.ndarray | None) -> np.ndarray:
    n = fold.n
    T = targets.size
    m = np.array(_rows_mask(candidates, n, T), dtype=bool, copy=True)
    m[np.arange(T), targets] = False
    m &= (np.diag(fold.S) > 0)[None]
    return m


def random_support(fold: Fold, targets: np.ndarray, ks: np.ndarray,
                   candidates: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """``ks[t]`` partner columns per target drawn uniformly (seeded) from the allowed columns."""
    t = np.asarray(targets, np.int64)
    rng = np.random.default_rng(seed)
    score = np.where(_allowed(fold, t, candidates), rng.random((t.size, fold.n)), -np.inf)
    return _topk_by_score(score, np.asarray(ks))


def topcorr_support(fold: Fold, targets: np.ndarray, ks: np.ndarray,
                    candidates: np.ndarray | None = None) -> np.ndarray:
    """The ``ks[t]`` allowed columns with the largest |correlation| with the target.

    Correlation from the fold's moments (centred: Pearson; second moment: cosine similarity).
    """
    t = np.asarray(targets, np.int64)
    d = np.sqrt(np.maximum(np.diag(fold.S), 1e-300))
    corr = np.abs(fold.S[t] / (d[t][:, None] * d[None]))
    score = np.where(_allowed(fold, t, candidates), corr, -np.inf)
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


# --------------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------------


@dataclass
class Metrics:
    """Out-of-sample metrics of one method at one k, pooled over folds.

    Point estimates (see :data:`METRIC_DEFINITIONS`) and per-image outcomes over the pooled eval
    images (``image``: their indices in the :class:`LogitData`), which :func:`bootstrap_ci`
    resamples. ``relres`` (T,) is each target's out-of-sample 1 - R^2.
    """

    method: str
    k_requested: int | None
    k_mean: float
    relres: np.ndarray
    targets: np.ndarray
    image: np.ndarray
    is_target_image: np.ndarray  # (N_eval,) label is one of the targets
    base_correct: np.ndarray  # (N_eval,) unmodified model correct
    repl_correct: np.ndarray  # (N_eval,) correct after replacing the image's own class logit
    fp_created: np.ndarray  # (N_eval,) number of targets for which the image became a new FP
    weak_correct: np.ndarray  # (N_eval,) fraction of targets whose replacement keeps it correct
    all_repl_correct: np.ndarray  # (N_eval,) correct when all targets are replaced at once
    sse: np.ndarray | None = None  # (N_eval, T) squared errors (kept when keep_errors)
    fval: np.ndarray | None = None  # (N_eval, T) true target logits (kept when keep_errors)

    @property
    def n_targets(self) -> int:
        """T."""
        return self.targets.size

    extra_fp_base: float = 0.0  # unmodified model's false positives per target

    def summary(self) -> dict[str, float]:
        """Point estimates as a flat dict (keys of :data:`METRIC_DEFINITIONS`)."""
        ti = self.is_target_image
        T = self.n_targets
        fp_base = self.extra_fp_base
        return {
            "k": self.k_mean,
            "relres_median": float(np.nanmedian(self.relres)),
            "relres_mean": float(np.nanmean(self.relres)),
            "acc_base": float(self.base_correct[ti].mean()),
            "acc_replaced": float(self.repl_correct[ti].mean()),
            "acc_drop": float(self.base_correct[ti].mean() - self.repl_correct[ti].mean()),
            "fp_created_per_target": float(self.fp_created.sum() / T),
            "fp_base_per_target": fp_base,
            "weak_top1": float(self.weak_correct.mean()),
            "weak_base_top1": float(self.base_correct.mean()),
            "all_replaced_top1": float(self.all_repl_correct.mean()),
        }


#: What each key of :meth:`Metrics.summary` measures (written next to the numbers).
METRIC_DEFINITIONS = {
    "k": "mean support size (number of partner logits) over targets",
    "relres_median": "median over targets of the out-of-sample relative residual 1 - R^2 "
                     "(squared error of the dependency / variance of the target logit, on eval images)",
    "relres_mean": "mean over targets of the out-of-sample 1 - R^2",
    "acc_base": "unmodified model: top-1 accuracy on eval images whose class is a target",
    "acc_replaced": "target-class accuracy after replacement: on eval images of class i, is the image "
                    "still classified i when logit i is replaced by its dependency (pooled over targets)",
    "acc_drop": "acc_base - acc_replaced (accuracy points lost by the replacement, same images)",
    "fp_created_per_target": "false positives created: eval images of other classes that are predicted "
                             "i after replacing logit i but were not before, summed, per target",
    "fp_base_per_target": "false positives of the unmodified model: eval images of other classes "
                          "predicted i, per target",
    "weak_top1": "WEAK metric: overall top-1 on all eval images after replacing one target's logit, "
                 "averaged over targets (barely moves: 1 of 1000 logits)",
    "weak_base_top1": "unmodified overall top-1 on the same eval images",
    "all_replaced_top1": "top-1 when every target logit is replaced by its dependency at once",
}


def evaluate(data: LogitData, folds: Sequence[Fold], deps: Sequence[DepSet], *,
             keep_errors: bool = False, chunk: int = 2048) -> Metrics:
    """Out-of-sample metrics of ``deps[f]`` fitted on ``folds[f]``, pooled over folds.

    Targets are classifier classes (``targets < data.n_classes``); the classifier is the first
    ``n_classes`` columns of ``data``'s centre view. Each fold's dependencies are applied to its
    own eval images only. ``keep_errors`` keeps the per-image squared errors (for bootstrapping
    the relative residual).
    """
    if len(folds) != len(deps):
        raise ValueError("one DepSet per fold")
    t = deps[0].targets
    for d in deps:
        if not np.array_equal(d.targets, t):
            raise ValueError("all folds must have the same targets")
    nC = data.n_classes
    if t.max() >= nC:
        raise ValueError("evaluate: targets must be classifier classes (< n_classes)")
    T = t.size
    is_tgt_class = np.zeros(nC, dtype=bool)
    is_tgt_class[t] = True
    pos_of = np.full(nC, -1)
    pos_of[t] = np.arange(T)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in (
        "image", "base", "repl", "fp", "weak", "allr", "sse", "fval")}
    fp_base = 0
    for fold, dep in zip(folds, deps, strict=True):
        for s in range(0, fold.eval.size, chunk):
            idx = fold.eval[s:s + chunk]
            X = data.logits[idx, 0].astype(np.float64)
            F = X[:, :nC]
            y = data.labels[idx]
            P = dep.predict(X)  # (B, T)
            ft = F[:, t]
            arg = F.argmax(1)
            srt = np.partition(F, nC - 2, axis=1)
            top1v, top2v = srt[:, -1], srt[:, -2]
            # max over j != i of F_j, for each target i
            max_other = np.where(arg[:, None] == t[None], top2v[:, None], top1v[:, None])
            wins = P > max_other  # replaced logit i becomes the argmax
            base_pred_i = arg[:, None] == t[None]
            own = y[:, None] == t[None]
            # target-class accuracy after replacing the image's own class logit
            has = is_tgt_class[y]
            col = np.where(has, pos_of[y], 0)
            repl = np.where(has, wins[np.arange(idx.size), col], False)
            # false positives created: other-class images that newly become predicted i
            fp = (wins & ~own & ~base_pred_i).sum(1)
            fp_base += int((base_pred_i & ~own).sum())
            # weak: correct after replacing target i, averaged over targets
            base_ok = arg == y
            fy = F[np.arange(idx.size), y]
            # label == i: correct iff wins; label != i: correct iff y is argmax of the modified row
            other_ok = np.where(base_ok[:, None], P < fy[:, None],
                                (arg[:, None] == t[None]) & (F[np.arange(idx.size), y][:, None] >= top2v[:, None])
                                & (P < fy[:, None]))
            weak = np.where(own, wins, other_ok).mean(1)
            # everything replaced at once
            G = F.copy()
            G[:, t] = P
            allr = G.argmax(1) == y
            parts["image"].append(idx)
            parts["base"].append(base_ok)
            parts["repl"].append(repl)
            parts["fp"].append(fp)
            parts["weak"].append(weak)
            parts["allr"].append(allr)
            parts["sse"].append(((ft - P) ** 2).astype(np.float32 if not keep_errors else np.float64))
            parts["fval"].append(ft)
    image = np.concatenate(parts["image"])
    sse = np.concatenate(parts["sse"])
    fval = np.concatenate(parts["fval"])
    sst = ((fval - fval.mean(0)) ** 2).sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        relres = np.where(sst > 0, sse.sum(0) / sst, np.nan)
    m = Metrics(
        method=deps[0].method, k_requested=deps[0].k_requested,
        k_mean=float(np.mean([d.k.mean() for d in deps])), relres=relres, targets=t, image=image,
        is_target_image=is_tgt_class[data.labels[image]],
        base_correct=np.concatenate(parts["base"]), repl_correct=np.concatenate(parts["repl"]),
        fp_created=np.concatenate(parts["fp"]), weak_correct=np.concatenate(parts["weak"]),
        all_repl_correct=np.concatenate(parts["allr"]),
        sse=sse if keep_errors else None, fval=fval if keep_errors else None)
    m.extra_fp_base = fp_base / T
    return m


def metrics_table(rows: Iterable[tuple[dict, Metrics]]) -> pd.DataFrame:  # noqa: F821
    """A tidy DataFrame: one row per (labels dict, :class:`Metrics`) with the summary columns."""
    import pandas as pd

    return pd.DataFrame([{**lab, "method": m.method, "k_requested": m.k_requested, **m.summary()}
                         for lab, m in rows])


# --------------------------------------------------------------------------------------------
# bootstrap
# --------------------------------------------------------------------------------------------


def bootstrap_counts(n: int, n_boot: int, seed: int = 0, chunk: int = 200):
    """Yield (b, n) multinomial resampling counts (seeded) in chunks, ``n_boot`` rows in total."""
    rng = np.random.default_rng(seed)
    done = 0
    while done < n_boot:
        b = min(chunk, n_boot - done)
        idx = rng.integers(0, n, size=(b, n))
        W = np.zeros((b, n))
        np.add.at(W, (np.repeat(np.arange(b), n), idx.ravel()), 1.0)
        yield W
        done += b


def bootstrap_ci(stat: Callable[[np.ndarray], np.ndarray], n: int, n_boot: int = 1000,
                 seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of a weighted statistic over ``n`` resampling units.

    ``stat(W)`` receives resampling weights W (b, n) (multinomial counts) and returns (b,)
    values; e.g. ``lambda W: W @ x / W.sum(1)`` for a mean. ``n_boot = 0`` returns (nan, nan).
    """
    if n_boot <= 0:
        return (float("nan"), float("nan"))
    vals = np.concatenate([np.asarray(stat(W), float) for W in bootstrap_counts(n, n_boot, seed)])
    a = (1 - level) / 2
    return (float(np.nanquantile(vals, a)), float(np.nanquantile(vals, 1 - a)))


def metric_ci(m: Metrics, key: str, n_boot: int = 1000, seed: int = 0,
              level: float = 0.95) -> tuple[float, float]:
    """Bootstrap interval (eval images resampled) of one :meth:`Metrics.summary` key.

    Supported: ``acc_replaced``, ``acc_base``, ``acc_drop``, ``fp_created_per_target``,
    ``weak_top1``, ``all_replaced_top1`` and, when ``evaluate(keep_errors=True)``,
    ``relres_median``. The dependencies are held fixed (eval-sampling uncertainty only).
    """
    ti = m.is_target_image.astype(float)
    rc, bc = m.repl_correct.astype(float), m.base_correct.astype(float)
    T = m.n_targets
    fns = {
        "acc_replaced": lambda W: (W @ (rc * ti)) / (W @ ti),
        "acc_base": lambda W: (W @ (bc * ti)) / (W @ ti),
        "acc_drop": lambda W: (W @ ((bc - rc) * ti)) / (W @ ti),
        "fp_created_per_target": lambda W: (W @ m.fp_created.astype(float)) / T,
        "weak_top1": lambda W: (W @ m.weak_correct) / W.sum(1),
        "all_replaced_top1": lambda W: (W @ m.all_repl_correct.astype(float)) / W.sum(1),
    }
    if key == "relres_median":
        if m.sse is None:
            raise ValueError("relres_median needs evaluate(..., keep_errors=True)")

        def rr(W):
            sw = W.sum(1, keepdims=True)
            s1 = W @ m.fval
            s2 = W @ (m.fval ** 2)
            sst = s2 - s1 ** 2 / sw
            with np.errstate(divide="ignore", invalid="ignore"):
                r = (W @ m.sse) / np.where(sst > 0, sst, np.nan)
            return np.nanmedian(r, axis=1)

        fns[key] = rr
    if key not in fns:
        raise ValueError(f"no bootstrap for {key!r}; supported: {sorted(fns)}")
    return bootstrap_ci(fns[key], m.image.size, n_boot, seed, level)


def paired_diff_ci(a: Metrics, b: Metrics, key: str = "acc_replaced", n_boot: int = 1000,
                   seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """``a - b`` of a per-image metric on the same eval images, with a paired bootstrap interval.

    Supported keys: ``acc_replaced``, ``fp_created_per_target``, ``weak_top1``. Returns
    (difference, low, high).
    """
    if not np.array_equal(a.image, b.image):
        raise ValueError("paired_diff_ci needs the same eval images in the same order")
    ti = a.is_target_image.astype(float)
    if key == "acc_replaced":
        x = (a.repl_correct.astype(float) - b.repl_correct.astype(float)) * ti

        def f(W):
            return (W @ x) / (W @ ti)
        point = float(x.sum() / ti.sum())
    elif key == "fp_created_per_target":
        x = (a.fp_created - b.fp_created).astype(float)

        def f(W):
            return (W @ x) / a.n_targets
        point = float(x.sum() / a.n_targets)
    elif key == "weak_top1":
        x = a.weak_correct - b.weak_correct

        def f(W):
            return (W @ x) / W.sum(1)
        point = float(x.mean())
    else:
        raise ValueError(f"unsupported key {key!r}")
    lo, hi = bootstrap_ci(f, a.image.size, n_boot, seed, level)
    return point, lo, hi


# --------------------------------------------------------------------------------------------
# semantics and overlap
# --------------------------------------------------------------------------------------------


def nearness_vs_chance(deps: Sequence[DepSet], near: np.ndarray, candidates: np.ndarray | None = None,
                       offset: int = 0, n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """How often partners are semantically near their target, against random partners.

    ``near`` (n, n) boolean over classes; partner column ``c`` is class ``c - offset`` (cross-model:
    offset = n). Observed: fraction of (target, partner) pairs that are near, pooled over the
    DepSets (e.g. the folds). Chance: the expected fraction for uniformly random partners among
    each target's allowed candidates at the same k (exact expectation, not a simulation).
    Intervals: bootstrap over targets (95% percentile). Returns observed, chance, ratio and CIs.
    """
    n = near.shape[0]
    obs_hits, exp_hits, npairs = [], [], []
    for d in deps:
        t = d.targets
        ok = (d.cols >= 0) & (d.coef != 0)
        cls = np.where(ok, d.cols - offset, 0)
        valid = ok & (cls >= 0) & (cls < n)
        hits = (near[t[:, None], cls] & valid).sum(1)
        if candidates is None:
            allowed = np.ones((t.size, n), bool)
        else:
            c = np.asarray(candidates, dtype=bool)
            c = np.broadcast_to(c, (t.size, c.shape[-1])) if c.ndim == 1 else c
            allowed = c[:, offset:offset + n].copy()
        if offset == 0:
            allowed[np.arange(t.size), t] = False  # a target is never its own partner
        p = (near[t] & allowed).sum(1) / np.maximum(allowed.sum(1), 1)
        kk = valid.sum(1)
        obs_hits.append(hits)
        exp_hits.append(p * kk)
        npairs.append(kk)
    o, e, k = (np.concatenate(x).astype(float) for x in (obs_hits, exp_hits, npairs))

    def rate(W, x):
        return (W @ x) / np.maximum(W @ k, 1e-12)

    obs, chance = float(o.sum() / k.sum()), float(e.sum() / k.sum())
    ci_o = bootstrap_ci(lambda W: rate(W, o), o.size, n_boot, seed)
    ci_c = bootstrap_ci(lambda W: rate(W, e), o.size, n_boot, seed)
    ci_r = bootstrap_ci(lambda W: (W @ o) / np.maximum(W @ e, 1e-12), o.size, n_boot, seed)
    return {"observed": obs, "observed_ci": ci_o, "chance": chance, "chance_ci": ci_c,
            "ratio": obs / chance if chance > 0 else float("nan"), "ratio_ci": ci_r,
            "n_pairs": int(k.sum())}


def support_overlap(a: DepSet, b: DepSet, n_candidates: int | None = None, seed: int = 0,
                    n_boot: int = 1000) -> dict[str, float]:
    """Jaccard overlap of two models' partner sets of the same targets, against chance.

    Chance: the exact expected Jaccard of two independent uniformly random sets of the same sizes
    drawn from the ``n_candidates`` (default n - 1) allowed columns, computed by simulation (seeded,
    200 draws per target). Returns mean observed, mean chance, their CIs (bootstrap over targets).
    """
    if not np.array_equal(a.targets, b.targets):
        raise ValueError("support_overlap needs the same targets")
    N = (a.n_total - 1) if n_candidates is None else n_candidates
    rng = np.random.default_rng(seed)
    T = a.targets.size
    ja = np.zeros(T)
    jc = np.zeros(T)
    ka, kb = a.k, b.k
    for i in range(T):
        A = set(a.cols[i][(a.cols[i] >= 0) & (a.coef[i] != 0)].tolist())
        B = set(b.cols[i][(b.cols[i] >= 0) & (b.coef[i] != 0)].tolist())
        u = len(A | B)
        ja[i] = len(A & B) / u if u else np.nan
    # chance by simulation, vectorised over draws: hypergeometric intersection
    draws = 200
    for i in range(T):
        x, y = int(ka[i]), int(kb[i])
        if x + y == 0:
            jc[i] = np.nan
            continue
        inter = rng.hypergeometric(x, N - x, y, size=draws) if x and y else np.zeros(draws)
        jc[i] = np.mean(inter / (x + y - inter))
    ok = np.isfinite(ja) & np.isfinite(jc)
    ja, jc = ja[ok], jc[ok]
    return {"jaccard": float(ja.mean()), "jaccard_ci": bootstrap_ci(
                lambda W: (W @ ja) / W.sum(1), ja.size, n_boot, seed),
            "chance": float(jc.mean()), "chance_ci": bootstrap_ci(
                lambda W: (W @ jc) / W.sum(1), jc.size, n_boot, seed),
            "n_targets": int(ok.sum())}


# --------------------------------------------------------------------------------------------
# unseen categories
# --------------------------------------------------------------------------------------------


def scale_calibration(fold: Fold, data: LogitData, a: str, b: str, seen: np.ndarray) -> tuple[float, float]:
    """Affine map ``f^A ~ s f^B + c`` pooled over the seen classes and the fold's fit rows.

    Both scalars come from the fit moments alone: ``s = cov(f^A_j, f^B_j) / var(f^B_j)`` summed
    over seen classes j, ``c = mean(f^A - s f^B)`` over seen classes. Used to put rebuilt logits
    (on B's scale) on A's scale without touching A's hidden classes.
    """
    S, mu = fold.S, fold.mu
    ia = np.arange(data.blocks[a].start, data.blocks[a].stop)[seen]
    ib = np.arange(data.blocks[b].start, data.blocks[b].stop)[seen]
    if fold.center:
        cov_ab, var_b = S[ia, ib], S[ib, ib]
    else:
        cov_ab = S[ia, ib] - mu[ia] * mu[ib]
        var_b = S[ib, ib] - mu[ib] ** 2
    s = float(cov_ab.sum() / var_b.sum())
    c = float((mu[ia] - s * mu[ib]).mean())
    return s, c


def unseen_categories(data: LogitData, folds: Sequence[Fold], a: str, b: str, hidden: np.ndarray,
                      ks: Sequence[int] = (10,), *, construction: str = "cross",
                      method: str = "covlasso", seed: int = 0, calibrate: bool = True,
                      cache_dir: str | os.PathLike[str] | None = None, **fit_kw) -> dict:
    """Rebuild model A's logits of ``hidden`` classes from A's *seen* logits; top-1 on those classes.

    ``data``: :func:`stack_models` of A and B (blocks in any order); ``folds`` from :func:`crossfit`
    on it. Coefficients are fitted on each fold's fit rows only, and no A logit of a hidden class
    is ever used (the hidden classes are "removed from A's head"). Constructions:

    - ``"cross"`` (cross-model dependency, the default): target = B's logit of hidden class h,
      partners = A's seen logits; the rebuilt A logit is ``b_h + theta_h^T f^A_seen``.
    - ``"transfer"``: target = B's logit of h, partners = B's seen logits (a within-B dependency);
      the same coefficients and intercept are then applied to A's seen logits.

    ``method``: ``"covlasso"`` (support size closest to each k), ``"refit"`` (the CovLasso support
    refitted by least squares), ``"random"`` (random seen partners at the CovLasso's k, least
    squares) or ``"dense"`` (least squares on all seen logits; the
    result has the single key ``"dense"``). With ``calibrate`` the rebuilt logits (on B's scale)
    are mapped to A's scale by :func:`scale_calibration` (seen classes only). ``fit_kw`` go to
    :func:`fit_covlasso_k` (e.g. ``ratios``, ``refine``).

    Returns ``{k: outcome}``; each outcome holds per-image booleans on the eval images of hidden
    classes (``image``; ``rebuilt_1000`` / ``rebuilt_hidden``: A with the rebuilt logits, over all
    1000 classes / among the hidden classes only; ``B_1000`` / ``B_hidden``: model B;
    ``A_1000`` / ``A_hidden``: A's own logits, the upper bound), on seen-class eval images
    (``seen_image``; ``seen_rebuilt``, ``seen_A``, ``seen_A_removed``: 1000-way correctness with the
    rebuilt hidden logits, with A's own, and with the hidden classes removed), ``deps`` (per fold),
    ``k_mean`` and ``calibration`` (per fold ``(s, c)``).
    """
    hidden = np.sort(np.asarray(hidden, np.int64))
    nC = data.blocks[a].stop - data.blocks[a].start
    seen = np.setdiff1d(np.arange(nC), hidden)
    sa, sb = data.blocks[a].start, data.blocks[b].start
    n_tot = data.logits.shape[2]
    targets = sb + hidden
    if construction == "cross":
        cols = sa + seen
    elif construction == "transfer":
        cols = sb + seen
    else:
        raise ValueError(f"construction must be 'cross' or 'transfer', got {construction!r}")
    if method not in ("covlasso", "refit", "random", "dense"):
        raise ValueError(f"method must be 'covlasso', 'refit', 'random' or 'dense', got {method!r}")
    cand = np.zeros(n_tot, dtype=bool)
    cand[cols] = True
    keys = ("dense",) if method == "dense" else tuple(ks)
    out: dict = {k: {key: [] for key in (
        "image", "rebuilt_1000", "rebuilt_hidden", "B_1000", "B_hidden", "A_1000", "A_hidden",
        "seen_image", "seen_rebuilt", "seen_A", "seen_A_removed", "deps")} for k in keys}
    is_hidden = np.zeros(nC, dtype=bool)
    is_hidden[hidden] = True
    calib = []
    for fi, fold in enumerate(folds):
        if method == "dense":
            fitted = {"dense": dense_least_squares(fold, targets, cols)}
        else:
            fitted = fit_covlasso_k_cached(fold, ks, targets, cand, cache_dir=cache_dir, **fit_kw)
        s, c = scale_calibration(fold, data, a, b, seen) if calibrate else (1.0, 0.0)
        calib.append((s, c))
        X = data.logits[fold.eval, 0].astype(np.float64)
        FA = X[:, sa:sa + nC]
        FB = X[:, sb:sb + nC]
        y = data.labels[fold.eval]
        hid_img = is_hidden[y]
        for k in keys:
            dep = fitted[k]
            if method == "random":
                dep = least_squares_on_support(
                    fold, dep.targets, random_support(fold, dep.targets, dep.k, cand, seed + fi),
                    "random + LS")
            elif method == "refit":
                dep = least_squares_on_support(fold, dep.targets, dep.cols, "CovLasso support + LS")
            if construction == "transfer":  # move B-block partner columns onto A's block
                dep_a = replace(dep, cols=np.where(dep.cols >= 0, dep.cols - sb + sa, -1))
                rebuilt = dep_a.predict(X)
            else:
                rebuilt = dep.predict(X)
            rebuilt = s * rebuilt + c
            G = FA.copy()
            G[:, hidden] = rebuilt
            o = out[k]
            o["deps"].append(dep)
            yy = y[hid_img]
            o["image"].append(fold.eval[hid_img])
            o["rebuilt_1000"].append(G[hid_img].argmax(1) == yy)
            o["rebuilt_hidden"].append(hidden[G[hid_img][:, hidden].argmax(1)] == yy)
            o["B_1000"].append(FB[hid_img].argmax(1) == yy)
            o["B_hidden"].append(hidden[FB[hid_img][:, hidden].argmax(1)] == yy)
            o["A_1000"].append(FA[hid_img].argmax(1) == yy)
            o["A_hidden"].append(hidden[FA[hid_img][:, hidden].argmax(1)] == yy)
            ys = y[~hid_img]
            removed = FA[~hid_img].copy()
            removed[:, hidden] = -np.inf
            o["seen_image"].append(fold.eval[~hid_img])
            o["seen_rebuilt"].append(G[~hid_img].argmax(1) == ys)
            o["seen_A"].append(FA[~hid_img].argmax(1) == ys)
            o["seen_A_removed"].append(removed.argmax(1) == ys)
    for k in keys:
        for key, v in out[k].items():
            if key != "deps":
                out[k][key] = np.concatenate(v)
        out[k]["k_mean"] = float(np.mean([d.k.mean() for d in out[k]["deps"]]))
        out[k]["calibration"] = calib
    return out
