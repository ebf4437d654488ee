"""The fast path: numba working-set coordinate descent, parallel over targets.

For one target (:func:`solve_target`): a greedy pass adds KKT violators (largest first) to the
working set (= the support), coordinate descent runs on the small Gram block of the working set
(:func:`cd_sub`, Anderson-accelerated), and, once the sign pattern is stable, a Newton "polish"
(:func:`polish`) solves the active block exactly. The loop ends when the full-problem duality gap
(:func:`..certificates.gap_kernel`) is certified. :func:`solve_batch` runs targets in ``prange``.
The first call JIT-compiles the kernels (a few seconds); they are cached on disk.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._anderson import K as ANDERSON_K
from ._anderson import anderson_combine, anderson_weights
from ._linalg import FASTMATH, cholesky_solve
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
def polish(G, sA, sii, lam, th, qA):  # pragma: no cover - numba
    """Newton step on the current sign pattern (feature-sign search).

    Solves (G_SS + eps I) x = s_S - lam/2 sign(th_S) on the support S (Cholesky; the tiny ridge
    keeps singular supports of rank-deficient S finite). If the signs of x agree, x is the
    candidate; otherwise the candidate is the first zero crossing on the segment th -> x (that
    coordinate set to exactly 0). The candidate is accepted only if it lowers the objective.
    Returns 2 (accepted, signs agreed), 1 (accepted, a coordinate left), 0 (rejected).
    """
    k = th.shape[0]
    m = 0
    for j in range(k):
        if th[j] != 0.0:
            m += 1
    if m == 0:
        return 0
    idx = np.empty(m, dtype=np.int64)
    c = 0
    for j in range(k):
        if th[j] != 0.0:
            idx[c] = j
            c += 1
    L = np.empty((m, m))
    b = np.empty(m)
    dm = 0.0
    for a in range(m):
        ja = idx[a]
        for bb in range(m):
            L[a, bb] = G[ja, idx[bb]]
        if L[a, a] > dm:
            dm = L[a, a]
        sg = 1.0 if th[ja] > 0.0 else -1.0
        b[a] = sA[ja] - 0.5 * lam * sg
    ridge = 1e-12 * dm
    for a in range(m):
        L[a, a] += ridge
    if not cholesky_solve(L, b, 1e-15 * dm):
        return 0
    step = 1.0
    cross = -1
    for a in range(m):
        t0 = th[idx[a]]
        if (b[a] > 0.0) != (t0 > 0.0) or b[a] == 0.0:
            tt = t0 / (t0 - b[a])
            if tt < step:
                step = tt
                cross = a
    cand = th.copy()
    for a in range(m):
        ja = idx[a]
        cand[ja] = th[ja] + step * (b[a] - th[ja])
    if cross >= 0:
        cand[idx[cross]] = 0.0
    qc = np.empty(k)
    recompute_q(G, cand, qc)
    if sub_obj(sA, sii, lam, cand, qc) < sub_obj(sA, sii, lam, th, qA):
        for j in range(k):
            th[j] = cand[j]
            qA[j] = qc[j]
        return 2 if cross < 0 else 1
    return 0


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def cd_sub(G, sA, sii, lam, th, qA, tol, max_sweeps, dmax):  # pragma: no cover - numba
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
                res = polish(G, sA, sii, lam, th, qA)
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
            for o in range(nv):
                j = vidx[order[o]]
                z = S[i, j] - q[j]
                if z > half:
                    new = (z - half) / S[j, j]
                elif z < -half:
                    new = (z + half) / S[j, j]
                else:
                    continue
                theta[j] = new
                nadd += 1
                for u in range(n):
                    q[u] += new * S[j, u]
        iters += 1
        # working set = support
        k = 0
        for j in range(n):
            if theta[j] != 0.0:
                k += 1
        A = np.empty(k, dtype=np.int64)
        c = 0
        for j in range(n):
            if theta[j] != 0.0:
                A[c] = j
                c += 1
        G = np.empty((k, k))
        sA = np.empty(k)
        th = np.empty(k)
        qA = np.empty(k)
        for a in range(k):
            ja = A[a]
            for b in range(k):
                G[a, b] = S[ja, A[b]]
            sA[a] = S[i, ja]
            th[a] = theta[ja]
        recompute_q(G, th, qA)
        if nadd > 0:
            inner_tol = max(0.25 * tol, 0.1 * rel)
        else:
            inner_tol = max(0.1 * min(inner_tol, rel), 1e-16)
        if k > 0:
            sw, _conv = cd_sub(G, sA, sii, lam, th, qA, inner_tol, max(max_iter - iters, 1), dmax)
            iters += sw
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
