"""Command line: ``python -m neudep_utils {extract,merge,logits,info} ...``.

Examples::

    python -m neudep_utils extract --model efficientnet_lite0 --data ../shared/data/imagenet-val
    python -m neudep_utils extract --model lite0 --data /imagenet/train --mode moments --shard 0/8
    python -m neudep_utils merge --model lite0 --data /imagenet/train --mode moments --shards 8
    python -m neudep_utils logits --profile default
"""

from __future__ import annotations

import argparse
import sys
import time

from .cache import CacheError, extract, merge_shards
from .data import DataError
from .models import HubUnavailableError, ModelError


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="embedded model (efficientnet_lite0/1/2) or timm name")
    p.add_argument("--data", required=True,
                   help="ImageNet-format folder <wnid>/<image>, or a subset name under $NEUDEP_DATA")
    p.add_argument("--views", type=int, default=0, help="augmented views per image beyond the centre view")
    p.add_argument("--seed", type=int, default=0, help="seed of the augmented views")
    p.add_argument("--label-mode", choices=("wnid", "folder"), default="wnid")
    p.add_argument("--mode", choices=("full", "moments"), default="full",
                   help="'moments' keeps only count, sum f, sum f f^T (for huge folders)")
    p.add_argument("--no-features", action="store_true", help="do not store penultimate features")
    p.add_argument("--cache-dir", default=None, help="cache folder (default $NEUDEP_CACHE or ./cache)")


def _report(ls, seconds: float) -> None:
    n = ls.meta.get("n_images", len(ls))
    print(f"cache: {ls.path}")
    print(f"images: {n}  views: {ls.key.views.get('n_aug', 0) + 1}  time: {seconds:.1f}s")
    if ls.top1 is not None:
        print(f"top-1: {ls.top1:.4f}")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns a process exit code."""
    ap = argparse.ArgumentParser(prog="python -m neudep_utils", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    pe = sub.add_parser("extract", help="extract (or read cached) logits and features")
    _common(pe)
    pe.add_argument("--shard", default=None, help="k/N: extract the k-th of N contiguous blocks")
    pe.add_argument("--batch-size", type=int, default=64)
    pe.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: cores)")
    pe.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    pe.add_argument("--quiet", action="store_true", help="no progress bar")
    pm = sub.add_parser("merge", help="merge shards 0/N..N-1/N into one cache entry")
    _common(pm)
    pm.add_argument("--shards", type=int, required=True)
    pc = sub.add_parser("covariance", help="write a model's logit second moment S (.npy) from the cache")
    pc.add_argument("--model", required=True)
    pc.add_argument("--data", nargs="+", required=True, help="one or more folders (pooled)")
    pc.add_argument("--views", type=int, default=0)
    pc.add_argument("--center", action="store_true", help="centred covariance instead of E[f f^T]")
    pc.add_argument("--out", required=True, help="output .npy path")
    pc.add_argument("--cache-dir", default=None)
    pl = sub.add_parser("logits", help="extract everything a study profile needs")
    pl.add_argument("--profile", default="default", help="smoke, default or full")
    pl.add_argument("--cache-dir", default=None)
    pl.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "extract":
            t0 = time.perf_counter()
            ls = extract(args.model, args.data, args.views, seed=args.seed, label_mode=args.label_mode,
                         shard=args.shard, mode=args.mode, features=not args.no_features,
                         cache_dir=args.cache_dir, batch_size=args.batch_size,
                         num_workers=args.workers, device=args.device, progress=not args.quiet)
            _report(ls, time.perf_counter() - t0)
        elif args.cmd == "merge":
            t0 = time.perf_counter()
            ls = merge_shards(args.model, args.data, args.shards, args.views, seed=args.seed,
                              label_mode=args.label_mode, mode=args.mode,
                              features=not args.no_features, cache_dir=args.cache_dir)
            _report(ls, time.perf_counter() - t0)
        elif args.cmd == "covariance":
            import numpy as np

            mom = None
            for d in args.data:
                ls = extract(args.model, d, args.views, cache_dir=args.cache_dir, progress=True)
                mom = ls.moments if mom is None else mom + ls.moments
            S = mom.second_moment(center=args.center)
            np.save(args.out, S)
            print(f"wrote {args.out}: {S.shape[0]}x{S.shape[1]} "
                  f"{'centred covariance' if args.center else 'second moment'} from "
                  f"{mom.count} logit vectors")
        elif args.cmd == "logits":
            from .study import get_profile

            for ex in get_profile(args.profile).extractions():
                t0 = time.perf_counter()
                print(f"== {ex.model} on {ex.folder} (views={ex.views + 1}, {ex.mode})", flush=True)
                ls = extract(**ex.kwargs(), cache_dir=args.cache_dir, progress=not args.quiet)
                _report(ls, time.perf_counter() - t0)
    except (DataError, ModelError, HubUnavailableError, CacheError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
