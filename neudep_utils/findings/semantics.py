"""What the dependencies say about the classes (notebook 01, C6a): semantic nearness of partners,
the well-fitted targets whose top partner is semantically far, the counter-intuitive ones among
them (far, not a visual confusion of the model, chosen again on the other half of the images,
against a chance baseline), and a family's dependency graph.

WordNet distances come from the committed hierarchy (:mod:`neudep_utils.images.taxonomy`); a
partner is *near* its target within ``near_distance`` hypernym steps. A dependency is
*well fitted* when its held-out 1 - R^2 is at most the C6a rule's ``well_fitted``; its *top
partner* is the partner with the largest absolute coefficient.
"""

from __future__ import annotations

from collections.abc import Sequence

import networkx as nx
import numpy as np
import pandas as pd

from ..cache import LogitData
from ..dependencies import DepSet
from ..images import imagenet_classes
from ..images.taxonomy import Taxonomy
from ..metrics import Metrics, bootstrap_ci, nearness_vs_chance

__all__ = ["confusion_top5", "counter_intuitive", "distance_frame", "family_graph", "far_share",
           "far_table", "nearness_rows", "strongest_rows", "top_partner"]


def top_partner(dep: DepSet) -> np.ndarray:
    """Per target, the partner column with the largest |coefficient| (-1 without partners)."""
    a = np.where(dep.cols >= 0, np.abs(dep.coef), -1.0)
    best = a.argmax(1)
    out = dep.cols[np.arange(dep.cols.shape[0]), best]
    return np.where(a.max(1, initial=-1.0) > 0, out, -1)


def far_share(deps: Sequence[DepSet], relres: np.ndarray, distance: np.ndarray,
              near_distance: int, well_fitted: float, n_boot: int = 1000,
              seed: int = 0) -> dict:
    """Among the well-fitted targets (held-out ``relres <= well_fitted``), the share whose top
    partner is semantically far (WordNet distance > ``near_distance``), pooled over folds
    (``deps`` one DepSet per fold), with a 95% bootstrap interval over targets.

    Returns
    -------
    dict
        ``n_well_fitted``, ``n_far`` (target-fold pairs), ``share``, ``share_ci`` and
        ``examples``: up to 8 (target, top partner) class pairs with a far top partner, best
        fitted first.
    """
    well = np.flatnonzero(np.isfinite(relres) & (relres <= well_fitted))
    if well.size == 0:
        return {"n_well_fitted": 0, "n_far": 0, "share": float("nan"),
                "share_ci": (float("nan"), float("nan")), "examples": []}
    far = np.zeros((len(deps), well.size))
    tops = []
    for f, d in enumerate(deps):
        tp = top_partner(d)[well]
        tgt = d.targets[well]
        ok = tp >= 0
        far[f] = np.where(ok, distance[tgt, np.maximum(tp, 0)] > near_distance, False)
        tops.append(tp)
    per_target = far.mean(0)
    ci = bootstrap_ci(lambda W: (W @ per_target) / W.sum(1), per_target.size, n_boot, seed)
    order = well[np.argsort(relres[well], kind="stable")]
    t0 = deps[0].targets
    pos = {int(w): i for i, w in enumerate(well)}
    examples = [(int(t0[r]), int(tops[0][pos[int(r)]])) for r in order
                if far[0, pos[int(r)]]][:8]
    return {"n_well_fitted": int(well.size), "n_far": int(far.sum()),
            "share": float(per_target.mean()), "share_ci": ci, "examples": examples}


def confusion_top5(data: LogitData) -> np.ndarray:
    """(n, n) bool: ``[a, b]`` when class ``b`` is among the model's five largest logits on
    some image (centre view) of class ``a`` (``b != a``): the model's visual confusions."""
    n = data.n_classes
    F = data.logits[:, 0, :n]
    top5 = np.argpartition(-F, 5, axis=1)[:, :5]
    conf = np.zeros((n, n), dtype=bool)
    conf[np.repeat(data.labels, 5), top5.ravel()] = True
    conf[np.arange(n), np.arange(n)] = False
    return conf


