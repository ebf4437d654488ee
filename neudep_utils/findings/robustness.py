"""Robustness experiments (notebook 04): head fine-tuning with regularizers, evaluation under
corruption and on the cue-conflict sets.

- Corrupted eval subsets: the cache entries of :mod:`neudep_utils.images.corruptions`' named
  corruptions of a seeded eval subset (:func:`corrupted_features`).
- Head fine-tuning: the pretrained linear head ``W, b`` fine-tuned on frozen features with cross
  entropy plus an optional regularizer (:func:`finetune_head`): generic L2-SP, or two
  dependency-derived ones built from CovLasso dependencies of the pretrained logits.
- Evaluation: top-1, 16-category decisions (``categories16.json``) and shape bias on cue-conflict.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import covlasso, moments
from ..cache import LogitSet, read_entry
from ..images import data_root, imagenet_classes
from ..profiles import RobustnessSettings


def corrupted_features(settings: RobustnessSettings, **kw) -> dict[str, LogitSet]:
    """LogitSets of the eval subset under every corruption of a profile's robustness settings,
    by corruption name (same images, same order as the clean eval subset)."""
    return {name: read_entry(settings.model, settings.eval_folder, 0, corruption=name,
                             subset=settings.n_eval, **kw)
            for name in settings.corruption_names()}


# --------------------------------------------------------------------------------------------
# 16-category decisions (Geirhos et al.)
# --------------------------------------------------------------------------------------------


def load_categories16(path: str | os.PathLike[str] | None = None) -> dict[str, list[str]]:
    """Category -> ImageNet wnids, from ``cue-conflict/categories16.json``."""
    p = Path(path) if path else data_root() / "cue-conflict" / "categories16.json"
    return json.loads(Path(p).read_text())


def category_index_map(categories: dict[str, list[str]]) -> tuple[list[str], list[np.ndarray]]:
    """Sorted category names and, for each, the ImageNet logit indices of its wnids."""
    cls = imagenet_classes()
    names = sorted(categories)
    return names, [np.array([cls.index(w) for w in categories[c]]) for c in names]


def decisions16(logits: np.ndarray, idx_lists: list[np.ndarray]) -> np.ndarray:
    """16-way decision per row: argmax over categories of the mean softmax probability of the
    category's wnids (probabilities from the full 1000-way softmax)."""
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    scores = np.stack([p[:, ix].mean(axis=1) for ix in idx_lists], axis=1)
    return scores.argmax(axis=1)


