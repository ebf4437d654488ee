"""The CovLasso benchmark table has one home (benchmarks/results/covlasso.md) that the book
includes; the README links the book's performance page instead of copying it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

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
    assert bench.BEGIN not in readme and "| matrix | lam / lam_max |" not in readme
    assert "](book/performance.md)" in readme


def test_book_page_includes_the_results_file():
    page = (REPO / "book" / "performance.md").read_text()
    assert "```{include} ../benchmarks/results/covlasso.md" in page
    assert "- file: performance" in (REPO / "book" / "_toc.yml").read_text()
    assert not (REPO / "docs_fragments").exists()


def test_update_readme_replaces_only_the_block(tmp_path):
    bench = _bench()
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{bench.BEGIN}\nold | table\n{bench.END}\noutro\n")
    bench.update_readme("| new |\n", readme)
    assert readme.read_text() == f"intro\n{bench.BEGIN}\n| new |\n{bench.END}\noutro\n"
    readme.write_text("no markers\n")
    with pytest.raises(SystemExit, match="lacks the markers"):
        bench.update_readme("x", readme)
