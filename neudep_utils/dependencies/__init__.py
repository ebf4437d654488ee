"""Stage 5 of the pipeline, the dependencies: folds of the images, CovLasso dependencies at each
support size k, least-squares refits and the equal-k baselines.

- :mod:`.folds`: the one fold protocol (image-level K-fold cross-fitting; moments of the fit side).
- :mod:`.depset`: :class:`DepSet`, least squares on a support, dense least squares, partner masks.
- :mod:`.fit`: CovLasso at requested k (batched, warm-started, bisection on lam), cached on disk.
- :mod:`.baselines`: random and most-correlated partners at equal k.
"""

from __future__ import annotations

from .baselines import baselines, random_support, topcorr_support
from .depset import (
    DepSet,
    candidate_mask,
    dense_least_squares,
    depset_from_coef,
    least_squares_on_support,
    min_norm_inverse,
)
from .fit import fit_covlasso_k, fit_covlasso_k_cached, load_depsets, save_depsets
from .folds import Fold, crossfit, fold_from_moments, image_folds, make_fold

__all__ = ["DepSet", "Fold", "baselines", "candidate_mask", "crossfit", "dense_least_squares",
           "depset_from_coef", "fit_covlasso_k", "fit_covlasso_k_cached", "fold_from_moments",
           "image_folds", "least_squares_on_support", "load_depsets", "make_fold",
           "min_norm_inverse", "random_support", "save_depsets", "topcorr_support"]
