"""How the single-model results scale: with the number of fit images (learning curve) and with
the width of the logit layer (width curve).

- :func:`learning_curve`: for several seeds, a fixed held-out set of images and nested fit sets
  of growing size; at each size the CovLasso dependency at ``k``, its least-squares refit and
  dense least squares, judged on the held-out images and, as an optimistic oracle, on their own
  fit images. :func:`fit_saturating` fits ``y = a + b n^-c`` to a curve and extrapolates it.
- :func:`split_seeds`: the headline metrics under other image-level splits (pipeline-level
  uncertainty: the folds, the fits and the eval images all change).
- :func:`low_rank_head` / :func:`width_curve`: a linear head ``W h + b`` truncated to rank ``d'``
  (SVD of ``W``, bias kept), its top-1, and the C1 metrics of the logits it produces.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from scipy.optimize import curve_fit
from tqdm.auto import tqdm

from ..cache import LogitData
from ..dependencies import (
    crossfit,
    dense_least_squares,
    fit_covlasso_k_cached,
    image_folds,
    least_squares_on_support,
    make_fold,
)
from ..metrics import evaluate

__all__ = ["fit_saturating", "learning_curve", "low_rank_head", "split_seeds", "width_curve"]


def _three(fold, fitted, targets):
    """CovLasso at k, its support refitted by least squares, and dense least squares."""
    refit = least_squares_on_support(fold, fitted.targets, fitted.cols, "CovLasso support + LS")
    return {"CovLasso": fitted, "CovLasso support + LS": refit,
            "dense LS": dense_least_squares(fold, targets)}


def learning_curve(data: LogitData, sizes: Sequence[int], seeds: Sequence[int], k: int = 10,
                   n_eval_folds: int = 10, targets: np.ndarray | None = None,
                   center: bool = True, cache_dir: str | os.PathLike[str] | None = None,
                   progress: bool = False) -> list[dict]:
    """Held-out and in-sample C1 metrics against the number of fit images.

    For each seed, one class-stratified fold out of ``n_eval_folds`` (:func:`image_folds`) is the
    held-out set; the other images, in a seeded order, give nested fit sets of each size in
    ``sizes`` (all views of a fit image). Returns one record per (seed, size, method, judged on)
    with ``n_fit``, ``relres_median``, ``acc_replaced``, ``acc_base`` and ``k``.
    """
    t = np.arange(data.n_classes) if targets is None else np.asarray(targets)
    rows = []
    jobs = [(s, n) for s in seeds for n in sorted(sizes)]
    split = {}
    for seed, n_fit in tqdm(jobs, disable=not progress, desc="learning curve"):
        if seed not in split:
            f = image_folds(data.labels, n_eval_folds, seed)
            ev = np.flatnonzero(f == 0)
            pool = np.random.default_rng(seed).permutation(np.flatnonzero(f != 0))
            split[seed] = (ev, pool)
        ev, pool = split[seed]
        if n_fit > pool.size:
            raise ValueError(f"learning curve: {n_fit} fit images requested but only "
                             f"{pool.size} are outside the held-out set")
        fold = make_fold(data, np.sort(pool[:n_fit]), ev, center)
        fitted = fit_covlasso_k_cached(fold, (k,), t, cache_dir=cache_dir)[k]
        oracle = replace(fold, eval_idx=fold.fit_idx)
        for method, dep in _three(fold, fitted, t).items():
            for judged, fl in (("held-out images", fold), ("own fit images (oracle)", oracle)):
                s = evaluate(data, [fl], [dep]).summary()
                rows.append({"seed": seed, "n_fit": n_fit, "method": method,
                             "judged on": judged, "k": s["k"],
                             "relres_median": s["relres_median"],
                             "acc_replaced": s["acc_replaced"], "acc_base": s["acc_base"]})
    return rows


def split_seeds(data: LogitData, seeds: Sequence[int], k: int, targets: np.ndarray | None = None,
                n_folds: int = 2, center: bool = True, known: dict | None = None,
                cache_dir: str | os.PathLike[str] | None = None,
                progress: bool = False) -> list[dict]:
    """The C1 metrics at support size ``k`` for each split seed: cross-fitting on the seed's
    folds, the CovLasso dependency, its least-squares refit and dense least squares, judged out
    of sample. ``known``: ``{seed: (folds, [{k: DepSet} per fold])}`` already fitted (reused).
    Returns one record per (seed, method)."""
    t = np.arange(data.n_classes) if targets is None else np.asarray(targets)
    rows = []
    for seed in tqdm(seeds, disable=not progress, desc="split seeds"):
        if known and seed in known:
            folds, fits = known[seed]
            fitted = [fd[k] for fd in fits]
        else:
            folds = crossfit(data, n_folds, seed, center=center)
            fitted = [fit_covlasso_k_cached(f, (k,), t, cache_dir=cache_dir)[k] for f in folds]
        per = [_three(f, d, t) for f, d in zip(folds, fitted, strict=True)]
        for method in per[0]:
            s = evaluate(data, folds, [p[method] for p in per]).summary()
            rows.append({"seed": seed, "method": method, "k": s["k"],
                         "acc_replaced": s["acc_replaced"], "acc_base": s["acc_base"],
                         "relres_median": s["relres_median"]})
    return rows


def fit_saturating(n: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Least-squares fit of ``y = a + b n^-c`` (``c > 0``; ``a`` is the level the curve tends to
    with unlimited fit images). Returns ``a``, ``b``, ``c`` and ``predict`` (a callable); when the
    fit fails (too few points, no curvature) ``a`` is NaN."""
    n = np.asarray(n, float)
    y = np.asarray(y, float)
    ok = np.isfinite(y) & (n > 0)
    n, y = n[ok], y[ok]

    def f(x, a, b, c):
        return a + b * np.power(x, -c)

    out = {"a": float("nan"), "b": float("nan"), "c": float("nan")}
    if np.unique(n).size >= 3:
        try:
            p, _ = curve_fit(f, n, y, p0=(y.min(), (y.max() - y.min()) * n.min() ** 0.5, 0.5),
                             bounds=([-np.inf, -np.inf, 1e-3], [np.inf, np.inf, 5.0]),
                             maxfev=20_000)
            out = {"a": float(p[0]), "b": float(p[1]), "c": float(p[2])}
        except (RuntimeError, ValueError):
            pass
    out["predict"] = lambda x: f(np.asarray(x, float), out["a"], out["b"], out["c"])
    return out


