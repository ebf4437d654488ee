"""Notebook 03 (C3, C4, C5), sparsity versus covariance redundancy: settings, the path study of
every model, the null control of C4, the category-subset experiment, the d < n contrast, the
verdicts with their deviations and the results' numbers.

The numerical pieces (spectra, residual identities, paths judged out of sample, subsets,
bootstrap supports) live in :mod:`.redundancy`; this module strings them together the way the
notebook reads, so the notebook holds no logic of its own. Tested in
``tests/test_findings_sparsity.py``.

**The C4 null.** "Redundancy predicts the support a dependency needs" partly follows from the
mechanics: a target's in-sample residual ``r_i / C_ii`` is a floor of its held-out ``1 - R^2``, so
the two correlate in any covariance. The null rotates the real fit and eval rows by one
Haar-random orthogonal matrix (:func:`rotated_null_rows`): the fit covariance keeps its exact
spectrum and the rows their non-Gaussian distribution, while the eigenvectors, and with them
which category is redundant, become random; the same path study runs on them
(:func:`null_prediction`). C4 asks for the real correlation *minus* the null's, with a bootstrap
interval over targets (:func:`beyond_null`). Until 2026-12-05 the null drew Gaussian rows from
the sample spectrum (:func:`null_rows`), which looked about twice as redundant as the data (a
referee's lite0 in-sample residual 0.0053 against 0.0107); it is still computed for the
deviation's old outcome.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.linear_model import Lasso

from .. import cache, covlasso, dependencies, profiles
from ..cache import LogitData
from ..dependencies import Fold
from ..metrics import bootstrap
from ..metrics.bootstrap import bootstrap_counts
from ..record import Numbers, claim
from ..verdicts import Verdict, across_models, deviations, rules
from . import redundancy as red

__all__ = ["PARAMETERS", "Results", "Settings", "claims", "numbers", "verdicts", "beyond_null", "bootstrap_study", "c4_record",
           "c5_record", "dense_contrast", "fold_rows", "lasso_agreement", "load",
           "null_prediction", "null_rows", "path_table", "predictions", "rotated_null_rows",
           "seed_runs", "acc_at_support", "haar_rotation",
           "settings", "spectra_table", "subset_study"]

#: Notebook 03's settings: one declaration per parameter
#: (:class:`~neudep_utils.profiles.RedundancySettings`).
Settings = profiles.RedundancySettings
#: Notebook 03's parameters besides ``profile`` and ``output_dir`` (its ``parameters`` cell).
PARAMETERS = tuple(n for n in Settings.names() if n != "profile")


def settings(profile: str = "default", **params) -> Settings:
    """Notebook 03's settings: the profile's, with the notebook's ``params`` applied (``None``
    keeps the profile's value; unknown names and wrong types raise
    :class:`~neudep_utils._params.ParameterError`)."""
    return profiles.get_profile(profile).redundancy.with_params(**params)


def load(s: Settings) -> tuple[dict[str, LogitData], dict[str, Fold]]:
    """Cached logits of every model and fold 0 of the study's 2-fold split (centred)."""
    data = {m: cache.load_logits(m, s.folders, s.fit_views) for m in s.models}
    fold = {m: dependencies.crossfit(d, 2, s.split_seed, center=True)[0] for m, d in data.items()}
    return data, fold


def fold_rows(logits: np.ndarray, idx: np.ndarray, all_views: bool = True) -> np.ndarray:
    """Rows of an (images, views, columns) array: every view of the images ``idx`` (fit rows) or
    their centre views only (eval rows)."""
    return logits[idx].reshape(-1, logits.shape[-1]) if all_views else logits[idx, 0]


