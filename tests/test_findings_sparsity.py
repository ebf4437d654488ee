"""Notebook 03's pieces: the C4 null (same spectrum, Haar eigenvectors), the correlation beyond
it, and the C4/C5 records with their deviations."""

from __future__ import annotations

import numpy as np
import pytest

from neudep_utils.findings import sparsity
from neudep_utils.verdicts.claims import NOT_REPRODUCED, PARTLY, REPRODUCED


def test_null_rows_keep_the_spectrum_and_are_seeded():
    eigs = np.geomspace(10.0, 0.01, 20)
    X = sparsity.null_rows(eigs, 200_000, seed=3)
    C = np.cov(X, rowvar=False)
    got = np.sort(np.linalg.eigvalsh(C))[::-1]
    assert np.allclose(got, eigs, rtol=0.05, atol=2e-3)
    # eigenvectors are not the axes: the diagonal is not the spectrum
    assert not np.allclose(np.sort(np.diag(C))[::-1], eigs, rtol=0.2)
    assert np.array_equal(sparsity.null_rows(eigs, 50, 3), sparsity.null_rows(eigs, 50, 3))
    assert not np.array_equal(sparsity.null_rows(eigs, 50, 3), sparsity.null_rows(eigs, 50, 4))


def test_null_rows_handle_a_singular_spectrum():
    eigs = np.r_[np.ones(5), np.zeros(5)]
    X = sparsity.null_rows(eigs, 1000, seed=0)
    assert np.linalg.matrix_rank(X) == 5


def test_beyond_null_detects_a_real_ranking_and_not_a_null_one():
    rng = np.random.default_rng(0)
    r = rng.uniform(0.01, 1, 400)
    k = np.round(5 + 100 * r + rng.normal(0, 3, 400))  # redundancy ranks the support
    r0, k0 = rng.uniform(0.01, 1, 400), rng.integers(5, 100, 400).astype(float)
    res = sparsity.beyond_null(r, k, r0, k0, n_boot=300, seed=0)
    assert res["rho"] > 0.9 and abs(res["rho_null"]) < 0.2
    assert res["ci"][0] > 0.5
    same = sparsity.beyond_null(r, k, r, k, n_boot=300, seed=0)
    assert same["diff"] == 0 and same["ci"][0] < 0 < same["ci"][1]


def test_beyond_null_ties_and_never_reached():
    r = np.linspace(0.1, 1, 50)
    never = np.full(50, np.nan)  # no target reaches the fidelity: nothing to rank
    res = sparsity.beyond_null(r, never, r, never, n_boot=50)
    assert res["rho"] == 0 and res["rho_null"] == 0 and res["ci"] == (0.0, 0.0)
    # half never reached: ranked last, tied
    k = np.where(r < 0.5, 10.0, np.nan)
    assert sparsity.beyond_null(r, k, r, never, n_boot=50)["rho"] > 0.8
    # too few targets: no interval
    tiny = sparsity.beyond_null(r[:2], k[:2], r[:2], k[:2], n_boot=20)
    assert np.isnan(tiny["rho"]) and np.isnan(tiny["ci"][0])


def _settings(**kw):
    return sparsity.settings("smoke", **kw)


def test_settings_reject_unknown_parameters_and_take_the_rules_defaults():
    with pytest.raises(TypeError, match="unknown notebook 03 parameter"):
        _settings(lam=0.1)
    s = _settings()
    assert s.fidelity_threshold == 0.3 and s.sparse_k == 20 and s.n_boot == 1000
    assert _settings(sparse_k=5).sparse_k == 5


