"""Stage 7 of the pipeline, the verdicts: the claims, and the rules that turn numbers into verdicts.

- :mod:`.claims`: :data:`CLAIMS`, the levels, :class:`Verdict`, how verdicts combine.
- :mod:`.rules`: one rule per claim (its thresholds, its function and its text together).
- :mod:`.deviations`: every rule changed after results were seen, with the old rule's outcome.
"""

from __future__ import annotations

from . import deviations, rules
from .claims import CLAIMS, LEVELS, Claim, Verdict, across_models, notebook_verdict
from .rules import RULES, SimilarCheck, rule_text, similar_performance

__all__ = ["CLAIMS", "LEVELS", "RULES", "Claim", "SimilarCheck", "Verdict", "across_models",
           "deviations", "notebook_verdict", "rule_text", "rules", "similar_performance"]
