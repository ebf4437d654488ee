"""Fast tests of the book's page generator (neudep_utils.report.pages, run by
scripts/book_pages.py) and runner (scripts/run_notebooks.py) on synthetic results files and tiny
notebooks."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

from neudep_utils import verdicts
from neudep_utils.covlasso import api
from neudep_utils.profiles import get_profile
from neudep_utils.record import claim, number, write_results
from neudep_utils.report import atlas, readme, reproducibility
from neudep_utils.report import pages as bp

REPO = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


rn = _load("run_notebooks")

ENTRY = {"model": "efficientnet_lite0", "folder": "/data/imagenet-val", "views": 2,
         "mode": "full", "corruption": None, "n_images": 1000, "key_digest": "ab" * 32,
         "manifest_digest": "cd" * 32, "weights_sha256": "ef" * 32,
         "entry": "efficientnet_lite0/abababababababab", "data_sha256": "12" * 32, "top1": 0.84,
         "engine": "onnxruntime 1.32.0; opset 18"}


def _verdict(cid: str, level: str) -> verdicts.Verdict:
    return verdicts.Verdict(cid, level, "a rule", "a reason")


def _results(out: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    class _Input:  # anything with the provenance records of its cache entries
        provenance = (ENTRY, ENTRY)

    write_results(out, "01_single_model", "Single-model dependencies",
                  claims={"C1": claim(_verdict("C1", "partly reproduced"),
                                      "Sparse | but weaker", "rel_res", ["efficientnet_lite0"],
                                      "verdict-01", reference="k"),
                          "C6a": claim(_verdict("C6a", "not testable here"), "No ground truth.")},
                  numbers={"rel_res": number(0.12345, "relative residual, held-out images; "
                                             "pooled", ci=(0.1, 0.15)),
                           "k": number(7, "median support size", short="support")},
                  profile="smoke", runtime_s=12.5, inputs=[_Input()])
    write_results(out, "04_robustness", "Robustness",
                  claims={"C6c": claim(_verdict("C6c", "partly reproduced"), "No gain.", "delta",
                                       reference="base", second="bias")},
                  numbers={"delta": number(-0.004, "accuracy change", ci=(-0.01, 0.002),
                                           unit="pp", short="gain"),
                           "base": number(0.5, "top-1 of the head", unit="fraction",
                                          short="unmodified"),
                           "bias": number(0.25, "shape bias", unit="fraction")},
                  profile="smoke")
    (out / "runtimes.json").write_text(json.dumps({"01_single_model": {"runtime_s": 3.2,
                                                                       "status": "ok"}}))
    return out


def test_number_formatting() -> None:
    assert readme.fmt(0.12345) == "0.123"
    assert readme.fmt(7.0) == "7"
    assert readme.fmt(12345.6) == "12346"
    assert readme.fmt(None) == "n/a"
    assert readme.format_number({"value": 0.5, "ci": [0.4, 0.6], "unit": "pp"}) == "0.5 pp [0.4, 0.6]"
    assert readme.format_number({"value": 0.5, "ci": None}) == "0.5"
    assert readme.format_number({"value": 0.123, "ci": [0.1, 0.15], "unit": "fraction"}) == \
        "12.3% [10%, 15%]"
    n = number(0.5, "x", ci=(0.4, 0.6), seeds=[0.5, 0.45, 0.55])
    assert n["seeds"]["min"] == 0.45 and n["seeds"]["max"] == 0.55 and n["seeds"]["sd"] > 0
    assert readme.format_number(n) == "0.5 [0.4, 0.6]; 3 split seeds: 0.45 to 0.55"
    assert bp.md_cell("a | b\nc") == "a \\| b c"
    # a number without a short label is named by its definition's first clause, whole
    assert readme.label_of({"definition": "m, k = 10: accuracy kept; 95% CI"}) == \
        "m, k = 10: accuracy kept"
    long = ("efficientnet_lite0, CovLasso dependency at k = 10, out of sample: accuracy after "
            "replacement: on eval images of class i, is the image still classified i")
    assert readme.label_of({"definition": long}) == (
        "efficientnet_lite0, CovLasso dependency at k = 10, out of sample: accuracy after "
        "replacement")
    assert readme.label_of({"definition": long, "short": "kept"}) == "kept"
    assert readme.label_of({"definition": "kept at 20 (along the path; unmodified 0.86)"}) == \
        "kept at 20 (along the path; unmodified 0.86)"  # no clause ends inside parentheses
    # the claims table: percentages to 0.1, a small non-zero value never shown as 0
    assert [readme.pct(v) for v in (0.0123, 0.75, 0.00042, 0.0, 0.861)] == [
        "1.2%", "75%", "0.042%", "0%", "86.1%"]


def test_results_carry_verdicts_and_provenance(tmp_path: Path, monkeypatch) -> None:
    res = readme.load_results(_results(tmp_path, monkeypatch))
    assert list(res) == ["01_single_model", "04_robustness"]
    r = res["01_single_model"]
    # the notebook's verdict is the weakest testable claim's (C6a is not testable here)
    assert r["verdict"] == "partly reproduced"
    assert r["claims"]["C1"]["tested_on"] == ["efficientnet_lite0"]
    assert r["provenance"]["cache_entries"] == [ENTRY]
    assert res["04_robustness"]["provenance"]["cache_entries"] == []


def test_claim_list_is_the_package_list() -> None:
    text = bp.claim_list()
    for c in verdicts.CLAIMS.values():
        assert f"{c.cid} {c.name}" in text and c.statement in text


def _pages(tmp_path: Path, monkeypatch) -> tuple[dict, dict]:
    res = readme.load_results(_results(tmp_path / "out", monkeypatch))
    return res, readme.summarize(res, "smoke")


def test_claims_page_rows_and_links(tmp_path: Path, monkeypatch) -> None:
    res, summary = _pages(tmp_path, monkeypatch)
    page = bp.claims_page(res, summary, "smoke", ["01_single_model", "04_robustness"])
    rows = {line.split("|")[1].strip().split()[0]: line for line in page.splitlines()
            if line.startswith("| C")}
    assert set(rows) == set(verdicts.CLAIMS)
    # the headline (named by its definition's first clause, whole) beside its reference
    assert ("| relative residual, held-out images: **0.123** [0.1, 0.15] vs support: 7 |"
            in rows["C1"])
    assert "**partly reproduced**" in rows["C1"]
    assert "| {ref}`1 <models>` |" in rows["C1"]  # the model count, linked to the list
    assert "{ref}`notebook 01 <verdict-01>`" in rows["C1"]
    assert "{doc}`notebook 04 </executed/04_robustness>`" in rows["C6c"]  # no label
    # a rule with two parts: the headline beside its reference, then the second number
    assert ("gain: **-0.004 pp** [-0.01, 0.002] vs unmodified: 50% <br> shape bias: **25%**"
            in rows["C6c"])
    assert "*no result*" in rows["C2"] and "*no result*" in rows["C5"]
    assert "**not testable here**" in rows["C6a"]
    assert "…" not in page and "..." not in "".join(rows.values())  # nothing truncated
    # each claim's section: the paper's statement, the summary, the numbers in full, the rule
    assert "### C1 single-model dependency" in page and "Sparse | but weaker" in page
    assert "*Read against* (`k`): 7; median support size." in page
    assert "*Second part* (`bias`): 25%; shape bias." in page
    assert verdicts.CLAIMS["C5"].statement in page and "*Rule:* a rule" in page
    assert "smoke" in page and "{ref}`all-numbers`" in page
    assert "## All reported numbers" not in page  # the dump has its own appendix page
    numbers = bp.numbers_page(res, "smoke")
    assert "(all-numbers)=" in numbers
    assert "- `rel_res` = **0.123 [0.1, 0.15]**: relative residual, held-out images; pooled" \
        in numbers
    assert "- `delta` = **-0.004 pp [-0.01, 0.002]**: accuracy change" in numbers
    assert 'class="print-only"' in numbers and ":::{div} print-hide" in numbers


def test_record_refuses_a_reference_that_is_not_a_number(tmp_path: Path) -> None:
    v = _verdict("C1", "reproduced")
    with pytest.raises(ValueError, match=r"reference 'nope' is not in numbers"):
        write_results(tmp_path, "01_x", "x", {"C1": claim(v, "s", "a", reference="nope")},
                      {"a": number(1, "a")})
    with pytest.raises(ValueError, match=r"second 'b' is not in numbers"):
        write_results(tmp_path, "01_x", "x", {"C1": claim(v, "s", "a", second="b")},
                      {"a": number(1, "a")})


def test_answer_paragraph_comes_from_the_summary(tmp_path: Path, monkeypatch) -> None:
    res, summary = _pages(tmp_path, monkeypatch)
    text = readme.answer(summary)
    assert text.startswith("Of the paper's 8 claims, this study **partly reproduces 2** "
                           "(C1, C6c) and **cannot test 1** (C6a).")
    assert ("The paper's first claim, C1 (single-model dependency), is **partly reproduced**: "
            "relative residual, held-out images: **0.123** [0.1, 0.15] vs support: 7.") in text
    # the scope: the models and the images (per folder of the profile, from the provenance)
    assert "[1 small ImageNet-1k classifier](#models) (1 CNN) on 1,000 labelled ImageNet " \
           "images (about 1 per class)" in text
    page = bp.answer_page(summary, "generated/claims_summary.png", "alt")
    assert page.index("Of the paper's") < page.index("| claim |") < page.index("```{figure}")
    assert "{ref}`1 small ImageNet-1k classifier <models>`" in page


def test_models_page_lists_the_profile(monkeypatch) -> None:
    page = bp.models_page("default")
    for m in get_profile("default").models:
        assert f"| `{readme.short(m)}`" in page
    assert "| `lite0` | CNN | efficientnet | 1280 |" in page
    # the transformer, with its registry note, and the sentence that says C2's comparison runs
    assert "| `vit_ti16` (ImageNet-21k pretrained, 1k fine-tuned) | transformer | vit | 192 |" \
        in page
    assert "(vit_ti16) makes the paper's CNN-versus-transformer comparison (C2) testable " \
           "offline" in page
    assert "No model list" in bp.models_page("nosuch")


def test_landing_page_places_the_headline_figure(tmp_path: Path, monkeypatch) -> None:
    res, summary = _pages(tmp_path, monkeypatch)
    page = bp.answer_page(summary, "generated/claims_summary.png", "alt | text")
    block = page.split("```{figure} generated/claims_summary.png", 1)[1].split("```", 1)[0]
    assert ":name: fig-answer" in block and ":alt: alt \\| text" in block
    assert "{numref}`fig-answer`" in bp.claims_page(res, summary, "smoke")


def test_atlas_data_and_page(tmp_path: Path) -> None:
    rec = {"model": "lite0", "class": 88, "wnid": "n01818515", "name": "macaw", "k": 10,
           "partners": [[89, 0.25, 2], [90, -0.1, 3]], "r2": 0.5, "acc_kept": 0.75,
           "acc_original": 1.0, "ap": 0.4, "ap_original": 0.9, "n_images": 4}
    res = {"01_single_model": {"claims": {}, "atlas": [dict(rec, k=50), rec,
                                                       dict(rec, model="mobilenet")]}}
    rows = atlas.atlas_rows(res)
    assert list(rows) == ["lite0", "mobilenet"]
    assert [r[1] for r in rows["lite0"]] == [10, 50]  # sorted by class, then k
    assert rows["lite0"][0] == [88, 10, [[89, 0.25, 2], [90, -0.1, 3]], 0.5, 0.75, 1.0, 0.4,
                                0.9, 4]
    (tmp_path / "atlas_gone.js").write_text("stale")
    files = atlas.write_atlas(res, tmp_path)
    assert sorted(p.name for p in files) == ["atlas_classes.js", "atlas_lite0.js",
                                             "atlas_mobilenet.js"]
    assert not (tmp_path / "atlas_gone.js").exists()
    text = (tmp_path / "atlas_lite0.js").read_text()
    payload = json.loads(text[len("window.neudepAtlasAdd("):-len(");\n")])
    assert payload["fields"] == list(atlas.FIELDS) and payload["rows"] == rows["lite0"]
    classes = json.loads((tmp_path / "atlas_classes.js").read_text()
                         [len("window.neudepAtlasClasses("):-len(");\n")])
    assert len(classes) == 1000 and classes[88] == ["macaw", "n01818515"]
    page = atlas.atlas_page(res, "smoke")
    assert 'data-models="lite0 mobilenet"' in page and "atlas_mobilenet.js" in page
    assert '<option value="50">50</option>' in page and "(atlas)=" in page
    assert "No results file" in atlas.atlas_page({}, "smoke")


def test_atlas_page_escapes_model_names(tmp_path: Path) -> None:
    """Issue 30 case 29: a model name with HTML in it is not written into the page's HTML."""
    rec = {"model": 'x"><script>alert(1)</script>', "class": 88, "k": 10, "partners": [],
           "r2": 0.5, "acc_kept": 1.0, "acc_original": 1.0, "ap": 0.4, "ap_original": 0.9,
           "n_images": 2}
    res = {"01_single_model": {"claims": {}, "atlas": [rec]}}
    page = atlas.atlas_page(res, "smoke")
    assert "<script>" not in page and 'x">' not in page
    assert 'data-models="x___script_alert_1___script_"' in page
    assert '<option value="x___script_alert_1___script_">' in page
    files = atlas.write_atlas(res, tmp_path)
    assert [p.name for p in files] == ["atlas_classes.js", "atlas_x___script_alert_1___script_.js"]
    assert "<script>" not in files[1].read_text()


