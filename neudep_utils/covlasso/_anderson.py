"""Anderson extrapolation of a fixed-point sequence (numba), as in Bertrand & Massias (2021).

Given ``K + 1`` successive iterates ``x_0 .. x_K`` of a fixed-point map, the extrapolated point is
``sum_a c_a x_{a+1}`` with weights ``c`` minimising ``||sum_a c_a (x_{a+1} - x_a)||`` subject to
``sum_a c_a = 1``: ``c = U^-1 1 / (1^T U^-1 1)`` with ``U_ab = <x_{a+1} - x_a, x_{b+1} - x_b>``.
The caller decides whether to accept the point (e.g. only if it lowers the objective).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._linalg import FASTMATH, small_spd_solve

#: number of extrapolation weights: the last ``K + 1`` iterates are combined.
K = 5


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def anderson_weights(hist, c):  # pragma: no cover - numba
    """Extrapolation weights from the iterates ``hist`` (K + 1, k), written into ``c`` (K,).

    Returns False when the system is singular or the weights do not sum to a finite non-zero
    number (then ``c`` is meaningless). The (K, K) system is allocated here with the constant
    ``K``, which lets LLVM specialise the tiny Cholesky solve.
    """
    k = hist.shape[1]
    U = np.empty((K, K))
    for a in range(K):
        for b in range(a, K):
            v = 0.0
            for u in range(k):
                v += (hist[a + 1, u] - hist[a, u]) * (hist[b + 1, u] - hist[b, u])
            U[a, b] = v
            U[b, a] = v
        c[a] = 1.0
    if not small_spd_solve(U, c):
        return False
    sc = 0.0
    for a in range(K):
        sc += c[a]
    if sc == 0.0 or not math.isfinite(sc):
        return False
    for a in range(K):
        c[a] = c[a] / sc
    return True


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def anderson_combine(hist, c, out):  # pragma: no cover - numba
    """``out = sum_a c[a] * hist[a + 1]``: the extrapolated point (or any quantity linear in it)."""
    k = out.shape[0]
    for u in range(k):
        out[u] = 0.0
    for a in range(c.shape[0]):
        w = c[a]
        for u in range(k):
            out[u] += w * hist[a + 1, u]
