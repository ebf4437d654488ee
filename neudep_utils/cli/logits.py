"""``logits``: every extraction a study profile needs, into the cache (entries side by side,
timed)."""

from __future__ import annotations

import argparse
import os
import time

from ..cache.batch import extract_all, print_record
from ..profiles import get_profile


def _jobs(text: str) -> int:
    """``--jobs``: an integer >= 1."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1 (1: one entry at a time), got {n}")
    return n


def default_jobs() -> int:
    """``logits --jobs`` by default: the cores, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


def add_parser(sub) -> None:
    """The ``logits`` subcommand and its options."""
    pl = sub.add_parser("logits", help="extract everything a study profile needs")
    pl.add_argument("--profile", default="default", help="smoke, default or full")
    pl.add_argument("--cache-dir", default=None)
    pl.add_argument("--quiet", action="store_true")
    pl.add_argument("--jobs", type=_jobs, default=default_jobs(),
                    help="entries extracted side by side, one compute thread each (default: "
                         "the cores, at most 4; 1: one after another with every thread)")
    pl.add_argument("--timings", default=None, metavar="FILE",
                    help="write each entry's seconds, CPU seconds and views to this JSON file")


def run(args: argparse.Namespace) -> int:
    """Run ``logits``; returns the exit status."""
    t0 = time.perf_counter()
    recs = extract_all([ex.kwargs() for ex in get_profile(args.profile).extractions()],
                       jobs=args.jobs, cache_dir=args.cache_dir, progress=not args.quiet,
                       timings=args.timings, on_done=print_record)
    print(f"== {len(recs)} entries ({sum(r['computed'] for r in recs)} computed) in "
          f"{time.perf_counter() - t0:.1f} s with {args.jobs} job(s)", flush=True)
    return 0
