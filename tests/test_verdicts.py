"""Every verdict rule of neudep_utils.verdicts at every level and at its boundaries."""

from __future__ import annotations

import pytest

from neudep_utils import verdicts as V

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
    assert V.similar_performance((0.0, 0.09), 0, 0, (0.1, 0.2), tolerance=0.1).holds


@pytest.mark.parametrize(("head", "sparse", "exist", "expected"), [
    ({"a": True, "b": True}, {"a": True, "b": True}, None, R),
    ({"a": True, "b": False}, {"a": True, "b": False}, None, P),  # some models at k_headline
    ({"a": False, "b": False}, {"a": True, "b": True}, None, P),  # every model, larger k only
    ({"a": False, "b": False}, {"a": True, "b": False}, {"a": True, "b": False}, P),
    ({"a": False, "b": False}, {"a": True, "b": False}, {"a": False, "b": False}, N),
    ({"a": False}, {"a": False}, None, N),
    ({}, {}, None, T)])
def test_c1(head, sparse, exist, expected) -> None:
    v = V.c1_single_model(head, sparse, exist, 10, 100)
    assert v.level == expected and v.claim == "C1" and "k = 10" in v.rule
    if expected == P and exist and any(exist.values()):
        assert "existential" in v.why


@pytest.mark.parametrize(("head", "sparse", "cross_arch", "expected", "state"), [
    ({"p": True, "q": True}, {"p": True, "q": True}, True, R, "holds"),
    ({"p": True, "q": True}, {"p": True, "q": True}, False, P, "holds"),
    ({"p": True, "q": False}, {"p": True, "q": False}, True, P, "partly holds"),
    ({"p": False, "q": False}, {"p": True, "q": True}, False, P, "partly holds"),
    ({"p": False, "q": False}, {"p": True, "q": False}, True, N, "fails")])
def test_c2(head, sparse, cross_arch, expected, state) -> None:
    v, s = V.c2_cross_model(head, sparse, cross_arch)
    assert (v.level, s) == (expected, state)
    assert V.c2_cross_model({}, {}, True)[0].level == T


def test_c3_boundaries() -> None:
    assert V.c3_covlasso(1e-5, 1e-4).level == R
    assert V.c3_covlasso(1.01e-5, 1e-6).level == N
    assert V.c3_covlasso(1e-9, 1.01e-4).level == N


def test_c4_levels() -> None:
    ok, no = (0.01, 0.3), (-0.05, 0.1)
    nan = (float("nan"), float("nan"))
    assert V.c4_redundancy({"a": ok, "b": ok}, (0.01, 0.2), 10, 1000).level == R
    assert V.c4_redundancy({"a": ok, "b": no}, (0.01, 0.2), 10, 1000).level == P
    assert V.c4_redundancy({"a": ok, "b": ok}, (0.0, 0.2), 10, 1000).level == P  # touches 0
    assert V.c4_redundancy({"a": no}, (0.01, 0.2), 10, 1000).level == P  # gain only
    assert V.c4_redundancy({"a": no, "b": no}, (-0.1, 0.2), 10, 1000).level == N
    # a model without a full-rank covariance (NaN interval) is not counted
    assert V.c4_redundancy({"a": ok, "d<n": nan}, (0.01, 0.2), 10, 1000).level == R
    assert V.c4_redundancy({"d<n": nan}, (-0.1, 0.0), 10, 1000).level == N


NAN = float("nan")


@pytest.mark.parametrize(("k_func", "reach", "k", "expected"), [
    (20, 0.1, NAN, R), (3, 0.0, NAN, R),
    (21, 0.0, NAN, P), (100, 0.0, NAN, P),  # functional only at a larger support
    (NAN, 0.5, 20, P),  # fidelity reading only
    (NAN, 0.49, 5, N), (NAN, 0.9, 21, N), (101, 0.1, 20, N), (NAN, 0.0, NAN, N)])
def test_c5(k_func, reach, k, expected) -> None:
    assert V.c5_sparsity(k_func, reach, k, 20, 0.3, 100).level == expected


def test_c6a_levels() -> None:
    assert V.c6a_semantics({"a": 1.5, "b": 1.01}, 3).level == R
    assert V.c6a_semantics({"a": 1.5, "b": 1.01}, 0).level == P
    assert V.c6a_semantics({"a": 1.5, "b": 1.0}, 3).level == N  # lower end must exceed 1
    assert V.c6a_semantics({}, 3).level == T


def test_c6b_levels() -> None:
    # reproduced: at least half of A's own and the interval above 10x chance (0.01)
    assert V.c6b_unseen(0.40, (0.0101, 0.5), 0.80, 0.0).level == R
    assert V.c6b_unseen(0.39, (0.3, 0.5), 0.80, 0.5).level == P  # below half, hidden ok
    assert V.c6b_unseen(0.40, (0.01, 0.5), 0.80, 0.5).level == P  # interval touches 10x
    assert V.c6b_unseen(0.39, (0.3, 0.5), 0.80, 0.1).level == N  # hidden: 10x of 1% = 0.1


def _gain(ce_lo, gen_lo, clean, ce=0.01):
    return {"vs_ce": (ce, (ce_lo, 0.05)), "vs_generic": (0.0, (gen_lo, 0.05)),
            "clean_vs_ce": (clean, (clean - 0.01, clean + 0.01))}


def test_c6c_levels_and_best() -> None:
    v, best = V.c6c_robustness({"a": _gain(0.001, 0.001, -0.005)}, 0.005)
    assert (v.level, best) == (R, "a")
    assert V.c6c_robustness({"a": _gain(0.001, 0.0, 0.0)})[0].level == P
    assert V.c6c_robustness({"a": _gain(0.001, 0.001, -0.0051)})[0].level == N  # clean cost
    assert V.c6c_robustness({"a": _gain(0.0, 0.001, 0.0)})[0].level == N
    # the best regularizer: highest level first, then the largest gain over cross-entropy
    v, best = V.c6c_robustness({"a": _gain(0.001, 0.0, 0.0, ce=0.05),
                                "b": _gain(0.001, 0.001, 0.0, ce=0.01)})
    assert (v.level, best) == (R, "b")
    v, best = V.c6c_robustness({"a": _gain(0.0, 0.0, 0.0, ce=0.02),
                                "b": _gain(-0.1, 0.0, 0.0, ce=0.03)})
    assert (v.level, best) == (N, "b")
    assert V.c6c_robustness({})[0].level == T


def test_rule_text_fills_parameters() -> None:
    assert "k = 7" in V.rule_text("C1", k_headline=7)
    assert "10 points" in V.rule_text("similar", tolerance_points=10)
    for rule in (*V.CLAIMS, "similar"):
        assert "{" not in V.rule_text(rule)
    with pytest.raises(KeyError):
        V.rule_text("C7")


def test_across_models_is_the_weakest_testable() -> None:
    per = {"a": V.c5_sparsity(3, 0.9, 3), "b": V.c5_sparsity(float("nan"), 0.6, 5),
           "c": V.Verdict("C5", T, "r", "no data")}
    v = V.across_models(per)
    assert v.level == P and v.claim == "C5" and "a: reproduced" in v.why and "c:" in v.why
    with pytest.raises(ValueError):
        V.across_models({"a": per["a"], "x": V.c3_covlasso(0, 0)})
    with pytest.raises(ValueError):
        V.across_models({})
