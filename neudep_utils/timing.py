"""Where a run's time goes: named sections with their wall and CPU seconds and the work done.

A notebook opens a :class:`Clock` and starts a section before each part of its work::

    clock = timing.Clock(output_dir, "01_single_model")
    clock.section("CovLasso fits")      # ends the previous section, if any
    ...
    clock.done()                        # ends the last one

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

__all__ = ["COUNTERS", "SECTIONS_FILE", "Clock", "count", "counters", "read_sections",
           "update_json"]

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

    def _end(self) -> None:
        if self._current is None:
            return
        name, t0, c0, w0 = self._current
        self._current = None
        now = counters()
        work = {u: now[u] - w0.get(u, 0.0) for u in sorted(now) if now[u] != w0.get(u, 0.0)}
        self.sections.append({"name": name, "seconds": round(time.perf_counter() - t0, 3),
                              "cpu_s": round(_cpu() - c0, 3), "work": work})
        self._save()

    def _save(self) -> None:
        if self.path is not None:
            update_json(self.path, self.name, self.sections)
