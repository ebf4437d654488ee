"""Compare two results files (or two folders of them) key by key.

Usage::

    python scripts/compare_results.py A.json B.json [--rtol 1e-9] [--atol 0]
    python scripts/compare_results.py outputs/before outputs/after --rtol 1e-6

Every value of the JSON is flattened to a path (``numbers.lite0_acc_replaced_k10.ci[1]``,
``readings[12].ap``, ...): numbers at any depth (``value``, ``ci``, ``seeds``, records of curves
and tables, nested lists) are compared with ``|a - b| <= atol + rtol * max(|a|, |b|)``, strings,
booleans and nulls exactly. A key present on one side only is listed. Keys that say when or how
long a run took (``created``, ``runtime_s``, ``finished``) are skipped, as are any given with
``--ignore`` (a glob over the path, e.g. ``--ignore 'provenance*'``); of two folders, every
``*.json`` but the run's bookkeeping (``runtimes.json``, ``sections.json``) is compared.

Prints one line per difference (path, both values, relative difference) and a summary line:
keys compared, keys differing, the largest relative difference among numbers. Exit status 0 when
nothing differs beyond the tolerance, 1 otherwise, 2 for unreadable input.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Files of an output folder that are not results (run bookkeeping), skipped in a folder.
NOT_RESULTS = ("runtimes.json", "sections.json")

#: Paths skipped by default: wall-clock facts of a run, not results.
VOLATILE = ("created", "*.created", "runtime_s", "*.runtime_s", "*.finished")


def flatten(obj: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(path, leaf)`` for every leaf of a JSON value (dict keys joined by ``.``, list items as
    ``[i]``)."""
    if isinstance(obj, dict):
        if not obj:
            yield prefix, {}
        for k, v in obj.items():
            yield from flatten(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, list):
        if not obj:
            yield prefix, []
        for i, v in enumerate(obj):
            yield from flatten(v, f"{prefix}[{i}]")
    else:
        yield prefix, obj


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def rel_diff(a: float, b: float) -> float:
    """``|a - b| / max(|a|, |b|)`` (0 for equal values, NaN equal to NaN, inf for a NaN/inf
    against a finite value)."""
    if a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a)
                  and math.isnan(b)):
        return 0.0
    if not (math.isfinite(a) and math.isfinite(b)):
        return math.inf
    return abs(a - b) / max(abs(a), abs(b))


@dataclass
class Difference:
    """One differing path: both values (``None`` when absent on that side) and, for numbers,
    the relative difference."""

    path: str
    a: Any
    b: Any
    rel: float | None = None
    missing: str = ""

    def line(self) -> str:
        """The difference in one line."""
        if self.missing:
            return f"{self.path}: only in {self.missing}"
        if self.rel is not None:
            return f"{self.path}: {self.a!r} vs {self.b!r} (rel. diff {self.rel:.2e})"
        return f"{self.path}: {self.a!r} vs {self.b!r}"


@dataclass
class Comparison:
    """The outcome of :func:`compare`: keys compared, the differences, the largest relative
    difference among numbers (within the tolerance or not)."""

    n_keys: int
    n_numbers: int
    differences: list[Difference]
    max_rel: float

    def summary(self, label: str = "") -> str:
        """One line: keys compared, how many differ, the largest relative difference."""
        return (f"{label}{self.n_keys} keys compared ({self.n_numbers} numbers): "
                f"{len(self.differences)} differ beyond the tolerance; largest relative "
                f"difference among numbers {self.max_rel:.2e}")


