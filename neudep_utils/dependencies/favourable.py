"""The most favourable linear reading of C1 and C2 (STUDY.md section 8): weights and a level
fitted for classification on a few partners, judged held out like every dependency.

Declared on 2026-12-06, before it was run on the study's data (the level-only variant's outcome
for lite0 at k = 10 was known from a referee's report). Least-squares (and CovLasso) weights fit
a target logit on every fit row alike, and 99.9% of the rows are other classes' images; a
replacement logit only needs to decide, on every image, whether class i beats the other logits.
This module fits the weights and the level for that decision instead, on the same fit rows,
and returns them as ordinary :class:`~neudep_utils.dependencies.DepSet` objects, so they are
evaluated out of sample, bootstrapped and judged by the "similar performance" rule exactly as the
CovLasso dependencies are.

**The decision.** On a row ``x`` (logits ``f(x)``; with stacked cross-model logits, the
classifier is the first ``n_classes`` columns, model A), the replacement ``g(x) = w^T f_S(x) + c``
of logit ``i`` wins the argmax iff ``g(x) > M_i(x) = max_{j != i} f_j(x)``. The model's own
decision on the row is ``y_i(x) = [argmax_j f_j(x) = i]``.

**Fit rows.** Every view of the fold's fit images (the rows the fold's moments come from);
never an eval image.

**Supports** (``k`` partners, ``k`` in :data:`KS`):

- the CovLasso support of the fold's dependency at ``k`` (the same partners as the refit);
- a *classification support*: the ``k`` allowed columns with the largest Fisher score for the
  model's own decision, ``(mean_pos f_j - mean_neg f_j)^2 / var_neg f_j`` over the fit rows
  (positives: rows the model assigns to ``i``; targets without a positive row keep the CovLasso
  support);
- random partners at equal ``k`` (the random + LS baseline's columns): the baseline every
  fitted reading is compared with, fitted the same way.

**Weights and level:**

- ``relevel``: the least-squares weights on the support, with the level ``c`` moved to the
  largest value at which the fit-side false positives (fit rows of other classes with
  ``g > M_i``) do not exceed the original logit's own on the same rows;
- ``discriminative``: weights and level minimising the class-balanced logistic loss of the
  model's own decision at the logits' own scale (temperature :data:`TEMPERATURE` = 1, the
  softmax's), ``sum_x omega(x) log(1 + exp(-(2 y_i(x) - 1) (g(x) - M_i(x)) / T))`` with the
  positives and the negatives each weighing 1/2 in total, plus the shrinkage
  ``(SHRINK / 2) (w - w_LS)^T Sigma_S (w - w_LS) / T^2`` toward the least-squares weights
  (``Sigma_S``: the support's fit-side covariance, so the penalty is the mean squared change of
  the rebuilt logit, in logit units; :data:`SHRINK` = 1). A fit fold holds 1-2 images of a class
  (2-4 rows with views): a free classifier on so few positives overfits, and the shrinkage
  keeps it near the least-squares solution unless the decision rows pull it away. Solved by
  Newton's method with a backtracking line search to a gradient below :data:`GRAD_TOL` (relative);
  then the level is re-set as in ``relevel`` (fit-side false positives capped at the
  original's). Targets without a positive fit row keep the ``relevel`` solution (counted in
  ``extra["no_positive"]``).

What it can and cannot support: 2-4 positive rows per class and fold estimate a level and
shrunk weights, not a free classifier; a reading that only works with more positives per class
than the data hold is not tested here.

**Judged** held out with :func:`neudep_utils.metrics.evaluate` (target-class top-1 kept, false
positives created per target, overall top-1 after one replacement) and the "similar
performance" rule, each fitted reading against random partners fitted the same way.
"""

from __future__ import annotations

__all__ = ["GRAD_TOL", "KS", "SHRINK", "TEMPERATURE"]

#: Support sizes of the most favourable reading (the C1 headline k and 50).
KS = (10, 50)
#: The logistic's temperature: the logits' own softmax scale.
TEMPERATURE = 1.0
#: Shrinkage toward the least-squares weights (mean squared change of the rebuilt logit).
SHRINK = 1.0
#: Newton's stopping rule: gradient norm below this times the gradient norm at the start.
GRAD_TOL = 1e-8
