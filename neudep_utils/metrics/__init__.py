"""Stage 6 of the pipeline, the metrics: out-of-sample readings of dependencies and their intervals.

- :mod:`.evaluate`: :func:`evaluate` (1 - R^2, target-class accuracy after replacement, false
  positives, the weak metric, achieved k), :func:`metric_ci`, :func:`paired_diff_ci`, the
  existential reading (:func:`select_on_fit_side`).
- :mod:`.bootstrap`: the one bootstrap (multinomial weights; means, medians, ratios).
- :mod:`.semantics`: semantic nearness of partners against random partners.
- :mod:`.quantization`: the residual floor that int8 logits' rounding alone sets
  (:func:`quantization_floor`).
"""

from __future__ import annotations

from .bootstrap import bootstrap_ci, mean_ci, median_ci
from .evaluate import (
    METRIC_DEFINITIONS,
    Metrics,
    TargetOutcomes,
    evaluate,
    metric_ci,
    metrics_table,
    paired_diff_ci,
    select_on_fit_side,
    similarity_inputs,
    target_outcomes,
)
from .quantization import quantization_floor, quantization_noise_variance, saturated_share
from .semantics import nearness_vs_chance

__all__ = ["METRIC_DEFINITIONS", "Metrics", "TargetOutcomes", "bootstrap_ci", "evaluate",
           "mean_ci", "median_ci", "metric_ci", "metrics_table", "nearness_vs_chance",
           "paired_diff_ci", "quantization_floor", "quantization_noise_variance", "saturated_share",
           "select_on_fit_side", "similarity_inputs", "target_outcomes"]
