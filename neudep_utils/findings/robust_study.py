"""Notebook 04 (C6c), robustness with a dependency-derived regularizer: settings, the cached
features, the strength selection on a validation split (on which the verdict rests), training
every regularizer with every seed, paired evaluation on held-out clean and corrupted images, the
strongest baseline and the verdict with its deviation.

The regularizers and the head fine-tuning are in :mod:`.robustness`. Tested in
``tests/test_findings_robust.py``.

**Strength selection.** Every regularizer gets the same strength grid; on seed 0's split of the
fit images (``val_frac`` held out) the strength with the highest validation top-1 (all views of
the validation images) wins, ties going to the first in grid order (:func:`select_strengths`).
The eval images are never seen by the selection.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .. import cache, profiles
from ..images import corruptions
from ..metrics import bootstrap
from ..models import load_model, short_name
from ..record import Numbers, fmt_ci
from ..verdicts import Verdict, deviations, rules
from . import robustness as rob

__all__ = ["BASELINES", "LABEL", "METHODS", "PARAMETERS", "SCOPE", "Inputs", "Settings", "c6c_record", "claim_keys",
           "dependency_context", "evaluate_all", "evaluate_head", "gains", "gains_table", "load",
           "summary_table",
           "long_frames", "numbers", "summary", "trainer",
           "paired_gain", "select_strengths", "settings", "split_fit", "strongest_baseline",
           "train_all", "val_score"]

#: Fine-tuned heads, in table order: plain cross-entropy, the generic L2-SP, the two dependency
#: regularizers.
METHODS = ("none", "l2sp", "dep_weaken", "dep_consistency")
#: The dependency regularizers judged by C6c.
DEPENDENCY = ("dep_weaken", "dep_consistency")
#: The baselines a dependency regularizer must beat (the strongest of them decides).
BASELINES = ("none", "l2sp", "pretrained")
LABEL = {"none": "cross-entropy only", "l2sp": "L2-SP (generic)",
         "dep_weaken": "dependency weakening", "dep_consistency": "dependency consistency",
         "pretrained": "pretrained head (no fine-tuning)"}
#: What C6c's verdict covers, written into its record.
SCOPE = ("the classifier head fine-tuned on frozen features of one model; regularizers applied "
         "to the whole network during training are not tested (two CPU cores)")
#: Notebook 04's settings: one declaration per parameter
#: (:class:`~neudep_utils.profiles.RobustnessSettings`).
Settings = profiles.RobustnessSettings
#: Notebook 04's parameters besides ``profile`` and ``output_dir`` (its ``parameters`` cell).
PARAMETERS = tuple(n for n in Settings.names() if n != "profile")


def settings(profile: str = "default", **params) -> Settings:
    """Notebook 04's settings: the profile's, with the notebook's ``params`` applied (``None``
    keeps the profile's value; unknown names and wrong types raise
    :class:`~neudep_utils._params.ParameterError`)."""
    return profiles.get_profile(profile).robustness.with_params(**params)


@dataclass
class Inputs:
    """The cached features notebook 04 trains and evaluates on: fit images ``H_fit`` (images,
    views, d) with labels, the clean eval subset (centre views), its corrupted copies ``corr``
    (same images, same order), the cue-conflict sets ``cue``, the 16-category map and the
    pretrained head ``W0, b0``; ``entries`` for the results' provenance."""

    H_fit: np.ndarray
    y_fit: np.ndarray
    H_eval: np.ndarray
    y_eval: np.ndarray
    corr: dict
    cue: dict
    cat_names: list
    cat_idx: list
    W0: np.ndarray
    b0: np.ndarray
    entries: list = field(default_factory=list)

    @property
    def corr_names(self) -> list[str]:
        """The corruption x severity names, in cache order."""
        return list(self.corr)


