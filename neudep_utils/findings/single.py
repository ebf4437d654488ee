"""Notebook 01 (C1, C6a), single-model dependencies: settings, fits, out-of-sample metrics, the
"similar performance" checks and the tables the notebook shows.

The notebook reads as: resolve the settings (:func:`settings`), load the cached logits and folds
(:func:`load`), fit every method at every support size (:func:`fit_methods`), evaluate them out
of sample (:func:`evaluate_methods`), apply the rule (:class:`Checks`), then the readings that say
why (:mod:`.why`) and the semantics (:mod:`.semantics`). The rule it applies is tested in
``tests/test_verdicts.py``, the readings and the why in ``tests/test_readings.py`` and
``tests/test_findings_why.py``; the notebook itself runs end to end in
``tests/test_full_profile.py`` and in every ``make book``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .. import cache, dependencies, profiles
from ..cache import LogitData
from ..dependencies import DepSet, Fold, favourable
from ..images import imagenet_classes
from ..metrics import (
    Metrics,
    evaluate,
    metric_ci,
    select_on_fit_side,
    similarity_inputs,
    target_outcomes,
)
from ..models import architecture, get_spec, load_model, recipe
from ..verdicts.rules import SimilarCheck, similar_performance
from .scaling import fit_saturating, learning_curve, split_seeds, width_curve
from .why import READ_METHODS, reading_rows

__all__ = ["DEP_METHODS", "METHODS", "PARAMETERS", "Checks", "Fits", "Settings",
           "evaluate_favourable", "favourable_fits", "favourable_ks", "favourable_outcomes",
           "favourable_rows",
           "cache_folder", "certificate_table", "data_table", "evaluate_methods",
           "learning", "macaw_panels", "metric_tables", "moment_variant_rows", "parameters",
           "reading_tables", "split_seed_table", "width_rows", "trained_width_rows", "TRAINED_WIDTHS",
           "existential", "existential_table", "fit_methods", "headline_rows", "load", "macaw_rows", "seed_values",
           "settings",
           "train_fold", "weak_rows"]

#: The dependency and its equal-k baselines, in the order of every table and figure.
METHODS = ("CovLasso", "CovLasso support + LS", "top-|corr| + LS", "random + LS")
#: The two ways a CovLasso dependency counts in the rule: its coefficients or their refit.
DEP_METHODS = METHODS[:2]


#: Notebook 01's settings: one declaration per parameter (:class:`~neudep_utils.profiles.SingleModelSettings`).
Settings = profiles.SingleModelSettings
#: Notebook 01's parameters besides ``profile`` and ``output_dir`` (its ``parameters`` cell).
PARAMETERS = tuple(n for n in Settings.names() if n != "profile")


def settings(profile: str = "default", **params) -> Settings:
    """Notebook 01's settings: the profile's, with the notebook's ``params`` applied (``None``
    keeps the profile's value; unknown names and wrong types raise
    :class:`~neudep_utils._params.ParameterError`).

    Parameters
    ----------
    profile : str
        ``smoke``, ``default`` or ``full``.
    **params
        Any field of :class:`~neudep_utils.profiles.SingleModelSettings`.

    Returns
    -------
    Settings
    """
    return profiles.get_profile(profile).single.with_params(**params)


def train_fold(model: str, n_eval: int, center: bool) -> list[Fold]:
    """The full profile's fold: moments streamed over ``$NEUDEP_IMAGENET/train``, every
    validation image an eval image."""
    root = os.environ.get("NEUDEP_IMAGENET")
    if not root:
        raise ValueError("fit_source='moments' needs NEUDEP_IMAGENET (holding train/)")
    mom = cache.read_entry(model, os.path.join(root, "train"), 0, mode="moments",
                           progress=False).moments
    return [dependencies.fold_from_moments(mom.count, mom.sum_f, mom.sum_ff, np.arange(n_eval),
                                           center)]


def load(s: Settings) -> tuple[dict[str, LogitData], dict[str, list[Fold]]]:
    """Each model's cached logits on the settings' folders and its folds (cross-fitting, or the
    streamed train moments of the full profile)."""
    data, folds = {}, {}
    for m in s.models:
        data[m] = cache.load_logits(m, s.folders, s.fit_views, features=m in s.width_models)
        folds[m] = (train_fold(m, data[m].n_images, s.center) if s.fit_source == "moments"
                    else dependencies.crossfit(data[m], s.n_folds, s.split_seed, center=s.center))
    return data, folds


@dataclass
class Fits:
    """Every fitted dependency: ``covlasso[model][fold][k]``, ``by_method[(model, method, k)]``
    (one DepSet per fold) and ``dense[model]`` (dense least squares per fold)."""

    covlasso: dict[str, list[dict[int, DepSet]]]
    by_method: dict[tuple[str, str, int], list[DepSet]]
    dense: dict[str, list[DepSet]]


def fit_methods(s: Settings, folds: dict[str, list[Fold]], cache_dir: str | os.PathLike[str],
                progress: bool = True) -> Fits:
    """CovLasso at every k of the settings (cached on disk), its refit and the equal-k baselines
    (seeded by ``baseline_seed + fold``) and dense least squares, for every model and fold."""
    cov, by, dense = {}, {}, {}
    jobs = [(m, f) for m in s.models for f in folds[m]]
    for m, f in tqdm(jobs, desc="CovLasso fits (model, fold)", disable=not progress):
        fd = dependencies.fit_covlasso_k_cached(f, s.ks, s.targets, cache_dir=cache_dir)
        cov.setdefault(m, []).append(fd)
    for m in s.models:
        for k in s.ks:
            per = [fd[k] for fd in cov[m]]
            bl = [dependencies.baselines(f, d, seed=s.baseline_seed + i)
                  for i, (f, d) in enumerate(zip(folds[m], per, strict=True))]
            by[(m, "CovLasso", k)] = per
            for meth in METHODS[1:]:
                by[(m, meth, k)] = [b[meth] for b in bl]
        dense[m] = [dependencies.dense_least_squares(f, s.targets) for f in folds[m]]
    return Fits(cov, by, dense)


def evaluate_methods(s: Settings, data: dict[str, LogitData], folds: dict[str, list[Fold]],
                     fits: Fits) -> tuple[dict[tuple[str, str, int], Metrics], dict[str, Metrics]]:
    """Out-of-sample :class:`~neudep_utils.metrics.Metrics` of every (model, method, k), and of
    dense least squares per model. Squared errors are kept at ``k_headline`` (for intervals of
    the relative residual)."""
    mets = {key: evaluate(data[key[0]], folds[key[0]], deps, keep_errors=key[2] == s.k_headline)
            for key, deps in fits.by_method.items()}
    dense = {m: evaluate(data[m], folds[m], fits.dense[m]) for m in s.models}
    return mets, dense


class Checks:
    """The "similar performance" rule (:data:`~neudep_utils.verdicts.rules.SIMILAR`) of every
    key of ``mets``, computed once: ``checks(*key)`` -> ``(summary, drop_ci, vs_random,
    SimilarCheck)`` (``vs_random`` is ``(point, lo, hi)``, ``None`` for the random baseline).

    Keys are tuples with the method at position ``method_pos`` (notebook 01: ``(model, method,
    k)``; notebook 02: ``(A, B, candidates, method, k)``); the random baseline of a key is the
    same key with the method ``random_of[method]`` (default ``"random + LS"``; ``None``: the
    method is itself a random baseline).
    """

    def __init__(self, mets: dict[tuple, Metrics], n_boot: int, method_pos: int = 1,
                 random_of: dict[str, str | None] | None = None):
        self.mets, self.n_boot, self.pos = mets, n_boot, method_pos
        self.random_of = random_of or {"random + LS": None}
        self._memo: dict[tuple, tuple] = {}

    def __call__(self, *key) -> tuple[dict, tuple, tuple | None, SimilarCheck]:
        if key not in self._memo:
            meth = key[self.pos]
            rmeth = self.random_of.get(meth, "random + LS")
            rkey = key[:self.pos] + (rmeth,) + key[self.pos + 1:]
            rand = None if rmeth is None else self.mets[rkey]
            x = similarity_inputs(self.mets[key], rand, self.n_boot, 0)
            vs = x["vs_random"]
            sim = similar_performance(x["drop_ci"], x["fp_created"], x["fp_base"],
                                      vs and vs[1:])
            self._memo[key] = (self.mets[key].summary(), x["drop_ci"], vs, sim)
        return self._memo[key]

    def holds(self, m: str, ks: Iterable[int]) -> bool:
        """Notebook 01: whether some dependency method of model ``m`` achieves similar
        performance at some k in ``ks``."""
        return any(self(m, meth, k)[3].holds for k in ks for meth in DEP_METHODS)

    def any_holds(self, keys: Iterable[tuple]) -> bool:
        """Whether the rule holds for any of ``keys`` (that exist in ``mets``)."""
        return any(self(*k)[3].holds for k in keys if k in self.mets)


def favourable_ks(s: Settings) -> tuple[int, ...]:
    """The support sizes of the most favourable reading: the headline k and
    :data:`~neudep_utils.dependencies.favourable.KS` where fitted."""
    return tuple(sorted({s.k_headline} | {k for k in favourable.KS if k in s.ks}))


def favourable_fits(s: Settings, data: dict[str, LogitData], folds: dict[str, list[Fold]],
                    fits: Fits, progress: bool = True) -> dict[tuple[str, str, int], list[DepSet]]:
    """The most favourable linear reading (:mod:`neudep_utils.dependencies.favourable`) of every
    model at :func:`favourable_ks`: ``{(model, reading, k): [DepSet per fold]}``, the readings
    and their random baselines fitted on each fold's fit rows (none for streamed moments)."""
    out: dict[tuple[str, str, int], list[DepSet]] = {}
    jobs = [(m, k) for m in s.models for k in favourable_ks(s)
            if folds[m][0].fit_idx is not None]
    for m, k in tqdm(jobs, desc="most favourable reading (model, k)", disable=not progress):
        for i, f in enumerate(folds[m]):
            got = favourable.favourable_set(data[m], f, fits.by_method[(m, DEP_METHODS[1], k)][i],
                                            fits.by_method[(m, "random + LS", k)][i])
            for meth, dep in got.items():
                out.setdefault((m, meth, k), []).append(dep)
    return out


