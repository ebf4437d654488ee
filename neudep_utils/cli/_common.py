"""What the commands share: the one-line parser errors, option types, ``--out`` checks, the
report of an extraction, and the mapping of an exception to its ``error:`` line and exit code."""

from __future__ import annotations

import argparse
import errno
import math
import os
import sys
from pathlib import Path

from ..errors import CacheError, DataError, HubUnavailableError, ModelError

#: Exceptions whose message already names the bad input and the fix: one line, exit status 2.
INPUT_ERRORS = (DataError, ModelError, HubUnavailableError, CacheError, ValueError)


class Parser(argparse.ArgumentParser):
    """argparse with a one-line ``error: ...`` (and the help hint) instead of usage + error."""

    def error(self, message: str):  # type: ignore[override]
        say(f"error: {message} (see `{self.prog} --help`)")
        raise SystemExit(2)


def say(line: str) -> None:
    """Print one line to stderr, whatever bytes a file name holds."""
    text = " ".join(str(line).split())
    sys.stderr.write(text.encode("utf-8", "backslashreplace").decode("utf-8") + "\n")
    sys.stderr.flush()


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """``warnings.showwarning`` of the command line: one ``warning: ...`` line."""
    say(f"warning: {message}")


class Once(argparse.Action):
    """An option that may be given once: a second ``--data`` is an error, not silently the one
    that wins."""

    def __call__(self, parser, namespace, values, option_string=None):
        if getattr(namespace, self.dest, None) is not None:
            parser.error(f"{option_string} given twice ({getattr(namespace, self.dest)!r} and "
                         f"{values!r}); this command takes one folder (`covariance` pools several: "
                         "--data A B)")
        setattr(namespace, self.dest, values)


def int_at_least(low: int, what: str):
    """An argparse type: an integer >= ``low`` (``what`` says what it counts)."""

    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
        if n < low:
            raise argparse.ArgumentTypeError(f"must be >= {low} ({what}), got {n}")
        return n

    return parse


def number(low: float, high: float | None = None, closed: bool = True):
    """An argparse type: a finite float in ``[low, high)`` (``(low, high)`` when not
    ``closed``; no upper bound when ``high`` is None)."""

    def parse(text: str) -> float:
        try:
            x = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid float value: {text!r}") from None
        ok = math.isfinite(x) and (x >= low if closed else x > low) and (high is None
                                                                         or x < high)
        if not ok:
            span = f"{'[' if closed else '('}{low:g}, {'inf' if high is None else f'{high:g}'})"
            raise argparse.ArgumentTypeError(f"must be a number in {span}, got {text}")
        return x

    return parse


def add_source_options(p: argparse.ArgumentParser, onnx: bool = False) -> None:
    """The options saying which model on which folder (``extract`` and ``merge``)."""
    if onnx:
        which = p.add_mutually_exclusive_group(required=True)
        which.add_argument("--model", help="embedded model (efficientnet_lite0/1/2) or timm name")
        which.add_argument("--onnx", metavar="FILE",
                           help="any ImageNet-style classifier as an ONNX file (see --preset)")
    else:
        p.add_argument("--model", required=True,
                       help="embedded model (efficientnet_lite0/1/2) or timm name")
    p.add_argument("--data", required=True, action=Once,
                   help="ImageNet-format folder <wnid>/<image>, or a subset name under $NEUDEP_DATA")
    p.add_argument("--views", type=int_at_least(0, "augmented views beyond the centre view"),
                   default=0, help="augmented views per image beyond the centre view")
    p.add_argument("--seed", type=int, default=0, help="seed of the augmented views")
    p.add_argument("--label-mode", choices=("wnid", "folder"), default="wnid",
                   help="wnid: class folders are ImageNet wnids (top-1 reported); folder: any "
                        "class folders, labelled by their sorted index (no ImageNet top-1)")
    p.add_argument("--mode", choices=("full", "moments"), default="full",
                   help="'moments' keeps only count, sum f, sum f f^T (for huge folders)")
    p.add_argument("--no-features", action="store_true", help="do not store penultimate features")
    p.add_argument("--cache-dir", default=None, help="cache folder (default $NEUDEP_CACHE or ./cache)")


def report(ls, seconds: float) -> None:
    """Print what an extraction (or a served entry) holds."""
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


def out_path(out: str) -> Path:
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


def os_error(exc: OSError) -> str:
    """The ``error:`` line of an ``OSError``: what, where, and the fix chosen by errno."""
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


def fail(exc: BaseException, debug: bool) -> int:
    """The exit status of a command that raised ``exc``, after its one ``error:`` line (a
    closed stdout pipe says nothing; ``debug`` re-raises input and unexpected errors)."""
    if isinstance(exc, BrokenPipeError):  # e.g. `... | head`: the reader is gone
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes stdout
        except (OSError, ValueError):
            pass
        return 141  # 128 + SIGPIPE, as a shell tool killed by the closed pipe
    if isinstance(exc, KeyboardInterrupt):
        say("error: interrupted (Ctrl-C); finished chunks are kept in the cache: rerun the same "
            "command to resume")
        return 130
    if debug:
        raise exc
    if isinstance(exc, INPUT_ERRORS):
        say(f"error: {exc}")
        return 2
    if isinstance(exc, OSError):
        say(f"error: {os_error(exc)}")
        return 2
    say(f"error: unexpected {type(exc).__name__}: {exc}; this is a bug: rerun with "
        "NEUDEP_DEBUG=1 for the traceback and report it")
    return 1