def load(s: Settings) -> Inputs:
    """Read every cache entry notebook 04 needs (filled by ``make logits``) and check that each
    corrupted copy holds the clean eval subset's images in the same order."""
    rb = s
    val = cache.read_entry(s.model, rb.eval_folder, s.fit_views, progress=False)
    eval_pos = corruptions.subset_indices(len(val), rb.n_eval)
    fit_val_pos = np.setdiff1d(np.arange(len(val)), eval_pos)
    others = [cache.read_entry(s.model, f, s.fit_views, progress=False)
              for f in s.folders if f != rb.eval_folder]
    H_fit = np.concatenate([val.features[fit_val_pos]] + [o.features for o in others])
    y_fit = np.concatenate([val.labels[fit_val_pos]] + [o.labels for o in others])
    corr = rob.corrupted_features(rb, progress=False)
    want = tuple(val.image_ids[i] for i in eval_pos)
    for name, ls in corr.items():
        if ls.image_ids != want:
            raise ValueError(f"corrupted copy {name} does not hold the eval subset's images in "
                             "order; rebuild it with `make logits`")
    cue = {c.split("/")[-1]: cache.read_entry(s.model, c, 0, label_mode="folder", progress=False)
           for c in profiles.CUE_CONFLICT_SETS}
    cat_names, cat_idx = rob.category_index_map(rob.load_categories16())
    W0, b0 = load_model(s.model).classifier_weights()
    return Inputs(H_fit=H_fit.astype(np.float32), y_fit=y_fit,
                  H_eval=val.features[eval_pos, 0], y_eval=val.labels[eval_pos], corr=corr,
                  cue=cue, cat_names=cat_names, cat_idx=cat_idx,
                  W0=W0, b0=b0,
                  entries=[val, *others, *corr.values(), *cue.values()])


def dependency_context(inp: Inputs, lam_ratio: float) -> tuple[rob.RegContext, np.ndarray]:
    """The pretrained head's CovLasso dependencies (every category, on the pretrained logits of
    every fit view) and the regularizers' context; also each category's support size."""
    F = inp.H_fit.reshape(-1, inp.H_fit.shape[-1]).astype(np.float64) @ inp.W0.T + inp.b0
    theta = rob.dependency_matrix(F, lam_ratio)
    ctx = rob.RegContext(W0=inp.W0, b0=inp.b0, theta=theta, var0=F.var(axis=0))
    return ctx, np.count_nonzero(theta, axis=1)


