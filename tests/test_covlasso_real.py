"""Slow: CovLasso on a real Lite0 logit covariance agrees with cvxpy and is certified."""

from __future__ import annotations

import numpy as np
import pytest

from neudep_utils import covlasso as cl
from neudep_utils import moments
from neudep_utils.cache import extract


@pytest.mark.slow
@pytest.mark.parametrize("center", [False, True])
def test_real_lite0_covariance_matches_cvxpy(data_root, center):
    ls = extract("efficientnet_lite0", data_root / "imagenet-val", progress=False)
    S = moments.second_moment(ls.centre, center=center)
    targets = np.array([88, 151, 950])  # macaw, Chihuahua, orange
    lam = 0.3 * cl.lam_max(S, targets)
    ours = cl.solve(S, lam, targets)
    assert np.all(ours.gap <= 1e-6 * ours.objective)
    ref_coef = cl.solve_cvxpy(S, lam, targets)
    p_ref = cl.objective(S, ref_coef, targets, lam)
    np.testing.assert_allclose(ours.objective, p_ref, rtol=1e-6)
    assert np.all(ours.objective <= p_ref * (1 + 1e-9))
    # supports agree away from ties: no coefficient clearly non-zero in one solution and
    # clearly zero in the other
    thr = 1e-4 * np.abs(ours.coef).max()
    a, b = np.abs(ours.coef), np.abs(ref_coef)
    assert not (((a > thr) & (b < thr / 10)) | ((b > thr) & (a < thr / 10))).any()
    assert (ours.support_size > 0).all() and (ours.support_size < 1000).all()
