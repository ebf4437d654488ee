"""Notebook 01's verdicts, headline numbers and the records the book draws from its results file
(the claims figure's ``curves``, the dependency atlas's ``atlas``).

Everything a verdict rests on is computed here from the notebook's measurements and handed to the
rules (:mod:`neudep_utils.verdicts.rules`); the deviations (rules changed after results were
seen) are evaluated with their old rules on the same numbers.
"""

from __future__ import annotations

import numpy as np

from ..dependencies import favourable
from ..images import imagenet_classes
from ..metrics import METRIC_DEFINITIONS, metric_ci, target_outcomes
from ..metrics.readings import READING_DEFINITIONS
from ..record import Numbers
from ..verdicts import deviations, rules
from .single import DEP_METHODS, METHODS, Checks, Settings, favourable_outcomes
from .why import failure_sentence

__all__ = ["atlas_records", "c1_record", "c6a_record", "curve_records", "failure_text",
           "claim_keys", "counter_numbers", "favourable_numbers", "favourable_sentence",
           "learning_note",
           "numbers", "reading_numbers"]


def learning_note(lc, fits_lc: dict, model: str, k: int) -> tuple[str, dict]:
    """What the learning curve shows, for C1's ``why``: held-out 1 - R^2 at the largest fit set,
    its fitted limit, and the in-sample (oracle) accuracy at the smallest and largest fit set."""
    if lc is None or not len(lc):
        return "", {}
    ref = lc[lc.method == "CovLasso support + LS"]
    held = ref[ref["judged on"] == "held-out images"]
    oracle = ref[ref["judged on"] != "held-out images"]
    n_lo, n_hi = int(lc.n_fit.min()), int(lc.n_fit.max())
    vals = {"n_small": n_lo, "n_large": n_hi,
            "heldout_relres_large": float(held[held.n_fit == n_hi].relres_median.mean()),
            "heldout_acc_large": float(held[held.n_fit == n_hi].acc_replaced.mean()),
            "oracle_acc_small": float(oracle[oracle.n_fit == n_lo].acc_replaced.mean()),
            "oracle_acc_large": float(oracle[oracle.n_fit == n_hi].acc_replaced.mean()),
            "limit": float(fits_lc.get(("CovLasso support + LS", "relres_median"),
                                       {"a": np.nan})["a"])}
    limit = (f"fitted limit {vals['limit']:.2f}" if np.isfinite(vals["limit"])
             else "no limit fitted: too few fit-set sizes")
    text = (f"Learning curve ({model}, refit at k = {k}): held-out 1 - R^2 "
            f"{vals['heldout_relres_large']:.2f} at {n_hi} fit images ({limit}); judged on its own fit images the dependency keeps "
            f"{100 * vals['oracle_acc_small']:.0f}% of target-class images at {n_lo} fit images "
            f"and {100 * vals['oracle_acc_large']:.1f}% at {n_hi} (held out: "
            f"{100 * vals['heldout_acc_large']:.1f}%): the fewer the rows, the more the fit can "
            "bend to a class's own images; with more rows the positives are a smaller share and "
            "the fit follows the other classes.")
    return text, vals


