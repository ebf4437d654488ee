"""Input validation shared by the CovLasso solvers, certificates and references.

Every check names the bad input and the fix; the solver kernels assume what these return
(float64, C-contiguous, exactly symmetric ``S``; int64 targets; boolean masks).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
from numba import njit

_SYM_RTOL = 1e-7
#: ``S`` is refused as not positive semidefinite when an eigenvalue is below ``-PSD_RTOL * trace(S)``
#: (rounding of a real, even rank-deficient, moment matrix stays orders of magnitude above that).
PSD_RTOL = 1e-10


@njit(cache=True, nogil=True)
def _scan(a):  # pragma: no cover - numba
    """``(all finite, max |a_ij|, max |a_ij - a_ji|, min a_ii)`` in one blocked pass, no copies."""
    n = a.shape[0]
    finite = True
    amax = 0.0
    asym = 0.0
    dmin = np.inf
    B = 32
    for i0 in range(0, n, B):
        i1 = min(i0 + B, n)
        for j0 in range(i0, n, B):
            j1 = min(j0 + B, n)
            for i in range(i0, i1):
                for j in range(max(j0, i), j1):
                    x = a[i, j]
                    y = a[j, i]
                    if not (np.isfinite(x) and np.isfinite(y)):
                        finite = False
                    ax = abs(x)
                    if ax > amax:
                        amax = ax
                    ay = abs(y)
                    if ay > amax:
                        amax = ay
                    d = abs(x - y)
                    if d > asym:
                        asym = d
        for i in range(i0, i1):
            if a[i, i] < dmin:
                dmin = a[i, i]
    return finite, amax, asym, dmin


def check_S(S: np.ndarray, *, keep_float32: bool = False) -> np.ndarray:
    """Return ``S`` (n, n) as float64, C-contiguous and exactly symmetric; raise if unusable.

    With ``keep_float32`` a float32 ``S`` stays float32 (no copy: half the memory for massive
    n; the kernels then read float32 entries and compute in float64, so the certificate is exact
    for the float32 matrix). A C-contiguous ``S`` of the kept dtype (e.g. a read-only memory
    map) is not copied.
    """
    a = np.asarray(S)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"S must be a square (n, n) matrix; got shape {a.shape}")
    if a.shape[0] == 0:
        raise ValueError("S is empty (n = 0)")
    if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
        raise ValueError(f"S must be a real numeric matrix; got dtype {a.dtype}")
    want = np.float32 if keep_float32 and a.dtype == np.float32 else np.float64
    a = np.ascontiguousarray(a, dtype=want)
    finite, scale, asym, dmin = _scan(a)
    if not finite:
        raise ValueError("S contains NaN or inf; recompute the moments from finite logits")
    if asym > _SYM_RTOL * max(scale, 1e-300):
        raise ValueError(
            f"S is not symmetric: max |S - S.T| = {asym:.3g} > {_SYM_RTOL:g} * max |S|; "
            "pass a symmetric moment matrix, e.g. (S + S.T) / 2 if the asymmetry is rounding"
        )
    if dmin < -1e-12 * max(scale, 1e-300):
        raise ValueError(
            f"S has negative diagonal entries (min {dmin:.3g}); S must be positive semidefinite"
        )
    if asym == 0.0:  # (a + a.T) / 2 would be a itself, bit for bit
        return a
    return np.ascontiguousarray(0.5 * (a + a.T))


def check_targets(targets: Sequence[int] | np.ndarray | int | None, n: int) -> np.ndarray:
    """Return the target indices as int64 (T,) (all ``n`` when None); raise if invalid."""
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


def check_candidates(candidates: np.ndarray | None, n: int, T: int) -> np.ndarray:
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


def check_lam(lam: float | np.ndarray, T: int, name: str = "lam") -> np.ndarray:
    """Return one finite, non-negative lam per target, float64 (T,)."""
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


def allowed_masks(S: np.ndarray, targets: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """(T, n) mask: candidate, not the target itself, and ``S_jj > 0``."""
    allowed = np.array(cand, dtype=np.bool_, copy=True)
    allowed[np.arange(targets.size), targets] = False
    allowed &= (np.diag(S) > 0)[None, :]
    return np.ascontiguousarray(allowed)


def prepare(
    S: np.ndarray,
    lam: float | np.ndarray,
    targets: Sequence[int] | np.ndarray | None,
    candidates: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validate a (S, lam, targets, candidates) problem: returns ``(S, targets, lams, allowed)``."""
    S = check_S(S)
    n = S.shape[0]
    t = check_targets(targets, n)
    lams = check_lam(lam, t.size)
    allowed = allowed_masks(S, t, check_candidates(candidates, n, t.size))
    return S, t, lams, allowed


