"""Small dense linear algebra in numba for the CovLasso kernels (SPD solves on tiny blocks)."""

from __future__ import annotations

import math

from numba import njit

#: reassociation lets LLVM vectorise dot products; no finite-math assumptions.
FASTMATH = {"reassoc", "contract"}


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def cholesky_solve(M, rhs, piv_tol):  # pragma: no cover - numba
    """Factor the SPD matrix M = L L^T in place (lower triangle) and solve M x = rhs in place.

    Returns False (M and rhs then partly overwritten) when a pivot is not above ``piv_tol``.
    """
    m = M.shape[0]
    for a in range(m):
        v = M[a, a]
        for p in range(a):
            v -= M[a, p] * M[a, p]
        if not v > piv_tol:
            return False
        v = math.sqrt(v)
        M[a, a] = v
        for r in range(a + 1, m):
            w = M[r, a]
            for p in range(a):
                w -= M[r, p] * M[a, p]
            M[r, a] = w / v
    for a in range(m):
        w = rhs[a]
        for p in range(a):
            w -= M[a, p] * rhs[p]
        rhs[a] = w / M[a, a]
    for a in range(m - 1, -1, -1):
        w = rhs[a]
        for p in range(a + 1, m):
            w -= M[p, a] * rhs[p]
        rhs[a] = w / M[a, a]
    return True


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def small_spd_solve(M, rhs):  # pragma: no cover - numba
    """Solve the small SPD system M x = rhs in place (rhs); False if not positive definite.

    A ridge of ``1e-10 * trace(M) / m`` keeps nearly singular systems solvable.
    """
    m = M.shape[0]
    tr = 0.0
    for a in range(m):
        tr += M[a, a]
    if not tr > 0.0:
        return False
    for a in range(m):
        M[a, a] += 1e-10 * tr / m
    return cholesky_solve(M, rhs, 1e-14 * tr)
