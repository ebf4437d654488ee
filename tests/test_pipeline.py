"""Tests of the dependency pipeline (logits, folds, dependencies, metrics, bootstrap, crossmodel,
semantics.nearness_vs_chance) on synthetic logits: folds, fits at a support size, baselines,
metrics (against brute-force loops), bootstrap, overlap, nearness and unseen categories."""

from __future__ import annotations

import numpy as np
import pytest

from neudep_utils import cache as logits
from neudep_utils import covlasso as cl
from neudep_utils import dependencies, metrics, moments
from neudep_utils import dependencies as folding
from neudep_utils.findings import crossmodel
from neudep_utils.metrics import bootstrap, semantics


def synthetic(n_img=240, n=30, views=2, seed=0, noise=0.3, n_classes=None):
    """Logits with class structure: each image's true class gets a bump; class c's logit also
    depends linearly on a few others (a planted sparse dependency for class 0)."""
    rng = np.random.default_rng(seed)
    nc = n if n_classes is None else n_classes
    labels = np.arange(n_img) % nc
    rng.shuffle(labels)
    H = rng.standard_normal((n_img, views, 8))
    W = rng.standard_normal((n, 8))
    L = H @ W.T + noise * rng.standard_normal((n_img, views, n))
    L[np.arange(n_img), :, labels] += 4.0
    L[:, :, 0] = 0.8 * L[:, :, 1] - 0.5 * L[:, :, 2] + 0.05 * rng.standard_normal((n_img, views))
    return logits.LogitData(L.astype(np.float32), labels, tuple(f"img{i}" for i in range(n_img)),
                       {"m": slice(0, n)}, n)


# ---------------------------------------------------------------------------------------------
# folds
# ---------------------------------------------------------------------------------------------


def test_image_folds_stratified_and_seeded():
    labels = np.repeat(np.arange(50), 4)
    f = folding.image_folds(labels, 2, seed=3)
    assert np.array_equal(f, folding.image_folds(labels, 2, seed=3))
    assert not np.array_equal(f, folding.image_folds(labels, 2, seed=4))
    for c in range(50):
        assert np.bincount(f[labels == c], minlength=2).tolist() == [2, 2]
    f3 = folding.image_folds(np.arange(31) % 7, 3, seed=0)
    assert set(f3) == {0, 1, 2}
    with pytest.raises(ValueError):
        folding.image_folds(labels, 1)


def test_crossfit_disjoint_and_moments():
    d = synthetic()
    folds = folding.crossfit(d, 2, seed=0, center=True)
    ev = np.concatenate([f.eval_idx for f in folds])
    assert np.array_equal(np.sort(ev), np.arange(d.n_images))  # every image judged once
    for f in folds:
        assert np.intersect1d(f.fit_idx, f.eval_idx).size == 0
        X = d.logits[f.fit_idx].reshape(-1, d.logits.shape[2]).astype(float)
        assert f.n_fit_rows == X.shape[0] == 2 * f.fit_idx.size  # all views in the fit
        np.testing.assert_allclose(f.S, moments.second_moment(X, center=True), atol=1e-10)
        np.testing.assert_allclose(f.mu, X.mean(0), atol=1e-12)
    centre_only = folding.crossfit(d, 2, seed=0, fit_views=False)
    assert centre_only[0].n_fit_rows == centre_only[0].fit_idx.size


def test_fold_from_moments():
    d = synthetic()
    X = d.logits.reshape(-1, d.logits.shape[2]).astype(float)
    f = folding.fold_from_moments(X.shape[0], X.sum(0), X.T @ X, np.arange(10), center=True)
    np.testing.assert_allclose(f.S, moments.second_moment(X, center=True), atol=1e-9)
    assert f.fit_idx is None and f.n_fit_rows == X.shape[0]


