"""The most favourable linear reading of C1 and C2 (STUDY.md section 8): weights and a level
fitted for classification on a few partners, judged held out like every dependency.

Declared on 2026-12-06, before it was run on the study's data (the level-only variant's outcome
for lite0 at k = 10 was known from a referee's report). Least-squares (and CovLasso) weights fit
a target logit on every fit row alike, and 99.9% of the rows are other classes' images; a
replacement logit only needs to decide, on every image, whether class i beats the other logits.
This module fits the weights and the level for that decision instead, on the same fit rows,
and returns them as ordinary :class:`~neudep_utils.dependencies.DepSet` objects, so they are
evaluated out of sample, bootstrapped and judged by the "similar performance" rule exactly as the
CovLasso dependencies are.

**The decision.** On a row ``x`` (logits ``f(x)``; with stacked cross-model logits, the
classifier is the first ``n_classes`` columns, model A), the replacement ``g(x) = w^T f_S(x) + c``
of logit ``i`` wins the argmax iff ``g(x) > M_i(x) = max_{j != i} f_j(x)``. The model's own
decision on the row is ``y_i(x) = [argmax_j f_j(x) = i]``.

**Fit rows.** Every view of the fold's fit images (the rows the fold's moments come from);
never an eval image.

**Supports** (``k`` partners, ``k`` in :data:`KS`):

- the CovLasso support of the fold's dependency at ``k`` (the same partners as the refit);
- a *classification support*: the ``k`` allowed columns with the largest Fisher score for the
  model's own decision, ``(mean_pos f_j - mean_neg f_j)^2 / var_neg f_j`` over the fit rows
  (positives: rows the model assigns to ``i``; targets without a positive row keep the CovLasso
  support);
- random partners at equal ``k`` (the random + LS baseline's columns): the baseline every
  fitted reading is compared with, fitted the same way.

**Weights and level:**

- ``relevel``: the least-squares weights on the support, with the level ``c`` moved to the
  largest value at which the fit-side false positives (fit rows of other classes with
  ``g > M_i``) do not exceed the original logit's own on the same rows;
- ``discriminative``: weights and level minimising the class-balanced logistic loss of the
  model's own decision at the logits' own scale (temperature :data:`TEMPERATURE` = 1, the
  softmax's), ``sum_x omega(x) log(1 + exp(-(2 y_i(x) - 1) (g(x) - M_i(x)) / T))`` with the
  positives and the negatives each weighing 1/2 in total, plus the shrinkage
  ``(SHRINK / 2) (w - w_LS)^T Sigma_S (w - w_LS) / T^2`` toward the least-squares weights
  (``Sigma_S``: the support's fit-side covariance, so the penalty is the mean squared change of
  the rebuilt logit, in logit units; :data:`SHRINK` = 1). A fit fold holds 1-2 images of a class
  (2-4 rows with views): a free classifier on so few positives overfits, and the shrinkage
  keeps it near the least-squares solution unless the decision rows pull it away. Solved by
  Newton's method with a backtracking line search to a gradient below :data:`GRAD_TOL` (relative);
  then the level is re-set as in ``relevel`` (fit-side false positives capped at the
  original's). Targets without a positive fit row keep the ``relevel`` solution (counted in
  ``extra["no_positive"]``).

What it can and cannot support: 2-4 positive rows per class and fold estimate a level and
shrunk weights, not a free classifier; a reading that only works with more positives per class
than the data hold is not tested here.

**Judged** held out with :func:`neudep_utils.metrics.evaluate` (target-class top-1 kept, false
positives created per target, overall top-1 after one replacement) and the "similar
performance" rule, each fitted reading against random partners fitted the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numba import njit, prange

from .. import covlasso as cl
from ..cache import LogitData
from .depset import DepSet, least_squares_on_support
from .folds import Fold

__all__ = ["DISC_CLS", "DISC_COV", "GRAD_TOL", "KS", "RANDOM_DISC", "RANDOM_OF",
           "RANDOM_RELEVEL", "READINGS", "RELEVEL", "SHRINK", "TEMPERATURE", "DecisionRows",
           "classification_support", "decision_rows", "discriminative", "favourable_set",
           "relevel"]

#: Support sizes of the most favourable reading (the C1 headline k and 50).
KS = (10, 50)
#: The logistic's temperature: the logits' own softmax scale.
TEMPERATURE = 1.0
#: Shrinkage toward the least-squares weights (mean squared change of the rebuilt logit).
SHRINK = 1.0
#: Newton's stopping rule: gradient norm below this times the gradient norm at the start.
GRAD_TOL = 1e-8


@dataclass(frozen=True)
class DecisionRows:
    """A fold's fit rows and the classifier's decision on each: ``X`` (N, n_total) every view of
    the fit images, ``labels`` (N,), the classifier's ``argmax`` (N,) and its two largest
    logits ``top1``, ``top2`` (N,); ``n_classes`` columns form the classifier."""

    X: np.ndarray
    labels: np.ndarray
    argmax: np.ndarray
    top1: np.ndarray
    top2: np.ndarray
    n_classes: int

    def competitor(self, targets: np.ndarray) -> np.ndarray:
        """``M_i(x)``, the largest other classifier logit, (N, T)."""
        t = np.asarray(targets)
        return np.where(self.argmax[:, None] == t[None], self.top2[:, None], self.top1[:, None])

    def original_fit_fp(self, targets: np.ndarray) -> np.ndarray:
        """The original logit's fit-side false positives per target: rows of other classes
        the classifier assigns to the target."""
        t = np.asarray(targets)
        return ((self.argmax[:, None] == t[None]) & (self.labels[:, None] != t[None])).sum(0)


def decision_rows(data: LogitData, fold: Fold) -> DecisionRows:
    """The fit rows of ``fold`` (every view of its fit images) and the classifier's decisions.

    Raises
    ------
    ValueError
        The fold has no per-image fit side (streamed moments).
    """
    if fold.fit_idx is None:
        raise ValueError("the most favourable reading needs the fit images (a per-image fold), "
                         "not streamed moments")
    L = data.logits[fold.fit_idx]
    n_views = L.shape[1]
    X = L.reshape(-1, L.shape[-1]).astype(np.float64)
    F = X[:, :data.n_classes]
    arg = F.argmax(1)
    srt = np.partition(F, data.n_classes - 2, axis=1)
    return DecisionRows(X, np.repeat(data.labels[fold.fit_idx], n_views), arg,
                        srt[:, -1].copy(), srt[:, -2].copy(), data.n_classes)


def relevel(dep: DepSet, rows: DecisionRows, method: str | None = None) -> DepSet:
    """``dep`` with each target's level raised (or lowered) to the largest value at which its
    fit-side false positives (rows of other classes where it beats the other logits) do not
    exceed the original logit's own on the same rows."""
    t = dep.targets
    G = dep.predict(rows.X)
    V = rows.competitor(t) - G  # the level shift each row needs to be won
    V[rows.labels[:, None] == t[None]] = np.inf  # only other classes' rows count
    cap = rows.original_fit_fp(t)
    shift = np.empty(t.size)
    for j in range(t.size):
        v = V[:, j]
        n_neg = int(np.isfinite(v).sum())
        if cap[j] >= n_neg:
            shift[j] = float(np.max(v[np.isfinite(v)], initial=0.0)) + 1.0
        else:
            # a row is won iff shift > its need (M - g): the cap[j] smallest needs may be won,
            # the next one not (a margin of 1e-10 relative keeps it unwon after rounding)
            need = float(np.partition(v, cap[j])[cap[j]])
            shift[j] = need - 1e-10 * (1.0 + abs(need))
    out = replace(dep, intercept=dep.intercept + shift, method=method or f"{dep.method} re-levelled",
                  lam=None, lam_ratio=None, gap=None, objective=None,
                  extra={**dep.extra, "level_shift": shift})
    return out