def counter_intuitive(deps: Sequence[DepSet], relres: np.ndarray, distance: np.ndarray,
                      near_distance: int, well_fitted: float, confusion: np.ndarray,
                      n_boot: int = 1000, seed: int = 0) -> dict:
    """Among the well-fitted targets, the share whose top partner (in a fold's dependency) is
    **counter-intuitive**: semantically far (WordNet distance > ``near_distance``), not a
    visual confusion of the model (``confusion`` from :func:`confusion_top5`, either
    direction) and chosen again by the dependency of another fold (fitted on other images).
    Pooled over folds, with a 95% bootstrap interval over targets, and the **chance** share:
    what it would be if such far, unconfused top partners were noise, each chosen again with
    the probability ``k / (n - 1)`` of a random partner set of the other fold's size.

    Returns
    -------
    dict
        ``n_well_fitted``, ``share``, ``share_ci``, ``chance``, ``far_unconfused`` (the share
        before the replication test) and ``examples`` (target, partner) pairs, best fitted
        first.
    """
    well = np.flatnonzero(np.isfinite(relres) & (relres <= well_fitted))
    nan = float("nan")
    if well.size == 0 or len(deps) < 2:
        return {"n_well_fitted": int(well.size), "share": nan, "share_ci": (nan, nan),
                "chance": nan, "far_unconfused": nan, "examples": []}
    n_other = deps[0].n_total - 1
    hits = np.zeros((len(deps), well.size))
    cand = np.zeros((len(deps), well.size))
    chance = np.zeros((len(deps), well.size))
    for f, d in enumerate(deps):
        tp = top_partner(d)[well]
        tgt = d.targets[well]
        ok = tp >= 0
        tpc = np.maximum(tp, 0)
        far = ok & (distance[tgt, tpc] > near_distance)
        unconf = ~(confusion[tgt, tpc] | confusion[tpc, tgt])
        others = [g for g in range(len(deps)) if g != f]
        again = np.zeros(well.size)
        k_other = np.zeros(well.size)
        for g in others:
            cols = deps[g].cols[well]
            again += ((cols == tp[:, None]) & (deps[g].coef[well] != 0)).any(1)
            k_other += deps[g].k[well]
        again /= len(others)
        k_other /= len(others)
        cand[f] = far & unconf
        hits[f] = cand[f] * again
        chance[f] = cand[f] * k_other / n_other
    per_target = hits.mean(0)
    ci = bootstrap_ci(lambda W: (W @ per_target) / W.sum(1), per_target.size, n_boot, seed)
    order = np.argsort(relres[well], kind="stable")
    t0, tp0 = deps[0].targets[well], top_partner(deps[0])[well]
    examples = [(int(t0[i]), int(tp0[i])) for i in order if hits[0, i] > 0][:8]
    return {"n_well_fitted": int(well.size), "share": float(per_target.mean()),
            "share_ci": ci, "chance": float(chance.mean()),
            "far_unconfused": float(cand.mean()), "examples": examples}


def far_table(far: dict[str, dict], short: dict[str, str],
              counter: dict[str, dict] | None = None) -> list[dict]:
    """One row per model of :func:`far_share` results: well-fitted targets, the share with a
    far top partner and its interval, three examples (target <- top partner); with
    ``counter`` (:func:`counter_intuitive` per model) the counter-intuitive share, its
    interval, its chance level and three examples."""
    name = imagenet_classes().short_name
    rows = []
    for m, f in far.items():
        row = {"model": short[m], "well-fitted targets": f["n_well_fitted"],
               "far top partner": round(f["share"], 3),
               "95% CI": f"[{f['share_ci'][0]:.2f}, {f['share_ci'][1]:.2f}]"}
        if counter is not None:
            c = counter[m]
            row.update({"counter-intuitive": round(c["share"], 3),
                        "CI ": f"[{c['share_ci'][0]:.3f}, {c['share_ci'][1]:.3f}]",
                        "chance": round(c["chance"], 4),
                        "examples (target <- partner)": ", ".join(
                            f"{name(t)} <- {name(p)}" for t, p in c["examples"][:3])})
        else:
            row["examples (target <- top partner)"] = ", ".join(
                f"{name(t)} <- {name(p)}" for t, p in f["examples"][:3])
        rows.append(row)
    return rows


