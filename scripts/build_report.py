"""Where a ``make book`` run's time went: every stage, extraction entry and notebook section.

Usage::

    python scripts/build_report.py --stages book/_build/stages.txt \\
        --extraction book/_build/extraction.json --output-dir outputs/default
    python scripts/build_report.py ... --markdown benchmarks/results/build.md [--floors F.json]

Reads the build's own records: the stage log the Makefile writes (``<stage> <seconds>`` per line),
the extraction timings of ``python -m neudep_utils logits --timings`` (one record per cache entry:
wall seconds in its worker process, CPU seconds, views), the notebooks' ``runtimes.json`` (wall
per notebook, written by ``scripts/run_notebooks.py``) and their ``sections.json``
(:mod:`neudep_utils.timing`: wall, CPU and the work counters of each section, one per Markdown
heading). Prints the itemisation (``make book`` calls it at its end); ``--markdown`` writes it as
a table for the book's performance page, with the load average of the run when given
(``--load FILE``: lines ``<unix time> <1-min> <5-min> <15-min>``) and floors when given
(``--floors``: ``{"extraction": {model: seconds per view}}``, the forward pass alone on one
core, from ``benchmarks/extract_floors.py``; an entry's floor is its views times that, the
stage's the sum over the cores).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

from neudep_utils.timing import read_sections

REPO = Path(__file__).resolve().parents[1]

#: how work counters are shown (unit -> short label); others are shown as they are named
SHORT = {
    "covlasso k-searches (targets)": "k-search targets",
    "covlasso path solves": "path solves",
    "covlasso bisection solves": "bisection solves",
    "covlasso path points": "path points",
    "covlasso solves": "solves",
    "bootstrap replicates": "bootstrap draws",
    "bootstrap intervals": "intervals",
    "evaluations (target x eval image)": "target x image evaluations",
    "views extracted": "views",
}


def read_stages(path: Path) -> list[tuple[str, float]]:
    """``(stage, seconds)`` lines of the Makefile's stage log (empty when absent)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) == 2:
            try:
                out.append((parts[0], float(parts[1])))
            except ValueError:
                pass
    return out


def _json(path: Path | None) -> dict:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def sections_from_executed(folder: Path) -> dict[str, list[dict]]:
    """For a run without ``sections.json`` (a build before the notebooks timed themselves):
    each executed notebook's cells timed by papermill (``metadata.papermill.duration``),
    grouped by the Markdown heading above them (:func:`neudep_utils.timing.cell_sections`'s
    rule); wall seconds only."""
    out: dict[str, list[dict]] = {}
    for nb in sorted(Path(folder).glob("[0-9][0-9]_*.ipynb")):
        try:
            cells = json.loads(nb.read_text()).get("cells", [])
        except (OSError, json.JSONDecodeError):
            continue
        secs: list[dict] = []
        title = "set-up"
        for c in cells:
            src = "".join(c.get("source", []))
            if c.get("cell_type") == "markdown":
                for line in src.splitlines():
                    if line.startswith("##"):
                        title = line.lstrip("#").strip()
                        break
                continue
            d = (c.get("metadata", {}).get("papermill") or {}).get("duration")
            if d is None:
                continue
            if secs and secs[-1]["name"] == title:
                secs[-1]["seconds"] += float(d)
            else:
                secs.append({"name": title, "seconds": float(d), "work": {}})
        out[nb.stem] = secs
    return out


def extraction_from_log(path: Path) -> dict:
    """For a build whose ``logits`` stage wrote no timings file: its entries from the stage's
    own output (``== <model> on <folder> (views=V, mode)`` then ``... time: <s>s``)."""
    try:
        text = path.read_text(errors="replace").replace("\r", "\n")
    except OSError:
        return {}
    ents, cur = [], None
    for line in text.splitlines():
        m = re.match(r"== (\S+) on (\S+)(?: \[(.+?)\])? \(views=(\d+), (\w+)\)", line)
        if m:
            cur = {"model": m[1], "folder": m[2], "corruption": m[3], "views": int(m[4]),
                   "mode": m[5]}
            continue
        t = re.search(r"images: (\d+)\s+views: (\d+)\s+time: ([\d.]+)s", line)
        if t and cur is not None:
            ents.append({**cur, "n_images": int(t[1]), "seconds": float(t[3]), "computed": True})
            cur = None
    return {"jobs": 1, "entries": ents} if ents else {}


