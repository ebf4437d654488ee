"""Secondary readings of a rebuilt logit: does it still *separate* its class's images, and at what level?

The primary reading of "similar performance" (:mod:`.evaluate`) asks whether an image of class i
is still classified i when logit i is replaced by its dependency, in the 1000-way argmax. That
needs the rebuilt logit both to separate class-i images from other images *and* to sit at the level
of the competing logits. The readings here separate the two (STUDY.md section 7, declared before use):

- **top-5 retention**: the share of class-i eval images that keep class i among their 5 largest
  logits after the replacement;
- **ROC AUC** (one class against the rest): the probability that the rebuilt logit scores a
  random class-i image above a random other image (ties count half); it saturates near 1 even
  for random partners, so it is reported but not read;
- **average precision** (AP): the area under the precision-recall step curve of the rebuilt
  logit as a detector of class i over all eval images (tied scores form one threshold, as in
  scikit-learn's ``average_precision_score``);
- **separation** (d'): the rebuilt logit's mean on class-i images minus its mean on the other
  images, in standard deviations of the other images; beside the original logit's own. It is
  invariant to an affine rescaling of the logit, so it measures separation, not level; the level
  is read by re-levelling the rebuilt logit on the fit side
  (:func:`neudep_utils.dependencies.favourable.relevel`).

Each is computed per target on the pooled out-of-fold scores (every eval image scored by the
dependency of the fold that did not fit on it) and summarised over targets (mean for top-5, AUC
and AP; median for the separation), with 95% bootstrap intervals over targets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from ..cache import LogitData
from ..dependencies import DepSet, Fold
from .bootstrap import bootstrap_ci, weighted_median

__all__ = ["READING_DEFINITIONS", "Readings", "auc_scores", "average_precision",
           "original_readings", "out_of_fold_scores", "readings", "separation", "top5_kept"]

#: What each summary key measures (written next to the numbers).
READING_DEFINITIONS = {
    "top5": "top-5 retention: share of class-i eval images that keep class i among their 5 "
            "largest logits after logit i is replaced by its dependency (pooled over targets)",
    "auc": "one-vs-rest ROC AUC of the (rebuilt) logit i as a score for 'the image is class i' "
           "over all eval images, mean over targets (saturates near 1: not read)",
    "ap": "average precision of the (rebuilt) logit i as a detector of class i over all eval "
          "images, mean over targets",
    "separation": "separation d': (mean of the (rebuilt) logit i on class-i eval images - its mean on the "
             "others) / its standard deviation on the others, median over targets",
}


def out_of_fold_scores(data: LogitData, folds: Sequence[Fold], deps: Sequence[DepSet] | None
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pooled eval images of the folds: ``(F, S, y, image)``.

    ``F`` (N, n_classes): the classifier's centre-view logits; ``S`` (N, T): the target logits
    rebuilt by each fold's dependencies on that fold's eval images (``None`` when ``deps`` is
    ``None``); ``y`` (N,) labels; ``image`` (N,) indices into ``data``.
    """
    Fs, Ss, ys, imgs = [], [], [], []
    for f_i, fold in enumerate(folds):
        idx = fold.eval_idx
        X = data.logits[idx, 0].astype(np.float64)
        Fs.append(X[:, :data.n_classes])
        if deps is not None:
            Ss.append(deps[f_i].predict(X))
        ys.append(data.labels[idx])
        imgs.append(idx)
    S = np.concatenate(Ss) if deps is not None else None
    return np.concatenate(Fs), S, np.concatenate(ys), np.concatenate(imgs)


