"""The headline figure of the claims page and of the README: per claim, what the paper expects
against what was measured.

Top two panels (C1 within a model, C2 across models): target-class accuracy kept when a
category's logit is replaced by its dependency, against the number of partners k, for every model
(or ordered model pair), with the unmodified model's accuracy (dotted; the paper expects the
dependency to stay within the similar-performance tolerance of it, shaded) and random partners at
the same k (dashed) as references. Bottom panel: every claim's verdict.

Drawn from a :func:`neudep_utils.report.readme.summarize` summary only (no numbers typed)::

    fig = claims_figure(summary)
    fig.savefig("book/_static/summary.png", dpi=110)
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ..verdicts import LEVELS
from ..verdicts.rules import SIMILAR
from .readme import curve_methods

__all__ = ["VERDICT_COLOURS", "claims_figure", "describe"]

#: One colour per verdict level (colour-blind safe; the level is also written as text).
VERDICT_COLOURS = {"reproduced": "#1b9e77", "partly reproduced": "#e6ab02",
                   "not reproduced": "#d95f02", "not testable here": "#999999"}
assert set(VERDICT_COLOURS) == set(LEVELS)


def _pooled(ax: Any, by: dict, models: list[str]) -> list[tuple[Any, str]]:
    """Many models (pairs): the mean over them per k, with their range as a band; returns the
    legend entries of the references (the unmodified models' range and mean, and the band of
    'similar' below that mean), each drawn in its own style."""
    for meth, ls, col, lab in (("CovLasso support + LS", "o-", "C0", "CovLasso dependency"),
                               ("random + LS", "s--", "C3", "random partners")):
        per_k: dict[int, list[float]] = defaultdict(list)
        for m in models:
            for r in by.get((m, meth), []):
                per_k[r["k_requested"]].append(100 * r["acc_replaced"])
        if not per_k:
            continue
        ks = sorted(per_k)
        v = [np.asarray(per_k[k]) for k in ks]
        ax.fill_between(ks, [x.min() for x in v], [x.max() for x in v], color=col, alpha=0.2,
                        lw=0)
        ax.plot(ks, [x.mean() for x in v], ls, color=col, lw=2, ms=4,
                label=f"{lab}: mean of {len(models)}, band: range")
    base = [100 * r["acc_base"] for m in models for rows in (by.get((m, meth), [])
            for meth in curve_methods) for r in rows if r.get("acc_base") is not None]
    if not base:
        return []
    b_lo, b_hi, b_mean = min(base), max(base), sum(base) / len(base)
    tol = 100 * SIMILAR.tolerance
    ax.axhspan(b_lo, b_hi, color="0.5", alpha=0.12, lw=0)
    ax.axhline(b_mean, color="k", ls=":", lw=1.2)
    ax.axhspan(b_mean - tol, b_mean, facecolor="none", edgecolor="k", hatch="///", lw=0,
               alpha=0.5)
    return [(Line2D([], [], color="k", ls=":"), "unmodified models: mean"),
            (Patch(color="0.5", alpha=0.12), f"unmodified models: range, {b_lo:.0f}-{b_hi:.0f}%"),
            (Patch(facecolor="none", edgecolor="k", hatch="///", alpha=0.5),
             f"'similar': up to {tol:g} points below the mean")]


def _curve_panel(ax: Any, rows: list[dict[str, Any]], title: str, what: str,
                 max_lines: int = 6) -> None:
    """Accuracy kept vs k per model (solid), random partners (dashed), unmodified (dotted);
    more than ``max_lines`` models (e.g. 12 ordered pairs) are pooled: mean and range."""
    by: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r.get("k_requested") is not None and r.get("acc_replaced") is not None:
            by[(r["model"], r["method"])].append(r)
    models = sorted({m for m, _ in by})
    colours = plt.get_cmap("tab10")
    extras: list[tuple[Any, str]] = []
    if len(models) > max_lines:
        extras = _pooled(ax, by, models)
        models = []
    for i, m in enumerate(models):
        col = colours(i % 10)
        base = [r["acc_base"] for meth in ("CovLasso support + LS", "random + LS")
                for r in by.get((m, meth), []) if r.get("acc_base") is not None]
        dep = sorted(by.get((m, "CovLasso support + LS"), []), key=lambda r: r["k_requested"])
        rnd = sorted(by.get((m, "random + LS"), []), key=lambda r: r["k_requested"])
        ks = [r["k_requested"] for r in dep or rnd]
        if base and ks:
            b = 100 * sum(base) / len(base)
            ax.axhline(b, color=col, ls=":", lw=1.2)
            ax.axhspan(b - 100 * SIMILAR.tolerance, b, color=col, alpha=0.08, lw=0)
        if dep:
            ax.plot([r["k_requested"] for r in dep], [100 * r["acc_replaced"] for r in dep],
                    "o-", color=col, lw=2, ms=4, label=f"{m}: CovLasso dependency")
        if rnd:
            ax.plot([r["k_requested"] for r in rnd], [100 * r["acc_replaced"] for r in rnd],
                    "s--", color=col, lw=1.2, ms=3, alpha=0.8, label=f"{m}: random partners")
    ax.set_xscale("log")
    ks_all = sorted({r["k_requested"] for r in rows if r.get("k_requested") is not None})
    if ks_all:
        ax.set_xticks(ks_all, [str(k) for k in ks_all])
        ax.minorticks_off()
    ax.set_ylim(-3, 103)
    ax.set_xlabel("partners k (log scale)")
    ax.set_ylabel("target-class accuracy (%)")
    ax.set_title(title, loc="left", fontsize=11)
    ax.grid(alpha=0.3)
    if not by:
        ax.text(0.5, 0.5, f"no {what} curves in these results", ha="center", va="center",
                transform=ax.transAxes)
        return
    handles, labels = ax.get_legend_handles_labels()
    if not extras:
        extras = [(Line2D([], [], color="k", ls=":"), "unmodified model"),
                  (Patch(color="k", alpha=0.12),
                   f"'similar': up to {100 * SIMILAR.tolerance:g} points below it")]
    handles += [h for h, _ in extras]
    labels += [lab for _, lab in extras]
    ax.legend(handles, labels, fontsize=8, ncol=2, loc="upper left",
              bbox_to_anchor=(0.0, -0.2), frameon=False)


def _verdict_panel(ax: Any, claims: list[dict[str, Any]]) -> None:
    """One bar per claim, coloured and labelled by its verdict."""
    n = len(claims)
    for i, c in enumerate(claims):
        y = n - 1 - i
        v = c.get("verdict") or "not testable here"
        ax.barh(y, 1, color=VERDICT_COLOURS.get(v, "#cccccc"), height=0.8)
        label = f"{c['cid']} {c['name']}"
        ax.text(0.01, y, label, va="center", ha="left", fontsize=9)
        nm = len(c.get("tested_on") or [])
        ax.text(0.99, y, (c.get("verdict") or "no result")
                + (f" ({nm} model{'s' if nm > 1 else ''})" if nm else ""),
                va="center", ha="right", fontsize=9, fontweight="bold")
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.6, n - 0.4)
    ax.axis("off")
    ax.set_title("Every claim's verdict", loc="left", fontsize=11)


def claims_figure(summary: dict[str, Any]) -> Any:
    """The headline figure (a matplotlib Figure, 6.8 in wide: one panel per row).

    Parameters
    ----------
    summary : dict
        :func:`neudep_utils.report.readme.summarize`'s output.
    """
    matplotlib.use("Agg", force=False)
    claims = summary["claims"]
    n1 = min(len({r["model"] for r in summary["curves"].get("C1", [])}), 6)
    n2 = min(len({r["model"] for r in summary["curves"].get("C2", [])}), 6)
    h1, h2, h3 = 3.0 + 0.18 * n1, 3.0 + 0.18 * n2, 0.32 * len(claims) + 0.6
    fig, axes = plt.subplots(3, 1, figsize=(6.8, h1 + h2 + h3),
                             gridspec_kw={"height_ratios": [h1, h2, h3]},
                             layout="constrained")
    _curve_panel(axes[0], summary["curves"].get("C1", []),
                 "C1: a category's logit replaced by a few others' (within a model)", "C1")
    _curve_panel(axes[1], summary["curves"].get("C2", []),
                 "C2: replaced by another model's logits (pair A->B, B's category excluded)",
                 "C2")
    _verdict_panel(axes[2], claims)
    fig.suptitle(f"Neural dependencies: the paper's expectation and the measurements "
                 f"(profile {summary['profile']})", fontsize=11)
    return fig


def describe(summary: dict[str, Any]) -> str:
    """Alt text of the figure: its panels and the verdicts, in words."""
    verdicts = "; ".join(f"{c['cid']} {c.get('verdict') or 'no result'}"
                         for c in summary["claims"])
    models = sorted({r["model"] for r in summary["curves"].get("C1", [])})
    pairs = len({r["model"] for r in summary["curves"].get("C2", [])})
    return (f"Two line charts of target-class accuracy against the number of partners k, for "
            f"{', '.join(models) or 'no models'} (C1) and {pairs} ordered model pairs (C2): "
            f"CovLasso dependency, random partners, unmodified model; then the verdict of every "
            f"claim: {verdicts}.")
