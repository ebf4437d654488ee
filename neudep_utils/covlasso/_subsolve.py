"""The restricted problems of the CovLasso kernel (:mod:`._kernels`): the sub-objective and its
gap on the working set, the gradient passes, the Cholesky factor of the working-set block, the
Newton polish and coordinate descent on the working set. numba, one target at a time."""

from __future__ import annotations

import numpy as np
from numba import njit

from ._anderson import K as ANDERSON_K
from ._anderson import anderson_combine, anderson_weights
from ._linalg import FASTMATH, chol_append_rows, chol_delete, chol_solve
from .certificates import _gap_terms, gap_sums

# ---------------------------------------------------------------------------------------------
# small helpers on the working set (G is (cap, cap), the leading k x k block is used)
# ---------------------------------------------------------------------------------------------


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def next_four(th, a, k):  # pragma: no cover - numba
    """From position ``a``: the positions of the next four non-zero ``th[:k]`` (-1 where fewer
    remain) and the position after the last one scanned."""
    j0 = -1
    j1 = -1
    j2 = -1
    j3 = -1
    while a < k and j3 < 0:
        if th[a] != 0.0:
            if j0 < 0:
                j0 = a
            elif j1 < 0:
                j1 = a
            elif j2 < 0:
                j2 = a
            else:
                j3 = a
        a += 1
    return a, j0, j1, j2, j3


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def recompute_q(G, k, th, qA):  # pragma: no cover - numba
    """``qA[:k] = G[:k, :k] th[:k]`` from scratch (zero coefficients skipped, 4 rows at a time)."""
    for u in range(k):
        qA[u] = 0.0
    a = 0
    while a < k:
        a, j0, j1, j2, j3 = next_four(th, a, k)
        if j3 >= 0:
            w0 = th[j0]
            w1 = th[j1]
            w2 = th[j2]
            w3 = th[j3]
            for u in range(k):
                qA[u] += w0 * G[j0, u] + w1 * G[j1, u] + w2 * G[j2, u] + w3 * G[j3, u]
        else:
            for jj in (j0, j1, j2):
                if jj >= 0:
                    w = th[jj]
                    for u in range(k):
                        qA[u] += w * G[jj, u]


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def full_pass(S, A, th, k, q):  # pragma: no cover - numba
    """``q = S[:, W] th`` over all n coordinates, streaming four rows of S at a time."""
    n = q.shape[0]
    for u in range(n):
        q[u] = 0.0
    a = 0
    while a < k:
        a, j0, j1, j2, j3 = next_four(th, a, k)
        if j3 >= 0:
            w0 = th[j0]
            w1 = th[j1]
            w2 = th[j2]
            w3 = th[j3]
            r0 = A[j0]
            r1 = A[j1]
            r2 = A[j2]
            r3 = A[j3]
            for u in range(n):
                q[u] += w0 * S[r0, u] + w1 * S[r1, u] + w2 * S[r2, u] + w3 * S[r3, u]
        else:
            for jj in (j0, j1, j2):
                if jj >= 0:
                    w = th[jj]
                    r = A[jj]
                    for u in range(n):
                        q[u] += w * S[r, u]


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def sub_obj(sA, sii, lam, th, qA, k):  # pragma: no cover - numba
    """Objective on the working set, from ``qA = G th``."""
    v = sii
    for j in range(k):
        tj = th[j]
        if tj != 0.0:
            v += tj * (qA[j] - 2.0 * sA[j]) + lam * abs(tj)
    return v


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def w_gap(sA, qA, th, k, sii, lam, dmax, gout):  # pragma: no cover - numba
    """``(P, gap, noise, gW)`` from the working set, with ``gout`` = max |g_j| outside it.

    The terms of :func:`..certificates.gap_kernel` only involve the support (inside W) and
    ``max_j |g_j|``, so this is the full-problem certificate when ``gout`` is exact (or a proven
    bound not above ``gW``), and the working-set subproblem's certificate with ``gout = 0``.
    """
    l1, ts, ats, tq, tg, gW = gap_sums(sA, qA, th, None, k)
    scale = sii + 2.0 * ats + l1 * l1 * dmax
    P, gap, noise = _gap_terms(sii, lam, l1, ts, tq, tg, max(gW, gout), scale)
    return P, gap, noise, gW


