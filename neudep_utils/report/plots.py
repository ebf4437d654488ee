"""The book's multi-panel figures that more than a few lines of plotting take.

Each function draws one figure from a tidy table (one row per measurement) and returns the
matplotlib Figure; the notebooks call them and show the result. Nothing here computes a number.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

__all__ = ["METRIC_PANELS", "READING_PANELS", "cross_model_panels", "learning_curve", "tidy_figure",
           "family_graph", "metric_panels", "nearness_panels", "overlap", "readings_panels",
           "scatter_dependency",
           "width_curve"]

#: (metric column, axis label, scale, column of the unmodified model's value).
METRIC_PANELS = (
    ("relres_median", "1 - R^2 (median over targets)", 1.0, None),
    ("acc_replaced", "target-class accuracy after replacement (%)", 100, "acc_base"),
    ("fp_created_per_target", "false positives created per target (images)", 1.0,
     "fp_base_per_target"),
    ("weak_top1", "WEAK: overall top-1 after one replacement (%)", 100, "weak_base_top1"),
)
_LINESTYLES = ("-", "--", ":")


def tidy_figure(fig: plt.Figure, label_width: int = 34, title_width: int = 80) -> None:
    """Make ``fig`` readable in the book's column: log axes labelled with plain numbers at 1, 2
    and 5 per decade with minor ticks unlabelled (matplotlib's default labels minor ticks as
    ``4x10^-1`` on axes spanning less than a decade, and they overlap); axis labels wrapped at
    ``label_width`` characters (a long y-label ran into the next panel) and the figure title at
    ``title_width``."""
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    if fig._suptitle is not None:
        fig._suptitle.set_text(textwrap.fill(fig._suptitle.get_text(), title_width))
    for ax in fig.axes:
        # the Text objects themselves: their colour and size stay
        for text, width in ((ax.yaxis.label, label_width), (ax.title, title_width - 20)):
            if len(text.get_text()) > width and "\n" not in text.get_text():
                text.set_text(textwrap.fill(text.get_text(), width))
        for axis, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale())):
            if scale != "log":
                continue
            lo, hi = sorted(abs(v) for v in (axis.get_view_interval()))
            if lo > 0 and hi / lo < 1e4:  # short ranges: plain numbers; long: powers of 10
                axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
                axis.set_major_formatter(plain)
            axis.set_minor_formatter(NullFormatter())


def metric_panels(tab: pd.DataFrame, dense: pd.DataFrame, methods: Sequence[str],
                  models: Sequence[str], title: str) -> plt.Figure:
    """Four metrics against k (log scale), one line per method and model; black lines: the
    unmodified model; X: dense least squares. ``tab``/``dense``: :func:`metrics_table` rows with a
    ``model`` column."""
    # one panel per row: each is read at the full width of the book's column
    fig, axes = plt.subplots(4, 1, figsize=(7.5, 15), sharex=True)
    for ax, (col, label, scale, base) in zip(axes.ravel(), METRIC_PANELS, strict=True):
        sns.lineplot(data=tab.assign(value=tab[col] * scale), x="k", y="value", hue="method",
                     style="model", markers=True, hue_order=methods, ax=ax,
                     legend=ax is axes[0])
        for mi, m in enumerate(models):
            if base is not None:
                ax.axhline(tab[tab.model == m][base].iloc[0] * scale, color="k", lw=1,
                           ls=_LINESTYLES[mi % 3], alpha=0.6)
            dd = dense[dense.model == m].iloc[0]
            ax.scatter([dd["k"]], [dd[col] * scale], marker="X", s=70, color="tab:purple",
                       zorder=5, label="dense LS (all partners)" if mi == 0 else None)
        ax.set_xscale("log")
        ax.set(xlabel="support size k (number of partner logits, log scale)", ylabel=label)
        if col == "weak_top1":
            ax.set_title("WEAK metric (1 of 1000 logits replaced)", color="tab:red")
    axes[0].legend(fontsize=8, loc="upper right")
    axes[1].legend(handles=[Line2D([], [], color="k", ls=_LINESTYLES[i % 3],
                                      label=f"unmodified {m}") for i, m in enumerate(models)],
                      fontsize=8, loc="center left")
    fig.suptitle(title)
    tidy_figure(fig)
    fig.tight_layout()
    return fig


def cross_model_panels(tab: pd.DataFrame, configs: Sequence[str], methods: Sequence[str],
                       title: str) -> plt.Figure:
    """Cross-model version of :func:`metric_panels`: one row per candidate configuration, bands
    spanning the ordered pairs (min to max); black: unmodified model A (mean over the pairs). The
    weak metric is drawn as its change from each pair's unmodified overall top-1 (points): its
    level differs between pairs by more than any dependency moves it, so a band over the pairs'
    levels would cover the whole panel."""
    # one panel per row (configuration-major): each is read at the full column width
    fig, axes = plt.subplots(4 * len(configs), 1, figsize=(7.5, 3.4 * 4 * len(configs)),
                             sharex=True, squeeze=False, layout="constrained")
    for r, cfg in enumerate(configs):
        sub = tab[tab.candidates == cfg]
        for c, (col, label, scale, base) in enumerate(METRIC_PANELS):
            ax = axes[4 * r + c, 0]
            weak = col == "weak_top1"
            y = (sub[col] - sub[base]) * scale if weak else sub[col] * scale
            sns.lineplot(data=sub.assign(v=y), x="k_requested", y="v",
                         hue="method", hue_order=methods, marker="o", errorbar=("pi", 100),
                         ax=ax, legend=(r == 0 and c == 0))
            if weak:
                ax.axhline(0, color="k", lw=1)
                label = "WEAK: change in overall top-1 after one replacement (points)"
            elif base:
                ax.axhline(sub[base].mean() * scale, color="k", lw=1)
            ax.set_xscale("log")
            ax.set(xlabel="requested support size k (partners from B, log scale)", ylabel=label)
            ax.set_title(("WEAK metric; " if weak else "") + cfg, fontsize=10,
                         color="tab:red" if weak else "k")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(title, fontsize=11)
    tidy_figure(fig)
    return fig


def scatter_dependency(panels: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
                       target_name: str, title: str) -> plt.Figure:
    """True target logit against its dependency's prediction, one panel per
    ``(panel title, true logits, predicted logits, is-target-class mask)``."""
    n = len(panels)  # two per row at most: each panel at least half the column
    cols = min(n, 2)
    rows_ = -(-n // cols)
    fig, axes = plt.subplots(rows_, cols, figsize=(3.9 * cols, 3.9 * rows_), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    for ax, (ptitle, true, pred, is_t) in zip(axes.ravel()[:n], panels, strict=True):
        sns.scatterplot(x=true[~is_t], y=pred[~is_t], s=10, alpha=0.35, ax=ax,
                        label="other classes", color="tab:gray")
        sns.scatterplot(x=true[is_t], y=pred[is_t], s=80, ax=ax, label=f"{target_name} images",
                        color="tab:red", marker="*")
        lim = [min(true.min(), pred.min()), max(true.max(), pred.max())]
        ax.plot(lim, lim, "k--", lw=1, label="perfect")
        ax.set(xlabel=f"true {target_name} logit (logit units)",
               ylabel=f"dependency's {target_name} logit (logit units)", title=ptitle)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    tidy_figure(fig)
    fig.tight_layout()
    return fig


def learning_curve(lc: pd.DataFrame, fits: dict, title: str) -> plt.Figure:
    """Held-out and oracle (own fit images) 1 - R^2 and target-class accuracy against the number
    of fit images, per method (band: min-max over seeds), with the fitted ``a + b n^-c`` of each
    held-out curve extrapolated to 10x the largest fit set (dotted). ``lc``: records of
    :func:`neudep_utils.findings.scaling.learning_curve`; ``fits``: ``{(method, column): fit}`` of
    :func:`neudep_utils.findings.scaling.fit_saturating`."""
    fig, axes = plt.subplots(2, 1, figsize=(7.5, 8.6))
    n_max = lc["n_fit"].max()
    floor = 1e-3  # 1 - R^2 on the log axis: an oracle that interpolates its fit set reaches 0
    grid = np.geomspace(lc["n_fit"].min(), 10 * n_max, 60)
    methods = list(dict.fromkeys(lc["method"]))
    colours = dict(zip(methods, sns.color_palette(n_colors=len(methods)), strict=True))
    for ax, (col, label, scale) in zip(axes, (
            ("relres_median", "1 - R^2 (median over targets)", 1.0),
            ("acc_replaced", "target-class accuracy after replacement (%)", 100.0)),
            strict=True):
        v = lc[col] * scale
        if col == "relres_median":
            v = v.clip(lower=floor)
        sns.lineplot(data=lc.assign(v=v), x="n_fit", y="v", hue="method",
                     style="judged on", palette=colours, marker="o", errorbar=("pi", 100),
                     ax=ax)
        for m in methods:
            f = fits.get((m, col))
            if f is not None and np.isfinite(f["a"]):
                pred = f["predict"](grid) * scale
                if col == "relres_median":
                    pred = np.clip(pred, floor, None)
                ax.plot(grid, pred, ls=":", color=colours[m], lw=1.5)
        if col == "acc_replaced":
            ax.axhline(lc["acc_base"].mean() * scale, color="k", lw=1, label="unmodified")
        ax.axvline(n_max, color="grey", lw=0.8, ls="--")
        ax.set(xscale="log", xlabel="fit images (x views), log scale", ylabel=label)
        ax.legend(fontsize=7)
    axes[0].set_yscale("log")
    axes[0].set_ylim(bottom=floor / 1.5)
    axes[0].set_ylabel(f"1 - R^2 (median over targets; below {floor:g} drawn at {floor:g})")
    fig.suptitle(title)
    tidy_figure(fig)
    fig.tight_layout()
    return fig


def nearness_panels(near_tab: pd.DataFrame, distances: pd.DataFrame,
                    near_distance: float, source: str, k_headline: int,
                    models: Sequence[str]) -> plt.Figure:
    """Left: share of partners within ``near_distance`` against k, per model, with chance.
    Right: cumulative distribution of target-partner distances (``distances``: columns
    ``distance``, ``set``)."""
    fig, axes = plt.subplots(2, 1, figsize=(7.5, 8.4))
    for mi, m in enumerate(models):
        t_ = near_tab[near_tab.model == m]
        axes[0].errorbar(t_["k"] * (1 + 0.04 * mi), 100 * t_["observed"],
                         yerr=[100 * (t_["observed"] - t_["lo"]), 100 * (t_["hi"] - t_["observed"])],
                         marker="o", capsize=3, label=f"{m}: CovLasso partners")
    axes[0].plot(near_tab.groupby("k")["chance"].mean() * 100, "k--",
                 label="random partners (chance)")
    axes[0].set_xscale("log")
    axes[0].set(xlabel="support size k (log scale)",
                ylabel=f"partners within WordNet distance {near_distance:g} (%)",
                title=f"Semantic nearness of partners ({source})")
    axes[0].legend(fontsize=8)
    sns.ecdfplot(data=distances, x="distance", hue="set", ax=axes[1])
    axes[1].axvline(near_distance, color="k", lw=1, ls=":")
    if axes[1].get_legend() is not None:  # the curves rise to the right: the legend goes left
        sns.move_legend(axes[1], "upper left", fontsize=8, title_fontsize=8)
    axes[1].set(xlabel="WordNet distance target-partner (hypernym-path length)",
                ylabel="cumulative share of pairs", title=f"k = {k_headline}")
    tidy_figure(fig)
    fig.tight_layout()
    return fig



def width_curve(width: pd.DataFrame, title: str) -> plt.Figure:
    """Top-1, target-class accuracy after replacement and 1 - R^2 against d'/n for rank-d' logit
    layers (records of :func:`neudep_utils.findings.scaling.width_curve`), one line per model and
    method (CovLasso at each k, dense least squares)."""
    w = width.assign(how=[f"{m}, k = {kr:g}" if m == "CovLasso" else "dense LS"
                          for m, kr in zip(width["method"], width["k_requested"],
                                           strict=True)])
    fig, axes = plt.subplots(3, 1, figsize=(7.5, 12), sharex=True)
    tops = w.drop_duplicates(["model", "d"])
    sns.lineplot(data=tops.assign(v=100 * tops["top1"]), x="d_over_n", y="v", hue="model",
                 marker="o", ax=axes[0])
    axes[0].set(ylabel="top-1 of the layer (%)", title="accuracy of the truncated layer")
    for ax, (col, label, scale) in zip(axes[1:], (
            ("acc_replaced", "target-class accuracy after replacement (%)", 100.0),
            ("relres_median", "held-out 1 - R^2 (median over targets)", 1.0)), strict=True):
        sns.lineplot(data=w.assign(v=w[col] * scale), x="d_over_n", y="v", hue="model",
                     style="how", marker="o", ax=ax)
        ax.set(ylabel=label)
        ax.legend(fontsize=7)
    for _, g in tops.groupby("model"):
        axes[1].plot(g["d_over_n"], 100 * g["acc_base"], ls="--", lw=1, color="grey")
    axes[2].set_yscale("log")
    for ax in axes:
        ax.axvline(1.0, color="k", lw=0.8, ls=":")
        ax.set(xlabel="d' / n (rank of the logit layer / number of categories)")
    fig.suptitle(title)
    tidy_figure(fig)
    fig.tight_layout()
    return fig


#: (reading, axis label) of :func:`readings_panels`.
READING_PANELS = (
    ("top5", "top-5 retention of class-i images"),
    ("ap", "average precision (mean over targets)"),
    ("separation", "separation d' (negative-class SDs, median)"),
    ("auc", "ROC AUC (mean over targets; saturated)"),
)


def readings_panels(rows: pd.DataFrame, title: str, all_k: int = 999) -> plt.Figure:
    """The secondary readings against k: per model (one colour) the refitted dependency (solid,
    circles; dense least squares at ``all_k``), random partners at the same k (dotted) and the
    unmodified model (a star right of the axis' last k). ``rows``: records of
    :func:`neudep_utils.findings.why.reading_rows`."""
    r = rows.assign(kx=[all_k if k == "all" else int(k) for k in rows["k"]])
    models = list(dict.fromkeys(r["model"]))
    colours = dict(zip(models, sns.color_palette("tab10", len(models)), strict=True))
    fig, axes = plt.subplots(4, 1, figsize=(7.5, 13), sharex=True)
    for ax, (col, label) in zip(axes.ravel(), READING_PANELS, strict=True):
        for m in models:
            g = r[r.model == m]
            dep = g[g.method.isin(["CovLasso support + LS", "dense LS"])].sort_values("kx")
            rnd = g[g.method == "random + LS"].sort_values("kx")
            orig = g[g.method == "original"]
            ax.plot(dep.kx, dep[col], "-o", color=colours[m], ms=4, label=m)
            # markers too: a single k of random partners is a point, not a line
            ax.plot(rnd.kx, rnd[col], ":s", color=colours[m], lw=1.2, ms=3)
            if len(orig):
                ax.plot([all_k * 1.6], orig[col].iloc[:1], "*", color=colours[m], ms=10)
        ax.set_xscale("log")
        ax.set(xlabel="support size k (log; 999 = all other logits)", ylabel=label)
        ax.tick_params(labelsize=9)
    handles = [Line2D([], [], color=c, marker="o", label=m) for m, c in colours.items()]
    handles += [Line2D([], [], color="grey", ls=":", marker="s", ms=3,
                       label="random partners, same k"),
                Line2D([], [], color="grey", marker="*", ls="", ms=10,
                       label="unmodified model")]
    fig.legend(handles=handles, loc="lower center", ncol=min(4, len(handles)), fontsize=8,
               frameon=False)
    fig.suptitle(title, fontsize=11)
    tidy_figure(fig)
    fig.tight_layout(rect=(0, 0.03 + 0.012 * (len(handles) // 4), 1, 0.97))
    return fig


def family_graph(G, share: dict[str, float], family: str, title: str) -> plt.Figure:
    """A family's dependency graph (:func:`neudep_utils.findings.semantics.family_graph`):
    arrows partner -> target, width ~ |coefficient|, red positive / blue negative; node colour:
    the share of the target's partners inside the family."""
    fig, ax = plt.subplots(figsize=(11, 9))
    if G.number_of_edges():
        posn = nx.spring_layout(G, seed=0, k=2.5 / np.sqrt(max(G.number_of_nodes(), 1)),
                                iterations=300)
        ew = [G[u][v]["weight"] for u, v in G.edges]
        nodes = nx.draw_networkx_nodes(G, posn, node_color=[share.get(v, 0.0) for v in G],
                                       cmap="viridis", vmin=0, vmax=1, node_size=260, ax=ax)
        nx.draw_networkx_edges(G, posn, width=[0.5 + 4 * abs(w) for w in ew],
                               edge_color=["tab:red" if w > 0 else "tab:blue" for w in ew],
                               arrowsize=10, alpha=0.7, ax=ax, connectionstyle="arc3,rad=0.08")
        nx.draw_networkx_labels(G, posn, font_size=9, ax=ax)
        fig.colorbar(nodes, ax=ax, shrink=0.6,
                     label=f"share of the target's partners that are {family}s")
    ax.set_title(title, fontsize=11)
    ax.axis("off")
    tidy_figure(fig)
    fig.tight_layout()
    return fig


def overlap(ov: pd.DataFrame, title: str) -> plt.Figure:
    """Jaccard overlap of within-model partner sets against k, one line per pair of models with
    its 95% interval, and the overlap of random sets of the same sizes (dashed)."""
    fig, ax = plt.subplots(figsize=(7.5, 4.3))
    for key, g in ov.groupby("models"):
        ax.errorbar(g["k"], g["Jaccard"], yerr=[g["Jaccard"] - g["lo"], g["hi"] - g["Jaccard"]],
                    marker="o", capsize=3, label=f"{key}")
    ax.plot(ov.groupby("k")["chance"].mean(), "k--", label="random sets of the same sizes")
    ax.set_xscale("log")
    ax.set(xlabel="support size k (log scale)", ylabel="Jaccard overlap of partner sets (0-1)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    tidy_figure(fig)
    fig.tight_layout()
    return fig
