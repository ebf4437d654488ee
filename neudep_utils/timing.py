"""Where a run's time goes: named sections with their wall and CPU seconds and the work done.

A run opens a :class:`Clock` and starts a section before each part of its work::

    clock = timing.Clock(output_dir, "01_single_model")
    clock.section("CovLasso fits")      # ends the previous section, if any
    ...
    clock.done()                        # ends the last one

A notebook needs one line: :func:`notebook_clock` times every cell that runs after it, each in
the section of the Markdown heading above it in the notebook (read from ``<name>.ipynb`` in the
kernel's working folder; papermill runs the study's notebooks there), so the itemisation follows
the notebook's own headings and no cell carries timing code.

Each section records its wall seconds, the CPU seconds of the process (all its threads: numba's,
ONNX Runtime's, BLAS's) and the *work counters* that grew while it ran: the package counts its
units of work where they happen (:func:`count`: CovLasso target-solves on the k-search's path and
in its bisection, bootstrap replicates, images x targets evaluated, views extracted), so the
itemisation says what each second bought without anyone typing it. Sections are written, after
each one ends, to ``<output_dir>/sections.json`` (``{notebook: [section, ...]}``, merged under a
file lock so notebooks running side by side can share the file). ``scripts/build_report.py``
prints them with the build's stage log.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

__all__ = ["COUNTERS", "SECTIONS_FILE", "Clock", "cell_sections", "count", "counters",
           "notebook_clock", "read_sections", "update_json"]

#: The file of a run's sections, in its output folder.
SECTIONS_FILE = "sections.json"

#: Work done so far in this process, by unit (e.g. ``"covlasso path solves"``).
COUNTERS: defaultdict[str, float] = defaultdict(float)


def count(unit: str, amount: float = 1) -> None:
    """Add ``amount`` to the work counter ``unit`` (cheap: one dict update).

    Parameters
    ----------
    unit : str
        What is counted, e.g. ``"bootstrap replicates"``.
    amount : float, default 1
        How many were done.
    """
    COUNTERS[unit] += amount


def counters() -> dict[str, float]:
    """A snapshot of :data:`COUNTERS`."""
    return dict(COUNTERS)


def _cpu() -> float:
    """CPU seconds of this process, all threads, user + system."""
    return time.process_time()


def update_json(path: str | os.PathLike[str], key: str, value: Any) -> None:
    """Set ``key`` of the JSON object in ``path`` to ``value`` under an exclusive file lock
    (``path`` created when missing; an unreadable file is started afresh), written atomically.

    Parameters
    ----------
    path : path
        The JSON file.
    key : str
        Its top-level key to set.
    value : JSON value
        What to store.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            data = json.loads(path.read_text())
            if not isinstance(data, dict):
                data = {}
        except (OSError, json.JSONDecodeError):
            data = {}
        data[key] = value
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, path)


