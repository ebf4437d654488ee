"""``python -m neudep_utils data`` (``make data``, ``neudep data``): the images and weights a
profile needs, verified, from wherever :mod:`neudep_utils.locations` finds them or else from their
public origin.

For each folder (``data``, ``models``): when ``NEUDEP_DATA`` / ``NEUDEP_MODELS_DIR`` is set or
``../shared`` is beside the checkout, every file the profile needs is checked there against the
registry and nothing is downloaded; otherwise :func:`neudep_utils.origins.fetch.fetch` fills
``$NEUDEP_HOME/<folder>`` and records it as verified, where every later command finds it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from .. import locations
from .._io import atomic_write_bytes
from ..errors import FetchError
from .fetch import ENV_ORIGIN, fetch, origin_base, verify_rows
from .registry import Row, manifest_text, profile_rows, registry_sha256

__all__ = ["add_parser", "cmd_data", "ensure"]

_HELP = """Verify, or download from their public origin, every image and weight a profile needs.

With NEUDEP_DATA / NEUDEP_MODELS_DIR set, or ../shared beside the checkout, the files there are
checked against the package's registry (sha256) and nothing is downloaded. Otherwise each file is
downloaded from {NEUDEP_ORIGIN_URL:-https://raw.githubusercontent.com}/<repository>/<commit>/<path>,
converted where the registry says so, checked and laid out in $NEUDEP_HOME/data and
$NEUDEP_HOME/models (default: the platform's user cache folder), where make test, make book and
every command find them. Rerunning resumes an interrupted download.

example:
  python -m neudep_utils data                     # the default profile
  NEUDEP_HOME=/scratch/neudep python -m neudep_utils data --profile smoke
"""

_WHERE = {"env": "{var}", "shared": "../shared beside the checkout", "home": "NEUDEP_HOME"}


def add_parser(sub) -> argparse.ArgumentParser:
    """Add the ``data`` subcommand to the command line's subparsers.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The ``add_subparsers()`` result of :func:`neudep_utils.cli.main`.

    Returns
    -------
    argparse.ArgumentParser
        The ``data`` parser.
    """
    p = sub.add_parser("data", help="verify or download every image and weight a profile needs",
                       description=_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="default", help="smoke, default or full (default: default)")
    p.add_argument("--workers", type=_positive, default=8, help="parallel downloads (default 8)")
    p.add_argument("--retries", type=_non_negative, default=2,
                   help="extra attempts per failed download (default 2)")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="seconds to wait for the server (default 30)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _positive(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text}: need an integer >= 1")
    return v


def _non_negative(text: str) -> int:
    v = int(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"{text}: need an integer >= 0")
    return v


def cmd_data(args: argparse.Namespace) -> int:
    """Run ``data`` (see the module): print one line per folder, 0 when every file is verified.

    Parameters
    ----------
    args : argparse.Namespace
        ``profile``, ``workers``, ``retries``, ``timeout``, ``quiet``.

    Returns
    -------
    int
        0 (failures raise :class:`~neudep_utils.errors.FetchError`, printed by the CLI).
    """
    for line in ensure(args.profile, workers=args.workers, retries=args.retries,
                       timeout=args.timeout, progress=not args.quiet):
        print(line, flush=True)
    return 0


def ensure(profile: str = "default", workers: int = 8, retries: int = 2, timeout: float = 30.0,
           progress: bool = False) -> list[str]:
    """Make every file ``profile`` needs available and verified (see the module).

    Parameters
    ----------
    profile : str
        ``smoke``, ``default`` or ``full``.
    workers : int
        Parallel downloads.
    retries : int
        Extra attempts per failed download.
    timeout : float
        Seconds to wait for the server.
    progress : bool
        Show a progress bar while downloading.

    Returns
    -------
    list of str
        One line per folder saying where it is and what was checked or downloaded.

    Raises
    ------
    FetchError
        A local folder does not match the registry, or a download failed.
    """
    rows = profile_rows(profile)
    lines: list[str] = []
    to_fetch: dict[str, list[Row]] = {}
    for kind in ("data", "models"):
        mine = [r for r in rows if r.kind == kind]
        loc = locations.find(kind)
        if loc.source in ("env", "shared"):
            lines.append(_verify_local(kind, loc, mine))
        else:
            to_fetch[kind] = mine
    if not to_fetch:
        return lines
    home = locations.home()
    base = origin_base()
    t0 = time.perf_counter()
    marker = locations.verified_kinds(home)
    try:
        report = fetch([r for k in to_fetch for r in to_fetch[k]], home, base=base,
                       workers=workers, retries=retries, timeout=timeout, progress=progress)
    except BaseException:
        # an incomplete folder is no longer one every command may use
        if any(k in marker for k in to_fetch):
            _write_marker(home, {k: v for k, v in marker.items() if k not in to_fetch})
        raise
    took = time.perf_counter() - t0
    for kind, mine in to_fetch.items():
        folder = home / kind
        folder.mkdir(parents=True, exist_ok=True)
        if kind == "data" and mine:
            _write_if_changed(folder / "MANIFEST.sha256", manifest_text(mine).encode())
        marker[kind] = {"profile": profile, "files": len(mine), "registry_sha256": registry_sha256()}
        lines.append(f"{kind}: {len(mine)} files verified in {folder} (NEUDEP_HOME)")
    _write_marker(home, marker)
    lines.append(f"origin {base}: {report.downloaded} downloaded, {report.kept} already there, "
                 f"{report.copied} copied from the package"
                 + (f", {len(report.replaced)} replaced (sha256 differed)" if report.replaced else "")
                 + f" in {took:.1f} s")
    return lines


def _verify_local(kind: str, loc: locations.Location, rows: list[Row]) -> str:
    """Check a folder found by :func:`neudep_utils.locations.find` (never downloads)."""
    where = _WHERE[loc.source].format(var=locations.ENV[kind])
    fix = (f"unset {locations.ENV[kind]} to download into NEUDEP_HOME, or point it at a folder "
           f"holding {locations.HOLDS[kind]}" if loc.source == "env" else
           f"restore it from its origin (registry), or set {locations.ENV[kind]} to an intact copy")
    if not loc.path.is_dir():
        raise FetchError(f"{kind} folder {loc.path} ({where}) does not exist; {fix}")
    t0 = time.perf_counter()
    problems = verify_rows(loc.path, rows)
    if problems:
        raise FetchError(f"{kind} folder {loc.path} ({where}) does not match the registry: "
                         f"{len(problems)} of {len(rows)} files; first: {problems[0]}; {fix}")
    return (f"{kind}: {len(rows)} files verified in {loc.path} ({where}) in "
            f"{time.perf_counter() - t0:.1f} s; nothing downloaded ({ENV_ORIGIN} not used)")


def _write_marker(home: Path, marker: dict) -> None:
    """Record the folders verified in ``home`` (read by :func:`neudep_utils.locations.find`)."""
    _write_if_changed(home / locations.MARKER,
                      (json.dumps(marker, indent=1, sort_keys=True) + "\n").encode())


def _write_if_changed(path: Path, data: bytes) -> None:
    """Write atomically unless the file already holds ``data`` (its mtime enters notebook
    fingerprints)."""
    try:
        if path.read_bytes() == data:
            return
    except OSError:
        pass
    atomic_write_bytes(path, data, hint="point NEUDEP_HOME at")