def test_title_page_lists_every_claim(tmp_path: Path, monkeypatch) -> None:
    _, summary = _pages(tmp_path, monkeypatch)
    page = bp.title_page(summary, "smoke")
    assert 'class="print-only title-page"' in page and "Profile <b>smoke</b>" in page
    for cid in verdicts.CLAIMS:
        assert f"<td>{cid} " in page
    assert "<b>partly reproduced</b>" in page and "<b>no result</b>" in page
    assert 'href="https://arxiv.org/abs/2211.12339"' in page


def test_claims_page_flags_missing_results(tmp_path: Path, monkeypatch) -> None:
    res, summary = _pages(tmp_path, monkeypatch)
    page = bp.claims_page(res, summary, "smoke", ["01_single_model", "02_cross_model"])
    assert "No results file for: 02_cross_model" in page


def test_reproducibility_page_from_provenance(tmp_path: Path, monkeypatch) -> None:
    out = _results(tmp_path / "out", monkeypatch)
    data = tmp_path / "data"
    data.mkdir()
    (data / "MANIFEST.sha256").write_text("x  a.jpg\n")
    page = reproducibility.reproducibility_page("smoke", readme.load_results(out), out, data,
                                                REPO)
    assert "| `efficientnet_lite0` | `imagenet-val` | 2 | none | 1000 | 01 |" in page
    assert "Every entry was extracted by onnxruntime 1.32.0; opset 18." in page
    assert "| `efficientnet_lite0/\u200babababababababab` | `cdcdcdcdcdcdcdcd` | " \
           "`1212121212121212` |" in page
    assert f"| `efficientnet_lite0` | `{'ef' * 32}` |" in page
    assert "| 01_single_model | ok | 3 |" in page
    assert "`torch` |" in page and "MANIFEST.sha256" in page
    assert str(tmp_path) not in page  # no path of the build machine
    assert "No stage times" in page and "no per-section times" in page


