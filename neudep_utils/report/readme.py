"""The study's findings at a glance, written by the build from the notebooks' results files.

:func:`summarize` condenses ``<output_dir>/NN_*.json`` into one small, JSON-safe summary (each
claim's verdict, headline number with unit and interval, models; the accuracy-kept curves of C1
and C2). :func:`verdict_table` renders it as the Markdown table that ``scripts/book_pages.py``
commits to ``book/_static/readme_verdicts.md`` and :func:`splice` places in ``README.md``
between :data:`START` and :data:`END`; ``tests/test_readme.py`` checks that the committed table
is the one :func:`verdict_table` makes from the committed ``book/_static/default_summary.json``.

Example::

    from neudep_utils.report import readme
    summary = readme.summarize(readme.load_results("outputs/default"), "default")
    text = readme.splice(Path("README.md").read_text(), readme.verdict_table(summary))
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

from ..verdicts import CLAIMS

__all__ = ["END", "START", "curve_methods", "fmt", "format_number", "load_results", "short",
           "splice", "summarize", "verdict_table"]

#: Markers around the build-written block of ``README.md``.
START = "<!-- verdicts:start (written by scripts/book_pages.py; do not edit) -->"
END = "<!-- verdicts:end -->"

#: The methods of the C1/C2 curves the summary keeps: the dependency and its random reference.
curve_methods = ("CovLasso support + LS", "random + LS")


def fmt(value: float | None) -> str:
    """A number with 3 significant digits (integers as integers); ``None`` as ``n/a``."""
    if value is None:
        return "n/a"
    v = float(value)
    if not math.isfinite(v):
        return str(v)
    if v == int(v) and abs(v) < 1e6:
        return str(int(v))
    if abs(v) >= 1000:
        return f"{v:.0f}"
    return f"{v:.3g}"


def format_number(num: dict[str, Any] | None) -> str:
    """``value unit [lo, hi]`` for a number dict of :func:`neudep_utils.report.number`;
    fractions are shown as percentages."""
    if not num:
        return "n/a"
    pct = num.get("unit") == "fraction"

    def f(v: float) -> str:
        return f"{100 * v:.3g}%" if pct else fmt(v)

    unit = f" {num['unit']}" if num.get("unit") and not pct else ""
    out = f"{f(num.get('value'))}{unit}"
    ci = num.get("ci")
    if ci:
        out += f" [{f(ci[0])}, {f(ci[1])}]"
    seeds = num.get("seeds")
    if seeds:
        out += f"; {len(seeds['values'])} split seeds: {f(seeds['min'])} to {f(seeds['max'])}"
    return out


def short(model: str) -> str:
    """``efficientnet_lite0`` -> ``lite0``, ``mobilenet_v1_075`` -> ``mobilenet``."""
    from ..models import short_name

    return short_name(model)


def load_results(output_dir: str | Path) -> dict[str, dict[str, Any]]:
    """The notebooks' result files ``<output_dir>/NN_*.json`` keyed by stem (files without a
    ``claims`` mapping are skipped)."""
    out = {}
    for p in sorted(Path(output_dir).glob("[0-9][0-9]_*.json")):
        data = json.loads(p.read_text())
        if isinstance(data, dict) and isinstance(data.get("claims"), dict):
            out[p.stem] = data
    return out


def _definition(text: str, limit: int = 110) -> str:
    """The first clause of a number's definition, at most ``limit`` characters."""
    text = " ".join(str(text).split())
    first = re.split(r";\s", text, maxsplit=1)[0]
    return first if len(first) <= limit else first[: limit - 1].rsplit(" ", 1)[0] + "…"


