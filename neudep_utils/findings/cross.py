"""Notebook 02 (C2, C6b), cross-model dependencies and unseen categories: settings, stacked
logits, fits, evaluation, verdicts and headline numbers. The unseen categories (C6b: runs,
summary, table, verdict, numbers) are in :mod:`.cross_unseen` and re-exported here.

For an ordered pair (A, B) the logits are stacked (``f = [f^A; f^B]``); the target is A's logit
i and the candidates are B's block, without B's own category i (the non-trivial dependency) or
with it. Keys of fits and metrics: ``(A, B, candidates, method, k)``.
"""

from __future__ import annotations

import os

import numpy as np
from tqdm.auto import tqdm

from .. import cache, dependencies, profiles
from ..dependencies import DepSet, favourable
from ..images import imagenet_classes
from ..metrics import METRIC_DEFINITIONS, evaluate, metric_ci
from ..models import get_spec, label
from ..models.hub import hub_reachable
from ..record import Numbers
from ..verdicts import deviations, rules
from . import crossmodel
from .cross_unseen import (
    VARIANTS,
    c6b_record,
    hidden_classes,
    references_text,
    unseen_numbers,
    unseen_rows,
    unseen_runs,
    unseen_summary,
)
from .crossmodel import FIT_KW
from .single import METHODS, SHORT_METHOD, Checks
from .single_summary import FAVOURABLE_KEYS, reading_numbers
from .why import READ_METHODS, failure_sentence, reading_rows

__all__ = ["CONFIGS", "PARAMETERS", "VARIANTS", "WITH", "WITHOUT", "CrossSettings",
           "claim_keys", "favourable_ks", "favourable_pairs", "favourable_rows",
           "HEADLINE_METHOD", "c2_record", "c6b_record", "certificate_rows", "cnn_transformer",
           "curve_records", "kind_headlines",
           "evaluate_pairs", "fit_pairs", "headline_rows", "hidden_classes", "load",
           "macaw_rows", "numbers", "overlap_rows", "pair_readings", "pair_table", "parameters",
           "references_text", "settings", "split_seed_runs", "unseen_numbers", "unseen_rows",
           "unseen_runs", "unseen_summary"]

WITHOUT, WITH = "without B's same category", "with B's same category"
#: The two candidate sets: B's block without / with B's own category of the target.
CONFIGS = {WITHOUT: True, WITH: False}


#: Notebook 02's settings: one declaration per parameter
#: (:class:`~neudep_utils.profiles.CrossModelSettings`).
CrossSettings = profiles.CrossModelSettings
#: Notebook 02's parameters besides ``profile`` and ``output_dir`` (its ``parameters`` cell).
PARAMETERS = tuple(n for n in CrossSettings.names() if n != "profile")


def settings(profile: str = "default", **params) -> CrossSettings:
    """Notebook 02's settings: the profile's, with the notebook's ``params`` applied (``None``
    keeps the profile's value; unknown names and wrong types raise
    :class:`~neudep_utils._params.ParameterError`)."""
    return profiles.get_profile(profile).cross.with_params(**params)


def load(s: CrossSettings) -> tuple[dict, dict, dict, dict]:
    """``(data, single_folds, stacks, stack_folds)``: each model's logits, its own folds (those
    of notebook 01), and per ordered pair the stacked logits and their folds."""
    data = {m: cache.load_logits(m, s.folders, s.views) for m in s.models}
    ids = {m: d.image_ids for m, d in data.items()}
    if len({v for v in ids.values()}) > 1:
        raise ValueError("notebook 02 needs every model's logits of the same images")
    single = {m: dependencies.crossfit(data[m], s.n_folds, s.split_seed, center=s.center)
              for m in s.models}
    stack = {(a, b): cache.stack_models(data[a], data[b]) for a, b in s.pairs}
    stack_folds = {p: dependencies.crossfit(st, s.n_folds, s.split_seed, center=s.center)
                   for p, st in stack.items()}
    return data, single, stack, stack_folds


