"""Certificates: the CovLasso objective and its duality gap (numpy API and the numba kernel).

With a factor ``S = X^T X``, ``y = X e_i``, ``r = y - X theta``, ``s = S[:, i]`` and
``g = s - S theta`` on the allowed coordinates, the dual point ``nu = alpha r`` is feasible for
``|alpha| <= lam / (2 ||g||_inf)`` and

    D(alpha) = 2 alpha (S_ii - theta^T s) - alpha^2 ||r||^2,   ||r||^2 = S_ii - 2 theta^T s
                                                                       + theta^T S theta.

Using ``S_ii - theta^T s = ||r||^2 + theta^T g`` the gap is evaluated without cancellation as

    P - D(alpha) = (1 - alpha)^2 ||r||^2 + lam ||theta||_1 - 2 alpha theta^T g  (>= 0),

with ``alpha = clip(1 + theta^T g / ||r||^2, -a, a)``. No factor is ever formed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

from . import _validate as V
from ._linalg import FASTMATH

__all__ = ["duality_gap", "objective"]

#: gaps below ``ROUNDING_FLOOR * scale`` are rounding noise (``scale`` bounds the magnitude of
#: the terms summed in the objective; see :func:`gap_kernel`).
ROUNDING_FLOOR = 256.0 * 2.220446049250313e-16


@njit(cache=True, nogil=True)
def _gap_terms(sii, lam, l1, ts, tq, tg, gmax, scale):  # pragma: no cover - numba
    """Return (P, gap, noise) from the scalar ingredients (see the module docstring)."""
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
    noise = ROUNDING_FLOOR * scale
    return P, gap, noise


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def gap_sums(s, q, theta, allowed, k):  # pragma: no cover - numba
    """The sums a certificate needs over the first ``k`` coordinates (those ``allowed`` masks in,
    every one when it is None): ``(|theta|_1, theta.s, sum |theta_j s_j|, theta.q, theta.g,
    max |g_j|)`` with ``g = s - q``."""
    l1 = 0.0
    ts = 0.0
    tq = 0.0
    tg = 0.0
    ats = 0.0
    gmax = 0.0
    for j in range(k):
        if allowed is not None:
            if not allowed[j]:
                continue
        sj = s[j]
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
    return l1, ts, ats, tq, tg, gmax


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def gap_kernel(s, q, theta, allowed, sii, lam, dmax):  # pragma: no cover - numba
    """Objective, duality gap and rounding floor ``(P, gap, noise)`` of one target.

    ``s = S[:, i]``, ``q = S theta`` and ``theta`` are vectors over the same coordinates: either
    all ``n`` (then ``allowed`` (n,) masks the coordinates the dual constraint covers) or a working
    set (then ``allowed`` is None and every coordinate counts). ``dmax = max_j S_jj``.
    """
    l1, ts, ats, tq, tg, gmax = gap_sums(s, q, theta, allowed, theta.shape[0])
    scale = sii + 2.0 * ats + l1 * l1 * dmax
    return _gap_terms(sii, lam, l1, ts, tq, tg, gmax, scale)


def residual_raw(S: np.ndarray, coef: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``max(S_ii - 2 theta^T S_i + theta^T S theta, 0)`` per row of ``coef`` (T, n); no checks."""
    Sq = coef @ S
    sii = S[targets, targets]
    ts = np.einsum("tj,tj->t", coef, S[targets, :])
    tq = np.einsum("tj,tj->t", coef, Sq)
    return np.maximum(sii - 2.0 * ts + tq, 0.0)


def objective(
    S: np.ndarray, coef: np.ndarray, targets: np.ndarray, lam: float | np.ndarray
) -> np.ndarray:
    """CovLasso objective ``P(theta) = S_ii - 2 theta^T S_i + theta^T S theta + lam ||theta||_1``.

    No validation (a fast helper for tests and benchmarks; the residual part is clipped at 0).

    Parameters
    ----------
    S : ndarray, shape (n, n)
        Symmetric PSD moment matrix.
    coef : ndarray, shape (T, n) or (n,)
        One ``theta`` per row.
    targets : ndarray of int, shape (T,)
        The target ``i`` of each row.
    lam : float or ndarray, shape (T,)
        Absolute penalty per row.

    Returns
    -------
    P : ndarray, shape (T,)
        Objective per row.
    """
    coef = np.atleast_2d(np.asarray(coef, dtype=np.float64))
    lam = np.broadcast_to(np.asarray(lam, dtype=np.float64), (coef.shape[0],))
    return residual_raw(np.asarray(S, float), coef, np.asarray(targets)) + lam * np.abs(
        coef
    ).sum(axis=1)


def duality_gap(
    S: np.ndarray,
    coef: np.ndarray,
    targets: Sequence[int] | np.ndarray,
    lam: float | np.ndarray,
    candidates: np.ndarray | None = None,
) -> np.ndarray:
    """Duality gap (objective units) of any ``coef``, e.g. a reference solver's output.

    The same certificate as :func:`neudep_utils.covlasso.solve` (see the module docstring):
    ``objective - gap <= optimum <= objective``. Coefficients outside the allowed set are
    ignored (zeroed).

    Parameters
    ----------
    S : array_like, shape (n, n)
        Symmetric PSD moment matrix.
    coef : array_like, shape (T, n)
        One ``theta`` per target.
    targets : sequence of int, shape (T,)
        The target of each row.
    lam : float or array_like, shape (T,)
        Absolute penalty.
    candidates : ndarray of bool, shape (n,) or (T, n), optional
        Coefficients allowed to be non-zero (the target and ``S_jj == 0`` columns never are).

    Returns
    -------
    gap : ndarray, shape (T,)
        Duality gap per target (>= 0).
    """
    S, t, lams, allowed = V.prepare(S, lam, targets, candidates)
    c = np.where(allowed, np.atleast_2d(np.asarray(coef, dtype=np.float64)), 0.0)
    out = np.empty(t.size)
    dmax = float(np.max(np.diag(S)))
    for r in range(t.size):
        i = t[r]
        q = S @ c[r]
        out[r] = gap_kernel(S[i], q, c[r], allowed[r], S[i, i], lams[r], dmax)[1]
    return out