@pytest.mark.parametrize("diff_ci, gain_ci, plain_ci, level, old_null", [
    ((0.1, 0.3), (0.01, 0.02), (0.2, 0.4), REPRODUCED, REPRODUCED),
    ((-0.1, 0.1), (0.01, 0.02), (0.2, 0.4), PARTLY, REPRODUCED),  # the null changes it
    ((-0.1, 0.1), (-0.01, 0.02), (-0.1, 0.1), NOT_REPRODUCED, NOT_REPRODUCED),
])
def test_c4_record_against_the_null_with_its_deviations(diff_ci, gain_ci, plain_ci, level,
                                                        old_null):
    s = _settings()
    m = s.models[0]
    gauss = (0.05, 0.2)  # the Gaussian null (until 2026-12-05) said the model predicts
    pred = {m: {"ci": diff_ci, "ci_plain": plain_ci, "ci_gaussian": gauss}}
    sub = {"ci": gain_ci, "interlacing": True, "k_small": 10, "k_full": 1000}
    v, devs = sparsity.c4_record(s, pred, sub)
    assert v.level == level and "null" in v.rule
    by = {d["name"]: d for d in devs}
    assert by["null control"]["old_outcome"] == old_null
    assert by["null control"]["new_outcome"] == level
    assert by["redundancy as a predictor"]["old_outcome"] == (
        REPRODUCED if gain_ci[0] > 0 else PARTLY)
    assert by["null from the real rows"]["old_outcome"] == (
        REPRODUCED if gain_ci[0] > 0 else PARTLY)


def test_rotated_null_keeps_the_spectrum_and_the_rows_but_not_the_eigenvectors():
    rng = np.random.default_rng(0)
    Xf = rng.standard_t(3, (400, 30)) @ rng.standard_normal((30, 30))  # heavy-tailed rows
    Xe = rng.standard_t(3, (100, 30)) @ rng.standard_normal((30, 30))
    Nf, Ne = sparsity.rotated_null_rows(Xf, Xe, seed=3)
    C, Cn = np.cov(Xf, rowvar=False, bias=True), np.cov(Nf, rowvar=False, bias=True)
    np.testing.assert_allclose(np.linalg.eigvalsh(Cn), np.linalg.eigvalsh(C), rtol=1e-9)
    mu = Xf.mean(0)
    np.testing.assert_allclose(np.linalg.norm(Nf, axis=1), np.linalg.norm(Xf - mu, axis=1))
    np.testing.assert_allclose(np.linalg.norm(Ne, axis=1), np.linalg.norm(Xe - mu, axis=1))
    # which category is redundant changes: the diagonal is reshuffled
    assert abs(np.corrcoef(np.diag(C), np.diag(Cn))[0, 1]) < 0.9
    np.testing.assert_array_equal(sparsity.rotated_null_rows(Xf, Xe, 3)[0], Nf)  # seeded


def test_accuracy_at_a_support_follows_the_path_whatever_the_grid_order():
    # a lam grid that falls, as the profiles' does: supports grow along it
    k_med = np.array([2.0, 5.0, 12.0, 30.0, 80.0])
    acc = np.array([0.0, 0.02, 0.05, 0.11, 0.3])
    got = sparsity.acc_at_support(k_med, acc, 20)
    assert got == pytest.approx(0.05 + (20 - 12) / (30 - 12) * 0.06)
    # the old interpolation (reversed arrays) returned the sparsest point's accuracy
    assert np.interp(20, k_med[::-1], acc[::-1]) == 0.0 != got
    assert sparsity.acc_at_support(k_med[::-1], acc[::-1], 20) == pytest.approx(got)


def test_c4_marks_a_singular_model_na():
    s = _settings()
    s.short.update(a="a", b="b")
    nan2 = (float("nan"), float("nan"))
    v, _ = sparsity.c4_record(s, {"a": {"ci": nan2, "ci_plain": nan2, "ci_gaussian": nan2},
                                  "b": {"ci": (0.1, 0.2), "ci_plain": (0.1, 0.2),
                                        "ci_gaussian": (0.1, 0.2)}},
                              {"ci": (0.1, 0.2), "interlacing": True, "k_small": 10,
                               "k_full": 1000})
    assert v.level == REPRODUCED and "n/a" in v.why
