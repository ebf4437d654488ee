"""Every change of a verdict rule made after results were seen: what changed, when, and the old
rule's outcome on today's data.

The rules were first written into the notebooks' text when the notebooks were committed on
2026-11-26: C3, C4, C5 and C6c with notebooks 03 and 04 (commit b02350a, 02:41 UTC), C1, C2,
C6a and C6b with notebooks 01 and 02 (commit f0af5ff, 03:20 UTC). In between, commit 6fc2e01
(02:46) records that notebook 03 had run on the default profile: results of the study had been
seen when the C1, C2, C6a and C6b rules were written (notebook 03's at least; whether any of
notebook 01's or 02's is not recorded). The first full build ran later that day (commit
24cf21d). Any rule rewritten after that is a deviation, listed here with the commit that made
it. The old rules are kept as
functions (:func:`old_c1_without_existential`, ...) so each notebook evaluates them on the same
numbers as the current rule and writes both outcomes into the claim's record
(:func:`record`); the claims page shows them under the verdict.

Example::

    from neudep_utils.verdicts import deviations
    old = deviations.old_c5_fidelity(frac_reaching=0.97, median_k=120)
    deviations.record("C5", "fidelity rule", old.level, new_level="not reproduced")
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .claims import CLAIMS, NOT_REPRODUCED, NOT_TESTABLE, PARTLY, REPRODUCED, Verdict
from .rules import (
    C1,
    C2,
    C5,
    C6A,
    C6C,
    C1Rule,
    C2Rule,
    C5Rule,
    C6aRule,
    C6cRule,
    c1_single_model,
    c2_cross_model,
)

__all__ = ["DEVIATIONS", "FIRST_FULL_BUILD", "RULES_FIRST_COMMITTED", "SEEN_BEFORE_RULES",
           "Deviation", "for_claim", "old_c1_without_existential", "old_c1_without_favourable",
           "old_c2_without_favourable", "old_c4_interlacing", "old_c4_without_null",
           "old_c5_fidelity", "old_c5_functional_or_fidelity", "old_c6a_far_share",
           "old_c6a_strongest", "old_c6b_without_random", "old_c6c_partly_vs_ce",
           "old_c6c_vs_generic", "record"]

#: When the study first ran end to end (results seen from then on).
FIRST_FULL_BUILD = "2026-11-26 (commit 24cf21d)"
#: When the rules were first written down: in the notebooks' text, committed with the notebooks
#: (C3-C5, C6c in b02350a; C1, C2, C6a, C6b in f0af5ff, after notebook 03 had run: 6fc2e01).
RULES_FIRST_COMMITTED = "2026-11-26 (commits b02350a and f0af5ff)"
#: What had been seen when each claim's rule was first committed.
SEEN_BEFORE_RULES = {
    **dict.fromkeys(("C3", "C4", "C5", "C6c"), "no run of the study is recorded before these "
                    "rules were committed (b02350a, 2026-11-26 02:41)"),
    **dict.fromkeys(("C1", "C2", "C6a", "C6b"), "committed (f0af5ff, 2026-11-26 03:20) after "
                    "notebook 03 had run on the default profile (6fc2e01, 02:46): results had "
                    "been seen; whether notebook 01's or 02's is not recorded"),
}


@dataclass(frozen=True)
class Deviation:
    """One rule change after results were seen: ``claim``, a short ``name``, ``when`` (date and
    commit), ``what`` changed and why, and ``old_rule`` (the rule as it was, in words)."""

    claim: str
    name: str
    when: str
    what: str
    old_rule: str


DEVIATIONS: tuple[Deviation, ...] = (
    Deviation(
        "C1", "existential clause", "2026-11-29 (commit ad9221f)",
        "The existential reading (categories selected on the fit side keep their held-out "
        "accuracy) was added as a way to reach 'partly reproduced', after a referee asked "
        "whether the paper's hand-picked examples could hold while the pooled reading fails.",
        "**C1 is reproduced** if some CovLasso dependency achieves similar performance at "
        "k = 10, pooled over all targets, for every model; **partly reproduced** if it does so "
        "only for some models, or for every model only at some k <= 100; **not reproduced** "
        "otherwise."),
    Deviation(
        "C4", "redundancy as a predictor", "2026-11-29 (commit ad9221f)",
        "The interlacing check (an identity that cannot fail) was replaced by a prediction "
        "that can fail: redundancy must predict the support a target's dependency needs.",
        "**C4 is reproduced** if interlacing holds (the in-sample residual never rises as "
        "categories are added) and the out-of-sample gain from K = 10 to 1000 categories has "
        "its 95% interval above 0; **partly reproduced** if only interlacing holds; **not "
        "reproduced** otherwise."),
    Deviation(
        "C4", "null control", "2026-12-03 (commit 9d11acc)",
        "The rank correlation is now compared with a null covariance of the same spectrum and "
        "random eigenvectors (what the mechanics alone give) instead of with 0, and models "
        "with a singular covariance are marked n/a.",
        "As today's rule, with the rank correlation's own 95% interval above 0 instead of its "
        "difference from the null."),
    Deviation(
        "C5", "functional criterion", "2026-11-29 (commit ad9221f)",
        "C5 was moved from held-out fidelity (1 - R^2) to C1's functional criterion "
        "(target-class accuracy kept), so that 'a dependency' means the same in C1 and C5; the "
        "fidelity reading is now shown beside the verdict as the correlational reading.",
        "**C5 is reproduced** if at least half of the targets reach held-out 1 - R^2 <= 0.3 "
        "somewhere on the CovLasso path and those targets need a median support <= 20 there; "
        "**partly reproduced** if only one of the two holds; **not reproduced** otherwise."),
    Deviation(
        "C6a", "all well-fitted targets", "2026-12-03 (commit 9d11acc)",
        "'Sometimes contradicts intuition' is judged over every well-fitted target (held-out "
        "1 - R^2 <= 0.3) with an interval, instead of over the 15 targets with the lowest "
        "residual of the first model only.",
        "**C6a is reproduced** if partners are near their target more often than chance in "
        "every model **and** some of the 15 strongest dependencies of the first model lean on "
        "a semantically far top partner; **partly reproduced** if only the first holds."),
    Deviation(
        "C6b", "random partners", "2026-12-03 (commit 9d11acc)",
        "The 'partly' level now also requires the hidden-class top-1 to beat random partners "
        "at the same k (a referee's baseline: the rebuilt logits could rank the hidden classes "
        "from generic correlation alone).",
        "As today's rule, without the comparison with random partners."),
    Deviation(
        "C6c", "strongest baseline", "2026-12-03 (commit 9d11acc)",
        "The regularizer is judged against the strongest baseline (the best of plain "
        "fine-tuning, L2-SP and the pretrained head) instead of plain cross-entropy and L2-SP.",
        "**C6c is reproduced** if some dependency regularizer beats both plain cross-entropy "
        "and L2-SP on mean corruption top-1 (95% intervals above 0) at a clean cost <= 0.005; "
        "**partly reproduced** if it beats plain cross-entropy only."),
    Deviation(
        "C1", "most favourable linear reading", "2026-12-06 (commit c2b8721)",
        "C1 can also be carried by weights and a level fitted for classification (STUDY.md "
        "section 8): least squares re-levelled on the fit side, and a logistic fit to the "
        "model's own decisions on the CovLasso partners or on partners chosen for "
        "classification (neudep_utils.dependencies.favourable), each against random partners "
        "fitted the same way. Added after a referee showed least-squares weights are not the "
        "only linear combination: a level shift alone moved lite0's top-1 kept at k = 10 from "
        "1% to 72%, at 7x the false positives. Declared and committed before the reading was "
        "run on the study's data; the level-only outcome for lite0 at k = 10 was known from the "
        "referee's report.",
        "**C1 is reproduced** if some CovLasso dependency achieves similar performance at "
        "k = 10, pooled over all targets, for every model; **partly reproduced** if it does so "
        "only for some models, or for every model only at some k <= 100, or if the existential "
        "reading holds for some model (the categories selected on the fit side alone, 5% of "
        "them, keep their held-out target-class accuracy within the tolerance at k <= 10); "
        "**not reproduced** otherwise."),
    Deviation(
        "C2", "most favourable linear reading", "2026-12-06 (commit c2b8721)",
        "As for C1: a pair also holds when A's logit is replaced, with similar performance, by "
        "B's logits weighted and levelled for classification (re-levelled least squares, or a "
        "logistic fit to A's own decisions on the CovLasso partners or on B's logits chosen "
        "for classification), random partners fitted the same way.",
        "The pairs tested *hold* if every pair achieves similar performance at k = 10 by a "
        "CovLasso dependency (coefficients or refit), *partly hold* if some pairs do or every "
        "pair only at some k <= 50, *fail* otherwise; reproduced / partly / not reproduced as "
        "today."),
    Deviation(
        "C5", "fidelity route to partly", "2026-12-03 (commit 9d11acc)",
        "Between 2026-11-29 (ad9221f) and 2026-12-03 the C5 rule also gave 'partly reproduced' "
        "when at least half of the targets reach held-out 1 - R^2 <= 0.3 with a median support "
        "<= 20 (the fidelity reading), even if accuracy was never kept; commit 9d11acc made the "
        "functional reading the only one that decides and moved fidelity beside the verdict. "
        "This entry was missing from the log until 2026-12-06.",
        "**C5 is reproduced** if the pooled held-out target-class accuracy after replacement "
        "is kept (within 5 points) at a median support <= 20; **partly reproduced** if only at "
        "a median support <= 100, **or if at least half of the targets reach held-out "
        "1 - R^2 <= 0.3 with a median support <= 20 there**; **not reproduced** otherwise."),
    Deviation(
        "C6a", "chance baseline for counter-intuitive partners", "2026-12-06 (commit c2b8721)",
        "'Sometimes contradicts intuition' now needs, beyond a semantically far top partner, "
        "that the partner is not a visual confusion of the model and is chosen again on the "
        "other half of the images more often than noise would be (a chance baseline); a "
        "referee found the far examples intuitive (tusker <- Indian elephant) and the old rule "
        "without any chance baseline.",
        "**C6a is reproduced** if partners are near their target more often than chance in "
        "every model **and**, among all well-fitted targets (held-out 1 - R^2 <= 0.3), at least "
        "5% lean on a semantically far top partner in some model (lower end of the 95% "
        "interval); **partly reproduced** if only the first holds; **not reproduced** "
        "otherwise."),
    Deviation(
        "C6c", "strongest baseline decides partly", "2026-12-06 (commit c2b8721)",
        "'Partly reproduced' now also requires beating the strongest baseline (at a larger "
        "clean cost); beating plain cross-entropy fine-tuning, which is worse than not "
        "fine-tuning here, no longer counts.",
        "**C6c is reproduced** if some dependency regularizer beats the strongest baseline "
        "(the best of plain fine-tuning, L2-SP and the pretrained head) on mean corruption "
        "top-1 (95% interval above 0) at a clean cost <= 0.005 against plain cross-entropy; "
        "**partly reproduced** if it beats plain cross-entropy that way but not the strongest "
        "baseline; **not reproduced** otherwise."),
    Deviation(
        "C4", "null from the real rows", "2026-12-06 (commit c2b8721)",
        "The null covariance is now the real fit and eval rows rotated by one Haar-random "
        "orthogonal matrix (same spectrum and the same non-Gaussian rows, random "
        "eigenvectors) instead of Gaussian rows drawn from the sample spectrum, which a referee "
        "found twice as redundant as the data (lite0 in-sample residual 0.0053 vs 0.0107).",
        "As today's rule, with the null of Gaussian rows drawn with the fit covariance's "
        "spectrum and Haar-random eigenvectors."),
)
assert all(d.claim in CLAIMS for d in DEVIATIONS)


def for_claim(claim: str) -> tuple[Deviation, ...]:
    """The deviations logged for ``claim`` (possibly none)."""
    return tuple(d for d in DEVIATIONS if d.claim == claim)


def record(claim: str, name: str, old_outcome: str, new_outcome: str) -> dict:
    """The deviation ``name`` of ``claim`` as written into the claim's results record, with the
    old rule's outcome on today's data beside the current rule's."""
    found = [d for d in for_claim(claim) if d.name == name]
    if not found:
        raise KeyError(f"no deviation {name!r} logged for {claim}; known: "
                       f"{[d.name for d in for_claim(claim)]}")
    d = found[0]
    return {"name": d.name, "when": d.when, "what": d.what, "old_rule": d.old_rule,
            "old_outcome": old_outcome, "new_outcome": new_outcome,
            "changed_verdict": old_outcome != new_outcome}