def cue_conflict_labels(image_ids: tuple[str, ...] | list[str],
                        names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Shape and texture category indices from ``<shape>/<shape><k>-<texture><m>.<ext>``."""
    pos = {n: i for i, n in enumerate(names)}
    shape, texture = [], []
    for iid in image_ids:
        stem = Path(iid).stem
        m = re.fullmatch(r"([a-z]+)\d+-([a-z]+)\d+", stem)
        if m is None:
            raise ValueError(f"not a cue-conflict file name: {iid!r}")
        shape.append(pos[m.group(1)])
        texture.append(pos[m.group(2)])
    return np.array(shape), np.array(texture)


def shape_bias(decisions: np.ndarray, shape: np.ndarray, texture: np.ndarray) -> dict[str, float]:
    """Geirhos et al.'s shape bias: shape decisions / (shape + texture decisions), over images
    whose shape and texture categories differ. Also the shape and texture hit rates."""
    keep = shape != texture
    d, s, t = decisions[keep], shape[keep], texture[keep]
    n_shape, n_tex = int((d == s).sum()), int((d == t).sum())
    denom = n_shape + n_tex
    return {"shape_bias": n_shape / denom if denom else float("nan"),
            "shape_acc": n_shape / len(d) if len(d) else float("nan"),
            "texture_acc": n_tex / len(d) if len(d) else float("nan"),
            "n_images": int(len(d))}


# --------------------------------------------------------------------------------------------
# Head fine-tuning with regularizers
# --------------------------------------------------------------------------------------------

REGULARIZERS = ("none", "l2sp", "dep_weaken", "dep_consistency")


def dependency_matrix(logits: np.ndarray, lam_ratio: float, tol: float = 1e-6) -> np.ndarray:
    """CovLasso dependencies of every category on the others, ``Theta`` (n, n) (row i = theta_i),
    from the centred covariance of ``logits`` (rows) at ``lam = lam_ratio * lam_max``."""
    C = moments.second_moment(np.asarray(logits, dtype=np.float64), center=True)
    lams = covlasso.relative_lams(C, lam_ratio)[0]
    return covlasso.solve(C, lams, tol=tol, warn=False).coef


@dataclass
class RegContext:
    """What the regularizers need besides the head: the pretrained head, the dependency matrix
    and the per-class clean logit variance (both from the pretrained logits of the fit images)."""

    W0: np.ndarray
    b0: np.ndarray
    theta: np.ndarray  # (n, n)
    var0: np.ndarray  # (n,)


def _penalty(kind: str, W, b, f_centre, f_aug, ctx_t: dict):
    """Dimensionless regularizer value (torch scalar); see the notebook for the definitions."""
    if kind == "l2sp":
        return (((W - ctx_t["W0"]) ** 2).sum() + ((b - ctx_t["b0"]) ** 2).sum()) / ctx_t["norm0"]
    theta = ctx_t["theta"]
    if kind == "dep_weaken":
        f = torch.cat([f_centre, f_aug]) if f_aug is not None else f_centre
        fc = f - f.mean(0)
        g = fc @ theta.T  # dependency prediction of every class
        cov = (fc * g).mean(0)
        corr2 = cov**2 / ((fc**2).mean(0) * (g**2).mean(0) + 1e-12)
        return corr2[ctx_t["has_dep"]].mean()
    if kind == "dep_consistency":
        if f_aug is None:  # no augmented views (smoke profile): nothing to keep consistent
            return W.sum() * 0.0
        rc = f_centre - f_centre @ theta.T
        ra = f_aug - f_aug @ theta.T
        return (((ra - rc) ** 2).mean(0) / ctx_t["var0"]).mean()
    raise ValueError(f"unknown regularizer {kind!r}; expected one of {REGULARIZERS}")


def finetune_head(H: np.ndarray, y: np.ndarray, ctx: RegContext, kind: str = "none",
                  strength: float = 0.0, steps: int = 60, lr: float = 3e-4, batch: int = 256,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Fine-tune the pretrained head on frozen features with cross-entropy + ``strength * R``.

    ``H``: (images, views, d) features (view 0 = centre, views 1.. = augmented); every view is a
    training row with the image's label; dependency-consistency pairs each augmented view with the
    centre view of its image. Adam, minibatches of ``batch`` images drawn by a ``seed``-ed
    generator; starts from ``ctx.W0, ctx.b0``. Returns the new ``(W, b)``.
    """
    if kind not in REGULARIZERS:
        raise ValueError(f"unknown regularizer {kind!r}; expected one of {REGULARIZERS}")
    g = torch.Generator().manual_seed(int(seed))
    Ht = torch.as_tensor(np.asarray(H, dtype=np.float32))
    yt = torch.as_tensor(np.asarray(y, dtype=np.int64))
    n_img, n_views, _ = Ht.shape
    W = torch.tensor(ctx.W0, dtype=torch.float32, requires_grad=True)
    b = torch.tensor(ctx.b0, dtype=torch.float32, requires_grad=True)
    ctx_t = {"W0": torch.as_tensor(ctx.W0, dtype=torch.float32),
             "b0": torch.as_tensor(ctx.b0, dtype=torch.float32),
             "theta": torch.as_tensor(ctx.theta, dtype=torch.float32),
             "var0": torch.as_tensor(ctx.var0, dtype=torch.float32),
             "has_dep": torch.as_tensor(np.abs(ctx.theta).sum(1) > 0)}
    ctx_t["norm0"] = (ctx_t["W0"] ** 2).sum() + (ctx_t["b0"] ** 2).sum()
    opt = torch.optim.Adam([W, b], lr=lr)
    for _ in range(steps):
        idx = torch.randint(0, n_img, (min(batch, n_img),), generator=g)
        hb = Ht[idx]  # (B, V, d)
        logits = hb @ W.T + b  # (B, V, n)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                 yt[idx].repeat_interleave(n_views))
        if kind != "none" and strength > 0:
            f_aug = logits[:, 1:].reshape(-1, logits.shape[-1]) if n_views > 1 else None
            f_c = logits[:, :1].expand(-1, max(n_views - 1, 1), -1).reshape(-1, logits.shape[-1])
            if f_aug is None:
                f_c = logits[:, 0]
            loss = loss + strength * _penalty(kind, W, b, f_c, f_aug, ctx_t)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return W.detach().double().numpy(), b.detach().double().numpy()


def correct(H: np.ndarray, y: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-row correctness (bool) of the head ``W, b`` on features ``H`` (rows, d)."""
    return (np.asarray(H, dtype=np.float64) @ W.T + b).argmax(axis=1) == np.asarray(y)
