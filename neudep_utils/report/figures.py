"""Figures of notebooks 03 (sparsity and redundancy) and 04 (robustness).

Each function draws one figure, one panel per row where side-by-side panels would shrink below
the book's column, and returns the matplotlib Figure. Nothing here computes a number: the inputs
are the findings' results (:mod:`neudep_utils.findings.redundancy`, ``sparsity``,
``robust_study``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .plots import tidy_figure

__all__ = ["bootstrap_supports", "dense_contrast", "path_coefficients", "path_panels",
           "redundancy_scatter", "robustness_panels", "sixteen_class", "spectra",
           "subset_panels"]


def spectra(spec: Mapping[str, np.ndarray], short: Mapping[str, str]) -> plt.Figure:
    """Each model's eigenvalues over the trace, log scale (floored at 1e-20)."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for m, e in spec.items():
        ax.semilogy(np.arange(1, e.size + 1), np.maximum(e / e.sum(), 1e-20), label=short[m])
    ax.set(xlabel="eigenvalue index", ylabel="eigenvalue / trace (log, floor 1e-20)",
           title="Spectrum of the centred logit covariance (fit rows)")
    ax.legend()
    tidy_figure(fig)
    fig.tight_layout()
    return fig


def path_coefficients(p, lam_ratios: np.ndarray, name: Callable[[int], str], model: str,
                      n_targets: int = 3, top: int = 6) -> plt.Figure:
    """The ``top`` largest coefficients of the first ``n_targets`` kept paths of ``p`` (a
    :class:`~neudep_utils.findings.redundancy.PathStudy` with ``coef``) against lam."""
    fig, axes = plt.subplots(n_targets, 1, figsize=(7.5, 3.4 * n_targets), squeeze=False)
    for ax, t in zip(axes[:, 0], range(n_targets), strict=True):
        co = p.coef[:, t, :]
        for j in np.argsort(-np.abs(co).max(axis=0))[:top]:
            ax.plot(lam_ratios, co[:, j], marker=".", label=name(j))
        ax.set(xscale="log", xlabel="lam / lam_max", ylabel="coefficient",
               title=f"{model} path: {name(p.targets[t])}")
        ax.invert_xaxis()
        ax.legend(fontsize=8, loc="upper left")
    tidy_figure(fig)
    fig.tight_layout()
    return fig


def path_panels(ps: Mapping, lam_ratios: np.ndarray, short: Mapping[str, str],
                threshold: float) -> plt.Figure:
    """Along the path per model: median support against lam, median held-out 1 - R^2 against
    the support, pooled target-class accuracy kept against the support (dotted: unmodified)."""
    fig, axes = plt.subplots(3, 1, figsize=(7.5, 12))
    for m, p in ps.items():
        axes[0].plot(lam_ratios, p.k_median, marker="o", label=short[m])
        axes[1].plot(p.k_median, np.median(p.rr, 1), marker="o", label=short[m])
        axes[2].plot(p.k_median, 100 * p.acc_replaced, marker="o", label=short[m])
        axes[2].axhline(100 * p.acc_base, ls=":", lw=1, color=axes[2].lines[-1].get_color())
    axes[0].set(xscale="log", yscale="log", xlabel="lam / lam_max",
                ylabel="median support size k", title="support size against lam")
    axes[0].invert_xaxis()
    axes[1].axhline(threshold, color="r", ls="--", label="fidelity threshold")
    axes[1].set(xscale="log", xlabel="median support size k",
                ylabel="median held-out 1 - R^2 (refit)", title="fidelity against k")
    axes[2].set(xscale="log", xlabel="median support size k",
                ylabel="target-class accuracy kept (%)",
                title="C1's functional criterion (dotted: unmodified model)")
    for ax in axes:
        ax.legend(fontsize=9)
    tidy_figure(fig)
    fig.tight_layout()
    return fig


def redundancy_scatter(ps: Mapping, pred: Mapping[str, dict], short: Mapping[str, str],
                       threshold: float, n: int) -> plt.Figure:
    """Per tested model (``pred`` entries with a ``null``): every category's redundancy against
    the support it needs (never reached: plotted at 2n), real and null."""
    tested = [m for m, r in pred.items() if "null" in r]
    fig, axes = plt.subplots(max(len(tested), 1), 1, figsize=(7, 3.6 * max(len(tested), 1)),
                             squeeze=False)
    for ax, m in zip(axes[:, 0], tested, strict=False):
        null = pred[m]["null"]
        for lab, r_, k_, col in (("null", null["r_in"], null["k_needed"], "0.6"),
                                 ("real", ps[m].r_in, ps[m].k_needed, "C0")):
            ax.scatter(np.maximum(r_, 1e-12), np.where(np.isfinite(k_), k_, 2 * n), s=6,
                       alpha=0.4, color=col, label=lab)
        ax.set(xscale="log", yscale="log", xlabel="r_i / C_ii (in sample)",
               ylabel=f"k for 1-R^2 <= {threshold:g}", title=f"{short[m]}: rho = "
               f"{pred[m]['rho']:.2f}, null {pred[m]['rho_null']:.2f}")
        ax.legend(fontsize=9)
    if not tested:  # every covariance singular (d < n): nothing to rank, said in the panel
        axes[0, 0].text(0.5, 0.5, "no model with a full-rank covariance in this profile:\n"
                        "r_i = 0 for every category, no ranking to test", ha="center",
                        va="center", transform=axes[0, 0].transAxes)
        axes[0, 0].set_axis_off()
    tidy_figure(fig)
    fig.tight_layout()
    return fig


