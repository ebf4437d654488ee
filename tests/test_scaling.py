"""Learning curve, saturating fits, low-rank heads and the width curve; per-target outcomes and
the fit-side selection of the existential reading."""

from __future__ import annotations

import numpy as np
import pytest

from neudep_utils import dependencies, metrics
from neudep_utils import dependencies as folding
from neudep_utils.cache import LogitData
from neudep_utils.findings import scaling


def _features(n_img=240, views=2, D=24, n=20, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n_img) % n
    H = rng.standard_normal((n_img, views, D)).astype(np.float32)
    W = rng.standard_normal((n, D))
    H[np.arange(n_img), :, :] += 2.0 * W[labels][:, None, :] / np.linalg.norm(W[labels],
                                                                           axis=1)[:, None, None]
    return H, labels, W, rng.standard_normal(n) * 0.1


def test_low_rank_head_rank_and_identity() -> None:
    _, _, W, b = _features()
    Wd, bd = scaling.low_rank_head(W, b, 5)
    assert np.linalg.matrix_rank(Wd) == 5 and np.array_equal(bd, b)
    # best rank-5 approximation: the error is the energy of the dropped singular values
    s = np.linalg.svd(W, compute_uv=False)
    assert np.isclose(np.linalg.norm(W - Wd) ** 2, (s[5:] ** 2).sum())
    W2, _ = scaling.low_rank_head(W, b, 50)
    assert np.array_equal(W2, W)


def test_width_curve_records_and_exact_dependency() -> None:
    H, labels, W, b = _features()
    ids = tuple(f"i{j}" for j in range(len(labels)))
    rows = scaling.width_curve("toy", H, labels, ids, W, b, widths=(4, 8), ks=(2, 5))
    assert {r["d"] for r in rows} == {4, 8, 20}
    for r in rows:
        assert {"model", "d", "k", "method", "acc_replaced", "relres_median"} <= set(r)
    dense = {r["d"]: r for r in rows if r["method"] == "dense LS"}
    # a rank-4 head on 20 logits: every logit is an exact affine function of the others
    assert dense[4]["relres_median"] < 1e-8
    assert dense[20]["relres_median"] > 1e-3  # D = 24 > n = 20: full rank, no exact fit


def test_width_curve_measures_the_untouched_head_once() -> None:
    """Widths at or above the head's rank (a narrow model, e.g. the ViT's d = 192 against the
    grid's 256..768) are the untouched head: one set of records, not one per width."""
    H, labels, W, b = _features()
    ids = tuple(f"i{j}" for j in range(len(labels)))
    rows = scaling.width_curve("toy", H, labels, ids, W, b, widths=(4, 20, 30), ks=(2,))
    assert sorted(r["d"] for r in rows) == [4, 4, 20, 20]  # CovLasso + dense LS per width


def test_fit_saturating_recovers_a_power_law() -> None:
    n = np.array([100, 200, 400, 800, 1600, 3200.0])
    y = 0.5 + 3.0 * n ** -0.7
    f = scaling.fit_saturating(n, y)
    assert f["a"] == pytest.approx(0.5, abs=1e-4) and f["c"] == pytest.approx(0.7, abs=1e-3)
    assert f["predict"](1e9) == pytest.approx(0.5, abs=1e-4)
    assert np.isnan(scaling.fit_saturating(n[:2], y[:2])["a"])


def test_learning_curve_records() -> None:
    rng = np.random.default_rng(2)
    n, n_img = 15, 300
    labels = np.arange(n_img) % n
    L = rng.standard_normal((n_img, 2, n)).astype(np.float32)
    L[np.arange(n_img), :, labels] += 3.0
    data = LogitData(L, labels, tuple(map(str, range(n_img))), {"m": slice(0, n)}, n)
    rows = scaling.learning_curve(data, sizes=(60, 120, 240), seeds=(0, 1), k=3,
                                  n_eval_folds=5)
    assert len(rows) == 2 * 3 * 3 * 2
    held = [r for r in rows if r["judged on"] == "held-out images" and r["method"] == "dense LS"]
    assert {r["n_fit"] for r in held} == {60, 120, 240}
    with pytest.raises(ValueError, match="outside the held-out set"):
        scaling.learning_curve(data, sizes=(290,), seeds=(0,), k=3, n_eval_folds=5)