def pair_table(s: CrossSettings, data: dict) -> list[dict]:
    """Per ordered pair: its kind (:func:`.crossmodel.pair_kind`), both models (with the note of
    a model that has one, e.g. the ViT's recipe), their top-1 and how often they predict the
    same class."""
    return [{"A": label(a), "B": label(b), "kind": crossmodel.pair_kind(a, b),
             "top-1 A": data[a].top1(),
             "top-1 B": data[b].top1(), "top-1 agreement A vs B": float(
                 (data[a].centre_view().argmax(1) == data[b].centre_view().argmax(1)).mean())}
            for a, b in s.pairs]


def certificate_rows(xdeps: dict) -> list[dict]:
    """Per fit (pair, candidates) and k: mean achieved support size and the largest relative
    duality gap."""
    return [{"candidates": cfg, "k": k, "mean k achieved": np.mean([d[k].k.mean() for d in ds]),
             "max relative gap": np.nanmax(np.concatenate(
                 [d[k].gap / d[k].objective for d in ds]))}
            for (a, b, cfg), ds in xdeps.items() for k in ds[0]]


def macaw_rows(s: CrossSettings, xdeps: dict) -> list[dict]:
    """A's macaw logit from B's logits (fold 0, without B's own macaw) at the headline k."""
    name = imagenet_classes().short_name
    ti = int(np.flatnonzero(s.targets == s.macaw)[0])
    return [{"A (target)": s.short[a], "B (partners)": s.short[b],
             "partners in B (coefficient)": ", ".join(
                 f"{name(c - 1000)} ({v:+.3f})"
                 for c, v in xdeps[(a, b, WITHOUT)][0][s.k_headline].partners(ti))}
            for a, b in s.pairs]


def cnn_transformer(s: CrossSettings) -> tuple[bool, str, str]:
    """Whether a CNN-transformer pair is among the ordered pairs (each model's declared
    architecture, :func:`.crossmodel.pair_kind`), what that means here, and the commands that run
    the full profile's hub pair (``s.cnn_transformer``) with hub access."""
    mixed = crossmodel.pair_kinds(s.pairs).get(crossmodel.CNN_TRANSFORMER, [])
    tested = bool(mixed)
    cmd = ("export NEUDEP_IMAGENET=/path/to/imagenet  # train/, val/ in <wnid>/<image>\n"
           f"export NEUDEP_MODELS={','.join(s.cnn_transformer)}\n"
           "make logits PROFILE=full\n"
           "python scripts/run_notebooks.py --profile full --only 01 02 "
           "--output-dir outputs/full")
    if tested:
        return True, (f"tested in this run: {len(mixed)} ordered pair(s), " + "; ".join(
            f"{label(a)} from {label(b)}" for a, b in mixed)), cmd
    hub = "reachable" if hub_reachable() else "unreachable (offline)"
    return False, f"the hub is {hub} and this profile has no transformer", cmd


def candidates(s: CrossSettings, exclude_same: bool, n: int = 1000) -> np.ndarray:
    """B's block of the stack, without (per target) or with B's own category."""
    return dependencies.candidate_mask(2 * n, slice(n, 2 * n), s.targets,
                                       n if exclude_same else None)


def fit_pairs(s: CrossSettings, stack_folds: dict, cache_dir: str | os.PathLike[str],
              progress: bool = True) -> dict[tuple, list[dict[int, DepSet]]]:
    """Cross-model CovLasso fits per ``(A, B, candidates)`` (one ``{k: DepSet}`` per fold);
    with B's own category allowed only ``k <= k_headline`` is fitted."""
    out = {}
    jobs = [(p, cfg) for p in s.pairs for cfg in CONFIGS]
    for (a, b), cfg in tqdm(jobs, desc="cross-model fits (pair, candidates)",
                            disable=not progress):
        cand = candidates(s, CONFIGS[cfg])
        kk = s.ks if CONFIGS[cfg] else s.ks_same
        out[(a, b, cfg)] = [dependencies.fit_covlasso_k_cached(
            f, kk, s.targets, cand, cache_dir=cache_dir, **FIT_KW) for f in stack_folds[(a, b)]]
    return out


