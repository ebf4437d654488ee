"""scripts/compare_results.py: every key of two results files compared, nested values included."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _load():
    spec = importlib.util.spec_from_file_location("compare_results",
                                                  REPO / "scripts" / "compare_results.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["compare_results"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


A = {"notebook": "01", "created": "2026-01-01T00:00:00", "runtime_s": 12.0,
     "numbers": {"x": {"value": 0.5, "ci": [0.4, 0.6], "seeds": {"values": [0.5, 0.51]}}},
     "claims": {"C1": {"verdict": "not reproduced", "summary": "0.5 of 1"}},
     "curves": [{"k": 10, "acc": 0.25}, {"k": 50, "acc": float("nan")}]}


def test_identical_but_for_the_clock():
    cr = _load()
    b = json.loads(json.dumps(A))
    b["created"], b["runtime_s"] = "2027-01-01T00:00:00", 99.0
    c = cr.compare(A, b)
    assert c.differences == [] and c.n_numbers == 9 and c.max_rel == 0.0


def test_nested_ci_seed_record_and_string_differences_are_listed():
    cr = _load()
    b = json.loads(json.dumps(A))
    b["numbers"]["x"]["ci"][1] = 0.6 + 1e-7
    b["numbers"]["x"]["seeds"]["values"][0] = 0.5 + 1e-12
    b["curves"][0]["acc"] = 0.3
    b["claims"]["C1"]["summary"] = "0.51 of 1"
    b["numbers"]["y"] = {"value": 1.0}
    c = cr.compare(A, b, rtol=1e-9)
    paths = {d.path for d in c.differences}
    assert paths == {"numbers.x.ci[1]", "curves[0].acc", "claims.C1.summary",
                     "numbers.y.value"}
    assert abs(c.max_rel - 0.05 / 0.3) < 1e-12
    loose = cr.compare(A, b, rtol=1e-6)
    assert {d.path for d in loose.differences} == paths - {"numbers.x.ci[1]"}
    assert cr.compare(A, b, rtol=1.0, ignore=("claims*", "numbers.y*")).differences == []


def test_cli_on_folders(tmp_path, capsys):
    cr = _load()
    for side, val in (("a", 0.5), ("b", 0.7)):
        d = tmp_path / side
        d.mkdir()
        (d / "01.json").write_text(json.dumps({"numbers": {"x": {"value": val}}}))
    assert cr.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 1
    out = capsys.readouterr().out
    assert "numbers.x.value: 0.5 vs 0.7" in out and "1 differ" in out
    assert cr.main([str(tmp_path / "a"), str(tmp_path / "a")]) == 0