def evaluate_favourable(data: dict[str, LogitData], folds: dict[str, list[Fold]],
                        fav: dict[tuple[str, str, int], list[DepSet]]
                        ) -> dict[tuple[str, str, int], Metrics]:
    """Out-of-sample :class:`~neudep_utils.metrics.Metrics` of every most favourable reading of
    :func:`favourable_fits` (keys ``(model, reading, k)``)."""
    return {key: evaluate(data[key[0]], folds[key[0]], deps) for key, deps in fav.items()}


def favourable_rows(s: Settings, checks: Checks, fav_checks: Checks) -> list[dict]:
    """One row per model, k and reading of the most favourable reading, beside the least-squares
    refit and the unmodified model: target-class top-1 kept, false positives created per target,
    overall top-1 after one replacement, the gain over random partners fitted the same way and
    the rule's outcome."""
    rows = []
    for m in s.models:
        for k in favourable_ks(s):
            if (m, favourable.RELEVEL, k) not in fav_checks.mets:
                continue
            for meth, ch in ((DEP_METHODS[1], checks), *((r, fav_checks)
                                                         for r in favourable.READINGS)):
                sm, _, vs, sim = ch(m, meth, k)
                rows.append({
                    "model": s.short[m], "k": k, "weights": meth,
                    "top-1 kept (%)": round(100 * sm["acc_replaced"], 1),
                    "unmodified (%)": round(100 * sm["acc_base"], 1),
                    "FP / target": round(sm["fp_created_per_target"], 2),
                    "FP unmodified": round(sm["fp_base_per_target"], 2),
                    "overall top-1 (%)": round(100 * sm["weak_top1"], 2),
                    "vs random (points)": "" if vs is None else _fmt_ci(vs[0], vs[1:]),
                    "similar?": "yes" if sim.holds else "no"})
    return rows


