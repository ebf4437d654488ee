"""The fast path: numba working-set coordinate descent, parallel over targets.

For one target (:func:`solve_target`), over one lam or a decreasing sequence of lams (a path,
or the loose continuation steps a single solve from zero starts with):

- a *working set* W holds the support plus the coordinates just added; its Gram block
  ``G = S_WW`` is extended by one gathered row (mirrored into the column) per new coordinate and
  compacted in place when coordinates leave, never rebuilt from S;
- KKT violators outside W are added largest first by a greedy coordinate pass (four at a time,
  their rows of S streamed together), then coordinate descent runs on W (:func:`cd_sub`,
  Anderson-accelerated) and, once the sign pattern is stable, a Newton "polish"
  (:func:`polish`) solves the active block exactly with a Cholesky factor kept for the whole
  call and updated as the support changes (new coordinates appended a block at a time,
  :func:`._linalg.chol_append_rows`);
- the certificate needs the gradient ``g = s - S theta`` outside W. A full pass over all n
  coordinates (four rows of S at a time) fixes a reference ``theta_ref`` with exact
  ``q_ref = S theta_ref``. Later rounds use the bound

      |g_j(theta) - g_j(theta_ref)| <= sqrt(S_jj) * ||theta - theta_ref||_S

  (Cauchy-Schwarz in the S inner product, S PSD; ``||d||_S^2 = d^T S_WW d`` comes from the exact
  ``q`` on W at O(|W|) cost, plus a rounding margin) to find the few coordinates J that could
  violate or could carry the largest |g_j|; only those are evaluated exactly (a partial pass).
  Every other coordinate is proven to lie below both lam / 2 and the largest |g_j| on W, so the
  certificate is the same duality gap as :func:`..certificates.gap_kernel` over all
  coordinates; when J is large, a full pass is run instead.

:func:`solve_batch` runs targets in ``prange``; a target's result depends only on its own inputs
(not on the batch or the thread that runs it). The first call JIT-compiles the kernels (a few
seconds); they are cached on disk.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ._linalg import FASTMATH
from ._subsolve import (  # noqa: F401 - the kernel's restricted solves
    cd_sub,
    full_pass,
    new_factor,
    next_four,
    polish,
    recompute_q,
    reserve_factor,
    sub_obj,
    w_gap,
)

_EPS = 2.220446049250313e-16
#: a partial pass reads one row of S per candidate in J (a gather at the support), a full pass
#: one row per support coordinate (streamed). The partial pass is used while
#: |J| <= min(n / PARTIAL_RATIO, 2 |support|).
PARTIAL_RATIO = 8

#: work counters per target (``passes[t, c]``, multiply-adds unless said otherwise): the profile
#: of where a solve spends its arithmetic, independent of the machine's load.
#: 0, 1: number of full / partial gradient passes; 2, 3: their multiply-adds; 4: screening and
#: certificate scans over the n coordinates; 5: the greedy additions (rows of S streamed or
#: gathered); 6: Gram-block assembly; 7: coordinate-descent sweeps on W (with Anderson and the
#: working-set gaps); 8: the polish's factor appends; 9: factor
#: deletions; 10: exact ``q`` on W after each round; 11: working-set compaction; 12: the polish's
#: solves and candidate checks (8 is then its factor appends alone).
N_COUNTERS = 13



# ---------------------------------------------------------------------------------------------
# one target
# ---------------------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _grow(A, sA, th, qA, k, need):  # pragma: no cover - numba
    """The working-set vectors with room for ``need`` coordinates (copied when reallocated)."""
    cap = A.shape[0]
    if need <= cap:
        return A, sA, th, qA
    c2 = max(2 * cap, need)
    A2 = np.empty(c2, dtype=np.int64)
    s2 = np.empty(c2)
    t2 = np.empty(c2)
    q2 = np.empty(c2)
    for a in range(k):
        A2[a] = A[a]
        s2[a] = sA[a]
        t2[a] = th[a]
        q2[a] = qA[a]
    return A2, s2, t2, q2


@njit(cache=True, nogil=True)
def _grow_G(G, k, need):  # pragma: no cover - numba
    """``G`` with room for ``need`` coordinates (its leading k x k block copied when
    reallocated). The capacity tracks W closely (x 1.25): sweeps read rows of G, so a compact
    block stays in cache."""
    cap = G.shape[0]
    if need <= cap:
        return G
    c2 = need + need // 4 + 8
    G2 = np.empty((c2, c2))
    for a in range(k):
        for b in range(k):
            G2[a, b] = G[a, b]
    return G2


@njit(cache=True, nogil=True)
def _compact(A, G, sA, th, qA, wpos, th_ref, k, k0):  # pragma: no cover - numba
    """Drop from W the coordinates before position ``k0`` that are zero now and at the reference
    (``th_ref``); the rest keep their order. Returns the new size. In place: kept rows and columns
    only move to lower positions."""
    keep = np.empty(k, dtype=np.bool_)
    for a in range(k):
        keep[a] = not (a < k0 and th[a] == 0.0 and th_ref[A[a]] == 0.0)
    c = 0
    for a in range(k):
        ja = A[a]
        if not keep[a]:
            wpos[ja] = -1
            continue
        cb = 0
        for b in range(k):
            if keep[b]:
                G[c, cb] = G[a, b]
                cb += 1
        A[c] = ja
        sA[c] = sA[a]
        th[c] = th[a]
        qA[c] = qA[a]
        wpos[ja] = c
        c += 1
    return c


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _assemble(S, A, G, sA, i, k0, k1):  # pragma: no cover - numba
    """Rows and columns ``k0 .. k1 - 1`` of ``G = S_WW`` (and ``sA``) for newly added coordinates."""
    for p in range(k0, k1):
        jp = A[p]
        sA[p] = S[i, jp]
        for b in range(k1):
            G[p, b] = S[jp, A[b]]
        for b in range(k0):
            G[b, p] = G[p, b]


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _greedy_exact(S, si, half, sv, nv, A, th, wpos, th_ref, q, k):  # pragma: no cover
    """Greedy coordinate pass over the violators ``sv`` (largest first) with an exact ``q``.

    Each violator gets its coordinate-descent value given the ones before it. Four violators are
    decided at a time (within a block the earlier additions enter as scalar corrections), then
    their rows of S are streamed together to update ``q`` over all n (it stays ``S theta``, and
    ``theta_ref`` follows theta). Appends the additions to ``A``; returns the new size of W.
    """
    n = q.shape[0]
    rows = np.empty(4, dtype=np.int64)
    vals = np.empty(4)
    o = 0
    while o < nv:
        ob = min(o + 4, nv)
        nb = 0
        for oo in range(o, ob):
            j = sv[oo]
            z = si[j] - q[j]
            for r in range(nb):
                z -= vals[r] * S[rows[r], j]
            if z > half:
                new = (z - half) / S[j, j]
            elif z < -half:
                new = (z + half) / S[j, j]
            else:
                continue
            rows[nb] = j
            vals[nb] = new
            nb += 1
        o = ob
        if nb == 0:
            continue
        if nb == 4:
            r0 = rows[0]
            r1 = rows[1]
            r2 = rows[2]
            r3 = rows[3]
            w0 = vals[0]
            w1 = vals[1]
            w2 = vals[2]
            w3 = vals[3]
            for u in range(n):
                q[u] += w0 * S[r0, u] + w1 * S[r1, u] + w2 * S[r2, u] + w3 * S[r3, u]
        else:
            for r in range(nb):
                rr = rows[r]
                w = vals[r]
                for u in range(n):
                    q[u] += w * S[rr, u]
        for r in range(nb):
            j = rows[r]
            A[k] = j
            th[k] = vals[r]
            th_ref[j] = vals[r]
            wpos[j] = k
            k += 1
    return k


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _warm_working_set(S, i, w0, allowed, wpos, th_ref, q, passes):  # pragma: no cover - numba
    """The warm start ``w0`` as the initial working set W: its coordinates, Gram block, ``S_iW``,
    the exact reference gradient ``q = S theta`` and ``qA = q_W``. Returns ``(A, G, sA, th, qA,
    k)``."""
    n = S.shape[0]
    cap = 16
    A = np.empty(cap, dtype=np.int64)
    G = np.empty((cap, cap))
    sA = np.empty(cap)
    th = np.empty(cap)
    qA = np.empty(cap)
    k = 0
    for j in range(n):
        if allowed[j] and w0[j] != 0.0:
            k += 1
    A, sA, th, qA = _grow(A, sA, th, qA, 0, k)
    G = _grow_G(G, 0, k)
    k = 0
    for j in range(n):
        if allowed[j] and w0[j] != 0.0:
            A[k] = j
            th[k] = w0[j]
            th_ref[j] = w0[j]
            wpos[j] = k
            k += 1
    _assemble(S, A, G, sA, i, 0, k)
    full_pass(S, A, th, k, q)
    passes[2] += n * k
    passes[6] += k * k
    for a in range(k):
        qA[a] = q[A[a]]
    return A, G, sA, th, qA, k


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _refresh_gradient(S, si, sd, dmax, allowed, A, sA, th, qA, wpos, th_ref, q, k, half, jidx,
                      gv, passes):  # pragma: no cover - numba
    """After restricted sweeps: bound how far the gradient outside W can have moved since the
    reference (``|g_j - g_ref_j| <= sd_j ||theta - theta_ref||_S``, PSD S), collect the
    candidates J that could violate, and either refresh them exactly (``gv``, a partial pass) or,
    when J is large, run a full pass that makes the reference exact. Returns ``(|J|, exact)``."""
    n = S.shape[0]
    d2 = 0.0
    dl1 = 0.0
    tl1 = 0.0
    gW = 0.0
    for a in range(k):
        ja = A[a]
        dd = th[a] - th_ref[ja]
        if dd != 0.0:
            d2 += dd * (qA[a] - q[ja])
            dl1 += abs(dd)
        tl1 += abs(th[a]) + abs(th_ref[ja])
        ag = abs(sA[a] - qA[a])
        if ag > gW:
            gW = ag
    # rounding of q_ref and qA (each within k eps dmax ||theta||_1)
    delta = math.sqrt(abs(d2) + 4.0 * (k + 1) * _EPS * dmax * dl1 * tl1)
    thr = min(half, gW)
    passes[4] += n + k
    nJ = 0
    for j in range(n):
        if allowed[j] and wpos[j] < 0:
            if abs(si[j] - q[j]) + sd[j] * delta > thr:
                jidx[nJ] = j
                nJ += 1
    nnz = 0
    for a in range(k):
        if th[a] != 0.0:
            nnz += 1
    if nJ * PARTIAL_RATIO > n or nJ > 2 * nnz:
        passes[0] += 1
        passes[2] += n * nnz
        full_pass(S, A, th, k, q)
        for a in range(k):
            th_ref[A[a]] = th[a]
        return nJ, True
    passes[1] += 1
    passes[3] += nJ * nnz
    for c in range(nJ):
        j = jidx[c]
        acc = 0.0
        for a in range(k):
            ta = th[a]
            if ta != 0.0:
                acc += ta * S[j, A[a]]
        gv[j] = si[j] - acc
    return nJ, False


@njit(cache=True, nogil=True)
def _largest_outside(si, q, allowed, wpos, exact, nJ, jidx, gv, passes):  # pragma: no cover
    """The certificate's largest ``|g_j|`` outside W: every allowed j when the reference is
    exact, else over the refreshed candidates J."""
    gout = 0.0
    if exact:
        n = si.shape[0]
        passes[4] += n
        for j in range(n):
            if allowed[j] and wpos[j] < 0:
                ag = abs(si[j] - q[j])
                if ag > gout:
                    gout = ag
    else:
        for c in range(nJ):
            ag = abs(gv[jidx[c]])
            if ag > gout:
                gout = ag
    return gout


@njit(cache=True, nogil=True)
def _violators(si, q, allowed, wpos, exact, nJ, jidx, gv, half, vidx, vval,
               passes):  # pragma: no cover - numba
    """KKT violators outside W (``|g_j| > lam / 2``) into ``vidx`` with ``vval = -|g_j|``;
    returns their number."""
    nv = 0
    if exact:
        n = si.shape[0]
        passes[4] += n
        for j in range(n):
            if allowed[j] and wpos[j] < 0:
                v = abs(si[j] - q[j])
                if v > half:
                    vidx[nv] = j
                    vval[nv] = -v
                    nv += 1
    else:
        for c in range(nJ):
            j = jidx[c]
            v = abs(gv[j])
            if v > half:
                vidx[nv] = j
                vval[nv] = -v
                nv += 1
    return nv


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _greedy_partial(S, half, sv, nv, gv, A, th, wpos, k, passes):  # pragma: no cover - numba
    """Greedy entry of the violators ``sv`` (largest first) from the refreshed gradient,
    updating only the remaining violators (gathers); returns the new size of W."""
    zv = np.empty(nv)
    passes[5] += nv * (nv + 1) // 2
    for o in range(nv):
        zv[o] = gv[sv[o]]
    for o in range(nv):
        j = sv[o]
        z = zv[o]
        if z > half:
            new = (z - half) / S[j, j]
        elif z < -half:
            new = (z + half) / S[j, j]
        else:
            continue
        A[k] = j
        th[k] = new
        wpos[j] = k
        k += 1
        for o2 in range(o + 1, nv):
            zv[o2] -= new * S[j, sv[o2]]
    return k


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _update_qA(G, A, th, q, qA, k0, k, exact):  # pragma: no cover - numba
    """``qA = (S theta)_W`` after W grew from ``k0`` to ``k``: from the exact reference, or by
    the new Gram rows and columns."""
    if exact:
        for a in range(k):
            qA[a] = q[A[a]]
        return
    for p in range(k0, k):
        acc = 0.0
        for b in range(k0):
            acc += G[p, b] * th[b]
        qA[p] = acc
    for p in range(k0, k):
        w = th[p]
        for u in range(k):
            qA[u] += w * G[p, u]


@njit(cache=True, nogil=True)
def _scatter(o_, A, th, k):  # pragma: no cover - numba
    """A written solution: ``theta`` on W, zero elsewhere."""
    for j in range(o_.shape[0]):
        o_[j] = 0.0
    for a in range(k):
        o_[A[a]] = th[a]


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def solve_target(S, sd, dmax, i, lams, dest, allowed, w0, out, tol, ctol, max_iter, obj, gap,
                 iters, ok, passes):  # pragma: no cover - numba
    """Working-set CD for one target over the steps ``lams[0] >= lams[1] >= ...``.

    Starts from ``w0`` (zero outside ``allowed``). Step ``s`` with ``dest[s] >= 0`` is solved to
    ``gap <= tol * objective`` and written to ``out[dest[s]]`` with ``obj``, ``gap``, ``iters``,
    ``ok`` at ``dest[s]``; ``dest[s] == -1`` is a continuation step, solved only to ``ctol``
    (with at most ``max_iter // 4`` iterations) as a warm start and not written, its
    iterations counted in the next written point; ``dest[s] == -2`` is skipped. Each step
    warm-starts from the previous one and keeps the working set, its Gram block, the factor and
    the reference gradient. Stops at the first lam that is not positive (those points are left
    to the caller). ``sd = sqrt(diag(S))``; ``passes`` (``N_COUNTERS``,) receives the work
    counters (see :data:`N_COUNTERS`).
    """
    n = S.shape[0]
    sii = S[i, i]
    si = S[i]
    wpos = np.full(n, -1, dtype=np.int64)
    q = np.zeros(n)  # S theta_ref, exact
    th_ref = np.zeros(n)  # theta at the last full pass (zero outside W)
    gv = np.empty(n)  # exact g_j on the partial set J
    jidx = np.empty(n, dtype=np.int64)
    nJ = 0
    vidx = np.empty(n, dtype=np.int64)
    vval = np.empty(n)
    fac = new_factor(n, 0, dmax)
    A, G, sA, th, qA, k = _warm_working_set(S, i, w0, allowed, wpos, th_ref, q, passes)
    exact = True  # q == S theta for the current theta (otherwise J / gv are refreshed)
    carry = 0
    for step in range(lams.shape[0]):
        ell = dest[step]
        if ell == -2:
            continue
        lam = lams[step]
        if not lam > 0.0:
            break
        if ell >= 0:
            tol_s = tol
            cap_it = max_iter
        else:
            tol_s = ctol
            cap_it = min(carry + max_iter // 4, max_iter - 1)
            if cap_it <= carry:
                continue
        half = 0.5 * lam
        it = carry
        inner_tol = 0.25 * tol_s
        conv = False
        P = sii
        gp = 0.0
        while True:
            if not exact:
                nJ, exact = _refresh_gradient(S, si, sd, dmax, allowed, A, sA, th, qA, wpos,
                                              th_ref, q, k, half, jidx, gv, passes)
            # certificate: W exactly, plus the largest |g_j| outside W
            gout = _largest_outside(si, q, allowed, wpos, exact, nJ, jidx, gv, passes)
            P, gp, noise, _ = w_gap(sA, qA, th, k, sii, lam, dmax, gout)
            if gp <= tol_s * P or gp <= noise:
                conv = True
                break
            if it >= cap_it:
                break
            rel = gp / P if P > 0.0 else 0.0
            # KKT violators outside W, largest first
            nv = _violators(si, q, allowed, wpos, exact, nJ, jidx, gv, half, vidx, vval, passes)
            k0 = k
            if nv > 0:
                srt = np.argsort(vval[:nv], kind="mergesort")
                sv = np.empty(nv, dtype=np.int64)
                for o in range(nv):
                    sv[o] = vidx[srt[o]]
                A, sA, th, qA = _grow(A, sA, th, qA, k, k + nv)
                if exact:
                    kb = k
                    k = _greedy_exact(S, si, half, sv, nv, A, th, wpos, th_ref, q, k)
                    passes[5] += n * (k - kb) + 2 * nv
                else:
                    k = _greedy_partial(S, half, sv, nv, gv, A, th, wpos, k, passes)
            it += 1
            nadd = k - k0
            if nadd > 0:
                G = _grow_G(G, k0, k)
                _assemble(S, A, G, sA, i, k0, k)
                passes[6] += 2 * nadd * k
                _update_qA(G, A, th, q, qA, k0, k, exact)
                inner_tol = max(0.25 * tol_s, 0.1 * rel)
            elif inner_tol > 0.25 * tol_s:
                # no KKT violator outside W: the working-set gap is (up to the dual scaling)
                # the full gap, so solve the block to the final tolerance in one go
                inner_tol = 0.25 * tol_s
            else:
                inner_tol = max(0.1 * min(inner_tol, rel), 1e-16)
            # drop coordinates that left the support (and the reference) from W: the sweeps,
            # the polish and q on W then cost O(k |support|) with k close to |support|
            ndrop = 0
            for a in range(k0):
                if th[a] == 0.0 and th_ref[A[a]] == 0.0:
                    ndrop += 1
            if ndrop > 0 and ndrop * 8 >= k:
                passes[11] += k * k
                k = _compact(A, G, sA, th, qA, wpos, th_ref, k, k0)
            if k > 0:
                fac = reserve_factor(fac, k)
                sw, _conv = cd_sub(G, A, wpos, k, sA, sii, lam, th, qA, inner_tol,
                                   max(cap_it - it, 0), dmax, fac, passes)
                it += sw
                recompute_q(G, k, th, qA)  # exact on W for the certificate
                passes[10] += k * k
                exact = False
        if ell < 0:
            carry = it
            continue
        carry = 0
        _scatter(out[ell], A, th, k)
        obj[ell] = P
        gap[ell] = gp
        iters[ell] = it
        ok[ell] = conv


@njit(parallel=True, cache=True)
def solve_batch(S, dmax, targets, lams, dest, allowed, warm, coefs, tol, ctol, max_iter, obj, gap,
                iters, ok, passes):
    """:func:`solve_target` for every target in parallel (``prange``), outputs in place.

    Target ``t`` runs the steps ``lams[:, t]`` / ``dest[:, t]`` (L, T) from ``warm[t]`` (T, n)
    and writes ``coefs[:, t]`` (R, T, n) and ``obj`` / ``gap`` / ``iters`` / ``ok`` (R, T);
    ``passes`` (T, ``N_COUNTERS``) receives the work counters (see :data:`N_COUNTERS`).
    ``warm`` may be ``coefs[0]`` (each target reads its warm start before writing).
    """
    T = targets.shape[0]
    n = S.shape[0]
    sd = np.empty(n)
    for j in range(n):
        sd[j] = math.sqrt(max(S[j, j], 0.0))
    for t in prange(T):  # pragma: no cover - numba
        solve_target(S, sd, dmax, targets[t], lams[:, t], dest[:, t], allowed[t], warm[t],
                     coefs[:, t], tol, ctol, max_iter, obj[:, t], gap[:, t], iters[:, t],
                     ok[:, t], passes[t])


@njit(cache=True, nogil=True)
def lam_max_rows(S, targets, allowed):  # pragma: no cover - numba
    """``max_j |2 S[j, i]|`` over the allowed ``j`` of each target (0 when none is allowed)."""
    T = targets.shape[0]
    out = np.zeros(T)
    for t in range(T):
        row = S[targets[t]]
        al = allowed[t]
        m = 0.0
        for j in range(row.shape[0]):
            if al[j]:
                v = abs(2.0 * row[j])
                if v > m:
                    m = v
        out[t] = m
    return out