# --------------------------------------------------------------------------------------------
# the old rules, evaluated on today's numbers
# --------------------------------------------------------------------------------------------


def old_c1_without_existential(at_headline: Mapping[str, bool],
                               at_sparse: Mapping[str, bool], rule: C1Rule = C1) -> Verdict:
    """C1 as before commit ad9221f: the current rule (``rule``: its thresholds as the run used
    them) without the existential clause."""
    return c1_single_model(at_headline, at_sparse, None, rule=rule)


def old_c1_without_favourable(at_headline: Mapping[str, bool], at_sparse: Mapping[str, bool],
                              existential: Mapping[str, bool] | None,
                              rule: C1Rule = C1) -> Verdict:
    """C1 as before 2026-12-06: the current rule without the most favourable linear reading."""
    return c1_single_model(at_headline, at_sparse, existential, rule=rule)


def old_c2_without_favourable(pair_headline: Mapping[tuple[str, str], bool],
                              pair_sparse: Mapping[tuple[str, str], bool],
                              cross_architecture_tested: bool, rule: C2Rule = C2) -> Verdict:
    """C2 as before 2026-12-06: the current rule without the most favourable linear reading."""
    return c2_cross_model(pair_headline, pair_sparse, cross_architecture_tested, rule=rule)[0]


