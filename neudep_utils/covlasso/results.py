"""The results of the CovLasso API: a batched solve (:class:`CovLassoResult`) and a path
(:class:`CovLassoPath`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# ---------------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------------


@dataclass
class CovLassoResult:
    """Solutions for a batch of T targets over n categories.

    Attributes
    ----------
    coef : ndarray, shape (T, n)
        ``coef[t]`` is theta for target ``targets[t]`` (exact zeros at the target and outside the
        candidates).
    objective : ndarray, shape (T,)
        ``P(theta)``.
    gap : ndarray, shape (T,)
        Duality gap in objective units, a certificate: ``objective - gap <= optimum <=
        objective``.
    lam : ndarray, shape (T,)
        Absolute penalty per target.
    targets : ndarray of int, shape (T,)
        Target indices.
    n_iter : ndarray of int, shape (T,)
        Coordinate sweeps (plus working-set rounds) per target, including the loose
        continuation solves at larger lams that a solve from zero starts with.
    converged : ndarray of bool, shape (T,)
        Whether ``gap <= tol * objective`` (or below the rounding floor) was reached within
        ``max_iter``.
    lam_max : ndarray, shape (T,)
        Smallest lam giving theta = 0, per target.
    """

    coef: np.ndarray
    objective: np.ndarray
    gap: np.ndarray
    lam: np.ndarray
    targets: np.ndarray
    n_iter: np.ndarray
    converged: np.ndarray
    lam_max: np.ndarray = field(default_factory=lambda: np.empty(0))

    @property
    def support_size(self) -> np.ndarray:
        """Number of non-zero coefficients k per target, shape (T,)."""
        return np.count_nonzero(self.coef, axis=1)

    @property
    def relative_gap(self) -> np.ndarray:
        """gap / objective (objective floored at the smallest positive float), shape (T,)."""
        return self.gap / np.maximum(self.objective, np.finfo(np.float64).tiny)

    def support(self, t: int) -> np.ndarray:
        """Indices of the non-zero coefficients of the ``t``-th target (row ``t``).

        Parameters
        ----------
        t : int
            Row of the result (the target is ``targets[t]``).

        Returns
        -------
        ndarray of int
            Partner columns.
        """
        return np.flatnonzero(self.coef[t])


@dataclass
class CovLassoPath:
    """A warm-started solution path over L lams for T targets (n categories).

    Attributes
    ----------
    coefs : ndarray, shape (L, T, n)
    objective, gap : ndarray, shape (L, T)
    lams : ndarray, shape (L, T)
        Absolute lams, in the order given.
    targets : ndarray of int, shape (T,)
    n_iter : ndarray of int, shape (L, T)
    converged : ndarray of bool, shape (L, T)
    lam_max : ndarray, shape (T,)
    """

    coefs: np.ndarray
    objective: np.ndarray
    gap: np.ndarray
    lams: np.ndarray
    targets: np.ndarray
    n_iter: np.ndarray
    converged: np.ndarray
    lam_max: np.ndarray = field(default_factory=lambda: np.empty(0))

    @property
    def support_size(self) -> np.ndarray:
        """(L, T) number of non-zero coefficients."""
        return np.count_nonzero(self.coefs, axis=2)

    @property
    def relative_gap(self) -> np.ndarray:
        """(L, T) gap / objective."""
        return self.gap / np.maximum(self.objective, np.finfo(np.float64).tiny)

    def __getitem__(self, ell: int) -> CovLassoResult:
        """The ``ell``-th point of the path as a :class:`CovLassoResult`."""
        return CovLassoResult(
            coef=self.coefs[ell],
            objective=self.objective[ell],
            gap=self.gap[ell],
            lam=self.lams[ell],
            targets=self.targets,
            n_iter=self.n_iter[ell],
            converged=self.converged[ell],
            lam_max=self.lam_max,
        )

    def __len__(self) -> int:
        return self.coefs.shape[0]
