"""neudep_utils.timing (sections with wall/CPU seconds and work counters, one per notebook
heading) and scripts/build_report.py (the itemisation make book prints)."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import nbformat

from neudep_utils import timing

REPO = Path(__file__).resolve().parents[1]


def _report():
    spec = importlib.util.spec_from_file_location("build_report",
                                                  REPO / "scripts" / "build_report.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_clock_sections_counters_and_shared_file(tmp_path):
    a = timing.Clock(tmp_path, "01_a")
    b = timing.Clock(tmp_path, "02_b")  # two runs share one file
    a.section("fits")
    timing.count("covlasso path solves", 7)
    a.section("evaluation")
    timing.count("bootstrap replicates", 1000)
    a.done()
    b.section("other")
    b.done()
    got = timing.read_sections(tmp_path)
    assert [s["name"] for s in got["01_a"]] == ["fits", "evaluation"]
    assert got["01_a"][0]["work"] == {"covlasso path solves": 7.0}
    assert got["01_a"][1]["work"] == {"bootstrap replicates": 1000.0}
    assert all(s["seconds"] >= 0 and s["cpu_s"] >= 0 for s in got["01_a"])
    assert [s["name"] for s in got["02_b"]] == ["other"]


def test_notebook_clock_names_sections_by_heading(tmp_path, monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell  # noqa: PLC0415 - IPython

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1"),
                nbformat.v4.new_markdown_cell("## Fitting\ntext"),
                nbformat.v4.new_code_cell("y = 2"), nbformat.v4.new_code_cell("z = 3"),
                nbformat.v4.new_markdown_cell("### Evaluation"),
                nbformat.v4.new_code_cell("w = 4")]
    nbformat.write(nb, tmp_path / "07_t.ipynb")
    assert timing.cell_sections(tmp_path / "07_t.ipynb") == {
        "x = 1": "set-up", "y = 2": "Fitting", "z = 3": "Fitting", "w = 4": "Evaluation"}
    monkeypatch.chdir(tmp_path)
    shell = InteractiveShell.instance()
    try:
        shell.run_cell("from neudep_utils import timing\n"
                       f"clock = timing.notebook_clock({str(tmp_path)!r}, '07_t')")
        for src in ("y = 2", "z = 3", "w = 4", "print('not in the notebook')"):
            shell.run_cell(src)
        secs = timing.read_sections(tmp_path)["07_t"]
        assert [s["name"] for s in secs] == ["Fitting", "Evaluation",
                                             "print('not in the notebook')"]
    finally:
        for sh, event, fn in timing._HOOKS:
            sh.events.unregister(event, fn)
        timing._HOOKS.clear()
        InteractiveShell.clear_instance()


def test_build_report_itemises_stages_entries_and_sections(tmp_path, capsys):
    br = _report()
    (tmp_path / "stages.txt").write_text("logits 100\nnotebooks 300\npages 5\n")
    (tmp_path / "extraction.json").write_text(json.dumps({"jobs": 2, "entries": [
        {"model": "m", "folder": "/d/imagenet-val", "n_images": 10, "views": 2,
         "seconds": 40.0, "cpu_s": 39.0, "computed": True}]}))
    out = tmp_path / "out"
    out.mkdir()
    (out / "runtimes.json").write_text(json.dumps({"01_a": {"runtime_s": 200.0}}))
    timing.update_json(out / "sections.json", "01_a", [
        {"name": "fits", "seconds": 150.0, "cpu_s": 290.0,
         "work": {"covlasso path solves": 48000}}])
    (tmp_path / "floors.json").write_text(json.dumps({"extraction": {"m": 0.5}}))
    assert br.main(["--stages", str(tmp_path / "stages.txt"), "--extraction",
                    str(tmp_path / "extraction.json"), "--output-dir", str(out),
                    "--floors", str(tmp_path / "floors.json"),
                    "--markdown", str(tmp_path / "build.md")]) == 0
    text = capsys.readouterr().out
    assert "m on imagenet-val" in text and "10 images x 2 views" in text
    assert "48,000 path solves" in text and "kernel start, imports, settings" in text
    assert "total" in text and "405.0 s" in text
    md = (tmp_path / "build.md").read_text()
    cores = os.cpu_count() or 1
    assert "| **logits** | 100.0 |" in md and f"| {10.0 / cores:.1f} |" in md  # 10 x 2 x 0.5