def old_c4_interlacing(interlacing_holds: bool, gain_ci: tuple[float, float]) -> Verdict:
    """C4 as before commit ad9221f (interlacing and the out-of-sample gain)."""
    gain = bool(np.isfinite(gain_ci[0]) and gain_ci[0] > 0)
    level = REPRODUCED if interlacing_holds and gain else (
        PARTLY if interlacing_holds else NOT_REPRODUCED)
    return Verdict("C4", level, for_claim("C4")[0].old_rule,
                   f"interlacing {'holds' if interlacing_holds else 'fails'}; gain interval "
                   f"{'excludes' if gain else 'does not exclude'} 0")


def old_c4_without_null(predicts: Mapping[str, tuple[float, float]],
                        gain_ci: tuple[float, float]) -> Verdict:
    """C4 as on 2026-11-29..12-02: each tested model's rank correlation interval above 0."""
    tested = {m: ci for m, ci in predicts.items() if np.isfinite(ci[0])}
    good = [m for m, ci in tested.items() if ci[0] > 0]
    gain = bool(np.isfinite(gain_ci[0]) and gain_ci[0] > 0)
    level = (REPRODUCED if tested and len(good) == len(tested) and gain else
             PARTLY if good or gain else NOT_REPRODUCED)
    return Verdict("C4", level, for_claim("C4")[1].old_rule,
                   f"correlation above 0 in {len(good)} of {len(tested)} models")


