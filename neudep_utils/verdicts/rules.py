"""The rules that turn measured numbers into verdicts, one per claim.

Everything that decides a verdict lives here, with tests (``tests/test_verdicts.py``): one rule
per claim (the claims and levels are in :mod:`.claims`). Each rule is a plain function of the numbers a
notebook measured and returns a :class:`Verdict` (level, the rule in words, and which part of the
rule held). Notebooks state the rule with :func:`rule_text` and call the function; they never
re-implement a rule.

Levels, from strongest to weakest: ``reproduced``, ``partly reproduced``, ``not reproduced``;
``not testable here`` when the data or models needed are not available.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .claims import (
    NOT_REPRODUCED,
    NOT_TESTABLE,
    PARTLY,
    REPRODUCED,
    Verdict,
)
from .claims import rank as _rank

__all__ = [
    "SimilarCheck",
    "c1_single_model",
    "c2_cross_model",
    "c3_covlasso",
    "c4_redundancy",
    "c5_sparsity",
    "c6a_semantics",
    "c6b_unseen",
    "c6c_robustness",
    "rule_text",
    "similar_performance",
]

# --------------------------------------------------------------------------------------------
# C1 and C2: "similar performance" of a dependency
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimilarCheck:
    """The three parts of the "similar performance" test of one dependency at one k.

    ``drop_ci`` (lo, hi): 95% interval of unmodified minus after-replacement target-class
    accuracy (fraction); ``fp_created`` / ``fp_base``: false positives per target created by the
    replacement / made by the unmodified model; ``vs_random_ci`` (lo, hi): 95% interval of the
    paired accuracy difference with random partners at equal k (``None`` for the random baseline
    itself).
    """

    drop_ci: tuple[float, float]
    fp_created: float
    fp_base: float
    vs_random_ci: tuple[float, float] | None
    tolerance: float = 0.05

    @property
    def accuracy_kept(self) -> bool:
        """Upper end of the drop's interval within the tolerance."""
        return self.drop_ci[1] <= self.tolerance

    @property
    def no_new_false_positives(self) -> bool:
        """No more false positives per target than the unmodified model makes."""
        return self.fp_created <= self.fp_base

    @property
    def beats_random(self) -> bool:
        """Lower end of the paired difference with random partners above 0."""
        return self.vs_random_ci is not None and self.vs_random_ci[0] > 0

    @property
    def holds(self) -> bool:
        """All three parts."""
        return self.accuracy_kept and self.no_new_false_positives and self.beats_random


def similar_performance(drop_ci: tuple[float, float], fp_created: float, fp_base: float,
                        vs_random_ci: tuple[float, float] | None,
                        tolerance: float = 0.05) -> SimilarCheck:
    """Rule: a dependency at support size k "achieves similar performance" when (i) the upper end
    of the 95% interval of the target-class accuracy drop is at most ``tolerance`` (5 points),
    (ii) it creates no more false positives per target than the unmodified model makes, and
    (iii) the lower end of the 95% interval of its paired accuracy gain over random partners at
    the same k is above 0."""
    return SimilarCheck(tuple(drop_ci), float(fp_created), float(fp_base),
                        None if vs_random_ci is None else tuple(vs_random_ci), tolerance)