def classification_support(rows: DecisionRows, fold: Fold, targets: np.ndarray, k: int,
                           fallback: np.ndarray, candidates: np.ndarray | None = None
                           ) -> np.ndarray:
    """The ``k`` allowed columns with the largest Fisher score for the classifier's decision
    "argmax = target" on the fit rows, ``(mean_pos - mean_neg)^2 / var_neg`` (T, k), -1 padded;
    targets without a positive row keep their row of ``fallback``."""
    t = np.asarray(targets, np.int64)
    X, arg = rows.X, rows.argmax
    N = X.shape[0]
    order = np.argsort(arg, kind="stable")
    bounds = np.searchsorted(arg[order], np.arange(rows.n_classes + 1))
    tot, tot2 = X.sum(0), (X ** 2).sum(0)
    allowed = cl.allowed_mask(fold.S, t, candidates)
    out = np.full((t.size, k), -1, np.int64)
    for j, ti in enumerate(t):
        pos = order[bounds[ti]:bounds[ti + 1]]
        n_pos = pos.size
        if n_pos == 0 or n_pos == N:
            fb = fallback[j][:k]
            out[j, :fb.size] = fb
            continue
        sp, sp2 = X[pos].sum(0), (X[pos] ** 2).sum(0)
        n_neg = N - n_pos
        mn = (tot - sp) / n_neg
        var = np.maximum((tot2 - sp2) / n_neg - mn ** 2, 1e-12)
        score = np.where(allowed[j] if allowed.ndim == 2 else allowed,
                         (sp / n_pos - mn) ** 2 / var, -np.inf)
        kk = min(k, int(np.isfinite(score).sum()))
        top = np.argpartition(-score, kk - 1)[:kk] if kk else np.empty(0, np.int64)
        top = top[np.argsort(-score[top], kind="stable")]
        out[j, :kk] = top
    return out