def c1_record(s: Settings, checks: Checks, exist_rows: list[dict], mets: dict, dense: dict,
              reads: dict, small: dict | None, lc_text: str, fav_checks: Checks | None = None
              ) -> tuple[object, str, list[dict]]:
    """C1's verdict (:func:`~neudep_utils.verdicts.rules.c1_single_model`), its summary (the
    refit's accuracy kept, the most favourable linear reading, the sentence that says which
    part fails, and the small-data evidence) and its deviations.

    ``reads``: ``{model: reading records}`` from :func:`.why.reading_rows`; ``small``: the
    first model's :func:`.why.without_positives` result (or ``None``); ``fav_checks``: the
    "similar performance" checks of :func:`.single.favourable_fits`' metrics (``None``: the
    reading was not run, e.g. streamed moments).
    """
    rule = s.c1_rule
    at_head = {s.short[m]: checks.holds(m, [s.k_headline]) for m in s.models}
    at_sparse = {s.short[m]: checks.holds(m, [k for k in s.ks if k <= rule.k_sparse])
                 for m in s.models}
    exist_ok: dict[str, bool] = {}
    for r in exist_rows:
        if r["k <="] == s.k_headline:
            kept = rules.similar_performance(r["drop_ci"], 0, 0, None).accuracy_kept
            exist_ok[r["model"]] = exist_ok.get(r["model"], False) or kept
    fav_head, fav_sparse = (favourable_outcomes(s, fav_checks) if fav_checks is not None
                            else ({}, {}))
    v = rules.c1_single_model(at_head, at_sparse, exist_ok, rule=rule,
                              favourable_headline=fav_head or None,
                              favourable_sparse=fav_sparse or None)
    old = deviations.old_c1_without_existential(at_head, at_sparse, rule=rule)
    old2 = deviations.old_c1_without_favourable(at_head, at_sparse, exist_ok, rule=rule)
    devs = [deviations.record("C1", "existential clause", old.level, v.level),
            deviations.record("C1", "most favourable linear reading", old2.level, v.level)]
    refit = {m: mets[(m, DEP_METHODS[1], s.k_headline)].summary()["acc_replaced"]
             for m in s.models}
    base = {m: mets[(m, "CovLasso", s.k_headline)].summary()["acc_base"] for m in s.models}
    dense_acc = {m: dense[m].summary()["acc_replaced"] for m in s.models}

    def pct(d):
        return ", ".join(f"{s.short[m]} {100 * x:.1f}%" for m, x in d.items())

    scope = ", ".join(f"{s.short[m]}" for m in s.models)
    parts = [f"Tested on {scope}, n = 1000 classes. Pooled reading: at k = {s.k_headline} the "
             f"refitted CovLasso dependency keeps {pct(refit)} of target-class images correct "
             f"(unmodified {pct(base)}); dense least squares on all other logits keeps "
             f"{pct(dense_acc)}."]
    if fav_checks is not None and fav_head:
        parts.append(favourable_sentence(s, fav_checks))
    m0 = s.models[0]
    why = failure_text(s, m0, reads.get(m0, []), mets)
    if why:
        parts.append("Why: " + why)
    if small:
        parts.append(positives_sentence(small, s.short[m0], s.k_headline))
    if lc_text:
        parts.append(lc_text)
    return v, " ".join(parts), devs


def favourable_sentence(s: Settings, fav_checks: Checks) -> str:
    """What the most favourable linear reading achieves at the headline k: per model, the
    best reading's top-1 kept and false positives against the unmodified model's, and whether
    any achieves similar performance."""
    k = s.k_headline
    best = {}
    for m in s.models:
        got = [(fav_checks(m, r, k)[0], r) for r in favourable.READINGS
               if (m, r, k) in fav_checks.mets]
        if got:
            best[m] = max(got, key=lambda x: x[0]["acc_replaced"])
    if not best:
        return ""
    held = [s.short[m] for m in best if fav_checks.any_holds(
        [(m, r, k) for r in favourable.READINGS])]
    per = "; ".join(f"{s.short[m]} {100 * sm['acc_replaced']:.1f}% at "
                    f"{sm['fp_created_per_target']:.2f} false positives per target (unmodified "
                    f"{100 * sm['acc_base']:.1f}% at {sm['fp_base_per_target']:.2f})"
                    for m, (sm, _) in best.items())
    verdict = (f"it achieves similar performance for {', '.join(held)}, which CovLasso's own "
               "weights do not" if held else
               "no model achieves similar performance this way: every reading that keeps "
               "the class creates more false positives than the original logit")
    return (f"Most favourable linear reading (weights and level fitted to the model's own "
            f"decisions, k = {k}): the best reading keeps {per}; {verdict}.")