def spectra_table(s: Settings, fold: Mapping[str, Fold]):
    """Per model: the spectrum of the centred fit covariance, whether it is full rank, and a
    table of its ranks (numerical, entropy, participation, 99% variance) and lambda_min."""
    spectra = {m: red.spectrum(f.S) for m, f in fold.items()}
    n = next(iter(spectra.values())).size
    full = {m: red.numerical_rank(e, 1e-10) == n for m, e in spectra.items()}
    df = pd.DataFrame([{"model": s.short[m], "fit rows N": fold[m].n_fit_rows,
                        "numerical rank": red.numerical_rank(e, 1e-10),
                        "effective rank (entropy)": red.effective_rank(e),
                        "participation ratio": red.effective_rank(e, "participation"),
                        "99% variance rank": red.variance_rank(e, 0.99),
                        "lambda_min / mean eigenvalue": e[-1] / e.mean()}
                       for m, e in spectra.items()]).set_index("model")
    return spectra, full, df


def identity_check(fold0: Fold, targets: Sequence[int], full_rank: bool) -> float:
    """Largest relative difference between the residual identity ``1 / (C^-1)_ii`` and a direct
    Schur-complement solve on ``targets`` (NaN when the covariance is singular)."""
    t = np.asarray(targets)
    r_schur = red.residual_schur(fold0.S, t)
    if not full_rank:
        return float("nan")
    return float(np.max(np.abs(red.residual_inverse(fold0.S)[t] - r_schur) / r_schur))


def path_table(s: Settings, ps: Mapping[str, red.PathStudy]):
    """One row per model: the path's largest relative gap, the share of targets reaching the
    fidelity threshold and the median k there, the in-sample residual, C5's functional k and the
    unmodified accuracy."""
    th = s.fidelity_threshold
    reached = {m: np.isfinite(p.k_needed) for m, p in ps.items()}
    return pd.DataFrame([{
        "model": s.short[m], "max relative gap": f"{np.nanmax(p.gap):.1e}",
        f"share reaching 1-R² <= {th}": f"{100 * reached[m].mean():.1f}%",
        "median k there": (f"{np.median(p.k_needed[reached[m]]):.0f}" if reached[m].any()
                           else "none reached"),
        "median 1-R², all others (in sample)": f"{np.median(p.r_in):.3f}",
        "k where accuracy is kept (median)": (f"{p.k_functional:.0f}"
                                              if np.isfinite(p.k_functional)
                                              else "not on the path"),
        "unmodified acc. (%)": f"{100 * p.acc_base:.1f}"} for m, p in ps.items()]
    ).set_index("model")


def lasso_agreement(data0: LogitData, fold0: Fold, target: int, ratio: float = 0.2) -> dict:
    """C3's check: the CovLasso from the covariance alone against scikit-learn's Lasso on the
    centred fit rows (``alpha = lam / 2``), one target at ``ratio * lam_max``. Returns the largest
    coefficient difference over the largest coefficient and both support sizes."""
    Xc = fold_rows(data0.logits, fold0.fit_idx) - fold0.mu
    lam = ratio * covlasso.lam_max(fold0.S, [target])[0]
    ours = covlasso.solve(fold0.S, lam, [target], tol=1e-10).coef[0]
    sk = Lasso(alpha=lam / 2, fit_intercept=False, tol=1e-10, max_iter=100_000).fit(
        np.delete(Xc, target, 1), Xc[:, target]).coef_
    sk = np.insert(sk, target, 0.0)
    return {"agreement": float(np.abs(ours - sk).max() / np.abs(ours).max()),
            "k_ours": int(np.count_nonzero(ours)),
            "k_sklearn": int(np.count_nonzero(np.abs(sk) > 1e-12))}


# --------------------------------------------------------------------------------------------
# C4: redundancy against the support needed, beyond the null
# --------------------------------------------------------------------------------------------


def null_rows(eigs: np.ndarray, n_rows: int, seed: int) -> np.ndarray:
    """Gaussian rows (n_rows, n) whose covariance has the spectrum ``eigs`` and Haar-random
    eigenvectors (QR of a Gaussian matrix with the sign fix of Mezzadri 2007)."""
    e = np.clip(np.asarray(eigs, dtype=np.float64), 0.0, None)
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((e.size, e.size)))
    q *= np.sign(np.diag(r))
    return (rng.standard_normal((n_rows, e.size)) * np.sqrt(e)) @ q.T


