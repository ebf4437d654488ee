"""The one fold protocol of the study: image-level K-fold cross-fitting.

:func:`image_folds` assigns every image to one of K folds (seeded, stratified by class).
:func:`crossfit` builds one :class:`Fold` per fold: moments from *every view* (centre + augmented)
of the other folds' images, evaluation on the *centre view* of the fold's own images only.
:func:`fold_from_moments` makes a fold from streamed moments (e.g. the 1.28M ImageNet train images)
judged on a disjoint folder; :func:`make_fold` fits a fold on any chosen image set (learning
curves, in-sample checks); :func:`holdout_split` holds out a fraction of the images the same
way (seeded, spread over the classes), for ``python -m neudep_utils fit --holdout``. No image is
ever in the fit and the eval set of the same fold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..cache import LogitData
from ..moments import second_moment, second_moment_from_sums

__all__ = ["Fold", "crossfit", "fold_from_moments", "holdout_split", "image_folds",
           "make_fold"]


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


def holdout_split(n: int, frac: float, seed: int = 0, labels: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Seeded ``(fit, held-out)`` image indices (sorted) with a fraction ``frac`` held out.

    The images are shuffled (``seed``) and, with ``labels``, grouped by class (stratified, as
    :func:`image_folds` deals each class over the folds); every ``1/frac``-th image of that order
    is held out, so ``floor((i + 1) frac) - floor(i frac)`` decides image ``i`` and a class of
    ``m`` images has ``floor(m frac)`` or ``ceil(m frac)`` of them held out, singleton classes
    included.

    Parameters
    ----------
    n : int
        Number of images.
    frac : float
        Held-out fraction, ``0 < frac < 1``.
    seed : int, default 0
        Seed of the shuffle.
    labels : ndarray, shape (n,), optional
        Class of each image (stratifies the split).

    Returns
    -------
    tuple of ndarray
        The fit and the held-out image indices.
    """
    if not 0.0 < frac < 1.0:
        raise ValueError(f"the held-out fraction must be in (0, 1), got {frac}")
    order = np.random.default_rng(seed).permutation(n)
    if labels is not None:  # stratified: shuffled, grouped by class
        order = order[np.argsort(np.asarray(labels)[order], kind="stable")]
    i = np.arange(n)
    held = np.zeros(n, dtype=bool)
    held[order] = np.floor((i + 1) * frac) > np.floor(i * frac)
    return np.flatnonzero(~held), np.flatnonzero(held)



@dataclass
class Fold:
    """Moments of a fit set and the images judged with them.

    ``S`` (n, n): centred covariance (``center``) or second moment of the fit rows; ``mu`` (n,):
    mean of the fit rows; ``fit_idx``: fit image indices (``None`` when the moments came from
    elsewhere); ``eval_idx``: eval image indices (centre view only); ``n_fit_rows``: number of fit
    rows (images x views).
    """

    S: np.ndarray
    mu: np.ndarray
    center: bool
    eval_idx: np.ndarray
    fit_idx: np.ndarray | None
    n_fit_rows: int

    @property
    def n(self) -> int:
        """Number of columns."""
        return self.S.shape[0]


def make_fold(data: LogitData, fit_idx: np.ndarray, eval_idx: np.ndarray, center: bool = True,
              fit_views: bool = True) -> Fold:
    """A fold fitted on the images ``fit_idx`` (all views when ``fit_views``, else centre views)
    and judged on the centre views of ``eval_idx``."""
    fit_idx = np.asarray(fit_idx, np.int64)
    X = data.logits[fit_idx] if fit_views else data.logits[fit_idx, :1]
    X = X.reshape(-1, X.shape[-1]).astype(np.float64)
    return Fold(second_moment(X, center=center), X.mean(axis=0), center,
                np.asarray(eval_idx, np.int64), fit_idx, X.shape[0])


def crossfit(data: LogitData, n_folds: int = 2, seed: int = 0, center: bool = True,
             fit_views: bool = True, folds: np.ndarray | None = None) -> list[Fold]:
    """K-fold cross-fitting at the image level.

    Fold ``k`` fits on the images of the other folds (all views when ``fit_views``, else centre
    views) and evaluates on its own images' centre views. ``folds`` overrides
    :func:`image_folds`.
    """
    f = image_folds(data.labels, n_folds, seed) if folds is None else np.asarray(folds)
    return [make_fold(data, np.flatnonzero(f != k), np.flatnonzero(f == k), center, fit_views)
            for k in range(int(f.max()) + 1)]


def fold_from_moments(count: float, sum_f: np.ndarray, sum_ff: np.ndarray, eval_idx: np.ndarray,
                      center: bool = True) -> Fold:
    """A fold whose moments are streamed sums (e.g. ImageNet train), judged on ``eval_idx``."""
    S = second_moment_from_sums(count, sum_f, sum_ff, center=center)
    return Fold(S, np.asarray(sum_f, float) / count, center, np.asarray(eval_idx), None, int(count))
