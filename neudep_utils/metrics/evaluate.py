"""Out-of-sample metrics of dependencies, and their bootstrap intervals over eval images.

:func:`evaluate` applies each fold's dependencies to that fold's eval images only and pools the
per-image outcomes into a :class:`Metrics`: relative residual ``1 - R^2``, target-class accuracy
after replacing the target's logit by its dependency (against the unmodified model on the same
images), false positives created, the WEAK metric (overall top-1 after one replacement) and the
achieved k (definitions in :data:`METRIC_DEFINITIONS`). :func:`metric_ci` and
:func:`paired_diff_ci` give 95% percentile bootstrap intervals over eval images (dependencies held
fixed) through :mod:`.bootstrap`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..cache import LogitData
from ..dependencies import DepSet, Fold
from ..timing import count
from .bootstrap import bootstrap_ci

__all__ = ["METRIC_DEFINITIONS", "Metrics", "TargetOutcomes", "evaluate", "metric_ci",
           "metrics_table", "paired_diff_ci", "select_on_fit_side", "similarity_inputs",
           "target_outcomes"]


@dataclass
class Metrics:
    """Out-of-sample metrics of one method at one k, pooled over folds.

    Point estimates (see :data:`METRIC_DEFINITIONS`) and per-image outcomes over the pooled eval
    images (``image``: their indices in the :class:`LogitData`), which :func:`bootstrap_ci`
    resamples. ``relres`` (T,) is each target's out-of-sample 1 - R^2.
    """

    method: str
    k_requested: int | None
    k_mean: float
    relres: np.ndarray
    targets: np.ndarray
    image: np.ndarray
    is_target_image: np.ndarray  # (N_eval,) label is one of the targets
    base_correct: np.ndarray  # (N_eval,) unmodified model correct
    repl_correct: np.ndarray  # (N_eval,) correct after replacing the image's own class logit
    fp_created: np.ndarray  # (N_eval,) number of targets for which the image became a new FP
    weak_correct: np.ndarray  # (N_eval,) fraction of targets whose replacement keeps it correct
    all_repl_correct: np.ndarray  # (N_eval,) correct when all targets are replaced at once
    sse: np.ndarray | None = None  # (N_eval, T) squared errors (kept when keep_errors)
    fval: np.ndarray | None = None  # (N_eval, T) true target logits (kept when keep_errors)
    label: np.ndarray | None = None  # (N_eval,) class of each eval image

    @property
    def n_targets(self) -> int:
        """T."""
        return self.targets.size

    extra_fp_base: float = 0.0  # unmodified model's false positives per target

    def summary(self) -> dict[str, float]:
        """Point estimates as a flat dict (keys of :data:`METRIC_DEFINITIONS`)."""
        ti = self.is_target_image
        T = self.n_targets
        fp_base = self.extra_fp_base
        return {
            "k": self.k_mean,
            "relres_median": float(np.nanmedian(self.relres)),
            "relres_mean": float(np.nanmean(self.relres)),
            "acc_base": float(self.base_correct[ti].mean()),
            "acc_replaced": float(self.repl_correct[ti].mean()),
            "acc_drop": float(self.base_correct[ti].mean() - self.repl_correct[ti].mean()),
            "fp_created_per_target": float(self.fp_created.sum() / T),
            "fp_base_per_target": fp_base,
            "weak_top1": float(self.weak_correct.mean()),
            "weak_base_top1": float(self.base_correct.mean()),
            "all_replaced_top1": float(self.all_repl_correct.mean()),
        }


#: What each key of :meth:`Metrics.summary` measures (written next to the numbers).
METRIC_DEFINITIONS = {
    "k": "mean support size (number of partner logits) over targets",
    "relres_median": "median over targets of the out-of-sample relative residual 1 - R^2 "
                     "(squared error of the dependency / variance of the target logit, on eval images)",
    "relres_mean": "mean over targets of the out-of-sample 1 - R^2",
    "acc_base": "unmodified model: top-1 accuracy on eval images whose class is a target",
    "acc_replaced": "target-class accuracy after replacement: on eval images of class i, is the image "
                    "still classified i when logit i is replaced by its dependency (pooled over targets)",
    "acc_drop": "acc_base - acc_replaced (accuracy points lost by the replacement, same images)",
    "fp_created_per_target": "false positives created: eval images of other classes that are predicted "
                             "i after replacing logit i but were not before, summed, per target",
    "fp_base_per_target": "false positives of the unmodified model: eval images of other classes "
                          "predicted i, per target",
    "weak_top1": "WEAK metric: overall top-1 on all eval images after replacing one target's logit, "
                 "averaged over targets (barely moves: 1 of 1000 logits)",
    "weak_base_top1": "unmodified overall top-1 on the same eval images",
    "all_replaced_top1": "top-1 when every target logit is replaced by its dependency at once",
}


def evaluate(data: LogitData, folds: Sequence[Fold], deps: Sequence[DepSet], *,
             keep_errors: bool = False, chunk: int = 2048) -> Metrics:
    """Out-of-sample metrics of ``deps[f]`` fitted on ``folds[f]``, pooled over folds.

    Targets are classifier classes (``targets < data.n_classes``); the classifier is the first
    ``n_classes`` columns of ``data``'s centre view. Each fold's dependencies are applied to its
    own eval images only. ``keep_errors`` keeps the per-image squared errors (for bootstrapping
    the relative residual).
    """
    if len(folds) != len(deps):
        raise ValueError("one DepSet per fold")
    t = deps[0].targets
    for d in deps:
        if not np.array_equal(d.targets, t):
            raise ValueError("all folds must have the same targets")
    nC = data.n_classes
    if t.max() >= nC:
        raise ValueError("evaluate: targets must be classifier classes (< n_classes)")
    T = t.size
    is_tgt_class = np.zeros(nC, dtype=bool)
    is_tgt_class[t] = True
    pos_of = np.full(nC, -1)
    pos_of[t] = np.arange(T)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in (
        "image", "base", "repl", "fp", "weak", "allr", "sse", "fval")}
    fp_base = 0
    count("evaluations (target x eval image)", T * sum(f.eval_idx.size for f in folds))
    for fold, dep in zip(folds, deps, strict=True):
        for s in range(0, fold.eval_idx.size, chunk):
            idx = fold.eval_idx[s:s + chunk]
            X = data.logits[idx, 0].astype(np.float64)
            F = X[:, :nC]
            y = data.labels[idx]
            P = dep.predict(X)  # (B, T)
            ft = F[:, t]
            arg = F.argmax(1)
            srt = np.partition(F, nC - 2, axis=1)
            top1v, top2v = srt[:, -1], srt[:, -2]
            # max over j != i of F_j, for each target i
            max_other = np.where(arg[:, None] == t[None], top2v[:, None], top1v[:, None])
            wins = P > max_other  # replaced logit i becomes the argmax
            base_pred_i = arg[:, None] == t[None]
            own = y[:, None] == t[None]
            # target-class accuracy after replacing the image's own class logit
            has = is_tgt_class[y]
            col = np.where(has, pos_of[y], 0)
            repl = np.where(has, wins[np.arange(idx.size), col], False)
            # false positives created: other-class images that newly become predicted i
            fp = (wins & ~own & ~base_pred_i).sum(1)
            fp_base += int((base_pred_i & ~own).sum())
            # weak: correct after replacing target i, averaged over targets
            base_ok = arg == y
            fy = F[np.arange(idx.size), y]
            # label == i: correct iff wins; label != i: correct iff y is argmax of the modified row
            other_ok = np.where(base_ok[:, None], P < fy[:, None],
                                (arg[:, None] == t[None]) & (F[np.arange(idx.size), y][:, None] >= top2v[:, None])
                                & (P < fy[:, None]))
            weak = np.where(own, wins, other_ok).mean(1)
            # everything replaced at once
            G = F.copy()
            G[:, t] = P
            allr = G.argmax(1) == y
            parts["image"].append(idx)
            parts["base"].append(base_ok)
            parts["repl"].append(repl)
            parts["fp"].append(fp)
            parts["weak"].append(weak)
            parts["allr"].append(allr)
            parts["sse"].append(((ft - P) ** 2).astype(np.float32 if not keep_errors else np.float64))
            parts["fval"].append(ft)
    image = np.concatenate(parts["image"])
    sse = np.concatenate(parts["sse"])
    fval = np.concatenate(parts["fval"])
    sst = ((fval - fval.mean(0)) ** 2).sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        relres = np.where(sst > 0, sse.sum(0) / sst, np.nan)
    m = Metrics(
        method=deps[0].method, k_requested=deps[0].k_requested,
        k_mean=float(np.mean([d.k.mean() for d in deps])), relres=relres, targets=t, image=image,
        is_target_image=is_tgt_class[data.labels[image]],
        base_correct=np.concatenate(parts["base"]), repl_correct=np.concatenate(parts["repl"]),
        fp_created=np.concatenate(parts["fp"]), weak_correct=np.concatenate(parts["weak"]),
        all_repl_correct=np.concatenate(parts["allr"]),
        sse=sse if keep_errors else None, fval=fval if keep_errors else None,
        label=data.labels[image])
    m.extra_fp_base = fp_base / T
    return m


def metrics_table(rows: Iterable[tuple[dict, Metrics]]) -> pd.DataFrame:
    """A tidy DataFrame: one row per (labels dict, :class:`Metrics`) with the summary columns."""
    return pd.DataFrame([{**lab, "method": m.method, "k_requested": m.k_requested, **m.summary()}
                         for lab, m in rows])


def metric_ci(m: Metrics, key: str, n_boot: int = 1000, seed: int = 0,
              level: float = 0.95) -> tuple[float, float]:
    """Bootstrap interval (eval images resampled) of one :meth:`Metrics.summary` key.

    Supported: ``acc_replaced``, ``acc_base``, ``acc_drop``, ``fp_created_per_target``,
    ``weak_top1``, ``all_replaced_top1`` and, when ``evaluate(keep_errors=True)``,
    ``relres_median``. The dependencies are held fixed (eval-sampling uncertainty only).
    """
    ti = m.is_target_image.astype(float)
    rc, bc = m.repl_correct.astype(float), m.base_correct.astype(float)
    T = m.n_targets
    fns = {
        "acc_replaced": lambda W: (W @ (rc * ti)) / (W @ ti),
        "acc_base": lambda W: (W @ (bc * ti)) / (W @ ti),
        "acc_drop": lambda W: (W @ ((bc - rc) * ti)) / (W @ ti),
        "fp_created_per_target": lambda W: (W @ m.fp_created.astype(float)) / T,
        "weak_top1": lambda W: (W @ m.weak_correct) / W.sum(1),
        "all_replaced_top1": lambda W: (W @ m.all_repl_correct.astype(float)) / W.sum(1),
    }
    if key == "relres_median":
        if m.sse is None:
            raise ValueError("relres_median needs evaluate(..., keep_errors=True)")

        def rr(W):
            sw = W.sum(1, keepdims=True)
            s1 = W @ m.fval
            s2 = W @ (m.fval ** 2)
            sst = s2 - s1 ** 2 / sw
            with np.errstate(divide="ignore", invalid="ignore"):
                r = (W @ m.sse) / np.where(sst > 0, sst, np.nan)
            return np.nanmedian(r, axis=1)

        fns[key] = rr
    if key not in fns:
        raise ValueError(f"no bootstrap for {key!r}; supported: {sorted(fns)}")
    return bootstrap_ci(fns[key], m.image.size, n_boot, seed, level)


def paired_diff_ci(a: Metrics, b: Metrics, key: str = "acc_replaced", n_boot: int = 1000,
                   seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """``a - b`` of a per-image metric on the same eval images, with a paired bootstrap interval.

    Supported keys: ``acc_replaced``, ``fp_created_per_target``, ``weak_top1``. Returns
    (difference, low, high).
    """
    if not np.array_equal(a.image, b.image):
        raise ValueError("paired_diff_ci needs the same eval images in the same order")
    ti = a.is_target_image.astype(float)
    if key == "acc_replaced":
        x = (a.repl_correct.astype(float) - b.repl_correct.astype(float)) * ti

        def f(W):
            return (W @ x) / (W @ ti)
        point = float(x.sum() / ti.sum())
    elif key == "fp_created_per_target":
        x = (a.fp_created - b.fp_created).astype(float)

        def f(W):
            return (W @ x) / a.n_targets
        point = float(x.sum() / a.n_targets)
    elif key == "weak_top1":
        x = a.weak_correct - b.weak_correct

        def f(W):
            return (W @ x) / W.sum(1)
        point = float(x.mean())
    else:
        raise ValueError(f"unsupported key {key!r}")
    lo, hi = bootstrap_ci(f, a.image.size, n_boot, seed, level)
    return point, lo, hi


def similarity_inputs(m: Metrics, random: Metrics | None, n_boot: int = 1000,
                      seed: int = 0) -> dict:
    """The inputs of :func:`neudep_utils.verdicts.similar_performance` for one method at one k:
    the 95% interval of the accuracy drop, the false positives created and made by the
    unmodified model (per target), and the paired difference with the random-partner baseline
    ``random`` as ``(point, lo, hi)`` (``None`` when ``random`` is None)."""
    s = m.summary()
    vs = None if random is None else paired_diff_ci(m, random, "acc_replaced", n_boot, seed)
    return {"drop_ci": metric_ci(m, "acc_drop", n_boot, seed),
            "fp_created": s["fp_created_per_target"], "fp_base": s["fp_base_per_target"],
            "vs_random": vs}


@dataclass
class TargetOutcomes:
    """Per-target held-out outcomes: ``targets`` (T,), ``n_images`` (T,) eval images of each
    target's class, ``n_replaced`` / ``n_base`` (T,) of them classified correctly after the
    replacement / by the unmodified model, and ``k`` (T,) the support size used (mean over
    folds). After :func:`select_on_fit_side`, ``fit_acc`` / ``fit_relres`` (T,) are the chosen
    dependency's target-class accuracy and 1 - R^2 on the fit images (mean over folds)."""

    targets: np.ndarray
    n_images: np.ndarray
    n_replaced: np.ndarray
    n_base: np.ndarray
    k: np.ndarray
    fit_acc: np.ndarray | None = None
    fit_relres: np.ndarray | None = None

    def top_selected(self, m: int, n_boot: int = 1000, seed: int = 0) -> dict:
        """The ``m`` targets with the best fit-side scores (accuracy, then lower 1 - R^2) and
        their pooled held-out target-class accuracy: after replacement, unmodified, and the drop
        with a 95% bootstrap interval over the selected targets (their images move together)."""
        if self.fit_acc is None:
            raise ValueError("top_selected needs outcomes from select_on_fit_side")
        has = np.flatnonzero(self.n_images > 0)
        order = np.lexsort((self.fit_relres[has], -self.fit_acc[has]))
        sel = has[order[:m]]
        n, rep, base = self.n_images[sel], self.n_replaced[sel], self.n_base[sel]

        def drop(W):
            return (W @ (base - rep)) / (W @ n)

        return {"targets": self.targets[sel], "n_images": int(n.sum()),
                "acc_replaced": float(rep.sum() / n.sum()), "acc_base": float(base.sum() / n.sum()),
                "drop": float((base - rep).sum() / n.sum()),
                "drop_ci": bootstrap_ci(drop, sel.size, n_boot, seed)}

    def keep_at_least(self, share: float) -> tuple[int, int]:
        """(targets whose replaced logit keeps at least ``share`` of their eval images correct,
        targets for which the unmodified model does), among targets with eval images."""
        has = self.n_images > 0
        rep = self.n_replaced[has] >= share * self.n_images[has] - 1e-12
        base = self.n_base[has] >= share * self.n_images[has] - 1e-12
        return int(rep.sum()), int(base.sum())