def test_stack_models_checks():
    a = synthetic(seed=0)
    b = synthetic(seed=0)
    b.blocks = {"other": slice(0, 30)}
    s = logits.stack_models(a, b)
    assert s.logits.shape == (a.n_images, 2, 60)
    assert s.blocks == {"m": slice(0, 30), "other": slice(30, 60)}
    assert s.n_classes == 30
    with pytest.raises(ValueError, match="overlap"):
        logits.stack_models(a, a)
    c = synthetic(seed=1)
    c.blocks = {"x": slice(0, 30)}
    c.image_ids = c.image_ids[::-1]
    with pytest.raises(ValueError, match="same images"):
        logits.stack_models(a, c)


# ---------------------------------------------------------------------------------------------
# fitting at a support size
# ---------------------------------------------------------------------------------------------


def test_fit_covlasso_k_hits_k_and_is_certified():
    d = synthetic(n=40)
    fold = folding.crossfit(d, 2, 0)[0]
    ks = (1, 2, 5, 10)
    deps = dependencies.fit_covlasso_k(fold, ks)
    for k in ks:
        dep = deps[k]
        assert dep.k_requested == k
        assert np.mean(dep.k == k) > 0.8
        # (target 0 is explained by 2 planted partners; its support can stay at 2)
        assert np.all(np.abs(dep.k[1:] - k) <= max(2, k // 2))
        assert np.all(dep.cols[dep.cols >= 0] != np.repeat(dep.targets[:, None], dep.cols.shape[1], 1)[dep.cols >= 0])
        # the stored coefficients solve the CovLasso at the stored lam (certificate)
        gap = cl.duality_gap(fold.S, dep.dense(), dep.targets, dep.lam)
        assert np.all(gap <= 1e-5 * dep.objective + 1e-12)
        # intercept: mu_i - theta^T mu
        np.testing.assert_allclose(dep.intercept, fold.mu[dep.targets] - dep.dense() @ fold.mu, atol=1e-10)
    # the planted dependency of class 0 on classes 1 and 2
    assert set(deps[2].dense()[0].nonzero()[0]) == {1, 2}


def test_fit_covlasso_k_candidates_and_targets():
    d = synthetic(n=30)
    fold = folding.crossfit(d, 2, 0)[0]
    cand = np.zeros(30, bool)
    cand[10:] = True
    deps = dependencies.fit_covlasso_k(fold, (3,), targets=[0, 5], candidates=cand)
    M = deps[3].dense()
    assert np.all(M[:, :10] == 0)
    assert np.array_equal(deps[3].targets, [0, 5])
    with pytest.raises(ValueError):
        dependencies.fit_covlasso_k(fold, (0,))


def test_cached_fit_roundtrip(tmp_path):
    d = synthetic(n=25)
    fold = folding.crossfit(d, 2, 0)[0]
    a = dependencies.fit_covlasso_k_cached(fold, (2, 4), cache_dir=tmp_path)
    assert len(list(tmp_path.glob("deps-*.npz"))) == 1
    b = dependencies.fit_covlasso_k_cached(fold, (2, 4), cache_dir=tmp_path)
    for k in (2, 4):
        assert np.array_equal(a[k].cols, b[k].cols)
        np.testing.assert_array_equal(a[k].coef, b[k].coef)
        np.testing.assert_array_equal(a[k].intercept, b[k].intercept)
        assert b[k].k_requested == k and b[k].method == "CovLasso"
    dependencies.fit_covlasso_k_cached(fold, (2, 5), cache_dir=tmp_path)  # other ks: other entry
    assert len(list(tmp_path.glob("deps-*.npz"))) == 2


# ---------------------------------------------------------------------------------------------
# baselines
# ---------------------------------------------------------------------------------------------


def test_least_squares_on_support_matches_lstsq():
    d = synthetic(n=20)
    fold = folding.crossfit(d, 2, 0)[0]
    t = np.array([0, 3, 7])
    cols = np.array([[1, 2, -1], [4, 5, 6], [8, -1, -1]])
    dep = dependencies.least_squares_on_support(fold, t, cols)
    for r, i in enumerate(t):
        c = cols[r][cols[r] >= 0]
        ref = np.linalg.solve(fold.S[np.ix_(c, c)], fold.S[c, i])
        np.testing.assert_allclose(dep.dense()[r, c], ref, rtol=1e-8, atol=1e-10)
    assert np.array_equal(dep.k, [2, 3, 1])


def test_least_squares_collinear_partners_finite():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 6))
    X[:, 2] = X[:, 1]  # duplicate column
    X[:, 0] = X[:, 1] + 0.1 * rng.standard_normal(200)
    fold = folding.Fold(moments.second_moment(X, center=True), X.mean(0), True, np.arange(10), None, 200)
    dep = dependencies.least_squares_on_support(fold, np.array([0]), np.array([[1, 2]]))
    c = dep.dense()[0]
    assert np.all(np.isfinite(c))
    np.testing.assert_allclose(c[1], c[2], rtol=1e-6)  # min-norm splits the weight
    np.testing.assert_allclose(c[1] + c[2], 1.0, atol=0.05)


