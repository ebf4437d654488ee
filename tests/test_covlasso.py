"""Tests for neudep_utils.covlasso: certificates, references (cvxpy, sklearn), KKT, validation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import neudep_utils.covlasso as pkg
from neudep_utils import covlasso as cl
from neudep_utils import moments


def random_psd(n: int, rank: int | None = None, decay: float | None = None, seed: int = 0):
    """PSD matrix with a given rank and (optionally) exponentially decaying spectrum."""
    rng = np.random.default_rng(seed)
    r = n if rank is None else rank
    q, _ = np.linalg.qr(rng.standard_normal((n, r)))
    w = np.exp(-np.arange(r) / decay) if decay else rng.uniform(0.5, 2.0, r)
    return moments.symmetrize((q * w) @ q.T)


def logit_cov(n: int, d: int, N: int, seed: int = 0, center: bool = False):
    """Realistic logit moments: logits = features @ W.T + b with low-rank-ish features."""
    rng = np.random.default_rng(seed)
    feats = np.maximum(rng.standard_normal((N, d)) @ rng.standard_normal((d, d)) / np.sqrt(d), 0)
    W = rng.standard_normal((n, d)) / np.sqrt(d)
    b = 0.1 * rng.standard_normal(n)
    return moments.second_moment(feats @ W.T + b, center=center)


MATS = {
    "full": lambda: random_psd(60, seed=1),
    "rankdef": lambda: random_psd(80, rank=30, seed=2),
    "decay": lambda: random_psd(120, decay=15.0, seed=3),
    "logit_d_lt_n": lambda: logit_cov(100, 40, 400, seed=4),
    "logit_d_gt_n": lambda: logit_cov(80, 160, 600, seed=5, center=True),
}


def rel_excess(S, coef_a, coef_b, targets, lam):
    pa = cl.objective(S, coef_a, targets, lam)
    pb = cl.objective(S, coef_b, targets, lam)
    return (pa - pb) / pb


@pytest.mark.parametrize("name", list(MATS))
@pytest.mark.parametrize("ratio", [0.5, 0.1])
def test_matches_cvxpy(name, ratio):
    S = MATS[name]()
    targets = np.array([0, 3, 7])
    lam = ratio * cl.lam_max(S, targets)
    res = cl.solve(S, lam, targets)
    assert res.converged.all()
    assert np.all(res.gap <= 1e-6 * res.objective)
    ref = cl.solve_cvxpy(S, lam, targets)
    # objectives agree; ours is never worse than the reference beyond its accuracy
    exc = rel_excess(S, res.coef, ref, targets, lam)
    assert np.all(exc <= 1e-7), exc
    assert np.all(exc >= -1e-6), exc
    np.testing.assert_allclose(res.objective, cl.objective(S, res.coef, targets, lam), rtol=1e-9)
    # certificate is valid: the reference can't beat objective - gap
    p_ref = cl.objective(S, ref, targets, lam)
    assert np.all(p_ref >= res.objective - res.gap - 1e-7 * res.objective)
    # supports agree away from ties
    thr = 1e-4 * np.abs(res.coef).max()
    big_ours = np.abs(res.coef) > thr
    big_ref = np.abs(ref) > thr
    assert not np.any(big_ours & (np.abs(ref) < 1e-3 * thr))
    assert not np.any(big_ref & (np.abs(res.coef) < 1e-3 * thr))


def test_exact_zeros_and_result_fields():
    S = MATS["decay"]()
    res = cl.solve(S, 0.2 * cl.lam_max(S))
    n = S.shape[0]
    assert res.coef.shape == (n, n)
    assert np.all(np.diag(res.coef) == 0.0)
    assert res.support_size.shape == (n,)
    assert np.all(res.relative_gap <= 1e-6)
    assert np.all(res.lam_max > 0)
    assert res.support(0).size == res.support_size[0]
    # deterministic
    res2 = cl.solve(S, 0.2 * cl.lam_max(S))
    assert np.array_equal(res.coef, res2.coef)


def test_lam_max_boundary():
    S = MATS["full"]()
    lm = cl.lam_max(S)
    assert np.all(cl.solve(S, lm).coef == 0.0)
    assert np.all(cl.solve(S, 1.5 * lm).coef == 0.0)
    res = cl.solve(S, lm * (1 - 1e-3))
    assert np.all(res.support_size >= 1)
    s = np.abs(2 * S)
    np.fill_diagonal(s, 0)
    np.testing.assert_allclose(lm, s.max(axis=0))


@pytest.mark.parametrize("name", ["rankdef", "logit_d_lt_n", "full"])
def test_lam_zero_least_squares(name):
    S = MATS[name]()
    n = S.shape[0]
    targets = np.array([1, 5, n - 1])
    res = cl.solve(S, 0.0, targets)
    assert np.all(np.isfinite(res.coef))
    X = cl.psd_factor(S)
    for r, i in enumerate(targets):
        a = np.array([j for j in range(n) if j != i])
        sol, *_ = np.linalg.lstsq(X[:, a], X[:, i], rcond=None)
        r_ls = np.sum((X[:, i] - X[:, a] @ sol) ** 2)
        r_ours = cl.residual(S, res.coef[r : r + 1], [i])[0]
        assert r_ours == pytest.approx(r_ls, abs=1e-9 * S[i, i])
    if name == "rankdef":  # f_i in the span of the others: zero residual
        assert np.all(cl.relative_residual(S, res.coef, targets) < 1e-9)
    if name == "full":
        Si = np.linalg.inv(S)
        np.testing.assert_allclose(cl.residual(S, res.coef, targets), 1 / Si[targets, targets])


def test_candidates_1d_2d_and_cross_model():
    # stack two "models": B is a noisy copy of A
    rng = np.random.default_rng(7)
    N, m = 500, 40
    fa = rng.standard_normal((N, 20)) @ rng.standard_normal((20, m))
    fb = fa + 0.3 * rng.standard_normal((N, m))
    S = moments.second_moment(np.hstack([fa, fb]))
    n = 2 * m
    blockB = np.zeros(n, bool)
    blockB[m:] = True
    targets = np.arange(m)  # A's categories from B's logits
    lam = 0.1 * cl.lam_max(S, targets, blockB)
    res = cl.solve(S, lam, targets, blockB)
    assert np.all(res.coef[:, :m] == 0.0)
    assert res.converged.all()
    # the trivial partner (B's own category) is used when allowed...
    own = res.coef[np.arange(m), m + targets]
    assert np.mean(np.abs(own) > 0) > 0.9
    # ...and excluded by a 2-D mask
    mask2 = np.tile(blockB, (m, 1))
    mask2[np.arange(m), m + targets] = False
    lam2 = 0.1 * cl.lam_max(S, targets, mask2)
    res2 = cl.solve(S, lam2, targets, mask2)
    assert np.all(res2.coef[~mask2] == 0.0)
    assert np.all(res2.gap <= 1e-6 * res2.objective)
    ref = cl.solve_cvxpy(S, lam2[:4], targets[:4], mask2[:4])
    exc = rel_excess(S, res2.coef[:4], ref, targets[:4], lam2[:4])
    assert np.all(np.abs(exc) < 1e-6)


def test_path_warm_start_matches_independent():
    S = MATS["logit_d_lt_n"]()
    targets = np.array([2, 9, 40])
    ratios = np.geomspace(1.0, 0.05, 8)
    p = cl.path(S, lam_ratios=ratios, targets=targets)
    assert p.coefs.shape == (8, 3, S.shape[0])
    assert p.lams.shape == (8, 3)
    np.testing.assert_allclose(p.lams, cl.relative_lams(S, ratios, targets))
    assert np.all(p.coefs[0] == 0)
    assert np.all(p.relative_gap <= 1e-6)
    for ell in (3, 7):
        ind = cl.solve(S, p.lams[ell], targets)
        np.testing.assert_allclose(p.objective[ell], ind.objective, rtol=1e-7)
        assert len(p) == 8 and p[ell].coef.shape == (3, S.shape[0])
    # shared absolute lams in increasing order come back in the order given
    lams = np.array([1.0, 5.0]) * 1e-2 * cl.lam_max(S, targets).min()
    p2 = cl.path(S, lams, targets)
    np.testing.assert_allclose(p2.lams[:, 0], lams)
    assert p2.objective[0, 0] < p2.objective[1, 0]


def test_refit_matches_lstsq_on_support():
    S = MATS["rankdef"]()
    res = cl.solve(S, 0.2 * cl.lam_max(S))
    ref = cl.refit(S, res.coef)
    assert np.all((ref != 0) <= (res.coef != 0))
    assert np.all(np.isfinite(ref))
    X = cl.psd_factor(S)
    for i in (0, 11, 50):
        a = np.flatnonzero(res.coef[i])
        sol, *_ = np.linalg.lstsq(X[:, a], X[:, i], rcond=None)
        r_ls = np.sum((X[:, i] - X[:, a] @ sol) ** 2)
        assert cl.residual(S, ref[i : i + 1], [i])[0] == pytest.approx(r_ls, abs=1e-9 * S[i, i])
    # refit never increases the residual
    assert np.all(cl.residual(S, ref) <= cl.residual(S, res.coef) + 1e-12)


@pytest.mark.parametrize("method", ["cd", "lars"])
def test_sklearn_reference_agrees(method):
    S = MATS["logit_d_gt_n"]()
    targets = np.array([0, 4, 8])
    lam = 0.2 * cl.lam_max(S, targets)
    res = cl.solve(S, lam, targets)
    sk = cl.solve_sklearn(S, lam, targets, method=method)
    exc = rel_excess(S, sk, res.coef, targets, lam)
    assert np.all(exc >= -1e-9)  # sklearn never beats the certified optimum
    assert np.all(exc <= 1e-6)


def test_second_moment_and_sums():
    rng = np.random.default_rng(0)
    f = rng.standard_normal((50, 6)) + 2.0
    S = moments.second_moment(f)
    np.testing.assert_allclose(S, f.T @ f / 50)
    C = moments.second_moment(f, center=True)
    np.testing.assert_allclose(C, np.cov(f.T, bias=True), atol=1e-12)
    S2 = moments.second_moment_from_sums(50, f.sum(0), f.T @ f)
    C2 = moments.second_moment_from_sums(50, f.sum(0), f.T @ f, center=True)
    np.testing.assert_allclose(S2, S)
    np.testing.assert_allclose(C2, C, atol=1e-12)
    rr = cl.relative_residual(C, np.zeros((6, 6)))
    np.testing.assert_allclose(rr, 1.0)


def test_public_names_and_one_second_moment():
    """Every public name stays importable from the package; the moments have one home."""
    for name in pkg.__all__:
        assert name == "PSD_RTOL" or callable(getattr(pkg, name)), name
    # one home for the moment matrix: covlasso takes S, it does not build it
    assert not hasattr(pkg, "second_moment") and not hasattr(pkg, "second_moment_from_sums")


def test_validation_errors():
    S = random_psd(5, seed=0)
    with pytest.raises(ValueError, match="square"):
        cl.solve(np.ones((3, 4)), 0.1)
    bad = S.copy()
    bad[0, 1] += 1.0
    with pytest.raises(ValueError, match="not symmetric"):
        cl.solve(bad, 0.1)
    nan = S.copy()
    nan[1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        cl.solve(nan, 0.1)
    with pytest.raises(ValueError, match="lam must be >= 0"):
        cl.solve(S, -1.0)
    with pytest.raises(ValueError, match=r"one value per target"):
        cl.solve(S, [0.1, 0.2], targets=[0, 1, 2])
    with pytest.raises(ValueError, match="out of range"):
        cl.solve(S, 0.1, targets=[0, 5])
    with pytest.raises(ValueError, match="duplicates"):
        cl.solve(S, 0.1, targets=[1, 1])
    with pytest.raises(ValueError, match="candidates mask has shape"):
        cl.solve(S, 0.1, candidates=np.ones(4, bool))
    with pytest.raises(ValueError, match="boolean mask"):
        cl.solve(S, 0.1, candidates=np.ones(5))
    with pytest.raises(ValueError, match="negative diagonal"):
        cl.solve(-S, 0.1)
    with pytest.raises(ValueError, match="exactly one"):
        cl.path(S)
    with pytest.raises(ValueError, match="warm_start"):
        cl.solve(S, 0.1, warm_start=np.zeros((2, 5)))


def test_max_iter_warns():
    S = MATS["decay"]()
    with pytest.warns(RuntimeWarning, match="max_iter"):
        res = cl.solve(S, 0.01 * cl.lam_max(S, [0, 1]), targets=[0, 1], max_iter=1)
    assert not res.converged.all()
    assert np.all(np.isfinite(res.gap))


def test_zero_column_and_zero_target():
    S = random_psd(10, seed=3)
    S[4, :] = 0
    S[:, 4] = 0
    res = cl.solve(S, 0.1 * np.maximum(cl.lam_max(S), 1e-3))
    assert np.all(res.coef[:, 4] == 0)
    assert np.all(res.coef[4] == 0) and res.objective[4] == 0.0


@st.composite
def psd_problems(draw):
    n = draw(st.integers(3, 12))
    rank = draw(st.integers(1, n))
    seed = draw(st.integers(0, 2**31 - 1))
    ratio = draw(st.floats(0.02, 0.99))
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rank, n)) * rng.uniform(0.1, 3.0, n)
    return X.T @ X, ratio


@settings(max_examples=40, deadline=None)
@given(psd_problems())
def test_kkt_property(prob):
    S, ratio = prob
    S = moments.symmetrize(S)
    n = S.shape[0]
    lm = cl.lam_max(S)
    lam = np.maximum(ratio * lm, 1e-6)
    res = cl.solve(S, lam, tol=1e-12)
    assert res.converged.all()
    g = 2 * (res.coef @ S - S[np.arange(n), :])  # 2 (S theta - s), per row
    scale = np.abs(S).max()
    for t in range(n):
        on = res.coef[t] != 0
        off = ~on
        off[t] = False
        tol = 1e-5 * max(lam[t], 1e-12) + 1e-8 * scale
        assert np.all(np.abs(g[t, off]) <= lam[t] + tol)
        assert np.allclose(g[t, on], -lam[t] * np.sign(res.coef[t, on]), atol=tol)
        assert res.gap[t] <= 1e-6 * res.objective[t] + 1e-12 * scale


def test_lam0_batched_matches_per_target_lstsq():
    """All-target lam = 0 (one factorization per shared block) equals per-target least squares."""
    rng = np.random.default_rng(7)
    A = rng.standard_normal((400, 60))
    S = A.T @ A / 400
    w, V = np.linalg.eigh(S)
    X = np.sqrt(w)[:, None] * V.T
    res = cl.solve(S, 0.0)
    cand = np.zeros(60, dtype=bool)
    cand[30:] = True
    cross = cl.solve(S, 0.0, np.arange(30), cand)
    for i in (0, 17, 59):
        a = np.setdiff1d(np.arange(60), [i])
        ref = np.linalg.lstsq(X[:, a], X[:, i], rcond=None)[0]
        np.testing.assert_allclose(res.coef[i, a], ref, rtol=1e-8, atol=1e-10)
        assert res.coef[i, i] == 0.0
    ref = np.linalg.lstsq(X[:, 30:], X[:, 5], rcond=None)[0]
    np.testing.assert_allclose(cross.coef[5, 30:], ref, rtol=1e-8, atol=1e-10)
    assert np.all(cross.coef[:, :30] == 0.0)