def favourable_outcomes(s: Settings, fav_checks: Checks) -> tuple[dict[str, bool],
                                                                  dict[str, bool]]:
    """Per model (short name): whether some reading of the most favourable reading achieves
    similar performance at the headline k, and at some measured ``k <= k_sparse``."""
    ks = favourable_ks(s)
    head, sparse = {}, {}
    for m in s.models:
        keys = [(m, r, k) for r in favourable.READINGS for k in ks]
        if not any(key in fav_checks.mets for key in keys):
            continue
        head[s.short[m]] = fav_checks.any_holds([(m, r, s.k_headline)
                                                 for r in favourable.READINGS])
        sparse[s.short[m]] = fav_checks.any_holds([(m, r, k) for r in favourable.READINGS
                                                   for k in ks if k <= s.c1_rule.k_sparse])
    return head, sparse


def _fmt_ci(value: float, ci: Sequence[float] | None, scale: float = 100,
            digits: int = 1) -> str:
    f = f"{{:.{digits}f}}"
    if ci is None:
        return f.format(value * scale)
    return f"{f.format(value * scale)} [{f.format(ci[0] * scale)}, {f.format(ci[1] * scale)}]"


#: Short method names for the tables (the figures and results keep :data:`METHODS`).
SHORT_METHOD = {"CovLasso": "CovLasso", "CovLasso support + LS": "CovLasso + LS refit",
                "top-|corr| + LS": "top-|corr| + LS", "random + LS": "random + LS",
                "dense LS (all partners)": "dense LS (all)"}


