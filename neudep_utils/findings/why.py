"""Why the dependencies fail as replacement logits (notebooks 01 and 02): level and separation,
and the small-data objection.

- :func:`reading_rows`: the secondary readings (:mod:`neudep_utils.metrics.readings`: top-5
  retention, AUC, AP, separation d') of the refitted CovLasso dependency at each k of the
  readings, of random partners at the same k, of dense least squares on all partners ("all") and
  of the unmodified model, on the same pooled eval images; beside them the **level**: each
  rebuilt logit re-levelled on the fit side alone (fit-side false positives capped at the
  original's, :func:`neudep_utils.dependencies.favourable.relevel`) and judged held out
  (target-class top-1 kept, false positives created per target).
- :func:`without_positives`: the target-class accuracy of dependencies fitted on moments with and
  without the target's own class images, to test whether the few positives in a fit set (about
  0.1% of the rows) are what the dependency lacks.
- :func:`failure_sentence`: the one sentence of the C1/C2 verdict that says which part fails.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .. import covlasso as cl
from .. import dependencies
from ..cache import LogitData
from ..dependencies import DepSet, Fold
from ..dependencies.favourable import decision_rows, relevel
from ..metrics import evaluate
from ..metrics.readings import original_readings, readings
from ..moments import second_moment_from_sums

__all__ = ["READ_METHODS", "failure_sentence", "favourable_table", "reading_rows",
           "reading_table", "without_positives"]

#: What the readings compare, in table order.
READ_METHODS = ("CovLasso support + LS", "random + LS", "dense LS", "original")


def reading_rows(label: str, data: LogitData, folds: Sequence[Fold],
                 by_k: dict[int, dict[str, Sequence[DepSet]]], dense: Sequence[DepSet],
                 targets: np.ndarray, n_boot: int = 1000,
                 summaries: dict[tuple, dict] | None = None) -> tuple[list[dict], dict]:
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
    summaries : dict, optional
        ``{(method, k): Metrics.summary()}`` already measured for these dependencies
        (``k = "all"`` for dense least squares); measured here when missing.

    Returns
    -------
    (list of dict, dict)
        One record per (method, k) with ``top5``, ``auc``, ``ap``, ``separation`` and the
        intervals of ``ap`` and ``separation`` (``k`` is ``"all"`` for dense least squares and
        the original); ``top1`` and ``fp`` (target-class top-1 kept and false positives created
        per target, held out) as fitted and, for the refit and dense least squares,
        ``level_top1``, ``level_fp`` once re-levelled on the fit side (random partners: NaN;
        the original: its own top-1 and false positives); and the per-target
        :class:`~neudep_utils.metrics.readings.Readings` by ``(method, k)``.
    """
    rows, objs = [], {}
    summaries = summaries or {}
    fit_rows = ([decision_rows(data, f) for f in folds]
                if all(f.fit_idx is not None for f in folds) else None)

    def level(method: str, k, deps: Sequence[DepSet]) -> dict:
        sm = summaries.get((method, k)) or evaluate(data, folds, deps).summary()
        out = {"top1": sm["acc_replaced"], "fp": sm["fp_created_per_target"],
               "level_top1": np.nan, "level_fp": np.nan}
        if fit_rows is not None and method != READ_METHODS[1]:  # the level of random partners
            lv = evaluate(data, folds, [relevel(d, r) for d, r in zip(deps, fit_rows,
                                                                      strict=True)]).summary()
            out.update(level_top1=lv["acc_replaced"], level_fp=lv["fp_created_per_target"])
        return out, sm

    def add(method: str, k, r, lv: dict) -> None:
        sm = r.summary()
        objs[(method, k)] = r
        rows.append({"model": label, "method": method, "k": k, **sm, **lv,
                     "ap_ci": r.ci("ap", n_boot), "separation_ci": r.ci("separation", n_boot)})

    base = None
    for k, per in sorted(by_k.items()):
        for method in READ_METHODS[:2]:
            lv, base = level(method, k, per[method])
            add(method, k, readings(data, folds, per[method]), lv)
    lv, _ = level("dense LS", "all", dense)
    add("dense LS", "all", readings(data, folds, dense), lv)
    orig = ({"top1": base["acc_base"], "fp": base["fp_base_per_target"],
             "level_top1": base["acc_base"], "level_fp": base["fp_base_per_target"]}
            if base else {})
    add("original", "all", original_readings(data, folds, targets), orig)
    return rows, objs


#: The favourable-reading table's columns as the book shows them (short, so "similar?" fits).
_FAV_SHORT = {"top-1 kept (%)": "kept %", "unmodified (%)": "unmod. %", "FP / target": "FP",
              "FP unmodified": "FP unmod.", "overall top-1 (%)": "overall %",
              "vs random (points)": "vs random (pts)"}


def favourable_table(rows: pd.DataFrame):
    """The most favourable reading's rows (``single.favourable_rows`` or
    ``cross.favourable_rows``) as the book shows them: short headers, percentages with one
    decimal, false positives with two; the rows themselves (and the results file) unchanged."""
    df = rows.rename(columns=_FAV_SHORT)
    fmt = {c: "{:.1f}" for c in ("kept %", "unmod. %", "overall %") if c in df}
    fmt.update({c: "{:.2f}" for c in ("FP", "FP unmod.") if c in df})
    return df.style.hide(axis="index").format(fmt, na_rep="")