def test_dense_least_squares_and_drop():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 12))
    fold = folding.Fold(moments.second_moment(X, center=True), X.mean(0), True, np.arange(5), None, 300)
    dep = dependencies.dense_least_squares(fold, np.array([3]))
    others = np.setdiff1d(np.arange(12), [3])
    ref = np.linalg.solve(fold.S[np.ix_(others, others)], fold.S[others, 3])
    np.testing.assert_allclose(dep.dense()[0, others], ref, atol=1e-10)
    assert dep.dense()[0, 3] == 0
    cols = np.arange(6, 12)
    dep2 = dependencies.dense_least_squares(fold, np.array([0, 1]), cols, drop=np.array([8, -1]))
    c0 = np.setdiff1d(cols, [8])
    ref0 = np.linalg.solve(fold.S[np.ix_(c0, c0)], fold.S[c0, 0])
    np.testing.assert_allclose(dep2.dense()[0, c0], ref0, atol=1e-10)
    assert dep2.dense()[0, 8] == 0
    ref1 = np.linalg.solve(fold.S[np.ix_(cols, cols)], fold.S[cols, 1])
    np.testing.assert_allclose(dep2.dense()[1, cols], ref1, atol=1e-10)


def _lstsq_min_norm(X, target, cols):
    """Reference: numpy's minimum-norm least squares of column ``target`` on ``cols`` of the
    centred rows X."""
    Xc = X - X.mean(0)
    return np.linalg.lstsq(Xc[:, cols], Xc[:, target], rcond=None)[0]


def _old_dense_inside(S, i):
    """The formula used before: theta = -pinv(S)[:, i] / pinv(S)_ii (valid for invertible S)."""
    P = np.linalg.pinv(S, rcond=1e-12, hermitian=True)
    th = -P[:, i] / P[i, i]
    th[i] = 0.0
    return th


@pytest.mark.parametrize("case", ["few rows", "low-rank head", "scale 1e-6", "scale 1e6"])
def test_dense_least_squares_is_min_norm_on_singular_moments(case):
    """Rank-deficient S: fewer fit rows than columns, or a logit layer of width d < n with a
    bias; the dense fit must equal numpy's minimum-norm least squares (and the old formula
    must not)."""
    rng = np.random.default_rng(7)
    n = 40
    if case == "few rows":
        X = rng.standard_normal((25, n))  # rank 24 after centring
    else:
        H = rng.standard_normal((300, 12))  # width 12 < n: rank 12 after centring
        X = H @ rng.standard_normal((12, n)) + rng.standard_normal(n)
        X = X * {"low-rank head": 1.0, "scale 1e-6": 1e-6, "scale 1e6": 1e6}[case]
    S = moments.second_moment(X, center=True)
    fold = folding.Fold(S, X.mean(0), True, np.arange(3), None, X.shape[0])
    targets = np.array([0, 5, 17])
    dep = dependencies.dense_least_squares(fold, targets)
    for r, i in enumerate(targets):
        others = np.setdiff1d(np.arange(n), [i])
        ref = _lstsq_min_norm(X, i, others)
        scale = np.abs(ref).max()
        np.testing.assert_allclose(dep.dense()[r, others], ref, atol=1e-6 * scale)
        assert dep.dense()[r, i] == 0
        assert np.abs(_old_dense_inside(S, i)[others] - ref).max() > 1e-3 * scale
    # dropping an extra column (cross-model: B's own category) on a singular block
    cols = np.arange(10, n)
    dep2 = dependencies.dense_least_squares(fold, np.array([0, 1]), cols,
                                            drop=np.array([12, -1]))
    c0 = np.setdiff1d(cols, [12])
    ref0 = _lstsq_min_norm(X, 0, c0)
    np.testing.assert_allclose(dep2.dense()[0, c0], ref0, atol=1e-6 * np.abs(ref0).max())
    ref1 = _lstsq_min_norm(X, 1, cols)
    np.testing.assert_allclose(dep2.dense()[1, cols], ref1, atol=1e-6 * np.abs(ref1).max())


