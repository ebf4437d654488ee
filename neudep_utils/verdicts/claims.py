"""The claims the study tests, the verdict levels and how verdicts combine.

:data:`CLAIMS` (read by the book's intro, its claims page and the notebooks) holds the paper's
claims in the wording of STUDY.md section 1; a :class:`Verdict` is a claim's level, its rule in
words and why; :func:`across_models` and :func:`notebook_verdict` combine verdicts (the weakest
testable one decides). Levels, from strongest to weakest: ``reproduced``, ``partly reproduced``,
``not reproduced``; ``not testable here`` when the data or models needed are not available.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["CLAIMS", "LEVELS", "NOT_REPRODUCED", "NOT_TESTABLE", "PARTLY", "REPRODUCED", "Claim",
           "Verdict", "across_models", "notebook_verdict", "rank"]


REPRODUCED = "reproduced"
PARTLY = "partly reproduced"
NOT_REPRODUCED = "not reproduced"
NOT_TESTABLE = "not testable here"
#: Verdict levels from strongest to weakest.
LEVELS = (REPRODUCED, PARTLY, NOT_REPRODUCED, NOT_TESTABLE)


@dataclass(frozen=True)
class Claim:
    """One claim of the paper: its id ``cid`` (C1..C6c), a short name, its statement and the notebook
    that tests it."""

    cid: str
    name: str
    statement: str
    notebook: str


#: The paper's claims in the wording of STUDY.md section 1 (shortened); the numbering is ours.
CLAIMS: dict[str, Claim] = {c.cid: c for c in (
    Claim("C1", "single-model dependency",
          "In a well-trained large-scale image classifier, the logit of some category can be "
          "obtained by linearly combining the logits of a *few* other categories, without tuning "
          "the network, and \"achieve similar performance\" (their example: the logit of *macaw* "
          "from *ostrich*, *bittern*, ...).", "01_single_model"),
    Claim("C2", "cross-model dependency",
          "Such dependencies also exist *between* two independently trained models, even of "
          "different architectures (CNN versus transformer) and training recipes.",
          "02_cross_model"),
    Claim("C3", "CovLasso",
          "Finding a dependency is equivalent to a Lasso problem written in terms of the logit "
          "covariance matrix alone (the Covariance Lasso, CovLasso), whose solution path is smooth "
          "in its hyper-parameter.", "03_sparsity_redundancy"),
    Claim("C4", "redundancy",
          "A dependency is guaranteed by a *redundant* logit covariance matrix, a condition easily "
          "met when the number of categories is massive.", "03_sparsity_redundancy"),
    Claim("C5", "sparsity",
          "Dependencies are highly sparse: one category correlates with only a few others.",
          "03_sparsity_redundancy"),
    Claim("C6a", "understanding correlations",
          "Dependencies help understand internal data correlations, which sometimes contradict "
          "human intuition.", "01_single_model"),
    Claim("C6b", "unseen categories",
          "Dependencies help generalize a model to unseen categories.", "02_cross_model"),
    Claim("C6c", "robustness",
          "Dependencies improve robustness through a dependency-derived regularizer.",
          "04_robustness"),
)}


@dataclass(frozen=True)
class Verdict:
    """A claim's verdict: ``level`` (one of :data:`LEVELS`), the ``rule`` in words and ``why``
    (which parts of the rule held, with the deciding numbers)."""

    claim: str
    level: str
    rule: str
    why: str

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"verdict level must be one of {LEVELS}, got {self.level!r}")
        if self.claim not in CLAIMS:
            raise ValueError(f"unknown claim {self.claim!r}; expected one of {tuple(CLAIMS)}")


def rank(level: str) -> int:
    """Position of a level in :data:`LEVELS` (0: reproduced)."""
    return LEVELS.index(level)


def across_models(per_model: Mapping[str, Verdict]) -> Verdict:
    """One claim judged on several models: the weakest testable verdict (a claim holds only as
    far as it holds for every model tested), with each model's verdict in ``why``."""
    if not per_model:
        raise ValueError("across_models needs at least one model's verdict")
    claims = {v.claim for v in per_model.values()}
    if len(claims) != 1:
        raise ValueError(f"verdicts of different claims: {sorted(claims)}")
    level = notebook_verdict(v.level for v in per_model.values())
    first = next(iter(per_model.values()))
    why = "; ".join(f"{m}: {v.level} ({v.why})" for m, v in per_model.items())
    return Verdict(first.claim, level, first.rule, why)


def notebook_verdict(levels: Iterable[str]) -> str:
    """A notebook's overall verdict: the weakest verdict among its testable claims (a notebook is
    only as reproduced as its weakest claim); ``not testable here`` only when no claim was
    testable."""
    levels = list(levels)
    for lv in levels:
        if lv not in LEVELS:
            raise ValueError(f"unknown verdict level {lv!r}")
    testable = [lv for lv in levels if lv != NOT_TESTABLE]
    if not testable:
        return NOT_TESTABLE
    return max(testable, key=rank)