@njit(cache=True)
def _labels(argmax, top1, top2, ti):  # pragma: no cover - numba
    """Each row's label (the model's own decision on target ``ti``: +1 / -1), its competitor
    ``M_i(x)`` and the number of positive rows."""
    N = argmax.shape[0]
    sg = np.empty(N)
    M = np.empty(N)
    n_pos = 0
    for r in range(N):
        if argmax[r] == ti:
            sg[r] = 1.0
            n_pos += 1
            M[r] = top2[r]
        else:
            sg[r] = -1.0
            M[r] = top1[r]
    return sg, M, n_pos


@njit(cache=True)
def _design(X, cols_t, k, sg, n_pos, C, alpha, temp):  # pragma: no cover - numba
    """One target's class-balanced row weights, its partners' logits ``Z`` and the shrinkage
    matrix ``Sig`` (``alpha C_SS / temp^2``)."""
    N = X.shape[0]
    om = np.empty(N)
    for r in range(N):
        om[r] = 0.5 / n_pos if sg[r] > 0 else 0.5 / (N - n_pos)
    Z = np.empty((N, k))
    for r in range(N):
        for m in range(k):
            Z[r, m] = X[r, cols_t[m]]
    Sig = np.empty((k, k))
    for a in range(k):
        for b in range(k):
            Sig[a, b] = alpha * C[cols_t[a], cols_t[b]] / (temp * temp)
    return om, Z, Sig


@njit(cache=True)
def _objective(Z, sg, om, u, w, w0t, Sig, temp):  # pragma: no cover - numba
    """The objective at the margins ``u`` (the replacement's margin over the competitor, in
    temperature units) and weights ``w``: its value, the penalty's gradient ``Sig (w - w0)``,
    the gradient in ``(w, c)`` and the lower triangle of the Hessian (rows whose ``p (1 - p)``
    is above 1e-3 shape it; the gradient uses all)."""
    N, k = Z.shape
    pen = np.empty(k)  # Sig (w - w0)
    for m in range(k):
        acc = 0.0
        for b in range(k):
            acc += Sig[m, b] * (w[b] - w0t[b])
        pen[m] = acc
    g = np.zeros(k + 1)
    for m in range(k):
        g[m] = pen[m]
    H = np.zeros((k + 1, k + 1))
    for a in range(k):
        for b in range(k):
            H[a, b] = Sig[a, b]
    f = 0.0
    for m in range(k):
        f += 0.5 * (w[m] - w0t[m]) * pen[m]
    for r in range(N):
        v = -sg[r] * u[r]
        e = np.exp(-abs(u[r]))  # one exponential serves the loss and p
        f += om[r] * (max(v, 0.0) + np.log1p(e))
        p = 1.0 / (1.0 + e) if u[r] >= 0 else e / (1.0 + e)
        gr = om[r] * (p - (sg[r] > 0)) / temp
        for m in range(k):
            g[m] += gr * Z[r, m]
        g[k] += gr
        q = p * (1.0 - p)
        if q > 1e-3:  # the rows that shape the step (the gradient uses all)
            h = om[r] * q / (temp * temp)
            for a in range(k):
                za = h * Z[r, a]
                for b in range(a + 1):
                    H[a, b] += za * Z[r, b]
                H[k, a] += za
            H[k, k] += h
    return f, pen, g, H


