"""``covariance``: a model's logit second moment ``S`` (or centred covariance) as ``.npy``, from
the cache (pooling several folders), extracting what is missing."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np

from .._io import atomic_write_bytes, remove_stale_temporaries
from ..cache import extract
from ..cache.extract import cached_entry
from ..images import resolve_folder, scan_folder
from ._common import int_at_least, out_path, say


def add_parser(sub) -> None:
    """The ``covariance`` subcommand and its options."""
    pc = sub.add_parser("covariance",
                        help="write a model's logit second moment S (.npy) from the cache")
    pc.add_argument("--model", required=True)
    pc.add_argument("--data", nargs="+", action="extend", required=True,
                    help="one or more folders (pooled; --data A B or --data A --data B)")
    pc.add_argument("--views", type=int_at_least(0, "augmented views beyond the centre view"),
                    default=0)
    pc.add_argument("--label-mode", choices=("wnid", "folder"), default="wnid",
                    help="wnid: class folders are ImageNet wnids; folder: any class folders")
    pc.add_argument("--center", action="store_true", help="centred covariance instead of E[f f^T]")
    pc.add_argument("--mode", choices=("full", "moments"), default="full",
                    help="what to extract for a folder with no cached entry (a cached full or "
                         "moments entry is used whichever this says)")
    pc.add_argument("--out", required=True, help="output .npy path ('.npy' is appended if missing)")
    pc.add_argument("--cache-dir", default=None)


def run(args: argparse.Namespace) -> int:
    """Run ``covariance``; returns the exit status."""
    out = out_path(args.out)
    remove_stale_temporaries(out.parent)  # of an earlier `covariance` killed mid-write
    mom = None
    for d in _distinct_folders(args.data):
        ls = _entry(args, d)
        if ls.skipped:
            say(f"warning: {d}: {ls.skipped_note()}")
        mom = ls.moments if mom is None else mom + ls.moments
    S = mom.second_moment(center=args.center)
    buf = io.BytesIO()
    np.save(buf, S)
    atomic_write_bytes(out, buf.getvalue(), hint="choose --out in")
    print(f"wrote {out}: {S.shape[0]}x{S.shape[1]} "
          f"{'centred covariance' if args.center else 'second moment'} from "
          f"{mom.count} logit vectors")
    return 0


def _distinct_folders(data: list[str]) -> list[str]:
    """The ``--data`` folders, refusing one given twice (its images would be counted twice)."""
    seen: dict[Path, str] = {}
    for d in data:
        r = resolve_folder(d)
        if r in seen:
            raise ValueError(f"--data {d}: the same folder as --data {seen[r]} ({r}); give each "
                             "folder once (its images would be counted twice)")
        seen[r] = d
    return list(data)


def _entry(args: argparse.Namespace, folder: str):
    """A cached entry of ``folder`` holding the moments needed (full with or without features,
    or moments-only), else one extracted in ``--mode``."""
    manifest = scan_folder(resolve_folder(folder), label_mode=args.label_mode)
    for mode, features in (("full", True), ("full", False), ("moments", False)):
        ls = cached_entry(args.model, folder, args.views, label_mode=args.label_mode, mode=mode,
                          features=features, cache_dir=args.cache_dir, manifest=manifest)
        if ls is not None:
            return ls
    return extract(args.model, folder, args.views, label_mode=args.label_mode,
                   cache_dir=args.cache_dir, progress=True, mode=args.mode, manifest=manifest)
