"""Dependency sets: sparse linear dependencies of target logits, and the least squares that fit them.

A :class:`DepSet` holds, for T targets, ``f_t ~ intercept_t + sum_m coef[t, m] f_{cols[t, m]}``.
:func:`least_squares_on_support` fits one on given partner columns (batched, the one refit of the
study); :func:`dense_least_squares` on *all* allowed columns (minimum-norm, the no-sparsity
reference); :func:`depset_from_coef` packs dense coefficient rows. With ``fold.center`` every
dependency has an intercept ``b = mu_i - theta^T mu`` (fit-set means); with the second moment
there is none. Partner candidates are a boolean mask, (n,) or (T, n) (:func:`candidate_mask`
builds the cross-model ones).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp

from .. import covlasso as cl
from ..covlasso.ksearch import pack
from .folds import Fold

__all__ = ["DepSet", "candidate_mask", "dense_least_squares", "depset_from_coef",
           "least_squares_on_support", "make_depset", "min_norm_inverse", "pack"]


def candidate_mask(n_total: int, allowed: slice | np.ndarray | None = None,
                   targets: np.ndarray | None = None, exclude_same: int | None = None) -> np.ndarray:
    """Boolean candidate mask: columns in ``allowed`` (a slice or an index/bool array).

    With ``targets`` and ``exclude_same=offset`` the result is (T, n_total) and column
    ``targets[t] + offset`` is removed for row t (cross-model: B's own category of A's target).
    """
    m = np.zeros(n_total, dtype=bool)
    if allowed is None:
        m[:] = True
    else:
        m[allowed] = True
    if exclude_same is None:
        return m
    if targets is None:
        raise ValueError("exclude_same needs targets")
    t = np.asarray(targets)
    M = np.repeat(m[None], t.size, axis=0)
    M[np.arange(t.size), t + exclude_same] = False
    return M


@dataclass
class DepSet:
    """Sparse linear dependencies of T targets: ``f_t ~ intercept_t + sum_m coef[t, m] f_{cols[t, m]}``.

    ``cols`` (T, m) int64 partner columns, -1 padded; ``coef`` (T, m) float64 (0 where padded);
    ``k`` (T,) support sizes; ``lam`` (T,) absolute lam (NaN for least-squares baselines);
    ``gap`` (T,) CovLasso duality gap (objective units; NaN for baselines); ``method`` a label.
    """

    targets: np.ndarray
    cols: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    n_total: int
    method: str
    k_requested: int | None = None
    lam: np.ndarray | None = None
    lam_ratio: np.ndarray | None = None
    gap: np.ndarray | None = None
    objective: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    @property
    def k(self) -> np.ndarray:
        """Support size per target (non-zero coefficients)."""
        return ((self.cols >= 0) & (self.coef != 0)).sum(axis=1)

    def matrix(self) -> sp.csr_matrix:
        """(T, n_total) sparse coefficient matrix."""
        T, m = self.cols.shape
        ok = (self.cols >= 0) & (self.coef != 0)
        rows = np.repeat(np.arange(T), m)[ok.ravel()]
        return sp.csr_matrix((self.coef[ok], (rows, self.cols[ok])), shape=(T, self.n_total))

    def dense(self) -> np.ndarray:
        """(T, n_total) dense coefficients."""
        return self.matrix().toarray()

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted target logits (N, T) for logit rows ``X`` (N, n_total)."""
        M = self.matrix()
        X = np.asarray(X, np.float64)
        if M.nnz > 0.02 * M.shape[0] * M.shape[1]:  # dense enough for BLAS
            return X @ M.toarray().T + self.intercept[None]
        return np.asarray((M @ X.T).T) + self.intercept[None]

    def partners(self, t: int) -> list[tuple[int, float]]:
        """``[(column, coefficient), ...]`` of row ``t`` by decreasing |coefficient|."""
        ok = (self.cols[t] >= 0) & (self.coef[t] != 0)
        c, v = self.cols[t][ok], self.coef[t][ok]
        o = np.argsort(-np.abs(v), kind="stable")
        return [(int(c[j]), float(v[j])) for j in o]

    def subset(self, rows: np.ndarray) -> DepSet:
        """The dependencies of some rows (targets)."""
        def sel(a):
            return None if a is None else a[rows]
        return replace(self, targets=self.targets[rows], cols=self.cols[rows],
                       coef=self.coef[rows], intercept=self.intercept[rows], lam=sel(self.lam),
                       lam_ratio=sel(self.lam_ratio), gap=sel(self.gap),
                       objective=sel(self.objective))


def _intercepts(fold: Fold, targets: np.ndarray, cols: np.ndarray, coef: np.ndarray) -> np.ndarray:
    if not fold.center:
        return np.zeros(targets.size)
    mu_c = np.where(cols >= 0, fold.mu[np.maximum(cols, 0)], 0.0)
    return fold.mu[targets] - (coef * mu_c).sum(axis=1)


def make_depset(fold: Fold, targets, cols, coef, method, **kw) -> DepSet:
    cols = np.asarray(cols, np.int64)
    coef = np.where(cols >= 0, np.asarray(coef, np.float64), 0.0)
    return DepSet(np.asarray(targets, np.int64), cols, coef,
                  _intercepts(fold, np.asarray(targets), cols, coef), fold.n, method, **kw)