def _toy(n_img=200, n=10, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n_img) % n
    L = rng.standard_normal((n_img, 1, n)).astype(np.float32)
    L[np.arange(n_img), 0, labels] += 4.0
    return LogitData(L, labels, tuple(map(str, range(n_img))), {"m": slice(0, n)}, n)


def test_target_outcomes_count_per_class() -> None:
    data = _toy()
    fl = folding.crossfit(data, 2, 0, fit_views=False)
    deps = [dependencies.dense_least_squares(f, np.arange(10)) for f in fl]
    m = metrics.evaluate(data, fl, deps)
    o = metrics.target_outcomes(m)
    assert o.n_images.sum() == 200 and np.all(o.n_images == 20)
    assert o.n_base.sum() == m.base_correct.sum()
    assert o.n_replaced.sum() == m.repl_correct[m.is_target_image].sum()
    rep, base = o.keep_at_least(0.5)
    assert base == int((o.n_base >= 10).sum()) and 0 <= rep <= 10


def test_select_on_fit_side_uses_fit_images_only() -> None:
    data = _toy()
    fl = folding.crossfit(data, 2, 0, fit_views=False)
    fits = [dependencies.fit_covlasso_k(f, (1, 3), np.arange(10)) for f in fl]
    held = [{k: metrics.evaluate(data, [f], [fd[k]]) for k in (1, 3)}
            for f, fd in zip(fl, fits, strict=True)]
    ins = [{k: metrics.evaluate(data, [folding.Fold(f.S, f.mu, f.center, f.fit_idx,
                                                    f.fit_idx, f.n_fit_rows)], [fd[k]])
            for k in (1, 3)} for f, fd in zip(fl, fits, strict=True)]
    sel = metrics.select_on_fit_side(ins, held, (1, 3))
    assert sel.n_images.sum() == 200 and set(np.unique(sel.k)) <= {1.0, 2.0, 3.0}
    # swapping the held-out outcomes for the in-sample ones changes the counts, never the
    # choice: the choice depends on the fit side only
    sel2 = metrics.select_on_fit_side(ins, ins, (1, 3))
    assert np.array_equal(sel.k, sel2.k)


def test_top_selected_drop_and_interval() -> None:
    o = metrics.TargetOutcomes(np.arange(6), np.full(6, 2.0), np.array([2, 2, 0, 0, 1, 0.0]),
                               np.full(6, 2.0), np.full(6, 3.0),
                               fit_acc=np.array([1, 1, 0, 0, 0.5, 0.0]),
                               fit_relres=np.array([0.1, 0.2, 0.9, 0.8, 0.5, 0.4]))
    top = o.top_selected(2, n_boot=200)
    assert list(top["targets"]) == [0, 1] and top["drop"] == 0.0 and top["drop_ci"] == (0, 0)
    top3 = o.top_selected(3, n_boot=200)
    assert list(top3["targets"]) == [0, 1, 4]
    assert top3["drop"] == pytest.approx(1 / 6) and top3["acc_base"] == 1.0
    with pytest.raises(ValueError):
        metrics.TargetOutcomes(np.arange(2), np.ones(2), np.ones(2), np.ones(2),
                               np.ones(2)).top_selected(1)


def test_split_seeds_reuses_known_fits() -> None:
    data = _toy()
    rows = scaling.split_seeds(data, (0, 1), k=2)
    assert {(r["seed"], r["method"]) for r in rows} == {
        (s, m) for s in (0, 1) for m in ("CovLasso", "CovLasso support + LS", "dense LS")}
    fl = folding.crossfit(data, 2, 0)
    fits = [dependencies.fit_covlasso_k(f, (2,), np.arange(10)) for f in fl]
    again = scaling.split_seeds(data, (0,), k=2, known={0: (fl, fits)})
    assert again == [r for r in rows if r["seed"] == 0]
