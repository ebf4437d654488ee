"""Equal-k baselines of a CovLasso dependency: random partners, the most correlated partners and
the CovLasso support itself, each refitted by least squares with exactly the support size the
CovLasso reached per target."""

from __future__ import annotations

import numpy as np

from .. import covlasso as cl
from .depset import DepSet, least_squares_on_support
from .folds import Fold

__all__ = ["baselines", "random_support", "topcorr_support"]


def _topk_by_score(score: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """Columns of the ``ks[t]`` largest scores per row (-1 padded to max(ks))."""
    m = max(int(ks.max(initial=0)), 1)
    T, n = score.shape
    if m >= n or np.isnan(score).any():
        order = np.argsort(-score, axis=1, kind="stable")[:, :m]
    else:
        # the first m of each row's stable descending order, without sorting the whole row:
        # every one of them scores at least the row's m-th largest value, and among those the
        # stable sort keeps the full sort's order (score, then column) - the same columns
        kth = np.partition(score, n - m, axis=1)[:, n - m]
        order = np.empty((T, m), dtype=np.int64)
        for r in range(T):
            c = np.flatnonzero(score[r] >= kth[r])
            order[r] = c[np.argsort(-score[r, c], kind="stable")[:m]]
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