def summarize(results: dict[str, dict[str, Any]], profile: str) -> dict[str, Any]:
    """The summary of one profile's results: per claim (in :data:`CLAIMS` order) its verdict,
    headline number, models and notebook; the C1 and C2 accuracy-kept curves; the sha256 of each
    results file it was derived from.

    Parameters
    ----------
    results : dict
        :func:`load_results`' output.
    profile : str
        The profile the results come from (recorded; the table says so).

    Returns
    -------
    dict
        JSON-safe: ``{"profile", "claims": [...], "curves": {"C1": [...], "C2": [...]},
        "sources": {stem: sha256}}``.
    """
    claims = []
    for cid, cdef in CLAIMS.items():
        found = [(stem, r, r["claims"][cid]) for stem, r in results.items()
                 if cid in r["claims"]]
        if not found:
            claims.append({"cid": cid, "name": cdef.name, "verdict": None, "headline": None,
                           "tested_on": [], "notebook": None})
        for stem, r, c in found:
            head = c.get("headline")
            num = r.get("numbers", {}).get(head) if head else None
            claims.append({
                "cid": cid, "name": cdef.name, "verdict": c.get("verdict"),
                "notebook": stem, "label": c.get("label"),
                "tested_on": [short(m) for m in c.get("tested_on", [])],
                "headline": None if not num else {
                    "name": head, "value": num["value"], "ci": num.get("ci"),
                    "unit": num.get("unit", ""), "definition": num.get("definition", ""),
                    **({"seeds": num["seeds"]} if num.get("seeds") else {})}})
    curves: dict[str, list[dict[str, Any]]] = {"C1": [], "C2": []}
    for r in results.values():
        rows = r.get("curves") or []
        for row in rows:
            if row.get("method") not in curve_methods:
                continue
            if "model" in row:
                curves["C1"].append({k: row.get(k) for k in (
                    "model", "method", "k_requested", "k", "acc_replaced", "acc_base")})
            elif row.get("config") == "without same":
                curves["C2"].append({"model": row["pair"], **{k: row.get(k) for k in (
                    "method", "k_requested", "k", "acc_replaced", "acc_base")}})
    sources = {stem: hashlib.sha256(json.dumps(r, sort_keys=True).encode()).hexdigest()
               for stem, r in results.items()}
    return {"profile": profile, "claims": claims, "curves": curves, "sources": sources}


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def verdict_table(summary: dict[str, Any], link_prefix: str = "") -> str:
    """The Markdown verdict table of a :func:`summarize` summary: claim, verdict, headline number
    (value, unit, interval and what it measures), models.

    ``link_prefix``: when given (e.g. a book URL), the claim's notebook is linked there."""
    lines = [f"Profile **{summary['profile']}**; every cell is written by the build from the "
             "notebooks' results files (`make book`).", "",
             "| claim | verdict | headline number [95% interval] · what it measures | models |",
             "| --- | --- | --- | --- |"]
    for c in summary["claims"]:
        name = f"{c['cid']} {_cell(c['name'])}"
        if c.get("notebook") and link_prefix:
            name = f"[{name}]({link_prefix}{c['notebook']}.html)"
        h = c.get("headline")
        number = (f"**{format_number(h)}** · {_definition(h.get('definition', ''))}" if h
                  else "n/a")
        verdict = f"**{c['verdict']}**" if c.get("verdict") else "*no result*"
        lines.append(f"| {name} | {verdict} | {_cell(number)} | "
                     f"{', '.join(c.get('tested_on') or []) or 'n/a'} |")
    return "\n".join(lines) + "\n"


def splice(readme: str, block: str) -> str:
    """``readme`` with the text between :data:`START` and :data:`END` replaced by ``block``.

    Raises
    ------
    ValueError
        When the markers are missing or out of order (name the fix: add both on their own
        lines)."""
    i, j = readme.find(START), readme.find(END)
    if i < 0 or j < 0 or j < i:
        raise ValueError(f"README has no {START!r} ... {END!r} block; add both markers on their "
                         "own lines where the verdict table goes")
    return readme[: i + len(START)] + "\n" + block.rstrip("\n") + "\n" + readme[j:]