def failure_text(s: Settings, m: str, rows: list[dict], mets: dict) -> str:
    """The sentence saying which part of 'similar performance' fails for model ``m`` at the
    headline k ('' when its readings were not measured)."""
    def pick(method, k):
        got = [r for r in rows if r["method"] == method and r["k"] == k]
        return got[0] if got else None

    dep, rnd, orig = (pick("CovLasso support + LS", s.k_headline),
                      pick("random + LS", s.k_headline), pick("original", "all"))
    if not (dep and rnd and orig):
        return ""
    sm = mets[(m, "CovLasso support + LS", s.k_headline)].summary()
    return failure_sentence(s.short[m], s.k_headline, dep, rnd, orig, sm["acc_replaced"],
                            sm["acc_base"])


def positives_sentence(small: dict, model: str, k: int) -> str:
    """What fitting without the target's own images does (:func:`.why.without_positives`)."""
    w, wo, base = small["acc_with"], small["acc_without"], small["acc_base"]
    share = small.get("positive_share")
    rows = f" (they are {100 * share:.2f}% of the fit rows)" if share else ""
    lead = (f"Fitted without the target's own images{rows}, the refitted dependency of {model} "
            f"at k = {k} keeps {100 * wo:.1f}% of target-class images, against {100 * w:.1f}% "
            f"with them and {100 * base:.1f}% unmodified")
    if w - wo > 0.5 * max(w, 1e-12):
        return lead + (": the positives carry part of what little the dependency gets right, "
                       "but with them it is still far from the unmodified model.")
    return lead + ": the positives are not what the dependency lacks."


def c6a_record(s: Settings, nears: dict, far: dict, counter: dict, n_far_strong: int,
               tax_source: str) -> tuple[object, str, list[dict]]:
    """C6a's verdict from the nearness ratios at ``k_headline`` and the counter-intuitive
    top-partner share of every model's well-fitted targets against its chance level
    (``counter[model]`` from :func:`.semantics.counter_intuitive`), its summary and its
    deviations (the old rules: a far top partner among the 15 strongest; any far top partner
    in 5% of the well-fitted targets, without a chance baseline)."""
    rule = s.c6a_rule
    near_lo = {s.short[m]: nears[(m, s.k_headline)]["ratio_ci"][0] for m in s.models}
    far_lo = {s.short[m]: far[m]["share_ci"][0] for m in s.models}
    cnt_lo = {s.short[m]: counter[m]["share_ci"][0] for m in s.models}
    chance = {s.short[m]: counter[m]["chance"] for m in s.models}
    v = rules.c6a_semantics(near_lo, cnt_lo, chance, rule=rule)
    old = deviations.old_c6a_strongest(near_lo, n_far_strong)
    old2 = deviations.old_c6a_far_share(near_lo, far_lo, rule=rule)
    devs = [deviations.record("C6a", "all well-fitted targets", old.level, v.level),
            deviations.record("C6a", "chance baseline for counter-intuitive partners",
                              old2.level, v.level)]
    name = imagenet_classes().short_name
    near_txt = "; ".join(
        f"{s.short[m]} {100 * r['observed']:.1f}% vs {100 * r['chance']:.1f}% by chance (ratio "
        f"{r['ratio']:.1f} [{r['ratio_ci'][0]:.1f}, {r['ratio_ci'][1]:.1f}])"
        for m in s.models for r in [nears[(m, s.k_headline)]])
    cnt_txt = "; ".join(
        f"{s.short[m]} {100 * c['share']:.1f}% [{100 * c['share_ci'][0]:.1f}, "
        f"{100 * c['share_ci'][1]:.1f}] of {c['n_well_fitted']} (chance "
        f"{100 * c['chance']:.2f}%; far top partner {100 * far[m]['share']:.0f}%)"
        for m in s.models for c in [counter[m]] if c["n_well_fitted"] and np.isfinite(c["share"]))
    ex = [e for m in s.models for e in counter[m]["examples"][:1]][:3]
    ex_txt = ", ".join(f"{name(t)} <- {name(p)}" for t, p in ex)
    summary = (f"Partners within WordNet distance {s.near_distance} of the target at k = "
               f"{s.k_headline}: {near_txt}. Well-fitted targets (held-out 1 - R^2 <= "
               f"{rule.well_fitted:g}) whose top partner is counter-intuitive (far, not among "
               f"the model's top-5 confusions either way, chosen again on the other half of the "
               f"images): {cnt_txt or 'none'}" + (f" (e.g. {ex_txt})" if ex_txt else "")
               + f". Distances from {tax_source}; WordNet distance and the model's confusions "
               "stand in for human intuition, which this study cannot measure.")
    return v, summary, devs