def headline_rows(s: Settings, mets: dict, dense: dict[str, Metrics], checks: Checks
                  ) -> list[dict]:
    """The headline table at ``k_headline``: per model and method, 1 - R^2 with its interval,
    target-class accuracy after replacement beside the unmodified model's, the drop and the
    gain over random partners with intervals, false positives created beside the unmodified
    model's, the rule's outcome and the weak metric (columns short enough for the book's
    column; an empty cell: the column does not apply)."""
    rows = []
    for m in s.models:
        for meth in (*METHODS, "dense LS (all partners)"):
            is_dense = meth.startswith("dense")
            sm, drop, vs, sim = ((dense[m].summary(), None, None, None) if is_dense
                                 else checks(m, meth, s.k_headline))
            rr = None if is_dense else metric_ci(mets[(m, meth, s.k_headline)],
                                                 "relres_median", s.n_boot, 0)
            rows.append({
                "model": s.short[m], "method": SHORT_METHOD[meth], "k": f"{sm['k']:.1f}",
                "1 - R²": _fmt_ci(sm["relres_median"], rr, 1, 3),
                "kept % (unmod.)": f"{100 * sm['acc_replaced']:.1f} "
                                   f"({100 * sm['acc_base']:.1f})",
                "drop, points": _fmt_ci(sm["acc_drop"], drop),
                "vs random, points": "" if vs is None else _fmt_ci(vs[0], vs[1:]),
                "FP / target (unmod.)": f"{sm['fp_created_per_target']:.3f} "
                                        f"({sm['fp_base_per_target']:.3f})",
                "similar?": "" if sim is None else ("yes" if sim.holds else "no"),
                "WEAK top-1 %": f"{100 * sm['weak_top1']:.2f}"})
    return rows


