"""Issue 25's size limits on the package: no module over 600 lines, no function over 120 lines
(a function counted from its ``def`` line, decorators excluded, to its last line, docstring and
nested functions included)."""

from __future__ import annotations

import ast
from pathlib import Path

import neudep_utils

PACKAGE = Path(neudep_utils.__file__).resolve().parent
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