def c1_single_model(at_headline: Mapping[str, bool], at_sparse: Mapping[str, bool],
                    existential: Mapping[str, bool] | None = None, k_headline: int = 10,
                    k_sparse: int = 100) -> Verdict:
    """C1 from, per model, whether some CovLasso dependency (its coefficients or their
    least-squares refit) achieves similar performance pooled over all targets at ``k_headline``
    (``at_headline``) and at some ``k <= k_sparse`` (``at_sparse``), and whether the existential
    reading holds (``existential``: the targets selected on the fit side keep similar held-out
    accuracy at ``k <= k_headline``)."""
    rule = rule_text("C1", k_headline=k_headline, k_sparse=k_sparse)
    if not at_headline:
        return Verdict("C1", NOT_TESTABLE, rule, "no model was evaluated")
    existential = existential or {}
    heads = [m for m, ok in at_headline.items() if ok]
    sparse = [m for m, ok in at_sparse.items() if ok]
    exist = [m for m, ok in existential.items() if ok]
    if len(heads) == len(at_headline):
        return Verdict("C1", REPRODUCED, rule,
                       f"similar performance at k = {k_headline} for every model")
    reasons = []
    if heads:
        reasons.append(f"similar performance at k = {k_headline} for {', '.join(heads)} only")
    if len(sparse) == len(at_sparse):
        reasons.append(f"similar performance for every model only at some k <= {k_sparse}")
    if exist:
        reasons.append(f"the existential reading holds for {', '.join(exist)}")
    if reasons:
        return Verdict("C1", PARTLY, rule, "; ".join(reasons))
    return Verdict("C1", NOT_REPRODUCED, rule,
                   f"no model reaches similar performance at k = {k_headline}, pooled or for "
                   f"the targets selected on the fit side; at some k <= {k_sparse}: "
                   f"{', '.join(sparse) if sparse else 'none'}")


def c2_cross_model(pair_headline: Mapping[tuple[str, str], bool],
                   pair_sparse: Mapping[tuple[str, str], bool],
                   cross_architecture_tested: bool, k_headline: int = 10,
                   k_sparse: int = 50) -> tuple[Verdict, str]:
    """C2 from, per ordered pair (A, B), whether A's logits are rebuilt from B's (without B's own
    category) with similar performance at ``k_headline`` / at some ``k <= k_sparse``. Returns the
    verdict and the state of the pairs tested ("holds", "partly holds" or "fails")."""
    rule = rule_text("C2", k_headline=k_headline, k_sparse=k_sparse)
    if not pair_headline:
        return Verdict("C2", NOT_TESTABLE, rule, "no pair was evaluated"), "fails"
    if all(pair_headline.values()):
        state = "holds"
    elif any(pair_headline.values()) or all(pair_sparse.values()):
        state = "partly holds"
    else:
        state = "fails"
    if state == "fails":
        level = NOT_REPRODUCED
    elif state == "holds" and cross_architecture_tested:
        level = REPRODUCED
    else:
        level = PARTLY
    arch = ("a CNN-transformer pair was tested" if cross_architecture_tested
            else "no CNN-transformer pair could be tested")
    return Verdict("C2", level, rule, f"the tested pairs: {state}; {arch}"), state


def c3_covlasso(max_rel_gap: float, lasso_agreement: float, gap_tol: float = 1e-5,
                agreement_tol: float = 1e-4) -> Verdict:
    """C3 from the largest relative duality gap along the CovLasso paths and the relative
    coefficient difference between the CovLasso (from the covariance alone) and a Lasso solved on
    the data rows."""
    rule = rule_text("C3", gap_tol=gap_tol, agreement_tol=agreement_tol)
    ok = max_rel_gap <= gap_tol and lasso_agreement <= agreement_tol
    why = (f"max relative gap {max_rel_gap:.1e} (<= {gap_tol:g}: {max_rel_gap <= gap_tol}), "
           f"agreement with the row Lasso {lasso_agreement:.1e} "
           f"(<= {agreement_tol:g}: {lasso_agreement <= agreement_tol})")
    return Verdict("C3", REPRODUCED if ok else NOT_REPRODUCED, rule, why)