def top5_kept(F: np.ndarray, scores: np.ndarray, y: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per class-target image: is the target among the 5 largest logits once its logit is
    ``scores``? Returns a (N,) float array: 1/0 for images whose label is a target, NaN otherwise.

    Ties with another logit count against the target (strictly larger others are counted).
    """
    pos_of = np.full(F.shape[1], -1)
    pos_of[targets] = np.arange(targets.size)
    out = np.full(y.size, np.nan)
    rows = np.flatnonzero(pos_of[y] >= 0)
    if rows.size == 0:
        return out
    col = pos_of[y[rows]]
    v = scores[rows, col]
    above = (F[rows] > v[:, None]).sum(1) - (F[rows, y[rows]] > v)
    out[rows] = (above < 5).astype(float)
    return out


def auc_scores(scores: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """One-vs-rest ROC AUC of each column of ``scores`` (N, T) for the boolean ``positive``
    (N, T) (ties count half, Mann-Whitney); NaN where a column has no positive or no negative."""
    r = rankdata(scores, axis=0, method="average")
    n_pos = positive.sum(0)
    n_neg = positive.shape[0] - n_pos
    u = (r * positive).sum(0) - n_pos * (n_pos + 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n_pos > 0) & (n_neg > 0), u / (n_pos * n_neg), np.nan)


def average_precision(scores: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """Average precision of each column of ``scores`` (N, T) for ``positive`` (N, T): the
    precision-recall step curve's area with tied scores as one threshold (scikit-learn's
    ``average_precision_score``); NaN where a column has no positive."""
    N, T = scores.shape
    out = np.full(T, np.nan)
    order = np.argsort(-scores, axis=0, kind="stable")
    for t in range(T):
        pos = positive[order[:, t], t]
        n_pos = int(pos.sum())
        if n_pos == 0:
            continue
        s = scores[order[:, t], t]
        last = np.append(s[1:] != s[:-1], True)  # the last row of each group of tied scores
        tp = np.cumsum(pos)[last]
        cnt = np.flatnonzero(last) + 1
        d_tp = np.diff(tp, prepend=0)
        out[t] = float((d_tp / n_pos * (tp / cnt)).sum())
    return out


def separation(scores: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """Per column, d': (mean on positives - mean on negatives) / std on negatives; NaN without
    positives or with constant negatives."""
    neg = ~positive
    n_pos, n_neg = positive.sum(0), neg.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mp = (scores * positive).sum(0) / n_pos
        mn = (scores * neg).sum(0) / n_neg
        var = (((scores - mn) ** 2) * neg).sum(0) / np.maximum(n_neg - 1, 1)
        sd = np.sqrt(var)
        return np.where((n_pos > 0) & (n_neg > 1) & (sd > 0), (mp - mn) / sd, np.nan)


@dataclass
class Readings:
    """Per-target secondary readings of one set of logits (rebuilt or original).

    ``top5`` (N_target_images,) 1/0 per eval image of a target class; ``auc``, ``ap``,
    ``separation`` (T,) per target.
    """

    top5: np.ndarray
    auc: np.ndarray
    ap: np.ndarray
    separation: np.ndarray

    def summary(self) -> dict[str, float]:
        """Point estimates: mean top-5 retention, mean AUC, mean AP, median separation."""
        return {"top5": float(np.nanmean(self.top5)), "auc": float(np.nanmean(self.auc)),
                "ap": float(np.nanmean(self.ap)),
                "separation": float(np.nanmedian(self.separation))}

    def ci(self, key: str, n_boot: int = 1000, seed: int = 0) -> tuple[float, float]:
        """95% bootstrap interval of one summary key (eval images for ``top5``, targets for the
        others)."""
        x = getattr(self, key)
        x = x[np.isfinite(x)]
        if x.size == 0:
            return (float("nan"), float("nan"))
        if key == "separation":
            return bootstrap_ci(lambda W: weighted_median(x, W), x.size, n_boot, seed)
        return bootstrap_ci(lambda W: (W @ x) / W.sum(1), x.size, n_boot, seed)


def readings(data: LogitData, folds: Sequence[Fold], deps: Sequence[DepSet] | None
             ) -> Readings:
    """The secondary readings of ``deps`` (one :class:`DepSet` per fold, each applied to its
    fold's eval images only).

    Parameters
    ----------
    data : LogitData
    folds : sequence of Fold
    deps : sequence of DepSet
        One per fold, all with the same targets.

    Returns
    -------
    Readings
        Per target; :func:`original_readings` gives the unmodified model's on the same images.
    """
    if deps is None:
        raise ValueError("readings needs one DepSet per fold; use original_readings for the "
                         "unmodified model")
    t = deps[0].targets
    F, S, y, _ = out_of_fold_scores(data, folds, deps)
    positive = y[:, None] == t[None, :]
    return Readings(top5=_target_rows(top5_kept(F, S, y, t), y, t), auc=auc_scores(S, positive),
                    ap=average_precision(S, positive),
                    separation=separation(S, positive))


def original_readings(data: LogitData, folds: Sequence[Fold], targets: np.ndarray) -> Readings:
    """The same readings for the unmodified model's own logits of ``targets`` on the same
    pooled eval images."""
    t = np.asarray(targets)
    F, _, y, _ = out_of_fold_scores(data, folds, None)
    S = F[:, t]
    positive = y[:, None] == t[None, :]
    return Readings(top5=_target_rows(top5_kept(F, S, y, t), y, t), auc=auc_scores(S, positive),
                    ap=average_precision(S, positive),
                    separation=separation(S, positive))


def _target_rows(x: np.ndarray, y: np.ndarray, t: np.ndarray) -> np.ndarray:
    return x[np.isin(y, t)]