def reading_numbers(nums: Numbers, label: str, rows: list[dict], what: str) -> None:
    """Add the secondary readings of one model (or pair) ``label`` to ``nums``: keys
    ``<label>_{top5,auc,ap,separation}_k<k>``, ``..._random_k<k>``, ``..._kall`` (dense least
    squares) and ``..._original``; and the level: ``<label>_recal_top1_k<k>`` and
    ``<label>_recal_fp_k<k>`` (the refit re-levelled on the fit side, held out)."""
    for r in rows:
        if r["method"] == "original":
            tag = "original"
        elif r["method"] == "dense LS":
            tag = "kall"
        elif r["method"] == "random + LS":
            tag = f"random_k{r['k']}"
        else:
            tag = f"k{r['k']}"
        for key in ("top5", "auc", "ap", "separation"):
            ci = r.get(f"{key}_ci")
            nums.add(f"{label}_{key}_{tag}", r[key],
                     f"{what}, {r['method']}" + (f" at k = {r['k']}" if r["k"] != "all" else "")
                     + f": {READING_DEFINITIONS[key]}",
                     ci=ci if ci is not None and np.isfinite(ci[0]) else None,
                     unit="standard deviations" if key == "separation" else "fraction")
        if r["method"] == "CovLasso support + LS" and np.isfinite(r.get("level_top1", np.nan)):
            nums.add(f"{label}_recal_top1_{tag}", r["level_top1"],
                     f"{what}, the refitted dependency at k = {r['k']} re-levelled on the fit "
                     "side (fit-side false positives capped at the original's): held-out "
                     "target-class top-1 kept", unit="fraction")
            nums.add(f"{label}_recal_fp_{tag}", r["level_fp"],
                     f"{what}, the same re-levelled dependency: held-out false positives "
                     "created per target (the original's: the fp_base number)", unit="images")


#: Key stems of the most favourable reading's numbers: reading -> stem.
FAVOURABLE_KEYS = {favourable.RELEVEL: "recal", favourable.DISC_COV: "disc",
                   favourable.DISC_CLS: "disc_cls", favourable.RANDOM_RELEVEL: "recal_random",
                   favourable.RANDOM_DISC: "disc_random"}


def favourable_numbers(nums: Numbers, s: Settings, fav_checks: Checks) -> None:
    """Add the most favourable reading's numbers to ``nums``: per model, reading and k,
    ``<model>_<stem>_top1_k<k>`` (target-class top-1 kept), ``..._fp_k<k>`` (false positives
    created per target) and ``..._overall_k<k>`` (overall top-1 after one replacement), the
    stems of :data:`FAVOURABLE_KEYS`; a key already given by the readings (the re-levelled refit
    at a reading k) is not repeated."""
    for (m, meth, k), met in fav_checks.mets.items():
        sm, stem = met.summary(), FAVOURABLE_KEYS[meth]
        what = (f"{m}, most favourable linear reading, {meth} at k = {k} (fitted on the fit "
                "side, judged held out): ")
        for suffix, key, unit, text in (
                ("top1", "acc_replaced", "fraction", "target-class top-1 kept"),
                ("fp", "fp_created_per_target", "images", "false positives created per "
                 "target (the original's: fp_base)"),
                ("overall", "weak_top1", "fraction", "overall top-1 after one replacement")):
            name = f"{s.short[m]}_{stem}_{suffix}_k{k}"
            if name not in nums:
                nums.add(name, sm[key], what + text, unit=unit,
                         short=f"{text.split(' (')[0]} at k = {k}, {meth}")


