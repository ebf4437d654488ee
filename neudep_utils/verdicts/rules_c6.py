"""The rules of C6's three parts (the paper's uses of dependencies): C6a understanding
correlations, C6b unseen categories, C6c robustness. Thresholds, function and text together, as
every rule; re-exported by :mod:`.rules`, where the rules of C1-C5 live and :data:`~.rules.RULES`
names them all."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ._rule import _Rule
from .claims import NOT_REPRODUCED, NOT_TESTABLE, PARTLY, REPRODUCED, Verdict
from .claims import rank as _rank

__all__ = ["C6A", "C6B", "C6C", "C6aRule", "C6bRule", "C6cRule", "c6a_semantics", "c6b_unseen",
           "c6c_robustness"]


@dataclass(frozen=True)
class C6aRule(_Rule):
    """C6a: ``near_distance`` (WordNet distance counted as near), ``well_fitted`` (held-out
    1 - R^2 of a dependency worth interpreting) and ``min_far_share`` (share of the well-fitted
    targets with a counter-intuitive top partner that counts as "sometimes")."""

    near_distance: int = 4
    well_fitted: float = 0.3
    min_far_share: float = 0.05

    TEXT = (
        "**C6a is reproduced** if, in every model, partners are semantically near their target "
        "(WordNet distance <= {near_distance}) more often than random partners at the same k "
        "(95% interval of the ratio above 1) **and**, in some model, at least {min_far_pct:g}% "
        "of the well-fitted targets (held-out 1 - R^2 <= {well_fitted:g}) lean on a "
        "**counter-intuitive** top partner, more often than chance: a partner that is "
        "semantically far (distance > {near_distance}), is not a visual confusion of the model "
        "(neither class is among the model's top-5 classes on any image of the other), and is "
        "chosen again by the dependency fitted on the other half of the images (lower end of "
        "the 95% interval of that share at least {min_far_pct:g}% and above the share expected "
        "if such partners were noise, re-chosen with probability k / (n - 1)); **partly "
        "reproduced** if only the first holds; **not reproduced** otherwise. WordNet distance "
        "and the model's confusions stand in for human intuition, which this study cannot "
        "measure.")

    def params(self) -> dict[str, float]:
        """Thresholds, with the far share also in percent."""
        return {**super().params(), "min_far_pct": round(100 * self.min_far_share, 6)}


C6A = C6aRule()


def c6a_semantics(near_ratio_ci_lo: Mapping[str, float],
                  counter_ci_lo: Mapping[str, float],
                  counter_chance: Mapping[str, float] | None = None,
                  rule: C6aRule = C6A) -> Verdict:
    """C6a (:data:`C6A`).

    Parameters
    ----------
    near_ratio_ci_lo : mapping of model -> float
        Lower end of the 95% interval of (share of partners near their target) / (share
        expected for random partners).
    counter_ci_lo : mapping of model -> float
        Lower end of the 95% interval of the share of well-fitted targets with a
        counter-intuitive top partner (far, not a visual confusion, re-chosen on the other half
        of the images); NaN when no target is well fitted.
    counter_chance : mapping of model -> float, optional
        The share expected if those partners were noise (0 when missing).
    rule : C6aRule

    Returns
    -------
    Verdict
    """
    if not near_ratio_ci_lo:
        return Verdict("C6a", NOT_TESTABLE, rule.text(), "no model was evaluated")
    chance = counter_chance or {}
    near = all(v > 1 for v in near_ratio_ci_lo.values())
    counter = [m for m, v in counter_ci_lo.items()
               if np.isfinite(v) and v >= rule.min_far_share and v > chance.get(m, 0.0)]
    if near:
        level = REPRODUCED if counter else PARTLY
    else:
        level = NOT_REPRODUCED
    why = (f"partners near more often than chance in {'every' if near else 'not every'} model; "
           f"a counter-intuitive top partner (far, not a visual confusion, re-chosen on the "
           f"other half) in at least {100 * rule.min_far_share:g}% of the well-fitted targets "
           f"and above chance: {', '.join(counter) if counter else 'no model'}")
    return Verdict("C6a", level, rule.text(), why)


@dataclass(frozen=True)
class C6bRule(_Rule):
    """C6b: ``chance_multiple`` (how many times chance a top-1 must exceed) and ``half`` (the
    share of A's own top-1 the 1000-way reading must reach)."""

    chance_multiple: float = 10.0
    half: float = 0.5

    TEXT = (
        "With the cross-model construction at the headline k (CovLasso or its refit), pooled "
        "over pairs: **C6b is reproduced** if the 1000-way top-1 on hidden-class images is at "
        "least {half_pct:g}% of A's own (the upper bound) and its 95% interval is above "
        "{chance_multiple:g}x chance; **partly reproduced** if only the top-1 among the hidden "
        "classes has its 95% interval above {chance_multiple:g}x chance **and above random "
        "partners at the same k** (95% interval of the paired difference above 0); **not "
        "reproduced** otherwise.")

    def params(self) -> dict[str, float]:
        """Thresholds, with the half also in percent."""
        return {**super().params(), "half_pct": round(100 * self.half, 6)}


C6B = C6bRule()


def c6b_unseen(top1_all: float, top1_all_ci: tuple[float, float], upper_bound: float,
               top1_hidden_ci_lo: float, vs_random_ci_lo: float, n_classes: int = 1000,
               n_hidden: int = 100, rule: C6bRule = C6B) -> Verdict:
    """C6b (:data:`C6B`).

    Parameters
    ----------
    top1_all, top1_all_ci : float, (float, float)
        The rebuilt classes' 1000-way top-1 on hidden-class images and its interval.
    upper_bound : float
        A's own top-1 on the same images.
    top1_hidden_ci_lo : float
        Lower end of the interval of the top-1 among the hidden classes only.
    vs_random_ci_lo : float
        Lower end of the interval of the paired difference of that top-1 with random partners.
    n_classes, n_hidden : int
        Chance levels are 1 / n_classes and 1 / n_hidden.
    rule : C6bRule

    Returns
    -------
    Verdict
    """
    m = rule.chance_multiple
    if top1_all >= rule.half * upper_bound and top1_all_ci[0] > m / n_classes:
        level, why = REPRODUCED, (f"1000-way top-1 is at least {100 * rule.half:g}% of A's own, "
                                  f"above {m:g}x chance")
    elif top1_hidden_ci_lo > m / n_hidden and vs_random_ci_lo > 0:
        level, why = PARTLY, (f"only the top-1 among the hidden classes is above {m:g}x chance "
                              "and above random partners")
    elif top1_hidden_ci_lo > m / n_hidden:
        level, why = NOT_REPRODUCED, (f"the top-1 among the hidden classes is above {m:g}x "
                                      "chance but not above random partners")
    else:
        level, why = NOT_REPRODUCED, f"neither top-1 is above {m:g}x chance"
    return Verdict("C6b", level, rule.text(), why)


@dataclass(frozen=True)
class C6cRule(_Rule):
    """C6c: ``clean_drop_tolerance`` (the largest clean top-1 cost accepted)."""

    clean_drop_tolerance: float = 0.005

    TEXT = (
        "**C6c is reproduced** if some dependency regularizer beats the **strongest baseline** "
        "(the best of plain cross-entropy fine-tuning, the generic L2-SP regularizer and the "
        "pretrained head itself, judged on mean corruption top-1) with the 95% bootstrap "
        "interval (over eval images, paired, averaged over seeds) of the difference above 0, "
        "and costs at most {clean_drop_tolerance:g} clean top-1 against that baseline; "
        "**partly reproduced** if it beats the strongest baseline that way at a larger clean "
        "cost; **not reproduced** otherwise. Beating plain cross-entropy alone is shown but "
        "does not count: it can be worse than not fine-tuning at all. The best regularizer "
        "decides.")


C6C = C6cRule()


def c6c_robustness(gains: Mapping[str, Mapping[str, tuple[float, tuple[float, float]]]],
                   strongest: str, rule: C6cRule = C6C) -> tuple[Verdict, str]:
    """C6c (:data:`C6C`).

    Parameters
    ----------
    gains : mapping of regularizer -> mapping
        Per dependency regularizer, each ``(point, (lo, hi))``: ``"vs_strongest"``, the paired
        corruption top-1 difference with the strongest baseline; ``"clean_vs_strongest"``, the
        clean top-1 difference with it; ``"vs_ce"``, the corruption difference with plain
        cross-entropy (reported, not deciding).
    strongest : str
        The name of the strongest baseline (recorded in the verdict).
    rule : C6cRule

    Returns
    -------
    (Verdict, str)
        The verdict of the best regularizer (highest level, then the largest gain over the
        strongest baseline) and its name.
    """
    text = rule.text()
    if not gains:
        return Verdict("C6c", NOT_TESTABLE, text, "no regularizer was evaluated"), ""
    levels = {}
    for kind, g in gains.items():
        beats_best = g["vs_strongest"][1][0] > 0
        clean_ok = g["clean_vs_strongest"][0] >= -rule.clean_drop_tolerance
        levels[kind] = (REPRODUCED if beats_best and clean_ok else
                        PARTLY if beats_best else NOT_REPRODUCED)
    best = min(levels, key=lambda k: (_rank(levels[k]), -gains[k]["vs_strongest"][0]))
    g = gains[best]
    why = (f"best regularizer {best}: corruption gain vs the strongest baseline ({strongest}) "
           f"{g['vs_strongest'][0]:+.4f} [{g['vs_strongest'][1][0]:+.4f}, "
           f"{g['vs_strongest'][1][1]:+.4f}], clean vs it {g['clean_vs_strongest'][0]:+.4f}; "
           f"vs plain cross-entropy {g['vs_ce'][0]:+.4f} [{g['vs_ce'][1][0]:+.4f}, "
           f"{g['vs_ce'][1][1]:+.4f}] (not deciding)")
    return Verdict("C6c", levels[best], text, why), best
