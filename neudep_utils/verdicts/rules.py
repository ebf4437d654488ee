"""The rules that turn measured numbers into verdicts: one per claim, thresholds, function and text
together.

Each rule is a frozen dataclass holding its thresholds (the only place they are defined), with
:meth:`~Rule.text` (the rule in words, thresholds filled in) and a function of the numbers a
notebook measured that returns a :class:`~.claims.Verdict` (level, the rule in words, and which
part of the rule held). Notebooks state a rule with ``rules.C1.text()`` (or :func:`rule_text`)
and call its function; they never re-implement a rule or type a threshold. Every change of a rule
after results were seen is logged in :mod:`.deviations`. The rules of C6a-C6c live in
:mod:`.rules_c6` and the "similar performance" test of C1 and C2 in :mod:`.similar`; both are
re-exported here, so ``rules.C6B`` and ``rules.similar_performance`` resolve.

Example::

    from neudep_utils.verdicts import rules
    rules.C1.k_headline               # 10: "a few" partners
    v = rules.c1_single_model(at_head, at_sparse, existential)
    v.level, v.why
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from ._rule import _Rule
from .claims import CLAIMS, NOT_REPRODUCED, NOT_TESTABLE, PARTLY, REPRODUCED, Verdict
from .rules_c6 import (
    C6A,
    C6B,
    C6C,
    C6aRule,
    C6bRule,
    C6cRule,
    c6a_semantics,
    c6b_unseen,
    c6c_robustness,
)
from .similar import SIMILAR, SimilarCheck, SimilarRule, similar_performance

__all__ = [
    "C1", "C2", "C3", "C4", "C5", "C6A", "C6B", "C6C", "RULES", "SIMILAR",
    "C1Rule", "C2Rule", "C3Rule", "C4Rule", "C5Rule", "C6aRule", "C6bRule", "C6cRule",
    "SimilarCheck", "SimilarRule",
    "c1_single_model", "c2_cross_model", "c3_covlasso", "c4_redundancy", "c5_sparsity",
    "c6a_semantics", "c6b_unseen", "c6c_robustness", "rule_text", "similar_performance",
]


# --------------------------------------------------------------------------------------------
# C1, C2 (the "similar performance" test they share is in .similar)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class C1Rule(_Rule):
    """C1: ``k_headline`` ("a few" partners), ``k_sparse`` (the largest k still called sparse),
    ``top_share`` (share of categories the existential reading selects on the fit side)."""

    k_headline: int = 10
    k_sparse: int = 100
    top_share: float = 0.05

    TEXT = (
        "**C1 is reproduced** if some sparse linear combination of other logits achieves "
        "similar performance at k = {k_headline}, pooled over all targets, for every model: a "
        "CovLasso dependency (its coefficients or their least-squares refit) or, under the "
        "**most favourable linear reading**, the same partners or partners chosen for "
        "classification with weights and level fitted to the model's own decisions (the "
        "random-partner baseline fitted the same way); **partly reproduced** if that holds "
        "only for some models, or for every model only at some k <= {k_sparse}, or if the "
        "existential reading holds for some model (the categories selected on the fit side "
        "alone, {top_share_pct:g}% of them, keep their held-out target-class accuracy within "
        "the tolerance at k <= {k_headline}); **not reproduced** otherwise. The verdict names "
        "the reading that carried it; when only the most favourable reading holds, CovLasso "
        "(the paper's method) did not find the combination.")

    def params(self) -> dict[str, float]:
        """Thresholds, with the top share also in percent."""
        return {**super().params(), "top_share_pct": round(100 * self.top_share, 6)}


C1 = C1Rule()


def _either(a: Mapping[str, bool], b: Mapping[str, bool] | None) -> dict[str, bool]:
    """Per model: ``a`` or ``b`` (``b`` missing: ``a`` alone)."""
    b = b or {}
    return {m: bool(v or b.get(m, False)) for m, v in a.items()}


def c1_single_model(at_headline: Mapping[str, bool], at_sparse: Mapping[str, bool],
                    existential: Mapping[str, bool] | None = None,
                    rule: C1Rule = C1,
                    favourable_headline: Mapping[str, bool] | None = None,
                    favourable_sparse: Mapping[str, bool] | None = None) -> Verdict:
    """C1 (:data:`C1`) from per-model outcomes of the "similar performance" test.

    Parameters
    ----------
    at_headline : mapping of model -> bool
        Some CovLasso dependency (its coefficients or their least-squares refit) achieves
        similar performance pooled over all targets at ``rule.k_headline``.
    at_sparse : mapping of model -> bool
        The same at some ``k <= rule.k_sparse``.
    existential : mapping of model -> bool, optional
        The targets selected on the fit side keep similar held-out accuracy at
        ``k <= rule.k_headline``.
    rule : C1Rule
    favourable_headline, favourable_sparse : mapping of model -> bool, optional
        The most favourable linear reading (weights and level fitted for classification, on
        the CovLasso support or a support chosen for classification) achieves similar
        performance at ``rule.k_headline`` / at some measured ``k <= rule.k_sparse``.

    Returns
    -------
    Verdict
    """
    k_headline, k_sparse = rule.k_headline, rule.k_sparse
    text = rule.text()
    if not at_headline:
        return Verdict("C1", NOT_TESTABLE, text, "no model was evaluated")
    existential = existential or {}
    head_any = _either(at_headline, favourable_headline)
    sparse_any = _either(at_sparse, favourable_sparse)
    heads = [m for m, ok in head_any.items() if ok]
    sparse = [m for m, ok in sparse_any.items() if ok]
    exist = [m for m, ok in existential.items() if ok]
    by_fav = [m for m in heads if not at_headline.get(m)]
    carried = (f" (by the most favourable linear reading only for {', '.join(by_fav)}: "
               "CovLasso does not find the combination there)" if by_fav else "")
    if len(heads) == len(head_any):
        return Verdict("C1", REPRODUCED, text,
                       f"similar performance at k = {k_headline} for every model{carried}")
    reasons = []
    if heads:
        reasons.append(f"similar performance at k = {k_headline} for {', '.join(heads)} "
                       f"only{carried}")
    if len(sparse) == len(sparse_any):
        reasons.append(f"similar performance for every model only at some k <= {k_sparse}")
    if exist:
        reasons.append(f"the existential reading holds for {', '.join(exist)}")
    if reasons:
        return Verdict("C1", PARTLY, text, "; ".join(reasons))
    fav = (" or under the most favourable linear reading" if favourable_headline is not None
           else "")
    return Verdict("C1", NOT_REPRODUCED, text,
                   f"no model reaches similar performance at k = {k_headline}, pooled{fav} or "
                   f"for the targets selected on the fit side; at some k <= {k_sparse}: "
                   f"{', '.join(sparse) if sparse else 'none'}")


@dataclass(frozen=True)
class C2Rule(_Rule):
    """C2: ``k_headline`` and ``k_sparse`` of the pairs' similar-performance test."""

    k_headline: int = 10
    k_sparse: int = 50

    TEXT = (
        "For an ordered pair (A, B), A's logit is rebuilt from B's logits **without** B's own "
        "category, by a CovLasso dependency (coefficients or refit) or under the **most "
        "favourable linear reading** (weights and level fitted to A's own decisions, on the "
        "CovLasso partners or on B's logits chosen for classification; random partners fitted "
        "the same way). The pairs tested *hold* if every pair achieves similar performance at "
        "k = {k_headline}, *partly hold* if some pairs do, or every pair only at some "
        "k <= {k_sparse}, and *fail* otherwise. **C2 is reproduced** if the pairs hold and a "
        "CNN-transformer pair was among them; **partly reproduced** if they hold or partly hold "
        "without such a pair; **not reproduced** if they fail. The verdict names the reading "
        "that carried it.")


