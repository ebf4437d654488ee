"""Cross-model dependencies: partner overlap across models and unseen categories.

Cross-model fits themselves are ordinary :mod:`neudep_utils.dependencies` fits on stacked logits
(:func:`neudep_utils.cache.stack_models`) with B's block as candidates
(:func:`neudep_utils.dependencies.candidate_mask`). This module adds what only the cross-model
notebook needs: :func:`support_overlap` (do two models pick the same within-model partners?) and
:func:`unseen_categories` (rebuild classes hidden from model A's head from A's seen logits through
dependencies learnt against model B), with its scale calibration.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ..cache import LogitData
from ..dependencies import (
    DepSet,
    Fold,
    dense_least_squares,
    fit_covlasso_k_cached,
    least_squares_on_support,
    random_support,
)
from ..metrics import bootstrap_ci
from ..models import architecture, recipe, same_family

__all__ = ["CNN_TRANSFORMER", "FIT_KW", "PAIR_KINDS", "pair_kind", "pair_kinds", "scale_calibration",
           "support_overlap", "unseen_categories"]

#: A coarser CovLasso path for the many cross-model fits (time).
FIT_KW = {"ratios": tuple(np.geomspace(0.995, 0.01, 32)), "refine": 3}

#: The kind of a pair with a CNN and a transformer (C2's "regardless of their architectures").
CNN_TRANSFORMER = "CNN-transformer"
#: The kinds of ordered pairs, in the order C2's record lists them (:func:`pair_kind`).
PAIR_KINDS = ("CNN-CNN within a family", "CNN-CNN across families", "CNN-CNN two recipes",
              CNN_TRANSFORMER)


def pair_kind(a: str, b: str) -> str:
    """The kind of the model pair ``(a, b)``, from what each model declares
    (:func:`neudep_utils.models.architecture`, its family and its recipe; never from its name).

    ``CNN-transformer`` when one is a CNN and the other a transformer; otherwise, for two models
    of one architecture kind (``CNN-CNN``, ``transformer-transformer``): ``... two recipes`` for
    one family trained by two recipes (e.g. MobileNet v2 int8 QAT and PTQ), ``... within a
    family`` for one family and one recipe, ``... across families`` otherwise. A model whose kind
    is not declared counts as ``unknown``.
    """
    kinds = {"cnn": "CNN", "transformer": "transformer"}
    ka, kb = (kinds.get(architecture(m), "unknown") for m in (a, b))
    if {ka, kb} == {"CNN", "transformer"}:
        return CNN_TRANSFORMER
    arch = f"{ka}-{kb}"
    if same_family(a, b):
        return f"{arch} two recipes" if recipe(a) != recipe(b) else f"{arch} within a family"
    return f"{arch} across families"


def pair_kinds(pairs) -> dict[str, list[tuple[str, str]]]:
    """The ordered ``pairs`` grouped by :func:`pair_kind`, kinds in :data:`PAIR_KINDS` order
    (others after them), pairs in their given order; kinds without a pair are left out."""
    out: dict[str, list[tuple[str, str]]] = {}
    for a, b in pairs:
        out.setdefault(pair_kind(a, b), []).append((a, b))
    order = {k: i for i, k in enumerate(PAIR_KINDS)}
    return dict(sorted(out.items(), key=lambda kv: order.get(kv[0], len(order))))


def support_overlap(a: DepSet, b: DepSet, n_candidates: int | None = None, seed: int = 0,
                    n_boot: int = 1000) -> dict[str, float]:
    """Jaccard overlap of two models' partner sets of the same targets, against chance.

    Chance: the exact expected Jaccard of two independent uniformly random sets of the same sizes
    drawn from the ``n_candidates`` (default n - 1) allowed columns, computed by simulation (seeded,
    200 draws per target). Returns mean observed, mean chance, their CIs (bootstrap over targets).
    """
    if not np.array_equal(a.targets, b.targets):
        raise ValueError("support_overlap needs the same targets")
    N = (a.n_total - 1) if n_candidates is None else n_candidates
    rng = np.random.default_rng(seed)
    T = a.targets.size
    ja = np.zeros(T)
    jc = np.zeros(T)
    ka, kb = a.k, b.k
    for i in range(T):
        A = set(a.cols[i][(a.cols[i] >= 0) & (a.coef[i] != 0)].tolist())
        B = set(b.cols[i][(b.cols[i] >= 0) & (b.coef[i] != 0)].tolist())
        u = len(A | B)
        ja[i] = len(A & B) / u if u else np.nan
    # chance by simulation, vectorised over draws: hypergeometric intersection
    draws = 200
    for i in range(T):
        x, y = int(ka[i]), int(kb[i])
        if x + y == 0:
            jc[i] = np.nan
            continue
        inter = rng.hypergeometric(x, N - x, y, size=draws) if x and y else np.zeros(draws)
        jc[i] = np.mean(inter / (x + y - inter))
    ok = np.isfinite(ja) & np.isfinite(jc)
    ja, jc = ja[ok], jc[ok]
    return {"jaccard": float(ja.mean()), "jaccard_ci": bootstrap_ci(
                lambda W: (W @ ja) / W.sum(1), ja.size, n_boot, seed),
            "chance": float(jc.mean()), "chance_ci": bootstrap_ci(
                lambda W: (W @ jc) / W.sum(1), jc.size, n_boot, seed),
            "n_targets": int(ok.sum())}


def scale_calibration(fold: Fold, data: LogitData, a: str, b: str, seen: np.ndarray) -> tuple[float, float]:
    """Affine map ``f^A ~ s f^B + c`` pooled over the seen classes and the fold's fit rows.

    Both scalars come from the fit moments alone: ``s = cov(f^A_j, f^B_j) / var(f^B_j)`` summed
    over seen classes j, ``c = mean(f^A - s f^B)`` over seen classes. Used to put rebuilt logits
    (on B's scale) on A's scale without touching A's hidden classes.
    """
    S, mu = fold.S, fold.mu
    ia = np.arange(data.blocks[a].start, data.blocks[a].stop)[seen]
    ib = np.arange(data.blocks[b].start, data.blocks[b].stop)[seen]
    if fold.center:
        cov_ab, var_b = S[ia, ib], S[ib, ib]
    else:
        cov_ab = S[ia, ib] - mu[ia] * mu[ib]
        var_b = S[ib, ib] - mu[ib] ** 2
    s = float(cov_ab.sum() / var_b.sum())
    c = float((mu[ia] - s * mu[ib]).mean())
    return s, c


def unseen_categories(data: LogitData, folds: Sequence[Fold], a: str, b: str, hidden: np.ndarray,
                      ks: Sequence[int] = (10,), *, construction: str = "cross",
                      method: str = "covlasso", seed: int = 0, calibrate: bool = True,
                      cache_dir: str | os.PathLike[str] | None = None, **fit_kw) -> dict:
    """Rebuild model A's logits of ``hidden`` classes from A's *seen* logits; top-1 on those classes.

    ``data``: :func:`stack_models` of A and B (blocks in any order); ``folds`` from :func:`crossfit`
    on it. Coefficients are fitted on each fold's fit rows only, and no A logit of a hidden class
    is ever used (the hidden classes are "removed from A's head"). Constructions:

    - ``"cross"`` (cross-model dependency, the default): target = B's logit of hidden class h,
      partners = A's seen logits; the rebuilt A logit is ``b_h + theta_h^T f^A_seen``.
    - ``"transfer"``: target = B's logit of h, partners = B's seen logits (a within-B dependency);
      the same coefficients and intercept are then applied to A's seen logits.

    ``method``: ``"covlasso"`` (support size closest to each k), ``"refit"`` (the CovLasso support
    refitted by least squares), ``"random"`` (random seen partners at the CovLasso's k, least
    squares) or ``"dense"`` (least squares on all seen logits; the
    result has the single key ``"dense"``). With ``calibrate`` the rebuilt logits (on B's scale)
    are mapped to A's scale by :func:`scale_calibration` (seen classes only). ``fit_kw`` go to
    :func:`fit_covlasso_k` (e.g. ``ratios``, ``refine``).

    Returns ``{k: outcome}``; each outcome holds per-image booleans on the eval images of hidden
    classes (``image``; ``rebuilt_1000`` / ``rebuilt_hidden``: A with the rebuilt logits, over all
    1000 classes / among the hidden classes only; ``B_1000`` / ``B_hidden``: model B;
    ``A_1000`` / ``A_hidden``: A's own logits, the upper bound), on seen-class eval images
    (``seen_image``; ``seen_rebuilt``, ``seen_A``, ``seen_A_removed``: 1000-way correctness with the
    rebuilt hidden logits, with A's own, and with the hidden classes removed), ``deps`` (per fold),
    ``k_mean`` and ``calibration`` (per fold ``(s, c)``).
    """
    hidden = np.sort(np.asarray(hidden, np.int64))
    nC = data.blocks[a].stop - data.blocks[a].start
    seen = np.setdiff1d(np.arange(nC), hidden)
    sa, sb = data.blocks[a].start, data.blocks[b].start
    n_tot = data.logits.shape[2]
    targets = sb + hidden
    if construction == "cross":
        cols = sa + seen
    elif construction == "transfer":
        cols = sb + seen
    else:
        raise ValueError(f"construction must be 'cross' or 'transfer', got {construction!r}")
    if method not in ("covlasso", "refit", "random", "dense"):
        raise ValueError(f"method must be 'covlasso', 'refit', 'random' or 'dense', got {method!r}")
    cand = np.zeros(n_tot, dtype=bool)
    cand[cols] = True
    keys = ("dense",) if method == "dense" else tuple(ks)
    out: dict = {k: {key: [] for key in (
        "image", "rebuilt_1000", "rebuilt_hidden", "B_1000", "B_hidden", "A_1000", "A_hidden",
        "seen_image", "seen_rebuilt", "seen_A", "seen_A_removed", "deps")} for k in keys}
    is_hidden = np.zeros(nC, dtype=bool)
    is_hidden[hidden] = True
    calib = []
    for fi, fold in enumerate(folds):
        if method == "dense":
            fitted = {"dense": dense_least_squares(fold, targets, cols)}
        else:
            fitted = fit_covlasso_k_cached(fold, ks, targets, cand, cache_dir=cache_dir, **fit_kw)
        s, c = scale_calibration(fold, data, a, b, seen) if calibrate else (1.0, 0.0)
        calib.append((s, c))
        X = data.logits[fold.eval_idx, 0].astype(np.float64)
        FA = X[:, sa:sa + nC]
        FB = X[:, sb:sb + nC]
        y = data.labels[fold.eval_idx]
        hid_img = is_hidden[y]
        for k in keys:
            dep = fitted[k]
            if method == "random":
                dep = least_squares_on_support(
                    fold, dep.targets, random_support(fold, dep.targets, dep.k, cand, seed + fi),
                    "random + LS")
            elif method == "refit":
                dep = least_squares_on_support(fold, dep.targets, dep.cols, "CovLasso support + LS")
            if construction == "transfer":  # move B-block partner columns onto A's block
                dep_a = replace(dep, cols=np.where(dep.cols >= 0, dep.cols - sb + sa, -1))
                rebuilt = dep_a.predict(X)
            else:
                rebuilt = dep.predict(X)
            rebuilt = s * rebuilt + c
            G = FA.copy()
            G[:, hidden] = rebuilt
            o = out[k]
            o["deps"].append(dep)
            yy = y[hid_img]
            o["image"].append(fold.eval_idx[hid_img])
            o["rebuilt_1000"].append(G[hid_img].argmax(1) == yy)
            o["rebuilt_hidden"].append(hidden[G[hid_img][:, hidden].argmax(1)] == yy)
            o["B_1000"].append(FB[hid_img].argmax(1) == yy)
            o["B_hidden"].append(hidden[FB[hid_img][:, hidden].argmax(1)] == yy)
            o["A_1000"].append(FA[hid_img].argmax(1) == yy)
            o["A_hidden"].append(hidden[FA[hid_img][:, hidden].argmax(1)] == yy)
            ys = y[~hid_img]
            removed = FA[~hid_img].copy()
            removed[:, hidden] = -np.inf
            o["seen_image"].append(fold.eval_idx[~hid_img])
            o["seen_rebuilt"].append(G[~hid_img].argmax(1) == ys)
            o["seen_A"].append(FA[~hid_img].argmax(1) == ys)
            o["seen_A_removed"].append(removed.argmax(1) == ys)
    for k in keys:
        for key, v in out[k].items():
            if key != "deps":
                out[k][key] = np.concatenate(v)
        out[k]["k_mean"] = float(np.mean([d.k.mean() for d in out[k]["deps"]]))
        out[k]["calibration"] = calib
    return out
