"""The CovLasso kernel's shortcuts keep the certificate: partial gradient passes, continuation,
the working set carried along a path, determinism, and the cheaper input checks."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from neudep_utils import covlasso as cl
from neudep_utils import moments
from neudep_utils.covlasso import _validate as V
from neudep_utils.covlasso._kernels import N_COUNTERS, lam_max_rows, solve_batch


def logit_cov(n: int, d: int, N: int, seed: int, scale: float = 1.0) -> np.ndarray:
    """Rank-deficient logit second moment (d < n features), like the real ones."""
    rng = np.random.default_rng(seed)
    feats = np.maximum(rng.standard_normal((N, d)) @ rng.standard_normal((d, d)) / np.sqrt(d), 0)
    W = rng.standard_normal((n, d)) / np.sqrt(d)
    return scale * moments.second_moment(feats @ W.T + 0.1 * rng.standard_normal(n))


def decaying(n: int, seed: int, decay: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return moments.symmetrize((q * np.exp(-np.arange(n) / decay)) @ q.T)


MATS = {
    "logit": lambda: logit_cov(300, 120, 2000, seed=1),
    "logit_tiny": lambda: logit_cov(200, 60, 1000, seed=2, scale=1e-140),
    "logit_huge": lambda: logit_cov(200, 60, 1000, seed=3, scale=1e140),
    "decaying": lambda: decaying(250, seed=4, decay=20.0),
}


def run_kernel(S, targets, steps, dest, tol=1e-8, warm=None):
    """The kernel on raw inputs; returns coefs (R, T, n), objective, gap, iters, ok, passes."""
    n = S.shape[0]
    T = targets.size
    allowed = V.allowed_masks(S, targets, V.check_candidates(None, n, T))
    R = int(dest.max()) + 1
    coefs = np.zeros((R, T, n))
    out = [np.zeros((R, T)), np.zeros((R, T)), np.zeros((R, T), np.int64), np.zeros((R, T), bool)]
    passes = np.zeros((T, N_COUNTERS), np.int64)
    solve_batch(S, float(np.max(np.diag(S))), targets, np.ascontiguousarray(steps),
                np.ascontiguousarray(dest), allowed, np.zeros((T, n)) if warm is None else warm,
                coefs, tol, 0.1, 20_000, *out, passes)
    return (coefs, *out, passes)


@pytest.mark.parametrize("name", list(MATS))
def test_certificate_with_partial_passes_is_the_full_one(name):
    """Most rounds skip the full gradient pass (a bound proves which coordinates cannot matter);
    the gap reported must still be the duality gap over all coordinates: recomputed from scratch
    it agrees to rounding, and it is never smaller (a missed violator would make it smaller)."""
    S = MATS[name]()
    n = S.shape[0]
    t = np.arange(0, n, 3)
    lm = lam_max_rows(S, t, V.allowed_masks(S, t, V.check_candidates(None, n, t.size)))
    ratios = np.array([0.5, 0.2, 0.1, 0.05, 0.03])
    steps = ratios[:, None] * lm[None, :]
    dest = np.repeat(np.arange(ratios.size)[:, None], t.size, axis=1)
    coefs, obj, gap, _, ok, passes = run_kernel(S, t, steps, dest)
    assert ok.all()
    assert passes[:, 1].sum() > 0, "the partial pass was never exercised"
    for ell in range(ratios.size):
        ref = cl.duality_gap(S, coefs[ell], t, steps[ell])
        P = cl.objective(S, coefs[ell], t, steps[ell])
        np.testing.assert_allclose(obj[ell], P, rtol=1e-9)
        assert np.all(np.abs(gap[ell] - ref) <= 1e-11 * P), name
        assert np.all(ref <= 1e-8 * P + 1e-11 * P)


def test_continuation_steps_are_not_stored_and_share_the_budget():
    """dest = -1 steps are solved loosely as warm starts only; dest = -2 steps are skipped; the
    final point is certified and its iteration count includes the continuation."""
    S = MATS["logit"]()
    t = np.arange(40)
    lm = cl.lam_max(S, t)
    steps = np.vstack([0.3 * lm, 0.1 * lm, 0.03 * lm])
    dest = np.vstack([np.full(40, -1), np.where(t % 2 == 0, -1, -2), np.zeros(40, int)])
    coefs, obj, gap, iters, ok, _ = run_kernel(S, t, steps, dest)
    direct = run_kernel(S, t, steps[2:], np.zeros((1, 40), int))
    assert ok.all() and np.all(gap[0] <= 1e-8 * obj[0])
    np.testing.assert_allclose(obj[0], direct[1][0], rtol=1e-8)
    assert np.all(iters[0] > 0)
    # the public solve uses continuation from zero, not from a warm start; both certified
    cold = cl.solve(S, 0.03 * lm, t)
    warm = cl.solve(S, 0.03 * lm, t, warm_start=cold.coef)
    assert np.all(warm.n_iter < cold.n_iter)
    np.testing.assert_allclose(cold.objective, warm.objective, rtol=1e-8)
    # the cap covers the continuation: no converged target used more than max_iter
    capped = cl.solve(S, 0.03 * lm, t, max_iter=40, warn=False)
    assert np.all(capped.n_iter <= 40)
    assert np.all(capped.gap[capped.converged] <= 1e-8 * capped.objective[capped.converged])


def test_results_do_not_depend_on_batch_or_threads():
    """A target's solution is bit-for-bit the same alone, in a batch, on 1 or on several
    threads (each target is solved by one thread, with its own state)."""
    S = MATS["decaying"]()
    lam = 0.05 * cl.lam_max(S)
    nthreads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = cl.solve(S, lam)
    finally:
        numba.set_num_threads(nthreads)
    many = cl.solve(S, lam)
    assert np.array_equal(one.coef, many.coef) and np.array_equal(one.gap, many.gap)
    for i in (0, 17, 101):
        alone = cl.solve(S, lam[i], [i])
        assert np.array_equal(alone.coef[0], many.coef[i])
    p = cl.path(S, lam_ratios=[0.5, 0.1, 0.05], targets=[3, 9])
    p2 = cl.path(S, lam_ratios=[0.5, 0.1, 0.05], targets=[9])
    assert np.array_equal(p.coefs[:, 1], p2.coefs[:, 0])


def test_path_in_any_order_and_with_zero_lams():
    """The path kernel takes each target's lams in decreasing order and writes them back in the
    order given; lam = 0 points are the least-squares solution."""
    S = MATS["logit"]()
    t = np.array([4, 50, 77])
    lm = cl.lam_max(S, t)
    L2 = np.array([[0.05, 0.3, 0.0], [0.3, 0.0, 0.05], [0.0, 0.05, 0.3]]) * lm[None, :]
    p = cl.path(S, L2, t)
    for ell in range(3):
        for c in range(3):
            lam = L2[ell, c]
            ref = cl.solve(S, lam, [t[c]])
            np.testing.assert_allclose(p.objective[ell, c], ref.objective[0], rtol=1e-7,
                                       atol=1e-12 * S[t[c], t[c]])
            assert p.converged[ell, c]


def test_lam_max_rows_matches_numpy():
    S = MATS["logit"]()
    n = S.shape[0]
    t = np.array([0, 5, 299])
    cand = np.random.default_rng(0).random((3, n)) < 0.3
    allowed = V.allowed_masks(S, t, cand)
    ref = np.where(allowed, np.abs(2 * S[t]), 0).max(axis=1)
    np.testing.assert_array_equal(lam_max_rows(S, t, allowed), ref)
    assert lam_max_rows(S, t, np.zeros_like(allowed)).tolist() == [0.0, 0.0, 0.0]


def test_check_S_scan_matches_numpy():
    rng = np.random.default_rng(3)
    for n in (1, 31, 33, 70):
        a = rng.standard_normal((n, n))
        finite, amax, asym, dmin = V._scan(a)
        assert finite
        assert amax == np.abs(a).max() and asym == np.abs(a - a.T).max()
        assert dmin == np.diag(a).min()
        a[n // 2, 0] = np.inf
        assert not V._scan(a)[0]
    S = MATS["logit"]()
    assert V.check_S(S) is not S or np.shares_memory(V.check_S(S), S)
    bad = S.copy()
    bad[3, 7] *= 1 + 1e-5
    with pytest.raises(ValueError, match="not symmetric"):
        V.check_S(bad)


def test_psd_memo_rechecks_a_changed_matrix():
    """A matrix that passed is remembered by its content: changing it in place (even to a
    non-PSD matrix of the same shape) runs the check again."""
    rng = np.random.default_rng(5)
    A = rng.standard_normal((20, 20))
    S = A @ A.T
    cl.solve(S, 0.1)  # passes and is memoised
    w, Q = np.linalg.eigh(S)
    w[0] = -1e-3 * w[-1]
    S[:] = (Q * w) @ Q.T
    S[:] = 0.5 * (S + S.T)
    with pytest.raises(ValueError, match="not positive semidefinite"):
        cl.solve(S, 0.1)
    with pytest.raises(ValueError, match="not positive semidefinite"):
        cl.check_psd(S)