def c4_redundancy(predicts: Mapping[str, tuple[float, float]], gain_ci: tuple[float, float],
                  k_small: int, k_full: int) -> Verdict:
    """C4 from, per model with a full-rank covariance, the 95% interval of the rank correlation
    between a target's redundancy (its in-sample unregularized relative residual) and the
    support its dependency needs for a held-out fidelity (``predicts``), and the 95% interval of
    the median out-of-sample gain from K = ``k_small`` to ``k_full`` categories (``gain_ci``)."""
    rule = rule_text("C4", k_small=k_small, k_full=k_full)
    tested = {m: ci for m, ci in predicts.items() if np.isfinite(ci[0])}
    good = [m for m, ci in tested.items() if ci[0] > 0]
    all_predict = bool(tested) and len(good) == len(tested)
    gain = bool(np.isfinite(gain_ci[0]) and gain_ci[0] > 0)
    if all_predict and gain:
        level = REPRODUCED
    elif good or gain:
        level = PARTLY
    else:
        level = NOT_REPRODUCED
    pred = (f"redundancy predicts the support needed in {len(good)} of {len(tested)} models "
            f"tested ({', '.join(good) if good else 'none'})")
    why = (f"{pred}; out-of-sample gain from K = {k_small} to {k_full}: interval "
           f"[{gain_ci[0]:.3f}, {gain_ci[1]:.3f}] {'excludes' if gain else 'does not exclude'} 0")
    return Verdict("C4", level, rule, why)


def c5_sparsity(k_functional: float, frac_reaching: float, median_k: float,
                sparse_k: int = 20, threshold: float = 0.3, k_sparse: int = 100) -> Verdict:
    """C5 from C1's functional criterion and from fidelity: ``k_functional`` is the smallest
    median support size along the CovLasso path at which the pooled held-out target-class
    accuracy after replacement is within the tolerance of the unmodified model (NaN: never);
    ``frac_reaching`` the share of targets whose path reaches held-out 1 - R^2 <= ``threshold``
    and ``median_k`` their median support there."""
    rule = rule_text("C5", sparse_k=sparse_k, threshold=threshold, k_sparse=k_sparse)
    func = np.isfinite(k_functional)
    fid = frac_reaching >= 0.5 and np.isfinite(median_k) and median_k <= sparse_k
    if func and k_functional <= sparse_k:
        level, why = REPRODUCED, f"similar accuracy at a median support of {k_functional:.0f}"
    elif (func and k_functional <= k_sparse) or fid:
        level = PARTLY
        why = (f"similar accuracy only at a median support of {k_functional:.0f}" if func
               and k_functional <= k_sparse else
               f"{frac_reaching:.0%} of targets reach 1 - R^2 <= {threshold:g} with median "
               f"k {median_k:.0f}, but accuracy is not kept at k <= {k_sparse}")
    else:
        level = NOT_REPRODUCED
        why = ((f"similar accuracy needs a median support of {k_functional:.0f}" if func else
                "similar accuracy is not reached along the path") +
               f"; {frac_reaching:.0%} of targets reach 1 - R^2 <= {threshold:g}")
    return Verdict("C5", level, rule, why)


def c6a_semantics(near_ratio_ci_lo: Mapping[str, float], n_far_strong: int,
                  near_distance: int = 4) -> Verdict:
    """C6a from, per model, the lower end of the 95% interval of (share of partners semantically
    near their target) / (share expected for random partners), and the number of the strongest
    dependencies whose top partner is semantically far."""
    rule = rule_text("C6a", near_distance=near_distance)
    if not near_ratio_ci_lo:
        return Verdict("C6a", NOT_TESTABLE, rule, "no model was evaluated")
    near = all(v > 1 for v in near_ratio_ci_lo.values())
    if near:
        level = REPRODUCED if n_far_strong > 0 else PARTLY
    else:
        level = NOT_REPRODUCED
    why = (f"partners near more often than chance in {'every' if near else 'not every'} model; "
           f"{n_far_strong} of the strongest dependencies lean on a semantically far partner")
    return Verdict("C6a", level, rule, why)


