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


# ---------------------------------------------------------------------------------------------
# a Cholesky factor L (L L^T = M) grown and shrunk one coordinate at a time
# ---------------------------------------------------------------------------------------------
# L is lower triangular in the leading m x m block of a (cap, cap) C-contiguous array. Appending
# and the forward solve are dot products of rows of L (contiguous, so LLVM vectorises them); the
# rank-one update after a deletion walks columns, but it is rare and O((m - p)^2).


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def chol_append(L, m, diag, piv_tol):  # pragma: no cover - numba
    """Grow the factor of ``M[:m, :m]`` to ``M[:m+1, :m+1]`` (a bordered, O(m^2) update).

    On entry ``L[m, :m]`` holds ``M[m, :m]``; on success it holds the new row of the factor and
    ``L[m, m]`` its pivot. ``diag = M[m, m]``. Returns False (the leading m x m factor stays
    valid) when the new pivot ``M[m, m] - ||L[m, :m]||^2`` is not above ``piv_tol``: the new
    coordinate is numerically in the span of the others.
    """
    for a in range(m):
        w = L[m, a]
        for p in range(a):
            w -= L[a, p] * L[m, p]
        L[m, a] = w / L[a, a]
    d = diag
    for a in range(m):
        d -= L[m, a] * L[m, a]
    if not d > piv_tol:
        return False
    L[m, m] = math.sqrt(d)
    return True


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def chol_delete(L, m, p, work):  # pragma: no cover - numba
    """Remove row and column ``p`` of M from its factor in place (the size becomes m - 1).

    With ``L = [[L11, 0, 0], [l21, l22, 0], [L31, l32, L33]]`` the factor of M without ``p`` is
    ``[[L11, 0], [L31, L33']]`` with ``L33' L33'^T = L33 L33^T + l32 l32^T``: a rank-one *update*
    (Givens rotations, numerically stable), O((m - p)^2), then a shift. ``work`` (>= m) is scratch.
    """
    nn = m - p - 1
    for j in range(nn):
        work[j] = L[p + 1 + j, p]
    for kk in range(nn):
        a = p + 1 + kk
        lkk = L[a, a]
        xk = work[kk]
        r = math.hypot(lkk, xk)
        c = r / lkk
        s = xk / lkk
        L[a, a] = r
        for j in range(kk + 1, nn):
            b = p + 1 + j
            v = (L[b, a] + s * work[j]) / c
            L[b, a] = v
            work[j] = c * work[j] - s * v
    for r in range(p, m - 1):
        for cc in range(p):
            L[r, cc] = L[r + 1, cc]
        for cc in range(p, r + 1):
            L[r, cc] = L[r + 1, cc + 1]


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def chol_solve(L, m, rhs):  # pragma: no cover - numba
    """Solve ``L L^T z = rhs`` in place with the factor in ``L[:m, :m]`` (O(m^2))."""
    for a in range(m):  # L y = rhs
        w = rhs[a]
        for p in range(a):
            w -= L[a, p] * rhs[p]
        rhs[a] = w / L[a, a]
    for a in range(m - 1, -1, -1):  # L^T z = y
        z = rhs[a] / L[a, a]
        rhs[a] = z
        for p in range(a):
            rhs[p] -= z * L[a, p]


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def chol_append_rows(L, m, nb, diag, piv_tol):  # pragma: no cover - numba
    """Grow the factor of ``M[:m, :m]`` by ``nb`` rows at once: to ``M[:m+nb, :m+nb]``.

    On entry row ``m + r`` of ``L`` holds ``M[m + r, :m + r]`` (the new rows' entries left of the
    diagonal) and ``diag[r] = M[m + r, m + r]``. The new rows are computed four at a time
    against each row of the old factor (one read of ``L[c, :c]`` serves four dot products), so
    appending ``nb`` coordinates costs the same arithmetic as ``nb`` calls of
    :func:`chol_append` but far less memory traffic. Rows are accepted in order; the first whose
    pivot is not above ``piv_tol`` stops the growth. Returns the number of rows appended (the
    leading ``m + returned`` factor is valid; later rows hold scratch).
    """
    r0 = m
    end = m + nb
    while r0 < end:
        nr = min(4, end - r0)
        # columns left of the block: dot products with the finished rows of the factor
        if nr == 4:
            for c in range(r0):
                s0 = 0.0
                s1 = 0.0
                s2 = 0.0
                s3 = 0.0
                for p in range(c):
                    lv = L[c, p]
                    s0 += lv * L[r0, p]
                    s1 += lv * L[r0 + 1, p]
                    s2 += lv * L[r0 + 2, p]
                    s3 += lv * L[r0 + 3, p]
                d = L[c, c]
                L[r0, c] = (L[r0, c] - s0) / d
                L[r0 + 1, c] = (L[r0 + 1, c] - s1) / d
                L[r0 + 2, c] = (L[r0 + 2, c] - s2) / d
                L[r0 + 3, c] = (L[r0 + 3, c] - s3) / d
        else:
            for r in range(r0, r0 + nr):
                for c in range(r0):
                    w = L[r, c]
                    for p in range(c):
                        w -= L[c, p] * L[r, p]
                    L[r, c] = w / L[c, c]
        # the block's own triangle, one row at a time
        for r in range(r0, r0 + nr):
            for c in range(r0, r):
                w = L[r, c]
                for p in range(c):
                    w -= L[c, p] * L[r, p]
                L[r, c] = w / L[c, c]
            d = diag[r - m]
            for p in range(r):
                d -= L[r, p] * L[r, p]
            if not d > piv_tol:
                return r - m
            L[r, r] = math.sqrt(d)
        r0 += nr
    return nb