def evaluate_pairs(s: CrossSettings, stack: dict, stack_folds: dict, xdeps: dict
                   ) -> tuple[dict, dict, dict]:
    """Metrics of every (A, B, candidates, method, k), the DepSets behind them (baselines at
    equal k from the same candidate set), and dense least squares on B's block without B's
    own category per pair: ``(metrics, depsets, dense)``."""
    xm, xd, dense = {}, {}, {}
    for (a, b), dstack in stack.items():
        fl = stack_folds[(a, b)]
        for cfg, exclude in CONFIGS.items():
            cand = candidates(s, exclude)
            for k in (s.ks if exclude else s.ks_same):
                cov = [d[k] for d in xdeps[(a, b, cfg)]]
                bl = [dependencies.baselines(f, d, cand, seed=s.baseline_seed + i)
                      for i, (f, d) in enumerate(zip(fl, cov, strict=True))]
                xd[(a, b, cfg, "CovLasso", k)] = cov
                for meth in METHODS[1:]:
                    xd[(a, b, cfg, meth, k)] = [x[meth] for x in bl]
                for meth in METHODS:
                    xm[(a, b, cfg, meth, k)] = evaluate(dstack, fl, xd[(a, b, cfg, meth, k)],
                                                        keep_errors=k == s.k_headline)
        n = 1000
        dense[(a, b)] = [dependencies.dense_least_squares(
            f, s.targets, np.arange(n, 2 * n), drop=s.targets + n) for f in fl]
    return xm, xd, dense


def favourable_ks(s: CrossSettings) -> tuple[int, ...]:
    """The support sizes of C2's most favourable reading: the headline k and the largest fitted
    k up to the C2 rule's ``k_sparse``."""
    up = [k for k in s.ks if k <= s.c2_rule.k_sparse]
    return tuple(sorted({s.k_headline, *(up[-1:] if up else [])}))


def favourable_pairs(s: CrossSettings, stack: dict, stack_folds: dict, xd: dict,
                     progress: bool = True) -> tuple[dict, dict]:
    """C2's most favourable linear reading (:mod:`neudep_utils.dependencies.favourable`) of every
    pair without B's own category at :func:`favourable_ks`: A's logit replaced by B's logits
    weighted and levelled for A's own decisions. Returns ``(metrics, depsets)`` keyed
    ``(A, B, WITHOUT, reading, k)``."""
    fm, fd = {}, {}
    cand = candidates(s, True)
    for a, b in tqdm(s.pairs, desc="most favourable reading (pair)", disable=not progress):
        fl, dstack = stack_folds[(a, b)], stack[(a, b)]
        for k in favourable_ks(s):
            per: dict[str, list] = {}
            for i, f in enumerate(fl):
                got = favourable.favourable_set(
                    dstack, f, xd[(a, b, WITHOUT, METHODS[1], k)][i],
                    xd[(a, b, WITHOUT, "random + LS", k)][i], cand)
                for meth, dep in got.items():
                    per.setdefault(meth, []).append(dep)
            for meth, deps in per.items():
                fd[(a, b, WITHOUT, meth, k)] = deps
                fm[(a, b, WITHOUT, meth, k)] = evaluate(dstack, fl, deps)
    return fm, fd


def favourable_rows(s: CrossSettings, checks: Checks, fav_checks: Checks) -> list[dict]:
    """Per pair and k of the most favourable reading: the refit beside the three readings
    (top-1 kept, false positives per target, the gain over random partners fitted the same
    way, the rule's outcome)."""
    rows = []
    for a, b in s.pairs:
        for k in favourable_ks(s):
            for meth, ch in ((METHODS[1], checks), *((r, fav_checks)
                                                     for r in favourable.READINGS)):
                key = (a, b, WITHOUT, meth, k)
                if key not in ch.mets:
                    continue
                sm, _, vs, sim = ch(*key)
                rows.append({"A from B": f"{s.short[a]} from {s.short[b]}", "k": k,
                             "weights": meth,
                             "top-1 kept (%)": round(100 * sm["acc_replaced"], 1),
                             "unmodified (%)": round(100 * sm["acc_base"], 1),
                             "FP / target": round(sm["fp_created_per_target"], 2),
                             "FP unmodified": round(sm["fp_base_per_target"], 2),
                             "vs random (points)": "" if vs is None else
                             f"{100 * vs[0]:.1f} [{100 * vs[1]:.1f}, {100 * vs[2]:.1f}]",
                             "similar?": "yes" if sim.holds else "no"})
    return rows