def reading_table(rows: Sequence[dict]):
    """The readings of :func:`reading_rows` (of any number of models or pairs) as the book's
    table: one row per model and k; for AP, the separation d', the target-class top-1 kept once
    re-levelled on the fit side (%) and the false positives per target that costs, the refitted
    dependency (dense least squares at k = "all"), random partners at the same k and the
    unmodified model side by side; an empty cell: not measured (no random partners for "all",
    no fit side to re-level on)."""
    orig = {r["model"]: r for r in rows if r["method"] == "original"}
    rnd = {(r["model"], str(r["k"])): r for r in rows if r["method"] == "random + LS"}

    def cell(r: dict | None, col: str, scale: float, digits: int) -> str:
        v = None if r is None else r.get(col)
        return "" if v is None or not np.isfinite(v) else f"{scale * v:.{digits}f}"

    out = []
    for r in rows:
        if r["method"] not in ("CovLasso support + LS", "dense LS"):
            continue
        o, rr = orig.get(r["model"]), rnd.get((r["model"], str(r["k"])))
        row = {("", "model"): r["model"].replace("_from_", " from "), ("", "k"): str(r["k"])}
        for col, name, scale, digits in (("ap", "AP", 1, 2), ("separation", "d'", 1, 2),
                                         ("level_top1", "re-levelled top-1 %", 100, 1),
                                         ("level_fp", "its FP / target", 1, 2)):
            row[(name, "dep.")] = cell(r, col, scale, digits)
            row[(name, "rand.")] = cell(rr, col, scale, digits)
            row[(name, "orig.")] = cell(o, col, scale, digits)
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

        def downdated(ti, rows=rows, lab=lab, count=count, sum_f=sum_f, sum_ff=sum_ff,
                      center=fold.center):
            own = rows[lab == ti]
            sf = sum_f - own.sum(0)
            S = second_moment_from_sums(count - own.shape[0], sf, sum_ff - own.T @ own,
                                        center=center)
            return S, sf, own.shape[0]

        # the moments without each target's rows (a few O(n^2) numpy passes per target, the
        # bulk of the time) are built two targets ahead in threads (numpy releases the GIL);
        # the solves stay in this thread, in target order: the same numbers as one at a time
        for i, ti, (S, sf, n_own) in _ahead(downdated, t, progress):
            f_t = replace_fold(fold, S, sf / (count - n_own), count - n_own)
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


def _ahead(fn, items: np.ndarray, progress: bool, workers: int = 2):
    """``(i, item, fn(item))`` in order, ``fn`` computed up to ``workers`` items ahead in a
    thread pool (each result is held until its turn; at most ``2 workers`` in flight)."""
    bar = tqdm(total=len(items), desc="fits without the target's images", disable=not progress,
               leave=False)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        window: deque = deque()
        nxt = 0
        for i in range(len(items)):
            while nxt < len(items) and len(window) < 2 * workers:
                window.append(pool.submit(fn, items[nxt]))
                nxt += 1
            res = window.popleft().result()
            bar.update()
            yield i, items[i], res
    bar.close()


def _support_at_k(S: np.ndarray, t: int, k: int, lam0: float, warm: np.ndarray,
                  steps: int = 3, slack: int = 2) -> np.ndarray:
    """The CovLasso support of target ``t`` on ``S`` with a size near ``k``: solved at ``lam0``
    (the lam that gave ``k`` partners on the undowndated moments), then, while the size is more
    than ``slack`` from ``k``, lam is doubled/halved or bisected geometrically (at most
    ``steps`` solves); the size closest to ``k`` is kept (ties: the smaller)."""
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
    """The sentence that says which part of "similar performance" fails: the **separation**
    (average precision against random partners, d' against the original) and the **level**
    (what re-levelling on the fit side alone recovers, and at how many false positives), from
    the reading records at ``k`` of the refitted dependency (``dep``), random partners (``rnd``)
    and the unmodified model (``orig``) of :func:`reading_rows`."""
    ranks = dep["ap"] > 2 * rnd["ap"]
    sep_short = dep["separation"] < 0.75 * orig["separation"]
    head = (f"{label} at k = {k}: the rebuilt logit "
            + ("separates class-i images far better than random partners" if ranks else
               "separates class-i images little better than random partners")
            + f" (average precision {dep['ap']:.2f} vs {rnd['ap']:.2f}; the original "
            f"{orig['ap']:.2f}) " + ("but less than the original" if sep_short else
                                     "about as well as the original")
            + f" (separation d' {dep['separation']:.1f} vs {orig['separation']:.1f})")
    lv_top1, lv_fp = dep.get("level_top1", np.nan), dep.get("level_fp", np.nan)
    if not np.isfinite(lv_top1):
        return head + (f"; top-1 kept {100 * acc_kept:.1f}% vs {100 * acc_base:.1f}% "
                       "unmodified.")
    level_off = lv_top1 - acc_kept > 0.1
    fp_excess = lv_fp > orig.get("level_fp", np.inf)
    lead = ("; it also sits at the wrong level: re-levelled on the fit side alone it keeps "
            if level_off else "; re-levelled on the fit side alone it keeps ")
    text = (head + lead + f"{100 * lv_top1:.1f}% of target-class images (as fitted "
            f"{100 * acc_kept:.1f}%, unmodified {100 * acc_base:.1f}%) at "
            f"{lv_fp:.2f} false positives per target against the original's "
            f"{orig.get('level_fp', np.nan):.2f}")
    if level_off and fp_excess and sep_short:
        return text + (". Both fail: the level alone moves most of the accuracy, and the "
                       "weaker separation makes the re-levelled logit pay for it in false "
                       "positives.")
    if fp_excess:
        return text + ": the separation is what the level cannot buy back."
    return text + "."