@njit(cache=True)
def _newton_step(H, g):  # pragma: no cover - numba
    """The Newton direction from the lower triangle of ``H`` (mirrored, with a relative ridge
    of 1e-12 of its mean diagonal) and its slope ``g^T d``."""
    k1 = g.shape[0]
    tr = 0.0
    for a in range(k1):
        for b in range(a):
            H[b, a] = H[a, b]
        tr += H[a, a]
    for a in range(k1):
        H[a, a] += 1e-12 * tr / k1 + 1e-300
    d = np.linalg.solve(H, -g)
    slope = 0.0
    for a in range(k1):
        slope += g[a] * d[a]
    return d, slope


@njit(cache=True)
def _line_search(Z, sg, om, u, d, pen, Sig, w, w0t, f, slope, temp):  # pragma: no cover
    """Backtracking (Armijo, halving, at most 40 times) along ``d`` from ``f``: the step and
    the margins' change per unit step ``zd``."""
    N, k = Z.shape
    zd = np.empty(N)
    for r in range(N):
        v = d[k]
        for m in range(k):
            v += Z[r, m] * d[m]
        zd[r] = v / temp
    # the penalty along the step: f_pen(s) = f_pen + s b + s^2 a2 / 2
    b_lin, a2 = 0.0, 0.0
    for m in range(k):
        b_lin += d[m] * pen[m]
        acc = 0.0
        for b in range(k):
            acc += Sig[m, b] * d[b]
        a2 += d[m] * acc
    f_pen = 0.0
    for m in range(k):
        f_pen += 0.5 * (w[m] - w0t[m]) * pen[m]
    step = 1.0
    for _ in range(40):
        ft = f_pen + step * b_lin + 0.5 * step * step * a2
        for r in range(N):
            v = -sg[r] * (u[r] + step * zd[r])
            ft += om[r] * (max(v, 0.0) + np.log1p(np.exp(-abs(v))))
        if ft <= f + 1e-4 * step * slope:
            break
        step *= 0.5
    return step, zd


@njit(parallel=True, cache=True)
def _disc_kernel(X, cols, w0, c0, C, targets, argmax, top1, top2, alpha, temp, grad_tol,
                 max_iter, W, c_out, iters, gnorm, npos):  # pragma: no cover - numba
    """Per target (in parallel): Newton's method with a backtracking line search on the
    class-balanced logistic loss of the replacement's margin over the competitor, shrunk toward
    ``w0``; writes the weights, level, iterations (-1: no positive or no negative row, or no
    partner; ``w0``, ``c0`` kept), relative gradient norm and positive rows."""
    N = X.shape[0]
    T = targets.shape[0]
    for t in prange(T):
        ti = targets[t]
        k = 0
        for m in range(cols.shape[1]):
            if cols[t, m] >= 0:
                k += 1
        sg, M, n_pos = _labels(argmax, top1, top2, ti)
        npos[t] = n_pos
        for m in range(k):
            W[t, m] = w0[t, m]
        c_out[t] = c0[t]
        if n_pos == 0 or n_pos == N or k == 0:
            iters[t] = -1
            continue
        om, Z, Sig = _design(X, cols[t], k, sg, n_pos, C, alpha, temp)
        w0t = w0[t]
        w = np.empty(k)
        for m in range(k):
            w[m] = w0[t, m]
        c = c0[t]
        # u: the replacement's margin over the competitor, in temperature units
        u = np.empty(N)
        for r in range(N):
            v = c - M[r]
            for m in range(k):
                v += Z[r, m] * w[m]
            u[r] = v / temp
        g0 = -1.0
        it = 0
        gn = 0.0
        while True:
            f, pen, g, H = _objective(Z, sg, om, u, w, w0t, Sig, temp)
            gn = 0.0
            for a in range(k + 1):
                if abs(g[a]) > gn:
                    gn = abs(g[a])
            if g0 < 0:
                g0 = gn
            if gn <= grad_tol * max(g0, 1e-300) or it >= max_iter:
                break
            d, slope = _newton_step(H, g)
            step, zd = _line_search(Z, sg, om, u, d, pen, Sig, w, w0t, f, slope, temp)
            for m in range(k):
                w[m] += step * d[m]
            c += step * d[k]
            for r in range(N):
                u[r] += step * zd[r]
            it += 1
        for m in range(k):
            W[t, m] = w[m]
        c_out[t] = c
        iters[t] = it
        gnorm[t] = gn / max(g0, 1e-300)


