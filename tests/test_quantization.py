"""The quantization noise floor (neudep_utils.metrics.quantization): the 1 - R^2 that rounding
logits to a grid of step ``scale`` leaves even for a perfect fit of the real-valued logits."""

from __future__ import annotations

import numpy as np
import pytest

from neudep_utils.metrics import quantization_floor, quantization_noise_variance, saturated_share


def _one_minus_r2(y: np.ndarray, x: np.ndarray) -> float:
    """1 - R^2 of the least-squares fit of y on [1, x]."""
    A = np.column_stack([np.ones_like(x), x])
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    r = y - A @ coef
    return float((r @ r) / ((y - y.mean()) @ (y - y.mean())))


@pytest.mark.parametrize("sigma,scale", [(2.0, 0.13), (1.2, 0.16), (3.4, 0.06), (0.5, 0.1)])
def test_floor_is_the_residual_of_a_perfect_fit(sigma, scale):
    """Fit the quantized logit from the exact real-valued one: its 1 - R^2 is the floor (within
    sampling error), for logit spreads of 3 to 60 steps."""
    rng = np.random.default_rng(0)
    z = rng.normal(0.3, sigma, 400_000)
    q = scale * np.round(z / scale)
    got = _one_minus_r2(q, z)
    floor = quantization_floor(scale, q)
    assert abs(got / floor - 1) < 0.02, (got, floor)
    # and the floor is far from 0 and from 1: it is the rounding, not the signal
    assert 0 < floor < 0.01


def test_floor_per_logit_and_scale_invariance():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(5000, 2, 3)) * np.array([1.0, 2.0, 4.0])  # images x views x logits
    s = 0.1
    q = s * np.round(z / s)
    f = quantization_floor(s, q)
    assert f.shape == (3,)
    np.testing.assert_allclose(f, (s * s / 12) / q.reshape(-1, 3).var(axis=0))
    # a logit twice as spread has a quarter of the floor
    np.testing.assert_allclose(f[0] / f[1], q[..., 1].var() / q[..., 0].var())
    # units do not matter: logits and step scaled together
    np.testing.assert_allclose(quantization_floor(7.5 * s, 7.5 * q), f, rtol=1e-12)
    # one scale per logit broadcasts along the last axis
    np.testing.assert_allclose(quantization_floor([s, 2 * s, 4 * s], q),
                               f * np.array([1, 4, 16]), rtol=1e-12)


def test_floor_edge_cases():
    x = np.column_stack([np.zeros(10), np.arange(10.0)])
    f = quantization_floor(1.0, x)
    assert np.isinf(f[0]) and np.isfinite(f[1])  # a constant logit: nothing to explain
    assert quantization_floor(1.0, np.arange(10.0)) == pytest.approx((1 / 12) / np.var(np.arange(10.0)))
    assert quantization_noise_variance(0.3) == pytest.approx(0.09 / 12)
    for bad in (0.0, -1.0, np.nan, np.inf):
        with pytest.raises(ValueError, match="scale must be finite and > 0"):
            quantization_floor(bad, x)
    with pytest.raises(ValueError, match="NaN or inf"):
        quantization_floor(0.1, np.array([[1.0], [np.nan]]))
    with pytest.raises(ValueError, match="at least 2 rows"):
        quantization_floor(0.1, np.ones((1, 5)))
    # tiny and huge magnitudes give the same floor
    rng = np.random.default_rng(2)
    q = np.round(rng.normal(size=(1000, 4)) * 20) / 20
    np.testing.assert_allclose(quantization_floor(1e-9 * 0.05, 1e-9 * q),
                               quantization_floor(1e9 * 0.05, 1e9 * q), rtol=1e-9)


def test_saturated_share():
    q = np.array([0, 1, 128, 254, 255, 255], dtype=np.uint8)
    assert saturated_share(q) == pytest.approx(3 / 6)
    assert saturated_share(np.array([-128, 0, 5, 127]), "int8") == pytest.approx(2 / 4)
    with pytest.raises(ValueError, match="empty"):
        saturated_share(np.array([], dtype=np.uint8))