def pair_readings(s: CrossSettings, stack: dict, stack_folds: dict, xd: dict, dense: dict,
                  progress: bool = True, xm: dict | None = None) -> dict[tuple, list[dict]]:
    """The secondary readings (:func:`.why.reading_rows`) of every pair without B's own
    category, at the reading ks, with dense least squares on B's block and A's own logits
    (``xm``, :func:`evaluate_pairs`' metrics, spares re-measuring their top-1)."""
    out = {}
    for (a, b) in tqdm(s.pairs, desc="cross-model readings", disable=not progress):
        by_k = {k: {meth: xd[(a, b, WITHOUT, meth, k)] for meth in READ_METHODS[:2]}
                for k in s.reading_ks}
        known = {(meth, k): xm[(a, b, WITHOUT, meth, k)].summary() for meth in READ_METHODS[:2]
                 for k in s.reading_ks if xm and (a, b, WITHOUT, meth, k) in xm}
        out[(a, b)], _ = reading_rows(s.label(a, b), stack[(a, b)], stack_folds[(a, b)], by_k,
                                      dense[(a, b)], s.targets, s.n_boot, known)
    return out


def headline_rows(s: CrossSettings, checks: Checks) -> list[dict]:
    """Per pair, candidates and method at the headline k: 1 - R^2, target-class accuracy after
    replacement beside unmodified A's, the drop and the gain over random partners with
    intervals, the rule (columns short enough for the book's column)."""
    def fmt(v, ci):
        return f"{100 * v:.1f} [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"

    rows = []
    for a, b in s.pairs:
        for cfg in CONFIGS:
            for meth in METHODS:
                sm, drop, vs, sim = checks(a, b, cfg, meth, s.k_headline)
                rows.append({"A from B": f"{s.short[a]} from {s.short[b]}", "candidates": cfg,
                             "method": SHORT_METHOD[meth], "k": f"{sm['k']:.1f}",
                             "1 - R²": f"{sm['relres_median']:.3f}",
                             "kept % (A unmod.)": f"{100 * sm['acc_replaced']:.1f} "
                                                  f"({100 * sm['acc_base']:.1f})",
                             "drop, points": fmt(sm["acc_drop"], drop),
                             "vs random, points": "" if vs is None else fmt(vs[0], vs[1:]),
                             "similar?": "yes" if sim.holds else "no"})
    return rows