def subset_panels(frame: pd.DataFrame, threshold: float, model: str) -> plt.Figure:
    """The category-subset experiment: median residuals against K (band: interquartile range),
    and the share reaching the threshold with the median support there."""
    long = frame.melt(id_vars=["K"], value_vars=["r_in", "rr_ols", "rr_best"],
                      var_name="quantity", value_name="1 - R^2")
    long["quantity"] = long["quantity"].map({
        "r_in": "in sample, all others", "rr_ols": "held out, all others (LS)",
        "rr_best": "held out, oracle path point"})
    fig, axes = plt.subplots(2, 1, figsize=(7.5, 8))
    sns.lineplot(long, x="K", y="1 - R^2", hue="quantity", estimator="median",
                 errorbar=("pi", 50), marker="o", ax=axes[0])
    axes[0].axhline(threshold, color="r", ls="--")
    axes[0].set(xscale="log", yscale="log", xlabel="number of categories K",
                title=f"{model}: residual of every category as K grows")
    agg = frame.groupby("K").agg(reached=("reached", "mean"), k_med=("k_fid", "median"))
    axes[1].plot(agg.index, agg["reached"], marker="o", label="share reaching threshold")
    axes[1].set(xscale="log", xlabel="number of categories K", ylim=(0, 1.05),
                ylabel=f"share with 1-R^2 <= {threshold:g}",
                title="dependencies at fixed fidelity")
    ax2 = axes[1].twinx()
    ax2.plot(agg.index, agg["k_med"], marker="s", color="C1", label="median k (if reached)")
    ax2.set(ylabel="median k at threshold")
    axes[1].legend(loc="upper left")
    ax2.legend(loc="lower right")
    tidy_figure(fig)
    fig.tight_layout()
    return fig


def bootstrap_supports(bs: dict, name: Callable[[int], str], lam_ratio: float) -> plt.Figure:
    """Support stability (Jaccard to the full-sample support) of the bootstrap targets, and the
    selection frequency of the first target's most frequent partners."""
    fig, axes = plt.subplots(2, 1, figsize=(7.5, 8))
    targets = bs["targets"]
    axes[0].boxplot([bs["jaccard"][:, t] for t in range(len(targets))], showfliers=False)
    axes[0].set_xticks(range(1, len(targets) + 1), [name(t) for t in targets], rotation=45,
                       ha="right")
    axes[0].set(ylabel="Jaccard to full support", ylim=(0, 1),
                title=f"support stability at lam = {lam_ratio:g} lam_max")
    fr = bs["freq"][0]
    sel = np.argsort(-fr)[:15]
    axes[1].bar(range(len(sel)), fr[sel], color=["C0" if bs["support"][0, j] else "C3"
                                                 for j in sel])
    axes[1].set_xticks(range(len(sel)), [name(j) for j in sel], rotation=45, ha="right")
    axes[1].set(ylabel="selection frequency", ylim=(0, 1.05),
                title=f"{name(targets[0])}'s partners (blue: in the full-sample support)")
    tidy_figure(fig)
    fig.tight_layout()
    return fig


def dense_contrast(dense: pd.DataFrame) -> plt.Figure:
    """Held-out 1 - R^2 against the number of random least-squares partners, per model."""
    fig, ax = plt.subplots(figsize=(7.5, 4))
    sns.lineplot(dense, x="m", y="rr", hue="model", marker="o", estimator="median",
                 errorbar=None, ax=ax)
    ax.set(yscale="log", xlabel="number m of random partner logits",
           ylabel="held-out 1 - R^2 (median, 3 categories)",
           title="exact dependencies of a rank-d logit layer need about d partners")
    tidy_figure(fig)
    fig.tight_layout()
    return fig


def robustness_panels(avg: pd.DataFrame, delta: pd.DataFrame, title: str) -> plt.Figure:
    """Top-1 against severity per head (band: range over seeds), and each head's difference to
    plain fine-tuning per corruption type."""
    fig, axes = plt.subplots(2, 1, figsize=(8, 9))
    sns.lineplot(avg, x="severity", y="top-1", hue="method", marker="o", errorbar=("pi", 100),
                 ax=axes[0])
    axes[0].set(xlabel="corruption severity (0 = clean)", ylabel="top-1 (mean over types)",
                title=title)
    sns.barplot(delta, x="corruption", y="top-1", hue="method", errorbar=None, ax=axes[1])
    axes[1].set(ylabel="top-1 minus cross-entropy only", xlabel="corruption type",
                title="difference to plain fine-tuning")
    axes[1].tick_params(axis="x", rotation=30)
    for ax in axes:  # legends beside the panels, never over the bars or lines
        if ax.get_legend() is not None:
            sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1), fontsize=8,
                            title_fontsize=8, frameon=False)
    tidy_figure(fig)
    fig.tight_layout()
    return fig


def sixteen_class(summ: pd.DataFrame, cols: list[str], label: Mapping[str, str]) -> plt.Figure:
    """The 16-category numbers of every head (bars: mean; whiskers: range over seeds)."""
    m16 = summ.melt(id_vars=["method", "seed"], value_vars=cols, var_name="metric",
                    value_name="value")
    m16["method"] = m16["method"].map(label)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    sns.barplot(m16, x="metric", y="value", hue="method", errorbar=("pi", 100), ax=ax)
    ax.set(xlabel="", ylabel="fraction", title="16-category sets: accuracy and shape bias")
    ax.tick_params(axis="x", rotation=20)
    sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1), fontsize=8, title=None,
                    frameon=False)
    tidy_figure(fig)
    fig.tight_layout()
    return fig
