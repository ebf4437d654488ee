"""neudep_utils.CovLasso, the scikit-learn estimator: planted dependencies recovered, the
scikit-learn contract (clone, get_params, predict, score), agreement with the kernels it calls
(solve, solve_k / fit_covlasso_k, refit), hard inputs and the errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import r2_score
from sklearn.utils.estimator_checks import check_estimator

from neudep_utils import CovLasso
from neudep_utils import covlasso as cl
from neudep_utils.dependencies import Fold, fit_covlasso_k
from neudep_utils.moments import second_moment


def planted_logits(seed: int = 0, N: int = 4000, n: int = 200, n_targets: int = 10,
                   shared: float = 0.2):
    """Logit-like data (a shared low-rank part plus per-class noise, offset) in which targets
    0..n_targets-1 are each a signed combination of 3 partners (disjoint sets) plus noise."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((N, 20))
    X = Z @ rng.standard_normal((20, n)) * shared + rng.standard_normal((N, n)) + 2.0
    pool = rng.choice(np.arange(n_targets, n), 3 * n_targets, replace=False)
    planted = {}
    for t in range(n_targets):
        p = pool[3 * t:3 * t + 3]
        c = rng.uniform(0.6, 1.2, 3) * rng.choice([-1, 1], 3)
        X[:, t] = X[:, p] @ c + 0.3 * rng.standard_normal(N) + 1.0
        planted[t] = set(p.tolist())
    return X, planted


@pytest.fixture(scope="module")
def planted():
    return planted_logits()


def recovered(est: CovLasso, planted: dict[int, set[int]]) -> int:
    return sum(set(np.flatnonzero(est.coef_[r]).tolist()) == planted[int(t)]
               for r, t in enumerate(est.targets_))


def test_acceptance_recovers_planted_dependencies(planted):
    X, truth = planted
    assert X.shape == (4000, 200)
    est = CovLasso(k=3, targets=range(10)).fit(X[:3000])
    assert recovered(est, truth) >= 9
    assert np.all(est.k_ == 3)
    # predict / score on held-out rows
    P = est.predict(X[3000:])
    assert P.shape == (1000, 10)
    np.testing.assert_allclose(P, X[3000:] @ est.coef_.T + est.intercept_)
    s = est.score(X[3000:])
    assert s == pytest.approx(r2_score(X[3000:, :10], P))
    # the Lasso shrinks at k=3; the least-squares refit on the same support fits the planted
    # noise level (R^2 close to 1 - 0.09 / var)
    ref = CovLasso(k=3, targets=range(10), refit=True).fit(X[:3000])
    assert np.array_equal(ref.support_, est.support_)
    assert ref.score(X[3000:]) > 0.9 > s
    # clone: same parameters, unfitted, and fits to the same result
    c = clone(est)
    assert c.get_params() == est.get_params()
    assert not hasattr(c, "coef_")
    np.testing.assert_array_equal(c.fit(X[:3000]).coef_, est.coef_)


def test_wrong_structure_is_not_recovered(planted):
    """The recovery count can fail: with partners drawn at random (overlapping targets) or a
    strong shared factor, the Lasso's k=3 supports are not the planted ones."""
    X, truth = planted_logits(seed=0, shared=0.5)
    est = CovLasso(k=3, targets=range(10)).fit(X[:3000])
    assert recovered(est, truth) < 9


def test_sklearn_contract():
    est = CovLasso()
    assert est.get_params() == {"k": None, "lam_ratio": None, "center": True, "refit": False,
                                "targets": None, "tol": 1e-8}
    est.set_params(k=4, refit=True)
    assert clone(est).get_params()["k"] == 4
    assert "CovLasso(k=4, refit=True)" == repr(est)
    with pytest.raises(NotFittedError):
        est.predict(np.zeros((3, 5)))


def test_default_k_all_targets_zero_diagonal(planted):
    X, _ = planted
    est = CovLasso().fit(X[:, :60])
    assert est.coef_.shape == (60, 60)
    assert np.all(np.diag(est.coef_) == 0)
    assert est.n_features_in_ == 60 and est.n_samples_ == 4000
    # k = 10 by default (the closest support the search reaches, never larger than requested
    # by more than the path's resolution)
    assert np.median(est.k_) == 10
    assert np.array_equal(est.support_, est.coef_ != 0)
    small = CovLasso().fit(X[:, :5])  # fewer than 11 classes: k capped at n - 1
    assert np.all(small.k_ <= 4)