def counter_numbers(nums: Numbers, s: Settings, counter: dict) -> None:
    """Add C6a's counter-intuitive share (with interval) and its chance level per model."""
    K = f"k{s.k_headline}"
    for m, c in counter.items():
        if not c["n_well_fitted"] or not np.isfinite(c["share"]):
            continue  # no well-fitted target, or one fold only (nothing to re-choose on)
        nums.add(f"{s.short[m]}_counter_share_{K}", c["share"],
                 f"{m}: share of the {c['n_well_fitted']} well-fitted targets whose top partner "
                 f"is counter-intuitive (WordNet distance > {s.near_distance}, not among the "
                 "model's top-5 confusions either way, chosen again on the other half of the "
                 "images); 95% CI over targets", ci=c["share_ci"], unit="fraction",
                 short="well-fitted targets with a counter-intuitive top partner")
        nums.add(f"{s.short[m]}_counter_chance_{K}", c["chance"],
                 f"{m}: the same share if far, unconfused top partners were noise (chosen "
                 "again with probability k / (n - 1))", unit="fraction")


def numbers(s: Settings, checks: Checks, mets: dict, dense: dict, nears: dict,
            seed_values, exist_rows: list[dict], reads: dict, far: dict,
            small: dict | None, fav_checks: Checks | None = None,
            counter: dict | None = None) -> Numbers:
    """Every headline number of notebook 01's results file (see :func:`reading_numbers` for the
    readings' keys, :func:`favourable_numbers` for the most favourable reading's,
    :func:`counter_numbers` for C6a's)."""
    nums, K, frac = Numbers(), f"k{s.k_headline}", {"unit": "fraction"}
    for m in s.models:
        sm = s.short[m]
        summ, drop = checks(m, "CovLasso", s.k_headline)[:2]
        what = f"{m}, CovLasso dependency at k = {s.k_headline}, out of sample: "
        nums.add(f"{sm}_acc_replaced_{K}", summ["acc_replaced"], what + METRIC_DEFINITIONS[
            "acc_replaced"], **frac, seeds=seed_values(m, "CovLasso", "acc_replaced"),
                 short=f"accuracy kept at k = {s.k_headline}")
        nums.add(f"{sm}_acc_base", summ["acc_base"], f"{m}: {METRIC_DEFINITIONS['acc_base']}",
                 **frac, short="unmodified")
        nums.add(f"{sm}_acc_drop_{K}", summ["acc_drop"], what + METRIC_DEFINITIONS["acc_drop"]
                 + "; 95% bootstrap CI over eval images", ci=drop, **frac)
        for meth, tag, word in (("CovLasso support + LS", "refit", "refitted"),
                                ("random + LS", "random", "random partners")):
            nums.add(f"{sm}_acc_replaced_{tag}_{K}",
                     mets[(m, meth, s.k_headline)].summary()["acc_replaced"],
                     f"{m}: as acc_replaced, with {meth} at equal k", **frac,
                     seeds=seed_values(m, meth, "acc_replaced"),
                     short=f"accuracy kept at k = {s.k_headline}, {word}")
        rr_ci = metric_ci(mets[(m, "CovLasso", s.k_headline)], "relres_median", s.n_boot, 0)
        nums.add(f"{sm}_relres_median_{K}", summ["relres_median"],
                 what + METRIC_DEFINITIONS["relres_median"], ci=rr_ci,
                 seeds=seed_values(m, "CovLasso", "relres_median"))
        nums.add(f"{sm}_fp_created_{K}", summ["fp_created_per_target"],
                 what + METRIC_DEFINITIONS["fp_created_per_target"], unit="images")
        nums.add(f"{sm}_fp_base", summ["fp_base_per_target"],
                 f"{m}: {METRIC_DEFINITIONS['fp_base_per_target']}", unit="images")
        nums.add(f"{sm}_weak_top1_{K}", summ["weak_top1"], what + METRIC_DEFINITIONS["weak_top1"],
                 **frac)
        sd, r = dense[m].summary(), nears[(m, s.k_headline)]
        nums.add(f"{sm}_dense_acc_replaced", sd["acc_replaced"],
                 f"{m}: target-class accuracy after replacement with dense least squares "
                 "(minimum norm) on all other logits (no sparsity), out of sample", **frac,
                 seeds=seed_values(m, "dense LS", "acc_replaced"))
        nums.add(f"{sm}_dense_relres_median", sd["relres_median"],
                 f"{m}: out-of-sample 1 - R^2 of dense least squares (minimum norm)",
                 seeds=seed_values(m, "dense LS", "relres_median"))
        nums.add(f"{sm}_near_rate_{K}", r["observed"],
                 f"{m}: share of CovLasso partners within WordNet distance {s.near_distance} of "
                 f"their target (k = {s.k_headline}); 95% bootstrap CI over targets",
                 ci=r["observed_ci"], **frac)
        nums.add(f"{sm}_near_chance_{K}", r["chance"],
                 f"{m}: the same share expected for random partners at equal k", **frac)
        nums.add(f"{sm}_near_ratio_{K}", r["ratio"], f"{m}: observed / chance near share",
                 ci=r["ratio_ci"], short="near partners, observed / chance")
        f = far[m]
        if f["n_well_fitted"]:
            nums.add(f"{sm}_far_top_share_{K}", f["share"],
                     f"{m}: share of the {f['n_well_fitted']} well-fitted targets (held-out "
                     f"1 - R^2 <= {s.c6a_rule.well_fitted:g}) whose top partner is semantically "
                     f"far (WordNet distance > {s.near_distance}); 95% CI over targets",
                     ci=f["share_ci"], **frac)
        reading_numbers(nums, sm, reads.get(m, []), m)
    for r in exist_rows:
        tag = ("refit" if r["method"] != "CovLasso" else "covlasso") + f"_k_le{r['k <=']}"
        for share, col, bcol in ((50, "categories keeping >= 50%", "unmodified >= 50%"),
                                 (80, ">= 80%", "unmodified >= 80%")):
            nums.add(f"{r['model']}_exist_{tag}_keep{share}", r[col],
                     f"{r['model']}, {r['method']}, k <= {r['k <=']} chosen on the fit side: "
                     f"categories keeping at least {share}% of their held-out images correct "
                     f"(unmodified model: {r[bcol]})", unit="categories")
        nums.add(f"{r['model']}_exist_{tag}_top_drop", r["drop"],
                 f"{r['model']}, {r['method']}, k <= {r['k <=']}: the {r['n_top']} categories "
                 "with the best fit-side scores, held-out accuracy drop against the unmodified "
                 "model; 95% CI over those categories", ci=r["drop_ci"], **frac)
    if fav_checks is not None:
        favourable_numbers(nums, s, fav_checks)
    if counter is not None:
        counter_numbers(nums, s, counter)
    if small:
        m0 = s.short[s.models[0]]
        for key, what in (("acc_with", "with"), ("acc_without", "without")):
            nums.add(f"{m0}_positives_{what}_{K}", small[key],
                     f"{s.models[0]}: target-class accuracy after replacement with the refitted "
                     f"CovLasso dependency at k = {s.k_headline} fitted {what} the target's own "
                     "class images in the fit moments", **frac)
    return nums


