"""Every verdict rule of neudep_utils.verdicts at every level and at its boundaries, the
thresholds' one home, and the deviations log."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from neudep_utils import verdicts as V
from neudep_utils.verdicts import deviations as D
from neudep_utils.verdicts import rules

R, P, N, T = V.LEVELS


def test_levels_and_claims() -> None:
    assert V.LEVELS == ("reproduced", "partly reproduced", "not reproduced", "not testable here")
    assert list(V.CLAIMS) == ["C1", "C2", "C3", "C4", "C5", "C6a", "C6b", "C6c"]
    for c in V.CLAIMS.values():
        assert c.statement and c.notebook.startswith("0")
    with pytest.raises(ValueError, match="verdict level"):
        V.Verdict("C1", "sort of", "", "")
    with pytest.raises(ValueError, match="unknown claim"):
        V.Verdict("C9", R, "", "")


@pytest.mark.parametrize(("levels", "expected"), [
    ([R, R], R), ([R, P], P), ([P, N], N), ([R, N, P], N),
    ([R, T], R), ([N, T], N), ([T, T], T), ([], T)])
def test_notebook_verdict_is_the_weakest_testable(levels, expected) -> None:
    assert V.notebook_verdict(levels) == expected


def test_notebook_verdict_rejects_unknown_levels() -> None:
    with pytest.raises(ValueError):
        V.notebook_verdict([R, "maybe"])


def test_similar_performance_boundaries() -> None:
    ok = V.similar_performance((0.0, 0.05), 1.0, 1.0, (0.001, 0.2))
    assert ok.accuracy_kept and ok.no_new_false_positives and ok.beats_random and ok.holds
    assert not V.similar_performance((0.0, 0.0501), 1.0, 1.0, (0.1, 0.2)).holds  # drop
    assert not V.similar_performance((0.0, 0.01), 1.0001, 1.0, (0.1, 0.2)).holds  # new FPs
    assert not V.similar_performance((0.0, 0.01), 0.5, 1.0, (0.0, 0.2)).holds  # lo == 0
    assert not V.similar_performance((0.0, 0.01), 0.5, 1.0, None).holds  # the baseline
    wide = dataclasses.replace(rules.SIMILAR, tolerance=0.1)
    assert V.similar_performance((0.0, 0.09), 0, 0, (0.1, 0.2), wide).holds


@pytest.mark.parametrize(("head", "sparse", "exist", "expected"), [
    ({"a": True, "b": True}, {"a": True, "b": True}, None, R),
    ({"a": True, "b": False}, {"a": True, "b": False}, None, P),  # some models at k_headline
    ({"a": False, "b": False}, {"a": True, "b": True}, None, P),  # every model, larger k only
    ({"a": False, "b": False}, {"a": True, "b": False}, {"a": True, "b": False}, P),
    ({"a": False, "b": False}, {"a": True, "b": False}, {"a": False, "b": False}, N),
    ({"a": False}, {"a": False}, None, N),
    ({}, {}, None, T)])
def test_c1(head, sparse, exist, expected) -> None:
    v = rules.c1_single_model(head, sparse, exist)
    assert v.level == expected and v.claim == "C1" and "k = 10" in v.rule
    if expected == P and exist and any(exist.values()):
        assert "existential" in v.why


def test_c1_most_favourable_reading_can_carry_it_and_says_so() -> None:
    no = {"a": False, "b": False}
    assert rules.c1_single_model(no, no, None, favourable_headline=no,
                                 favourable_sparse=no).level == N
    v = rules.c1_single_model(no, no, None, favourable_headline={"a": True, "b": True},
                              favourable_sparse=no)
    assert v.level == R and "most favourable" in v.why and "CovLasso does not find" in v.why
    v = rules.c1_single_model(no, no, None, favourable_headline={"a": True, "b": False})
    assert v.level == P and "for a only" in v.why
    v = rules.c1_single_model(no, no, None, favourable_headline=no,
                              favourable_sparse={"a": True, "b": True})
    assert v.level == P and "k <= 100" in v.why
    # the CovLasso dependency itself: no "only by the favourable reading" remark
    v = rules.c1_single_model({"a": True}, {"a": True}, None, favourable_headline={"a": True})
    assert v.level == R and "most favourable" not in v.why
    old = D.old_c1_without_favourable(no, no, None)
    assert old.level == N


def test_c2_most_favourable_reading() -> None:
    no = {"p": False, "q": False}
    v, state = rules.c2_cross_model(no, no, True, favourable_headline={"p": True, "q": True})
    assert (v.level, state) == (R, "holds") and "1 pair" not in v.why and "2 pair" in v.why
    v, state = rules.c2_cross_model(no, no, False, favourable_headline={"p": True, "q": False})
    assert (v.level, state) == (P, "partly holds")
    assert rules.c2_cross_model(no, no, True, favourable_headline=no)[0].level == N


@pytest.mark.parametrize(("head", "sparse", "cross_arch", "expected", "state"), [
    ({"p": True, "q": True}, {"p": True, "q": True}, True, R, "holds"),
    ({"p": True, "q": True}, {"p": True, "q": True}, False, P, "holds"),
    ({"p": True, "q": False}, {"p": True, "q": False}, True, P, "partly holds"),
    ({"p": False, "q": False}, {"p": True, "q": True}, False, P, "partly holds"),
    ({"p": False, "q": False}, {"p": True, "q": False}, True, N, "fails")])
def test_c2(head, sparse, cross_arch, expected, state) -> None:
    v, s = rules.c2_cross_model(head, sparse, cross_arch)
    assert (v.level, s) == (expected, state)
    assert rules.c2_cross_model({}, {}, True)[0].level == T


def test_c3_boundaries() -> None:
    assert rules.c3_covlasso(1e-5, 1e-4).level == R
    assert rules.c3_covlasso(1.01e-5, 1e-6).level == N
    assert rules.c3_covlasso(1e-9, 1.01e-4).level == N


def test_c4_levels() -> None:
    ok, no = (0.01, 0.3), (-0.05, 0.1)  # intervals of (rho - rho under the null)
    nan = (float("nan"), float("nan"))
    c4 = rules.c4_redundancy
    assert c4({"a": ok, "b": ok}, (0.01, 0.2)).level == R
    assert c4({"a": ok, "b": no}, (0.01, 0.2)).level == P
    assert c4({"a": ok, "b": ok}, (0.0, 0.2)).level == P  # touches 0
    assert c4({"a": no}, (0.01, 0.2)).level == P  # gain only
    assert c4({"a": no, "b": no}, (-0.1, 0.2)).level == N
    # a model with a singular covariance (NaN interval) is n/a, not counted
    v = c4({"a": ok, "d<n": nan}, (0.01, 0.2))
    assert v.level == R and "n/a (singular covariance): d<n" in v.why
    assert c4({"d<n": nan}, (-0.1, 0.0)).level == N
    assert "null" in v.rule and "random eigenvectors" in v.rule


NAN = float("nan")


@pytest.mark.parametrize(("k_func", "expected"), [
    (20, R), (3, R), (21, P), (100, P), (101, N), (NAN, N)])
def test_c5(k_func, expected) -> None:
    assert rules.c5_sparsity(k_func).level == expected


def test_c5_correlational_reading() -> None:
    r = rules.c5_correlational(0.97, 15)
    assert r["few"] and r["median_k"] == 15 and "0.3" in r["reading"]
    assert not rules.c5_correlational(0.97, 99)["few"]
    assert not rules.c5_correlational(0.0, NAN)["few"]


def test_c6a_levels() -> None:
    c6a = rules.c6a_semantics
    assert c6a({"a": 1.5, "b": 1.01}, {"a": 0.06, "b": NAN}).level == R
    assert c6a({"a": 1.5, "b": 1.01}, {"a": 0.05}).level == R  # at the threshold
    assert c6a({"a": 1.5, "b": 1.01}, {"a": 0.049, "b": NAN}).level == P
    assert c6a({"a": 1.5, "b": 1.0}, {"a": 0.5}).level == N  # lower end must exceed 1
    assert c6a({}, {}).level == T
    # the chance baseline: the share must also exceed what noise would give
    assert c6a({"a": 1.5}, {"a": 0.06}, {"a": 0.07}).level == P
    assert c6a({"a": 1.5}, {"a": 0.06}, {"a": 0.01}).level == R
    old = D.old_c6a_far_share({"a": 1.5}, {"a": 0.06})
    assert old.level == R and "no chance" not in old.why


def test_c6b_levels() -> None:
    c6b = rules.c6b_unseen
    # reproduced: at least half of A's own and the interval above 10x chance (0.01)
    assert c6b(0.40, (0.0101, 0.5), 0.80, 0.0, -1.0).level == R
    assert c6b(0.39, (0.3, 0.5), 0.80, 0.5, 0.01).level == P  # below half, hidden ok
    assert c6b(0.40, (0.01, 0.5), 0.80, 0.5, 0.01).level == P  # interval touches 10x
    assert c6b(0.39, (0.3, 0.5), 0.80, 0.5, 0.0).level == N  # not above random partners
    assert c6b(0.39, (0.3, 0.5), 0.80, 0.1, 0.2).level == N  # hidden: 10x of 1% = 0.1


def _gain(ce_lo, best_lo, clean, best=0.0, ce=0.01):
    return {"vs_ce": (ce, (ce_lo, 0.05)), "vs_strongest": (best, (best_lo, 0.05)),
            "vs_generic": (0.0, (best_lo, 0.05)),
            "clean_vs_ce": (clean, (clean - 0.01, clean + 0.01)),
            "clean_vs_strongest": (clean, (clean - 0.01, clean + 0.01))}


def test_c6c_levels_and_best() -> None:
    c6c = rules.c6c_robustness
    v, best = c6c({"a": _gain(0.001, 0.001, -0.005)}, "pretrained head")
    assert (v.level, best) == (R, "a") and "pretrained head" in v.why
    assert c6c({"a": _gain(0.001, 0.0, 0.0)}, "L2-SP")[0].level == N  # beats cross-entropy only
    assert c6c({"a": _gain(0.001, 0.001, -0.0051)}, "L2-SP")[0].level == P  # clean cost
    assert c6c({"a": _gain(-0.1, 0.001, 0.0)}, "L2-SP")[0].level == R  # CE does not decide
    # the best regularizer: highest level first, then the largest gain over the strongest
    v, best = c6c({"a": _gain(0.001, 0.001, -0.01, best=0.05),
                   "b": _gain(0.001, 0.001, 0.0, best=0.01)}, "L2-SP")
    assert (v.level, best) == (R, "b")
    v, best = c6c({"a": _gain(0.0, 0.0, 0.0, best=0.02),
                   "b": _gain(-0.1, 0.0, 0.0, best=0.03)}, "L2-SP")
    assert (v.level, best) == (N, "b")
    assert c6c({}, "L2-SP")[0].level == T
    # the old rule (2026-12-03..05) counted beating cross-entropy as partly
    assert D.old_c6c_partly_vs_ce({"a": _gain(0.001, 0.0, 0.0)}).level == P


def test_c5_history_entry_could_give_partly_by_fidelity() -> None:
    old = D.old_c5_functional_or_fidelity(NAN, 0.97, 15)
    assert old.level == P and rules.c5_sparsity(NAN).level == N
    assert D.old_c5_functional_or_fidelity(NAN, 0.97, 99).level == N


def test_rule_text_fills_parameters() -> None:
    assert "k = 7" in V.rule_text("C1", k_headline=7)
    assert "10 points" in V.rule_text("similar", tolerance=0.1)
    for rule in (*V.CLAIMS, "similar"):
        assert "{" not in V.rule_text(rule)
    with pytest.raises(KeyError):
        V.rule_text("C7")


def test_across_models_is_the_weakest_testable() -> None:
    per = {"a": rules.c5_sparsity(3), "b": rules.c5_sparsity(50),
           "c": V.Verdict("C5", T, "r", "no data")}
    v = V.across_models(per)
    assert v.level == P and v.claim == "C5" and "a: reproduced" in v.why and "c:" in v.why
    with pytest.raises(ValueError):
        V.across_models({"a": per["a"], "x": rules.c3_covlasso(0, 0)})
    with pytest.raises(ValueError):
        V.across_models({})


def test_thresholds_have_one_home() -> None:
    """No rule function takes a threshold as its own argument: they come from the rule object,
    and its text shows the same values the function uses."""
    for name in rules.__all__:
        obj = getattr(rules, name)
        if inspect.isfunction(obj) and name != "rule_text":
            params = set(inspect.signature(obj).parameters)
            for r in rules.RULES.values():
                assert not params & {f.name for f in dataclasses.fields(r)} - {"rule"}, name
    assert "k = 10" in rules.C1.text() and rules.C1.k_headline == 10
    assert "within 5 points" in rules.SIMILAR.text()
    c5 = dataclasses.replace(rules.C5, sparse_k=7)
    assert rules.c5_sparsity(8, c5).level == P and rules.c5_sparsity(7, c5).level == R
    assert "<= 7" in c5.text()


def test_deviations_are_logged_with_old_outcomes() -> None:
    assert {d.claim for d in D.DEVIATIONS} >= {"C1", "C4", "C5", "C6a", "C6b", "C6c"}
    for d in D.DEVIATIONS:
        assert d.when[:4] == "2026" and d.what and d.old_rule
    rec = D.record("C5", "functional criterion", "partly reproduced", "not reproduced")
    assert rec["changed_verdict"] and rec["old_rule"].startswith("**C5")
    with pytest.raises(KeyError, match="no deviation"):
        D.record("C5", "nope", R, R)
    # the old rules on numbers like today's
    assert D.old_c5_fidelity(0.97, 120).level == P
    assert D.old_c5_fidelity(0.97, 15).level == R
    assert D.old_c4_interlacing(True, (0.7, 0.74)).level == R
    assert D.old_c4_without_null({"a": (0.5, 0.6), "m": (NAN, NAN)}, (0.1, 0.2)).level == R
    assert D.old_c1_without_existential({"a": False}, {"a": False}).level == N
    assert D.old_c6a_strongest({"a": 17.0}, 0).level == P
    assert D.old_c6b_without_random(0.0, (0.0, 0.0), 0.8, 0.68).level == P
    g = _gain(0.01, -0.001, 0.0)
    assert D.old_c6c_vs_generic({"a": g}).level == P


def test_c2_why_names_the_rule_k_and_the_pair_counts() -> None:
    rule = dataclasses.replace(rules.C2, k_headline=20)
    v, _ = rules.c2_cross_model({"p": True, "q": False}, {"p": True, "q": True}, False, rule)
    assert "1 of 2 ordered pairs reach similar performance at k = 20" in v.why
    assert f"2 of 2 at some k <= {rule.k_sparse}" in v.why