def test_k_mode_is_the_study_k_search(planted):
    """One home: the estimator's k search is solve_k, the same as fit_covlasso_k on a Fold."""
    X = planted[0][:2000, :80]
    est = CovLasso(k=5, targets=[0, 3, 70]).fit(X)
    S = second_moment(X, center=True)
    dep = fit_covlasso_k(Fold(S, X.mean(0), True, np.arange(3), None, len(X)), [5],
                         targets=[0, 3, 70], tol=1e-8)[5]
    np.testing.assert_array_equal(est.coef_, dep.dense())
    np.testing.assert_allclose(est.intercept_, dep.intercept, rtol=1e-13)
    np.testing.assert_array_equal(est.lam_, dep.lam)
    np.testing.assert_array_equal(est.duality_gap_, dep.gap)
    sol = cl.solve_k(S, [5], [0, 3, 70], tol=1e-8)[5]
    np.testing.assert_array_equal(est.coef_, sol.dense(80))


def test_lam_ratio_mode_is_solve(planted):
    X = planted[0][:, :50]
    est = CovLasso(lam_ratio=0.05).fit(X)
    S = second_moment(X, center=True)
    res = cl.solve(S, lam_ratio=0.05)
    np.testing.assert_array_equal(est.coef_, res.coef)
    res2 = cl.solve(S, 0.05 * cl.lam_max(S))
    np.testing.assert_array_equal(res.coef, res2.coef)
    np.testing.assert_allclose(est.lam_, 0.05 * est.lam_max_)
    assert np.all(est.duality_gap_ <= 1e-8 * np.maximum(res.objective, 1e-300) + 1e-12)


def test_fit_moments_matches_fit(planted):
    X = planted[0][:, :40]
    a = CovLasso(k=3).fit(X)
    b = CovLasso(k=3).fit_moments(second_moment(X, center=True), mean=X.mean(0), count=len(X))
    np.testing.assert_array_equal(a.coef_, b.coef_)
    np.testing.assert_allclose(a.intercept_, b.intercept_)
    assert b.n_samples_ == len(X)
    c = CovLasso(k=3).fit_moments(second_moment(X, center=True))  # no mean: no intercept
    assert np.all(c.intercept_ == 0)


def test_uncentred_has_no_intercept(planted):
    X = planted[0][:, :40]
    est = CovLasso(k=3, center=False).fit(X)
    assert np.all(est.intercept_ == 0)
    S2 = second_moment(X, center=False)
    np.testing.assert_array_equal(est.covariance_, S2)
    np.testing.assert_array_equal(
        est.coef_, cl.solve_k(S2, [3], np.arange(40), tol=1e-8)[3].dense(40))


def test_refit_is_least_squares_with_intercept(planted):
    X = planted[0][:, :40]
    est = CovLasso(k=4, targets=[0, 1], refit=True).fit(X)
    for r, t in enumerate(est.targets_):
        A = np.flatnonzero(est.coef_[r])
        D = np.column_stack([X[:, A], np.ones(len(X))])
        sol = np.linalg.lstsq(D, X[:, t], rcond=None)[0]
        np.testing.assert_allclose(est.coef_[r, A], sol[:-1], rtol=1e-8, atol=1e-10)
        assert est.intercept_[r] == pytest.approx(sol[-1], rel=1e-7, abs=1e-9)


