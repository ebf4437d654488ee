"""The quantization noise floor: how much of a logit's variance no fit can explain, because the
logit itself was rounded to a grid.

An int8 model's logits are the dequantized SOFTMAX input, ``scale * (q - zero_point)`` with an
integer ``q`` (:mod:`neudep_utils.models.tflite`): each is the network's real-valued logit
rounded to a step of ``scale``. For a logit whose spread is many steps, the rounding error is
uniform on ``[-scale/2, scale/2]`` and nearly uncorrelated with the real value (Sheppard), with
variance ``scale^2 / 12``. A dependency that recovered the real-valued logit exactly would still
leave that much residual on the quantized one, so its relative residual ``1 - R^2`` cannot go
below

    floor_j = (scale^2 / 12) / Var(logit_j).

:func:`quantization_floor` computes it per logit; a measured ``1 - R^2`` near it is as good as
the quantized logits allow. The floor ignores saturation (values clipped at the ends of the
8-bit range, :func:`saturated_share`), which adds error for the largest logits.
"""

from __future__ import annotations

import numpy as np

__all__ = ["quantization_floor", "quantization_noise_variance", "saturated_share"]


def _check_scale(scale) -> np.ndarray:
    s = np.asarray(scale, dtype=np.float64)
    if not (np.all(np.isfinite(s)) and np.all(s > 0)):
        raise ValueError(f"quantization scale must be finite and > 0, got {scale!r}; pass the "
                         "(scale) of the logits' tensor, e.g. neudep_utils.models.tflite."
                         "logit_scale(name)")
    return s


def quantization_noise_variance(scale) -> np.ndarray | float:
    """Variance of uniform rounding noise on a grid of step ``scale``: ``scale**2 / 12``."""
    s = _check_scale(scale)
    out = s * s / 12.0
    return float(out) if out.ndim == 0 else out


def quantization_floor(scale, logits) -> np.ndarray | float:
    """The relative residual ``1 - R^2`` that the dequantization step alone explains, per logit.

    Parameters
    ----------
    scale : float or array_like
        The quantization step of the logits (their tensor's scale): a scalar (per-tensor
        quantization), or one value per logit (broadcast against the last axis).
    logits : array_like, shape (n,) or (..., C)
        Quantized logits; the variance of each of the ``C`` logits is taken over every leading
        axis (images, views), with ``ddof=0`` as in ``1 - R^2 = SSE / SST``.

    Returns
    -------
    float or ndarray of shape (C,)
        ``(scale^2 / 12) / Var(logit_j)``; ``inf`` for a logit that is constant (no variance
        to explain). A scalar for 1-D ``logits``.

    Raises
    ------
    ValueError
        ``scale`` not finite and positive, ``logits`` with non-finite values or fewer than two
        rows.
    """
    noise = np.asarray(quantization_noise_variance(scale), dtype=np.float64)
    x = np.asarray(logits, dtype=np.float64)
    one = x.ndim == 1
    x = x.reshape(-1, 1) if one else x.reshape(-1, x.shape[-1])
    if x.shape[0] < 2:
        raise ValueError(f"quantization_floor needs at least 2 rows of logits, got {x.shape[0]}")
    if not np.all(np.isfinite(x)):
        raise ValueError("logits contain NaN or inf; the floor is defined for finite logits only")
    var = x.var(axis=0)
    with np.errstate(divide="ignore"):
        out = np.where(var > 0, noise / np.where(var > 0, var, 1.0), np.inf)
    out = np.broadcast_to(out, var.shape).astype(np.float64)
    return float(out[0]) if one else out


def saturated_share(q: np.ndarray, dtype: str | np.dtype = "uint8") -> float:
    """Share of quantized values ``q`` at either end of the integer range of ``dtype`` (those
    were clipped, so their error exceeds the uniform rounding noise)."""
    info = np.iinfo(np.dtype(dtype))
    q = np.asarray(q)
    if q.size == 0:
        raise ValueError("saturated_share of an empty array")
    return float(np.mean((q <= info.min) | (q >= info.max)))