def old_c5_fidelity(frac_reaching: float, median_k: float) -> Verdict:
    """C5 as before commit ad9221f (fidelity: half of the targets reach 1 - R^2 <= 0.3 with a
    median support <= 20)."""
    small = frac_reaching > 0 and np.isfinite(median_k) and median_k <= C5.sparse_k
    if frac_reaching >= 0.5 and small:
        level = REPRODUCED
    elif frac_reaching >= 0.5 or small:
        level = PARTLY
    else:
        level = NOT_REPRODUCED
    return Verdict("C5", level, for_claim("C5")[0].old_rule,
                   f"{frac_reaching:.0%} of targets reach it; median k there {median_k:.0f}")


def old_c5_functional_or_fidelity(k_functional: float, frac_reaching: float, median_k: float,
                                  rule: C5Rule = C5) -> Verdict:
    """C5 as on 2026-11-29..12-02 (ad9221f to 9d11acc): the functional reading, or 'partly' by
    fidelity (half of the targets reach 1 - R^2 <= threshold with median support <= sparse_k)."""
    old_rule = [d for d in for_claim("C5") if d.name == "fidelity route to partly"][0].old_rule
    func = bool(np.isfinite(k_functional))
    fid = frac_reaching >= 0.5 and np.isfinite(median_k) and median_k <= rule.sparse_k
    if func and k_functional <= rule.sparse_k:
        level = REPRODUCED
    elif (func and k_functional <= rule.k_sparse) or fid:
        level = PARTLY
    else:
        level = NOT_REPRODUCED
    return Verdict("C5", level, old_rule,
                   f"functional support {k_functional:.0f}; {frac_reaching:.0%} of targets reach "
                   f"the fidelity threshold, median k {median_k:.0f}")


def old_c6a_far_share(near_ratio_ci_lo: Mapping[str, float],
                      far_share_ci_lo: Mapping[str, float], rule: C6aRule = C6A) -> Verdict:
    """C6a as on 2026-12-03..05: a semantically far top partner in at least ``min_far_share``
    of the well-fitted targets of some model (no chance baseline)."""
    old_rule = [d for d in for_claim("C6a")
                if d.name == "chance baseline for counter-intuitive partners"][0].old_rule
    if not near_ratio_ci_lo:
        return Verdict("C6a", NOT_TESTABLE, old_rule, "no model")
    near = all(v > 1 for v in near_ratio_ci_lo.values())
    far = [m for m, v in far_share_ci_lo.items() if np.isfinite(v) and v >= rule.min_far_share]
    level = (REPRODUCED if far else PARTLY) if near else NOT_REPRODUCED
    return Verdict("C6a", level, old_rule, f"far top partner share >= {rule.min_far_share:g} "
                   f"in: {', '.join(far) if far else 'no model'}")


