"""The one bootstrap: weighted statistics match the resampled sample they stand for."""

from __future__ import annotations

import numpy as np
import pytest

from neudep_utils.metrics import bootstrap


def test_counts_are_multinomial_and_seeded() -> None:
    a = np.concatenate(list(bootstrap.bootstrap_counts(7, 450, seed=3, chunk=200)))
    b = np.concatenate(list(bootstrap.bootstrap_counts(7, 450, seed=3, chunk=200)))
    assert a.shape == (450, 7) and np.array_equal(a, b)
    assert np.all(a.sum(1) == 7) and np.all(a >= 0)


@pytest.mark.parametrize("n", [1, 2, 5, 6, 51])
def test_weighted_median_equals_median_of_the_expanded_sample(n: int) -> None:
    rng = np.random.default_rng(n)
    x = rng.normal(size=n).round(1)  # ties on purpose
    W = next(bootstrap.bootstrap_counts(n, 50, seed=n))
    got = bootstrap.weighted_median(x, W)
    want = [np.median(np.repeat(x, w.astype(int))) for w in W]
    np.testing.assert_allclose(got, want)


def test_mean_and_median_ci() -> None:
    x = np.arange(100.0)
    m, (lo, hi) = bootstrap.mean_ci(x, 500, 0)
    assert m == 49.5 and lo < 49.5 < hi and hi - lo < 20
    med, (lo, hi) = bootstrap.median_ci(np.r_[x, np.nan, np.inf], 500, 0)
    assert med == 49.5 and lo <= 49.5 <= hi  # non-finite entries are dropped
    assert np.isnan(bootstrap.mean_ci(np.array([np.nan]))[0])
    assert all(np.isnan(bootstrap.bootstrap_ci(lambda W: W.sum(1), 3, 0)))  # n_boot = 0


def test_constant_sample_gives_a_point_interval() -> None:
    assert bootstrap.mean_ci(np.full(20, 0.25), 200, 1) == (0.25, (0.25, 0.25))
