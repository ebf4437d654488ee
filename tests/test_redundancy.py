"""Tests of the redundancy identities, effective rank, covering subsets and the C4 predictor test."""

from __future__ import annotations

import numpy as np
import pytest

from neudep_utils.cache import LogitData
from neudep_utils.dependencies import Fold, crossfit, dense_least_squares
from neudep_utils.findings import redundancy as R
from neudep_utils.moments import second_moment


def _dense(C: np.ndarray) -> np.ndarray:
    """Minimum-norm least squares of every column on the others, as a (n, n) coefficient matrix."""
    return dense_least_squares(Fold(C, np.zeros(len(C)), True, np.arange(0), None, 1),
                               np.arange(len(C))).dense()


def _rows(n_rows: int, n: int, rank: int | None = None, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if rank is None:
        return rng.normal(size=(n_rows, n)) @ rng.normal(size=(n, n)) * 0.3
    return rng.normal(size=(n_rows, rank)) @ rng.normal(size=(rank, n))


def test_effective_rank_known_spectra() -> None:
    assert R.effective_rank(np.ones(7)) == pytest.approx(7)
    assert R.effective_rank(np.ones(7), "participation") == pytest.approx(7)
    assert R.effective_rank(np.array([3.0, 0, 0])) == pytest.approx(1)
    assert R.numerical_rank(np.array([1.0, 1e-3, 1e-20])) == 2
    assert R.variance_rank(np.array([9.0, 1.0]), 0.9) == 1


def test_residual_identity_and_bound() -> None:
    X = _rows(400, 12)
    C = second_moment(X, center=True)
    r_inv = R.residual_inverse(C)
    r_dir = R.residual_schur(C, np.arange(12))
    np.testing.assert_allclose(r_inv, r_dir, rtol=1e-9)
    assert np.all(r_inv >= R.spectrum(C)[-1] * (1 - 1e-12))
    coef = _dense(C)
    assert np.all(np.diag(coef) == 0)
    # coefficients reproduce the direct least-squares fit on the rows
    Xc = X - X.mean(0)
    ls = np.linalg.lstsq(np.delete(Xc, 3, 1), Xc[:, 3], rcond=None)[0]
    np.testing.assert_allclose(np.delete(coef[3], 3), ls, rtol=1e-8, atol=1e-10)


def test_rank_deficient_gives_zero_residual() -> None:
    C = second_moment(_rows(300, 10, rank=4), center=True)
    assert R.numerical_rank(R.spectrum(C), 1e-10) == 4
    assert np.all(R.residual_schur(C, np.arange(10)) <= 1e-8 * np.diag(C))


def test_interlacing_on_nested_subsets() -> None:
    X = _rows(500, 30, seed=1)
    C = second_moment(X, center=True)
    targets = np.array([0, 5])
    rest = np.random.default_rng(0).permutation(np.setdiff1d(np.arange(30), targets))
    prev = np.full(2, np.inf)
    for K in (3, 8, 15, 30):
        s = np.concatenate([targets, rest[:K - 2]])
        r = R.residual_inverse(C[np.ix_(s, s)])[:2]
        assert np.all(r <= prev * (1 + 1e-10))
        prev = r


@pytest.mark.parametrize(("n", "K"), [(30, 7), (30, 10), (30, 30), (31, 2)])
def test_covering_subsets_make_every_category_a_target_once(n: int, K: int) -> None:
    subs = R.covering_subsets(n, K, seed=3)
    targets = np.concatenate([sub[pos] for sub, pos in subs])
    assert np.array_equal(np.sort(targets), np.arange(n))
    for sub, _ in subs:
        assert sub.size == K and np.unique(sub).size == K
    with pytest.raises(ValueError):
        R.covering_subsets(10, 11, 0)


def test_oos_residual_and_k_at_fidelity() -> None:
    X = _rows(600, 8, seed=2)
    C = second_moment(X[:300], center=True)
    coef = _dense(C)
    rr = R.oos_relative_residual(coef, np.arange(8), X[:300].mean(0), X[300:])
    assert np.all((rr > 0) & (rr < 1))
    k = np.array([[1, 2], [3, 4], [6, 7]])
    rr2 = np.array([[0.9, 0.9], [0.4, 0.8], [0.2, 0.6]])
    np.testing.assert_array_equal(R.k_at_fidelity(k, rr2, 0.5), [3, np.nan])


def test_subset_experiment_and_bootstrap_small() -> None:
    X = _rows(400, 25, seed=3)
    res = R.subset_experiment(X[:200], X[200:], [5, 25], [0, 1], [0.5, 0.1], threshold=0.9,
                              progress=False)
    df = res.frame()
    # every category is a target once per (seed, K); K = n is shared by the seeds
    assert len(df) == 2 * 2 * 25 and set(df["K"]) == {5, 25}
    for (_, _), g in df.groupby(["seed", "K"]):
        assert sorted(g["target"]) == list(range(25))
    full = df[df.K == 25].sort_values(["seed", "target"])
    np.testing.assert_array_equal(full[full.seed == 0]["rr_best"], full[full.seed == 1]["rr_best"])
    # interlacing: a target's residual within all 25 categories is at most its residual in any
    # 5-category subset containing it
    small = df[df.K == 5].set_index(["seed", "target"])["r_in"]
    big = df[df.K == 25].set_index(["seed", "target"])["r_in"]
    assert np.all(big.loc[small.index].to_numpy() <= small.to_numpy() * (1 + 1e-9) + 1e-12)
    bs = R.bootstrap_supports(X[:200].reshape(100, 2, 25), np.array([0, 1]), 0.3, 3,
                              progress=False)
    assert bs["jaccard"].shape == (3, 2) and np.all((bs["freq"] >= 0) & (bs["freq"] <= 1))


def test_redundancy_predicts_support_can_fail() -> None:
    rng = np.random.default_rng(5)
    r = rng.uniform(0.01, 1, 300)
    k_good = np.ceil(100 * r + rng.uniform(0, 5, 300))  # redundant targets need fewer partners
    good = R.redundancy_predicts_support(r, k_good, 300, 0)
    assert good["rho"] > 0.9 and good["ci"][0] > 0.8 and good["n_reached"] == 300
    bad = R.redundancy_predicts_support(r, rng.permutation(k_good), 300, 0)
    assert bad["ci"][0] < 0 < bad["ci"][1]  # no relation: the interval covers 0
    rev = R.redundancy_predicts_support(r, 200 - k_good, 300, 0)
    assert rev["ci"][1] < 0  # the opposite relation is detected as such
    # never reached (inf / NaN) ranks last; a constant redundancy cannot predict anything
    with_inf = R.redundancy_predicts_support(r, np.where(r > 0.9, np.inf, k_good), 300, 0)
    assert with_inf["n_reached"] == int((r <= 0.9).sum()) and with_inf["rho"] > 0.9
    assert np.isnan(R.redundancy_predicts_support(np.ones(10), np.arange(10.0))["rho"])


def test_path_study_on_a_planted_sparse_dependency() -> None:
    rng = np.random.default_rng(8)
    n_img, n = 400, 12
    labels = np.arange(n_img) % n
    L = rng.normal(size=(n_img, 1, n))
    L[np.arange(n_img), 0, labels] += 3.0
    L[:, 0, 0] = 0.9 * L[:, 0, 1] + 0.05 * rng.normal(size=n_img)  # class 0 from class 1
    data = LogitData(L.astype(np.float32), labels, tuple(map(str, range(n_img))),
                     {"m": slice(0, n)}, n)
    fold = crossfit(data, 2, 0, fit_views=False)[0]
    ps = R.path_study(data, fold, np.geomspace(0.9, 0.01, 8), threshold=0.3, n_boot=200,
                      keep_coef=2)
    assert ps.k.shape == ps.rr.shape == (8, n) and ps.coef.shape == (8, 2, n)
    assert ps.k_needed[0] == 1  # the planted dependency needs one partner
    assert np.isnan(ps.k_needed[5]) or ps.k_needed[5] > 1
    assert np.all(ps.drop_ci[:, 0] <= ps.drop_ci[:, 1]) and 0 <= ps.acc_base <= 1
    assert np.all(ps.r_in >= 0) and ps.r_in[0] < 0.05
    assert np.isnan(ps.k_functional) or ps.k_functional in set(ps.k_median)
