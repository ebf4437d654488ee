"""Stage 7 of the pipeline, the verdicts: the claims, and the rules that turn numbers into verdicts.

- :mod:`.claims`: :data:`CLAIMS`, the levels, :class:`Verdict`, how verdicts combine.
- :mod:`.rules`: one rule per claim (its thresholds, its function and its text together).
"""

from __future__ import annotations

from .claims import CLAIMS, LEVELS, Claim, Verdict, across_models, notebook_verdict
from .rules import (
    SimilarCheck,
    c1_single_model,
    c2_cross_model,
    c3_covlasso,
    c4_redundancy,
    c5_sparsity,
    c6a_semantics,
    c6b_unseen,
    c6c_robustness,
    rule_text,
    similar_performance,
)

__all__ = ["CLAIMS", "LEVELS", "Claim", "SimilarCheck", "Verdict", "across_models",
           "c1_single_model", "c2_cross_model", "c3_covlasso", "c4_redundancy", "c5_sparsity",
           "c6a_semantics", "c6b_unseen", "c6c_robustness", "notebook_verdict", "rule_text",
           "similar_performance"]
