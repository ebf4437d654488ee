"""Each claim's headline is a number its rule reads (issue 31): the results record names the
numbers a verdict rests on, and writing a results file refuses a headline (or a second half)
outside them, or a rule input that is not among the numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from neudep_utils import profiles
from neudep_utils import record as R
from neudep_utils.findings import single_summary
from neudep_utils.verdicts import Verdict


def _claim(**kw):
    return R.claim(Verdict("C1", "not reproduced", "rule", "why"), "summary",
                   tested_on=["m"], label="verdict-01", **kw)


def _numbers():
    nums = R.Numbers()
    for k in ("m_acc_replaced_refit_k10", "m_acc_base", "m_disc_top1_k10", "m_fp_base"):
        nums.add(k, 0.5, k, unit="fraction")
    return nums


def test_a_headline_outside_the_rule_inputs_is_refused(tmp_path: Path) -> None:
    reads = ["m_acc_replaced_refit_k10", "m_disc_top1_k10", "m_fp_base"]
    ok = _claim(headline="m_acc_replaced_refit_k10", reference="m_acc_base",
                second="m_disc_top1_k10", reads=reads)
    R.write_results(tmp_path, "01_single_model", "t", {"C1": ok}, _numbers())
    bad = _claim(headline="m_acc_base", reads=reads)  # a reference, not what the rule reads
    with pytest.raises(ValueError, match="not a number its rule reads"):
        R.write_results(tmp_path, "01_single_model", "t", {"C1": bad}, _numbers())
    bad2 = _claim(headline="m_acc_replaced_refit_k10", second="m_acc_base", reads=reads)
    with pytest.raises(ValueError, match="second"):
        R.write_results(tmp_path, "01_single_model", "t", {"C1": bad2}, _numbers())
    ghost = _claim(headline="m_acc_replaced_refit_k10", reads=[*reads, "m_missing_k10"])
    with pytest.raises(ValueError, match="m_missing_k10"):
        R.write_results(tmp_path, "01_single_model", "t", {"C1": ghost}, _numbers())
    with pytest.raises(ValueError, match="reference"):
        R.write_results(tmp_path, "01_single_model", "t",
                        {"C1": _claim(headline="m_acc_replaced_refit_k10",
                                      reference="nope")}, _numbers())


def test_c6a_second_half_is_the_deciding_models_share() -> None:
    """C6a's second half asks for one model: the number shown is that model's, not the first's."""
    s = profiles.get_profile("default").single
    a, b, c = (s.short[m] for m in s.models[:3])
    nums = R.Numbers()
    for name, val, ci in ((a, 0.0, (0.0, 0.0)), (b, 0.09, (0.07, 0.11)), (c, 0.04, (0.03, 0.06))):
        nums.add(f"{name}_counter_share_k{s.k_headline}", val, "share", ci=ci)
    assert single_summary.claim_keys(s, nums)["C6a"]["second"] == (
        f"{b}_counter_share_k{s.k_headline}")