def test_reproducibility_page_shows_every_stage_time(tmp_path: Path, monkeypatch) -> None:
    """make book's stages.txt and the sections.json of the output folder, when present, are
    shown; a damaged line or file is skipped, not fatal."""
    out = _results(tmp_path / "out", monkeypatch)
    stages = tmp_path / "stages.txt"
    stages.write_text("logits 120\nnotebooks 600\ngarbage\n")
    (out / "sections.json").write_text(json.dumps(  # the shape neudep_utils.timing writes
        {"01_single_model": [{"name": "set-up", "seconds": 3.5, "cpu_s": 3.0, "work": {}},
                             {"name": "CovLasso fits", "seconds": 40.25}],
         "02_cross_model": {"load": 2}}))
    extraction = tmp_path / "extraction.json"
    extraction.write_text(json.dumps({"jobs": 2, "wall_s": 30, "entries": [
        {"model": "efficientnet_lite0", "folder": "imagenet-val", "seconds": 12.5,
         "computed": True}, {"model": "efficientnet_lite0", "seconds": 0.5, "computed": False},
        {"model": "mobilenet_v1_075", "seconds": 7, "computed": True}, "junk"]}))
    page = reproducibility.reproducibility_page("smoke", readme.load_results(out), out, None,
                                                REPO, stages, extraction)
    assert "| logits | 120 | 2.0 |" in page and "| notebooks | 600 | 10.0 |" in page
    assert "| total so far | 720 | 12.0 |" in page  # html renders after the page
    assert "| 01_single_model / set-up | 3.5 |" in page
    assert "| 01_single_model / CovLasso fits | 40.2 |" in page
    assert "| 02_cross_model / load | 2 |" in page
    assert "| `efficientnet_lite0` | 13 | 2 (1) |" in page
    assert "| `mobilenet_v1_075` | 7 | 1 (1) |" in page
    (out / "sections.json").write_text("{not json")
    extraction.write_text("[1, 2]")
    page = reproducibility.reproducibility_page("smoke", readme.load_results(out), out, None,
                                                REPO, tmp_path / "missing.txt", extraction)
    assert "no per-section times" in page and "No stage times" in page
    assert "no extraction times per model" in page