def c2_record(s: CrossSettings, checks: Checks, xm: dict, overlap_rows: list[dict],
              cnn_tf_tested: bool, cnn_tf_status: str, reads: dict,
              fav_checks: Checks | None = None) -> tuple:
    """C2's verdict, its summary (per family group, with B's own category, partner overlap,
    the most favourable reading, the readings of the first pair), its scope note and its
    deviations."""
    dep_methods = METHODS[:2]
    head = {p: checks.any_holds([p + (WITHOUT, m, s.k_headline) for m in dep_methods])
            for p in s.pairs}
    sparse = {p: checks.any_holds([p + (WITHOUT, m, k) for m in dep_methods for k in s.ks
                                   if k <= s.c2_rule.k_sparse]) for p in s.pairs}
    fav_head = fav_sparse = None
    if fav_checks is not None:
        fk = favourable_ks(s)
        fav_head = {p: fav_checks.any_holds([p + (WITHOUT, r, s.k_headline)
                                             for r in favourable.READINGS]) for p in s.pairs}
        fav_sparse = {p: fav_checks.any_holds([p + (WITHOUT, r, k) for r in favourable.READINGS
                                               for k in fk if k <= s.c2_rule.k_sparse])
                      for p in s.pairs}
    v, state = rules.c2_cross_model(head, sparse, cnn_tf_tested, rule=s.c2_rule,
                                    favourable_headline=fav_head,
                                    favourable_sparse=fav_sparse)
    old = deviations.old_c2_without_favourable(head, sparse, cnn_tf_tested, rule=s.c2_rule)
    devs = [deviations.record("C2", "most favourable linear reading", old.level, v.level)]

    def acc(p, cfg):
        return max(xm[p + (cfg, m, s.k_headline)].summary()["acc_replaced"] for m in dep_methods)

    def span(ps, cfg):
        vals = [acc(p, cfg) for p in ps]
        return f"{100 * min(vals):.1f}-{100 * max(vals):.1f}%"

    groups = crossmodel.pair_kinds(s.pairs)
    base = np.mean([xm[p + (WITHOUT, "CovLasso", s.k_headline)].summary()["acc_base"]
                    for p in s.pairs])
    by_group = "; ".join(f"{g} ({len(ps)} pairs) {span(ps, WITHOUT)}"
                         for g, ps in groups.items() if ps)
    ov = [r for r in overlap_rows if r["k"] == s.k_headline]
    summary = (f"The claim {state} on the {len(s.pairs)} ordered pairs tested: A's logit from "
               f"{s.k_headline} of B's logits (B's own category excluded) keeps {by_group} of "
               f"target-class images correct (unmodified A {100 * base:.1f}%); with B's own "
               f"category {span(s.pairs, WITH)}. Within-model partner sets overlap across "
               "models far above chance (Jaccard " + ", ".join(
                   f"{r['models']} {r['Jaccard']:.2f} vs {r['chance']:.3f}" for r in ov) + ").")
    p0 = s.pairs[0]
    rows = reads.get(p0, [])
    pick = {(r["method"], r["k"]): r for r in rows}
    if ("CovLasso support + LS", s.k_headline) in pick:
        sm = xm[p0 + (WITHOUT, "CovLasso support + LS", s.k_headline)].summary()
        summary += " Why: " + failure_sentence(
            f"{s.short[p0[0]]} from {s.short[p0[1]]}", s.k_headline,
            pick[("CovLasso support + LS", s.k_headline)], pick[("random + LS", s.k_headline)],
            pick[("original", "all")], sm["acc_replaced"], sm["acc_base"])
    if fav_checks is not None:
        best = {}
        for p in s.pairs:
            got = [fav_checks(*p, WITHOUT, r, s.k_headline)[0] for r in favourable.READINGS
                   if p + (WITHOUT, r, s.k_headline) in fav_checks.mets]
            if got:
                best[p] = max(got, key=lambda sm: sm["acc_replaced"])
        if best:
            kept = [sm["acc_replaced"] for sm in best.values()]
            fps = [sm["fp_created_per_target"] for sm in best.values()]
            fp0 = [sm["fp_base_per_target"] for sm in best.values()]
            held = [p for p in s.pairs if fav_head and fav_head.get(p)]
            summary += (f" Most favourable linear reading (B's logits weighted and levelled for "
                        f"A's own decisions, k = {s.k_headline}): the best reading keeps "
                        f"{100 * min(kept):.1f}-{100 * max(kept):.1f}% of target-class images at "
                        f"{min(fps):.2f}-{max(fps):.2f} false positives per target (A's own "
                        f"{min(fp0):.2f}-{max(fp0):.2f}); similar performance for "
                        f"{len(held)} of {len(s.pairs)} pairs.")
    kinds = kind_headlines(s, xm)
    summary += " The headline number (" + HEADLINE_METHOD + f", k = {s.k_headline}) by kind " \
        "of pair: " + "; ".join(
            f"{r['kind']} ({len(r['pairs'])} pairs): {r['first']} {_pc(r['value'], r['ci'])}"
            + (f", range over its pairs {100 * r['range'][0]:.1f}-{100 * r['range'][1]:.1f}%"
               if len(r["pairs"]) > 1 else "") for r in kinds) + "."
    notes = sorted({label(m) for p in s.pairs for m in p
                    if get_spec(m) is not None and get_spec(m).note})
    if notes:
        summary += " Models with a recipe unlike the paper's: " + ", ".join(notes) + "."
    scope = ("The CNN-transformer clause of C2 is untested here: " + cnn_tf_status
             if not cnn_tf_tested else "CNN-transformer pairs were among the pairs tested ("
             + cnn_tf_status + ").")
    return v, summary, scope, devs


