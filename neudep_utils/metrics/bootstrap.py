"""The one bootstrap of the study: percentile intervals from multinomial resampling weights.

Every interval in the book comes from :func:`bootstrap_ci`: a statistic is written as a function
of resampling weights ``W`` (b, n) (multinomial counts over n units: eval images, targets, ...), so
weighted means, ratios and medians are computed for many resamples at once. :func:`mean_ci` and
:func:`median_ci` are the two common cases.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..timing import count

__all__ = ["bootstrap_ci", "bootstrap_counts", "mean_ci", "median_ci", "weighted_median"]


def bootstrap_counts(n: int, n_boot: int, seed: int = 0, chunk: int = 200):
    """Yield (b, n) multinomial resampling counts (seeded) in chunks, ``n_boot`` rows in total."""
    rng = np.random.default_rng(seed)
    done = 0
    while done < n_boot:
        b = min(chunk, n_boot - done)
        idx = rng.integers(0, n, size=(b, n))
        # the counts of each row, as np.add.at would add them (5x faster, the same integers)
        W = np.bincount((np.arange(b)[:, None] * n + idx).ravel(),
                        minlength=b * n).reshape(b, n).astype(np.float64)
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
    count("bootstrap intervals")
    count("bootstrap replicates", n_boot)
    vals = np.concatenate([np.asarray(stat(W), float) for W in bootstrap_counts(n, n_boot, seed)])
    a = (1 - level) / 2
    return (float(np.nanquantile(vals, a)), float(np.nanquantile(vals, 1 - a)))


def weighted_median(x: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Median of ``x`` (n,) under each row of integer weights ``W`` (b, n): the lower median of the
    sample that repeats ``x[j]`` ``W[b, j]`` times (``np.median`` of it when the count is odd)."""
    x = np.asarray(x, float)
    order = np.argsort(x, kind="stable")
    xs = x[order]
    cw = np.cumsum(W[:, order], axis=1)
    tot = cw[:, -1]
    lo = (tot - 1) // 2  # 0-based positions of the two middle elements
    hi = tot // 2
    i_lo = np.array([np.searchsorted(c, v, side="right") for c, v in zip(cw, lo, strict=True)])
    i_hi = np.array([np.searchsorted(c, v, side="right") for c, v in zip(cw, hi, strict=True)])
    return 0.5 * (xs[i_lo] + xs[i_hi])


def mean_ci(x: np.ndarray, n_boot: int = 1000, seed: int = 0,
            level: float = 0.95) -> tuple[float, tuple[float, float]]:
    """Mean of ``x`` (finite entries) and its percentile bootstrap interval (units = entries)."""
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan"), (float("nan"), float("nan"))
    return float(x.mean()), bootstrap_ci(lambda W: (W @ x) / W.sum(1), x.size, n_boot, seed, level)


def median_ci(x: np.ndarray, n_boot: int = 1000, seed: int = 0,
              level: float = 0.95) -> tuple[float, tuple[float, float]]:
    """Median of ``x`` (finite entries) and its percentile bootstrap interval."""
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan"), (float("nan"), float("nan"))
    return float(np.median(x)), bootstrap_ci(lambda W: weighted_median(x, W), x.size, n_boot,
                                             seed, level)