def haar_rotation(n: int, seed: int) -> np.ndarray:
    """A Haar-random orthogonal (n, n) matrix (QR of a Gaussian matrix, Mezzadri's sign fix)."""
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def rotated_null_rows(X_fit: np.ndarray, X_eval: np.ndarray, seed: int
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The real fit and eval rows, centred on the fit mean and rotated by one Haar-random
    orthogonal matrix: the fit covariance's spectrum is kept exactly, and so is every row's
    norm; which direction (category) carries the redundancy becomes random."""
    mu = X_fit.mean(axis=0)
    Q = haar_rotation(X_fit.shape[1], seed)
    return (X_fit - mu) @ Q, (X_eval - mu) @ Q


def null_prediction(eigs: np.ndarray | None, n_fit: int, n_eval: int,
                    lam_ratios: Sequence[float], threshold: float, seed: int,
                    rows: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """The path study of C4 on null data: the real rows rotated (``rows`` = the fold's fit and
    eval rows, :func:`rotated_null_rows`), or, without ``rows``, Gaussian rows with the
    spectrum ``eigs`` (:func:`null_rows`, the null used until 2026-12-05), ``n_fit`` fit and
    ``n_eval`` eval rows. Returns the null's in-sample relative residuals ``r_in`` and supports
    needed ``k_needed`` (NaN: never), every target."""
    if rows is not None:
        Xf, Xe = rotated_null_rows(rows[0], rows[1], seed)
    else:
        X = null_rows(eigs, n_fit + n_eval, seed)
        Xf, Xe = X[:n_fit], X[n_fit:]
    mu = Xf.mean(axis=0)
    C = np.cov(Xf, rowvar=False, bias=True)
    t = np.arange(C.shape[0])
    lp = red.lasso_path_fidelity(C, mu, Xe, t, lam_ratios)
    r_in = red.residual_inverse(C) / np.diag(C)  # full rank: more rows than classes
    return {"r_in": r_in, "k_needed": red.k_at_fidelity(lp["k"], lp["rr"], threshold)}


def _rank_rho(W: np.ndarray, ra: np.ndarray, rb: np.ndarray) -> np.ndarray:
    """Weighted Spearman correlation of two rank vectors under each row of weights ``W``."""
    sw = W.sum(1, keepdims=True)
    ma, mb = (W @ ra)[:, None] / sw, (W @ rb)[:, None] / sw
    cov = (W * (ra - ma) * (rb - mb)).sum(1)
    va, vb = (W * (ra - ma) ** 2).sum(1), (W * (rb - mb) ** 2).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = cov / np.sqrt(va * vb)
    return rho


def _rho_replicates(r: np.ndarray, k: np.ndarray, n_boot: int, seed: int
                    ) -> tuple[float, np.ndarray]:
    """Spearman rho of redundancy and support needed (never reached: ranked last), and its
    bootstrap replicates over targets. No variation in either: rho = 0 (nothing to predict)."""
    r = np.asarray(r, float)
    k = np.where(np.isfinite(np.asarray(k, float)), k, np.inf)
    ok = np.isfinite(r)
    r, k = r[ok], k[ok]
    if r.size < 3:
        return float("nan"), np.full(max(n_boot, 0), np.nan)
    ra, rb = rankdata(r), rankdata(k)
    if np.ptp(ra) == 0 or np.ptp(rb) == 0:
        return 0.0, np.zeros(max(n_boot, 0))
    point = float(_rank_rho(np.ones((1, r.size)), ra, rb)[0])
    reps = [np.nan_to_num(_rank_rho(W, ra, rb), nan=0.0)
            for W in bootstrap_counts(r.size, n_boot, seed)] if n_boot > 0 else []
    return point, (np.concatenate(reps) if reps else np.zeros(0))


def beyond_null(r_in: np.ndarray, k_needed: np.ndarray, r_null: np.ndarray,
                k_null: np.ndarray, n_boot: int = 1000, seed: int = 0) -> dict:
    """How much better redundancy predicts the support needed than under the null.

    Parameters
    ----------
    r_in, k_needed : array (T,)
        The real model's in-sample relative residuals and supports needed (NaN: never).
    r_null, k_null : array (T,)
        The same under the null (:func:`null_prediction`).
    n_boot, seed : int
        Bootstrap replicates (targets resampled, independently for the real and the null
        targets) and their seed.

    Returns
    -------
    dict
        ``rho`` (real), ``rho_null``, ``diff`` (real minus null) and ``ci`` (95% interval of the
        difference), ``n_reached`` and ``n_reached_null``.
    """
    rho, reps = _rho_replicates(r_in, k_needed, n_boot, seed)
    rho0, reps0 = _rho_replicates(r_null, k_null, n_boot, seed + 1)
    d = reps - reps0
    ci = ((float(np.quantile(d, 0.025)), float(np.quantile(d, 0.975)))
          if d.size and np.isfinite(d).all() else (float("nan"), float("nan")))
    return {"rho": rho, "rho_null": rho0, "diff": rho - rho0, "ci": ci,
            "n_reached": int(np.isfinite(np.asarray(k_needed, float)).sum()),
            "n_reached_null": int(np.isfinite(np.asarray(k_null, float)).sum())}


def predictions(s: Settings, ps: Mapping[str, red.PathStudy], spectra: Mapping[str, np.ndarray],
                full_rank: Mapping[str, bool], fold: Mapping[str, Fold],
                data: Mapping[str, LogitData]) -> dict[str, dict]:
    """C4's test per model: :func:`beyond_null` against the model's own null (its real fit and
    eval rows rotated, :func:`null_prediction`), the same against the Gaussian null the old
    rule used (``ci_gaussian``), and the plain correlation interval of the older rule
    (``ci_plain``). Singular covariances: NaN (n/a)."""
    out = {}
    for m, p in ps.items():
        if not full_rank[m]:
            nan2 = (float("nan"), float("nan"))
            out[m] = {"rho": float("nan"), "rho_null": float("nan"), "diff": float("nan"),
                      "ci": nan2, "ci_plain": nan2, "ci_gaussian": nan2,
                      "n_reached": int(np.isfinite(p.k_needed).sum()), "n_reached_null": 0}
            continue
        rows = (fold_rows(data[m].logits, fold[m].fit_idx).astype(np.float64),
                data[m].centre_view(fold[m].eval_idx).astype(np.float64))
        null = null_prediction(None, fold[m].n_fit_rows, len(fold[m].eval_idx), s.lam_ratios,
                               s.fidelity_threshold, s.null_seed, rows=rows)
        gauss = null_prediction(spectra[m], fold[m].n_fit_rows, len(fold[m].eval_idx),
                                s.lam_ratios, s.fidelity_threshold, s.null_seed)
        res = beyond_null(p.r_in, p.k_needed, null["r_in"], null["k_needed"], s.n_boot, 0)
        res["ci_gaussian"] = beyond_null(p.r_in, p.k_needed, gauss["r_in"], gauss["k_needed"],
                                         s.n_boot, 0)["ci"]
        res["ci_plain"] = red.redundancy_predicts_support(p.r_in, p.k_needed, s.n_boot, 0)["ci"]
        res["null"], res["null_r_in_median"] = null, float(np.median(null["r_in"]))
        res["gaussian_r_in_median"] = float(np.median(gauss["r_in"]))
        res["r_in_median"] = float(np.median(p.r_in))
        out[m] = res
    return out


def subset_study(s: Settings, data0: LogitData, fold0: Fold) -> dict:
    """The category-subset experiment on the first model (every category a target once per
    size and seed): its frame, the median paired held-out gain from the smallest to the largest
    K with its interval, and whether interlacing (an identity) holds."""
    X_fit = fold_rows(data0.logits, fold0.fit_idx)
    X_eval = fold_rows(data0.logits, fold0.eval_idx, all_views=False)
    sub = red.subset_experiment(X_fit, X_eval, s.subset_sizes, s.subset_seeds, s.lam_ratios,
                                s.fidelity_threshold).frame()
    sub["reached"] = np.isfinite(sub["k_fid"])
    kmin, kmax = min(s.subset_sizes), max(s.subset_sizes)
    per_target = sub.groupby(["K", "target"])["rr_best"].mean().unstack(0)
    gain, ci = bootstrap.median_ci((per_target[kmin] - per_target[kmax]).to_numpy(),
                                   s.n_boot, 0)
    small = sub[sub.K == kmin].set_index(["seed", "target"])["r_in"]
    big = sub[sub.K == kmax].set_index(["seed", "target"])["r_in"]
    inter = bool(np.all(big.loc[small.index].to_numpy()
                        <= small.to_numpy() * (1 + 1e-9) + 1e-12))
    return {"frame": sub, "gain": float(gain), "ci": ci, "interlacing": inter,
            "k_small": kmin, "k_full": kmax}


def bootstrap_study(s: Settings, data0: LogitData, fold0: Fold) -> dict:
    """Support stability of ten targets of the first model (macaw first, nine seeded others)
    under bootstrap resampling of the fit images (:func:`.redundancy.bootstrap_supports`)."""
    n = data0.n_classes
    targets = np.concatenate([[s.macaw], np.random.default_rng(s.split_seed).choice(
        np.setdiff1d(np.arange(n), [s.macaw]), 9, replace=False)])
    bs = red.bootstrap_supports(data0.logits[fold0.fit_idx], targets, s.boot_lam_ratio,
                                s.n_boot_supports, seed=s.split_seed)
    bs["targets"] = targets
    bs["jaccard_median"] = float(np.median(bs["jaccard"]))
    return bs


def dense_contrast(s: Settings, data: Mapping[str, LogitData], fold: Mapping[str, Fold],
                   ranks: Mapping[str, int], targets: Sequence[int] = (0, 400, 800),
                   seed: int = 1):
    """Held-out 1 - R^2 of least squares on ``m`` random partners for every model (three
    targets), and per d < n model the median with more than rank-many partners (exact, dense).
    Returns the frame and that dict."""
    n = next(iter(data.values())).n_classes
    ms = sorted({16, 64, 256, 512, 700, 760, 780, 900, n - 1} & set(range(1, n)))
    rng = np.random.default_rng(seed)
    rows = []
    for m in s.models:
        Fe = data[m].centre_view(fold[m].eval_idx).astype(float)
        for t in targets:
            for mm in ms:
                part = rng.choice(np.setdiff1d(np.arange(n), [t]), mm, replace=False)
                dep = dependencies.least_squares_on_support(fold[m], np.array([t]), part[None])
                err = Fe[:, t] - dep.predict(Fe)[:, 0]
                rows.append({"model": f"{s.short[m]} (rank {ranks[m]})", "short": s.short[m],
                             "m": mm, "rr": float((err ** 2).mean() / Fe[:, t].var())})
    dense = pd.DataFrame(rows)
    exact = {m: float(dense[(dense.short == s.short[m]) & (dense.m >= ranks[m] + 5)]["rr"]
                      .median())
             for m in s.models if ranks[m] < n and ranks[m] + 5 <= max(ms)}
    return dense, exact


def seed_runs(s: Settings, data0: LogitData, p0: red.PathStudy):
    """The first model's path study under every split seed: rho (against the support needed),
    C5's functional k and the share reaching the fidelity, one row per seed."""
    rows = []
    for seed in s.split_seeds:
        p = p0 if seed == s.split_seed else red.path_study(
            data0, dependencies.crossfit(data0, 2, seed, center=True)[0], s.lam_ratios,
            s.fidelity_threshold, n_boot=s.n_boot)
        r = red.redundancy_predicts_support(p.r_in, p.k_needed, 200, 0)
        rows.append({"seed": seed, "rho": r["rho"], "k_functional": p.k_functional,
                     "share reaching": float(np.isfinite(p.k_needed).mean())})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# verdicts
# --------------------------------------------------------------------------------------------


def c4_record(s: Settings, pred: Mapping[str, dict], sub: dict) -> tuple[Verdict, list[dict]]:
    """C4's verdict (:func:`~neudep_utils.verdicts.rules.c4_redundancy`, thresholds from the
    subset sizes and the fidelity threshold) and its deviations, each with the old rule's
    outcome on the same numbers."""
    rule = replace(s.c4_rule, k_small=sub["k_small"], k_full=sub["k_full"])
    v = rules.c4_redundancy({s.short[m]: r["ci"] for m, r in pred.items()}, sub["ci"], rule)
    old1 = deviations.old_c4_interlacing(sub["interlacing"], sub["ci"])
    old2 = deviations.old_c4_without_null({s.short[m]: r["ci_plain"] for m, r in pred.items()},
                                          sub["ci"])
    old3 = rules.c4_redundancy({s.short[m]: r["ci_gaussian"] for m, r in pred.items()},
                               sub["ci"], rule)
    return v, [deviations.record("C4", "redundancy as a predictor", old1.level, v.level),
               deviations.record("C4", "null control", old2.level, v.level),
               deviations.record("C4", "null from the real rows", old3.level, v.level)]


def c5_record(s: Settings, ps: Mapping[str, red.PathStudy]) -> tuple[Verdict, list[dict], dict]:
    """C5's verdict across models (the functional reading decides), its deviation (the old
    fidelity rule on the same paths) and the correlational reading per model."""
    rule = s.c5_rule
    v = across_models({s.short[m]: rules.c5_sparsity(p.k_functional, rule)
                       for m, p in ps.items()})
    corr, old, mid = {}, {}, {}
    for m, p in ps.items():
        frac = float(np.isfinite(p.k_needed).mean())
        med = float(np.nanmedian(p.k_needed)) if np.isfinite(p.k_needed).any() else float("nan")
        corr[s.short[m]] = rules.c5_correlational(frac, med, rule)
        old[s.short[m]] = deviations.old_c5_fidelity(frac, med)
        mid[s.short[m]] = deviations.old_c5_functional_or_fidelity(p.k_functional, frac, med,
                                                                   rule)
    old_v, mid_v = across_models(old), across_models(mid)
    return v, [deviations.record("C5", "functional criterion", old_v.level, v.level),
               deviations.record("C5", "fidelity route to partly", mid_v.level, v.level)], corr


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------


@dataclass
class Results:
    """Everything notebook 03 measured, for :func:`numbers` and :func:`claims`."""

    ps: dict
    pred: dict
    spec_df: object
    full_rank: dict
    ranks: dict
    seeds_tab: object
    exact_rr: dict
    max_gap: float
    agree: dict
    sub: dict
    bs: dict


def acc_at_support(k_median: np.ndarray, acc: np.ndarray, k: float) -> float:
    """The path's pooled accuracy at a median support of ``k``, linearly interpolated between
    path points ordered by support (whatever the order of the lam grid); clamped to the first
    or last point outside the path's range."""
    k_median, acc = np.asarray(k_median, float), np.asarray(acc, float)
    order = np.argsort(k_median, kind="stable")
    return float(np.interp(k, k_median[order], acc[order]))


def numbers(s: Settings, r: Results):
    """The results file's numbers (:class:`~neudep_utils.record.Numbers`), each with
    its definition."""
    nums, m0 = Numbers(), s.models[0]
    th = s.fidelity_threshold
    for m in s.models:
        sm, p = s.short[m], r.ps[m]
        n = p.targets.size
        per_seed = m == m0  # the split-seed reruns are of the first model only
        nums.add(f"{sm}_numerical_rank", r.spec_df.loc[sm, "numerical rank"],
                 f"{m}: eigenvalues of the centred logit covariance above 1e-10 lambda_max")
        nums.add(f"{sm}_effective_rank_entropy", r.spec_df.loc[sm, "effective rank (entropy)"],
                 f"{m}: exp(entropy) effective rank of the centred logit covariance (fit rows)")
        nums.add(f"{sm}_median_rr_all_others_in_sample", float(np.median(p.r_in)),
                 f"{m}: median in-sample 1-R^2 of f_i on all others (minimum-norm least "
                 "squares)", ci=bootstrap.median_ci(p.r_in, s.n_boot, 0)[1])
        if r.full_rank[m]:
            pr = r.pred[m]
            nums.add(f"{sm}_redundancy_rho", pr["rho"], f"{m}: Spearman correlation over the "
                     f"{n} categories of r_i / C_ii and the support reaching held-out "
                     f"1-R^2 <= {th}; 95% bootstrap CI over categories", ci=pr["ci_plain"],
                     seeds=r.seeds_tab["rho"].tolist() if per_seed else None)
            nums.add(f"{sm}_redundancy_rho_null", pr["rho_null"], f"{m}: the same under the "
                     "null (the real rows rotated by a Haar-random orthogonal matrix: same "
                     "spectrum and rows, random eigenvectors)")
            nums.add(f"{sm}_null_median_rr_in_sample", pr["null_r_in_median"],
                     f"{m}: median in-sample 1-R^2 of f_i on all others under that null (the "
                     "real data's: median_rr_all_others_in_sample)")
            nums.add(f"{sm}_gaussian_null_median_rr_in_sample", pr["gaussian_r_in_median"],
                     f"{m}: the same under the Gaussian-rows null used until 2026-12-05")
            nums.add(f"{sm}_redundancy_rho_beyond_null", pr["diff"], f"{m}: rho minus the "
                     "null's rho; 95% bootstrap CI (targets resampled)", ci=pr["ci"],
                     short=f"{sm}: rank correlation of redundancy and support needed, "
                     "beyond its null")
        nums.add(f"{sm}_frac_reaching_threshold", float(np.isfinite(p.k_needed).mean()),
                 f"{m}: share of the {n} categories whose CovLasso path reaches held-out "
                 f"1-R^2 <= {th}",
                 seeds=r.seeds_tab["share reaching"].tolist() if per_seed else None)
        if np.isfinite(p.k_functional):
            nums.add(f"{sm}_k_functional", p.k_functional, f"{m}: smallest median support "
                     "at which pooled held-out target-class accuracy after replacement is "
                     "within 5 points of the unmodified model (upper end of its 95% interval)")
        nums.add(f"{sm}_acc_replaced_at_k{s.sparse_k}",
                 acc_at_support(p.k_median, p.acc_replaced, s.sparse_k), f"{m}: pooled held-out "
                 f"target-class accuracy after replacement at a median support of {s.sparse_k} "
                 f"(interpolated along the path; unmodified {p.acc_base:.3f})", unit="fraction",
                 short=f"accuracy kept at a median support of {s.sparse_k}")
    for m, v in r.exact_rr.items():
        nums.add(f"{s.short[m]}_exact_dense_rr", v, f"{m}: median held-out 1-R^2 with more "
                 f"than rank-many ({r.ranks[m]}) random partners (an exact, dense dependency)")
    nums.add("cov_lasso_max_rel_gap", r.max_gap, "max relative duality gap over every path")
    nums.add("cov_lasso_vs_sklearn", r.agree["agreement"], "max relative coefficient "
             "difference, CovLasso vs sklearn Lasso on the rows (macaw, lam = 0.2 lam_max)",
             short="CovLasso vs the Lasso on the rows, largest relative difference")
    nums.add("oos_gain_K_small_to_full", r.sub["gain"], f"{m0}: median over the categories "
             f"of the oracle held-out 1-R^2 at K={r.sub['k_small']} minus at "
             f"K={r.sub['k_full']} (mean over subset seeds); 95% bootstrap CI over categories",
             ci=r.sub["ci"], short=f"fall of held-out 1-R² from K = {r.sub['k_small']} to "
             f"{r.sub['k_full']} categories")
    nums.add("bootstrap_jaccard_median", r.bs["jaccard_median"], "median Jaccard of bootstrap "
             f"supports vs the full-sample support at lam = {s.boot_lam_ratio} lam_max")
    return nums


def verdicts(s: Settings, r: Results) -> dict[str, tuple[Verdict, str, list[dict], dict]]:
    """C3, C4 and C5: per claim the verdict, its one-paragraph summary, its deviations and the
    extra fields of its record (readings, baseline, scope)."""
    v3 = rules.c3_covlasso(r.max_gap, r.agree["agreement"])
    v4, dev4 = c4_record(s, r.pred, r.sub)
    v5, dev5, corr5 = c5_record(s, r.ps)
    sub, sh = r.sub, s.short
    scope = ", ".join(f"{sh[m]} (rank {r.ranks[m]})" for m in s.models)
    c4 = ", ".join(f"{sh[m]} {p['diff']:+.2f} [{p['ci'][0]:+.2f}, {p['ci'][1]:+.2f}]"
                   if r.full_rank[m] else f"{sh[m]} n/a (singular)" for m, p in r.pred.items())
    c5 = ", ".join(f"{sh[m]} {p.k_functional:.0f}" if np.isfinite(p.k_functional)
                   else f"{sh[m]} never on the path" for m, p in r.ps.items())
    corr = ", ".join(f"{k} {c['median_k']:.0f}" for k, c in corr5.items())
    na = ", ".join(sh[m] for m in s.models if not r.full_rank[m]) or "none"
    return {
        "C3": (v3, f"CovLasso from the covariance alone equals the Lasso on the rows "
                   f"(difference {r.agree['agreement']:.0e}), certified (max relative gap "
                   f"{r.max_gap:.0e})", [], {}),
        "C4": (v4, f"rank correlation of redundancy and support needed, minus the null's: {c4}"
                   f"; held-out gain from K={sub['k_small']} to {sub['k_full']}: "
                   f"{sub['gain']:.3f} [{sub['ci'][0]:.3f}, {sub['ci'][1]:.3f}]", dev4,
               {"baseline": "null covariance (same spectrum, Haar-random eigenvectors)",
                "scope": f"n/a (singular covariance): {na}"}),
        "C5": (v5, f"median support at which accuracy is kept: {c5}; correlational reading "
                   f"(partners for held-out 1 - R^2 <= {s.fidelity_threshold:g}): {corr}. "
                   f"Tested on {scope}", dev5,
               {"readings": {"functional": {sh[m]: p.k_functional for m, p in r.ps.items()},
                             "correlational": corr5}})}


def claims(s: Settings, r: Results, judged: dict) -> dict:
    """The claim records of the results file (:func:`~neudep_utils.record.claim`)."""
    m0 = s.models[0]
    sm0 = s.short[m0]
    tested4 = [m for m in s.models if r.full_rank[m]]
    head = {"C3": ("cov_lasso_vs_sklearn", [m0]),
            "C4": (f"{s.short[tested4[0]]}_redundancy_rho_beyond_null" if tested4
                   else "oos_gain_K_small_to_full", tested4),
            "C5": (f"{sm0}_acc_replaced_at_k{s.sparse_k}", list(s.models))}
    second = {"C4": "oos_gain_K_small_to_full" if tested4 else None}
    sh = s.short
    reads = {"C3": ["cov_lasso_vs_sklearn", "cov_lasso_max_rel_gap"],
             "C4": [f"{sh[m]}_redundancy_rho_beyond_null" for m in tested4]
             + ["oos_gain_K_small_to_full"],
             "C5": [f"{sh[m]}_acc_replaced_at_k{s.sparse_k}" for m in s.models]
             + [f"{sh[m]}_k_functional" for m in s.models
                if np.isfinite(r.ps[m].k_functional)]}
    return {c: claim(v, summ, head[c][0], head[c][1], "verdict-03", deviations=dev,
                     second=second.get(c), reads=reads[c], **extra)
            for c, (v, summ, dev, extra) in judged.items()}