def existential_table(rows: list[dict]) -> list[dict]:
    """:func:`existential`'s rows for the book: counts beside the unmodified model's, and the
    top categories' pooled accuracy and drop with its interval."""
    return [{"model": r["model"], "method": SHORT_METHOD[r["method"]], "k <=": r["k <="],
             "keeping >= 50% (unmod.)": f"{r['categories keeping >= 50%']} "
                                        f"({r['unmodified >= 50%']})",
             ">= 80% (unmod.)": f"{r['>= 80%']} ({r['unmodified >= 80%']})",
             f"top {r['n_top']}: kept % (unmod.)": f"{r['top: acc. after (%)']:.1f} "
                                                   f"({r['top: unmodified (%)']:.1f})",
             "top: drop, points": _fmt_ci(r["drop"], r["drop_ci"])} for r in rows]


def macaw_rows(s: Settings, data: dict, folds: dict, fits: Fits) -> list[dict]:
    """The paper's example: macaw's dependency at k = 3 and ``k_headline`` per model (partners
    and coefficients fitted on fold 0), its out-of-sample 1 - R^2 and the held-out macaw images
    kept."""
    name = imagenet_classes().short_name
    ti = int(np.flatnonzero(s.targets == s.macaw)[0])
    rows = []
    for m in s.models:
        for k in sorted({3, s.k_headline} & set(s.ks)):
            dep = fits.covlasso[m][0][k]
            met = evaluate(data[m], folds[m], fits.by_method[(m, "CovLasso", k)])
            o = target_outcomes(met)
            rows.append({
                "model": s.short[m], "k": int(dep.k[ti]), "intercept": dep.intercept[ti],
                "partners (coefficient), fold 0": ", ".join(
                    f"{name(c)} ({v:+.3f})" for c, v in dep.partners(ti)),
                "out-of-sample 1 - R^2": met.relres[ti],
                "macaw images kept (unmodified)":
                    f"{o.n_replaced[ti]:.0f} of {o.n_images[ti]:.0f} ({o.n_base[ti]:.0f})"})
    return rows


def existential(s: Settings, data: dict, folds: dict, fits: Fits, top_share: float
                ) -> list[dict]:
    """The existential reading: per model, method and k bound (``k_headline`` and 50), the
    categories chosen on the fit side (:func:`~neudep_utils.metrics.select_on_fit_side`) judged
    on held-out images; counts keeping >= 50% / >= 80% against the unmodified model's, and the
    ``top_share`` best fit-side categories' pooled held-out drop with its interval."""
    ex_ks = {s.k_headline: [k for k in s.ks if k <= s.k_headline],
             50: [k for k in s.ks if k <= 50]}
    n_top = max(int(round(top_share * s.targets.size)), 1)
    rows = []
    for m in s.models:
        if folds[m][0].fit_idx is None:  # streamed train moments: no per-image fit side
            continue
        for meth in DEP_METHODS:
            held, fit_side = [], []
            for i, f in enumerate(folds[m]):
                dd = {k: fits.by_method[(m, meth, k)][i] for k in ex_ks[50]}
                held.append({k: evaluate(data[m], [f], [d]) for k, d in dd.items()})
                own = replace(f, eval_idx=f.fit_idx)
                fit_side.append({k: evaluate(data[m], [own], [d]) for k, d in dd.items()})
            for kmax, kk in ex_ks.items():
                o = select_on_fit_side(fit_side, held, kk)
                top = o.top_selected(n_top, s.n_boot, 0)
                (k50, b50), (k80, b80) = o.keep_at_least(0.5), o.keep_at_least(0.8)
                rows.append({"model": s.short[m], "method": meth, "k <=": kmax,
                             "categories keeping >= 50%": k50, ">= 80%": k80,
                             "unmodified >= 50%": b50, "unmodified >= 80%": b80,
                             "n_top": n_top, "top: acc. after (%)": 100 * top["acc_replaced"],
                             "top: unmodified (%)": 100 * top["acc_base"],
                             "drop": top["drop"], "drop_ci": top["drop_ci"]})
    return rows