def split_fit(n: int, seed: int, val_frac: float) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (train, validation) split of ``n`` fit images, both sorted; the validation part
    has ``round(val_frac * n)`` images."""
    if not 0 < val_frac < 1:
        raise ValueError(f"val_frac must be in (0, 1), got {val_frac}")
    perm = np.random.default_rng(1000 + seed).permutation(n)
    n_val = int(round(val_frac * n))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def val_score(inp: Inputs, head: tuple[np.ndarray, np.ndarray], va: np.ndarray) -> float:
    """Top-1 of a head on every view of the validation images ``va``."""
    Hv = inp.H_fit[va].reshape(-1, inp.H_fit.shape[-1])
    return float(rob.correct(Hv, np.repeat(inp.y_fit[va], inp.H_fit.shape[1]), *head).mean())


Trainer = Callable[[str, float, int, np.ndarray], tuple[np.ndarray, np.ndarray]]


def trainer(s: Settings, inp: Inputs, ctx: rob.RegContext) -> Trainer:
    """``train(kind, strength, seed, images)``: the head fine-tuned on those fit images."""
    def train(kind: str, strength: float, seed: int, idx: np.ndarray):
        return rob.finetune_head(inp.H_fit[idx], inp.y_fit[idx], ctx, kind, strength, s.steps,
                                 s.lr, s.batch, seed)
    return train


def select_strengths(s: Settings, inp: Inputs, train: Trainer,
                     score: Callable | None = None, progress: bool = True):
    """Pick each regularizer's strength on seed 0's validation split.

    Parameters
    ----------
    s : Settings
    inp : Inputs
    train : callable
        ``train(kind, strength, seed, images) -> (W, b)`` (:func:`trainer`).
    score : callable, optional
        ``score(head, validation_images) -> float``; default :func:`val_score`.
    progress : bool
        A progress bar over the regularizers.

    Returns
    -------
    (dict, dict, list)
        ``chosen`` (regularizer -> strength; ``none`` -> 0), the heads trained for seed 0 at the
        chosen strengths (keyed ``(kind, seed)``), and one row per (regularizer, strength) with
        its validation top-1. Highest top-1 wins; ties go to the first strength in grid order.
        When the grid's largest strength wins, the grid is extended tenfold (up to
        ``s.extend_grid`` times), so the chosen strength is not the grid's edge.
    """
    score = score or (lambda head, va: val_score(inp, head, va))
    seed0 = s.seeds[0]
    tr, va = split_fit(len(inp.y_fit), seed0, s.val_frac)
    trained = {("none", seed0): train("none", 0.0, seed0, tr)}
    rows = [{"method": "none", "strength": 0.0, "val top-1": score(trained[("none", seed0)], va)}]
    chosen = {"none": 0.0}
    for kind in tqdm(METHODS[1:], desc="strength selection", disable=not progress):
        best = None
        for st in s.strengths:
            head = train(kind, st, seed0, tr)
            sc = score(head, va)
            rows.append({"method": kind, "strength": st, "val top-1": sc})
            if best is None or sc > best[0] + 1e-12:
                best = (sc, st, head)
        grid = list(s.strengths)
        for _ in range(s.extend_grid):  # the largest strength won: try tenfold more
            if len(grid) < 2 or best[1] != max(grid):
                break
            st = 10.0 * max(grid)
            grid.append(st)
            head = train(kind, st, seed0, tr)
            sc = score(head, va)
            rows.append({"method": kind, "strength": st, "val top-1": sc})
            if sc > best[0] + 1e-12:
                best = (sc, st, head)
        chosen[kind], trained[(kind, seed0)] = best[1], best[2]
    rows.append({"method": "pretrained", "strength": float("nan"),
                 "val top-1": score((inp.W0, inp.b0), va)})
    return chosen, trained, rows


def train_all(s: Settings, inp: Inputs, train: Trainer, chosen: Mapping[str, float],
              trained: dict, progress: bool = True) -> dict:
    """Every regularizer at its chosen strength with every seed (each seed its own split);
    heads already in ``trained`` are kept. Returns ``trained`` completed."""
    jobs = [(k, sd) for sd in s.seeds for k in METHODS if (k, sd) not in trained]
    for kind, sd in tqdm(jobs, desc="fine-tuning", disable=not progress):
        trained[(kind, sd)] = train(kind, chosen[kind], sd,
                                    split_fit(len(inp.y_fit), sd, s.val_frac)[0])
    return trained


def evaluate_head(inp: Inputs, W: np.ndarray, b: np.ndarray) -> tuple[dict, dict]:
    """Per-image correctness of a head (clean and every corruption) and the 16-category numbers
    (shape bias and accuracies on the cue-conflict, edge and silhouette sets)."""
    res = {"clean": rob.correct(inp.H_eval, inp.y_eval, W, b)}
    res.update({c: rob.correct(ls.features[:, 0], ls.labels, W, b) for c, ls in inp.corr.items()})
    cc = inp.cue["cue-conflict"]
    d = rob.decisions16(cc.features[:, 0].astype(np.float64) @ W.T + b, inp.cat_idx)
    sb = rob.shape_bias(d, *rob.cue_conflict_labels(cc.image_ids, inp.cat_names))
    extra = {"shape bias": sb["shape_bias"], "cue-conflict shape acc": sb["shape_acc"],
             "cue-conflict texture acc": sb["texture_acc"]}
    for nm in ("edges", "silhouettes"):
        ls = inp.cue[nm]
        lab = np.array([inp.cat_names.index(i.split("/")[0]) for i in ls.image_ids])
        d = rob.decisions16(ls.features[:, 0].astype(np.float64) @ W.T + b, inp.cat_idx)
        extra[f"{nm} acc (16-way)"] = float((d == lab).mean())
    return res, extra


def evaluate_all(inp: Inputs, trained: Mapping) -> tuple[dict, object]:
    """Every trained head and the pretrained head (key ``("pretrained", -1)``) evaluated:
    per-image correctness by head, and a frame with one row per head (means, the corruption
    mean and the 16-category numbers)."""
    per_image, rows = {}, []
    for (kind, sd), (W, b) in [*trained.items(), (("pretrained", -1), (inp.W0, inp.b0))]:
        res, extra = evaluate_head(inp, W, b)
        per_image[(kind, sd)] = res
        rows.append({"method": kind, "seed": sd, **{k: float(v.mean()) for k, v in res.items()},
                     **extra})
    summ = pd.DataFrame(rows)
    summ["corruption mean"] = summ[inp.corr_names].mean(axis=1)
    return per_image, summ


def long_frames(summ, corr_names: Sequence[str]):
    """For the figures: accuracy by severity (clean = 0; mean over corruption types) per head
    and seed, and each head's difference to plain fine-tuning per corruption type."""
    long = []
    for _, r in summ.iterrows():
        long += [{"method": LABEL[r["method"]], "seed": r["seed"], "corruption": kind,
                  "severity": sev, "top-1": r[c]}
                 for c in corr_names for kind, sev in [corruptions.parse_corruption(c)]]
        long.append({"method": LABEL[r["method"]], "seed": r["seed"], "corruption": "clean",
                     "severity": 0, "top-1": r["clean"]})
    long = pd.DataFrame(long)
    keys = ["method", "seed", "severity"]
    avg = pd.concat([long[long.corruption == "clean"][keys + ["top-1"]],
                     long[long.corruption != "clean"].groupby(keys, as_index=False)["top-1"]
                     .mean()])
    ref = long[long.method == LABEL["none"]].groupby(["corruption", "severity"])["top-1"].mean()
    delta = (long.groupby(["method", "corruption", "severity"])["top-1"].mean() - ref)
    delta = delta.reset_index()
    delta = delta[(delta.method != LABEL["none"]) & (delta.corruption != "clean")]
    return avg, delta