#: The method of C2's headline number (the notebook's claim record points at its key).
HEADLINE_METHOD = "CovLasso support + LS"


def _pc(x: float, ci) -> str:
    return f"{100 * x:.1f}% [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def kind_headlines(s: CrossSettings, xm: dict) -> list[dict]:
    """C2's headline number for every kind of pair tested (:func:`.crossmodel.pair_kinds`):
    target-class accuracy kept by A's logit rebuilt from ``k_headline`` of B's logits without B's
    own category, CovLasso support refitted by least squares (the number C2's headline reads for
    the first pair). Per kind: its pairs, the first pair's value with its 95% bootstrap interval
    over eval images and its key in the results' numbers, and the range over the kind's pairs."""
    out = []
    for kind, ps in crossmodel.pair_kinds(s.pairs).items():
        vals = [xm[p + (WITHOUT, HEADLINE_METHOD, s.k_headline)].summary()["acc_replaced"]
                for p in ps]
        mm = xm[ps[0] + (WITHOUT, HEADLINE_METHOD, s.k_headline)]
        out.append({"kind": kind, "pairs": [s.label(*p) for p in ps],
                    "first": f"{s.short[ps[0][0]]} from {s.short[ps[0][1]]}",
                    "number": f"{s.label(*ps[0])}_without_same_refit_acc_replaced_"
                              f"k{s.k_headline}",
                    "value": vals[0], "ci": metric_ci(mm, "acc_replaced", s.n_boot, 0),
                    "range": (min(vals), max(vals))})
    return out


def numbers(s: CrossSettings, xm: dict, overlap_rows: list[dict], u: dict, seeds_tab,
            reads: dict, fav_mets: dict | None = None) -> Numbers:
    """Notebook 02's headline numbers (pair keys ``<a>_from_<b>_...``; the most favourable
    reading's ``<a>_from_<b>_<stem>_{top1,fp,overall}_k<k>``, stems as in notebook 01)."""
    nums, frac, K = Numbers(), {"unit": "fraction"}, f"k{s.k_headline}"
    p0 = s.pairs[0]
    for a, b in s.pairs:
        p = s.label(a, b)
        for cfg, tag in ((WITHOUT, "without_same"), (WITH, "with_same")):
            for meth, mt, word in (("CovLasso", "covlasso", ""),
                                   ("CovLasso support + LS", "refit", ", refitted"),
                                   ("random + LS", "random", ", random partners")):
                mm = xm[(a, b, cfg, meth, s.k_headline)]
                seeds = (seeds_tab[meth].tolist() if (a, b) == p0 and cfg == WITHOUT
                         and meth in seeds_tab else None)
                nums.add(f"{p}_{tag}_{mt}_acc_replaced_{K}", mm.summary()["acc_replaced"],
                         f"A={a}, partners from B={b} ({cfg}), {meth}, k={s.k_headline}: "
                         "target-class accuracy after replacing A's logit i, pooled over "
                         "targets, out of sample; 95% bootstrap CI over eval images",
                         ci=metric_ci(mm, "acc_replaced", s.n_boot, 0), seeds=seeds, **frac,
                         short=f"accuracy kept at k = {s.k_headline}{word}"
                         + (", B's category allowed" if tag == "with_same" else ""))
        mm = xm[(a, b, WITHOUT, "CovLasso", s.k_headline)]
        nums.add(f"{p}_acc_base", mm.summary()["acc_base"],
                 f"unmodified {a}: top-1 on the same eval images", **frac, short="unmodified")
        nums.add(f"{p}_fp_base", mm.summary()["fp_base_per_target"],
                 f"unmodified {a}: false positives per target on the same eval images",
                 unit="images")
        for meth, mt in (("CovLasso", "covlasso"), ("CovLasso support + LS", "refit")):
            nums.add(f"{p}_without_same_{mt}_fp_{K}",
                     xm[(a, b, WITHOUT, meth, s.k_headline)].summary()["fp_created_per_target"],
                     f"A={a} from B={b} without B's same category, {meth}, k={s.k_headline}: "
                     "false positives created per target", unit="images")
        nums.add(f"{p}_relres_{K}", mm.summary()["relres_median"],
                 f"A={a} from B={b} without B's same category, CovLasso k={s.k_headline}: "
                 + METRIC_DEFINITIONS["relres_median"],
                 ci=metric_ci(mm, "relres_median", s.n_boot, 0))
        reading_numbers(nums, p, reads.get((a, b), []), f"A={a} from B={b} without B's same "
                        "category")
        for (a2, b2, _, meth, k), met in (fav_mets or {}).items():
            if (a2, b2) != (a, b):
                continue
            sm = met.summary()
            for suffix, key, unit, word in (
                    ("top1", "acc_replaced", "fraction", "target-class top-1 kept"),
                    ("fp", "fp_created_per_target", "images", "false positives created"),
                    ("overall", "weak_top1", "fraction", "overall top-1")):
                name = f"{p}_{FAVOURABLE_KEYS[meth]}_{suffix}_k{k}"
                if name not in nums:
                    nums.add(name, sm[key], f"A={a} from B={b} without B's same category, "
                             f"most favourable reading, {meth} at k = {k}: {key} (held out)",
                             unit=unit, short=f"{word} at k = {k}, {meth}")
    for r in overlap_rows:
        if r["k"] == s.k_headline:
            nums.add(f"overlap_{r['models'].replace(' & ', '_')}_{K}", r["Jaccard"],
                     f"{r['models']}: mean Jaccard overlap of within-model CovLasso partner sets "
                     f"(k={s.k_headline}, fold 0); 95% CI over targets; chance "
                     f"{r['chance']:.4f}", ci=(r["lo"], r["hi"]))
    unseen_numbers(nums, s, u, seeds_tab)
    return nums


