"""Issue 25's size limits on the package: no module over 600 lines, no function over 120 lines
(a function counted from its ``def`` line, decorators excluded, to its last line, docstring and
nested functions included)."""

from __future__ import annotations

import ast
import importlib
import json
from pathlib import Path

import pytest

import neudep_utils

PACKAGE = Path(neudep_utils.__file__).resolve().parent
NOTEBOOKS = sorted((PACKAGE.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 120


def offenders(package_dir: Path, max_module: int = MAX_MODULE_LINES,
              max_function: int = MAX_FUNCTION_LINES) -> list[str]:
    """Every module over ``max_module`` lines and every function or method over
    ``max_function`` lines under ``package_dir``, as ``path: N lines`` and
    ``path::qualname: N lines``."""
    bad = []
    for path in sorted(package_dir.rglob("*.py")):
        rel = path.relative_to(package_dir.parent).as_posix()
        text = path.read_text()
        n = len(text.splitlines())
        if n > max_module:
            bad.append(f"{rel}: {n} lines (module limit {max_module})")

        stack: list[tuple[ast.AST, str]] = [(ast.parse(text, str(path)), "")]
        while stack:
            node, prefix = stack.pop()
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                    name = f"{prefix}{child.name}"
                    length = child.end_lineno - child.lineno + 1
                    if length > max_function:
                        bad.append(f"{rel}::{name}: {length} lines "
                                   f"(function limit {max_function})")
                    stack.append((child, f"{name}."))
                elif isinstance(child, ast.ClassDef):
                    stack.append((child, f"{prefix}{child.name}."))
                else:
                    stack.append((child, prefix))
    return sorted(bad)


def test_no_module_over_600_lines_and_no_function_over_120():
    bad = offenders(PACKAGE)
    print("\n".join(bad))
    assert not bad, "over the size limits (split along a seam):\n" + "\n".join(bad)


def test_the_checker_catches_a_long_module_and_a_long_function(tmp_path: Path):
    """The check can fail: a module over the limit, a method (decorator not counted) and a
    function with a nested one are each reported; at the limit nothing is."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "long.py").write_text("x = 1\n" * 30)
    (pkg / "sub" / "f.py").write_text(
        "class A:\n"
        "    @staticmethod\n"
        "    def m():\n"
        "        y = 1\n"
        "        return y\n"
        "\n"
        "\n"
        "def outer():\n"
        "    def inner():\n"
        "        y = 1\n"
        "        return y\n"
        "    return inner\n")
    assert offenders(pkg, max_module=29, max_function=2) == [
        "pkg/long.py: 30 lines (module limit 29)",
        "pkg/sub/f.py::A.m: 3 lines (function limit 2)",
        "pkg/sub/f.py::outer.inner: 3 lines (function limit 2)",
        "pkg/sub/f.py::outer: 5 lines (function limit 2)"]
    assert offenders(pkg, max_module=29, max_function=4) == [
        "pkg/long.py: 30 lines (module limit 29)",
        "pkg/sub/f.py::outer: 5 lines (function limit 4)"]
    assert offenders(pkg, max_module=30, max_function=5) == []


def package_attributes(source: str) -> list[tuple[str, str]]:
    """``(module, attribute)`` for every ``alias.attr`` in ``source`` whose ``alias`` is a
    package module bound by ``from neudep_utils... import alias`` or ``import neudep_utils...
    as alias``."""
    tree = ast.parse(source)
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("neudep_utils"):
            for a in node.names:
                full = f"{node.module}.{a.name}"
                if _is_module(full):
                    bound[a.asname or a.name] = full
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("neudep_utils.") and a.asname:
                    bound[a.asname] = a.name
    return sorted({(bound[n.value.id], n.attr) for n in ast.walk(tree)
                   if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
                   and n.value.id in bound})


def _is_module(dotted: str) -> bool:
    rel = Path(*dotted.split(".")[1:])
    return (PACKAGE / rel).with_suffix(".py").is_file() or (PACKAGE / rel / "__init__.py").is_file()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_package_name_a_notebook_uses_resolves(path: Path):
    """A module split along a seam keeps the names the notebooks read through the old module
    (``cross.unseen_summary``, ``rules.C1``, ...)."""
    cells = json.loads(path.read_text())["cells"]
    source = "\n".join(
        "\n".join(ln for ln in "".join(c["source"]).splitlines()
                  if not ln.lstrip().startswith(("%", "!")))
        for c in cells if c["cell_type"] == "code")
    used = package_attributes(source)
    assert len(used) > 10  # the walk sees the notebook's calls into the package
    missing = [f"{m}.{a}" for m, a in used if not hasattr(importlib.import_module(m), a)]
    assert not missing, f"{path.name} uses names the package no longer has: {missing}"


def test_the_name_check_catches_a_missing_name():
    src = ("from neudep_utils.findings import cross\nimport neudep_utils.verdicts.rules as r\n"
           "cross.unseen_summary(1)\nr.C1\ncross.no_such_name\n")
    used = package_attributes(src)
    assert used == [("neudep_utils.findings.cross", "no_such_name"),
                    ("neudep_utils.findings.cross", "unseen_summary"),
                    ("neudep_utils.verdicts.rules", "C1")]
    assert [a for m, a in used if not hasattr(importlib.import_module(m), a)] == ["no_such_name"]
