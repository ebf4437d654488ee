"""The "similar performance" test a dependency must pass at support size k (C1, C2): its
thresholds, its three parts and its text. Re-exported by :mod:`.rules`, where every other rule
lives."""

from __future__ import annotations

from dataclasses import dataclass

from ._rule import _Rule

__all__ = ["SIMILAR", "SimilarCheck", "SimilarRule", "similar_performance"]


@dataclass(frozen=True)
class SimilarRule(_Rule):
    """A dependency "achieves similar performance" at support size k: ``tolerance`` is the largest
    accepted drop of target-class accuracy (fraction; the upper end of its 95% interval)."""

    tolerance: float = 0.05

    TEXT = (
        "A dependency \"achieves similar performance\" at support size k when (i) the "
        "target-class accuracy after replacement is within {tolerance_points:g} points of the "
        "unmodified model's on the same images (upper end of the 95% interval of the drop), (ii) "
        "it creates no more false positives per target than the unmodified model already makes, "
        "and (iii) it beats random partners at the same k (95% interval of the paired difference "
        "above 0). A CovLasso dependency counts with its own coefficients or refitted by least "
        "squares on its support.")

    def params(self) -> dict[str, float]:
        """Thresholds, with the tolerance also in points."""
        return {"tolerance": self.tolerance, "tolerance_points": round(100 * self.tolerance, 6)}


SIMILAR = SimilarRule()


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
    tolerance: float = SIMILAR.tolerance

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
                        rule: SimilarRule = SIMILAR) -> SimilarCheck:
    """The "similar performance" test (:data:`SIMILAR`) of one dependency at one k.

    Parameters
    ----------
    drop_ci : (float, float)
        95% interval of unmodified minus after-replacement target-class accuracy (fraction).
    fp_created, fp_base : float
        False positives per target created by the replacement / made by the unmodified model.
    vs_random_ci : (float, float) or None
        95% interval of the paired accuracy gain over random partners at equal k (``None``
        for the random baseline itself, which cannot beat itself).
    rule : SimilarRule
        The thresholds (default :data:`SIMILAR`).

    Returns
    -------
    SimilarCheck
        The three parts and whether all hold.
    """
    return SimilarCheck(tuple(drop_ci), float(fp_created), float(fp_base),
                        None if vs_random_ci is None else tuple(vs_random_ci), rule.tolerance)