C2 = C2Rule()


def c2_cross_model(pair_headline: Mapping[tuple[str, str], bool],
                   pair_sparse: Mapping[tuple[str, str], bool],
                   cross_architecture_tested: bool, rule: C2Rule = C2,
                   favourable_headline: Mapping[tuple[str, str], bool] | None = None,
                   favourable_sparse: Mapping[tuple[str, str], bool] | None = None
                   ) -> tuple[Verdict, str]:
    """C2 (:data:`C2`) from per ordered pair (A, B) outcomes.

    Parameters
    ----------
    pair_headline, pair_sparse : mapping of (A, B) -> bool
        A's logits are rebuilt from B's (without B's own category) by a CovLasso dependency
        with similar performance at ``rule.k_headline`` / at some ``k <= rule.k_sparse``.
    cross_architecture_tested : bool
        Whether a CNN-transformer pair was among the pairs.
    rule : C2Rule
    favourable_headline, favourable_sparse : mapping of (A, B) -> bool, optional
        The same under the most favourable linear reading.

    Returns
    -------
    (Verdict, str)
        The verdict and the state of the pairs tested ("holds", "partly holds" or "fails").
    """
    text = rule.text()
    if not pair_headline:
        return Verdict("C2", NOT_TESTABLE, text, "no pair was evaluated"), "fails"
    head = _either(pair_headline, favourable_headline)
    sparse = _either(pair_sparse, favourable_sparse)
    if all(head.values()):
        state = "holds"
    elif any(head.values()) or all(sparse.values()):
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
            else "no CNN-transformer pair was tested")
    by_fav = [p for p, ok in head.items() if ok and not pair_headline.get(p)]
    carried = (f"; by the most favourable linear reading only for {len(by_fav)} pair(s) "
               "(CovLasso does not find the combination there)" if by_fav else "")
    n = len(head)
    counts = (f"{sum(head.values())} of {n} ordered pairs reach similar performance at "
              f"k = {rule.k_headline}, {sum(sparse.values())} of {n} at some "
              f"k <= {rule.k_sparse}")
    return (Verdict("C2", level, text, f"the tested pairs: {state} ({counts}); {arch}{carried}"),
            state)