def depset_from_coef(fold: Fold, targets: np.ndarray, coef: np.ndarray,
                     method: str) -> DepSet:
    """A :class:`DepSet` from dense coefficients ``coef`` (T, n) (e.g. a point of
    :func:`neudep_utils.covlasso.path` or its refit), with the fold's intercepts."""
    cols, vals = pack(np.asarray(coef, np.float64))
    return make_depset(fold, targets, cols, vals, method)


# --------------------------------------------------------------------------------------------
# CovLasso at a target support size


def least_squares_on_support(fold: Fold, targets: np.ndarray, cols: np.ndarray,
                             method: str = "LS", rcond: float = 1e-10) -> DepSet:
    """Least squares of each target on its partner columns (``cols`` (T, m), -1 padded):
    :func:`neudep_utils.covlasso.lstsq_on_support` on the fold's moments (centred: ordinary
    least squares with an intercept), with the fold's intercepts."""
    t = np.asarray(targets, np.int64)
    cols = np.asarray(cols, np.int64)
    if cols.shape[1] == 0:
        return make_depset(fold, t, np.full((t.size, 1), -1), np.zeros((t.size, 1)), method)
    return make_depset(fold, t, cols, cl.lstsq_on_support(fold.S, t, cols, rcond), method)


def min_norm_inverse(G: np.ndarray, rcond: float = 1e-12) -> tuple[np.ndarray, np.ndarray]:
    """What every least-squares solution on a (possibly singular) PSD block ``G`` needs.

    Returns ``P0 = pinv(G)`` (eigenvalues at most ``rcond * lambda_max`` dropped) and
    ``P = P0 + N / eps``, with ``N`` the projector onto the dropped (null) directions and
    ``eps = 1e-8 lambda_min_kept``: the inverse of ``G + eps I`` on the same eigenbasis. Ratios of
    ``P`` (``-P[:, i] / P[i, i]``, rank-one downdates) are then the limits of ridge regression as
    the ridge vanishes, i.e. the minimum-norm least-squares solutions, whether ``G`` is singular
    (a target in the span of the others) or not.
    """
    w, V = np.linalg.eigh(np.asarray(G, dtype=np.float64))
    keep = w > rcond * max(float(w.max(initial=0.0)), 0.0)
    if not keep.any():
        z = np.zeros_like(G, dtype=np.float64)
        return z, np.eye(len(G))
    Vk = V[:, keep]
    P0 = (Vk / w[keep]) @ Vk.T
    eps = 1e-8 * float(w[keep].min())
    N = V[:, ~keep] @ V[:, ~keep].T
    return P0, P0 + N / eps


def dense_least_squares(fold: Fold, targets: np.ndarray, columns: np.ndarray | None = None,
                        drop: np.ndarray | None = None, method: str = "dense LS",
                        rcond: float = 1e-12) -> DepSet:
    """Minimum-norm least squares of each target on *all* allowed columns (no sparsity): the
    dense reference, correct for singular moments (a logit layer of width d < n, or fewer fit
    rows than columns).

    ``columns``: the candidate columns (default all); a target inside them is excluded from its
    own row. ``drop`` (T,) optional extra column per target to exclude (-1: none; e.g. B's own
    category in cross-model fits). One eigendecomposition of ``S_CC`` serves every target
    (:func:`min_norm_inverse`): a target outside ``C`` gets ``pinv(S_CC) S_{C,i}``; a target
    inside, or a dropped column, is removed by the Schur-complement formulas applied to the
    vanishing-ridge inverse, which give the minimum-norm solution on the remaining columns (the
    textbook ``-pinv(S)[:, i] / pinv(S)_ii`` does so only when ``S_CC`` is invertible).
    """
    t = np.asarray(targets, np.int64)
    n = fold.n
    C = np.arange(n) if columns is None else np.asarray(columns, np.int64)
    P0, P = min_norm_inverse(fold.S[np.ix_(C, C)], rcond)
    pos = np.full(n, -1)
    pos[C] = np.arange(C.size)
    B = np.zeros((C.size, t.size))
    inside = pos[t] >= 0
    if inside.any():
        j = pos[t[inside]]
        B[:, inside] = -P[:, j] / P[j, j][None]
        B[j, np.flatnonzero(inside)] = 0.0
    if (~inside).any():
        B[:, ~inside] = P0 @ fold.S[np.ix_(C, t[~inside])]
    if drop is not None:
        d = np.asarray(drop, np.int64)
        rows = np.flatnonzero((d >= 0) & (pos[np.maximum(d, 0)] >= 0))
        for r in rows:  # rank-one downdates (cheap: one column each)
            j = pos[d[r]]
            if inside[r]:
                raise ValueError("drop is only supported for targets outside the columns")
            B[:, r] -= P[:, j] * (B[j, r] / P[j, j])
            B[j, r] = 0.0
    cols = np.broadcast_to(C, (t.size, C.size)).copy()
    coef = B.T.copy()
    cols = np.where(coef != 0, cols, -1)
    return make_depset(fold, t, cols, coef, method)
