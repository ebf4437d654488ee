"""Command line: ``python -m neudep_utils {extract,merge,covariance,logits} ...``.

Examples::

    python -m neudep_utils extract --model efficientnet_lite0 --data ../shared/data/imagenet-val
    python -m neudep_utils extract --model lite0 --data /imagenet/train --mode moments --shard 0/8
    python -m neudep_utils merge --model lite0 --data /imagenet/train --mode moments --shards 8
    torchrun --nproc-per-node 8 -m neudep_utils extract --model lite0 --data /imagenet/train \\
        --mode moments
    python -m neudep_utils logits --profile default

Every failure prints one ``error: ...`` line naming the input and the fix and exits non-zero
(2 for a bad input, 130 on Ctrl-C, 1 for an unexpected error; ``NEUDEP_DEBUG=1`` shows its
traceback). Warnings print as ``warning: ...`` lines.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import time
import warnings
from pathlib import Path

from . import _dist as distributed
from ._io import atomic_write_bytes, remove_stale_temporaries
from .cache import extract, merge_shards, read_entry
from .cache.extract import cached_entry
from .errors import CacheError, DataError, HubUnavailableError, ModelError
from .profiles import get_profile


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line ``error: ...`` (and the help hint) instead of usage + error."""

    def error(self, message: str):  # type: ignore[override]
        _say(f"error: {message} (see `{self.prog} --help`)")
        raise SystemExit(2)


def _say(line: str) -> None:
    """Print one line to stderr, whatever bytes a file name holds."""
    text = " ".join(str(line).split())
    sys.stderr.write(text.encode("utf-8", "backslashreplace").decode("utf-8") + "\n")
    sys.stderr.flush()


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    _say(f"warning: {message}")


class _Once(argparse.Action):
    """An option that may be given once: a second ``--data`` is an error, not silently the one
    that wins."""

    def __call__(self, parser, namespace, values, option_string=None):
        if getattr(namespace, self.dest, None) is not None:
            parser.error(f"{option_string} given twice ({getattr(namespace, self.dest)!r} and "
                         f"{values!r}); this command takes one folder (`covariance` pools several: "
                         "--data A B)")
        setattr(namespace, self.dest, values)