# --------------------------------------------------------------------------------------------
# C3, C4, C5
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class C3Rule(_Rule):
    """C3: ``gap_tol`` (largest relative duality gap) and ``agreement_tol`` (largest relative
    coefficient difference from a Lasso on the data rows)."""

    gap_tol: float = 1e-5
    agreement_tol: float = 1e-4

    TEXT = (
        "**C3 is reproduced** if the CovLasso solved from the covariance alone is certified (max "
        "relative duality gap <= {gap_tol:g}) and matches the Lasso solved on the data rows "
        "(relative coefficient difference <= {agreement_tol:g}); **not reproduced** otherwise. "
        "The path is continuous and piecewise linear in lam (a Lasso property); \"smooth\" is "
        "read as continuity.")


C3 = C3Rule()


def c3_covlasso(max_rel_gap: float, lasso_agreement: float, rule: C3Rule = C3) -> Verdict:
    """C3 (:data:`C3`) from the largest relative duality gap along the CovLasso paths and the
    relative coefficient difference between the CovLasso (from the covariance alone) and a Lasso
    solved on the data rows."""
    gap_ok, agree_ok = max_rel_gap <= rule.gap_tol, lasso_agreement <= rule.agreement_tol
    why = (f"max relative gap {max_rel_gap:.1e} (<= {rule.gap_tol:g}: {gap_ok}), "
           f"agreement with the row Lasso {lasso_agreement:.1e} "
           f"(<= {rule.agreement_tol:g}: {agree_ok})")
    return Verdict("C3", REPRODUCED if gap_ok and agree_ok else NOT_REPRODUCED, rule.text(), why)


@dataclass(frozen=True)
class C4Rule(_Rule):
    """C4: the category counts ``k_small`` and ``k_full`` of the subset experiment and the held-out
    fidelity ``threshold`` that defines "the support a dependency needs"."""

    k_small: int = 10
    k_full: int = 1000
    threshold: float = 0.3

    TEXT = (
        "**C4 is reproduced** if, in every model whose logit covariance is full rank, a "
        "target's redundancy predicts the support its dependency needs (rank correlation "
        "between the in-sample unregularized relative residual r_i / C_ii and the smallest k "
        "reaching held-out 1 - R^2 <= {threshold:g}, over the 1000 targets) **beyond what the "
        "mechanics alone give** (the 95% bootstrap interval of the correlation minus the "
        "correlation of a null covariance with the same spectrum and random eigenvectors is "
        "above 0) **and** the out-of-sample best residual improves from K = {k_small} to "
        "K = {k_full} categories (95% interval of the median paired gain over the 1000 targets "
        "above 0); **partly reproduced** if only one holds (or the first in some models only); "
        "**not reproduced** otherwise. Models whose covariance is singular (d < n) are not "
        "tested (n/a): every residual is 0 there. Interlacing (the in-sample residual can only "
        "fall as categories are added) is an identity and is shown, not scored.")


C4 = C4Rule()


def c4_redundancy(beyond_null: Mapping[str, tuple[float, float]], gain_ci: tuple[float, float],
                  rule: C4Rule = C4) -> Verdict:
    """C4 (:data:`C4`).

    Parameters
    ----------
    beyond_null : mapping of model -> (lo, hi)
        Per model with a full-rank covariance, the 95% interval of (rank correlation of
        redundancy with the support needed) minus (the same correlation under the null
        covariance); NaN for models that are not tested (singular covariance: n/a).
    gain_ci : (lo, hi)
        95% interval of the median out-of-sample gain from K = ``k_small`` to ``k_full``.
    rule : C4Rule

    Returns
    -------
    Verdict
    """
    tested = {m: ci for m, ci in beyond_null.items() if np.isfinite(ci[0])}
    good = [m for m, ci in tested.items() if ci[0] > 0]
    all_predict = bool(tested) and len(good) == len(tested)
    gain = bool(np.isfinite(gain_ci[0]) and gain_ci[0] > 0)
    if all_predict and gain:
        level = REPRODUCED
    elif good or gain:
        level = PARTLY
    else:
        level = NOT_REPRODUCED
    na = [m for m in beyond_null if m not in tested]
    pred = (f"redundancy predicts the support needed beyond the null in {len(good)} of "
            f"{len(tested)} models tested ({', '.join(good) if good else 'none'})"
            + (f"; n/a (singular covariance): {', '.join(na)}" if na else ""))
    why = (f"{pred}; out-of-sample gain from K = {rule.k_small} to {rule.k_full}: interval "
           f"[{gain_ci[0]:.3f}, {gain_ci[1]:.3f}] {'excludes' if gain else 'does not exclude'} 0")
    return Verdict("C4", level, rule.text(), why)


