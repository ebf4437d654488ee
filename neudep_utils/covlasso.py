"""Covariance Lasso (CovLasso): batched, certified solver written in the logit moments alone.

For a target category ``i`` and a PSD moment matrix ``S`` (second moment ``E[f f^T]`` or centred
covariance), the CovLasso is

    min_theta  P(theta) = S_ii - 2 theta^T S[:, i] + theta^T S theta + lam * ||theta||_1

over ``theta`` with ``theta_i = 0`` and ``theta_j = 0`` outside an optional candidate mask. It is
``E[(f_i - theta^T f)^2] + lam ||theta||_1``. ``lam_max = max_j |2 S[j, i]|`` over the allowed ``j``
is the smallest ``lam`` with ``theta = 0``.

Every solution carries a duality-gap certificate. With a factor ``S = X^T X``, ``y = X e_i``,
``r = y - X theta``, ``s = S[:, i]`` and ``g = s - S theta`` on the allowed coordinates, the dual
point ``nu = alpha r`` is feasible for ``|alpha| <= lam / (2 ||g||_inf)`` and

    D(alpha) = 2 alpha (S_ii - theta^T s) - alpha^2 ||r||^2,   ||r||^2 = S_ii - 2 theta^T s
                                                                       + theta^T S theta.

Using ``S_ii - theta^T s = ||r||^2 + theta^T g`` the gap is evaluated without cancellation as

    P - D(alpha) = (1 - alpha)^2 ||r||^2 + lam ||theta||_1 - 2 alpha theta^T g  (>= 0),

with ``alpha = clip(1 + theta^T g / ||r||^2, -a, a)``. No factor is ever formed by the solver.

The solver is a numba coordinate descent, parallel over targets (``prange``), with a working set:
a greedy pass adds KKT violators (largest first), coordinate descent runs on the small Gram block
of the working set, and, once the sign pattern is stable, a Newton "polish" solves the active
block exactly (Cholesky). The loop ends when the full-problem gap is certified. The first call
JIT-compiles the kernels (a few seconds); they are cached on disk (``cache=True``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numba
import numpy as np
from numba import njit, prange

__all__ = [
    "PSD_RTOL",
    "CovLassoPath",
    "CovLassoResult",
    "allowed_mask",
    "check_psd",
    "duality_gap",
    "lam_max",
    "lstsq_on_support",
    "objective",
    "path",
    "psd_factor",
    "refit",
    "relative_lams",
    "relative_residual",
    "residual",
    "second_moment",
    "second_moment_from_sums",
    "solve",
    "solve_cvxpy",
    "solve_sklearn",
]

_EPS = float(np.finfo(np.float64).eps)
#: gaps below ``_NOISE_FACTOR * eps * scale`` are rounding noise (see ``solve``).
_NOISE_FACTOR = 256.0
_SYM_RTOL = 1e-7
#: ``S`` is refused as not positive semidefinite when an eigenvalue is below ``-PSD_RTOL * trace(S)``
#: (rounding of a real, even rank-deficient, moment matrix stays orders of magnitude above that).
PSD_RTOL = 1e-10
#: reassociation lets LLVM vectorise dot products; no finite-math assumptions.
_FM = {"reassoc", "contract"}


# ---------------------------------------------------------------------------------------------
# moments
# ---------------------------------------------------------------------------------------------


def second_moment(logits: np.ndarray, center: bool = False) -> np.ndarray:
    """Return ``E[f f^T]`` (or the centred covariance if ``center``) of ``logits`` (N, n).

    Normalised by ``N`` (population moments), float64, exactly symmetric.
    """
    x = np.asarray(logits, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"logits must be 2-D (N samples, n categories); got shape {x.shape}")
    if x.shape[0] == 0:
        raise ValueError("logits has no rows; need at least one sample")
    if not np.all(np.isfinite(x)):
        raise ValueError("logits contains NaN or inf; clean or drop those samples first")
    if center:
        x = x - x.mean(axis=0, keepdims=True)
    s = (x.T @ x) / x.shape[0]
    return _symmetrize(s)


def second_moment_from_sums(
    count: float, sum_f: np.ndarray, sum_ff: np.ndarray, center: bool = False
) -> np.ndarray:
    """Moments from streamed sums: ``count`` samples, ``sum_f = sum f`` (n,), ``sum_ff = sum f f^T``.

    Returns ``sum_ff / count`` or, if ``center``, ``sum_ff / count - mu mu^T`` with ``mu = sum_f /
    count``.
    """
    if not np.isfinite(count) or count <= 0:
        raise ValueError(f"count must be a positive number of samples; got {count!r}")
    sf = np.asarray(sum_f, dtype=np.float64)
    sff = np.asarray(sum_ff, dtype=np.float64)
    if sf.ndim != 1:
        raise ValueError(f"sum_f must be 1-D (n,); got shape {sf.shape}")
    if sff.shape != (sf.size, sf.size):
        raise ValueError(
            f"sum_ff must have shape (n, n) = {(sf.size, sf.size)} to match sum_f; got {sff.shape}"
        )
    if not (np.all(np.isfinite(sf)) and np.all(np.isfinite(sff))):
        raise ValueError("sum_f / sum_ff contain NaN or inf")
    s = sff / float(count)
    if center:
        mu = sf / float(count)
        s = s - np.outer(mu, mu)
    return _symmetrize(s)


def _symmetrize(s: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(0.5 * (s + s.T))


# ---------------------------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------------------------


def _check_S(S: np.ndarray) -> np.ndarray:
    a = np.asarray(S)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"S must be a square (n, n) matrix; got shape {a.shape}")
    if a.shape[0] == 0:
        raise ValueError("S is empty (n = 0)")
    if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
        raise ValueError(f"S must be a real numeric matrix; got dtype {a.dtype}")
    a = np.asarray(a, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError("S contains NaN or inf; recompute the moments from finite logits")
    scale = float(np.max(np.abs(a)))
    asym = float(np.max(np.abs(a - a.T)))
    if asym > _SYM_RTOL * max(scale, 1e-300):
        raise ValueError(
            f"S is not symmetric: max |S - S.T| = {asym:.3g} > {_SYM_RTOL:g} * max |S|; "
            "pass a symmetric moment matrix, e.g. (S + S.T) / 2 if the asymmetry is rounding"
        )
    d = np.diag(a)
    if np.any(d < -1e-12 * max(scale, 1e-300)):
        raise ValueError(
            f"S has negative diagonal entries (min {d.min():.3g}); S must be positive semidefinite"
        )
    return np.ascontiguousarray(0.5 * (a + a.T))


def check_psd(S: np.ndarray, tol: float = PSD_RTOL) -> None:
    """Raise ``ValueError`` when ``S`` has an eigenvalue below ``-tol * trace(S)``.

    With such an eigenvalue (reachable from the target's allowed block) the CovLasso objective is
    unbounded below, so no solution could be certified. ``S`` must already be symmetric (see
    :func:`solve`). Cost: one Cholesky factorization of ``S + tol * trace(S) * I``; the
    eigenvalues are computed only when it fails, for the message.
    """
    a = np.asarray(S, dtype=np.float64)
    n = a.shape[0]
    scale = float(np.trace(a))
    if not scale > 0:  # a zero diagonal: PSD only when S is zero
        if np.any(a != 0):
            raise ValueError("S is not positive semidefinite: its diagonal is zero but it has "
                             "non-zero entries; build S from logits (covlasso.second_moment)")
        return
    shift = float(tol) * scale
    shifted = a.copy()
    shifted.flat[:: n + 1] += shift
    try:
        np.linalg.cholesky(shifted)
        return
    except np.linalg.LinAlgError:
        pass
    w0 = float(np.linalg.eigvalsh(a)[0])
    if w0 >= -shift:  # on the boundary: rounding, not indefiniteness
        return
    raise ValueError(
        f"S is not positive semidefinite: its smallest eigenvalue is {w0:.4g} "
        f"({w0 / scale:.2g} x trace(S)), below the tolerance -{tol:g} x trace(S); the CovLasso "
        "objective is then unbounded below and no solution can be certified. Build S from "
        "logits (covlasso.second_moment / second_moment_from_sums), or project it onto the PSD "
        "cone (clip its negative eigenvalues) if the defect is known to be harmless"
    )


def _check_targets(targets: Sequence[int] | np.ndarray | int | None, n: int) -> np.ndarray:
    if targets is None:
        return np.arange(n, dtype=np.int64)
    t = np.atleast_1d(np.asarray(targets))
    if t.ndim != 1:
        raise ValueError(f"targets must be a 1-D sequence of indices; got shape {t.shape}")
    if t.size == 0:
        raise ValueError("targets is empty; pass None for all n targets")
    if not np.issubdtype(t.dtype, np.integer):
        raise ValueError(f"targets must be integer indices; got dtype {t.dtype}")
    t = t.astype(np.int64)
    if t.min() < 0 or t.max() >= n:
        bad = t[(t < 0) | (t >= n)]
        raise ValueError(f"targets out of range [0, {n}): {bad[:5].tolist()}")
    if np.unique(t).size != t.size:
        vals, counts = np.unique(t, return_counts=True)
        raise ValueError(
            f"targets has duplicates: {vals[counts > 1][:5].tolist()}; pass each target once"
        )
    return t


def _check_candidates(candidates: np.ndarray | None, n: int, T: int) -> np.ndarray:
    """Return a (T, n) boolean mask (a broadcast view when given 1-D)."""
    if candidates is None:
        return np.broadcast_to(np.ones(n, dtype=np.bool_), (T, n))
    c = np.asarray(candidates)
    if c.dtype != np.bool_:
        raise ValueError(
            f"candidates must be a boolean mask of shape ({n},) or ({T}, {n}); got dtype "
            f"{c.dtype} (convert index lists with mask = np.zeros(n, bool); mask[idx] = True)"
        )
    if c.shape == (n,):
        return np.broadcast_to(c, (T, n))
    if c.shape == (T, n):
        return c
    raise ValueError(
        f"candidates mask has shape {c.shape}; expected ({n},) or (len(targets), n) = ({T}, {n})"
    )


def _check_lam(lam: float | np.ndarray, T: int, name: str = "lam") -> np.ndarray:
    a = np.asarray(lam, dtype=np.float64)
    if a.ndim == 0:
        a = np.full(T, float(a))
    elif a.shape != (T,):
        raise ValueError(
            f"{name} must be a scalar or have one value per target, shape ({T},); got {a.shape}"
        )
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite")
    if np.any(a < 0):
        raise ValueError(f"{name} must be >= 0; got min {a.min():.3g}")
    return np.ascontiguousarray(a)


def _allowed_masks(S: np.ndarray, targets: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """(T, n) mask: candidate, not the target itself, and S_jj > 0."""
    allowed = np.array(cand, dtype=np.bool_, copy=True)
    allowed[np.arange(targets.size), targets] = False
    allowed &= (np.diag(S) > 0)[None, :]
    return np.ascontiguousarray(allowed)


def allowed_mask(
    S: np.ndarray, targets: Sequence[int] | np.ndarray | None = None,
    candidates: np.ndarray | None = None,
) -> np.ndarray:
    """The partners each target may use: (T, n) bool, ``True`` where column ``j`` is a candidate,
    is not the target itself and has ``S_jj > 0``.

    Parameters
    ----------
    S : (n, n) array, the moment matrix (only its diagonal is read).
    targets : (T,) int indices, default all ``n``.
    candidates : (n,) or (T, n) bool mask, default every column.
    """
    d = np.diag(np.asarray(S, dtype=np.float64))
    t = _check_targets(targets, d.size)
    return _allowed_masks(S, t, _check_candidates(candidates, d.size, t.size))


# ---------------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------------


@dataclass
class CovLassoResult:
    """Solutions for a batch of targets.

    ``coef[t]`` is theta for target ``targets[t]`` (exact zeros at the target and outside the
    candidates). ``gap`` is the duality gap in objective units (a certificate:
    ``objective - gap <= optimum <= objective``), ``converged`` says whether ``gap <= tol *
    objective`` (or below the rounding floor) was reached within ``max_iter``.
    """

    coef: np.ndarray
    objective: np.ndarray
    gap: np.ndarray
    lam: np.ndarray
    targets: np.ndarray
    n_iter: np.ndarray
    converged: np.ndarray
    lam_max: np.ndarray = field(default_factory=lambda: np.empty(0))

    @property
    def support_size(self) -> np.ndarray:
        """Number of non-zero coefficients k per target."""
        return np.count_nonzero(self.coef, axis=1)

    @property
    def relative_gap(self) -> np.ndarray:
        """gap / objective (objective floored at the smallest positive float)."""
        return self.gap / np.maximum(self.objective, np.finfo(np.float64).tiny)

    def support(self, t: int) -> np.ndarray:
        """Indices of the non-zero coefficients of the ``t``-th target (row ``t``)."""
        return np.flatnonzero(self.coef[t])


@dataclass
class CovLassoPath:
    """A warm-started solution path: arrays indexed (lam index L, target T[, n])."""

    coefs: np.ndarray
    objective: np.ndarray
    gap: np.ndarray
    lams: np.ndarray
    targets: np.ndarray
    n_iter: np.ndarray
    converged: np.ndarray
    lam_max: np.ndarray = field(default_factory=lambda: np.empty(0))

    @property
    def support_size(self) -> np.ndarray:
        """(L, T) number of non-zero coefficients."""
        return np.count_nonzero(self.coefs, axis=2)

    @property
    def relative_gap(self) -> np.ndarray:
        """(L, T) gap / objective."""
        return self.gap / np.maximum(self.objective, np.finfo(np.float64).tiny)

    def __getitem__(self, ell: int) -> CovLassoResult:
        """The ``ell``-th point of the path as a :class:`CovLassoResult`."""
        return CovLassoResult(
            coef=self.coefs[ell],
            objective=self.objective[ell],
            gap=self.gap[ell],
            lam=self.lams[ell],
            targets=self.targets,
            n_iter=self.n_iter[ell],
            converged=self.converged[ell],
            lam_max=self.lam_max,
        )

    def __len__(self) -> int:
        return self.coefs.shape[0]


# ---------------------------------------------------------------------------------------------
# numba kernels
# ---------------------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _gap_terms(sii, lam, l1, ts, tq, tg, gmax, scale):  # pragma: no cover - numba
    """Return (P, gap, noise) from the scalar ingredients (see module docstring)."""
    r2 = sii - 2.0 * ts + tq
    if r2 < 0.0:
        r2 = 0.0
    P = r2 + lam * l1
    if r2 > 0.0:
        alpha = 1.0 + tg / r2
    else:
        alpha = 1.0
    if gmax > 0.0:
        a = lam / (2.0 * gmax)
        if alpha > a:
            alpha = a
        elif alpha < -a:
            alpha = -a
    gap = (1.0 - alpha) * (1.0 - alpha) * r2 + lam * l1 - 2.0 * alpha * tg
    if gap < 0.0:
        gap = 0.0
    noise = 256.0 * 2.220446049250313e-16 * scale
    return P, gap, noise


@njit(cache=True, nogil=True, fastmath=_FM)
def _full_gap(S, dmax, i, lam, allowed, theta, q):  # pragma: no cover - numba
    n = S.shape[0]
    sii = S[i, i]
    l1 = 0.0
    ts = 0.0
    tq = 0.0
    tg = 0.0
    ats = 0.0
    gmax = 0.0
    for j in range(n):
        if not allowed[j]:
            continue
        sj = S[i, j]
        g = sj - q[j]
        ag = abs(g)
        if ag > gmax:
            gmax = ag
        tj = theta[j]
        if tj != 0.0:
            l1 += abs(tj)
            ts += tj * sj
            ats += abs(tj * sj)
            tq += tj * q[j]
            tg += tj * g
    scale = sii + 2.0 * ats + l1 * l1 * dmax
    return _gap_terms(sii, lam, l1, ts, tq, tg, gmax, scale)


@njit(cache=True, nogil=True, fastmath=_FM)
def _sub_gap(G, sA, sii, lam, th, qA, dmax):  # pragma: no cover - numba
    k = th.shape[0]
    l1 = 0.0
    ts = 0.0
    tq = 0.0
    tg = 0.0
    ats = 0.0
    gmax = 0.0
    for j in range(k):
        g = sA[j] - qA[j]
        ag = abs(g)
        if ag > gmax:
            gmax = ag
        tj = th[j]
        if tj != 0.0:
            l1 += abs(tj)
            ts += tj * sA[j]
            ats += abs(tj * sA[j])
            tq += tj * qA[j]
            tg += tj * g
    scale = sii + 2.0 * ats + l1 * l1 * dmax
    return _gap_terms(sii, lam, l1, ts, tq, tg, gmax, scale)


@njit(cache=True, nogil=True, fastmath=_FM)
def _recompute_q(G, th, qA):  # pragma: no cover - numba
    k = th.shape[0]
    for u in range(k):
        qA[u] = 0.0
    for j in range(k):
        tj = th[j]
        if tj != 0.0:
            for u in range(k):
                qA[u] += tj * G[j, u]


@njit(cache=True, nogil=True, fastmath=_FM)
def _polish(G, sA, sii, lam, th, qA):  # pragma: no cover - numba
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
    if not _cholesky_solve(L, b, 1e-15 * dm):
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
    _recompute_q(G, cand, qc)
    if _sub_obj(sA, sii, lam, cand, qc) < _sub_obj(sA, sii, lam, th, qA):
        for j in range(k):
            th[j] = cand[j]
            qA[j] = qc[j]
        return 2 if cross < 0 else 1
    return 0


@njit(cache=True, nogil=True, fastmath=_FM)
def _small_spd_solve(M, rhs):  # pragma: no cover - numba
    """Solve the small SPD system M x = rhs in place (rhs); False if not positive definite."""
    m = M.shape[0]
    tr = 0.0
    for a in range(m):
        tr += M[a, a]
    if not tr > 0.0:
        return False
    for a in range(m):
        M[a, a] += 1e-10 * tr / m
    return _cholesky_solve(M, rhs, 1e-14 * tr)


@njit(cache=True, nogil=True, fastmath=_FM)
def _cholesky_solve(M, rhs, piv_tol):  # pragma: no cover - numba
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


@njit(cache=True, nogil=True, fastmath=_FM)
def _sub_obj(sA, sii, lam, th, qA):  # pragma: no cover - numba
    k = th.shape[0]
    v = sii
    for j in range(k):
        tj = th[j]
        if tj != 0.0:
            v += tj * (qA[j] - 2.0 * sA[j]) + lam * abs(tj)
    return v


_ANDERSON_K = 5


@njit(cache=True, nogil=True, fastmath=_FM)
def _cd_sub(G, sA, sii, lam, th, qA, tol, max_sweeps, dmax):  # pragma: no cover - numba
    """Coordinate descent on the working-set block, with Anderson extrapolation every K sweeps
    and a Newton polish once the sign pattern is stable. Returns (sweeps, converged)."""
    k = th.shape[0]
    half = 0.5 * lam
    stable = 0
    polish_blocked = False
    K = _ANDERSON_K
    hth = np.empty((K + 1, k))
    hq = np.empty((K + 1, k))
    nh = 0
    UU = np.empty((K, K))
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
            _recompute_q(G, th, qA)
            nh = 0
        # Anderson acceleration (Bertrand & Massias 2021); q is linear in theta
        for u in range(k):
            hth[nh, u] = th[u]
            hq[nh, u] = qA[u]
        nh += 1
        if nh == K + 1:
            nh = 0
            for a in range(K):
                for b in range(a, K):
                    v = 0.0
                    for u in range(k):
                        v += (hth[a + 1, u] - hth[a, u]) * (hth[b + 1, u] - hth[b, u])
                    UU[a, b] = v
                    UU[b, a] = v
                cz[a] = 1.0
            if _small_spd_solve(UU, cz):
                sc = 0.0
                for a in range(K):
                    sc += cz[a]
                if sc != 0.0 and math.isfinite(sc):
                    for u in range(k):
                        the[u] = 0.0
                        qe[u] = 0.0
                    for a in range(K):
                        w = cz[a] / sc
                        for u in range(k):
                            the[u] += w * hth[a + 1, u]
                            qe[u] += w * hq[a + 1, u]
                    if _sub_obj(sA, sii, lam, the, qe) < _sub_obj(sA, sii, lam, th, qA):
                        for u in range(k):
                            th[u] = the[u]
                            qA[u] = qe[u]
        P, gap, noise = _sub_gap(G, sA, sii, lam, th, qA, dmax)
        if gap <= tol * P or gap <= noise:
            return sweep + 1, True
        if changes == 0:
            stable += 1
        else:
            stable = 0
            polish_blocked = False
        if stable >= 2 and not polish_blocked:
            for _ in range(8):
                res = _polish(G, sA, sii, lam, th, qA)
                if res == 0:
                    break
                nh = 0
                if res == 2:
                    break
            P, gap, noise = _sub_gap(G, sA, sii, lam, th, qA, dmax)
            if gap <= tol * P or gap <= noise:
                return sweep + 1, True
            polish_blocked = res != 1
    return max_sweeps, False


@njit(cache=True, nogil=True, fastmath=_FM)
def _solve_target(S, dmax, i, lam, allowed, theta, tol, max_iter):  # pragma: no cover - numba
    """Working-set CD for one target; theta is updated in place. Returns (P, gap, iters, ok)."""
    n = S.shape[0]
    sii = S[i, i]
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
        P, gap, noise = _full_gap(S, dmax, i, lam, allowed, theta, q)
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
        _recompute_q(G, th, qA)
        if nadd > 0:
            inner_tol = max(0.25 * tol, 0.1 * rel)
        else:
            inner_tol = max(0.1 * min(inner_tol, rel), 1e-16)
        if k > 0:
            sw, _conv = _cd_sub(G, sA, sii, lam, th, qA, inner_tol, max(max_iter - iters, 1), dmax)
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
def _solve_batch(S, dmax, targets, lams, allowed, theta, tol, max_iter, obj, gap, iters, ok):
    T = targets.shape[0]
    for t in prange(T):  # pragma: no cover - numba
        P, g, it, conv = _solve_target(
            S, dmax, targets[t], lams[t], allowed[t], theta[t], tol, max_iter
        )
        obj[t] = P
        gap[t] = g
        iters[t] = it
        ok[t] = conv


# ---------------------------------------------------------------------------------------------
# public solvers
# ---------------------------------------------------------------------------------------------


def lam_max(
    S: np.ndarray,
    targets: Sequence[int] | np.ndarray | None = None,
    candidates: np.ndarray | None = None,
) -> np.ndarray:
    """Per target ``max_j |2 S[j, i]|`` over allowed ``j``: the smallest lam giving theta = 0."""
    S = _check_S(S)
    n = S.shape[0]
    t = _check_targets(targets, n)
    allowed = _allowed_masks(S, t, _check_candidates(candidates, n, t.size))
    vals = np.where(allowed, np.abs(2.0 * S[t, :]), 0.0)
    return vals.max(axis=1)


def relative_lams(
    S: np.ndarray,
    ratios: Sequence[float] | np.ndarray | float,
    targets: Sequence[int] | np.ndarray | None = None,
    candidates: np.ndarray | None = None,
) -> np.ndarray:
    """Absolute lams ``ratios[:, None] * lam_max[None, :]``, shape (L, T) (L = len(ratios))."""
    r = np.atleast_1d(np.asarray(ratios, dtype=np.float64))
    if r.ndim != 1 or not np.all(np.isfinite(r)) or np.any(r < 0):
        raise ValueError("ratios must be a 1-D sequence of finite non-negative numbers")
    return r[:, None] * lam_max(S, targets, candidates)[None, :]


def objective(S: np.ndarray, coef: np.ndarray, targets: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """CovLasso objective ``P(theta)`` per row of ``coef`` (no validation, float64)."""
    coef = np.atleast_2d(np.asarray(coef, dtype=np.float64))
    lam = np.broadcast_to(np.asarray(lam, dtype=np.float64), (coef.shape[0],))
    return _residual_raw(np.asarray(S, float), coef, np.asarray(targets)) + lam * np.abs(
        coef
    ).sum(axis=1)


def duality_gap(
    S: np.ndarray,
    coef: np.ndarray,
    targets: Sequence[int] | np.ndarray,
    lam: float | np.ndarray,
    candidates: np.ndarray | None = None,
) -> np.ndarray:
    """Duality gap (objective units) of any ``coef`` (T, n), e.g. a reference solver's output.

    Same certificate as :func:`solve` (see the module docstring); coefficients outside the
    allowed set are ignored (zeroed).
    """
    S = _check_S(S)
    n = S.shape[0]
    t = _check_targets(targets, n)
    lams = _check_lam(lam, t.size)
    allowed = _allowed_masks(S, t, _check_candidates(candidates, n, t.size))
    c = np.where(allowed, np.atleast_2d(np.asarray(coef, dtype=np.float64)), 0.0)
    out = np.empty(t.size)
    dmax = float(np.max(np.diag(S)))
    for r in range(t.size):
        q = S @ c[r]
        out[r] = _full_gap(S, dmax, t[r], lams[r], allowed[r], c[r], q)[1]
    return out


def _residual_raw(S: np.ndarray, coef: np.ndarray, targets: np.ndarray) -> np.ndarray:
    Sq = coef @ S
    rows = np.arange(coef.shape[0])
    sii = S[targets, targets]
    ts = np.einsum("tj,tj->t", coef, S[targets, :])
    tq = np.einsum("tj,tj->t", coef, Sq)
    del rows
    return np.maximum(sii - 2.0 * ts + tq, 0.0)


def _lstsq_batched(S: np.ndarray, targets: np.ndarray, allowed: np.ndarray, coef: np.ndarray,
                   rcond: float = 1e-10) -> np.ndarray:
    """Least squares for groups of targets sharing one allowed block, one factorization a group.

    Targets whose allowed set plus themselves is a shared set ``C`` use the inverse of ``S_CC``
    (``theta = -P[:, i] / P_ii``); targets sharing the allowed set itself (cross-model blocks) use
    one eigen-solve of ``S_CC`` for all their right-hand sides. Only well-conditioned blocks
    (``lambda_min > rcond * lambda_max``) are handled; returns the mask of targets solved.
    """
    T, n = allowed.shape
    done = np.zeros(T, dtype=bool)
    with_t = allowed.copy()
    with_t[np.arange(T), targets] = True
    for keys, include_target in ((with_t, True), (allowed, False)):
        groups: dict[bytes, list[int]] = {}
        for t in np.flatnonzero(~done):
            groups.setdefault(np.packbits(keys[t]).tobytes(), []).append(int(t))
        for members in groups.values():
            if len(members) < 2:
                continue
            C = np.flatnonzero(keys[members[0]])
            if C.size == 0:
                continue
            w, V = np.linalg.eigh(S[np.ix_(C, C)])
            if not (w[0] > rcond * max(w[-1], 0.0) > 0):
                continue
            m = np.asarray(members)
            if include_target:
                P = (V / w) @ V.T  # inverse of S_CC
                pos = np.searchsorted(C, targets[m])
                sol = -P[:, pos] / P[pos, pos]  # (|C|, len(m))
                sol[pos, np.arange(m.size)] = 0.0
            else:
                sol = (V / w) @ (V.T @ S[np.ix_(C, targets[m])])
            coef[np.ix_(m, C)] = sol.T
            done[m] = True
    return done


def _lstsq_targets(
    S: np.ndarray, targets: np.ndarray, allowed: np.ndarray, coef: np.ndarray
) -> None:
    """Min-norm least squares per target on its allowed block, through a factor of S."""
    todo = ~_lstsq_batched(S, targets, allowed, coef)
    if not todo.any():
        return
    w, V = np.linalg.eigh(S)
    cut = max(w.max(), 0.0) * S.shape[0] * _EPS
    keep = w > cut
    X = np.sqrt(w[keep])[:, None] * V[:, keep].T  # (r, n), S ~= X^T X
    for t, i in enumerate(targets):
        if not todo[t]:
            continue
        a = np.flatnonzero(allowed[t])
        if a.size == 0 or X.shape[0] == 0:
            continue
        sol, *_ = np.linalg.lstsq(X[:, a], X[:, i], rcond=None)
        coef[t, a] = sol


def solve(
    S: np.ndarray,
    lam: float | np.ndarray,
    targets: Sequence[int] | np.ndarray | None = None,
    candidates: np.ndarray | None = None,
    tol: float = 1e-8,
    warm_start: np.ndarray | None = None,
    max_iter: int = 20_000,
    *,
    warn: bool = True,
    psd_tol: float | None = PSD_RTOL,
) -> CovLassoResult:
    """Solve the CovLasso for each target, with a duality-gap certificate.

    ``lam`` is absolute (scalar or one per target; see :func:`relative_lams`). ``candidates`` is
    a boolean mask (n,) or (T, n) of coefficients allowed to be non-zero (the target itself is
    always excluded, as are columns with ``S_jj == 0``). Stops when ``gap <= tol * objective``
    or when ``gap`` is below the rounding floor ``256 eps (S_ii + 2|theta|^T|s| +
    ||theta||_1^2 max_j S_jj)`` (only reachable for lam near 0). ``max_iter`` caps the coordinate
    sweeps per target; targets that hit it get ``converged = False`` and a warning.
    ``lam == 0`` returns the min-norm least-squares solution on the allowed block (via a factor
    of S and ``lstsq``); its ``gap`` is ``|2 theta^T g|`` (dual feasibility holds up to rounding).
    ``S`` must be positive semidefinite: an eigenvalue below ``-psd_tol * trace(S)`` raises
    ``ValueError`` (:func:`check_psd`; ``psd_tol=None`` skips the check for an ``S`` already
    checked).
    """
    S = _check_S(S)
    if psd_tol is not None:
        check_psd(S, psd_tol)
    n = S.shape[0]
    t = _check_targets(targets, n)
    T = t.size
    lams = _check_lam(lam, T)
    if not (np.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be a positive number; got {tol!r}")
    if int(max_iter) < 1:
        raise ValueError(f"max_iter must be >= 1; got {max_iter!r}")
    allowed = _allowed_masks(S, t, _check_candidates(candidates, n, T))
    if warm_start is None:
        theta = np.zeros((T, n))
    else:
        w = np.asarray(warm_start, dtype=np.float64)
        if w.shape != (T, n):
            raise ValueError(f"warm_start must have shape (len(targets), n) = {(T, n)}; got {w.shape}")
        if not np.all(np.isfinite(w)):
            raise ValueError("warm_start contains NaN or inf")
        theta = np.where(allowed, w, 0.0)
    theta = np.ascontiguousarray(theta)
    obj = np.zeros(T)
    gap = np.zeros(T)
    iters = np.zeros(T, dtype=np.int64)
    ok = np.zeros(T, dtype=np.bool_)
    pos = lams > 0
    dmax = float(np.max(np.diag(S)))
    if np.any(pos):
        ip = np.flatnonzero(pos)
        th = np.ascontiguousarray(theta[ip])
        o, g, it, c = (np.zeros(ip.size), np.zeros(ip.size), np.zeros(ip.size, np.int64),
                       np.zeros(ip.size, np.bool_))
        with numba.parallel_chunksize(1):
            _solve_batch(S, dmax, t[ip], lams[ip], np.ascontiguousarray(allowed[ip]), th,
                         float(tol), int(max_iter), o, g, it, c)
        theta[ip] = th
        obj[ip], gap[ip], iters[ip], ok[ip] = o, g, it, c
    if np.any(~pos):
        iz = np.flatnonzero(~pos)
        th = np.zeros((iz.size, n))
        _lstsq_targets(S, t[iz], allowed[iz], th)
        theta[iz] = th
        r = _residual_raw(S, th, t[iz])
        gvec = S[t[iz], :] - th @ S
        obj[iz] = r
        gap[iz] = np.abs(2.0 * np.einsum("tj,tj->t", th, np.where(allowed[iz], gvec, 0.0)))
        ok[iz] = True
    # exact zeros where required (the kernel never writes there; this is belt and braces)
    theta[~allowed] = 0.0
    if warn and not np.all(ok):
        bad = t[~ok]
        warnings.warn(
            f"CovLasso: {bad.size} target(s) hit max_iter={max_iter} before gap <= tol={tol:g} "
            f"(e.g. targets {bad[:5].tolist()}); see result.converged / result.gap",
            RuntimeWarning,
            stacklevel=2,
        )
    lm = np.where(allowed, np.abs(2.0 * S[t, :]), 0.0).max(axis=1)
    return CovLassoResult(theta, obj, gap, lams, t, iters, ok, lm)


def path(
    S: np.ndarray,
    lams: np.ndarray | Sequence[float] | None = None,
    targets: Sequence[int] | np.ndarray | None = None,
    candidates: np.ndarray | None = None,
    *,
    lam_ratios: np.ndarray | Sequence[float] | None = None,
    tol: float = 1e-8,
    max_iter: int = 20_000,
    warn: bool = True,
    psd_tol: float | None = PSD_RTOL,
) -> CovLassoPath:
    """Warm-started solution path.

    Give either absolute ``lams`` (shape (L,) shared by all targets, or (L, T)) or ``lam_ratios``
    (L,) relative to each target's ``lam_max``. The path is solved in decreasing-lam order (per
    target) with warm starts and returned in the order given. ``S`` is checked once to be
    positive semidefinite (see :func:`solve`).
    """
    S = _check_S(S)
    if psd_tol is not None:
        check_psd(S, psd_tol)
    n = S.shape[0]
    t = _check_targets(targets, n)
    T = t.size
    if (lams is None) == (lam_ratios is None):
        raise ValueError("give exactly one of lams (absolute) or lam_ratios (relative to lam_max)")
    if lam_ratios is not None:
        L2 = relative_lams(S, lam_ratios, t, candidates)
    else:
        a = np.asarray(lams, dtype=np.float64)
        if a.ndim == 1:
            a = np.repeat(a[:, None], T, axis=1)
        if a.ndim != 2 or a.shape[1] != T:
            raise ValueError(f"lams must have shape (L,) or (L, len(targets)) = (L, {T}); got {a.shape}")
        if not np.all(np.isfinite(a)) or np.any(a < 0):
            raise ValueError("lams must be finite and >= 0")
        L2 = a
    L = L2.shape[0]
    if L == 0:
        raise ValueError("the path needs at least one lam")
    order = np.argsort(-L2, axis=0, kind="stable")  # per target, decreasing lam
    coefs = np.zeros((L, T, n))
    obj = np.zeros((L, T))
    gap = np.zeros((L, T))
    iters = np.zeros((L, T), dtype=np.int64)
    ok = np.zeros((L, T), dtype=np.bool_)
    warm = np.zeros((T, n))
    cols = np.arange(T)
    lm = None
    for step in range(L):
        rows = order[step]
        res = solve(S, L2[rows, cols], t, candidates, tol=tol, warm_start=warm,
                    max_iter=max_iter, warn=False, psd_tol=None)
        coefs[rows, cols] = res.coef
        obj[rows, cols] = res.objective
        gap[rows, cols] = res.gap
        iters[rows, cols] = res.n_iter
        ok[rows, cols] = res.converged
        warm = res.coef
        lm = res.lam_max
    if warn and not np.all(ok):
        warnings.warn(
            f"CovLasso path: {int((~ok).sum())} (lam, target) point(s) hit max_iter={max_iter} "
            f"before gap <= tol={tol:g}; see path.converged",
            RuntimeWarning,
            stacklevel=2,
        )
    return CovLassoPath(coefs, obj, gap, L2, t, iters, ok, lm if lm is not None else np.empty(0))


# ---------------------------------------------------------------------------------------------
# post-processing
# ---------------------------------------------------------------------------------------------


def lstsq_on_support(S: np.ndarray, targets: np.ndarray, cols: np.ndarray,
                     rcond: float = 1e-10) -> np.ndarray:
    """The one least squares on a support: for each target ``targets[t]``, the solution of
    ``S_AA x = S_{A,i}`` on its partner columns ``A = cols[t]`` (-1 padded).

    Parameters
    ----------
    S : (n, n) PSD moment matrix (centred covariance: ordinary least squares with intercept).
    targets : (T,) int target columns.
    cols : (T, m) int partner columns, -1 where padded.
    rcond : blocks whose Cholesky factor is worse conditioned than ``rcond`` (on the eigenvalue
        scale) get the minimum-norm solution instead (pseudo-inverse dropping eigenvalues below
        ``rcond * lambda_max``), so collinear partners stay finite.

    Returns
    -------
    (T, m) coefficients aligned with ``cols`` (0 where padded).
    """
    import scipy.linalg

    S = np.asarray(S, dtype=np.float64)
    t = np.asarray(targets, np.int64)
    cols = np.asarray(cols, np.int64)
    out = np.zeros(cols.shape)
    for r in range(t.size):
        ok = np.flatnonzero(cols[r] >= 0)
        if ok.size == 0:
            continue
        a = cols[r, ok]
        G, rhs = S[np.ix_(a, a)], S[a, t[r]]
        try:
            c = scipy.linalg.cho_factor(G, check_finite=False)
            d = np.abs(np.diag(c[0]))
            if d.min() ** 2 <= rcond * d.max() ** 2:
                raise np.linalg.LinAlgError("ill-conditioned support block")
            out[r, ok] = scipy.linalg.cho_solve(c, rhs, check_finite=False)
        except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
            w, V = np.linalg.eigh(G)
            keep = w > rcond * max(float(w.max()), 0.0)
            out[r, ok] = V[:, keep] @ ((V[:, keep].T @ rhs) / w[keep])
    return out


def refit(
    S: np.ndarray,
    coef: np.ndarray,
    targets: Sequence[int] | np.ndarray | None = None,
    candidates: np.ndarray | None = None,
    *,
    psd_tol: float | None = PSD_RTOL,
) -> np.ndarray:
    """Least squares restricted to each row's support (relaxed lasso), same shape as ``coef``.

    Solves ``S_AA x = S_Ai`` on the support block through :func:`lstsq_on_support` (Cholesky;
    minimum norm for singular supports). ``coef`` may be (T, n) or (L, T, n); ``targets``
    defaults to ``0..T-1`` only when T == n. ``candidates`` (optional) further restricts the
    support. The support is the finite non-zero entries: NaN or inf coefficients are not support
    (a ``RuntimeWarning`` names their rows). ``S`` must be positive semidefinite (see
    :func:`solve`).
    """
    S = _check_S(S)
    if psd_tol is not None:
        check_psd(S, psd_tol)
    n = S.shape[0]
    c = np.asarray(coef, dtype=np.float64)
    if c.ndim == 3:
        return np.stack([refit(S, ci, targets, candidates, psd_tol=None) for ci in c])
    if c.ndim != 2 or c.shape[1] != n:
        raise ValueError(f"coef must have shape (T, n) or (L, T, n) with n = {n}; got {c.shape}")
    T = c.shape[0]
    if targets is None and T != n:
        raise ValueError(f"coef has {T} rows != n = {n}; pass targets= to say which row is which")
    t = _check_targets(targets, n)
    if t.size != T:
        raise ValueError(f"targets has {t.size} entries but coef has {T} rows")
    finite = np.isfinite(c)
    if not finite.all():
        bad = np.flatnonzero(~finite.all(axis=1))
        warnings.warn(f"refit: coef has NaN or inf in {bad.size} row(s) (e.g. rows "
                      f"{bad[:5].tolist()}); those entries are not counted as support",
                      RuntimeWarning, stacklevel=2)
    support = finite & (c != 0) & _allowed_masks(S, t, _check_candidates(candidates, n, T))
    m = max(int(support.sum(1).max(initial=0)), 1)
    order = np.argsort(~support, axis=1, kind="stable")[:, :m]
    cols = np.where(np.take_along_axis(support, order, axis=1), order, -1)
    sol = lstsq_on_support(S, t, cols)
    out = np.zeros_like(c)
    rows = np.repeat(np.arange(T), m)[cols.ravel() >= 0]
    out[rows, cols.ravel()[cols.ravel() >= 0]] = sol.ravel()[cols.ravel() >= 0]
    return out


def residual(
    S: np.ndarray, coef: np.ndarray, targets: Sequence[int] | np.ndarray | None = None
) -> np.ndarray:
    """Unpenalised ``E[(f_i - theta^T f)^2] = S_ii - 2 theta^T S_i + theta^T S theta`` per row.

    Clipped at 0 (rounding). ``coef`` (T, n); ``targets`` defaults to all n when T == n.
    """
    S = _check_S(S)
    n = S.shape[0]
    c = np.atleast_2d(np.asarray(coef, dtype=np.float64))
    if c.ndim != 2 or c.shape[1] != n:
        raise ValueError(f"coef must have shape (T, n) with n = {n}; got {c.shape}")
    if targets is None and c.shape[0] != n:
        raise ValueError(f"coef has {c.shape[0]} rows != n = {n}; pass targets=")
    t = _check_targets(targets, n)
    if t.size != c.shape[0]:
        raise ValueError(f"targets has {t.size} entries but coef has {c.shape[0]} rows")
    return _residual_raw(S, c, t)


def relative_residual(
    S: np.ndarray, coef: np.ndarray, targets: Sequence[int] | np.ndarray | None = None
) -> np.ndarray:
    """``residual / S_ii``.

    With a centred covariance S this is ``1 - R^2`` (S_ii is the variance of f_i). With the
    uncentred second moment it is the residual relative to ``E[f_i^2]`` (no intercept), which is
    smaller than ``1 - R^2`` whenever the logit has a non-zero mean. NaN where ``S_ii == 0``.
    """
    S = _check_S(S)
    n = S.shape[0]
    t = _check_targets(targets, n) if targets is not None else np.arange(n)
    r = residual(S, coef, targets)
    d = S[t, t]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(d > 0, r / np.where(d > 0, d, 1.0), np.nan)


# ---------------------------------------------------------------------------------------------
# reference solvers (tests and benchmarks; dev dependencies imported lazily)
# ---------------------------------------------------------------------------------------------


def psd_factor(S: np.ndarray) -> np.ndarray:
    """A factor X (r, n) with ``S ~= X^T X`` from the eigen-decomposition (negative and
    rounding-level eigenvalues clipped)."""
    S = _check_S(S)
    w, V = np.linalg.eigh(S)
    cut = max(float(w.max()), 0.0) * S.shape[0] * _EPS
    keep = w > cut
    return np.sqrt(w[keep])[:, None] * V[:, keep].T


def _prep_reference(S, lam, targets, candidates):
    S = _check_S(S)
    n = S.shape[0]
    t = _check_targets(targets, n)
    lams = _check_lam(lam, t.size)
    allowed = _allowed_masks(S, t, _check_candidates(candidates, n, t.size))
    return S, t, lams, allowed


def solve_cvxpy(
    S: np.ndarray,
    lam: float | np.ndarray,
    targets: Sequence[int] | np.ndarray | None = None,
    candidates: np.ndarray | None = None,
    solver: str = "CLARABEL",
    X: np.ndarray | None = None,
) -> np.ndarray:
    """Reference: one cvxpy least-squares + l1 problem per target on a factor of S. Returns coef.

    ``X`` (r, n) with ``S = X^T X`` may be passed to skip the eigen-decomposition.
    """
    import cvxpy as cp

    S, t, lams, allowed = _prep_reference(S, lam, targets, candidates)
    if X is None:
        X = psd_factor(S)
    coef = np.zeros((t.size, S.shape[0]))
    for r, i in enumerate(t):
        a = np.flatnonzero(allowed[r])
        if a.size == 0:
            continue
        th = cp.Variable(a.size)
        loss = cp.sum_squares(X[:, i] - X[:, a] @ th)
        prob = cp.Problem(cp.Minimize(loss + lams[r] * cp.norm1(th)))
        if solver == "CLARABEL":
            prob.solve(solver=solver, tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12,
                       max_iter=500)
        else:
            prob.solve(solver=solver)
        coef[r, a] = th.value
    return coef


def solve_sklearn(
    S: np.ndarray,
    lam: float | np.ndarray,
    targets: Sequence[int] | np.ndarray | None = None,
    candidates: np.ndarray | None = None,
    method: str = "cd",
    tol: float = 1e-12,
    max_iter: int = 100_000,
    X: np.ndarray | None = None,
) -> np.ndarray:
    """Reference: scikit-learn per target with the Gram matrix precomputed. Returns coef.

    sklearn minimises ``1/(2 N) ||y - X w||^2 + alpha ||w||_1``; with a factor X (N = r rows,
    ``X^T X = S``) this is ``P / (2 N)`` with ``alpha = lam / (2 N)``. ``method="cd"`` uses
    ``Lasso(precompute=Gram)``, ``"lars"`` uses ``LassoLars(precompute=Gram)``.
    """
    from sklearn.linear_model import Lasso, LassoLars

    S, t, lams, allowed = _prep_reference(S, lam, targets, candidates)
    if method not in ("cd", "lars"):
        raise ValueError(f"method must be 'cd' or 'lars'; got {method!r}")
    if X is None:
        X = psd_factor(S)
    N = X.shape[0]
    coef = np.zeros((t.size, S.shape[0]))
    for r, i in enumerate(t):
        a = np.flatnonzero(allowed[r])
        if a.size == 0 or N == 0:
            continue
        Xa = np.asfortranarray(X[:, a])
        y = X[:, i]
        gram = np.ascontiguousarray(S[np.ix_(a, a)])
        alpha = lams[r] / (2.0 * N)
        if method == "cd":
            m = Lasso(alpha=alpha, fit_intercept=False, precompute=gram, tol=tol,
                      max_iter=max_iter, selection="cyclic")
        else:
            m = LassoLars(alpha=alpha, fit_intercept=False, precompute=gram, max_iter=max_iter,
                          eps=_EPS)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m.fit(Xa, y)
        coef[r, a] = m.coef_
    return coef