def compare(a: Any, b: Any, rtol: float = 1e-9, atol: float = 0.0,
            ignore: tuple[str, ...] = ()) -> Comparison:
    """Compare two parsed JSON values key by key (see the module docstring).

    Parameters
    ----------
    a, b : JSON values
        The two results (e.g. ``json.load`` of two results files).
    rtol, atol : float
        A number differs when ``|a - b| > atol + rtol * max(|a|, |b|)``.
    ignore : tuple of str
        Globs over the flattened paths to skip (besides :data:`VOLATILE`).

    Returns
    -------
    Comparison
    """
    skip = VOLATILE + tuple(ignore)
    fa = {p: v for p, v in flatten(a) if not any(fnmatch.fnmatchcase(p, g) for g in skip)}
    fb = {p: v for p, v in flatten(b) if not any(fnmatch.fnmatchcase(p, g) for g in skip)}
    diffs: list[Difference] = []
    n_num, max_rel = 0, 0.0
    for p in list(fa) + [q for q in fb if q not in fa]:
        if p not in fb or p not in fa:
            diffs.append(Difference(p, fa.get(p), fb.get(p), missing="A" if p in fa else "B"))
            continue
        x, y = fa[p], fb[p]
        if _is_number(x) and _is_number(y):
            n_num += 1
            r = rel_diff(float(x), float(y))
            max_rel = max(max_rel, r)
            both_nan = isinstance(x, float) and isinstance(y, float) and math.isnan(x) and \
                math.isnan(y)
            if not both_nan and not (abs(x - y) <= atol + rtol * max(abs(x), abs(y))):
                diffs.append(Difference(p, x, y, r))
        elif x != y or type(x) is not type(y):
            diffs.append(Difference(p, x, y))
    return Comparison(len(set(fa) | set(fb)), n_num, diffs, max_rel)


def _pairs(a: Path, b: Path) -> list[tuple[str, Path | None, Path | None]]:
    """``(name, file in a, file in b)`` for two files, or every ``*.json`` of two folders."""
    if a.is_dir() and b.is_dir():
        names = sorted(({p.name for p in a.glob("*.json")} | {p.name for p in b.glob("*.json")})
                       - set(NOT_RESULTS))
        return [(n, a / n if (a / n).is_file() else None, b / n if (b / n).is_file() else None)
                for n in names]
    return [(a.name, a, b)]


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", type=Path, help="results file (or folder of *.json)")
    ap.add_argument("b", type=Path, help="results file (or folder of *.json)")
    ap.add_argument("--rtol", type=float, default=1e-9, help="relative tolerance (1e-9)")
    ap.add_argument("--atol", type=float, default=0.0, help="absolute tolerance (0)")
    ap.add_argument("--ignore", action="append", default=[], metavar="GLOB",
                    help="skip paths matching GLOB (repeatable)")
    ap.add_argument("--max-lines", type=int, default=200,
                    help="differences printed per file (the summary counts all)")
    args = ap.parse_args(argv)
    if args.a.is_dir() != args.b.is_dir():
        print("error: give two files or two folders", file=sys.stderr)
        return 2
    worst = 0
    total_keys = total_diff = 0
    for name, fa, fb in _pairs(args.a, args.b):
        if fa is None or fb is None:
            print(f"== {name}: only in {'B' if fa is None else 'A'}")
            worst = 1
            continue
        try:
            ja, jb = json.loads(fa.read_text()), json.loads(fb.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            print(f"error: cannot read {name}: {exc}", file=sys.stderr)
            return 2
        c = compare(ja, jb, args.rtol, args.atol, tuple(args.ignore))
        total_keys += c.n_keys
        total_diff += len(c.differences)
        print(f"== {name}: " + c.summary())
        for d in c.differences[:args.max_lines]:
            print("   " + d.line())
        if len(c.differences) > args.max_lines:
            print(f"   ... {len(c.differences) - args.max_lines} more")
        worst = max(worst, 1 if c.differences else 0)
    if len(_pairs(args.a, args.b)) > 1:
        print(f"== all: {total_keys} keys compared, {total_diff} differ "
              f"(rtol {args.rtol:g}, atol {args.atol:g})")
    return worst


if __name__ == "__main__":
    sys.exit(main())