def test_truncated_results_file_is_one_error_line(tmp_path: Path, capsys) -> None:
    """Issue 30 case 17: a truncated results JSON ends the page builder with one error line
    naming the file and the fix (exit 2), not a traceback; a file without claims too."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "01_single_model.json").write_text('{"notebook": "01_single_model", "claims": {')
    args = ["--profile", "smoke", "--output-dir", str(out), "--book", str(tmp_path / "book"),
            "--readme", "no"]
    assert bp.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: results file ") and "01_single_model.json" in err
    assert "--only 01 --force" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    (out / "01_single_model.json").write_text("[1, 2]")
    assert bp.main(args) == 2
    assert "is not a notebook results file" in capsys.readouterr().err
    assert not (tmp_path / "book" / "generated").exists()  # nothing half-written


def test_page_builder_script_is_a_thin_entry_point(tmp_path: Path) -> None:
    """scripts/book_pages.py: under 60 lines, no sys.path edit; it runs the package's pages
    command (here on a damaged results file: the package's error line, exit 2)."""
    src = (REPO / "scripts" / "book_pages.py").read_text()
    assert len(src.splitlines()) < 60 and "sys.path" not in src and "noqa" not in src
    out = tmp_path / "out"
    out.mkdir()
    (out / "01_a.json").write_text("{")
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "book_pages.py"),
                           "--output-dir", str(out), "--book", str(tmp_path / "book"),
                           "--readme", "no"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: results file ")