def _per_image(per_image: Mapping, kind: str, keys: Sequence[str]) -> np.ndarray:
    """Per eval image: correctness averaged over ``keys`` and over the head's seeds."""
    runs = [v for (k, _), v in per_image.items() if k == kind]
    if not runs:
        raise KeyError(f"no evaluated head {kind!r}; have {sorted({k for k, _ in per_image})}")
    return np.mean([np.mean([r[c] for c in keys], 0) for r in runs], 0)


def paired_gain(per_image: Mapping, a: str, b: str, keys: Sequence[str], n_boot: int = 2000,
                seed: int = 0) -> tuple[float, tuple[float, float]]:
    """Mean paired difference ``a - b`` over eval images (correctness averaged over ``keys``
    and seeds) and its 95% bootstrap interval over images."""
    return bootstrap.mean_ci(_per_image(per_image, a, keys) - _per_image(per_image, b, keys),
                             n_boot, seed)


def strongest_baseline(per_image: Mapping, corr_names: Sequence[str]) -> str:
    """The baseline (:data:`BASELINES`) with the highest mean corruption top-1."""
    return max(BASELINES, key=lambda k: float(_per_image(per_image, k, corr_names).mean()))


def gains(per_image: Mapping, corr_names: Sequence[str], strongest: str,
          n_boot: int = 2000) -> dict:
    """Per fine-tuned regularizer (L2-SP included, for the tables): paired corruption gains
    against cross-entropy, the strongest baseline and L2-SP, and the clean differences against
    cross-entropy and the strongest baseline, each ``(point, (lo, hi))``."""
    return {kind: {"vs_ce": paired_gain(per_image, kind, "none", corr_names, n_boot),
                   "vs_strongest": paired_gain(per_image, kind, strongest, corr_names, n_boot),
                   "vs_generic": paired_gain(per_image, kind, "l2sp", corr_names, n_boot),
                   "clean_vs_ce": paired_gain(per_image, kind, "none", ["clean"], n_boot),
                   "clean_vs_strongest": paired_gain(per_image, kind, strongest, ["clean"],
                                                     n_boot)}
            for kind in (*DEPENDENCY, "l2sp")}


def c6c_record(s: Settings, g: Mapping[str, dict], strongest: str
               ) -> tuple[Verdict, str, list[dict]]:
    """C6c's verdict over the dependency regularizers, the deciding regularizer, and the
    deviation with the old rule's outcome (against cross-entropy and L2-SP) on the same gains."""
    dep = {k: v for k, v in g.items() if k in DEPENDENCY}
    v, best = rules.c6c_robustness(dep, LABEL[strongest], s.c6c_rule)
    old = deviations.old_c6c_vs_generic(dep, s.c6c_rule)
    old2 = deviations.old_c6c_partly_vs_ce(dep, s.c6c_rule)
    return v, best, [deviations.record("C6c", "strongest baseline", old.level, v.level),
                     deviations.record("C6c", "strongest baseline decides partly",
                                       old2.level, v.level)]


def gains_table(g: Mapping[str, dict], strongest: str):
    """One row per regularizer: its paired gains (percentage points with 95% intervals)
    against cross-entropy, L2-SP and the strongest baseline, and the clean difference."""
    cols = (("vs_strongest", f"vs strongest ({LABEL[strongest]})"),
            ("clean_vs_strongest", "clean vs strongest"), ("vs_ce", "vs cross-entropy"),
            ("vs_generic", "vs L2-SP"))
    return pd.DataFrame([{"regularizer": LABEL[k], **{lab: fmt_ci(*v[key], 1, 4)
                                                      for key, lab in cols}}
                         for k, v in g.items()])