@dataclass(frozen=True)
class C5Rule(_Rule):
    """C5: ``sparse_k`` ("a few" partners, 2% of 1000), ``k_sparse`` (the largest support still
    called sparse), ``threshold`` (held-out 1 - R^2 of the correlational reading) and the
    accuracy ``tolerance`` of the functional reading (C1's)."""

    sparse_k: int = 20
    k_sparse: int = 100
    threshold: float = 0.3
    tolerance: float = SIMILAR.tolerance

    TEXT = (
        "**C5 is reproduced** if C1's functional criterion is met at a few partners: along the "
        "CovLasso path (least-squares refits, all 1000 targets), the pooled held-out "
        "target-class accuracy after replacement is within {tolerance_points:g} points of the "
        "unmodified model (upper end of its 95% interval) at a median support size <= "
        "{sparse_k}; **partly reproduced** if that happens only at a median support <= "
        "{k_sparse}; **not reproduced** otherwise. Beside it, not deciding, the correlational "
        "reading the claim's wording (\"correlates with only a few others\") suggests: the "
        "median number of partners a target needs for held-out 1 - R^2 <= {threshold:g}.")

    def params(self) -> dict[str, float]:
        """Thresholds, with the tolerance also in points."""
        return {**super().params(), "tolerance_points": round(100 * self.tolerance, 6)}


C5 = C5Rule()


def c5_sparsity(k_functional: float, rule: C5Rule = C5) -> Verdict:
    """C5 (:data:`C5`), the functional reading that decides.

    Parameters
    ----------
    k_functional : float
        The smallest median support size along the CovLasso path at which the pooled held-out
        target-class accuracy after replacement is within the tolerance of the unmodified model
        (NaN: never).
    rule : C5Rule

    Returns
    -------
    Verdict
    """
    func = bool(np.isfinite(k_functional))
    if func and k_functional <= rule.sparse_k:
        level, why = REPRODUCED, f"similar accuracy at a median support of {k_functional:.0f}"
    elif func and k_functional <= rule.k_sparse:
        level, why = PARTLY, f"similar accuracy only at a median support of {k_functional:.0f}"
    else:
        level = NOT_REPRODUCED
        why = (f"similar accuracy needs a median support of {k_functional:.0f}" if func else
               "similar accuracy is not reached along the path")
    return Verdict("C5", level, rule.text(), why)


def c5_correlational(frac_reaching: float, median_k: float, rule: C5Rule = C5) -> dict:
    """The correlational reading of C5, shown beside the verdict (it does not decide it).

    Parameters
    ----------
    frac_reaching : float
        Share of targets whose CovLasso path reaches held-out 1 - R^2 <= ``rule.threshold``.
    median_k : float
        The median number of partners those targets need to get there.
    rule : C5Rule

    Returns
    -------
    dict
        ``reading`` (its definition), ``frac_reaching``, ``median_k`` and ``few`` (whether the
        median is at most ``rule.sparse_k``).
    """
    few = bool(np.isfinite(median_k) and median_k <= rule.sparse_k)
    return {"reading": f"partners needed for held-out 1 - R^2 <= {rule.threshold:g} "
                       f"(median over the targets that reach it)",
            "frac_reaching": float(frac_reaching), "median_k": float(median_k), "few": few}


# --------------------------------------------------------------------------------------------
# the rules by name
# --------------------------------------------------------------------------------------------

RULES: dict[str, _Rule] = {"similar": SIMILAR, "C1": C1, "C2": C2, "C3": C3, "C4": C4, "C5": C5,
                           "C6a": C6A, "C6b": C6B, "C6c": C6C}
assert set(RULES) == {"similar", *CLAIMS}


def rule_text(rule: str, **thresholds: float) -> str:
    """A verdict rule in words (Markdown). ``rule``: a claim id or ``"similar"``; keyword
    arguments replace thresholds (for a reader's what-if; the study uses the defaults)."""
    if rule not in RULES:
        raise KeyError(f"no rule {rule!r}; known: {sorted(RULES)}")
    return replace(RULES[rule], **thresholds).text() if thresholds else RULES[rule].text()