def weak_rows(s: Settings, mets: dict) -> list[dict]:
    """The weak reading: overall top-1 after one replacement against the unmodified top-1 and
    the target-class accuracy, at ``k_headline``."""
    return [{"model": s.short[m], "k": s.k_headline,
             "WEAK top-1 after one replacement (%)": 100 * sm["weak_top1"],
             "unmodified top-1 (%)": 100 * sm["weak_base_top1"],
             "target-class acc. after replacement (%)": 100 * sm["acc_replaced"]}
            for m in s.models for sm in [mets[(m, "CovLasso", s.k_headline)].summary()]]


def moment_variant_rows(s: Settings, data: dict, folds: dict, fits: Fits,
                        cache_dir: str | os.PathLike[str]) -> list[dict]:
    """The first model's headline metrics with the other moment matrix (second moment instead
    of the centred covariance, or the reverse), beside the main one."""
    m0 = s.models[0]
    if folds[m0][0].fit_idx is None:
        return []
    alt_folds = dependencies.crossfit(data[m0], s.n_folds, s.split_seed, center=not s.center)
    alt = [dependencies.fit_covlasso_k_cached(f, (s.k_headline,), s.targets,
                                              cache_dir=cache_dir)[s.k_headline]
           for f in alt_folds]
    alt_label = ("second moment E[ff^T], no intercept" if s.center
                 else "centred covariance + intercept")
    rows = []
    for lab, fl, ds in ((s.moment, folds[m0], fits.by_method[(m0, "CovLasso", s.k_headline)]),
                        (alt_label, alt_folds, alt)):
        refit = [dependencies.least_squares_on_support(f, d.targets, d.cols)
                 for f, d in zip(fl, ds, strict=True)]
        for meth, dd in (("CovLasso", ds), ("CovLasso support + LS", refit)):
            sm = evaluate(data[m0], fl, dd).summary()
            rows.append({"moments": lab, "method": SHORT_METHOD[meth], "k": f"{sm['k']:.1f}",
                         "1 - R² (median)": f"{sm['relres_median']:.3f}",
                         "kept % (unmod.)": f"{100 * sm['acc_replaced']:.1f} "
                                            f"({100 * sm['acc_base']:.1f})",
                         "FP / target": f"{sm['fp_created_per_target']:.3f}"})
    return rows


def seed_values(seeds_tab, short: dict[str, str]):
    """``lookup(model, method, key)`` -> that metric over the split seeds in seed order (``None``
    without split seeds), from :func:`neudep_utils.findings.scaling.split_seeds` rows with a
    ``model`` column of short names."""
    def lookup(m: str, method: str, key: str) -> list[float] | None:
        if seeds_tab is None or len(seeds_tab) == 0:
            return None
        sel = seeds_tab[(seeds_tab.model == short[m]) & (seeds_tab.method == method)]
        return sel.sort_values("seed")[key].tolist() or None

    return lookup


def certificate_table(s: Settings, fits: Fits):
    """Per model (rows): the mean achieved support size at each requested k (columns), the
    smallest share of targets with exactly k partners over the ks, and the largest relative
    duality gap over the ks."""
    rows = []
    for m in s.models:
        row: dict = {"model": s.short[m]}
        shares, gaps = [], []
        for k in s.ks:
            row[f"k = {k}"] = np.mean([fd[k].k.mean() for fd in fits.covlasso[m]])
            shares.append(np.mean([(fd[k].k == k).mean() for fd in fits.covlasso[m]]))
            gaps.append(np.nanmax(np.concatenate(
                [fd[k].gap / fd[k].objective for fd in fits.covlasso[m]])))
        row["k exact (lowest share)"] = f"{100 * min(shares):.0f}%"
        row["max relative gap"] = f"{max(gaps):.1e}"
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