def test_dense_least_squares_exact_dependency_held_out():
    """A width-d head with a bias: every logit is an exact affine function of the others, so the
    dense fit reproduces held-out logits (the old formula did not)."""
    rng = np.random.default_rng(3)
    W, b = rng.standard_normal((60, 20)), rng.standard_normal(60)
    X = rng.standard_normal((400, 20)) @ W.T + b
    fit, ev = np.arange(300), np.arange(300, 400)
    S = moments.second_moment(X[fit], center=True)
    fold = folding.Fold(S, X[fit].mean(0), True, ev, fit, 300)
    dep = dependencies.dense_least_squares(fold, np.arange(60))
    err = dep.predict(X[ev]) - X[ev]
    rel = (err ** 2).sum(0) / ((X[ev] - X[ev].mean(0)) ** 2).sum(0)
    assert rel.max() < 1e-10


def test_random_and_topcorr_supports():
    d = synthetic(n=30)
    fold = folding.crossfit(d, 2, 0)[0]
    t = np.arange(30)
    ks = np.full(30, 4)
    cand = np.zeros(30, bool)
    cand[::2] = True
    r1 = dependencies.random_support(fold, t, ks, cand, seed=0)
    assert np.array_equal(r1, dependencies.random_support(fold, t, ks, cand, seed=0))
    for i in t:
        s = r1[i]
        assert s.size == 4 and np.all(s >= 0) and np.all(s % 2 == 0) and i not in s
    tc = dependencies.topcorr_support(fold, t, ks)
    dd = np.sqrt(np.diag(fold.S))
    corr = np.abs(fold.S / np.outer(dd, dd))
    np.fill_diagonal(corr, -1)
    for i in t:
        assert set(tc[i]) == set(np.argsort(-corr[i])[:4])
    bl = dependencies.baselines(fold, dependencies.fit_covlasso_k(fold, (3,))[3])
    assert set(bl) == {"random + LS", "top-|corr| + LS", "CovLasso support + LS"}


# ---------------------------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------------------------


def brute_force(data, folds, deps):
    """Per-image loop implementation of the metric definitions."""
    t = deps[0].targets
    T = t.size
    nC = data.n_classes
    repl, base, fp, weak, allr, fpb = [], [], [], [], [], 0
    for fold, dep in zip(folds, deps, strict=True):
        X = data.logits[fold.eval_idx, 0].astype(float)
        P = dep.predict(X)
        for r, x in enumerate(X):
            y = data.labels[fold.eval_idx[r]]
            f = x[:nC]
            base.append(f.argmax() == y)
            if y in t:
                g = f.copy()
                g[y] = P[r, list(t).index(y)]
                repl.append(g.argmax() == y)
            else:
                repl.append(False)
            cnt, wk = 0, 0
            for j, i in enumerate(t):
                g = f.copy()
                g[i] = P[r, j]
                if i != y and g.argmax() == i and f.argmax() != i:
                    cnt += 1
                if i != y and f.argmax() == i:
                    fpb += 1
                wk += g.argmax() == y
            fp.append(cnt)
            weak.append(wk / T)
            g = f.copy()
            g[t] = P[r]
            allr.append(g.argmax() == y)
    return (np.array(repl), np.array(base), np.array(fp), np.array(weak), np.array(allr), fpb / T)