def claim_keys(s: Settings, nums: Numbers) -> dict[str, dict]:
    """For C1 and C6a: the headline (the number the verdict rests on), the reference it is read
    against, the second half's number and every number the rule reads (keys of ``nums``), as
    :func:`~neudep_utils.record.claim` takes them."""
    K, sm0 = f"k{s.k_headline}", s.short[s.models[0]]

    def have(keys):
        return [k for k in keys if k in nums]

    c1 = have([f"{s.short[m]}_{key}" for m in s.models for key in (
        f"acc_replaced_{K}", f"acc_replaced_refit_{K}", f"acc_drop_{K}", f"fp_created_{K}",
        "acc_base", "fp_base", *(f"{stem}_{x}_{K}" for stem in FAVOURABLE_KEYS.values()
                                 for x in ("top1", "fp")))])
    c6a = have([f"{s.short[m]}_{key}_{K}" for m in s.models for key in (
        "near_ratio", "counter_share", "counter_chance")])
    second1 = f"{sm0}_disc_top1_{K}"
    return {"C1": {"headline": f"{sm0}_acc_replaced_refit_{K}", "reference": f"{sm0}_acc_base",
                   "second": second1 if second1 in nums else None, "reads": c1},
            "C6a": {"headline": f"{sm0}_near_ratio_{K}", "reference": None,
                    "second": _deciding_counter(s, nums, K), "reads": c6a}}