def data_table(s: Settings, data: dict, folds: dict):
    """Per model: its penultimate width d, architecture and training recipe, images, views,
    classes present, centre-view top-1 and fit rows per fold."""
    return pd.DataFrame([{"model": s.short[m], "d": getattr(get_spec(m), "width", None),
                          "architecture": architecture(m) or "n/a",
                          "recipe": recipe(m) or "n/a",
                          "images": d.n_images, "views per image": d.n_views,
                          "classes present": len(np.unique(d.labels)),
                          "centre-view top-1": d.top1(),
                          "fit rows per fold": [f.n_fit_rows for f in folds[m]]}
                         for m, d in data.items()]).set_index("model")


def macaw_panels(s: Settings, data: dict, folds: dict, fits: Fits) -> list[tuple]:
    """Scatter panels of the macaw logit against its rebuilt value on fold 0's eval images, one
    per model (for :func:`neudep_utils.report.plots.scatter_dependency`)."""
    ti = int(np.flatnonzero(s.targets == s.macaw)[0])
    panels = []
    for m in s.models:
        f0, dep = folds[m][0], fits.covlasso[m][0][s.k_headline]
        X = data[m].centre_view(f0.eval_idx).astype(float)
        panels.append((f"{s.short[m]}, k = {int(dep.k[ti])}", X[:, s.macaw],
                       dep.predict(X)[:, ti], data[m].labels[f0.eval_idx] == s.macaw))
    return panels


def metric_tables(s: Settings, mets: dict, dense: dict):
    """Tidy DataFrames of every (model, method, k)'s summary and of dense least squares."""
    tab = pd.DataFrame([{"model": s.short[m], "method": meth, "k_requested": k, **v.summary()}
                        for (m, meth, k), v in mets.items()])
    return tab, pd.DataFrame([{"model": s.short[m], **v.summary()} for m, v in dense.items()])


def parameters(s: Settings, taxonomy_source: str) -> dict:
    """The settings used (every parameter), as written into the results file, with the number
    of targets, the readings' ks and the taxonomy's source."""
    return {**s.record(), "n_targets_used": int(s.targets.size), "taxonomy": taxonomy_source,
            "reading_ks": list(s.reading_ks)}


def reading_tables(s: Settings, data: dict, folds: dict, fits: Fits, progress: bool = True,
                   mets: dict | None = None, dense: dict | None = None
                   ) -> tuple[dict[str, list[dict]], dict[str, dict]]:
    """The secondary readings (:func:`neudep_utils.findings.why.reading_rows`) of every model at
    the settings' reading ks: ``(rows by model, Readings objects by model)``; ``mets``/``dense``
    (:func:`evaluate_methods`) spare re-measuring the dependencies' own top-1."""
    reads, objs = {}, {}
    for m in tqdm(s.models, desc="secondary readings", disable=not progress):
        by_k = {k: {meth: fits.by_method[(m, meth, k)] for meth in READ_METHODS[:2]}
                for k in s.reading_ks}
        known = {(meth, k): mets[(m, meth, k)].summary() for meth in READ_METHODS[:2]
                 for k in s.reading_ks if mets and (m, meth, k) in mets}
        if dense and m in dense:
            known[("dense LS", "all")] = dense[m].summary()
        reads[m], objs[m] = reading_rows(s.short[m], data[m], folds[m], by_k, fits.dense[m],
                                         s.targets, s.n_boot, known)
    return reads, objs


def learning(s: Settings, data: dict, folds: dict, cache_dir) -> tuple:
    """The first model's learning curve (:func:`.scaling.learning_curve`) as a DataFrame, and
    the saturating fits ``a + b n^-c`` of its sparse held-out curves by (method, metric)."""
    m0 = s.models[0]
    if folds[m0][0].fit_idx is None or not s.learning_sizes:
        return pd.DataFrame(), {}
    lc = pd.DataFrame(learning_curve(data[m0], s.learning_sizes, s.learning_seeds, s.k_headline,
                                     targets=s.targets, center=s.center, cache_dir=cache_dir))
    held = lc[(lc["judged on"] == "held-out images") & (lc.method != "dense LS")]
    return lc, {(meth, col): fit_saturating(g["n_fit"], g[col])
                for meth, g in held.groupby("method") for col in ("relres_median",
                                                                  "acc_replaced")}


