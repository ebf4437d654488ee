"""Why the dependencies fail as replacement logits (notebooks 01 and 02): ranking against scale,
and the small-data objection.

- :func:`reading_rows`: the secondary readings (:mod:`neudep_utils.metrics.readings`: top-5
  retention, AUC, AP, scale gap) of the refitted CovLasso dependency at each k of the readings,
  of random partners at the same k, of dense least squares on all partners ("all") and of the
  unmodified model, on the same pooled eval images.
- :func:`without_positives`: the target-class accuracy of dependencies fitted on moments with and
  without the target's own class images, to test whether the few positives in a fit set (about
  0.1% of the rows) are what the dependency lacks.
- :func:`failure_sentence`: the one sentence of the C1/C2 verdict that says which part fails.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tqdm.auto import tqdm

from .. import dependencies
from ..cache import LogitData
from ..dependencies import DepSet, Fold
from ..metrics import evaluate
from ..metrics.readings import original_readings, readings
from ..moments import second_moment_from_sums

__all__ = ["READ_METHODS", "failure_sentence", "reading_rows", "reading_table",
           "without_positives"]

#: What the readings compare, in table order.
READ_METHODS = ("CovLasso support + LS", "random + LS", "dense LS", "original")


def reading_rows(label: str, data: LogitData, folds: Sequence[Fold],
                 by_k: dict[int, dict[str, Sequence[DepSet]]], dense: Sequence[DepSet],
                 targets: np.ndarray, n_boot: int = 1000) -> tuple[list[dict], dict]:
    """The readings of one model (or pair) ``label``.

    Parameters
    ----------
    label : str
        The model's short name (or ``"<a>_from_<b>"``).
    data, folds
        The logits and their folds.
    by_k : dict
        ``{k: {"CovLasso support + LS": [DepSet per fold], "random + LS": [...]}}``.
    dense : sequence of DepSet
        Dense least squares per fold (the "all partners" point).
    targets : array
        The targets (for the unmodified model's readings).
    n_boot : int
        Bootstrap replicates of the intervals.

    Returns
    -------
    (list of dict, dict)
        One record per (method, k) with ``top5``, ``auc``, ``ap``, ``scale`` and the intervals of
        ``ap`` and ``scale`` (``k`` is ``"all"`` for dense least squares and the original), and
        the per-target :class:`~neudep_utils.metrics.readings.Readings` by ``(method, k)``.
    """
    rows, objs = [], {}

    def add(method: str, k, r) -> None:
        sm = r.summary()
        objs[(method, k)] = r
        rows.append({"model": label, "method": method, "k": k, **sm,
                     "ap_ci": r.ci("ap", n_boot), "scale_ci": r.ci("scale", n_boot)})

    for k, per in sorted(by_k.items()):
        for method in READ_METHODS[:2]:
            add(method, k, readings(data, folds, per[method]))
    add("dense LS", "all", readings(data, folds, dense))
    add("original", "all", original_readings(data, folds, targets))
    return rows, objs


def reading_table(rows: Sequence[dict]):
    """The readings of :func:`reading_rows` (of any number of models or pairs) as the book's
    table: one row per model and k, for AP, the scale gap and top-5 the refitted dependency
    (dense least squares at k = "all"), random partners at the same k and the unmodified model
    side by side (an empty cell: no random partners for "all")."""
    import pandas as pd

    orig = {(r["model"]): r for r in rows if r["method"] == "original"}
    rnd = {(r["model"], str(r["k"])): r for r in rows if r["method"] == "random + LS"}
    out = []
    for r in rows:
        if r["method"] not in ("CovLasso support + LS", "dense LS"):
            continue
        key, o = (r["model"], str(r["k"])), orig.get(r["model"], {})
        row = {("", "model"): r["model"].replace("_from_", " from "), ("", "k"): str(r["k"])}
        for col, name in (("ap", "AP"), ("scale", "scale gap"), ("top5", "top-5")):
            row[(name, "dependency")] = f"{r[col]:.3f}"
            row[(name, "random")] = f"{rnd[key][col]:.3f}" if key in rnd else ""
            row[(name, "unmod.")] = f"{o[col]:.3f}" if col in o else ""
        out.append(row)
    frame = pd.DataFrame(out)
    frame.columns = pd.MultiIndex.from_tuples(frame.columns)
    return frame


def without_positives(data: LogitData, folds: Sequence[Fold], with_deps: Sequence[DepSet],
                      k: int, progress: bool = True) -> dict[str, float]:
    """Target-class accuracy of the refitted CovLasso dependency at ``k`` when each target's
    dependency is fitted on the fold's fit moments **without** that target's own class images,
    against the same fit with them (``with_deps``: the CovLasso fits at ``k``, one per fold),
    on the same held-out images.

    Per target, the fit set's moments are downdated (its class's rows removed: about 0.1% of
    the rows), the CovLasso is solved on them at the lam of the fit with positives (warm-started from its
    solution; lam is moved only when the support size lands more than 2 from ``k``, and the
    achieved sizes are reported), and the support is refitted by least squares. If the positives carried what the dependency needs, removing them would
    cost accuracy; if the fit is dominated by the other 99.9% of the rows, little changes.

    Returns
    -------
    dict
        ``acc_with``, ``acc_without`` (target-class accuracy after replacement), ``acc_base``,
        ``k_with``, ``k_without`` (mean support sizes), ``n_images`` (eval images of the
        targets) and ``positive_share`` (a target's rows as a share of the fit rows, mean).
    """
    refit_with, refit_without, shares = [], [], []
    for fold, dep in zip(folds, with_deps, strict=True):
        if fold.fit_idx is None:
            raise ValueError("without_positives needs per-image fit folds (not streamed moments)")
        t = dep.targets
        refit_with.append(dependencies.least_squares_on_support(fold, t, dep.cols))
        X = data.logits[fold.fit_idx].astype(np.float64)  # (N_fit, V, C)
        rows = X.reshape(-1, X.shape[-1])
        lab = np.repeat(data.labels[fold.fit_idx], X.shape[1])
        count, sum_f, sum_ff = rows.shape[0], rows.sum(0), rows.T @ rows
        parts = []
        shares.append(np.isin(lab, t).sum() / t.size / lab.size)
        for i, ti in enumerate(tqdm(t, desc="fits without the target's images",
                                    disable=not progress, leave=False)):
            own = rows[lab == ti]
            sf = sum_f - own.sum(0)
            S = second_moment_from_sums(count - own.shape[0], sf, sum_ff - own.T @ own,
                                        center=fold.center)
            f_t = replace_fold(fold, S, sf / (count - own.shape[0]), count - own.shape[0])
            warm = np.zeros((1, S.shape[0]))
            c = dep.cols[i]
            warm[0, c[c >= 0]] = dep.coef[i][c >= 0]
            cols = _support_at_k(S, int(ti), k, float(dep.lam[i]), warm)
            parts.append(dependencies.least_squares_on_support(f_t, np.array([ti]), cols[None]))
        refit_without.append(_stack(parts))
    a = evaluate(data, folds, refit_with).summary()
    b = evaluate(data, folds, refit_without).summary()
    n = int(sum(np.isin(data.labels[f.eval_idx], d.targets).sum()
                for f, d in zip(folds, with_deps, strict=True)))
    return {"acc_with": a["acc_replaced"], "acc_without": b["acc_replaced"],
            "acc_base": a["acc_base"], "k_with": a["k"], "k_without": b["k"], "n_images": n,
            "positive_share": float(np.mean(shares))}


def _support_at_k(S: np.ndarray, t: int, k: int, lam0: float, warm: np.ndarray,
                  steps: int = 3, slack: int = 2) -> np.ndarray:
    """The CovLasso support of target ``t`` on ``S`` with a size near ``k``: solved at ``lam0``
    (the lam that gave ``k`` partners on the undowndated moments), then, while the size is more
    than ``slack`` from ``k``, lam is doubled/halved or bisected geometrically (at most
    ``steps`` solves); the size closest to ``k`` is kept (ties: the smaller)."""
    from .. import covlasso as cl

    lam, lo, hi = lam0, 0.0, np.inf
    best, best_d = np.array([], dtype=np.int64), np.inf
    for _ in range(steps):
        res = cl.solve(S, np.array([lam]), np.array([t]), tol=1e-6, warm_start=warm,
                       warn=False, psd_tol=None)
        sup = np.flatnonzero(res.coef[0])
        d = abs(sup.size - k)
        if d < best_d or (d == best_d and sup.size < best.size):
            best, best_d = sup, d
        if d <= slack:
            break
        warm = res.coef
        if sup.size > k:
            lo = lam
            lam = lam * 2 if not np.isfinite(hi) else np.sqrt(lo * hi)
        else:
            hi = lam
            lam = lam / 2 if lo == 0 else np.sqrt(lo * hi)
    return best


def replace_fold(fold: Fold, S: np.ndarray, mu: np.ndarray, n_fit_rows: int) -> Fold:
    """``fold`` with other fit moments (same eval images)."""
    from dataclasses import replace

    return replace(fold, S=S, mu=mu, n_fit_rows=int(n_fit_rows))


def _stack(parts: Sequence[DepSet]) -> DepSet:
    """One DepSet of single-target DepSets (same method), padded to a common width."""
    width = max(p.cols.shape[1] for p in parts)
    cols = np.full((len(parts), width), -1, dtype=np.int64)
    coef = np.zeros((len(parts), width))
    for i, p in enumerate(parts):
        cols[i, :p.cols.shape[1]] = p.cols[0]
        coef[i, :p.cols.shape[1]] = p.coef[0]
    return DepSet(targets=np.concatenate([p.targets for p in parts]), cols=cols, coef=coef,
                  intercept=np.concatenate([p.intercept for p in parts]),
                  n_total=parts[0].n_total, method=parts[0].method,
                  k_requested=parts[0].k_requested)


def failure_sentence(label: str, k: int, dep: dict, rnd: dict, orig: dict,
                     acc_kept: float, acc_base: float) -> str:
    """The sentence that says which part of "similar performance" fails, from the readings at
    ``k`` of the refitted dependency (``dep``), random partners (``rnd``) and the unmodified
    model (``orig``), each a :meth:`~neudep_utils.metrics.readings.Readings.summary`."""
    ranks = dep["ap"] > 2 * rnd["ap"]
    scale_short = dep["scale"] < 0.75 * orig["scale"]
    parts = [f"{label} at k = {k}: the rebuilt logit "
             + ("ranks class-i images far above random partners" if ranks else
                "ranks class-i images little better than random partners")
             + f" (average precision {dep['ap']:.2f} vs {rnd['ap']:.2f} for random partners; "
             f"the original logit {orig['ap']:.2f})"]
    if scale_short:
        parts.append(f"but sits only {dep['scale']:.1f} negative-class standard deviations above "
                     f"the other images, against {orig['scale']:.1f} for the original, so it "
                     f"rarely wins the 1000-way argmax (top-1 kept {100 * acc_kept:.1f}% vs "
                     f"{100 * acc_base:.1f}%, top-5 {100 * dep['top5']:.0f}% vs "
                     f"{100 * orig['top5']:.0f}%)")
    else:
        parts.append(f"at a scale gap of {dep['scale']:.1f} against the original's "
                     f"{orig['scale']:.1f} (top-1 kept {100 * acc_kept:.1f}% vs "
                     f"{100 * acc_base:.1f}%)")
    return ", ".join(parts) + "."
