"""The CovLasso benchmark table has one home (benchmarks/results/covlasso.md) that the book
includes; the README links the book's performance page instead of copying it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "covlasso.md"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_covlasso",
                                                  REPO / "benchmarks" / "bench_covlasso.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def test_readme_links_the_results_instead_of_copying_them():
    bench = _bench()
    readme = (REPO / "README.md").read_text()
    assert "covlasso-benchmark" not in readme and "| matrix | lam / lam_max |" not in readme
    assert not hasattr(bench, "update_readme")  # nothing writes a README block any more
    assert "](book/performance.md)" in readme


def test_book_page_includes_the_results_file():
    page = (REPO / "book" / "performance.md").read_text()
    assert "```{include} ../benchmarks/results/covlasso.md" in page
    assert "- file: performance" in (REPO / "book" / "_toc.yml").read_text()
    assert not (REPO / "docs_fragments").exists()
