"""CovLasso inputs that must be refused rather than certified (issue 11).

A non-PSD ``S`` with a positive diagonal makes the CovLasso objective unbounded below; the solver
must refuse it with a clear error instead of returning a "converged" solution with a wrong
objective. ``refit`` must not count NaN coefficients as support.
"""

from __future__ import annotations

import numpy as np
import pytest

from neudep_utils import covlasso

S_BAD = np.array([[1.0, 0.9, 0.9], [0.9, 1.0, -0.9], [0.9, -0.9, 1.0]])


def test_non_psd_matrix_is_not_certified():
    """The issue's example: lam 0.1, target 0. The true infimum of the objective is -inf (and
    already -13.45 at the point the old solver returned with objective 1.7, gap 0)."""
    assert np.linalg.eigvalsh(S_BAD)[0] < -0.5 and np.all(np.diag(S_BAD) > 0)
    theta = np.array([0.0, 8.5, 8.5])
    raw = 1.0 - 2 * theta @ S_BAD[:, 0] + theta @ S_BAD @ theta + 0.1 * np.abs(theta).sum()
    assert raw == pytest.approx(-13.45)
    with pytest.raises(ValueError, match=r"not positive semidefinite.*eigenvalue"):
        covlasso.solve(S_BAD, 0.1, [0])


@pytest.mark.parametrize("call", ["path", "refit"])
def test_non_psd_rejected_by_path_and_refit(call: str):
    with pytest.raises(ValueError, match="not positive semidefinite"):
        if call == "path":
            covlasso.path(S_BAD, lam_ratios=[0.5, 0.1], targets=[0])
        else:
            covlasso.refit(S_BAD, np.array([[0.0, 1.0, 1.0]]), targets=[0])


@pytest.mark.parametrize("scale", [1e-12, 1.0, 1e12])
def test_rank_deficient_psd_with_rounding_is_accepted(scale: float):
    """A real second moment of rank 5 < n = 40 has eigenvalues at rounding level below zero;
    it must still be solved (and certified) at every scale."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5, 40)) * np.sqrt(scale)
    S = X.T @ X / 5
    assert np.linalg.eigvalsh(S)[0] < 0  # rounding makes the smallest eigenvalue negative
    res = covlasso.solve(S, covlasso.relative_lams(S, 0.1)[0])
    assert res.converged.all() and np.all(res.objective >= 0)


def test_slightly_indefinite_beyond_tolerance_is_refused():
    rng = np.random.default_rng(1)
    A = rng.normal(size=(30, 30))
    S = A @ A.T / 30
    w, V = np.linalg.eigh(S)
    w[0] = -1e-6 * w[-1]  # far above rounding, far below any real spread
    S_neg = (V * w) @ V.T
    with pytest.raises(ValueError, match="not positive semidefinite"):
        covlasso.solve(S_neg, 0.01)


def test_refit_ignores_nan_coefficients():
    rng = np.random.default_rng(2)
    A = rng.normal(size=(50, 6))
    S = A.T @ A / 50
    coef = np.zeros((1, 6))
    coef[0, 1] = 0.5
    coef[0, 3] = np.nan
    clean = coef.copy()
    clean[0, 3] = 0.0
    with pytest.warns(RuntimeWarning, match="NaN"):
        out = covlasso.refit(S, coef, targets=[0])
    np.testing.assert_allclose(out, covlasso.refit(S, clean, targets=[0]))
    assert out[0, 3] == 0.0 and np.count_nonzero(out) == 1