def _deciding_counter(s: Settings, nums: Numbers, K: str) -> str | None:
    """C6a's second half is decided by the model whose counter-intuitive share has the highest
    lower interval end (the rule asks for one model): its key, the first model's on ties."""
    keys = [f"{s.short[m]}_counter_share_{K}" for m in s.models]
    keys = [k for k in keys if k in nums]
    if not keys:
        return None
    lo = [(nums[k]["ci"] or [nums[k]["value"]])[0] for k in keys]
    return keys[max(range(len(keys)), key=lambda i: (lo[i], -i))]


def curve_records(s: Settings, mets: dict, dense: dict, reads: dict) -> list[dict]:
    """The ``curves`` of the results file (the claims page's headline figure): per model,
    method and k, the achieved k, accuracy kept, unmodified accuracy, median 1 - R^2 and, where
    measured, the secondary readings."""
    idx = {(r["model"], r["method"], r["k"]): r for rows in reads.values() for r in rows}
    out = []
    for (m, meth, k), met in mets.items():
        sm = met.summary()
        rd = idx.get((s.short[m], meth, k), {})
        out.append({"model": s.short[m], "method": meth, "k_requested": k, "k": sm["k"],
                    "acc_replaced": sm["acc_replaced"], "acc_base": sm["acc_base"],
                    "relres_median": sm["relres_median"],
                    **{key: rd.get(key) for key in ("top5", "auc", "ap", "separation")}})
    for m, met in dense.items():
        sm = met.summary()
        rd = idx.get((s.short[m], "dense LS", "all"), {})
        out.append({"model": s.short[m], "method": "dense LS", "k_requested": None,
                    "k": sm["k"], "acc_replaced": sm["acc_replaced"], "acc_base": sm["acc_base"],
                    "relres_median": sm["relres_median"],
                    **{key: rd.get(key) for key in ("top5", "auc", "ap", "separation")}})
    assert {r["method"] for r in out} <= {*METHODS, "dense LS"}
    return out


def atlas_records(s: Settings, fits, mets: dict, per_target_reads: dict,
                  distance: np.ndarray, ks: tuple[int, ...] = (10, 50)) -> list[dict]:
    """The dependency atlas: for every model, target and k in ``ks`` (present in the settings),
    the refitted dependency's partners (fold 0) with coefficients and WordNet distances, its
    held-out R^2, target-class accuracy kept and AP, beside the unmodified model's.

    ``per_target_reads[(model, k)]``: ``(refit Readings, original Readings)`` per target.
    """
    cls = imagenet_classes()
    out = []
    for m in s.models:
        for k in ks:
            if (m, "CovLasso support + LS", k) not in mets:
                continue
            met = mets[(m, "CovLasso support + LS", k)]
            o = target_outcomes(met)
            dep = fits.by_method[(m, "CovLasso support + LS", k)][0]
            rd, orig = per_target_reads[(m, k)]
            for i, t in enumerate(s.targets):
                t = int(t)
                n_img = int(o.n_images[i])
                out.append({
                    "model": s.short[m], "class": t, "wnid": cls.wnids[t],
                    "name": cls.short_name(t), "k": k,
                    "partners": [[int(c), round(float(v), 4), int(distance[t, c])]
                                 for c, v in dep.partners(i)],
                    "r2": _r(1 - met.relres[i]),
                    "acc_kept": _r(o.n_replaced[i] / n_img) if n_img else None,
                    "acc_original": _r(o.n_base[i] / n_img) if n_img else None,
                    "ap": _r(rd.ap[i]), "ap_original": _r(orig.ap[i]), "n_images": n_img})
    return out


def _r(x: float) -> float | None:
    x = float(x)
    return round(x, 4) if np.isfinite(x) else None