@pytest.mark.parametrize("k", [1, 3])
def test_evaluate_matches_brute_force(k):
    d = synthetic(n_img=160, n=16, noise=1.0, seed=2)
    folds = folding.crossfit(d, 2, 1)
    deps = [dependencies.least_squares_on_support(f, dk[k].targets, dk[k].cols)
            for f, dk in ((f, dependencies.fit_covlasso_k(f, (k,))) for f in folds)]
    m = metrics.evaluate(d, folds, deps, chunk=7)
    repl, base, fp, weak, allr, fpb = brute_force(d, folds, deps)
    assert np.array_equal(m.repl_correct, repl)
    assert np.array_equal(m.base_correct, base)
    assert np.array_equal(m.fp_created, fp)
    np.testing.assert_allclose(m.weak_correct, weak)
    assert np.array_equal(m.all_repl_correct, allr)
    s = m.summary()
    assert s["fp_base_per_target"] == pytest.approx(fpb)
    assert s["acc_drop"] == pytest.approx(s["acc_base"] - s["acc_replaced"])
    assert set(s) == set(metrics.METRIC_DEFINITIONS)
    # relative residual by hand
    X = np.concatenate([d.logits[f.eval_idx, 0] for f in folds]).astype(float)
    P = np.concatenate([dep.predict(d.logits[f.eval_idx, 0]) for f, dep in zip(folds, deps, strict=True)])
    sse = ((X - P) ** 2).sum(0)
    sst = ((X - X.mean(0)) ** 2).sum(0)
    np.testing.assert_allclose(m.relres, sse / sst, rtol=1e-6)


def test_evaluate_exact_dependency_keeps_accuracy():
    d = synthetic(n=20, noise=0.5)
    d.logits[:, :, 0] = 0.8 * d.logits[:, :, 1] - 0.5 * d.logits[:, :, 2]  # exact, no noise
    folds = folding.crossfit(d, 2, 0)
    deps = [dependencies.least_squares_on_support(f, np.array([0]), np.array([[1, 2]])) for f in folds]
    m = metrics.evaluate(d, folds, deps)
    assert m.relres[0] < 1e-8
    s = m.summary()
    assert s["acc_replaced"] == s["acc_base"] and s["fp_created_per_target"] == 0


def test_evaluate_rejects_non_class_targets():
    d = synthetic(n=20)
    s = logits.stack_models(d, logits.LogitData(d.logits, d.labels, d.image_ids, {"b": slice(0, 20)}, 20))
    folds = folding.crossfit(s, 2, 0)
    deps = [dependencies.fit_covlasso_k(f, (2,), targets=[25])[2] for f in folds]
    with pytest.raises(ValueError, match="classifier classes"):
        metrics.evaluate(s, folds, deps)


def test_bootstrap_ci_and_metric_ci():
    x = np.r_[np.ones(50), np.zeros(50)]
    lo, hi = bootstrap.bootstrap_ci(lambda W: (W @ x) / W.sum(1), x.size, 500, seed=0)
    assert lo < 0.5 < hi and hi - lo < 0.3
    assert bootstrap.bootstrap_ci(lambda W: (W @ np.ones(10)) / W.sum(1), 10, 100) == (1.0, 1.0)
    assert np.isnan(bootstrap.bootstrap_ci(lambda W: W.sum(1), 5, 0)[0])
    d = synthetic(n=16, noise=1.0)
    folds = folding.crossfit(d, 2, 0)
    deps = [dependencies.fit_covlasso_k(f, (3,))[3] for f in folds]
    m = metrics.evaluate(d, folds, deps, keep_errors=True)
    s = m.summary()
    for key in ("acc_replaced", "acc_drop", "fp_created_per_target", "weak_top1", "relres_median"):
        lo, hi = metrics.metric_ci(m, key, 200, 0)
        assert lo <= s[key] + 1e-9 and s[key] <= hi + 1e-9 or key == "relres_median"
        assert lo <= hi
    with pytest.raises(ValueError):
        metrics.metric_ci(metrics.evaluate(d, folds, deps), "relres_median", 10)
    diff, lo, hi = metrics.paired_diff_ci(m, m, "acc_replaced", 100)
    assert diff == lo == hi == 0


# ---------------------------------------------------------------------------------------------
# overlap, nearness
# ---------------------------------------------------------------------------------------------