def check_psd_tol(psd_tol: float) -> float:
    """``psd_tol`` checked: a finite number >= 0 (NaN would make every eigenvalue pass)."""
    if isinstance(psd_tol, (bool, np.bool_)) or not isinstance(psd_tol, (int, float, np.number)):
        raise ValueError(f"psd_tol must be a number >= 0 or None; got {psd_tol!r}")
    v = float(psd_tol)
    if not (np.isfinite(v) and v >= 0):
        raise ValueError(f"psd_tol must be a finite number >= 0 (or None to skip the check of an "
                         f"S already checked); got {psd_tol!r}")
    return v


def check_psd(S: np.ndarray, tol: float = PSD_RTOL) -> None:
    """Raise ``ValueError`` when ``S`` has an eigenvalue below ``-tol * trace(S)``.

    With such an eigenvalue (reachable from the target's allowed block) the CovLasso objective is
    unbounded below, so no solution could be certified. ``S`` must already be symmetric (see
    :func:`check_S`). Cost: one Cholesky factorization of ``S + tol * trace(S) * I``; the
    eigenvalues are computed only when it fails, for the message. A matrix that passed is
    remembered by the hash of its content (16 most recent), so checking it again costs one
    SHA-256 of its bytes.

    Parameters
    ----------
    S : ndarray, shape (n, n)
        Symmetric moment matrix.
    tol : float, default ``PSD_RTOL``
        Relative tolerance on the smallest eigenvalue (in units of ``trace(S)``).

    Raises
    ------
    ValueError
        If ``S`` is not positive semidefinite within ``tol``.
    """
    tol = check_psd_tol(tol)
    a = np.ascontiguousarray(S, dtype=np.float64)
    key = (a.shape, float(tol), hashlib.sha256(memoryview(a).cast("B")).digest())
    if key in _PSD_OK:
        return
    _check_psd(a, tol)
    _PSD_OK[key] = True
    while len(_PSD_OK) > 16:
        _PSD_OK.popitem(last=False)


#: content-addressed memo of matrices that passed :func:`check_psd` (key: shape, tolerance and
#: the SHA-256 of the bytes), so repeated solves on one S pay a hash, not a factorization.
_PSD_OK: OrderedDict[tuple, bool] = OrderedDict()


def _check_psd(a: np.ndarray, tol: float) -> None:
    """:func:`check_psd` without the memo."""
    n = a.shape[0]
    scale = float(np.trace(a))
    if not scale > 0:  # a zero diagonal: PSD only when S is zero
        if np.any(a != 0):
            raise ValueError("S is not positive semidefinite: its diagonal is zero but it has "
                             "non-zero entries; build S from logits "
                             "(neudep_utils.moments.second_moment)")
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
        "logits (neudep_utils.moments.second_moment / second_moment_from_sums), or project it "
        "onto the PSD cone (clip its negative eigenvalues) if the defect is known to be harmless"
    )


def allowed_mask(
    S: np.ndarray, targets: Sequence[int] | np.ndarray | None = None,
    candidates: np.ndarray | None = None,
) -> np.ndarray:
    """The partners each target may use: (T, n) bool, ``True`` where column ``j`` is a candidate,
    is not the target itself and has ``S_jj > 0`` (the one partner mask of the study).

    Parameters
    ----------
    S : (n, n) array, the moment matrix (only its diagonal is read).
    targets : (T,) int indices, default all ``n``.
    candidates : (n,) or (T, n) bool mask, default every column.
    """
    d = np.diag(np.asarray(S, dtype=np.float64))
    t = check_targets(targets, d.size)
    return allowed_masks(S, t, check_candidates(candidates, d.size, t.size))