def target_outcomes(m: Metrics, k: np.ndarray | None = None) -> TargetOutcomes:
    """Per-target counts of a :class:`Metrics` (images of class ``t``, correct after replacing
    logit ``t``, correct unmodified)."""
    if m.label is None:
        raise ValueError("target_outcomes needs Metrics from evaluate() (with labels)")
    pos = np.full(int(max(m.label.max(initial=0), m.targets.max(initial=0))) + 1, -1)
    pos[m.targets] = np.arange(m.n_targets)
    p = pos[m.label]
    own = p >= 0
    T = m.n_targets

    def count(x):
        return np.bincount(p[own], weights=x[own].astype(float), minlength=T)

    return TargetOutcomes(m.targets, count(np.ones_like(p)), count(m.repl_correct),
                          count(m.base_correct),
                          np.full(T, m.k_mean) if k is None else np.asarray(k, float))


def select_on_fit_side(fit_side: Sequence[dict[int, Metrics]],
                       held_out: Sequence[dict[int, Metrics]],
                       ks: Sequence[int]) -> TargetOutcomes:
    """The existential reading, judged out of sample: for every fold and target, choose the
    support size ``k`` in ``ks`` whose dependency keeps most of the target's **fit** images
    correct after replacement (ties: lower fit-side 1 - R^2, then the smaller k), then count the
    target's **held-out** images of that fold with that dependency; pooled over folds.

    ``fit_side[f][k]``: :func:`evaluate` of fold ``f``'s dependencies at ``k`` on the fold's own
    fit images; ``held_out[f][k]``: on its eval images (one fold each).
    """
    ks = sorted(ks)
    parts = []
    for fs, ho in zip(fit_side, held_out, strict=True):
        fo = [target_outcomes(fs[k]) for k in ks]
        acc = np.stack([o.n_replaced / np.maximum(o.n_images, 1) for o in fo])  # (K, T)
        rr = np.stack([np.nan_to_num(fs[k].relres, nan=np.inf) for k in ks])
        kidx = np.repeat(np.arange(len(ks))[:, None], acc.shape[1], axis=1)
        # lexicographic: highest fit-side accuracy, then lowest fit-side 1 - R^2, then small k
        best = np.lexsort((kidx, rr, -acc), axis=0)[0]
        ho_k = [target_outcomes(ho[k]) for k in ks]
        pick = np.arange(acc.shape[1])
        parts.append(TargetOutcomes(
            ho_k[0].targets, ho_k[0].n_images,
            np.stack([o.n_replaced for o in ho_k])[best, pick], ho_k[0].n_base,
            np.asarray(ks, float)[best], acc[best, pick], rr[best, pick]))
    if not parts:
        raise ValueError("select_on_fit_side needs at least one fold")
    return TargetOutcomes(parts[0].targets, sum(p.n_images for p in parts),
                          sum(p.n_replaced for p in parts), sum(p.n_base for p in parts),
                          np.mean([p.k for p in parts], axis=0),
                          np.mean([p.fit_acc for p in parts], axis=0),
                          np.mean([p.fit_relres for p in parts], axis=0))