def _dep(cols, n=10):
    cols = np.asarray(cols)
    return dependencies.DepSet(np.arange(len(cols)), cols, np.where(cols >= 0, 1.0, 0.0), np.zeros(len(cols)),
                    n, "x")


def test_support_overlap():
    a = _dep([[1, 2, 3], [4, 5, -1]])
    r = crossmodel.support_overlap(a, a, n_boot=50)
    assert r["jaccard"] == 1.0 and r["chance"] < 0.4
    b = _dep([[6, 7, 8], [1, 2, -1]])
    assert crossmodel.support_overlap(a, b, n_boot=50)["jaccard"] == 0.0


def test_nearness_vs_chance():
    near = np.zeros((10, 10), bool)
    near[0, 1] = near[1, 0] = True
    dep = _dep([[1, 2], [0, 5]])
    r = semantics.nearness_vs_chance([dep], near, n_boot=50)
    assert r["observed"] == pytest.approx(0.5)  # 2 of 4 pairs near
    assert r["chance"] == pytest.approx((2 * 1 / 9 + 2 * 1 / 9) / 4)  # one near class of 9 each
    assert r["n_pairs"] == 4
    everything = ~np.eye(10, dtype=bool)
    assert semantics.nearness_vs_chance([dep], everything, n_boot=20)["chance"] == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------
# unseen categories
# ---------------------------------------------------------------------------------------------


def test_unseen_never_uses_hidden_logits_of_A():
    a = synthetic(n_img=300, n=24, noise=0.5, seed=5)
    rng = np.random.default_rng(0)
    b = logits.LogitData(a.logits + 0.3 * rng.standard_normal(a.logits.shape).astype(np.float32),
                    a.labels, a.image_ids, {"B": slice(0, 24)}, 24)
    hidden = np.array([3, 7, 11])
    ab = logits.stack_models(a, b)
    res = {}
    for scramble in (False, True):
        d = logits.stack_models(a, b)
        if scramble:  # A's hidden logits replaced by noise everywhere
            d.logits[:, :, hidden] = rng.standard_normal((d.n_images, d.n_views, 3)).astype(np.float32)
        folds = folding.crossfit(d, 2, 0)
        res[scramble] = crossmodel.unseen_categories(d, folds, "m", "B", hidden, (2,), seed=0)[2]
    for key in ("rebuilt_1000", "rebuilt_hidden", "B_1000", "seen_rebuilt", "seen_A_removed"):
        assert np.array_equal(res[False][key], res[True][key]), key
    o = res[False]
    assert o["image"].size == np.isin(ab.labels, hidden).sum()
    assert o["A_hidden"].mean() > 0.5 and o["B_hidden"].mean() > 0.5  # references beat chance (1/3)
    assert o["seen_A_removed"].size + o["image"].size == ab.n_images
    for meth in ("refit", "random", "dense"):
        r = crossmodel.unseen_categories(ab, folding.crossfit(ab, 2, 0), "m", "B", hidden, (2,), method=meth)
        assert set(r) == ({"dense"} if meth == "dense" else {2})
    r = crossmodel.unseen_categories(ab, folding.crossfit(ab, 2, 0), "m", "B", hidden, (2,), construction="transfer")
    assert r[2]["deps"][0].cols.max() >= 24  # fitted on B's block
    with pytest.raises(ValueError):
        crossmodel.unseen_categories(ab, folding.crossfit(ab, 2, 0), "m", "B", hidden, construction="x")


def test_cached_fit_key_covers_the_solver_code(tmp_path, monkeypatch):
    d = synthetic(n=12)
    fold = folding.crossfit(d, 2, 0)[0]
    dependencies.fit_covlasso_k_cached(fold, (2,), np.arange(3), cache_dir=tmp_path)
    assert len(list(tmp_path.glob("deps-*.npz"))) == 1
    monkeypatch.setattr(dependencies.fit, "_code_digest", lambda: "another solver")
    dependencies.fit_covlasso_k_cached(fold, (2,), np.arange(3), cache_dir=tmp_path)
    assert len(list(tmp_path.glob("deps-*.npz"))) == 2  # not served from the old solver's file
