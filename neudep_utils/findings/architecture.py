"""Does the architecture matter? The quantities the study already measures, per model, side by
side: the transformer's dependencies beside the CNNs' (notebook 01's section of that name; no
rule decides anything here).

Per model (:func:`architecture_rows`):

- **support needed**: the smallest support size ``k`` of notebook 01's grid at which a target's
  least-squares refit on its CovLasso support reaches held-out ``1 - R^2 <=`` C5's threshold
  (0.3; the correlational reading of C5), pooled over the folds; the share of targets reaching
  it and the median ``k`` among them (:func:`support_needed`);
- **AP against random partners** at ``k`` (10): mean average precision of the refitted
  dependency, of random partners at the same ``k`` and of the unmodified logit, and the paired
  difference dependency minus random with its 95% bootstrap interval over targets
  (:func:`reading_contrast`);
- **separation** ``d'`` (notebook 01's readings, once called the "scale gap": the rebuilt logit's
  margin on the class's own images in standard deviations of the negatives, invariant to
  rescaling), median over targets, of the same three;
- **partner overlap**: mean Jaccard overlap of the model's within-model CovLasso partner sets at
  ``k`` (fold 0) with those of each CNN, against two random sets of the same sizes
  (:func:`overlap_pairs`, :func:`neudep_utils.findings.crossmodel.support_overlap`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..dependencies import DepSet
from ..metrics import bootstrap_ci
from ..metrics.readings import Readings
from ..models import architecture, get_spec, label, recipe, short_name
from ..record import Numbers
from ..verdicts import rules
from . import crossmodel
from .redundancy import k_at_fidelity

__all__ = ["REFIT", "Comparison", "architecture_rows", "compare", "display_rows", "numbers",
           "overlap_pairs", "reading_contrast", "summary_text", "support_needed"]

#: The dependency whose quantities are compared: the CovLasso support refitted by least squares.
REFIT = "CovLasso support + LS"
RANDOM = "random + LS"
SEP = "separation d'"


def support_needed(k: np.ndarray, relres: np.ndarray,
                   threshold: float = rules.C5.threshold) -> dict[str, float]:
    """The support a dependency needs for held-out ``1 - R^2 <= threshold``.

    Parameters
    ----------
    k : array (L, T)
        Support size reached by each target at each of ``L`` points (e.g. notebook 01's k grid).
    relres : array (L, T)
        Held-out ``1 - R^2`` of each target at each point.
    threshold : float
        The fidelity asked for (C5's correlational reading: 0.3).

    Returns
    -------
    dict
        ``share_reaching`` (targets reaching the threshold anywhere), ``k_median`` (median of
        the smallest ``k`` reaching it, over the targets that do; NaN if none does) and
        ``k_needed`` (T,) per target (NaN: never).
    """
    kk = k_at_fidelity(np.asarray(k, float), np.nan_to_num(np.asarray(relres, float),
                                                           nan=np.inf), threshold)
    ok = np.isfinite(kk)
    return {"share_reaching": float(ok.mean()) if kk.size else float("nan"),
            "k_median": float(np.median(kk[ok])) if ok.any() else float("nan"),
            "k_needed": kk}


def reading_contrast(dep: Readings, rand: Readings, orig: Readings, n_boot: int = 1000,
                     seed: int = 0) -> dict[str, float | tuple[float, float]]:
    """AP and separation of a dependency against random partners at the same ``k`` and the
    unmodified logit (per-target :class:`~neudep_utils.metrics.readings.Readings` of the same
    targets and images).

    Returns
    -------
    dict
        ``ap``, ``ap_random``, ``ap_original`` (means over targets), ``ap_gain`` (mean paired
        difference dependency minus random) with ``ap_gain_ci`` (95% bootstrap over targets);
        ``separation``, ``separation_random``, ``separation_original`` (medians over targets of
        ``d'``, in standard deviations of the negatives).
    """
    d = np.asarray(dep.ap, float) - np.asarray(rand.ap, float)
    d = d[np.isfinite(d)]
    ci = (bootstrap_ci(lambda W: (W @ d) / W.sum(1), d.size, n_boot, seed) if d.size
          else (float("nan"), float("nan")))
    return {"ap": float(np.nanmean(dep.ap)), "ap_random": float(np.nanmean(rand.ap)),
            "ap_original": float(np.nanmean(orig.ap)),
            "ap_gain": float(d.mean()) if d.size else float("nan"), "ap_gain_ci": ci,
            "separation": float(np.nanmedian(dep.separation)),
            "separation_random": float(np.nanmedian(rand.separation)),
            "separation_original": float(np.nanmedian(orig.separation))}


def overlap_pairs(deps: Mapping[str, DepSet], n_boot: int = 1000, seed: int = 0) -> list[dict]:
    """Jaccard overlap of the within-model partner sets of every pair of models with at least
    one CNN (``deps``: each model's CovLasso fit on its own logits, same targets), against two
    random sets of the same sizes (:func:`.crossmodel.support_overlap`). One record per pair:
    ``a``, ``b`` (canonical names), ``kind`` (:func:`.crossmodel.pair_kind`), ``jaccard``,
    ``lo``, ``hi`` (95% bootstrap over targets), ``chance``, ``ratio`` (jaccard / chance)."""
    models = list(deps)
    out = []
    for i, a in enumerate(models):
        for b in models[i + 1:]:
            if "cnn" not in (architecture(a), architecture(b)):
                continue
            r = crossmodel.support_overlap(deps[a], deps[b], seed=seed, n_boot=n_boot)
            out.append({"a": a, "b": b, "kind": crossmodel.pair_kind(a, b),
                        "jaccard": r["jaccard"], "lo": r["jaccard_ci"][0],
                        "hi": r["jaccard_ci"][1], "chance": r["chance"],
                        "ratio": r["jaccard"] / r["chance"] if r["chance"] > 0 else float("nan")})
    return out


def architecture_rows(models: Sequence[str], needed: Mapping[str, dict],
                      contrast: Mapping[str, dict], overlaps: Sequence[dict]) -> list[dict]:
    """The side-by-side table, one row per model: its name with its note (the ViT's recipe),
    architecture, width ``d``, recipe, the support needed (:func:`support_needed`), AP and
    separation ``d'`` against random partners (:func:`reading_contrast`), and the mean Jaccard overlap
    of its partner sets with the CNNs' (each other CNN once; :func:`overlap_pairs`) against
    chance. Pairs missing from ``overlaps`` are skipped (NaN when none is left)."""
    rows = []
    for m in models:
        mine = [o for o in overlaps if m in (o["a"], o["b"])
                and architecture(o["b"] if o["a"] == m else o["a"]) == "cnn"]
        spec = get_spec(m)
        nd, c = needed[m], contrast[m]
        rows.append({
            "model": label(m), "architecture": architecture(m) or "unknown",
            "d": getattr(spec, "width", None), "recipe": recipe(m),
            "share reaching 1-R^2 <= 0.3": nd["share_reaching"],
            "median k needed": nd["k_median"],
            "AP (dependency)": c["ap"], "AP (random)": c["ap_random"],
            "AP gain over random": c["ap_gain"],
            "AP gain 95% CI": f"[{c['ap_gain_ci'][0]:.3f}, {c['ap_gain_ci'][1]:.3f}]",
            "AP (original)": c["ap_original"],
            "separation d' (dependency)": c["separation"],
            "separation d' (random)": c["separation_random"],
            "separation d' (original)": c["separation_original"],
            "Jaccard with CNNs": (float(np.mean([o["jaccard"] for o in mine])) if mine
                                  else float("nan")),
            "chance": float(np.mean([o["chance"] for o in mine])) if mine else float("nan"),
            "CNNs compared": len(mine)})
    return rows


def display_rows(rows: Sequence[dict]) -> list[dict]:
    """:func:`architecture_rows` as the book shows them: the same numbers in nine columns that
    fit the page (dependency / random / original side by side in one cell, intervals as
    ``[a, b]``; a quantity that could not be measured reads ``n/a``)."""
    def f(x: float, digits: int = 2) -> str:
        return f"{x:.{digits}f}" if x is not None and np.isfinite(x) else "n/a"

    out = []
    for r in rows:
        k = r["median k needed"]
        out.append({
            "model": r["model"], "kind": r["architecture"], "d": r["d"], "recipe": r["recipe"],
            "reaching 1-R² <= 0.3 (median k)": f"{100 * r['share reaching 1-R^2 <= 0.3']:.0f}% "
                                               f"({_g(k) if np.isfinite(k) else 'none'})",
            "AP: dependency / random / original": f"{f(r['AP (dependency)'])} / "
                                                  f"{f(r['AP (random)'])} / "
                                                  f"{f(r['AP (original)'])}",
            "AP gain over random [95% CI]": f"{r['AP gain over random']:+.3f} "
                                            f"{r['AP gain 95% CI']}",
            "d': dependency / random / original": f"{f(r[SEP + ' (dependency)'])} / "
                                                  f"{f(r[SEP + ' (random)'])} / "
                                                  f"{f(r[SEP + ' (original)'])}",
            "Jaccard with CNNs (chance)": (f"{f(r['Jaccard with CNNs'], 3)} "
                                           f"({f(r['chance'], 3)}), {r['CNNs compared']} CNNs"
                                           if r["CNNs compared"] else "n/a")})
    return out


def summary_text(rows: Sequence[dict], overlaps: Sequence[dict], k: int) -> str:
    """One paragraph putting each transformer's quantities beside the CNNs' range (no rule:
    the numbers only)."""
    tf = [r for r in rows if r["architecture"] == "transformer"]
    cnn = [r for r in rows if r["architecture"] == "cnn"]
    if not tf or not cnn:
        return ("No transformer and CNN side by side in this run: the comparison needs both "
                "(the default profile has ViT-Ti/16 beside ten CNNs).")

    def rng(key, fmt):
        vals = [r[key] for r in cnn if np.isfinite(r[key])]
        if not vals:
            return "n/a"
        lo, hi = fmt(min(vals)), fmt(max(vals))
        return lo if lo == hi else f"{lo} to {hi}"

    def span(vals):
        return f"{min(vals):.3f}" if min(vals) == max(vals) else \
            f"{min(vals):.3f}-{max(vals):.3f}"

    def pct(x):
        return f"{100 * x:.0f}%"

    cnn_cnn = [o["jaccard"] for o in overlaps if o["kind"].startswith("CNN-CNN")]
    parts = []
    for r in tf:
        name = r["model"].split(" ")[0]
        cc = [o for o in overlaps if o["kind"] == crossmodel.CNN_TRANSFORMER
              and name in (short_name(o["a"]), short_name(o["b"]))]
        text = (
            f"{r['model']}: {pct(r['share reaching 1-R^2 <= 0.3'])} of the targets reach "
            f"held-out 1 - R^2 <= 0.3 (CNNs {rng('share reaching 1-R^2 <= 0.3', pct)}), at a "
            f"median k of {_g(r['median k needed'])} (CNNs {rng('median k needed', _g)}); at "
            f"k = {k} its dependency's AP is {r['AP (dependency)']:.3f} against "
            f"{r['AP (random)']:.3f} for random partners (gain {r['AP gain over random']:+.3f} "
            f"{r['AP gain 95% CI']}; CNNs' gains {rng('AP gain over random', '{:+.3f}'.format)}"
            f"), its separation d' {r[SEP + ' (dependency)']:.2f} against "
            f"{r[SEP + ' (original)']:.2f} for its own logit (CNNs "
            f"{rng(SEP + ' (dependency)', '{:.2f}'.format)} against "
            f"{rng(SEP + ' (original)', '{:.2f}'.format)})")
        if cc:
            text += (f"; its partner sets overlap a CNN's with Jaccard "
                     f"{span([o['jaccard'] for o in cc])} (chance about "
                     f"{np.mean([o['chance'] for o in cc]):.3f})")
            if cnn_cnn:
                text += f", CNN pairs {span(cnn_cnn)}"
        parts.append(text + ".")
    return " ".join(parts)


def _g(x: float) -> str:
    return f"{x:g}" if np.isfinite(x) else "n/a (no target reaches it)"


def numbers(nums: Numbers, models: Sequence[str], needed: Mapping[str, dict],
            contrast: Mapping[str, dict], overlaps: Sequence[dict], k: int) -> None:
    """Add the section's numbers to notebook 01's ``nums``: per model
    ``<short>_k_needed_median``, ``<short>_share_reaching_relres0.3``,
    ``<short>_ap_gain_vs_random_k<k>`` (with its interval; a number that is not finite, e.g.
    the median of no target, is left out), and per pair
    ``overlap01_<a>_<b>_k<k>`` (Jaccard with its interval; chance in the definition)."""
    thr = rules.C5.threshold
    for m in models:
        sm = short_name(m)
        if np.isfinite(needed[m]["k_median"]):  # no target reaching it: no median
            nums.add(f"{sm}_k_needed_median", needed[m]["k_median"],
                     f"{label(m)}: median over the targets reaching it of the smallest k "
                     f"(notebook 01's grid) whose CovLasso support refitted by least squares "
                     f"reaches held-out 1 - R^2 <= {thr:g}, pooled over the folds",
                     unit="partners")
        nums.add(f"{sm}_share_reaching_relres{thr:g}", needed[m]["share_reaching"],
                 f"{label(m)}: share of the targets whose refitted dependency reaches held-out "
                 f"1 - R^2 <= {thr:g} at some k of notebook 01's grid", unit="fraction")
        c = contrast[m]
        if np.isfinite(c["ap_gain"]):
            nums.add(f"{sm}_ap_gain_vs_random_k{k}", c["ap_gain"],
                     f"{label(m)}, k = {k}: mean over targets of the average precision of the "
                     "refitted CovLasso dependency minus that of random partners at the same k; "
                     "95% bootstrap CI over targets", ci=c["ap_gain_ci"], unit="fraction")
    for o in overlaps:
        nums.add(f"overlap01_{short_name(o['a'])}_{short_name(o['b'])}_k{k}", o["jaccard"],
                 f"{label(o['a'])} & {label(o['b'])} ({o['kind']}): mean Jaccard overlap of "
                 f"their within-model CovLasso partner sets at k = {k} (fold 0); 95% CI over "
                 f"targets; chance {o['chance']:.4f}", ci=(o["lo"], o["hi"]))


@dataclass
class Comparison:
    """The section's measurements: ``rows`` (:func:`architecture_rows`), ``overlaps``
    (:func:`overlap_pairs`), per model ``needed`` (:func:`support_needed`) and ``contrast``
    (:func:`reading_contrast`), at support size ``k``."""

    rows: list[dict]
    overlaps: list[dict]
    needed: dict[str, dict]
    contrast: dict[str, dict]
    k: int

    def text(self) -> str:
        """:func:`summary_text` of the comparison."""
        return summary_text(self.rows, self.overlaps, self.k)

    def records(self) -> dict:
        """JSON-able records for a results file (``rows`` and ``overlaps``)."""
        return {"k": self.k, "rows": self.rows, "overlaps": self.overlaps}


def compare(models: Sequence[str], ks: Sequence[int], by_method: Mapping[tuple, Sequence[DepSet]],
            mets: Mapping[tuple, object], read_objs: Mapping[str, Mapping[tuple, Readings]],
            covlasso: Mapping[str, Sequence[Mapping[int, DepSet]]], k: int = 10,
            n_boot: int = 1000, threshold: float = rules.C5.threshold) -> Comparison:
    """Every quantity of the section from notebook 01's fits and readings.

    Parameters
    ----------
    models : sequence of str
        The models compared (notebook 01's).
    ks : sequence of int
        Notebook 01's support sizes (the grid of the support needed).
    by_method : mapping
        ``{(model, method, k): [DepSet per fold]}`` (notebook 01's ``fits.by_method``).
    mets : mapping
        ``{(model, method, k): Metrics}`` of the same keys (held-out ``relres`` per target).
    read_objs : mapping
        Per model, the per-target readings by ``(method, k)`` (notebook 01's
        ``reading_tables``), with ``(REFIT, k)``, ``("random + LS", k)`` and
        ``("original", "all")``.
    covlasso : mapping
        Per model, per fold, ``{k: DepSet}`` of the CovLasso (fold 0 gives the partner sets).
    k : int
        The support size of the AP, separation and overlap readings (C1's headline k).
    n_boot : int
        Bootstrap replicates of the intervals.
    threshold : float
        The held-out fidelity of the support needed (C5's 0.3).

    Returns
    -------
    Comparison
    """
    needed, contrast = {}, {}
    for m in models:
        kk = np.stack([np.mean([d.k for d in by_method[(m, REFIT, q)]], axis=0) for q in ks])
        rr = np.stack([mets[(m, REFIT, q)].relres for q in ks])
        needed[m] = support_needed(kk, rr, threshold)
        ro = read_objs[m]
        contrast[m] = reading_contrast(ro[(REFIT, k)], ro[(RANDOM, k)], ro[("original", "all")],
                                       n_boot, 0)
    overlaps = overlap_pairs({m: covlasso[m][0][k] for m in models}, n_boot, 0)
    return Comparison(architecture_rows(models, needed, contrast, overlaps), overlaps,
                      needed, contrast, k)