# ---------------------------------------------------------------------------------------------
# the Newton polish and its incremental factor
# ---------------------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def new_factor(n, cap, dmax):  # pragma: no cover - numba
    """An empty incremental factor for one target: (L, F, infac, meta, work, tols).

    ``L`` (cap, cap) holds the lower Cholesky factor of ``S_FF + ridge I`` in its leading
    ``meta[0]`` block, ``F`` the global coordinates in factor order, ``infac`` (n,) marks them;
    ``tols = (ridge, pivot tolerance) = (1e-12, 1e-15) * max_j S_jj``.
    """
    tols = np.empty(2)
    tols[0] = 1e-12 * dmax
    tols[1] = 1e-15 * dmax
    return (np.empty((cap, cap)), np.empty(cap, dtype=np.int64), np.zeros(n, dtype=np.bool_),
            np.zeros(1, dtype=np.int64), np.empty(cap), tols)


@njit(cache=True, nogil=True)
def reserve_factor(fac, need):  # pragma: no cover - numba
    """``fac`` with room for ``need`` coordinates (reallocated and copied when it has less)."""
    L, F, infac, meta, work, tols = fac
    cap = L.shape[0]
    if need <= cap:
        return fac
    c2 = max(2 * cap, need)
    m = meta[0]
    L2 = np.empty((c2, c2))
    F2 = np.empty(c2, dtype=np.int64)
    for a in range(m):
        F2[a] = F[a]
        for b in range(a + 1):
            L2[a, b] = L[a, b]
    return (L2, F2, infac, meta, np.empty(c2), tols)


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def polish(G, A, wpos, k, sA, sii, lam, th, qA, fac, prof):  # pragma: no cover - numba
    """Newton step on the current sign pattern (feature-sign search).

    Solves (S_SS + ridge I) x = s_S - lam/2 sign(th_S) on the support S with the incremental
    Cholesky factor ``fac`` (see :func:`new_factor`): coordinates that left the support since the
    last polish are deleted from it and the new ones appended as one block, instead of factoring
    from scratch. The tiny ridge keeps singular supports of rank-deficient S finite. If the signs
    of x agree, x is the candidate; otherwise the candidate is the first zero crossing on the
    segment th -> x (that coordinate set to exactly 0). The candidate is accepted only if it
    lowers the objective. Returns 2 (accepted, signs agreed), 1 (accepted, a coordinate left),
    0 (rejected, or a new coordinate is numerically dependent on the others).
    """
    L, F, infac, meta, work, tols = fac
    m = meta[0]
    for f in range(m - 1, -1, -1):  # drop coordinates no longer in the support
        a = wpos[F[f]]
        if a < 0 or th[a] == 0.0:
            prof[9] += (m - f) * (m - f) + f * (m - f)
            chol_delete(L, m, f, work)
            infac[F[f]] = False
            for g in range(f, m - 1):
                F[g] = F[g + 1]
            m -= 1
    nb = 0
    for a in range(k):
        if th[a] != 0.0 and not infac[A[a]]:
            nb += 1
    if nb > 0:  # append the new support coordinates as one block
        newpos = np.empty(nb, dtype=np.int64)
        diag = np.empty(nb)
        r = 0
        for a in range(k):
            if th[a] != 0.0 and not infac[A[a]]:
                newpos[r] = a
                r += 1
        for r in range(nb):
            a = newpos[r]
            row = m + r
            for f in range(m):
                L[row, f] = G[a, wpos[F[f]]]
            for r2 in range(r):
                L[row, m + r2] = G[a, newpos[r2]]
            diag[r] = G[a, a] + tols[0]
        prof[8] += nb * (m * m + nb * m + nb * nb // 3) // 2
        got = chol_append_rows(L, m, nb, diag, tols[1])
        for r in range(got):
            F[m + r] = A[newpos[r]]
            infac[A[newpos[r]]] = True
        m += got
        if got < nb:
            meta[0] = m
            return 0
    meta[0] = m
    if m == 0:
        return 0
    b = np.empty(m)
    for f in range(m):
        a = wpos[F[f]]
        sg = 1.0 if th[a] > 0.0 else -1.0
        b[f] = sA[a] - 0.5 * lam * sg
    chol_solve(L, m, b)
    prof[12] += m * m + 3 * k
    step = 1.0
    cross = -1
    for f in range(m):
        t0 = th[wpos[F[f]]]
        if (b[f] > 0.0) != (t0 > 0.0) or b[f] == 0.0:
            tt = t0 / (t0 - b[f])
            if tt < step:
                step = tt
                cross = f
    cand = np.empty(k)
    for a in range(k):
        cand[a] = th[a]
    for f in range(m):
        a = wpos[F[f]]
        cand[a] = th[a] + step * (b[f] - th[a])
    if cross >= 0:
        cand[wpos[F[cross]]] = 0.0
    qc = np.empty(k)
    recompute_q(G, k, cand, qc)
    prof[12] += k * m
    if sub_obj(sA, sii, lam, cand, qc, k) < sub_obj(sA, sii, lam, th, qA, k):
        for j in range(k):
            th[j] = cand[j]
            qA[j] = qc[j]
        return 2 if cross < 0 else 1
    return 0


# ---------------------------------------------------------------------------------------------
# coordinate descent on the working set
# ---------------------------------------------------------------------------------------------


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def cd_sub(G, A, wpos, k, sA, sii, lam, th, qA, tol, max_sweeps, dmax, fac, prof):  # pragma: no cover
    """Coordinate descent on the working-set block, with Anderson extrapolation every K sweeps
    and a Newton polish once the sign pattern is stable. Returns (sweeps, converged)."""
    half = 0.5 * lam
    stable = 0
    polish_blocked = False
    K = ANDERSON_K
    hth = np.empty((K + 1, k))
    hq = np.empty((K + 1, k))
    nh = 0
    cz = np.empty(K)
    the = np.empty(k)
    qe = np.empty(k)
    for sweep in range(max_sweeps):
        changes = 0
        for j in range(k):
            gjj = G[j, j]
            tj = th[j]
            z = sA[j] - qA[j] + gjj * tj
            if z > half:
                new = (z - half) / gjj
            elif z < -half:
                new = (z + half) / gjj
            else:
                new = 0.0
            d = new - tj
            if d != 0.0:
                if (new > 0.0) != (tj > 0.0) or (new == 0.0) != (tj == 0.0):
                    changes += 1
                prof[7] += k
                th[j] = new
                for u in range(k):
                    qA[u] += d * G[j, u]
        prof[7] += 4 * k
        if sweep % 64 == 63:
            recompute_q(G, k, th, qA)
            prof[7] += k * k
            nh = 0
        # Anderson acceleration; q is linear in theta, so it is extrapolated alongside
        for u in range(k):
            hth[nh, u] = th[u]
            hq[nh, u] = qA[u]
        nh += 1
        if nh == K + 1:
            nh = 0
            prof[7] += (K + 3) * K * k
            if anderson_weights(hth, cz):
                anderson_combine(hth, cz, the)
                anderson_combine(hq, cz, qe)
                if sub_obj(sA, sii, lam, the, qe, k) < sub_obj(sA, sii, lam, th, qA, k):
                    for u in range(k):
                        th[u] = the[u]
                        qA[u] = qe[u]
        P, gap, noise, _ = w_gap(sA, qA, th, k, sii, lam, dmax, 0.0)
        if gap <= tol * P or gap <= noise:
            return sweep + 1, True
        if changes == 0:
            stable += 1
        else:
            stable = 0
            polish_blocked = False
        if stable >= 2 and not polish_blocked:
            for _ in range(8):
                res = polish(G, A, wpos, k, sA, sii, lam, th, qA, fac, prof)
                if res == 0:
                    break
                nh = 0
                if res == 2:
                    break
            P, gap, noise, _ = w_gap(sA, qA, th, k, sii, lam, dmax, 0.0)
            if gap <= tol * P or gap <= noise:
                return sweep + 1, True
            polish_blocked = res != 1
    return max_sweeps, False
