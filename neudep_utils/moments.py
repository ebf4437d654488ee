"""The logit second moment ``S = E[f f^T]`` (or the centred covariance): one home for both forms.

:func:`second_moment` takes the logits themselves, :func:`second_moment_from_sums` the streamed
sums ``(count, sum f, sum f f^T)`` that :class:`Moments` accumulates batch by batch (the cache
stores them with every entry, so the 1.28M ImageNet train logits never sit in memory at once). Both return population moments
(normalised by the sample count) in float64, exactly symmetric, which is what
:mod:`neudep_utils.covlasso` solves on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Moments", "second_moment", "second_moment_from_sums", "symmetrize"]


def second_moment(logits: np.ndarray, center: bool = False) -> np.ndarray:
    """Second moment ``E[f f^T]`` (or the centred covariance) of a sample of logit vectors.

    Parameters
    ----------
    logits : array_like, shape (N, n)
        ``N`` samples of ``n`` logits; any real dtype (computed in float64).
    center : bool, default False
        Subtract the sample mean first, giving ``E[(f - mu)(f - mu)^T]``.

    Returns
    -------
    S : ndarray, shape (n, n)
        Population moment (divided by ``N``), float64, C-contiguous, exactly symmetric.

    Raises
    ------
    ValueError
        If ``logits`` is not 2-D, has no rows, contains NaN or inf, or the moment overflows
        float64.
    """
    x = np.asarray(logits, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"logits must be 2-D (N samples, n categories); got shape {x.shape}")
    if x.shape[0] == 0:
        raise ValueError("logits has no rows; need at least one sample")
    if not np.all(np.isfinite(x)):
        raise ValueError("logits contains NaN or inf; clean or drop those samples first")
    with np.errstate(over="ignore", invalid="ignore"):
        if center:
            x = x - x.mean(axis=0, keepdims=True)
        s = (x.T @ x) / x.shape[0]
    if not np.all(np.isfinite(s)):
        big = float(np.abs(x[np.isfinite(x)]).max()) if np.isfinite(x).any() else float("inf")
        raise ValueError(f"the second moment overflows float64 (largest |logit| {big:.3g}; "
                         "products above ~1.3e154 overflow); rescale the logits first")
    return symmetrize(s)


def second_moment_from_sums(
    count: float, sum_f: np.ndarray, sum_ff: np.ndarray, center: bool = False
) -> np.ndarray:
    """Second moment (or centred covariance) from streamed sums.

    Parameters
    ----------
    count : float
        Number of samples summed (> 0).
    sum_f : array_like, shape (n,)
        ``sum f`` over the samples.
    sum_ff : array_like, shape (n, n)
        ``sum f f^T`` over the samples.
    center : bool, default False
        Return ``sum_ff / count - mu mu^T`` with ``mu = sum_f / count``.

    Returns
    -------
    S : ndarray, shape (n, n)
        ``sum_ff / count`` (minus ``mu mu^T`` when ``center``), float64, exactly symmetric.

    Raises
    ------
    ValueError
        If ``count`` is not a positive number, the shapes disagree, or the sums are not finite.
    """
    if not np.isfinite(count) or count <= 0:
        raise ValueError(f"count must be a positive number of samples; got {count!r}")
    sf = np.asarray(sum_f, dtype=np.float64)
    sff = np.asarray(sum_ff, dtype=np.float64)
    if sf.ndim != 1:
        raise ValueError(f"sum_f must be 1-D (n,); got shape {sf.shape}")
    if sff.shape != (sf.size, sf.size):
        raise ValueError(
            f"sum_ff must have shape (n, n) = {(sf.size, sf.size)} to match sum_f; got {sff.shape}"
        )
    if not (np.all(np.isfinite(sf)) and np.all(np.isfinite(sff))):
        raise ValueError("sum_f / sum_ff contain NaN or inf")
    s = sff / float(count)
    if center:
        mu = sf / float(count)
        s = s - np.outer(mu, mu)
    return symmetrize(s)


def symmetrize(s: np.ndarray) -> np.ndarray:
    """``(s + s^T) / 2`` as a C-contiguous array (exactly symmetric)."""
    return np.ascontiguousarray(0.5 * (s + s.T))


@dataclass
class Moments:
    """Streamed logit moments: ``count``, ``sum_f`` (n,) and ``sum_ff`` (n, n), float64.

    Add batches with :meth:`update`, merge shards with ``+``, and get ``S`` with
    :meth:`second_moment` (which is :func:`second_moment_from_sums`, with its input checks).
    """

    count: int
    sum_f: np.ndarray
    sum_ff: np.ndarray

    @classmethod
    def zeros(cls, n: int) -> Moments:
        """Empty moments for ``n`` classes."""
        return cls(0, np.zeros(n), np.zeros((n, n)))

    def update(self, f: np.ndarray) -> None:
        """Add a batch of logit rows ``f`` of shape ``(B, n)`` (any real dtype)."""
        f64 = np.asarray(f, dtype=np.float64).reshape(-1, self.sum_f.shape[0])
        self.count += f64.shape[0]
        self.sum_f += f64.sum(axis=0)
        self.sum_ff += f64.T @ f64

    def __add__(self, other: Moments) -> Moments:
        return Moments(self.count + other.count, self.sum_f + other.sum_f,
                       self.sum_ff + other.sum_ff)

    @property
    def mean(self) -> np.ndarray:
        """``E[f]``, shape (n,)."""
        return self.sum_f / max(self.count, 1)

    def second_moment(self, center: bool = False) -> np.ndarray:
        """``S = E[f f^T]`` (n, n), or the centred covariance when ``center``; see
        :func:`second_moment_from_sums` (raises ``ValueError`` on no samples or non-finite
        sums)."""
        if self.count == 0:
            raise ValueError("no samples accumulated (every image was skipped or the folder is "
                             "empty)")
        return second_moment_from_sums(self.count, self.sum_f, self.sum_ff, center=center)