def strongest_rows(dep: DepSet, met: Metrics, distance: np.ndarray, near_distance: int,
                   n: int = 15) -> list[dict]:
    """The ``n`` targets with the lowest held-out 1 - R^2, with their partners (coefficient,
    WordNet distance) and whether the top partner is near (an illustration; C6a is judged on
    every well-fitted target by :func:`far_share`)."""
    name = imagenet_classes().short_name
    tp = top_partner(dep)
    rows = []
    for r in np.argsort(met.relres)[:n]:
        t = int(dep.targets[r])
        parts = dep.partners(r)
        rows.append({"target": name(t), "1 - R^2": float(met.relres[r]),
                     "partners (coefficient, WordNet d)": ", ".join(
                         f"{name(c)} ({v:+.2f}, d={distance[t, c]:.0f})" for c, v in parts[:6])
                     + (" ..." if len(parts) > 6 else ""),
                     "top partner near?": bool(tp[r] >= 0
                                               and distance[t, tp[r]] <= near_distance)})
    return rows


def family_graph(dep: DepSet, family: np.ndarray):
    """The dependency graph inside one WordNet family: an edge partner -> target (weight = its
    coefficient) whenever a target of the family uses a partner of the family, and each
    target's share of in-family partners.

    Returns
    -------
    (networkx.DiGraph, dict)
        The graph (nodes are class names) and ``{target name: share}``.
    """
    name = imagenet_classes().short_name
    pos_of = {int(t): i for i, t in enumerate(dep.targets)}
    fam_set = {int(c) for c in family}
    G, share = nx.DiGraph(), {}
    for t in family:
        if int(t) not in pos_of:
            continue
        parts = dep.partners(pos_of[int(t)])
        share[name(int(t))] = float(np.mean([c in fam_set for c, _ in parts])) if parts else 0.0
        for c, v in parts:
            if c in fam_set:
                G.add_edge(name(c), name(int(t)), weight=v)
    return G, share


def nearness_rows(covlasso: dict[str, Sequence[dict[int, DepSet]]], ks: Sequence[int],
                  tax: Taxonomy, near_distance: int, n_boot: int, short: dict[str, str]
                  ) -> tuple[list[dict], dict]:
    """Semantic nearness of CovLasso partners against chance (:func:`nearness_vs_chance`) per
    model and k (``covlasso[model][fold][k]``), as table rows and the raw results by
    ``(model, k)``."""
    near = tax.near(near_distance)
    res = {(m, k): nearness_vs_chance([fd[k] for fd in per], near, n_boot=n_boot, seed=0)
           for m, per in covlasso.items() for k in ks}
    rows = [{"model": short[m], "k": k, "observed": r["observed"], "lo": r["observed_ci"][0],
             "hi": r["observed_ci"][1], "chance": r["chance"], "ratio": r["ratio"],
             "ratio lo": r["ratio_ci"][0], "ratio hi": r["ratio_ci"][1]}
            for (m, k), r in res.items()]
    return rows, res


def distance_frame(by_model: dict[str, Sequence[DepSet]], distance: np.ndarray,
                   targets: np.ndarray, short: dict[str, str]):
    """WordNet distances target -> partner of every fitted partner, per model, and of every
    candidate (chance), as a tidy DataFrame ``(distance, set)`` for the cumulative plot."""
    parts = []
    for m, deps in by_model.items():
        for d in deps:
            ok = d.cols >= 0
            tt = np.repeat(d.targets[:, None], ok.shape[1], 1)[ok]
            parts.append(pd.DataFrame({"distance": distance[tt, d.cols[ok]], "set": short[m]}))
    not_self = np.arange(distance.shape[0])[None, :] != targets[:, None]
    parts.append(pd.DataFrame({"distance": distance[targets][not_self],
                               "set": "all candidates (chance)"}))
    return pd.concat(parts)
