"""The committed notebooks read like a paper and stay thin: no outputs (nbstripout), short code
cells whose lines fit the book's page, a parameters cell, a labelled verdict section, plumbing
folded away, and modules imported under readable names."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MAX_CELL_LINES = 27  # "about 25"
MAX_LINE = 88  # what the book's article column shows without scrolling (book/_static/neudep.css)


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _src(cell: dict) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def test_there_are_four_notebooks() -> None:
    assert [p.stem[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04"]


def test_nbstripout_verify() -> None:
    nbstripout = Path(sys.executable).parent / "nbstripout"
    cmd = [str(nbstripout) if nbstripout.exists() else "nbstripout", "--verify",
           *map(str, NOTEBOOKS)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, f"notebooks carry outputs; run `nbstripout notebooks/*.ipynb`\n" \
                                f"{res.stdout}{res.stderr}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_code_cells_are_short_and_fit_the_page(path: Path) -> None:
    for i, c in enumerate(_cells(path)):
        if c["cell_type"] != "code":
            continue
        lines = _src(c).splitlines()
        assert len(lines) <= MAX_CELL_LINES, f"{path.name} cell {i}: {len(lines)} lines"
        for j, line in enumerate(lines):
            assert len(line) <= MAX_LINE, f"{path.name} cell {i} line {j}: {len(line)} chars"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_structure(path: Path) -> None:
    cells = _cells(path)
    code = [c for c in cells if c["cell_type"] == "code"]
    params = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged `parameters` (papermill)"
    md = "\n".join(_src(c) for c in cells if c["cell_type"] == "markdown")
    assert f"(verdict-{path.stem[:2]})=" in md, "the verdict section needs its label"
    # notebooks tell the story: no helper functions (they live in the package, tested), and at
    # least as many lines of prose as of code
    for c in code:
        assert not re.search(r"^\s*def \w+\(", _src(c), re.M), _src(c)[:80]
    n_code = sum(len(_src(c).splitlines()) for c in code)
    n_prose = sum(len(_src(c).splitlines()) for c in cells if c["cell_type"] == "markdown")
    assert n_prose >= n_code, f"{path.name}: {n_prose} lines of prose for {n_code} of code"
    src = "\n".join(_src(c) for c in code)
    # the rules: neudep_utils.verdicts, directly or built by the settings (s.c1_rule, ...)
    assert re.search(r"\b(verdicts|rules)\.|\bs\.c\w+_rule\b", src), \
        "verdicts come from neudep_utils.verdicts"
    assert not re.search(r"import \w+ as [A-Z]{1,2}\b", src), "readable module names"
    assert "neudep_utils.analysis" not in src