def low_rank_head(W: np.ndarray, b: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
    """The head ``W h + b`` with ``W`` (n, D) truncated to its best rank-``d`` approximation
    (SVD; the bias is kept): ``(W_d, b)``. ``d >= rank(W)`` returns ``W`` unchanged."""
    W = np.asarray(W, np.float64)
    if d >= min(W.shape):
        return W.copy(), np.asarray(b, np.float64)
    U, s, Vt = np.linalg.svd(W, full_matrices=False)
    return (U[:, :d] * s[:d]) @ Vt[:d], np.asarray(b, np.float64)


def width_curve(model: str, features: np.ndarray, labels: np.ndarray, image_ids: tuple[str, ...],
                W: np.ndarray, b: np.ndarray, widths: Sequence[int], ks: Sequence[int] = (10, 50),
                n_folds: int = 2, seed: int = 0, targets: np.ndarray | None = None,
                center: bool = True, cache_dir: str | os.PathLike[str] | None = None,
                progress: bool = False) -> list[dict]:
    """C1 metrics of the logits of rank-``d'`` heads, for each ``d'`` in ``widths`` and the
    untouched head.

    ``features``: (images, views, D) penultimate features; ``W`` (n, D), ``b`` (n,) the head.
    Widths at or above the head's rank (e.g. 256 for the ViT's d = 192) are the untouched head
    and are not repeated. For each width the logits ``H W_d^T + b`` are cross-fitted like notebook 01's (``n_folds``
    image-level folds, ``seed``) and judged out of sample: the CovLasso dependency at each k and
    dense least squares. Returns records ``{model, d, d_over_n, feature_width, k, method,
    acc_replaced, relres_median, acc_base, top1}`` (``d``: the rank of the truncated layer, at
    most ``min(n, feature_width)`` for the untouched one; ``k``: the mean support size reached).
    """
    n = W.shape[0]
    H = np.asarray(features, np.float32)
    full = int(np.linalg.matrix_rank(W))
    rows = []
    # widths at or above the head's rank give the untouched head again: measured once, as it
    for d in tqdm(sorted({d for d in widths if d < full} | {full}), disable=not progress,
                  desc=f"{model} widths"):
        Wd, bd = low_rank_head(W, b, d)
        L = (H.reshape(-1, H.shape[-1]).astype(np.float64) @ Wd.T + bd)
        L = L.reshape(H.shape[0], H.shape[1], n).astype(np.float32)
        data = LogitData(L, np.asarray(labels), tuple(image_ids), {model: slice(0, n)}, n)
        folds = crossfit(data, n_folds, seed, center=center)
        t = np.arange(n) if targets is None else np.asarray(targets)
        fits = [fit_covlasso_k_cached(f, ks, t, cache_dir=cache_dir) for f in folds]
        base = {"model": model, "d": min(d, full), "d_over_n": min(d, full) / n,
                "feature_width": int(W.shape[1]), "top1": data.top1()}
        for k in ks:
            s = evaluate(data, folds, [fd[k] for fd in fits]).summary()
            rows.append({**base, "k": s["k"], "k_requested": k, "method": "CovLasso",
                         "acc_replaced": s["acc_replaced"], "relres_median": s["relres_median"],
                         "acc_base": s["acc_base"]})
        s = evaluate(data, folds, [dense_least_squares(f, t) for f in folds]).summary()
        rows.append({**base, "k": s["k"], "k_requested": None, "method": "dense LS",
                     "acc_replaced": s["acc_replaced"], "relres_median": s["relres_median"],
                     "acc_base": s["acc_base"]})
    return rows