def overlap_rows(s: CrossSettings, single_folds: dict, cache_dir, ks01: tuple[int, ...]
                 ) -> list[dict]:
    """Jaccard overlap of within-model CovLasso partner sets (fold 0) of every pair of models
    at every k up to the largest cross k, against random sets of the same sizes. Fitted on
    notebook 01's k grid so that a shared ``output_dir`` reuses notebook 01's fits."""
    within = {m: dependencies.fit_covlasso_k_cached(single_folds[m][0], ks01, s.targets,
                                                    cache_dir=cache_dir) for m in s.models}
    ks_ov = tuple(k for k in ks01 if k <= max(s.ks))
    pairs = sorted({tuple(sorted(p)) for p in s.pairs})
    return [{"models": f"{s.short[a]} & {s.short[b]}", "k": k, "Jaccard": r["jaccard"],
             "lo": r["jaccard_ci"][0], "hi": r["jaccard_ci"][1], "chance": r["chance"]}
            for a, b in pairs for k in ks_ov
            for r in [crossmodel.support_overlap(within[a][k], within[b][k], seed=0,
                                                 n_boot=s.n_boot)]]


def split_seed_runs(s: CrossSettings, stack: dict, stack_folds: dict, unseen_head: str,
                    cache_dir) -> list[dict]:
    """The C2 headline (the first pair, without B's own category, at the headline k; CovLasso
    and refit) and the C6b headline recomputed under every split seed."""
    p0 = s.pairs[0]
    cand0 = candidates(s, True)
    hidden = hidden_classes(s)
    rows = []
    for seed in s.split_seeds:
        fl = (stack_folds[p0] if seed == s.split_seed
              else dependencies.crossfit(stack[p0], s.n_folds, seed, center=s.center))
        ds = [dependencies.fit_covlasso_k_cached(f, (s.k_headline,), s.targets, cand0,
                                                 cache_dir=cache_dir, **FIT_KW)[s.k_headline]
              for f in fl]
        refit = [dependencies.least_squares_on_support(f, d.targets, d.cols)
                 for f, d in zip(fl, ds, strict=True)]
        row = {"seed": seed}
        for meth, dd in (("CovLasso", ds), ("CovLasso support + LS", refit)):
            row[meth] = evaluate(stack[p0], fl, dd).summary()["acc_replaced"]
        hits = []
        for a, b in s.pairs:
            flp = (stack_folds[(a, b)] if seed == s.split_seed else
                   dependencies.crossfit(stack[(a, b)], s.n_folds, seed, center=s.center))
            r = crossmodel.unseen_categories(
                stack[(a, b)], flp, a, b, hidden, (s.k_headline,), construction="cross",
                method=unseen_head, seed=s.baseline_seed, cache_dir=cache_dir, **FIT_KW)
            hits.append(r[s.k_headline]["rebuilt_1000"])
        row["unseen_top1_1000"] = float(np.concatenate(hits).mean())
        rows.append(row)
    return rows


