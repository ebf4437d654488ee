"""Many cache entries at once: every extraction a study profile needs, side by side, timed.

:func:`extract_all` reads or computes a list of entries (the keyword arguments of
:func:`~.logits.read_entry`, e.g. :meth:`neudep_utils.profiles.Profile.extractions`). With
``jobs = 1`` they run one after another in this process, as before. With ``jobs > 1`` each runs in
one of ``jobs`` worker processes with a single compute thread (ONNX Runtime, PyTorch and LiteRT
alike) and decoding in the same thread: on a few cores, one thread per model run wastes less
than two threads sharing every operator (their synchronisation, and DataLoader workers competing
with them for the cores), and the logits do not depend on the thread count (bitwise; the engines'
tests check it), so the entries are the ones a single process would write. A worker keeps to one
model while that model has entries left (one exported graph and probe per model and worker).

Every entry's wall and CPU seconds, views and outcome are recorded (``timings``: a JSON file,
one record per entry, in the profile's order) so a build can say where its extraction time went.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

import torch

from .._io import atomic_write_bytes
from ..errors import CacheError
from ..timing import count
from .logits import read_entry

__all__ = ["extract_all", "print_record", "read_timings"]


def _one(kw: dict, cache_dir: str | None, progress: bool, single_thread: bool) -> dict:
    """Read or compute one entry; its record (no arrays)."""
    now, t0, c0 = time.time(), time.perf_counter(), time.process_time()
    extra = {"num_workers": 0} if single_thread else {}
    ls = read_entry(**kw, cache_dir=cache_dir, progress=progress, **extra)
    seconds = time.perf_counter() - t0
    n = int(ls.meta.get("n_images", len(ls)))
    views = int(ls.key.views.get("n_aug", 0)) + 1
    try:  # written by this call (else served from the cache): meta.json's creation time
        computed = time.mktime(time.strptime(ls.meta["created"], "%Y-%m-%dT%H:%M:%S")) >= now - 1
    except (KeyError, TypeError, ValueError):
        computed = False
    rec = {**{k: v for k, v in kw.items() if v is not None}, "entry": str(ls.path),
           "n_images": n, "views": views, "seconds": round(seconds, 3),
           "cpu_s": round(time.process_time() - c0, 3), "computed": computed,
           "top1": ls.top1, "skipped": len(ls.skipped),
           "skipped_note": ls.skipped_note(limit=5) if ls.skipped else "",
           "engine": ls.key.engine, "pid": os.getpid()}
    return rec


def _worker(conn, cache_dir: str | None) -> None:  # pragma: no cover - runs in a child process
    """A worker process: one compute thread; runs the entries it is sent until told to stop."""
    os.environ["NEUDEP_LITERT_THREADS"] = "1"
    torch.set_num_threads(1)
    while True:
        task = conn.recv()
        if task is None:
            break
        i, kw = task
        try:
            conn.send((i, _one(kw, cache_dir, False, True), None))
        except BaseException as exc:  # noqa: BLE001 - reported by the parent, which stops
            conn.send((i, None, f"{type(exc).__name__}: {exc}"))


def _pick(pending: list[int], entries: Sequence[dict], last: str | None,
          busy: set[str]) -> int:
    """The next entry for a worker whose last model was ``last``: that model's next entry, else
    the first entry of a model no other worker is running, else the first pending."""
    for i in pending:
        if entries[i]["model"] == last:
            return i
    for i in pending:
        if entries[i]["model"] not in busy:
            return i
    return pending[0]


def extract_all(entries: Sequence[dict], *, jobs: int = 1,
                cache_dir: str | os.PathLike[str] | None = None, progress: bool = True,
                timings: str | os.PathLike[str] | None = None,
                on_done: Callable[[dict], None] | None = None) -> list[dict]:
    """Read or compute every entry of ``entries``; one record per entry, in their order.

    Parameters
    ----------
    entries : sequence of dict
        Keyword arguments of :func:`~.logits.read_entry` (``model``, ``folder``, ``views``,
        ``label_mode``, ``mode``, ``corruption``, ``subset``).
    jobs : int, default 1
        Entries computed side by side, each in its own process with one compute thread (1: one
        after another in this process, with the engines' default threads).
    cache_dir : path, optional
        The cache root (default ``$NEUDEP_CACHE``).
    progress : bool, default True
        Progress bars (``jobs = 1`` only; workers report each finished entry).
    timings : path, optional
        A JSON file receiving the records (rewritten after each entry).
    on_done : callable, optional
        Called with each record as its entry finishes (e.g. to print it).

    Returns
    -------
    list of dict
        Per entry: its arguments, ``entry`` (folder), ``n_images``, ``views``, ``seconds`` (wall,
        in its worker), ``cpu_s``, ``computed`` (False: served from the cache), ``top1``,
        ``skipped``, ``engine``.
    """
    entries = [dict(e) for e in entries]
    cdir = None if cache_dir is None else str(cache_dir)
    records: list[dict | None] = [None] * len(entries)
    t_start = time.perf_counter()

    def done(i: int, rec: dict) -> None:
        records[i] = rec
        if rec.get("computed"):
            count("views extracted", rec["n_images"] * rec["views"])
        if timings is not None:
            _write(Path(timings), [r for r in records if r is not None], jobs,
                   time.perf_counter() - t_start)
        if on_done is not None:
            on_done(rec)

    if jobs <= 1 or len(entries) <= 1:
        for i, kw in enumerate(entries):
            done(i, _one(kw, cdir, progress, False))
        return records  # type: ignore[return-value]
    _parallel(entries, min(jobs, len(entries)), cdir, done,
              (lambda kw: print(f"   started: {kw['model']} on {kw['folder']}"
                                + (f" [{kw['corruption']}]" if kw.get("corruption") else ""),
                                flush=True)) if progress else None)
    return records  # type: ignore[return-value]


def _parallel(entries: list[dict], jobs: int, cdir: str | None,
              done: Callable[[int, dict], None], on_start: Callable[[dict], None] | None
              ) -> None:
    """Run ``entries`` on ``jobs`` worker processes (see :func:`extract_all`)."""
    ctx = mp.get_context("spawn")  # no fork of a process holding torch / ORT thread pools
    workers = []
    for _ in range(jobs):
        parent, child = ctx.Pipe()
        p = ctx.Process(target=_worker, args=(child, cdir), daemon=True)
        p.start()
        child.close()
        workers.append({"proc": p, "conn": parent, "task": None, "last": None})
    pending = list(range(len(entries)))
    failure: str | None = None
    try:
        while True:
            for w in workers:
                if w["task"] is None and pending and failure is None:
                    busy = {entries[x["task"]]["model"] for x in workers if x["task"] is not None}
                    i = _pick(pending, entries, w["last"], busy)
                    pending.remove(i)
                    w["task"], w["last"] = i, entries[i]["model"]
                    w["conn"].send((i, entries[i]))
                    if on_start is not None:
                        on_start(entries[i])
            running = [w for w in workers if w["task"] is not None]
            if not running:
                break
            for conn in wait([w["conn"] for w in running]):
                w = next(x for x in running if x["conn"] is conn)
                try:
                    i, rec, err = conn.recv()
                except (EOFError, OSError):
                    i, rec, err = w["task"], None, "the worker process died"
                w["task"] = None
                if err is not None:
                    e = entries[i]
                    failure = failure or f"{e['model']} on {e['folder']}: {err}"
                else:
                    done(i, rec)
    finally:
        for w in workers:
            try:
                w["conn"].send(None)
            except (OSError, BrokenPipeError):
                pass
        for w in workers:
            w["proc"].join(timeout=30)
            if w["proc"].is_alive():
                w["proc"].terminate()
    if failure is not None:
        raise CacheError(f"extraction failed: {failure}")


def _write(path: Path, records: list[dict], jobs: int, wall: float) -> None:
    """The timings file: ``{"jobs", "wall_s", "entries": [...]}``, written atomically."""
    atomic_write_bytes(path, json.dumps({"jobs": jobs, "wall_s": round(wall, 3),
                                         "entries": records}, indent=1).encode(),
                       hint="choose --timings in")


def read_timings(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What :func:`extract_all` wrote to ``timings`` (empty when absent)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def print_record(rec: dict) -> None:
    """Print a finished entry as ``python -m neudep_utils logits`` reports it.

    Parameters
    ----------
    rec : dict
        A record of :func:`extract_all`.
    """
    what = f"{rec['model']} on {rec['folder']}"
    if rec.get("corruption"):
        what += f" [{rec['corruption']}]"
    how = "computed" if rec["computed"] else "cached"
    print(f"== {what} (views={rec['views']}, {rec.get('mode', 'full')}): {how}, "
          f"{rec['n_images']} images in {rec['seconds']:.1f} s (CPU {rec['cpu_s']:.1f} s)"
          + (f", top-1 {rec['top1']:.4f}" if rec.get("top1") is not None else ""), flush=True)
    print(f"   cache: {rec['entry']}", flush=True)
    if rec.get("skipped"):
        print(f"   skipped: {rec['skipped_note']}", flush=True)
