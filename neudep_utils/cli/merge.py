"""``merge``: shards ``0/N .. N-1/N`` of one extraction into one cache entry."""

from __future__ import annotations

import argparse
import time

from ..cache import merge_shards
from ._common import add_source_options, report


def add_parser(sub) -> None:
    """The ``merge`` subcommand and its options."""
    pm = sub.add_parser("merge", help="merge shards 0/N..N-1/N into one cache entry")
    add_source_options(pm)
    pm.add_argument("--shards", type=int, required=True)


def run(args: argparse.Namespace) -> int:
    """Run ``merge``; returns the exit status."""
    t0 = time.perf_counter()
    ls = merge_shards(args.model, args.data, args.shards, args.views, seed=args.seed,
                      label_mode=args.label_mode, mode=args.mode,
                      features=not args.no_features, cache_dir=args.cache_dir)
    report(ls, time.perf_counter() - t0)
    return 0


