"""``logits``: every extraction a study profile needs, into the cache."""

from __future__ import annotations

import argparse
import time

from ..cache import read_entry
from ..profiles import get_profile
from ._common import report


def add_parser(sub) -> None:
    """The ``logits`` subcommand and its options."""
    pl = sub.add_parser("logits", help="extract everything a study profile needs")
    pl.add_argument("--profile", default="default", help="smoke, default or full")
    pl.add_argument("--cache-dir", default=None)
    pl.add_argument("--quiet", action="store_true")


def run(args: argparse.Namespace) -> int:
    """Run ``logits``; returns the exit status."""
    for ex in get_profile(args.profile).extractions():
        t0 = time.perf_counter()
        print(f"== {ex.model} on {ex.folder} (views={ex.views + 1}, {ex.mode})", flush=True)
        ls = read_entry(**ex.kwargs(), cache_dir=args.cache_dir, progress=not args.quiet)
        report(ls, time.perf_counter() - t0)
    return 0