def parameters(s: CrossSettings, cnn_tf_status: str) -> dict:
    """The settings used (every parameter), as written into the results file, with the number
    of targets, the readings' ks, the CNN-transformer status and the pairs by kind."""
    return {**s.record(), "n_targets_used": int(s.targets.size),
            "cnn_transformer_status": cnn_tf_status, "reading_ks": list(s.reading_ks),
            "pair_kinds": {k: [s.label(*p) for p in ps]
                           for k, ps in crossmodel.pair_kinds(s.pairs).items()}}


def claim_keys(s: CrossSettings, nums: Numbers) -> dict[str, dict]:
    """For C2 and C6b: the headline, its reference, the second half's number and every number
    the rule reads (keys of ``nums``), as :func:`~neudep_utils.record.claim` takes
    them."""
    K = f"k{s.k_headline}"
    p0 = s.label(*s.pairs[0])
    c2 = [k for a, b in s.pairs for k in (
        f"{s.label(a, b)}_without_same_{mt}_{x}_{K}" for mt in ("covlasso", "refit")
        for x in ("acc_replaced", "fp")) if k in nums]
    c2 += [k for a, b in s.pairs for stem in FAVOURABLE_KEYS.values() for x in ("top1", "fp")
           for k in [f"{s.label(a, b)}_{stem}_{x}_{K}"] if k in nums]
    c2 += [k for a, b in s.pairs for k in (f"{s.label(a, b)}_acc_base", f"{s.label(a, b)}_fp_base")]
    c6b = ["unseen_top1_1000", "unseen_top1_hidden", "unseen_top1_hidden_random",
           "unseen_hidden_vs_random", "unseen_upper_bound_A_1000", "unseen_chance_1000",
           "unseen_chance_hidden"]
    second2 = f"{p0}_disc_top1_{K}"
    return {"C2": {"headline": f"{p0}_without_same_refit_acc_replaced_{K}",
                   "reference": f"{p0}_acc_base",
                   "second": second2 if second2 in nums else None, "reads": c2},
            "C6b": {"headline": "unseen_top1_hidden", "reference": "unseen_top1_hidden_random",
                    "second": "unseen_top1_1000", "reads": [k for k in c6b if k in nums]}}


def curve_records(s: CrossSettings, xm: dict, reads: dict) -> list[dict]:
    """The ``curves`` of the results file: per pair, candidate set, method and k, the achieved
    k, accuracy kept and unmodified, 1 - R^2 and (without B's own category) the readings."""
    idx = {(r["model"], r["method"], r["k"]): r for rows in reads.values() for r in rows}
    out = []
    for (a, b, cfg, meth, k), met in xm.items():
        sm = met.summary()
        rd = idx.get((s.label(a, b), meth, k), {}) if cfg == WITHOUT else {}
        out.append({"pair": s.label(a, b), "config": "without same" if cfg == WITHOUT
                    else "with same", "method": meth, "k_requested": k, "k": sm["k"],
                    "acc_replaced": sm["acc_replaced"], "acc_base": sm["acc_base"],
                    "relres_median": sm["relres_median"],
                    **{key: rd.get(key) for key in ("top5", "auc", "ap", "separation")}})
    return out