def test_make_pdf_without_chromium_fails_before_building(tmp_path: Path) -> None:
    """Issue 30 case 28: `make pdf` with no usable chromium says so (one error line, naming
    the fix) before it builds anything: no logits, no notebooks, no book."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("make not installed")
    proc = subprocess.run(
        [make, "-C", str(REPO), "pdf", "CHROMIUM=/nonexistent/chromium", "PROFILE=smoke",
         "PYTHON=/bin/false", f"VENV={tmp_path / 'venv'}", f"OUTPUT_DIR={tmp_path / 'out'}"],
        capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "error: CHROMIUM=/nonexistent/chromium is not an executable" in proc.stderr
    assert "system-deps" in proc.stderr  # the fix
    for stage in ("neudep_utils logits", "run_notebooks", "jupyter-book", "python3.11"):
        assert stage not in out, f"`make pdf` started {stage!r} before finding chromium"
    assert not (tmp_path / "venv").exists() and not (tmp_path / "out").exists()


def test_write_if_changed_ignores_volatile_lines(tmp_path: Path) -> None:
    p = tmp_path / "page.md"
    assert bp.write_if_changed(p, "| built | 1 |\nbody", volatile="| built |")
    assert not bp.write_if_changed(p, "| built | 2 |\nbody", volatile="| built |")
    assert bp.write_if_changed(p, "| built | 2 |\nnew body", volatile="| built |")


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


def test_runner_executes_skips_and_names_failures(tmp_path: Path, capfd) -> None:
    nbdir, executed, out = tmp_path / "notebooks", tmp_path / "executed", tmp_path / "out"
    nbdir.mkdir()
    _notebook(nbdir / "01_ok.ipynb",
              "from neudep_utils.record import write_results\n"
              "write_results(output_dir, '01_ok', 'ok', {}, {}, profile=profile)")
    args = ["--profile", "smoke", "--output-dir", str(out), "--notebook-dir", str(nbdir),
            "--executed-dir", str(executed)]
    assert rn.main(args) == 0
    err = capfd.readouterr().err  # fd-level: the kernel's own stderr included
    assert "Executing" in err and "cell/s" in err  # papermill's progress bar, on by default
    assert "TCP without encryption" not in err  # the kernel talks over IPC sockets
    assert (executed / "01_ok.ipynb").is_file() and (out / "01_ok.json").is_file()
    first = json.loads((out / "runtimes.json").read_text())["01_ok"]
    assert first["status"] == "ok" and first["runtime_s"] > 0
    assert json.loads((out / "01_ok.json").read_text())["profile"] == "smoke"

    (executed / "01_ok.ipynb").unlink()  # an unchanged notebook is restored, not rerun
    assert rn.main(args) == 0
    assert "skipped" in capfd.readouterr().out
    assert (executed / "01_ok.ipynb").is_file()
    assert json.loads((out / "runtimes.json").read_text())["01_ok"] == first

    _notebook(nbdir / "02_bad.ipynb", "raise ValueError('boom')")
    assert rn.main(args + ["--quiet"]) == 1
    err = capfd.readouterr().err
    assert "Executing" not in err  # --quiet: no progress bar
    assert "02_bad.ipynb failed at cell" in err and "ValueError: boom" in err
    assert "TCP without encryption" not in err  # the kernel talks over IPC sockets
    assert json.loads((out / "runtimes.json").read_text())["02_bad"]["status"] == "failed"


def test_compile_note_only_before_a_cold_compile(monkeypatch, capsys) -> None:
    for cold, expected in ((True, 1), (False, 0)):
        monkeypatch.setattr(api, "_compile_checked", False)
        monkeypatch.setattr(api, "kernels_cold", lambda cold=cold: cold)
        S = np.eye(4) + 0.5
        api.solve(S, 0.1, [0])
        api.solve(S, 0.1, [1])  # once per process
        assert capsys.readouterr().err.count(api._COMPILE_NOTE) == expected
    # in this process the kernels have run: nothing left to compile
    assert api.kernels_cold() is False


def test_runner_compile_note_follows_the_numba_cache(monkeypatch) -> None:
    monkeypatch.setattr(api, "kernels_cold", lambda: True)
    assert rn.compile_note() == "compiling the CovLasso kernels (once per install, ~30 s)"
    monkeypatch.setattr(api, "kernels_cold", lambda: False)
    assert rn.compile_note() == ""


def test_executed_copies_show_each_progress_bar_once(tmp_path: Path) -> None:
    """tqdm redraws with carriage returns, one stream output per redraw; the book's copy keeps
    the final state of each line, and drops bars that cleared themselves."""
    sys.path.insert(0, str(REPO / "scripts"))
    import run_notebooks  # noqa: PLC0415 - after sys.path

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text=t) for t in
                    ("\rfit:   0%| 0/3", "\rfit:  33%| 1/3", "\rfit: 100%| 3/3\n")]
    cell.outputs += [nbformat.v4.new_output("stream", name="stdout", text="done\n"),
                     nbformat.v4.new_output("stream", name="stderr", text="\rbar 1/2"),
                     nbformat.v4.new_output("stream", name="stderr", text="\r        \r")]
    nb.cells = [cell]
    p = tmp_path / "n.ipynb"
    nbformat.write(nb, str(p))
    run_notebooks.collapse_progress(p)
    outs = nbformat.read(str(p), as_version=4).cells[0].outputs
    assert [(o.name, o.text) for o in outs] == [("stderr", "fit: 100%| 3/3\n"),
                                                ("stdout", "done\n")]


@pytest.mark.slow  # three kernels in two worker processes: CI's make test-slow
def test_runner_jobs_side_by_side_and_02_after_01(tmp_path: Path) -> None:
    """With --jobs 2, notebook 03 runs beside 01 (01 waits for a file 03 writes: with one job
    it would never see it) and 02 starts only after 01 has finished (it reads 01's marker)."""
    nbdir, out = tmp_path / "notebooks", tmp_path / "out"
    nbdir.mkdir()
    head = ("import pathlib, time\nfrom neudep_utils.record import write_results\n"
            "p = pathlib.Path(output_dir)\np.mkdir(parents=True, exist_ok=True)\n")
    done = "write_results(output_dir, '{}', 't', {{}}, {{}}, profile=profile)"
    _notebook(nbdir / "01_a.ipynb", head + "end = time.time() + 600\n"
              "while not (p / '03.started').exists() and time.time() < end:\n"
              "    time.sleep(0.05)\nassert (p / '03.started').exists()\n"
              "(p / '01.done').write_text('x')\n" + done.format("01_a"))
    _notebook(nbdir / "02_b.ipynb", head + "assert (p / '01.done').exists()\n"
              + done.format("02_b"))
    _notebook(nbdir / "03_c.ipynb", head + "(p / '03.started').write_text('x')\n"
              + done.format("03_c"))
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "run_notebooks.py"), "--profile",
                        "smoke", "--output-dir", str(out), "--notebook-dir", str(nbdir),
                        "--executed-dir", str(tmp_path / "executed"), "--jobs", "2"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    rt = json.loads((out / "runtimes.json").read_text())
    assert {k: v["status"] for k, v in rt.items()} == {"01_a": "ok", "02_b": "ok", "03_c": "ok"}
