"""Secondary readings (top-5, AUC, AP, separation d') against scikit-learn and hand-made cases,
with ties (quantized logits) and degenerate columns."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from neudep_utils.metrics import readings as R


@pytest.mark.parametrize("quantized", [False, True])
def test_auc_and_ap_match_sklearn_with_ties(quantized: bool) -> None:
    rng = np.random.default_rng(0)
    N, T = 300, 7
    pos = rng.random((N, T)) < 0.05
    pos[0] = True  # every column has a positive
    s = rng.standard_normal((N, T)) + 1.5 * pos
    if quantized:  # int8-like logits: many ties
        s = np.round(s / 0.5) * 0.5
    auc, ap = R.auc_scores(s, pos), R.average_precision(s, pos)
    for t in range(T):
        assert auc[t] == pytest.approx(roc_auc_score(pos[:, t], s[:, t]), abs=1e-12)
        assert ap[t] == pytest.approx(average_precision_score(pos[:, t], s[:, t]), abs=1e-12)


def test_degenerate_columns_are_nan() -> None:
    s = np.array([[1.0, 2.0], [0.0, 2.0], [3.0, 2.0]])
    pos = np.array([[False, True], [False, False], [False, True]])
    assert np.isnan(R.auc_scores(s, pos)[0]) and np.isnan(R.average_precision(s, pos)[0])
    assert R.auc_scores(s, pos)[1] == 0.5  # all tied
    assert np.isnan(R.separation(s, pos)[1])  # constant negatives


def test_separation_in_negative_standard_deviations() -> None:
    neg = np.array([-1.0, 0.0, 1.0, 0.0])  # mean 0, sd sqrt(2/3)
    s = np.concatenate([neg, [4.0, 6.0]])[:, None]
    pos = np.array([False] * 4 + [True] * 2)[:, None]
    assert R.separation(s, pos)[0] == pytest.approx(5.0 / np.sqrt(2 / 3))
    # shifting and scaling the scores does not change it
    assert R.separation(3 * s + 7, pos)[0] == pytest.approx(R.separation(s, pos)[0])


def test_top5_kept_counts_strictly_larger_others() -> None:
    F = np.tile(np.arange(10, dtype=float), (3, 1))  # class 9 largest
    y = np.array([9, 2, 5])
    t = np.array([2, 9])
    scores = np.column_stack([F[:, 2], F[:, 9]])  # original logits of the targets
    kept = R.top5_kept(F, scores, y, t)
    assert kept[0] == 1 and kept[1] == 0 and np.isnan(kept[2])  # 5 is not a target
    lifted = scores.copy()
    lifted[1, 0] = 5.0  # class 2's logit tied with class 5: 4 strictly larger others
    assert R.top5_kept(F, lifted, y, t)[1] == 1


def test_readings_summary_and_intervals() -> None:
    r = R.Readings(top5=np.array([1.0, 0.0, 1.0, 1.0]), auc=np.array([0.9, 1.0]),
                   ap=np.array([0.5, np.nan, 1.0]), separation=np.array([1.0, 3.0, 10.0]))
    s = r.summary()
    assert s == {"top5": 0.75, "auc": 0.95, "ap": 0.75, "separation": 3.0}
    lo, hi = r.ci("ap", n_boot=200)
    assert 0.5 <= lo <= 0.75 <= hi <= 1.0
