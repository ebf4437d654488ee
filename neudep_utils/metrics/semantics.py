"""Semantic nearness of dependency partners (WordNet distance) against random partners."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..dependencies import DepSet
from .bootstrap import bootstrap_ci

__all__ = ["nearness_vs_chance"]


def nearness_vs_chance(deps: Sequence[DepSet], near: np.ndarray, candidates: np.ndarray | None = None,
                       offset: int = 0, n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """How often partners are semantically near their target, against random partners.

    ``near`` (n, n) boolean over classes; partner column ``c`` is class ``c - offset`` (cross-model:
    offset = n). Observed: fraction of (target, partner) pairs that are near, pooled over the
    DepSets (e.g. the folds). Chance: the expected fraction for uniformly random partners among
    each target's allowed candidates at the same k (exact expectation, not a simulation).
    Intervals: bootstrap over targets (95% percentile). Returns observed, chance, ratio and CIs.
    """
    n = near.shape[0]
    obs_hits, exp_hits, npairs = [], [], []
    for d in deps:
        t = d.targets
        ok = (d.cols >= 0) & (d.coef != 0)
        cls = np.where(ok, d.cols - offset, 0)
        valid = ok & (cls >= 0) & (cls < n)
        hits = (near[t[:, None], cls] & valid).sum(1)
        if candidates is None:
            allowed = np.ones((t.size, n), bool)
        else:
            c = np.asarray(candidates, dtype=bool)
            c = np.broadcast_to(c, (t.size, c.shape[-1])) if c.ndim == 1 else c
            allowed = c[:, offset:offset + n].copy()
        if offset == 0:
            allowed[np.arange(t.size), t] = False  # a target is never its own partner
        p = (near[t] & allowed).sum(1) / np.maximum(allowed.sum(1), 1)
        kk = valid.sum(1)
        obs_hits.append(hits)
        exp_hits.append(p * kk)
        npairs.append(kk)
    o, e, k = (np.concatenate(x).astype(float) for x in (obs_hits, exp_hits, npairs))

    def rate(W, x):
        return (W @ x) / np.maximum(W @ k, 1e-12)

    obs, chance = float(o.sum() / k.sum()), float(e.sum() / k.sum())
    ci_o = bootstrap_ci(lambda W: rate(W, o), o.size, n_boot, seed)
    ci_c = bootstrap_ci(lambda W: rate(W, e), o.size, n_boot, seed)
    ci_r = bootstrap_ci(lambda W: (W @ o) / np.maximum(W @ e, 1e-12), o.size, n_boot, seed)
    return {"observed": obs, "observed_ci": ci_o, "chance": chance, "chance_ci": ci_c,
            "ratio": obs / chance if chance > 0 else float("nan"), "ratio_ci": ci_r,
            "n_pairs": int(k.sum())}
