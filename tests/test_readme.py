"""The README leads with the findings, written by the build: its verdict table is the one the
committed default-profile summary gives, its figure is committed, it stays short, and the manuals
it no longer holds are book pages with their facts intact."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from neudep_utils import verdicts
from neudep_utils.record import claim, number, write_results
from neudep_utils.report import readme
from neudep_utils.report.claims_figure import claims_figure, describe

REPO = Path(__file__).resolve().parents[1]
STATIC = REPO / "book" / "_static"
README = REPO / "README.md"


def test_readme_is_short_and_results_first() -> None:
    """The README opens with the answer (a paragraph with the numbers, before the table), then
    the table and the figure; then the commands, each with its time, smoke first."""
    text = README.read_text()
    data = text.encode()
    assert len(data) <= 9000, f"README.md is {len(data)} bytes; keep it <= 9000"
    start, end = data.find(readme.START.encode()), data.find(readme.END.encode())
    assert 0 <= start < end, "the README has no build-written block"
    block = text[text.index(readme.START):text.index(readme.END)]
    first_row = block.index("| claim |")
    assert 0 < block.index("Of the paper's") < first_row, "the answer must precede the table"
    assert data.find(b"| claim |") <= 3000, "the claims table must sit in the first 3000 bytes"
    assert block.index("](book/_static/summary.png)") > first_row
    run = text[text.index("## Run it"):]
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(make [^`]+)` \|.*\| ([^|]+) \|$",
                                                          run, re.M)}
    assert {"make book PROFILE=smoke", "make test", "make book", "make pdf"} <= set(rows)
    assert run.index("`make book PROFILE=smoke`") < run.index("`make test`") < \
        run.index("| `make book` |"), "propose the smoke build first"
    for cmd in ("make book PROFILE=smoke", "make test", "make book"):
        assert re.search(r"\d+ min", rows[cmd]), f"state the time of {cmd}"


def test_committed_table_is_the_committed_summary() -> None:
    summary = json.loads((STATIC / "default_summary.json").read_text())
    assert summary["profile"] == "default"
    assert {c["cid"] for c in summary["claims"]} == set(verdicts.CLAIMS)
    table = readme.readme_block(summary)
    assert (STATIC / "readme_verdicts.md").read_text() == table, (
        "book/_static/readme_verdicts.md is not the block of default_summary.json; rebuild with "
        "`make book` (python -m neudep_utils.report.pages writes both)")
    text = README.read_text()
    block = text.split(readme.START, 1)[1].split(readme.END, 1)[0]
    assert block == "\n" + table, "README's verdict block differs from readme_verdicts.md"
    for c in summary["claims"]:
        assert f"| {c['cid']} " in table
    assert "…" not in table  # nothing truncated


def test_committed_figure_is_a_png() -> None:
    png = (STATIC / "summary.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_readme_links_resolve() -> None:
    for target in re.findall(r"\]\(([^)#]+)\)", README.read_text()):
        if "://" not in target:
            assert (REPO / target).exists(), f"README links to missing {target}"


def test_environment_facts_stay_in_the_book() -> None:
    page = (REPO / "book" / "environment.md").read_text()
    pyproject = (REPO / "pyproject.toml").read_text()
    for fact in ("Python 3.11", "torch==2.14.1", "torchvision==0.29.1", "jupyter-book<2",
                 "offline", "2 CPU"):
        assert fact in page, f"book/environment.md lost the fact {fact!r}"
    # the page's pins are the project's pins
    for pin in re.findall(r"`(torch(?:vision)?==[0-9.]+)`", page):
        assert f'"{pin}"' in pyproject, f"{pin} is not pinned in pyproject.toml"
    assert '"jupyter-book>=1.0,<2"' in pyproject
    toc = (REPO / "book" / "_toc.yml").read_text()
    for name in ("environment", "cache", "generated/atlas", "generated/numbers"):
        assert f"- file: {name}" in toc


def _results(out: Path) -> dict:
    v = verdicts.Verdict("C1", "partly reproduced", "a rule", "a reason")
    curves = [{"model": "lite0", "method": m, "k_requested": k, "k": k, "acc_replaced": a,
               "acc_base": 0.8, "relres_median": 0.1}
              for m, acc in (("CovLasso support + LS", (0.5, 0.7)), ("random + LS", (0.1, 0.3)),
                             ("top-|corr| + LS", (0.4, 0.6)))
              for k, a in zip((3, 10), acc, strict=True)]
    curves.append({"model": "lite0", "method": "dense LS", "k_requested": None, "k": 999,
                   "acc_replaced": 0.8, "acc_base": 0.8, "relres_median": 0.0})
    write_results(out, "01_single_model", "Single",
                  claims={"C1": claim(v, "s", "acc", ["efficientnet_lite0"], "verdict-01")},
                  numbers={"acc": number(0.7, "target-class accuracy kept; on held-out images",
                                         ci=(0.6, 0.8), unit="fraction"),
                           "gap": number(1e-10, "largest relative gap", unit="")},
                  profile="default", extra={"curves": curves})
    cross = [{"pair": "lite0->lite1", "config": c, "method": "CovLasso support + LS",
              "k_requested": 10, "k": 10, "acc_replaced": 0.6, "acc_base": 0.8,
              "relres_median": 0.2} for c in ("with same", "without same")]
    v2 = verdicts.Verdict("C2", "not reproduced", "r", "w")
    write_results(out, "02_cross_model", "Cross", claims={"C2": claim(v2, "s", None, [])},
                  numbers={}, profile="default", extra={"curves": cross})
    return readme.load_results(out)


def test_summary_table_and_splice(tmp_path: Path) -> None:
    s = readme.summarize(_results(tmp_path), "default")
    json.dumps(s)  # JSON-safe
    by = {c["cid"]: c for c in s["claims"]}
    assert set(by) == set(verdicts.CLAIMS)
    assert by["C1"]["tested_on"] == ["lite0"] and by["C1"]["headline"]["value"] == 0.7
    assert by["C5"]["verdict"] is None
    # curves: the dependency and random partners only, C2 without B's own category
    assert {r["method"] for r in s["curves"]["C1"]} == set(readme.curve_methods)
    assert len(s["curves"]["C1"]) == 4
    assert [r["model"] for r in s["curves"]["C2"]] == ["lite0->lite1"]
    table = readme.verdict_table(s)
    row = next(line for line in table.splitlines() if line.startswith("| C1 "))
    assert "**partly reproduced**" in row
    # what it measures (the definition's first clause, whole), value, unit and interval
    assert "| target-class accuracy kept: **70%** [60%, 80%] |" in row
    assert "| [1](#models) | [notebook 01](notebooks/01_single_model.ipynb) |" in row
    assert "*no result*" in next(x for x in table.splitlines() if x.startswith("| C5 "))
    text = f"intro\n{readme.START}\nold\n{readme.END}\nrest\n"
    assert readme.splice(text, table) == f"intro\n{readme.START}\n{table}{readme.END}\nrest\n"
    with pytest.raises(ValueError, match="markers"):
        readme.splice("no markers here", table)


def test_claims_figure_draws_the_curves(tmp_path: Path) -> None:
    s = readme.summarize(_results(tmp_path), "default")
    fig = claims_figure(s)
    c1, c2, strip = fig.axes[:3]
    ys = {ln.get_label(): list(ln.get_ydata()) for ln in c1.get_lines() if
          not ln.get_label().startswith("_")}
    assert ys["lite0: CovLasso dependency"] == [50.0, 70.0]
    assert ys["lite0: random partners"] == [10.0, 30.0]
    assert any(list(ln.get_ydata()) == [80.0, 80.0] for ln in c1.get_lines())  # unmodified
    assert len(c2.get_lines()) >= 2
    assert len(strip.patches) == len(verdicts.CLAIMS)
    assert "C1 partly reproduced" in describe(s)
    fig.savefig(tmp_path / "f.png")


def test_claims_figure_pools_many_pairs() -> None:
    rows = [{"model": f"p{i}", "method": m, "k_requested": k, "k": k, "acc_replaced": a,
             "acc_base": 0.8} for i in range(7)
            for m, a in (("CovLasso support + LS", 0.1 * i), ("random + LS", 0.0))
            for k in (1, 10)]
    s = {"profile": "default", "claims": [], "curves": {"C1": [], "C2": rows}}
    fig = claims_figure(s)
    labels = [ln.get_label() for ln in fig.axes[1].get_lines()]
    assert "CovLasso dependency: mean of 7, band: range" in labels
    dep = next(ln for ln in fig.axes[1].get_lines() if ln.get_label().startswith("CovLasso"))
    assert list(dep.get_ydata()) == pytest.approx([30.0, 30.0])  # mean of 0, 10, ..., 60 %
    assert "7 ordered model pairs" in describe(s)


def test_licence_and_citation() -> None:
    """The code's licence is the one pyproject declares; CITATION.cff cites the study with the
    paper as its reference, linked; the book links the paper too."""
    assert (REPO / "LICENSE").read_text().startswith("MIT License")
    assert 'license = { text = "MIT" }' in (REPO / "pyproject.toml").read_text()
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["license"] == "MIT"
    assert cff["title"].startswith("neudep") and cff["authors"]
    (paper,) = cff["references"]
    assert paper["url"] == "https://arxiv.org/abs/2211.12339" and paper["year"] == 2023
    assert paper["authors"][0]["family-names"] == "Feng"
    for page in (README, REPO / "book" / "intro.md"):
        assert "](https://arxiv.org/abs/2211.12339)" in page.read_text(), page
    assert "url       = {https://arxiv.org/abs/2211.12339}" in (
        REPO / "book" / "references.bib").read_text()


def test_deciding_numbers_are_named_by_their_model() -> None:
    """The claims table names whose number it shows (lite0's 86.1% is not the models' mean)."""
    models = ["lite0", "lite1", "mobilenet_v1_075", "mobilenet_v1_075_int8"]
    assert readme.whose({"name": "lite0_acc_base"}, models) == "lite0"
    assert readme.whose({"name": "mobilenet_v1_075_int8_acc_base"}, models) == (
        "mobilenet_v1_075_int8")
    assert readme.whose({"name": "lite0_from_lite1_disc_top1_k10"}, models) == "lite0 from lite1"
    assert readme.whose({"name": "oos_gain_K_small_to_full"}, models) == ""
    c = {"tested_on": models,
         "headline": {"name": "lite1_acc_kept", "short": "accuracy kept", "value": 0.01,
                      "unit": "fraction", "ci": None},
         "second": {"name": "lite0_x", "short": "lite0: x", "value": 2.0, "ci": None}}
    assert readme.deciding_text(c) == "lite1: accuracy kept: **1%** <br> lite0: x: **2**"
