"""Tests of the redundancy identities, effective rank, subsets and the bottleneck head."""

from __future__ import annotations

import numpy as np
import pytest

from neudep_utils import redundancy as R
from neudep_utils.moments import second_moment


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
    coef = R.all_target_coef(C)
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
    subs = R.nested_subsets(30, targets, [3, 8, 15, 30], seed=0)
    prev = np.full(2, np.inf)
    for s in subs:
        assert np.array_equal(s[:2], targets)
        r = R.residual_inverse(C[np.ix_(s, s)])[:2]
        assert np.all(r <= prev * (1 + 1e-10))
        prev = r


def test_oos_residual_and_k_at_fidelity() -> None:
    X = _rows(600, 8, seed=2)
    C = second_moment(X[:300], center=True)
    coef = R.all_target_coef(C)
    rr = R.oos_relative_residual(coef, np.arange(8), X[:300].mean(0), X[300:])
    assert np.all((rr > 0) & (rr < 1))
    k = np.array([[1, 2], [3, 4], [6, 7]])
    rr2 = np.array([[0.9, 0.9], [0.4, 0.8], [0.2, 0.6]])
    np.testing.assert_array_equal(R.k_at_fidelity(k, rr2, 0.5), [3, np.nan])


def test_subset_experiment_and_bootstrap_small() -> None:
    X = _rows(400, 25, seed=3)
    res = R.subset_experiment(X[:200], X[200:], np.array([0, 1]), [5, 25], [0],
                              [0.5, 0.1], threshold=0.9, progress=False)
    df = res.frame()
    assert len(df) == 4 and set(df["K"]) == {5, 25}
    assert np.all(df.query("K == 25")["r_in"].to_numpy() <= df.query("K == 5")["r_in"].to_numpy())
    bs = R.bootstrap_supports(X[:200].reshape(100, 2, 25), np.array([0, 1]), 0.3, 3, progress=False)
    assert bs["jaccard"].shape == (3, 2) and np.all((bs["freq"] >= 0) & (bs["freq"] <= 1))


def test_bottleneck_head_rank() -> None:
    rng = np.random.default_rng(4)
    W, b = rng.normal(size=(40, 16)), rng.normal(size=40)
    H = rng.normal(size=(200, 16))
    bh = R.fit_bottleneck(W, b, H, 5)
    F = bh(H)
    assert R.numerical_rank(R.spectrum(second_moment(F, center=True)), 1e-10) == 5
    full = R.fit_bottleneck(W, b, H, 16)
    np.testing.assert_allclose(full(H), H @ W.T + b, atol=1e-9)