def read_sections(output_dir: str | os.PathLike[str]) -> dict[str, list[dict]]:
    """``{notebook: [section, ...]}`` from ``<output_dir>/sections.json`` (empty when absent)."""
    try:
        data = json.loads((Path(output_dir) / SECTIONS_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


class Clock:
    """The sections of one run (a notebook), written to ``<output_dir>/sections.json``.

    Parameters
    ----------
    output_dir : path or None
        Where ``sections.json`` goes (``None``: kept in memory only).
    name : str
        The run's key in the file (a notebook's stem).
    """

    def __init__(self, output_dir: str | os.PathLike[str] | None, name: str):
        self.path = None if output_dir is None else Path(output_dir) / SECTIONS_FILE
        self.name = name
        self.sections: list[dict] = []
        self._current: tuple[str, float, float, dict[str, float]] | None = None
        self._t0 = time.perf_counter()
        self._save()

    def section(self, name: str) -> None:
        """End the current section (if any) and start ``name``.

        Parameters
        ----------
        name : str
            The section's name, e.g. ``"CovLasso fits"``.
        """
        self._end()
        self._current = (name, time.perf_counter(), _cpu(), counters())

    def done(self) -> list[dict]:
        """End the current section; returns every section of the run."""
        self._end()
        return self.sections

    @property
    def total(self) -> float:
        """Wall seconds since the clock was made."""
        return time.perf_counter() - self._t0

    def _record(self) -> dict | None:
        """The current section's record so far (``None`` when none is open)."""
        if self._current is None:
            return None
        name, t0, c0, w0 = self._current
        now = counters()
        work = {u: now[u] - w0.get(u, 0.0) for u in sorted(now) if now[u] != w0.get(u, 0.0)}
        return {"name": name, "seconds": round(time.perf_counter() - t0, 3),
                "cpu_s": round(_cpu() - c0, 3), "work": work}

    def _end(self) -> None:
        rec = self._record()
        self._current = None
        if rec is not None:
            self.sections.append(rec)
            self._save()

    def flush(self) -> None:
        """Write the sections so far, the open one with its time up to now."""
        rec = self._record()
        if self.path is not None:
            update_json(self.path, self.name, self.sections + ([rec] if rec else []))

    def _save(self) -> None:
        if self.path is not None:
            update_json(self.path, self.name, self.sections)


def cell_sections(notebook: str | os.PathLike[str]) -> dict[str, str]:
    """Each code cell's source (stripped) -> the text of the nearest Markdown heading above it
    (``"set-up"`` before the first ``##`` heading); empty when the notebook cannot be read.

    Parameters
    ----------
    notebook : path
        An ``.ipynb`` file.
    """
    try:
        cells = json.loads(Path(notebook).read_text()).get("cells", [])
    except (OSError, json.JSONDecodeError, AttributeError):
        return {}
    out, title = {}, "set-up"
    for c in cells:
        src = "".join(c.get("source", []))
        if c.get("cell_type") == "markdown":
            for line in src.splitlines():
                if line.startswith("##"):
                    title = line.lstrip("#").strip()
                    break
        elif c.get("cell_type") == "code":
            out.setdefault(src.strip(), title)
    return out


_HOOKS: list[tuple[Any, str, Any]] = []


def notebook_clock(output_dir: str | os.PathLike[str] | None, name: str,
                   notebook: str | os.PathLike[str] | None = None) -> Clock:
    """A :class:`Clock` that times every later cell of an IPython kernel, one section per
    Markdown heading of the notebook (consecutive cells under one heading share a section).

    Parameters
    ----------
    output_dir : path or None
        Where ``sections.json`` goes.
    name : str
        The notebook's stem (its key in the file).
    notebook : path, optional
        The notebook whose headings name the sections (default ``<name>.ipynb`` in the working
        folder); a cell not found in it is named by its first line.

    Returns
    -------
    Clock
        Also usable by hand (``section``/``done``). Outside IPython nothing is hooked.
    """
    clock = Clock(output_dir, name)
    titles = cell_sections(notebook or Path.cwd() / f"{name}.ipynb")
    try:
        from IPython import get_ipython

        ip = get_ipython()
    except ImportError:  # pragma: no cover - IPython comes with the notebooks' dependencies
        ip = None
    if ip is None:
        return clock
    for shell, event, fn in _HOOKS:  # a re-run of the cell replaces the old clock's hooks
        try:
            shell.events.unregister(event, fn)
        except ValueError:
            pass
    _HOOKS.clear()

    def pre(info) -> None:
        src = (getattr(info, "raw_cell", "") or "").strip()
        title = titles.get(src) or (src.splitlines()[0][:60] if src else "(empty cell)")
        if clock._current is None or clock._current[0] != title:
            clock.section(title)

    def post(result) -> None:
        clock.flush()

    for event, fn in (("pre_run_cell", pre), ("post_run_cell", post)):
        ip.events.register(event, fn)
        _HOOKS.append((ip, event, fn))
    return clock
