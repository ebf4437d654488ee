"""The fast path: numba working-set coordinate descent, parallel over targets.

For one target (:func:`solve_target`): a greedy pass adds KKT violators (largest first) to the
working set (= the support), coordinate descent runs on the small Gram block of the working set
(:func:`cd_sub`, Anderson-accelerated; rows of the previous round's block are reused), and, once
the sign pattern is stable, a Newton "polish" (:func:`polish`) solves the active block exactly
with a Cholesky factor that is kept for the whole solve and updated one coordinate at a time as
the support grows and shrinks (:mod:`._linalg`), so the factorisation work is about one
Cholesky of the final support instead of one per Newton step. The loop ends when the full-problem duality gap
(:func:`..certificates.gap_kernel`) is certified. :func:`solve_batch` runs targets in ``prange``.
The first call JIT-compiles the kernels (a few seconds); they are cached on disk.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._anderson import K as ANDERSON_K
from ._anderson import anderson_combine, anderson_weights
from ._linalg import FASTMATH, chol_append, chol_delete, chol_solve
from .certificates import gap_kernel


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def recompute_q(G, th, qA):  # pragma: no cover - numba
    """``qA = G th`` from scratch (skipping zero coefficients)."""
    k = th.shape[0]
    for u in range(k):
        qA[u] = 0.0
    for j in range(k):
        tj = th[j]
        if tj != 0.0:
            for u in range(k):
                qA[u] += tj * G[j, u]


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def sub_obj(sA, sii, lam, th, qA):  # pragma: no cover - numba
    """Objective on the working set, from ``qA = G th``."""
    k = th.shape[0]
    v = sii
    for j in range(k):
        tj = th[j]
        if tj != 0.0:
            v += tj * (qA[j] - 2.0 * sA[j]) + lam * abs(tj)
    return v


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def polish(S, A, wpos, G, sA, sii, lam, th, qA, fac):  # pragma: no cover - numba
    """Newton step on the current sign pattern (feature-sign search).

    Solves (S_SS + ridge I) x = s_S - lam/2 sign(th_S) on the support S with the incremental
    Cholesky factor ``fac`` (see :func:`new_factor`): coordinates that left the support since the
    last polish are deleted from it and new ones appended, O(m^2) each, instead of factoring
    from scratch. The tiny ridge keeps singular supports of rank-deficient S finite. If the signs
    of x agree, x is the candidate; otherwise the candidate is the first zero crossing on the
    segment th -> x (that coordinate set to exactly 0). The candidate is accepted only if it
    lowers the objective. Returns 2 (accepted, signs agreed), 1 (accepted, a coordinate left),
    0 (rejected, or a new coordinate is numerically dependent on the others).
    """
    L, F, infac, meta, work, tols = fac
    k = th.shape[0]
    m = meta[0]
    for f in range(m - 1, -1, -1):  # drop coordinates no longer in the support
        a = wpos[F[f]]
        if a < 0 or th[a] == 0.0:
            chol_delete(L, m, f, work)
            infac[F[f]] = False
            for g in range(f, m - 1):
                F[g] = F[g + 1]
            m -= 1
    for a in range(k):  # append new support coordinates
        j = A[a]
        if th[a] != 0.0 and not infac[j]:
            for f in range(m):
                L[m, f] = S[j, F[f]]
            if not chol_append(L, m, S[j, j] + tols[0], tols[1]):
                meta[0] = m
                return 0
            F[m] = j
            infac[j] = True
            m += 1
    meta[0] = m
    if m == 0:
        return 0
    b = np.empty(m)
    for f in range(m):
        a = wpos[F[f]]
        sg = 1.0 if th[a] > 0.0 else -1.0
        b[f] = sA[a] - 0.5 * lam * sg
    chol_solve(L, m, b)
    step = 1.0
    cross = -1
    for f in range(m):
        t0 = th[wpos[F[f]]]
        if (b[f] > 0.0) != (t0 > 0.0) or b[f] == 0.0:
            tt = t0 / (t0 - b[f])
            if tt < step:
                step = tt
                cross = f
    cand = th.copy()
    for f in range(m):
        a = wpos[F[f]]
        cand[a] = th[a] + step * (b[f] - th[a])
    if cross >= 0:
        cand[wpos[F[cross]]] = 0.0
    qc = np.empty(k)
    recompute_q(G, cand, qc)
    if sub_obj(sA, sii, lam, cand, qc) < sub_obj(sA, sii, lam, th, qA):
        for j in range(k):
            th[j] = cand[j]
            qA[j] = qc[j]
        return 2 if cross < 0 else 1
    return 0


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
def cd_sub(S, A, wpos, G, sA, sii, lam, th, qA, tol, max_sweeps, dmax, fac):  # pragma: no cover
    """Coordinate descent on the working-set block, with Anderson extrapolation every K sweeps
    and a Newton polish once the sign pattern is stable. Returns (sweeps, converged)."""
    k = th.shape[0]
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
                th[j] = new
                for u in range(k):
                    qA[u] += d * G[j, u]
        if sweep % 64 == 63:
            recompute_q(G, th, qA)
            nh = 0
        # Anderson acceleration; q is linear in theta, so it is extrapolated alongside
        for u in range(k):
            hth[nh, u] = th[u]
            hq[nh, u] = qA[u]
        nh += 1
        if nh == K + 1:
            nh = 0
            if anderson_weights(hth, cz):
                anderson_combine(hth, cz, the)
                anderson_combine(hq, cz, qe)
                if sub_obj(sA, sii, lam, the, qe) < sub_obj(sA, sii, lam, th, qA):
                    for u in range(k):
                        th[u] = the[u]
                        qA[u] = qe[u]
        P, gap, noise = gap_kernel(sA, qA, th, None, sii, lam, dmax)
        if gap <= tol * P or gap <= noise:
            return sweep + 1, True
        if changes == 0:
            stable += 1
        else:
            stable = 0
            polish_blocked = False
        if stable >= 2 and not polish_blocked:
            for _ in range(8):
                res = polish(S, A, wpos, G, sA, sii, lam, th, qA, fac)
                if res == 0:
                    break
                nh = 0
                if res == 2:
                    break
            P, gap, noise = gap_kernel(sA, qA, th, None, sii, lam, dmax)
            if gap <= tol * P or gap <= noise:
                return sweep + 1, True
            polish_blocked = res != 1
    return max_sweeps, False


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def solve_target(S, dmax, i, lam, allowed, theta, tol, max_iter):  # pragma: no cover - numba
    """Working-set CD for one target; theta is updated in place. Returns (P, gap, iters, ok)."""
    n = S.shape[0]
    sii = S[i, i]
    si = S[i]
    half = 0.5 * lam
    q = np.zeros(n)
    wpos = np.full(n, -1, dtype=np.int64)
    fac = new_factor(n, 0, dmax)  # grown by reserve_factor to the working set
    kprev = 0
    Aprev = np.empty(0, dtype=np.int64)
    Gprev = np.empty((0, 0))
    for j in range(n):
        tj = theta[j]
        if tj != 0.0:
            for u in range(n):
                q[u] += tj * S[j, u]
    iters = 0
    inner_tol = 0.25 * tol
    P = sii
    gap = 0.0
    ok = False
    while True:
        P, gap, noise = gap_kernel(si, q, theta, allowed, sii, lam, dmax)
        if gap <= tol * P or gap <= noise:
            ok = True
            break
        if iters >= max_iter:
            break
        rel = gap / P if P > 0.0 else 0.0
        # greedy pass over KKT violators, largest violation first
        nv = 0
        for j in range(n):
            if allowed[j] and theta[j] == 0.0 and abs(S[i, j] - q[j]) > half:
                nv += 1
        nadd = 0
        if nv > 0:
            vidx = np.empty(nv, dtype=np.int64)
            vval = np.empty(nv)
            c = 0
            for j in range(n):
                if allowed[j] and theta[j] == 0.0:
                    v = abs(S[i, j] - q[j])
                    if v > half:
                        vidx[c] = j
                        vval[c] = -v
                        c += 1
            order = np.argsort(vval, kind="mergesort")
            sv = np.empty(nv, dtype=np.int64)
            qv = np.empty(nv)
            for o in range(nv):
                sv[o] = vidx[order[o]]
                qv[o] = q[sv[o]]
            # sequential: each addition updates q on the violators still to come (q elsewhere
            # is recomputed after the working-set solve)
            for o in range(nv):
                j = sv[o]
                z = S[i, j] - qv[o]
                if z > half:
                    new = (z - half) / S[j, j]
                elif z < -half:
                    new = (z + half) / S[j, j]
                else:
                    continue
                theta[j] = new
                nadd += 1
                Sj = S[j]
                for o2 in range(o + 1, nv):
                    qv[o2] += new * Sj[sv[o2]]
        iters += 1
        # working set = support: rows of the previous block are reused, new ones gathered
        k = 0
        for j in range(n):
            if theta[j] != 0.0:
                k += 1
        A = np.empty(k, dtype=np.int64)
        src = np.empty(k, dtype=np.int64)  # position in the previous block, -1 if new
        c = 0
        for a in range(kprev):
            if theta[Aprev[a]] != 0.0:
                A[c] = Aprev[a]
                src[c] = a
                c += 1
        for j in range(n):
            if theta[j] != 0.0 and wpos[j] < 0:
                A[c] = j
                src[c] = -1
                c += 1
        G = np.empty((k, k))
        for a in range(k):
            ja = A[a]
            if src[a] >= 0:
                Gp = Gprev[src[a]]
                for b in range(k):
                    G[a, b] = Gp[src[b]] if src[b] >= 0 else S[ja, A[b]]
            else:
                Sa = S[ja]
                for b in range(k):
                    G[a, b] = Sa[A[b]]
        for a in range(kprev):
            wpos[Aprev[a]] = -1
        sA = np.empty(k)
        th = np.empty(k)
        qA = np.empty(k)
        for a in range(k):
            ja = A[a]
            wpos[ja] = a
            sA[a] = S[i, ja]
            th[a] = theta[ja]
        recompute_q(G, th, qA)
        if nadd > 0:
            inner_tol = max(0.25 * tol, 0.1 * rel)
        elif inner_tol > 0.25 * tol:
            # no KKT violator outside the support: the working-set gap is (up to the dual
            # scaling) the full gap, so solve the block to the final tolerance in one go
            inner_tol = 0.25 * tol
        else:
            inner_tol = max(0.1 * min(inner_tol, rel), 1e-16)
        if k > 0:
            fac = reserve_factor(fac, fac[3][0] + k)
            sw, _conv = cd_sub(S, A, wpos, G, sA, sii, lam, th, qA, inner_tol,
                               max(max_iter - iters, 1), dmax, fac)
            iters += sw
        Aprev = A
        Gprev = G
        kprev = k
        for a in range(k):
            theta[A[a]] = th[a]
        # exact q from scratch
        for u in range(n):
            q[u] = 0.0
        for a in range(k):
            tj = th[a]
            if tj != 0.0:
                ja = A[a]
                for u in range(n):
                    q[u] += tj * S[ja, u]
    return P, gap, iters, ok


@njit(parallel=True, cache=True)
def solve_batch(S, dmax, targets, lams, allowed, theta, tol, max_iter, obj, gap, iters, ok):
    """:func:`solve_target` for every row, in parallel (``prange``); outputs written in place."""
    T = targets.shape[0]
    for t in prange(T):  # pragma: no cover - numba
        P, g, it, conv = solve_target(
            S, dmax, targets[t], lams[t], allowed[t], theta[t], tol, max_iter
        )
        obj[t] = P
        gap[t] = g
        iters[t] = it
        ok[t] = conv