def discriminative(ls: DepSet, rows: DecisionRows, fold: Fold, method: str,
                   alpha: float = SHRINK, temperature: float = TEMPERATURE,
                   grad_tol: float = GRAD_TOL, max_iter: int = 100) -> DepSet:
    """Weights and level fitted to the classifier's own decision on the fit rows (the
    class-balanced logistic loss at ``temperature``, shrunk toward the least-squares weights
    ``ls`` on the same support), then the level capped as in :func:`relevel`.

    ``extra`` records per target the Newton iterations (``-1``: no positive fit row, the
    re-levelled least squares kept), the final relative gradient norm and the positive rows.
    """
    t = np.asarray(ls.targets, np.int64)
    cols = np.ascontiguousarray(ls.cols, np.int64)
    C = fold.S if fold.center else fold.S - np.outer(fold.mu, fold.mu)
    W = np.zeros(cols.shape, np.float64)
    c = np.zeros(t.size)
    iters = np.zeros(t.size, np.int64)
    gnorm = np.zeros(t.size)
    npos = np.zeros(t.size, np.int64)
    w0 = np.where(cols >= 0, ls.coef, 0.0)
    _disc_kernel(np.ascontiguousarray(rows.X), cols, np.ascontiguousarray(w0),
                 np.ascontiguousarray(ls.intercept, np.float64), np.ascontiguousarray(C),
                 t, rows.argmax.astype(np.int64), rows.top1, rows.top2, float(alpha),
                 float(temperature), float(grad_tol), int(max_iter), W, c, iters, gnorm, npos)
    fitted = replace(ls, coef=np.where(cols >= 0, W, 0.0), intercept=c, method=method,
                     extra={"iterations": iters, "relative_gradient": gnorm,
                            "positive_rows": npos, "no_positive": int((iters < 0).sum())})
    out = relevel(fitted, rows, method)
    out.extra.update(fitted.extra)
    return out


#: The readings of the most favourable linear reading and the random baseline each is judged
#: against (fitted the same way).
RELEVEL, DISC_COV, DISC_CLS = ("LS re-levelled", "discriminative (CovLasso partners)",
                               "discriminative (classification partners)")
RANDOM_RELEVEL, RANDOM_DISC = "random + LS re-levelled", "random + discriminative"
READINGS = (RELEVEL, DISC_COV, DISC_CLS)
RANDOM_OF = {RELEVEL: RANDOM_RELEVEL, DISC_COV: RANDOM_DISC, DISC_CLS: RANDOM_DISC,
             RANDOM_RELEVEL: None, RANDOM_DISC: None}


def favourable_set(data: LogitData, fold: Fold, refit: DepSet, random_ls: DepSet,
                   candidates: np.ndarray | None = None) -> dict[str, DepSet]:
    """Every dependency of the most favourable reading for one fold and support size: the
    re-levelled refit, the discriminative fits on the CovLasso partners and on the
    classification partners, and their random-partner baselines fitted the same way.

    ``refit``: the CovLasso support refitted by least squares; ``random_ls``: random partners at
    the same k, least squares (the study's random baseline); ``candidates``: the allowed
    columns (cross-model: B's block without B's own category).
    """
    rows = decision_rows(data, fold)
    k = int(max(refit.cols.shape[1], 1))
    t = refit.targets
    cls_cols = classification_support(rows, fold, t, k, refit.cols, candidates)
    cls_ls = least_squares_on_support(fold, t, cls_cols, "classification partners + LS")
    out = {RELEVEL: relevel(refit, rows, RELEVEL),
           RANDOM_RELEVEL: relevel(random_ls, rows, RANDOM_RELEVEL),
           DISC_COV: discriminative(refit, rows, fold, DISC_COV),
           DISC_CLS: discriminative(cls_ls, rows, fold, DISC_CLS),
           RANDOM_DISC: discriminative(random_ls, rows, fold, RANDOM_DISC)}
    for d in out.values():
        d.k_requested = refit.k_requested
    return out
