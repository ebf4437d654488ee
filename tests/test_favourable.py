"""The most favourable linear reading (neudep_utils.dependencies.favourable): the level cap holds
on the fit side and is tight, the logistic fit is the optimum of its declared objective (checked
against scipy), the classification support finds a planted partner, and where least squares is
pulled by the negatives a decision-fitted combination keeps the class."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from neudep_utils import dependencies
from neudep_utils.cache import logits
from neudep_utils.dependencies import favourable as fv
from neudep_utils.metrics import evaluate


def synthetic(n_img=400, n=20, views=2, seed=0, bump=5.0):
    """Logits of a low-rank "model" with a class bump; every class has ~n_img/n images."""
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
def setup():
    data = synthetic()
    folds = dependencies.crossfit(data, 2, 0, center=True)
    t = np.arange(data.n_classes)
    out = []
    for i, f in enumerate(folds):
        dep = dependencies.fit_covlasso_k(f, [3], t)[3]
        bl = dependencies.baselines(f, dep, seed=i)
        out.append((f, bl["CovLasso support + LS"], bl["random + LS"]))
    return data, folds, out


def _fit_side_fp(dep, rows):
    G = dep.predict(rows.X)
    wins = G > rows.competitor(dep.targets)
    return (wins & (rows.labels[:, None] != dep.targets[None])).sum(0)


def test_relevel_caps_fit_side_false_positives_and_is_tight(setup):
    data, _, fits = setup
    f, refit, _ = fits[0]
    rows = fv.decision_rows(data, f)
    cap = rows.original_fit_fp(refit.targets)
    lv = fv.relevel(refit, rows)
    assert np.all(_fit_side_fp(lv, rows) <= cap)
    # any higher level would exceed the cap: the cap binds
    higher = fv.replace(lv, intercept=lv.intercept + 1e-7 * (1 + np.abs(lv.intercept)))
    assert np.all(_fit_side_fp(higher, rows) > cap)
    assert lv.method.endswith("re-levelled") and np.array_equal(lv.coef, refit.coef)


def _objective(theta, Z, M, y, w0, Sig):
    w, c = theta[:-1], theta[-1]
    u = Z @ w + c - M
    v = -(2 * y - 1) * u
    om = np.where(y > 0, 0.5 / y.sum(), 0.5 / (1 - y).sum())
    d = w - w0
    return float((om * np.logaddexp(0, v)).sum() + 0.5 * d @ Sig @ d)


def test_discriminative_fit_is_the_optimum_of_the_declared_objective(setup):
    data, _, fits = setup
    f, refit, _ = fits[0]
    rows = fv.decision_rows(data, f)
    # the kernel's solution before the level is re-set: compare the raw Newton optimum
    raw = {}
    orig_relevel = fv.relevel
    fv.relevel = lambda dep, r, method=None: (raw.setdefault("dep", dep), dep)[1]
    try:
        fv.discriminative(refit, rows, f, "d")
    finally:
        fv.relevel = orig_relevel
    dep = raw["dep"]
    assert dep.extra["no_positive"] == 0
    assert np.all(dep.extra["relative_gradient"] <= fv.GRAD_TOL)
    C = f.S
    for j in (0, 7, 13):
        ti = int(refit.targets[j])
        cols = refit.cols[j][refit.cols[j] >= 0]
        Z, M = rows.X[:, cols], rows.competitor(np.array([ti]))[:, 0]
        y = (rows.argmax == ti).astype(float)
        Sig = fv.SHRINK * C[np.ix_(cols, cols)]
        w0 = refit.coef[j][refit.cols[j] >= 0]
        ours = np.r_[dep.coef[j][refit.cols[j] >= 0], dep.intercept[j]]
        ref = minimize(_objective, np.r_[w0, refit.intercept[j]], args=(Z, M, y, w0, Sig),
                       method="BFGS", options={"gtol": 1e-12, "maxiter": 5000})
        f_ours, f_ref = _objective(ours, Z, M, y, w0, Sig), _objective(ref.x, Z, M, y, w0, Sig)
        assert f_ours <= f_ref + 1e-9 * max(1.0, abs(f_ref))
        np.testing.assert_allclose(ours, ref.x, rtol=1e-4, atol=1e-5)


def test_classification_support_finds_the_partner_that_tracks_the_decision():
    rng = np.random.default_rng(3)
    n_img, n = 300, 12
    labels = np.arange(n_img) % n
    L = rng.standard_normal((n_img, 1, n))
    L[np.arange(n_img), 0, labels] += 6.0
    # logit 7 rises on class 2's images only: the classification partner of target 2
    L[labels == 2, 0, 7] += 4.0
    data = logits.LogitData(L.astype(np.float32), labels, tuple(map(str, range(n_img))),
                            {"m": slice(0, n)}, n)
    f = dependencies.crossfit(data, 2, 0, center=True)[0]
    rows = fv.decision_rows(data, f)
    fallback = np.full((n, 2), -1)
    cols = fv.classification_support(rows, f, np.arange(n), 2, fallback)
    assert 7 in cols[2] and 2 not in cols[2]
    assert all(t not in cols[t] for t in range(n))  # never the target itself


def test_targets_without_a_positive_row_keep_the_relevelled_least_squares(setup):
    data, _, fits = setup
    f, refit, _ = fits[0]
    rows = fv.decision_rows(data, f)
    rows = fv.replace(rows, argmax=np.where(rows.argmax == 5, 4, rows.argmax))  # nobody is 5
    d = fv.discriminative(refit, rows, f, "d")
    j = int(np.flatnonzero(refit.targets == 5)[0])
    assert d.extra["iterations"][j] == -1 and d.extra["no_positive"] >= 1
    np.testing.assert_allclose(d.coef[j], refit.coef[j])
    np.testing.assert_allclose(d.intercept[j], fv.relevel(refit, rows).intercept[j])


def test_relevel_is_the_highest_level_under_the_cap_and_the_set_is_complete(setup):
    data, folds, fits = setup
    def tp(d, rows):
        pos = rows.labels[:, None] == d.targets[None]
        return ((d.predict(rows.X) > rows.competitor(d.targets)) & pos).sum(0)

    for f, refit, _ in fits:
        rows = fv.decision_rows(data, f)
        cap = rows.original_fit_fp(refit.targets)
        lv = fv.relevel(refit, rows)
        # where least squares already respects the cap, the highest level under it can only
        # keep more of the target's own fit rows
        ok = _fit_side_fp(refit, rows) <= cap
        assert ok.any() and np.all(tp(lv, rows)[ok] >= tp(refit, rows)[ok])
        assert np.all(lv.intercept[ok] >= refit.intercept[ok])
    sets = [fv.favourable_set(data, f, refit, rnd) for f, refit, rnd in fits]
    assert set(sets[0]) == {*fv.READINGS, fv.RANDOM_RELEVEL, fv.RANDOM_DISC}
    for s, f in zip(sets, folds, strict=True):
        rows = fv.decision_rows(data, f)
        assert all(d.k_requested == 3 and np.all(d.k <= 3) for d in s.values())
        assert all(np.all(_fit_side_fp(d, rows) <= rows.original_fit_fp(d.targets))
                   for d in s.values())
    assert fv.RANDOM_OF[fv.DISC_CLS] == fv.RANDOM_DISC
    assert fv.RANDOM_OF[fv.RELEVEL] == fv.RANDOM_RELEVEL
    m = evaluate(data, folds, [s[fv.DISC_COV] for s in sets]).summary()
    assert 0 <= m["acc_replaced"] <= 1 and np.isfinite(m["fp_created_per_target"])


def test_streamed_moments_are_refused(setup):
    data, folds, _ = setup
    with pytest.raises(ValueError, match="fit images"):
        fv.decision_rows(data, fv.replace(folds[0], fit_idx=None))