@pytest.mark.parametrize("scale", [1e-6, 1e6])
def test_scale_invariant_support(planted, scale):
    X = planted[0][:1500, :60]
    a = CovLasso(k=3, targets=range(5)).fit(X)
    b = CovLasso(k=3, targets=range(5)).fit(X * scale)
    assert np.array_equal(a.support_, b.support_)
    np.testing.assert_allclose(b.coef_, a.coef_, rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(b.intercept_, a.intercept_ * scale, rtol=1e-5)


def test_rank_deficient_and_ties():
    """Fewer images than classes and exactly duplicated columns: finite, certified, and a
    partner that rebuilds the target is found."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((30, 80))
    X[:, 5] = X[:, 9]  # a tie: two identical candidate partners of target 0 ...
    X[:, 0] = 2.0 * X[:, 9] + 0.01 * rng.standard_normal(30)
    est = CovLasso(k=1, targets=[0, 5]).fit(X)
    assert np.all(np.isfinite(est.coef_))
    assert est.k_.tolist() == [1, 1]
    assert np.flatnonzero(est.coef_[0])[0] in (5, 9)
    # column 5 is column 9 (and ~ column 0 / 2): one partner rebuilds it
    assert np.flatnonzero(est.coef_[1])[0] in (0, 9)
    ls = CovLasso(k=1, targets=[0, 5], refit=True).fit(X)
    assert np.all(ls.r2_per_target(X) > 0.999)
    assert np.all(est.duality_gap_ >= 0)
    ref = CovLasso(lam_ratio=0.0, targets=[0]).fit(X)  # least squares, min-norm, rank 29
    assert np.all(np.isfinite(ref.coef_))


def test_torch_tensor_input(planted):
    torch = pytest.importorskip("torch")
    X = planted[0][:500, :20]
    a = CovLasso(k=2).fit(X)
    b = CovLasso(k=2).fit(torch.from_numpy(X))
    np.testing.assert_array_equal(a.coef_, b.coef_)


def test_partners_sorted_by_magnitude(planted):
    X, truth = planted
    est = CovLasso(k=3, targets=[0]).fit(X)
    p = est.partners(0)
    assert {j for j, _ in p} == truth[0]
    assert [abs(c) for _, c in p] == sorted((abs(c) for _, c in p), reverse=True)
    with pytest.raises(ValueError, match="not fitted"):
        est.partners(1)


@pytest.mark.parametrize("params, match", [
    ({"k": 3, "lam_ratio": 0.1}, "exactly one of k"),
    ({"k": 0}, "positive integer"),
    ({"k": 2.5}, "positive integer"),
    ({"k": True}, "positive integer"),
    ({"k": 50}, "exceeds"),
    ({"lam_ratio": -0.1}, "lam_ratio"),
    ({"lam_ratio": float("nan")}, "lam_ratio"),
    ({"targets": [0, 40]}, "out of range"),
    ({"targets": [1, 1]}, "duplicates"),
    ({"tol": 0}, "tol"),
])
def test_bad_parameters(params, match):
    X = np.random.default_rng(0).standard_normal((50, 40))
    with pytest.raises(ValueError, match=match):
        CovLasso(**params).fit(X)


def test_bad_inputs():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 10))
    with pytest.raises(ValueError, match=r"Expected 2D array.*got shape \(50,\)"):
        CovLasso().fit(X[:, 0])
    Xn = X.copy()
    Xn[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        CovLasso().fit(Xn)
    with pytest.raises(ValueError, match="minimum of 2"):
        CovLasso().fit(X[:1])
    with pytest.raises(ValueError, match="could not convert|numeric"):
        CovLasso().fit([["a", "b"], ["c", "d"]])
    est = CovLasso(k=2).fit(X)
    with pytest.raises(ValueError, match="9 features.*expecting 10"):
        est.predict(X[:, :9])
    with pytest.raises(ValueError, match="mean"):
        CovLasso().fit_moments(np.eye(10), mean=np.zeros(3))
    with pytest.raises(ValueError, match="symmetric"):
        CovLasso().fit_moments(np.triu(np.ones((10, 10))))
    S = np.eye(10)
    S[0, 0] = -1.0
    with pytest.raises(ValueError, match="negative diagonal|positive semidefinite"):
        CovLasso().fit_moments(S)


def test_solve_lam_ratio_and_refit_of_a_result():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 15))
    S = second_moment(X, center=True)
    with pytest.raises(ValueError, match="exactly one of lam"):
        cl.solve(S)
    with pytest.raises(ValueError, match="exactly one of lam"):
        cl.solve(S, 0.1, lam_ratio=0.1)
    with pytest.raises(ValueError, match="lam_ratio"):
        cl.solve(S, lam_ratio=-1.0)
    res = cl.solve(S, lam_ratio=0.2, targets=[2, 4])
    np.testing.assert_array_equal(res.lam, 0.2 * cl.lam_max(S, [2, 4]))
    np.testing.assert_array_equal(cl.refit(S, res), cl.refit(S, res.coef, res.targets))
    pth = cl.path(S, lam_ratios=[0.5, 0.2], targets=[2, 4])
    np.testing.assert_array_equal(cl.refit(S, pth), cl.refit(S, pth.coefs, [2, 4]))
    with pytest.raises(TypeError, match="CovLassoResult"):
        cl.refit(S, object())


def test_sklearn_check_estimator():
    """scikit-learn's own estimator checks (clone, pickling, input validation messages, fit
    idempotence, n_features_in_, ...): none fails."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(CovLasso(k=1), on_fail=None)
    failed = [(r["check_name"], str(r["exception"]).splitlines()[0][:120])
              for r in results if r["status"] == "failed"]
    assert len(results) > 30
    assert failed == []