def old_c6c_partly_vs_ce(gains: Mapping[str, Mapping[str, tuple[float, tuple[float, float]]]],
                         rule: C6cRule = C6C) -> Verdict:
    """C6c as on 2026-12-03..05: 'partly' when a regularizer beats plain cross-entropy (clean
    cost against cross-entropy), 'reproduced' when it also beats the strongest baseline."""
    old_rule = [d for d in for_claim("C6c")
                if d.name == "strongest baseline decides partly"][0].old_rule
    if not gains:
        return Verdict("C6c", NOT_TESTABLE, old_rule, "no regularizer")
    levels = []
    for g in gains.values():
        beats_ce, beats_best = g["vs_ce"][1][0] > 0, g["vs_strongest"][1][0] > 0
        clean_ok = g["clean_vs_ce"][0] >= -rule.clean_drop_tolerance
        levels.append(REPRODUCED if beats_best and beats_ce and clean_ok else
                      PARTLY if beats_ce and clean_ok else NOT_REPRODUCED)
    best = min(levels, key=(REPRODUCED, PARTLY, NOT_REPRODUCED).index)
    return Verdict("C6c", best, old_rule, f"best level over {len(gains)} regularizers")


def old_c6a_strongest(near_ratio_ci_lo: Mapping[str, float], n_far_strong: int) -> Verdict:
    """C6a as before commit 9d11acc: a far top partner among the 15 strongest dependencies."""
    if not near_ratio_ci_lo:
        return Verdict("C6a", NOT_TESTABLE, for_claim("C6a")[0].old_rule, "no model")
    near = all(v > 1 for v in near_ratio_ci_lo.values())
    level = (REPRODUCED if n_far_strong > 0 else PARTLY) if near else NOT_REPRODUCED
    return Verdict("C6a", level, for_claim("C6a")[0].old_rule,
                   f"{n_far_strong} of the 15 strongest lean on a far partner")


def old_c6b_without_random(top1_all: float, top1_all_ci: tuple[float, float],
                           upper_bound: float, top1_hidden_ci_lo: float,
                           n_classes: int = 1000, n_hidden: int = 100) -> Verdict:
    """C6b as before commit 9d11acc (no comparison with random partners)."""
    rule = for_claim("C6b")[0].old_rule
    if top1_all >= 0.5 * upper_bound and top1_all_ci[0] > 10 / n_classes:
        return Verdict("C6b", REPRODUCED, rule, "1000-way top-1 above half of A's own")
    if top1_hidden_ci_lo > 10 / n_hidden:
        return Verdict("C6b", PARTLY, rule, "hidden-class top-1 above 10x chance")
    return Verdict("C6b", NOT_REPRODUCED, rule, "neither top-1 above 10x chance")


def old_c6c_vs_generic(gains: Mapping[str, Mapping[str, tuple[float, tuple[float, float]]]],
                       rule: C6cRule = C6C) -> Verdict:
    """C6c as before commit 9d11acc: the best regularizer against cross-entropy and L2-SP
    (``gains`` as :func:`.rules.c6c_robustness` takes, with ``"vs_generic"`` entries; ``rule``
    gives the clean-drop tolerance the run used)."""
    old_rule = for_claim("C6c")[0].old_rule
    if not gains:
        return Verdict("C6c", NOT_TESTABLE, old_rule, "no regularizer")
    levels = {}
    for kind, g in gains.items():
        beats_ce, beats_gen = g["vs_ce"][1][0] > 0, g["vs_generic"][1][0] > 0
        clean_ok = g["clean_vs_ce"][0] >= -rule.clean_drop_tolerance
        levels[kind] = (REPRODUCED if beats_ce and beats_gen and clean_ok else
                        PARTLY if beats_ce and clean_ok else NOT_REPRODUCED)
    order = (REPRODUCED, PARTLY, NOT_REPRODUCED)
    best = min(levels.values(), key=order.index)
    return Verdict("C6c", best, old_rule, f"best level over {len(gains)} regularizers")

