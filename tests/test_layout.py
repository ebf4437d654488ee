"""The package's import graph follows the one stage order stated in ``neudep_utils/__init__.py``'s
docstring and in ARCHITECTURE.md: every import inside the package (at module level or inside a
function) goes from a stage to one on its left, never to its right or to a stage of the same
rank. The root package (``neudep_utils/__init__.py``, which only names the estimator lazily and the
version) is exempt."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import neudep_utils

REPO = Path(__file__).resolve().parents[1]
PACKAGE = Path(neudep_utils.__file__).resolve().parent


def parse_order(text: str) -> list[list[str]]:
    """The ranks of the stage order written as ``a -> b / c -> d`` in an indented block (the
    first line that starts with a stage name followed by ``->``, and its continuation lines
    that start with ``->``)."""
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if re.match(r"\s+[\w.]+ ->", ln))
    chain = [lines[start].strip()]
    for ln in lines[start + 1:]:
        if not ln.strip().startswith("->"):
            break
        chain.append(ln.strip())
    return [[s.strip() for s in rank.split("/")] for rank in " ".join(chain).split("->")]


def stage_of(module: str) -> str:
    """``neudep_utils.cache.entry`` -> ``cache``; the root package -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _is_module(package_dir: Path, dotted: str) -> bool:
    rel = Path(*dotted.split(".")[1:])
    return (package_dir / rel).with_suffix(".py").is_file() or (package_dir / rel).is_dir()


def import_edges(package_dir: Path, name: str = "neudep_utils") -> list[tuple[str, str, int]]:
    """Every import of the package's own modules: ``(importing module, imported module,
    line)``, module-level and inside functions alike (not those under ``if TYPE_CHECKING``)."""
    edges = []
    for path in sorted(package_dir.rglob("*.py")):
        rel = path.relative_to(package_dir).with_suffix("")
        parts = [name, *rel.parts]
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        module = ".".join(parts)
        package = parts if is_pkg else parts[:-1]
        tree = ast.parse(path.read_text(), str(path))
        typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                       and "TYPE_CHECKING" in ast.unparse(block.test)
                       for stmt in block.body for n in ast.walk(stmt)}
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue  # imports for type checkers only: no dependency at run time
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package[:len(package) - (node.level - 1)]
                    base_mod = ".".join(base + ([node.module] if node.module else []))
                elif node.module and node.module.split(".")[0] == name:
                    base_mod = node.module
                else:
                    continue
                for alias in node.names:  # `from . import cache` imports a module
                    sub = f"{base_mod}.{alias.name}"
                    targets.append(sub if _is_module(package_dir, sub) else base_mod)
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.split(".")[0] == name]
            edges += [(module, t, node.lineno) for t in targets]
    return edges


def violations(edges: list[tuple[str, str, int]], order: list[list[str]]) -> list[str]:
    """Imports that go right or sideways in ``order``, and stages missing from it."""
    rank = {s: i for i, stages in enumerate(order) for s in stages}
    bad = []
    for src, dst, line in edges:
        a, b = stage_of(src), stage_of(dst)
        if a == b or a == "" or b == "":
            continue  # within a stage, or the root facade
        for s in (a, b):
            if s not in rank:
                bad.append(f"{src}:{line}: stage {s!r} is not in the stated order")
        if a in rank and b in rank and rank[b] >= rank[a]:
            where = "a stage of the same rank" if rank[a] == rank[b] else "a later stage"
            bad.append(f"{src}:{line} imports {dst} ({where}: {b!r} is not left of {a!r})")
    return sorted(set(bad))


def test_docstring_and_architecture_state_one_order() -> None:
    doc = parse_order(neudep_utils.__doc__)
    arch = parse_order((REPO / "ARCHITECTURE.md").read_text())
    assert doc == arch, f"the package docstring says {doc}, ARCHITECTURE.md says {arch}"
    stages = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
              if (p.suffix == ".py" and p.stem != "__init__")
              or (p.is_dir() and (p / "__init__.py").is_file())}
    named = {s for rank in doc for s in rank}
    assert stages <= named, f"stages missing from the stated order: {sorted(stages - named)}"


def test_import_graph_follows_the_stated_order() -> None:
    edges = import_edges(PACKAGE)
    assert len(edges) > 100  # the walk sees the package's imports
    bad = violations(edges, parse_order(neudep_utils.__doc__))
    assert not bad, "imports against the stated stage order:\n" + "\n".join(bad)


def test_no_findings_module_imports_the_report() -> None:
    bad = [(s, d) for s, d, _ in import_edges(PACKAGE)
           if stage_of(s) == "findings" and stage_of(d) == "report"]
    assert not bad


def test_the_checker_catches_a_backward_import(tmp_path: Path) -> None:
    """The check can fail: a module-level import to the right, an in-function import to the
    right and an import sideways are each reported."""
    pkg = tmp_path / "neudep_utils"
    for sub in ("a", "b", "c"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("from .c import x\n")  # the root: exempt
    (pkg / "a" / "m.py").write_text("from ..b import y\n")
    (pkg / "b" / "m.py").write_text("from ..a import m\n\n\ndef f():\n    from ..c import z\n")
    (pkg / "c" / "m.py").write_text("import neudep_utils.a.m\nfrom .. import b\n"
                                    "from typing import TYPE_CHECKING\n"
                                    "if TYPE_CHECKING:\n    from ..d import w\n")
    order = parse_order("    a -> b / c\n")
    assert order == [["a"], ["b", "c"]]
    bad = violations(import_edges(pkg), order)
    assert bad == [
        "neudep_utils.a.m:1 imports neudep_utils.b (a later stage: 'b' is not left of 'a')",
        "neudep_utils.b.m:5 imports neudep_utils.c (a stage of the same rank: 'c' is not left "
        "of 'b')",  # in a function
        "neudep_utils.c.m:2 imports neudep_utils.b (a stage of the same rank: 'b' is not left "
        "of 'c')"]
    assert violations(import_edges(pkg), [["a"], ["b"], ["c"]]) == bad[:1] + [
        "neudep_utils.b.m:5 imports neudep_utils.c (a later stage: 'c' is not left of 'b')"]
    assert "stage 'c' is not in the stated order" in " ".join(
        violations(import_edges(pkg), [["a"], ["b"]]))
    with pytest.raises(StopIteration):
        parse_order("no order here")