def summary_table(summ, cols: Sequence[str]):
    """Per head (rows) and measure (columns): the mean over seeds and its standard deviation as
    ``mean ± sd`` (4 decimals; the mean alone for a head with one run)."""
    g = summ.groupby("method")[list(cols)]
    mean, sd = g.mean(), g.std()
    return mean.apply(lambda col: [f"{x:.4f} ± {y:.4f}" if np.isfinite(y) else f"{x:.4f}"
                                   for x, y in zip(col, sd[col.name], strict=True)]
                      ).set_axis(mean.index)


def summary(s: Settings, summ, g: Mapping[str, dict], best: str, strongest: str) -> str:
    """C6c's one-paragraph summary: the deciding gain against the strongest baseline and every
    head's mean corruption top-1."""
    means = summ.groupby("method")["corruption mean"].mean()
    d, ci = g[best]["vs_strongest"] if best else (float("nan"), (float("nan"),) * 2)
    return (f"best dependency regularizer ({LABEL.get(best, 'none')}) changes corruption top-1 "
            f"by {d:+.4f} (95% CI {ci[0]:+.4f}..{ci[1]:+.4f}) against the strongest "
            f"baseline, {LABEL[strongest]} ({means[strongest]:.3f}); plain fine-tuning "
            f"{means['none']:.3f}, L2-SP {means['l2sp']:.3f}, pretrained head "
            f"{means['pretrained']:.3f} corruption top-1 on {short_name(s.model)}")


def numbers(s: Settings, inp: Inputs, summ, g: Mapping[str, dict], strongest: str):
    """The results file's numbers: per head the corruption and clean top-1 and the shape bias
    (mean over seeds, with the per-seed values), and per regularizer its paired gains."""
    nums, by = Numbers(), summ.groupby("method")
    what = {"corruption mean": ("corruption_top1", f"top-1 averaged over "
                                f"{len(inp.corr_names)} corruptions x severities, "
                                f"{len(inp.y_eval)} eval images, mean over seeds"),
            "clean": ("clean_top1", "clean top-1 on the eval subset"),
            "shape bias": ("shape_bias", "shape bias on cue-conflict")}
    for kind in ("pretrained", *METHODS):
        for col, (key, text) in what.items():
            x = by.get_group(kind)[col]
            nums.add(f"{key}_{kind}", float(x.mean()), f"{LABEL[kind]}: {text} (std over "
                     f"seeds {x.std(ddof=0):.4f})",
                     seeds=None if kind == "pretrained" else x.tolist())
    for kind, gk in g.items():
        for key, text in (("vs_ce", "cross-entropy only"),
                          ("vs_strongest", f"the strongest baseline ({LABEL[strongest]})")):
            nums.add(f"corruption_gain_{kind}_{key}", gk[key][0], f"{LABEL[kind]} minus "
                     f"{text}: corruption top-1 (paired, 95% bootstrap CI over eval images)",
                     ci=gk[key][1], unit="fraction",
                     short=f"corruption top-1, {LABEL[kind]} minus "
                     + ("cross-entropy" if key == "vs_ce" else LABEL[strongest]))
        nums.add(f"clean_gain_{kind}_vs_strongest", gk["clean_vs_strongest"][0],
                 f"{LABEL[kind]} minus the strongest baseline ({LABEL[strongest]}): clean "
                 "top-1 (paired, 95% bootstrap CI over eval images)",
                 ci=gk["clean_vs_strongest"][1], unit="fraction",
                 short=f"clean top-1, {LABEL[kind]} minus {LABEL[strongest]}")
    return nums


def claim_keys(best_kind: str, g: Mapping[str, dict]) -> dict:
    """C6c's headline (the deciding regularizer's corruption gain over the strongest
    baseline), the second half (its clean cost against that baseline) and every number the rule
    reads, as :func:`~neudep_utils.record.claim` takes them."""
    reads = [f"{stem}_{kind}_vs_strongest" for kind in g if kind in DEPENDENCY
             for stem in ("corruption_gain", "clean_gain")]
    best = best_kind or next(k for k in g if k in DEPENDENCY)
    return {"headline": f"corruption_gain_{best}_vs_strongest", "reference": None,
            "second": f"clean_gain_{best}_vs_strongest", "reads": reads}