def fmt_work(work: dict) -> str:
    """Work counters as ``1,000 path solves, 2 intervals`` (largest first)."""
    items = sorted(work.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{v:,.0f} {SHORT.get(k, k)}" for k, v in items if v)


def rows(stages: list[tuple[str, float]], extraction: dict, runtimes: dict,
         sections: dict, floors: dict | None = None) -> list[dict]:
    """The itemisation as rows ``{level, name, seconds, cpu_s, work, floor_s}`` (level 0: a
    stage, 1: an entry, notebook or section group, 2: a notebook section)."""
    floors = floors or {}
    per_view = floors.get("extraction", {})
    out: list[dict] = []
    stage_s = dict(stages)
    names = [s for s, _ in stages]
    if extraction and "logits" not in names:
        names.insert(0, "logits")
    if (runtimes or sections) and "notebooks" not in names:  # a build still running
        names.insert(names.index("logits") + 1 if "logits" in names else 0, "notebooks")
    for st in names:
        stage = {"level": 0, "name": st, "seconds": stage_s.get(st)}
        out.append(stage)
        if st == "logits":
            ents = extraction.get("entries", [])
            if ents:
                stage["work"] = (f"{len(ents)} cache entries, {extraction.get('jobs', 1)} "
                                 "job(s) side by side")
            fl_tot = 0.0
            for e in ents:
                what = f"{e['model']} on {Path(str(e['folder'])).name}"
                if e.get("corruption"):
                    what += f" [{e['corruption']}]"
                nv = int(e.get("n_images", 0)) * int(e.get("views", 1))
                fl = per_view.get(e["model"])
                fl = None if fl is None or not e.get("computed", True) else fl * nv
                fl_tot += fl or 0.0
                out.append({"level": 1, "name": what, "seconds": e.get("seconds"),
                            "cpu_s": e.get("cpu_s"),
                            "work": f"{e.get('n_images')} images x {e.get('views')} views"
                                    + ("" if e.get("computed", True) else " (cached)"),
                            "floor_s": fl})
            if per_view and ents:  # the forward passes alone, on every core
                stage["floor_s"] = fl_tot / (os.cpu_count() or 1)
        if st == "notebooks":
            for nb in sorted(set(runtimes) | set(sections)):
                secs = sections.get(nb, [])
                wall = runtimes.get(nb, {}).get("runtime_s")
                out.append({"level": 1, "name": nb, "seconds": wall,
                            "cpu_s": sum(s.get("cpu_s", 0.0) for s in secs) or None})
                if wall is not None and secs:
                    rest = wall - sum(s["seconds"] for s in secs)
                    out.append({"level": 2, "name": "kernel start, imports, settings",
                                "seconds": max(rest, 0.0)})
                for s in secs:
                    out.append({"level": 2, "name": s["name"], "seconds": s["seconds"],
                                "cpu_s": s.get("cpu_s"), "work": fmt_work(s.get("work", {}))})
    total = sum(s for _, s in stages)
    if stages:
        out.append({"level": 0, "name": "total", "seconds": total})
    return out


def text(rs: list[dict]) -> str:
    """The rows as the lines ``make book`` prints."""
    lines = []
    for r in rs:
        ind = "   " + "  " * r["level"]
        sec = "" if r.get("seconds") is None else f"{r['seconds']:8.1f} s"
        cpu = "" if r.get("cpu_s") is None else f"  (CPU {r['cpu_s']:.0f} s)"
        work = f"  {r['work']}" if r.get("work") else ""
        lines.append(f"{ind}{r['name'][:58]:<{62 - 2 * r['level']}}{sec:>10}{cpu}{work}")
    return "\n".join(lines)


def _num(v: float | None) -> str:
    return "" if v is None else f"{v:.1f}"


def markdown(rs: list[dict], note: str) -> str:
    """The rows as a Markdown table (stages bold, sections indented)."""
    head = ("| stage / entry / section | seconds | CPU seconds | work | floor (s) |\n"
            "|---|---|---|---|---|")
    body = []
    for r in rs:
        name = r["name"].replace("|", "/")
        name = f"**{name}**" if r["level"] == 0 else ("&nbsp;" * 4 * r["level"]) + name
        body.append(f"| {name} | {_num(r.get('seconds'))} | {_num(r.get('cpu_s'))} | "
                    f"{(r.get('work') or '').replace('|', '/')} | {_num(r.get('floor_s'))} |")
    return "\n".join([head, *body]) + "\n\n" + note + "\n"


def load_note(path: Path | None) -> str:
    """The load average during the run, from a sampler's log (empty when absent)."""
    if path is None:
        return ""
    vals = []
    try:
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2:
                try:
                    vals.append(float(parts[1]))
                except ValueError:
                    pass
    except OSError:
        return ""
    if not vals:
        return ""
    vals.sort()
    return (f"1-minute load average during the run: median {vals[len(vals) // 2]:.1f}, "
            f"max {vals[-1]:.1f} ({len(vals)} samples; the machine has 2 cores, so a load "
            "above 2 means other jobs shared it).")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stages", type=Path, default=REPO / "book" / "_build" / "stages.txt")
    ap.add_argument("--extraction", type=Path, default=REPO / "book" / "_build" /
                    "extraction.json")
    ap.add_argument("--output-dir", type=Path, default=None,
                    help="the notebooks' output folder (runtimes.json, sections.json)")
    ap.add_argument("--markdown", type=Path, default=None, help="also write a Markdown table")
    ap.add_argument("--floors", type=Path, default=None)
    ap.add_argument("--load", type=Path, default=None, help="load-average samples of the run")
    ap.add_argument("--note", default="", help="a sentence put under the Markdown table")
    ap.add_argument("--executed", type=Path, default=None,
                    help="executed notebooks: their papermill cell times stand in for a "
                         "notebook missing from sections.json")
    ap.add_argument("--logits-log", type=Path, default=None,
                    help="the logits stage's output, read when --extraction is missing")
    args = ap.parse_args(argv)
    runtimes = _json(args.output_dir / "runtimes.json") if args.output_dir else {}
    runtimes = {k: v for k, v in runtimes.items() if isinstance(v, dict)}
    sections = read_sections(args.output_dir) if args.output_dir else {}
    if args.executed is not None:
        for k, v in sections_from_executed(args.executed).items():
            sections.setdefault(k, v)
    extraction = _json(args.extraction)
    if not extraction and args.logits_log is not None:
        extraction = extraction_from_log(args.logits_log)
    rs = rows(read_stages(args.stages), extraction, runtimes, sections, _json(args.floors))
    print(text(rs))
    if args.markdown is not None:
        note = " ".join(x for x in (args.note, load_note(args.load)) if x)
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text("<!-- written by scripts/build_report.py; do not edit by hand "
                                 "-->\n\n" + markdown(rs, note))
        print(f"wrote {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