def c6b_unseen(top1_all: float, top1_all_ci: tuple[float, float], upper_bound: float,
               top1_hidden_ci_lo: float, n_classes: int = 1000, n_hidden: int = 100) -> Verdict:
    """C6b from the rebuilt classes' top-1 among all classes (point, interval), A's own top-1 on
    the same images (the upper bound) and the lower end of the interval of the top-1 among the
    hidden classes only."""
    rule = rule_text("C6b")
    if top1_all >= 0.5 * upper_bound and top1_all_ci[0] > 10 / n_classes:
        level, why = REPRODUCED, "1000-way top-1 is at least half of A's own, above 10x chance"
    elif top1_hidden_ci_lo > 10 / n_hidden:
        level, why = PARTLY, "only the top-1 among the hidden classes is above 10x chance"
    else:
        level, why = NOT_REPRODUCED, "neither top-1 is above 10x chance"
    return Verdict("C6b", level, rule, why)


def c6c_robustness(gains: Mapping[str, Mapping[str, tuple[float, tuple[float, float]]]],
                   clean_drop_tolerance: float = 0.005) -> tuple[Verdict, str]:
    """C6c from, per dependency regularizer, the paired corruption top-1 differences with plain
    cross-entropy (``"vs_ce"``) and with the generic regularizer (``"vs_generic"``), and the
    clean top-1 difference with cross-entropy (``"clean_vs_ce"``); each ``(point, (lo, hi))``.
    Returns the verdict of the best regularizer and its name (best: highest verdict, then largest
    corruption gain over cross-entropy)."""
    rule = rule_text("C6c", clean_drop_tolerance=clean_drop_tolerance)
    if not gains:
        return Verdict("C6c", NOT_TESTABLE, rule, "no regularizer was evaluated"), ""
    levels = {}
    for kind, g in gains.items():
        beats_ce = g["vs_ce"][1][0] > 0
        beats_gen = g["vs_generic"][1][0] > 0
        clean_ok = g["clean_vs_ce"][0] >= -clean_drop_tolerance
        levels[kind] = (REPRODUCED if beats_ce and beats_gen and clean_ok else
                        PARTLY if beats_ce and clean_ok else NOT_REPRODUCED)
    best = min(levels, key=lambda k: (_rank(levels[k]), -gains[k]["vs_ce"][0]))
    g = gains[best]
    why = (f"best regularizer {best}: corruption gain vs cross-entropy {g['vs_ce'][0]:+.4f} "
           f"[{g['vs_ce'][1][0]:+.4f}, {g['vs_ce'][1][1]:+.4f}], vs the generic regularizer "
           f"{g['vs_generic'][0]:+.4f} [{g['vs_generic'][1][0]:+.4f}, "
           f"{g['vs_generic'][1][1]:+.4f}], clean vs cross-entropy {g['clean_vs_ce'][0]:+.4f}")
    return Verdict("C6c", levels[best], rule, why), best


# --------------------------------------------------------------------------------------------
# the rules in words
# --------------------------------------------------------------------------------------------

