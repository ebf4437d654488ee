"""A parameter a user changes reaches every rule and sentence that uses it (issue 25): the four
notebooks run at smoke size with a rule parameter changed, and the rule shown in the executed
notebook, the verdict's record and the headline key all follow it.

Slow (four notebooks at smoke size); CI runs it with the slow tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SMALL = {  # smoke sizes cut further: the test is about the parameters, not the numbers
    "01": ["-p", "n_targets", "120", "-p", "split_seeds", "[0]", "-p", "learning_sizes", "[]",
           "-p", "widths", "[64]", "-p", "width_targets", "60", "-p", "n_boot", "50"],
    "02": ["-p", "n_targets", "120", "-p", "split_seeds", "[0]", "-p", "n_boot", "50"],
    "03": ["-p", "subset_sizes", "[10, 1000]", "-p", "subset_seeds", "[0]", "-p", "n_boot",
           "50", "-p", "split_seeds", "[0]"],
    "04": [],
}
CHANGED = {"01": ("k_headline", "20"), "02": ("k_headline", "20"), "03": ("sparse_k", "5"),
           "04": ("clean_drop_tolerance", "0.02")}


def _outputs_text(nb: Path) -> str:
    cells = json.loads(nb.read_text())["cells"]
    out = []
    for c in cells:
        for o in c.get("outputs", []):
            data = o.get("data", {})
            out.append("".join(data.get("text/markdown", "")) + "".join(o.get("text", "")))
    return "\n".join(out)


@pytest.mark.slow
@pytest.mark.parametrize("nb", ["01", "02", "03", "04"])
def test_a_changed_rule_parameter_reaches_rule_verdict_and_headline(nb: str, tmp_path: Path,
                                                                   data_root: Path) -> None:
    name, value = CHANGED[nb]
    out, executed = tmp_path / "out", tmp_path / "executed"
    env = {**os.environ, "NEUDEP_DATA": str(data_root)}
    cmd = [sys.executable, "scripts/run_notebooks.py", "--profile", "smoke", "--only", nb,
           "--output-dir", str(out), "--executed-dir", str(executed), "--quiet",
           "-p", name, value, *SMALL[nb]]
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=3000)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    result = json.loads(next(out.glob(f"{nb}_*.json")).read_text())
    shown = _outputs_text(next(executed.glob(f"{nb}_*.ipynb")))
    assert result["parameters"][name] == json.loads(value)
    if nb in ("01", "02"):
        claim = result["claims"]["C1" if nb == "01" else "C2"]
        assert "k = 20" in claim["rule"] and "k = 10" not in claim["rule"]
        assert "k = 20" in claim["why"] and claim["headline"].endswith("_k20")
        assert "k = 20" in claim["summary"]
        assert "at k = 20, pooled over all targets" in shown or "at k = 20, *partly" in shown
    elif nb == "03":
        claim = result["claims"]["C5"]
        assert "median support size <= 5;" in claim["rule"]
        assert claim["headline"].endswith("_acc_replaced_at_k5")
        assert "median support size <= 5;" in shown
    else:
        claim = result["claims"]["C6c"]
        assert "costs at most 0.02 clean top-1" in claim["rule"]
        assert "costs at most 0.02 clean top-1" in shown
    # the headline is a number the rule reads
    assert claim["headline"] in claim["reads"] and claim["headline"] in result["numbers"]