def _workers(text: str) -> int:
    """``--workers``: an integer >= 0."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (0: decode in the main process), got {n}")
    return n


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="embedded model (efficientnet_lite0/1/2) or timm name")
    p.add_argument("--data", required=True, action=_Once,
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
    shares = ls.meta.get("rank_shares")
    if shares:
        print(f"world size: {ls.meta.get('world_size')} ({ls.meta.get('backend')}, "
              f"{ls.meta.get('device')})")
        for s in shares:
            print(f"  rank {s['rank']}: {s['images']} images (manifest positions {s['first']}.."
                  f"{s['last']}, {s['readable']} readable, {s['seconds']:.1f}s)")
    if ls.skipped:
        print("skipped: " + ls.skipped_note(limit=5))
    if ls.top1 is not None:
        print(f"top-1: {ls.top1:.4f}" + (f" (over the {n} readable images)" if ls.skipped else ""))


def _out_path(out: str) -> Path:
    """The file ``np.save`` would write (it appends ``.npy``), checked before any work."""
    if not out.strip():
        raise ValueError(f"--out {out!r} is empty; give a file name such as S.npy")
    p = Path(out).expanduser()
    if out.endswith(("/", os.sep)) or p.is_dir() or p.name in ("", ".", ".."):
        raise ValueError(f"--out {out}: {p} is a folder, not a file name; give a file in it "
                         f"such as {p / 'S.npy'}")
    if p.suffix != ".npy":
        p = p.with_name(p.name + ".npy")
    if not p.parent.is_dir():
        raise ValueError(f"--out {out}: folder {p.parent} does not exist; create it or choose "
                         "another path")
    if p.is_dir():
        raise ValueError(f"--out {out}: {p} is a folder; give a file name")
    return p


def _os_error(exc: OSError, args: argparse.Namespace) -> str:
    where = exc.filename if exc.filename is not None else "?"
    if isinstance(where, bytes):
        where = where.decode("utf-8", "backslashreplace")
    what = exc.strerror or str(exc)
    if exc.errno == errno.ELOOP:
        fix = "remove or fix the symbolic link"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = "make it readable/writable or choose another folder (--cache-dir, --data)"
    elif exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        fix = "free space there or choose a folder on a disk with room (--cache-dir)"
    elif exc.errno == errno.ENOENT:
        fix = "check the path"
    else:
        fix = "check the file and the folder it is in"
    return f"{what}: {where}; {fix}"


def _distinct_folders(data: list[str]) -> list[str]:
    """The ``--data`` folders of ``covariance``, refusing one given twice (its images would be
    counted twice)."""
    from .images import resolve_folder

    seen: dict[Path, str] = {}
    for d in data:
        r = resolve_folder(d)
        if r in seen:
            raise ValueError(f"--data {d}: the same folder as --data {seen[r]} ({r}); give each "
                             "folder once (its images would be counted twice)")
        seen[r] = d
    return list(data)


def _entry_for_covariance(args: argparse.Namespace, folder: str):
    """A cached entry of ``folder`` holding the moments ``covariance`` needs (full with or
    without features, or moments-only), else one extracted in ``--mode``."""
    from .images import resolve_folder, scan_folder

    manifest = scan_folder(resolve_folder(folder))
    for mode, features in (("full", True), ("full", False), ("moments", False)):
        ls = cached_entry(args.model, folder, args.views, mode=mode, features=features,
                          cache_dir=args.cache_dir, manifest=manifest)
        if ls is not None:
            return ls
    return extract(args.model, folder, args.views, cache_dir=args.cache_dir, progress=True,
                   mode=args.mode, manifest=manifest)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns a process exit code."""
    ap = _Parser(prog="python -m neudep_utils", description=__doc__,
                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    pe = sub.add_parser("extract", help="extract (or read cached) logits and features")
    _common(pe)
    pe.add_argument("--shard", default=None, help="k/N: extract the k-th of N contiguous blocks")
    pe.add_argument("--batch-size", type=int, default=64)
    pe.add_argument("--workers", type=_workers, default=None,
                    help="DataLoader workers, >= 0 (default: cores, at most 4)")
    pe.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    pe.add_argument("--quiet", action="store_true", help="no progress bar")
    pm = sub.add_parser("merge", help="merge shards 0/N..N-1/N into one cache entry")
    _common(pm)
    pm.add_argument("--shards", type=int, required=True)
    pc = sub.add_parser("covariance", help="write a model's logit second moment S (.npy) from the cache")
    pc.add_argument("--model", required=True)
    pc.add_argument("--data", nargs="+", action="extend", required=True,
                    help="one or more folders (pooled; --data A B or --data A --data B)")
    pc.add_argument("--views", type=int, default=0)
    pc.add_argument("--center", action="store_true", help="centred covariance instead of E[f f^T]")
    pc.add_argument("--mode", choices=("full", "moments"), default="full",
                    help="what to extract for a folder with no cached entry (a cached full or "
                         "moments entry is used whichever this says)")
    pc.add_argument("--out", required=True, help="output .npy path ('.npy' is appended if missing)")
    pc.add_argument("--cache-dir", default=None)
    pl = sub.add_parser("logits", help="extract everything a study profile needs")
    pl.add_argument("--profile", default="default", help="smoke, default or full")
    pl.add_argument("--cache-dir", default=None)
    pl.add_argument("--quiet", action="store_true")
    try:
        args = ap.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    debug = os.environ.get("NEUDEP_DEBUG", "") not in ("", "0")
    old_show = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        rc = _run(args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return rc
    except BrokenPipeError:  # e.g. `... | head`: the reader is gone; say nothing more
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes stdout
        except (OSError, ValueError):
            pass
        return 141  # 128 + SIGPIPE, as a shell tool killed by the closed pipe
    except KeyboardInterrupt:
        _say("error: interrupted (Ctrl-C); finished chunks are kept in the cache: rerun the same "
             "command to resume")
        return 130
    except (DataError, ModelError, HubUnavailableError, CacheError, ValueError) as exc:
        if debug:
            raise
        _say(f"error: {exc}")
        return 2
    except OSError as exc:
        if debug:
            raise
        _say(f"error: {_os_error(exc, args)}")
        return 2
    except Exception as exc:  # noqa: BLE001 - one line, not a traceback
        if debug:
            raise
        _say(f"error: unexpected {type(exc).__name__}: {exc}; this is a bug: rerun with "
             "NEUDEP_DEBUG=1 for the traceback and report it")
        return 1
    finally:
        warnings.showwarning = old_show


def _run(args: argparse.Namespace) -> int:
    if args.cmd == "extract":
        t0 = time.perf_counter()
        ctx = distributed.init_from_env(args.device) if distributed.launched_by_torchrun() else None
        try:
            ls = extract(args.model, args.data, args.views, seed=args.seed,
                         label_mode=args.label_mode, shard=args.shard, mode=args.mode,
                         features=not args.no_features, cache_dir=args.cache_dir,
                         batch_size=args.batch_size, num_workers=args.workers,
                         device=args.device, progress=not args.quiet, dist=ctx)
        finally:
            if ctx is not None:
                distributed.shutdown()
        if ls is not None:  # ranks other than 0 of a torchrun launch report nothing
            _report(ls, time.perf_counter() - t0)
            if ctx is not None and "rank_shares" not in ls.meta:
                print(f"world size: {ctx.world_size} ({ctx.backend}); the entry was already in "
                      "the cache: no rank had images to process")
    elif args.cmd == "merge":
        t0 = time.perf_counter()
        ls = merge_shards(args.model, args.data, args.shards, args.views, seed=args.seed,
                          label_mode=args.label_mode, mode=args.mode,
                          features=not args.no_features, cache_dir=args.cache_dir)
        _report(ls, time.perf_counter() - t0)
    elif args.cmd == "covariance":
        import io

        import numpy as np

        out = _out_path(args.out)
        remove_stale_temporaries(out.parent)  # of an earlier `covariance` killed mid-write
        folders = _distinct_folders(args.data)
        mom = None
        for d in folders:
            ls = _entry_for_covariance(args, d)
            if ls.skipped:
                _say(f"warning: {d}: {ls.skipped_note()}")
            mom = ls.moments if mom is None else mom + ls.moments
        S = mom.second_moment(center=args.center)
        buf = io.BytesIO()
        np.save(buf, S)
        atomic_write_bytes(out, buf.getvalue(), hint="choose --out in")
        print(f"wrote {out}: {S.shape[0]}x{S.shape[1]} "
              f"{'centred covariance' if args.center else 'second moment'} from "
              f"{mom.count} logit vectors")
    elif args.cmd == "logits":
        for ex in get_profile(args.profile).extractions():
            t0 = time.perf_counter()
            print(f"== {ex.model} on {ex.folder} (views={ex.views + 1}, {ex.mode})", flush=True)
            ls = read_entry(**ex.kwargs(), cache_dir=args.cache_dir, progress=not args.quiet)
            _report(ls, time.perf_counter() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