def split_seed_table(s: Settings, data: dict, folds: dict, fits: Fits, cache_dir):
    """The headline metrics under every split seed (:func:`.scaling.split_seeds`; the main
    split's fits reused), one row per (model, seed, method)."""
    rows = []
    for m in s.models:
        if folds[m][0].fit_idx is None:
            continue
        known = {s.split_seed: (folds[m], fits.covlasso[m])}
        rows += [{"model": s.short[m], **r} for r in split_seeds(
            data[m], s.split_seeds, s.k_headline, s.targets, s.n_folds, s.center, known,
            cache_dir)]
    return pd.DataFrame(rows)


def width_rows(s: Settings, data: dict, folds: dict, cache_dir) -> list[dict]:
    """The width curve (:func:`.scaling.width_curve`) of every width model: its logit layer
    truncated to each rank of the settings, the C1 metrics of the logits it produces."""
    rows = []
    for m in s.width_models:
        if folds[m][0].fit_idx is None:
            continue
        W, b = load_model(m).classifier_weights()
        wt = profiles.select_targets(s.width_targets, 0, np.array([s.macaw]))
        rows += width_curve(s.short[m], data[m].features, data[m].labels, data[m].image_ids, W,
                            b, s.widths, s.width_ks, s.n_folds, s.split_seed, wt, s.center,
                            cache_dir)
    return rows


#: The trained width series (int8 MobileNet v1 at widths 0.25, 0.5, 0.75), shown on the width
#: figure beside the SVD-truncated layers.
TRAINED_WIDTHS = ("mobilenet_v1_025_int8", "mobilenet_v1_050_int8", "mobilenet_v1_075_int8")


def trained_width_rows(s: Settings, data: dict, mets: dict, dense: dict) -> list[dict]:
    """Records of the trained width series (:data:`TRAINED_WIDTHS` among the settings' models)
    in the format of :func:`.scaling.width_curve`: per model its logit layer's width ``d`` (the
    feature width, read from its head) and the C1 metrics of its own CovLasso dependencies at
    each width k (``mets``/``dense`` of :func:`evaluate_methods`), under the model label
    ``"MobileNet v1 int8 (trained widths)"``."""
    rows = []
    for m in (m for m in TRAINED_WIDTHS if m in s.models):
        W, _ = load_model(m).classifier_weights()
        d, n = int(W.shape[1]), int(W.shape[0])
        base = {"model": "MobileNet v1 int8 (trained widths)", "d": min(d, n),
                "d_over_n": min(d, n) / n, "feature_width": d, "top1": data[m].top1()}
        for k in s.width_ks:
            key = (m, "CovLasso", k)
            if key not in mets:
                continue
            sm = mets[key].summary()
            rows.append({**base, "k": sm["k"], "k_requested": k, "method": "CovLasso",
                         "acc_replaced": sm["acc_replaced"],
                         "relres_median": sm["relres_median"], "acc_base": sm["acc_base"]})
        sm = dense[m].summary()
        rows.append({**base, "k": sm["k"], "k_requested": None, "method": "dense LS",
                     "acc_replaced": sm["acc_replaced"], "relres_median": sm["relres_median"],
                     "acc_base": sm["acc_base"]})
    return rows


def cache_folder(output_dir: str | os.PathLike[str]) -> Path:
    """Where the notebooks cache their dependency fits: ``<output_dir>/cache/deps``."""
    p = Path(output_dir) / "cache" / "deps"
    p.mkdir(parents=True, exist_ok=True)
    return p
