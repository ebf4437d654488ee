"""Fast tests of the book's generators (scripts/build_book.py) and runner (scripts/run_notebooks.py)
on synthetic result files and tiny notebooks."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import nbformat
import pytest

from neudep_utils.report import claim, number, write_results

REPO = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


bb = _load("build_book")
rn = _load("run_notebooks")


def _results(out: Path) -> Path:
    write_results(out, "01_single_model", "Single-model dependencies",
                  claims={"C1": claim("partly reproduced", "Sparse | but weaker", "rel_res"),
                          "C6a": claim("not testable here", "No ground truth.")},
                  numbers={"rel_res": number(0.12345, "relative residual, held-out images",
                                             ci=(0.1, 0.15)),
                           "k": number(7, "median support size")},
                  verdict="partly reproduced", profile="smoke", runtime_s=12.5)
    write_results(out, "04_robustness", "Robustness",
                  claims={"C6c": claim("not reproduced", "No gain.", "delta")},
                  numbers={"delta": number(-0.004, "accuracy change", ci=(-0.01, 0.002),
                                           unit="pp")},
                  verdict="not reproduced", profile="smoke")
    (out / "runtimes.json").write_text(json.dumps({"01_single_model": {"runtime_s": 3.2,
                                                                       "status": "ok"}}))
    return out


def _executed(d: Path, stem: str, verdict_heading: str | None) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {stem}")]
    if verdict_heading:
        nb.cells.append(nbformat.v4.new_markdown_cell(f"## {verdict_heading}\n\ntext"))
    d.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, d / f"{stem}.ipynb")


def test_number_formatting() -> None:
    assert bb.fmt(0.12345) == "0.123"
    assert bb.fmt(7.0) == "7"
    assert bb.fmt(12345.6) == "12346"
    assert bb.fmt(None) == "n/a"
    assert bb.format_number({"value": 0.5, "ci": [0.4, 0.6], "unit": "pp"}) == "0.5 pp [0.4, 0.6]"
    assert bb.format_number({"value": 0.5, "ci": None}) == "0.5"
    assert bb.md_cell("a | b\nc") == "a \\| b c"


def test_load_results_ignores_other_json(tmp_path: Path) -> None:
    res = bb.load_results(_results(tmp_path))
    assert list(res) == ["01_single_model", "04_robustness"]


def test_claims_page_rows_and_links(tmp_path: Path) -> None:
    res = bb.load_results(_results(tmp_path / "out"))
    executed = tmp_path / "executed"
    _executed(executed, "01_single_model", "Verdict: what the numbers say")
    _executed(executed, "04_robustness", None)
    page = bb.claims_page(res, executed, "smoke", ["01_single_model", "04_robustness"])
    rows = {line.split("|")[1].strip(): line for line in page.splitlines()
            if line.startswith("| C")}
    assert set(rows) == set(bb.CLAIMS)
    assert "**partly reproduced**" in rows["C1"] and "0.123 [0.1, 0.15]" in rows["C1"]
    assert "Sparse \\| but weaker" in rows["C1"]  # pipes escaped inside the table
    assert "(../executed/01_single_model.ipynb#verdict-what-the-numbers-say)" in rows["C1"]
    assert "(../executed/04_robustness.ipynb)" in rows["C6c"]  # no verdict heading: page link
    assert "-0.004 pp [-0.01, 0.002]" in rows["C6c"]
    assert "*no result*" in rows["C2"] and "*no result*" in rows["C5"]
    assert "**not testable here** | n/a" in rows["C6a"]
    assert "smoke" in page and "## All reported numbers" in page


def test_claims_page_flags_missing_results(tmp_path: Path) -> None:
    res = bb.load_results(_results(tmp_path))
    page = bb.claims_page(res, tmp_path, "smoke", ["01_single_model", "02_cross_model"])
    assert "No result file for: 02_cross_model" in page


def test_headings_skip_code_fences(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("```\n## Verdict in code\n```\n## Verdict\n#tag")]
    nbformat.write(nb, tmp_path / "x.ipynb")
    assert bb.headings(tmp_path / "x.ipynb") == [(2, "Verdict")]


def test_reproducibility_page(tmp_path: Path, data_root: Path) -> None:
    from neudep_utils.cache import entry_dir
    from neudep_utils.data import scan_folder
    from neudep_utils.study import Extraction

    digest = scan_folder(data_root / "imagenet-val").digest
    key = bb.expected_key(Extraction("efficientnet_lite0", "imagenet-val", 0))
    assert key.manifest_digest == digest and key.views["n_aug"] == 0
    entry = entry_dir(key, tmp_path / "cache")
    entry.mkdir(parents=True)
    (entry / "meta.json").write_text(json.dumps({
        "key": key.as_dict(), "data_sha256": "f" * 64, "n_images": 1000,
        "created": "2025-01-01T00:00:00"}))
    out = _results(tmp_path / "out")
    page = bb.reproducibility_page("smoke", out, tmp_path / "cache", data_root)
    assert f"`efficientnet_lite0/{key.digest[:16]}` | `ffffffffffffffff` | 1000 |" in page
    assert f"`{digest}`" in page
    assert "| `imagenet-sample` | wnid |" in page and "| missing (" in page  # no entry for it
    assert "| 01_single_model | ok | 3.2 |" in page
    assert "`torch` |" in page


def test_discover_and_parse(tmp_path: Path) -> None:
    for name in ("01_a.ipynb", "02_b.ipynb", "x_scratch.ipynb"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in rn.discover(tmp_path)] == ["01_a.ipynb", "02_b.ipynb"]
    assert [p.name for p in rn.discover(tmp_path, ["02"])] == ["02_b.ipynb"]
    with pytest.raises(SystemExit):
        rn.discover(tmp_path, ["07"])
    assert rn.parse_value("0.05") == 0.05 and rn.parse_value("[1, 2]") == [1, 2]
    assert rn.parse_value("resnet50") == "resnet50"


def _notebook(path: Path, body: str) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = "default"\noutput_dir = "../outputs/default"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# t"), params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)


def test_runner_executes_skips_and_names_failures(tmp_path: Path, capsys) -> None:
    nbdir, executed, out = tmp_path / "notebooks", tmp_path / "executed", tmp_path / "out"
    nbdir.mkdir()
    _notebook(nbdir / "01_ok.ipynb",
              "from neudep_utils.report import write_results\n"
              "write_results(output_dir, '01_ok', 'ok', {}, {}, 'reproduced', profile=profile)")
    args = ["--profile", "smoke", "--output-dir", str(out), "--notebook-dir", str(nbdir),
            "--executed-dir", str(executed)]
    assert rn.main(args) == 0
    assert (executed / "01_ok.ipynb").is_file() and (out / "01_ok.json").is_file()
    first = json.loads((out / "runtimes.json").read_text())["01_ok"]
    assert first["status"] == "ok" and first["runtime_s"] > 0
    assert json.loads((out / "01_ok.json").read_text())["profile"] == "smoke"

    (executed / "01_ok.ipynb").unlink()  # an unchanged notebook is restored, not rerun
    assert rn.main(args) == 0
    assert "skipped" in capsys.readouterr().out
    assert (executed / "01_ok.ipynb").is_file()
    assert json.loads((out / "runtimes.json").read_text())["01_ok"] == first

    _notebook(nbdir / "02_bad.ipynb", "raise ValueError('boom')")
    assert rn.main(args) == 1
    err = capsys.readouterr().err
    assert "02_bad.ipynb failed at cell" in err and "ValueError: boom" in err
    assert json.loads((out / "runtimes.json").read_text())["02_bad"]["status"] == "failed"