_RULES = {
    "similar": (
        "A dependency \"achieves similar performance\" at support size k when (i) the target-class "
        "accuracy after replacement is within {tolerance_points:g} points of the unmodified "
        "model's on the same images (upper end of the 95% interval of the drop), (ii) it creates "
        "no more false positives per target than the unmodified model already makes, and (iii) it "
        "beats random partners at the same k (95% interval of the paired difference above 0). A "
        "CovLasso dependency counts with its own coefficients or refitted by least squares on its "
        "support."),
    "C1": (
        "**C1 is reproduced** if some CovLasso dependency achieves similar performance at "
        "k = {k_headline}, pooled over all targets, for every model; **partly reproduced** if "
        "it does so only for some models, or for every model only at some k <= {k_sparse}, or "
        "if the existential reading holds for some model (the categories selected on the fit "
        "side alone, 5% of them, keep their held-out target-class accuracy within the "
        "tolerance at k <= {k_headline}); **not reproduced** otherwise."),
    "C2": (
        "For an ordered pair (A, B), A's logit is rebuilt from B's logits **without** B's own "
        "category. The pairs tested *hold* if every pair achieves similar performance at "
        "k = {k_headline}, *partly hold* if some pairs do, or every pair only at some "
        "k <= {k_sparse}, and *fail* otherwise. **C2 is reproduced** if the pairs hold and a "
        "CNN-transformer pair was among them; **partly reproduced** if they hold or partly hold "
        "without such a pair; **not reproduced** if they fail."),
    "C3": (
        "**C3 is reproduced** if the CovLasso solved from the covariance alone is certified (max "
        "relative duality gap <= {gap_tol:g}) and matches the Lasso solved on the data rows "
        "(relative coefficient difference <= {agreement_tol:g}); **not reproduced** otherwise. "
        "The path is continuous and piecewise linear in lam (a Lasso property); \"smooth\" is "
        "read as continuity."),
    "C4": (
        "**C4 is reproduced** if, in every model whose logit covariance is full rank, a "
        "target's redundancy predicts the support its dependency needs (rank correlation "
        "between the in-sample unregularized relative residual r_i / C_ii and the smallest k "
        "reaching held-out 1 - R^2 <= the fidelity threshold, 95% bootstrap interval over the "
        "1000 targets above 0) **and** the out-of-sample best residual improves from "
        "K = {k_small} to K = {k_full} categories (95% interval of the median paired gain over "
        "the 1000 targets above 0); **partly reproduced** if only one holds (or the first in "
        "some models only); **not reproduced** otherwise. Interlacing (the in-sample residual "
        "can only fall as categories are added) is an identity and is shown, not scored."),
    "C5": (
        "**C5 is reproduced** if C1's functional criterion is met at a few partners: along the "
        "CovLasso path (least-squares refits, all 1000 targets), the pooled held-out "
        "target-class accuracy after replacement is within 5 points of the unmodified model "
        "(upper end of its 95% interval) at a median support size <= {sparse_k}; **partly "
        "reproduced** if that happens only at a median support <= {k_sparse}, or if at least "
        "half of the targets reach held-out 1 - R^2 <= {threshold:g} with median k <= "
        "{sparse_k}; **not reproduced** otherwise."),
    "C6a": (
        "**C6a is reproduced** if, in every model, partners are semantically near their target "
        "(WordNet distance <= {near_distance}) more often than random partners at the same k "
        "(95% interval of the ratio above 1) **and** some of the strongest dependencies lean on a "
        "semantically far top partner (the \"counter-intuitive\" cases); **partly reproduced** if "
        "only the first holds; **not reproduced** otherwise."),
    "C6b": (
        "With the cross-model construction at the headline k (CovLasso or its refit), pooled "
        "over pairs: **C6b is reproduced** if the 1000-way top-1 on hidden-class images is at "
        "least half of A's own (the upper bound) and its 95% interval is above 10x chance; "
        "**partly reproduced** if only the top-1 among the hidden classes has its 95% interval "
        "above 10x chance; **not reproduced** otherwise."),
    "C6c": (
        "**C6c is reproduced** if some dependency regularizer beats both plain cross-entropy and "
        "the generic regularizer (L2-SP) on mean corruption top-1, with the 95% bootstrap "
        "interval (over eval images, paired, averaged over seeds) of both differences above 0, "
        "and costs at most {clean_drop_tolerance:g} clean top-1 against plain cross-entropy; "
        "**partly reproduced** if it beats plain cross-entropy that way but not the generic "
        "regularizer; **not reproduced** otherwise. The best regularizer decides."),
}


def rule_text(rule: str, **params: float) -> str:
    """A verdict rule in words (Markdown), with its parameters filled in. ``rule``: a claim id or
    ``"similar"`` (the "similar performance" test of C1 and C2)."""
    if rule not in _RULES:
        raise KeyError(f"no rule {rule!r}; known: {sorted(_RULES)}")
    defaults = {"tolerance_points": 5, "k_headline": 10, "k_sparse": 100, "gap_tol": 1e-5,
                "agreement_tol": 1e-4, "k_small": 10, "k_full": 1000, "threshold": 0.3,
                "sparse_k": 20, "near_distance": 4, "clean_drop_tolerance": 0.005}
    return _RULES[rule].format(**{**defaults, **params})
