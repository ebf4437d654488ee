"""The pieces behind C1's "why": the fit without the target's own images, the failure sentence,
the readings rows, and the far-partner share of C6a."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from neudep_utils import dependencies
from neudep_utils.cache import logits
from neudep_utils.findings import semantics, why
from neudep_utils.metrics import evaluate


def synthetic(n_img=300, n=24, views=2, seed=0, bump=4.0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n_img) % n
    rng.shuffle(labels)
    H = rng.standard_normal((n_img, views, 6))
    W = rng.standard_normal((n, 6))
    L = H @ W.T + 0.3 * rng.standard_normal((n_img, views, n))
    L[np.arange(n_img), :, labels] += bump
    return logits.LogitData(L.astype(np.float32), labels, tuple(f"i{i}" for i in range(n_img)),
                            {"m": slice(0, n)}, n)


@pytest.fixture(scope="module")
def fitted():
    data = synthetic()
    folds = dependencies.crossfit(data, 2, 0, center=True)
    targets = np.arange(6)
    deps = [dependencies.fit_covlasso_k(f, [4], targets)[4] for f in folds]
    return data, folds, deps


def test_without_positives_downdates_only_the_targets_rows(fitted):
    data, folds, deps = fitted
    res = why.without_positives(data, folds, deps, 4, progress=False)
    # each target's own rows are 1/n of the fit rows
    assert res["positive_share"] == pytest.approx(1 / data.n_classes, rel=0.05)
    assert 0 <= res["acc_without"] <= 1 and 0 <= res["acc_with"] <= 1
    assert abs(res["k_without"] - 4) <= 2 and res["n_images"] > 0
    # the fit with positives refits exactly the CovLasso support: identical to the refit
    refit = [dependencies.least_squares_on_support(f, d.targets, d.cols)
             for f, d in zip(folds, deps, strict=True)]
    assert res["acc_with"] == evaluate(data, folds, refit).summary()["acc_replaced"]


def test_without_positives_matters_when_the_positives_carry_the_signal():
    # the class bump is the only signal the partners share with the target on its own images:
    # with a huge bump, removing the target's rows must change the fitted partners' weights
    data = synthetic(bump=30.0, seed=1)
    folds = dependencies.crossfit(data, 2, 0, center=True)
    deps = [dependencies.fit_covlasso_k(f, [4], np.arange(4))[4] for f in folds]
    res = why.without_positives(data, folds, deps, 4, progress=False)
    assert res["acc_with"] != res["acc_without"] or res["k_with"] != res["k_without"]


def test_without_positives_refuses_streamed_moments(fitted):
    data, folds, deps = fitted
    with pytest.raises(ValueError, match="per-image fit folds"):
        why.without_positives(data, [replace(folds[0], fit_idx=None)], deps[:1], 4)


def test_failure_sentence_names_level_and_separation():
    dep = {"ap": 0.4, "separation": 4.0, "top5": 0.5, "level_top1": 0.72, "level_fp": 1.01}
    rnd = {"ap": 0.04, "separation": 1.0, "top5": 0.1}
    orig = {"ap": 0.9, "separation": 9.0, "top5": 0.97, "level_top1": 0.86, "level_fp": 0.14}
    s = why.failure_sentence("lite0", 10, dep, rnd, orig, 0.01, 0.86)
    assert "far better than random" in s and "d' 4.0 vs 9.0" in s
    assert "wrong level" in s and "72.0%" in s and "1.01 false positives" in s
    assert "Both fail" in s and "1.0%" in s and "86.0%" in s
    # level fine, separation fine: no failure named
    s2 = why.failure_sentence("x", 10, {**dep, "ap": 0.05, "separation": 8.5, "level_top1": 0.81,
                                        "level_fp": 0.1}, rnd, orig, 0.8, 0.86)
    assert "little better than random" in s2 and "Both fail" not in s2
    assert "wrong level" not in s2 and "cannot buy" not in s2
    # not measured (streamed moments): no level clause
    s3 = why.failure_sentence("x", 10, {**dep, "level_top1": float("nan")}, rnd, orig, 0.01, 0.86)
    assert "re-levelled" not in s3


def test_reading_rows_cover_every_method_and_k(fitted):
    data, folds, deps = fitted
    refit = [dependencies.least_squares_on_support(f, d.targets, d.cols)
             for f, d in zip(folds, deps, strict=True)]
    rng = np.random.default_rng(0)
    rand = [dependencies.least_squares_on_support(
        f, d.targets, np.array([rng.choice(np.setdiff1d(np.arange(data.n_classes), [t]), 4,
                                           replace=False) for t in d.targets]))
            for f, d in zip(folds, deps, strict=True)]
    dense = [dependencies.dense_least_squares(f, d.targets) for f, d in zip(folds, deps,
                                                                             strict=True)]
    rows, objs = why.reading_rows("m", data, folds, {4: {"CovLasso support + LS": refit,
                                                         "random + LS": rand}},
                                  dense, deps[0].targets, n_boot=50)
    got = {(r["method"], r["k"]) for r in rows}
    assert got == {("CovLasso support + LS", 4), ("random + LS", 4), ("dense LS", "all"),
                   ("original", "all")}
    by = {(r["method"], r["k"]): r for r in rows}
    # the original logit ranks its class best; AP is a probability
    assert by[("original", "all")]["ap"] >= by[("random + LS", 4)]["ap"]
    # the level: re-levelled on the fit side, judged held out; the original is its own level
    o = by[("original", "all")]
    assert o["level_top1"] == o["top1"] and o["level_fp"] == o["fp"]
    assert all(0 <= r["level_top1"] <= 1 and r["level_fp"] >= 0 for r in rows
               if r["method"] != "random + LS")
    assert all(np.isnan(r["level_top1"]) for r in rows if r["method"] == "random + LS")
    # measured summaries passed in are used as they are, not measured again
    known = {("CovLasso support + LS", 4): {**by[("CovLasso support + LS", 4)],
                                            "acc_replaced": 0.123,
                                            "fp_created_per_target": 9.0}}
    rows2, _ = why.reading_rows("m", data, folds, {4: {"CovLasso support + LS": refit,
                                                       "random + LS": rand}},
                                dense, deps[0].targets, n_boot=50, summaries=known)
    r2 = {(r["method"], r["k"]): r for r in rows2}[("CovLasso support + LS", 4)]
    assert r2["top1"] == 0.123 and r2["fp"] == 9.0
    assert all(0 <= r["ap"] <= 1 and r["ap_ci"][0] <= r["ap_ci"][1] for r in rows)


def test_top_partner_and_far_share(fitted):
    data, folds, deps = fitted
    top = semantics.top_partner(deps[0])
    for i, t in enumerate(deps[0].targets):
        c = deps[0].cols[i]
        ok = c >= 0
        if ok.any():
            assert top[i] == c[ok][np.argmax(np.abs(deps[0].coef[i][ok]))]
            assert top[i] != t


def test_far_share_counts_only_well_fitted_targets(fitted):
    data, folds, deps = fitted
    n = data.n_classes
    T = deps[0].targets.size
    tops = [semantics.top_partner(d) for d in deps]
    # a distance under which exactly the top partners of targets 0 and 1 (both folds) are far
    D = np.zeros((n, n), int)
    for tp in tops:
        for i in (0, 1):
            D[deps[0].targets[i], tp[i]] = 10
    relres = np.full(T, 0.1)
    relres[1] = 0.9  # target 1 is not well fitted: its far partner does not count
    res = semantics.far_share(deps, relres, D, 4, 0.3, n_boot=100)
    assert res["n_well_fitted"] == T - 1
    assert res["share"] == pytest.approx(1 / (T - 1))
    assert res["examples"][0][0] == deps[0].targets[0]
    assert res["share_ci"][0] <= res["share"] <= res["share_ci"][1]
    none = semantics.far_share(deps, np.full(T, 0.9), D, 4, 0.3)
    assert none["n_well_fitted"] == 0 and np.isnan(none["share"])
