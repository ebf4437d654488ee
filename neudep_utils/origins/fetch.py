"""Download the registry's files from their public origin with pooch, convert, verify, place.

:func:`fetch` fills ``$NEUDEP_HOME/data`` and ``$NEUDEP_HOME/models`` (laid out as ``../shared``):

- a file already there with its sha256 is kept (so an interrupted run resumes where it stopped:
  every finished file is verified and in place); one with another sha256 is replaced;
- ``copy`` rows are downloaded by :class:`pooch.Pooch` from ``{base}/{repository}/{commit}/{path}``
  (``base``: ``$NEUDEP_ORIGIN_URL``, default GitHub's raw-content address) with the registry's
  sha256, into a staging folder of this process, then moved into place: a download that does not
  match is deleted, never kept; pooch retries a failed download ``retries`` times;
- ``png-to-jpeg-q95`` rows: the origin's PNG is downloaded, re-encoded by :func:`png_to_jpeg` and
  the JPEG's sha256 checked before it is moved into place;
- ``derived`` and ``local`` rows are copied from the package (``origins/files``) and checked.

Downloads run in ``workers`` threads with one progress bar. The first download goes alone: if
the origin cannot be reached at all the run stops at once with :class:`FetchError` naming that URL
and how to place the files by hand; a server that stops answering later stops the run the same way.
Other failures (HTTP 404, checksum mismatch) are collected and reported together, the first in
full (file, URL, expected and actual sha256).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import PIL
import pooch
import requests
from PIL import Image
from tqdm.auto import tqdm

from .._io import _alive, _host, atomic_write_bytes, make_dirs, write_error
from ..errors import FetchError
from .registry import GITHUB_RAW, REGISTRY, Row, shipped_file

__all__ = ["ENV_ORIGIN", "PILLOW_VERSION", "FetchReport", "fetch", "manual_hint", "origin_base",
           "png_to_jpeg", "sha256_file", "verify_rows"]

#: The environment variable that replaces GitHub's raw-content address (a mirror, a test server).
ENV_ORIGIN = "NEUDEP_ORIGIN_URL"
#: The Pillow release with which the registry's re-encoded JPEGs are bit-identical.
PILLOW_VERSION = "13.0.0"
_STAGING = ".partial"


def origin_base() -> str:
    """``$NEUDEP_ORIGIN_URL`` if set, else GitHub's raw-content address."""
    return (os.environ.get(ENV_ORIGIN) or GITHUB_RAW).rstrip("/")


def sha256_file(path: str | os.PathLike[str]) -> str:
    """sha256 (hex) of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def png_to_jpeg(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """The registry's ``png-to-jpeg-q95``: ``Image.open(src).convert("RGB").save(dst, "JPEG",
    quality=95)`` (bit-identical to the registry's files with Pillow 13.0.0)."""
    with Image.open(src) as im:
        im.convert("RGB").save(dst, "JPEG", quality=95)


def manual_hint(home: Path, base: str) -> str:
    """How to place the files by hand when the origin cannot be reached."""
    return (f"to place the files by hand, download each file of {REGISTRY} (repository, commit "
            f"and path columns) from {base}/<repository>/<commit>/<path> on a machine with "
            f"network, re-encode the png-to-jpeg-q95 rows with Pillow {PILLOW_VERSION} "
            f"(Image.open(png).convert('RGB').save(jpg, 'JPEG', quality=95)), put each file at "
            f"{home}/<first column> and rerun `make data` to verify them; or set NEUDEP_DATA and "
            f"NEUDEP_MODELS_DIR to folders holding them (a copy of ../shared/data and "
            f"../shared/models), or {ENV_ORIGIN} to a mirror serving <repository>/<commit>/<path>")


def verify_rows(root: Path, rows: Iterable[Row], workers: int = 2) -> list[str]:
    """Check that ``root/<relpath>`` of every row exists with the row's sha256.

    Parameters
    ----------
    root : Path
        A data or models folder (``rows`` of that kind).
    rows : iterable of Row
        The files it must hold.
    workers : int
        Threads hashing files.

    Returns
    -------
    list of str
        One message per missing or different file (empty: all verified), in registry order.
    """
    rows = list(rows)

    def check(row: Row) -> str | None:
        p = root / row.relpath
        if not p.is_file():
            return f"{p} is missing"
        actual = sha256_file(p)
        if actual != row.sha256:
            return f"{p}: sha256 {actual}, expected {row.sha256} (registry)"
        return None

    with ThreadPoolExecutor(max(1, workers)) as pool:
        return [m for m in pool.map(check, rows) if m]


@dataclass
class FetchReport:
    """What :func:`fetch` did: files ``kept`` (already there and verified), ``copied`` from the
    package, ``downloaded`` from the origin (``problems`` stays empty on success)."""

    kept: int = 0
    copied: int = 0
    downloaded: int = 0
    replaced: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class _Unreachable(RuntimeError):
    """The origin could not be reached (raised past pooch's retries: not a RequestException)."""


class _Downloader:
    """pooch's HTTP downloader that also records each download's sha256 (for the message of a
    mismatch: pooch deletes the file); with ``fail_fast`` a connection failure is not retried."""

    def __init__(self, timeout: float, fail_fast: bool = False):
        self._http = pooch.HTTPDownloader(progressbar=False, timeout=timeout)
        self.fail_fast = fail_fast
        self.actual: dict[str, str] = {}

    def __call__(self, url, output_file, pooch, check_only=False):
        try:
            out = self._http(url, output_file, pooch, check_only=check_only)
        except Exception as exc:
            if self.fail_fast and _unreachable(exc):
                raise _Unreachable(exc) from exc
            raise
        if not check_only and isinstance(output_file, (str, os.PathLike)):
            self.actual[url] = sha256_file(output_file)
        return out


def _staging(home: Path) -> Path:
    """This process's staging folder; those of processes that no longer run are removed."""
    top = home / _STAGING
    if top.is_dir():
        for d in top.iterdir():
            host, _, pid = d.name.rpartition("-")
            if host == _host() and pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(d, ignore_errors=True)
    return top / f"{_host()}-{os.getpid()}"


def _unreachable(exc: BaseException) -> bool:
    return isinstance(exc, (_Unreachable, requests.ConnectionError, requests.Timeout))


def _reason(exc: BaseException) -> str:
    """A short cause: the HTTP status, or the innermost connection error."""
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code} {exc.response.reason or ''}".strip()
    if isinstance(exc, _Unreachable) and exc.__cause__ is not None:
        exc = exc.__cause__
    inner = exc.args[0] if exc.args else exc
    inner = getattr(inner, "reason", inner)  # urllib3's MaxRetryError -> its cause
    text = " ".join(str(inner).split())
    if "): " in text and text.startswith(("HTTPConnection", "HTTPSConnection")):
        text = text.split("): ", 1)[1]  # drop urllib3's connection repr
    return f"{type(exc).__name__}: {text[:160]}"


def _triage(rows: list[Row], home: Path, report: FetchReport) -> list[Row]:
    """The rows still to download: a file already verified is kept, one with another checksum
    is deleted (``report.replaced``), a file shipped with the package is copied; counted in
    ``report``."""
    todo: list[Row] = []
    with ThreadPoolExecutor(2) as pool:
        states = list(pool.map(lambda r: _state(home / r.path, r.sha256), rows))
    for row, state in zip(rows, states, strict=True):
        final = home / row.path
        if state == "ok":
            report.kept += 1
            continue
        if state == "different":
            report.replaced.append(str(final))
            final.unlink()
        if row.remote:
            todo.append(row)
        else:
            _copy_shipped(row, final)
            report.copied += 1
    return todo


def _pooch(todo: list[Row], stage: Path, base: str, retries: int
           ) -> tuple[pooch.Pooch, dict[str, str], dict[str, str]]:
    """The pooch of the downloads into ``stage``, with flat staging names (one folder: no
    per-class folders to create and remove; a PNG's checksum is that of its JPEG, checked after
    conversion), and the names and addresses by row path / name."""
    keys = {r.path: f"{i:05d}" + (".png" if r.method == "png-to-jpeg-q95" else "")
            for i, r in enumerate(todo)}
    registry = {keys[r.path]: (None if r.method == "png-to-jpeg-q95" else f"sha256:{r.sha256}")
                for r in todo}
    urls = {keys[r.path]: r.url(base) for r in todo}
    pooch.get_logger().setLevel("WARNING")
    pup = pooch.create(path=stage, base_url=base + "/", registry=registry, urls=urls,
                       retry_if_failed=retries, allow_updates=True)
    return pup, keys, urls


def fetch(rows: Iterable[Row], home: Path, base: str | None = None, workers: int = 8,
          retries: int = 2, timeout: float = 30.0, progress: bool = True) -> FetchReport:
    """Download, convert and verify every row into ``home/<row.path>`` (see the module).

    Parameters
    ----------
    rows : iterable of Row
        Registry rows (both kinds may be mixed).
    home : Path
        The user data folder (``$NEUDEP_HOME``); files go to ``home/data/...``, ``home/models/...``.
    base : str, optional
        Origin address (default :func:`origin_base`).
    workers : int
        Parallel downloads.
    retries : int
        Extra attempts per failed download (pooch's ``retry_if_failed``).
    timeout : float
        Seconds to wait for the server (connect and each read).
    progress : bool
        Show a progress bar.

    Returns
    -------
    FetchReport
        Counts of files kept, copied and downloaded.

    Raises
    ------
    FetchError
        The origin cannot be reached, or some files failed (missing at the origin, checksum
        mismatch); every verified file stays in place, so rerunning resumes.
    """
    base = (base or origin_base()).rstrip("/")
    home = Path(home)
    rows = list(rows)
    report = FetchReport()
    todo = _triage(rows, home, report)
    if not todo:
        return report

    stage = _staging(home)
    make_dirs(stage, hint="point NEUDEP_HOME at")
    pup, keys, urls = _pooch(todo, stage, base, retries)
    download = _Downloader(timeout)
    stop = threading.Event()

    def get(row: Row, download: _Downloader) -> str | bool:
        """Fetch one row into place: True when it is, else a problem message (False: skipped,
        the run is stopping)."""
        if stop.is_set():
            return False
        key, url = keys[row.path], urls[keys[row.path]]
        try:
            got = Path(pup.fetch(key, downloader=download))
        except Exception as exc:  # noqa: BLE001 - every failure becomes one message
            if _unreachable(exc):
                stop.set()
                raise FetchError(f"cannot reach {url} ({_reason(exc)}) for {row.path}; "
                                 + manual_hint(home, base)) from None
            if isinstance(exc, ValueError) and "hash" in str(exc):
                return (f"{row.path}: checksum mismatch for {url}: expected sha256 "
                        f"{row.sha256}, got {download.actual.get(url, '(unknown)')}; the "
                        "download was deleted")
            return f"{row.path}: cannot download {url} ({_reason(exc)})"
        final = home / row.path
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            got.unlink(missing_ok=True)
            raise write_error(final, exc, "point NEUDEP_HOME at") from None
        if row.method == "png-to-jpeg-q95":
            return _convert(row, got, final, url) or True
        os.replace(got, final)
        return True

    lock = threading.Lock()

    def one(row: Row, download: _Downloader) -> None:
        done = get(row, download)
        with lock:
            if isinstance(done, str):
                report.problems.append(done)
            elif done:
                report.downloaded += 1

    bar = tqdm(total=len(todo), unit="file", desc="download", disable=not progress,
               dynamic_ncols=True)
    try:
        # alone, and a connection failure not retried: an unreachable origin fails here, at once
        one(todo[0], _Downloader(timeout, fail_fast=True))
        bar.update()
        with ThreadPoolExecutor(max(1, workers)) as pool:
            futures = [pool.submit(one, r, download) for r in todo[1:]]
            try:
                for fut in as_completed(futures):
                    fut.result()
                    bar.update()
            except BaseException:
                stop.set()
                for f in futures:
                    f.cancel()
                raise
    finally:
        bar.close()
        shutil.rmtree(stage, ignore_errors=True)
        with contextlib.suppress(OSError):
            stage.parent.rmdir()  # when no other run is staging
    if report.problems:
        n = len(report.problems)
        raise FetchError(f"{n} of {len(todo)} files failed; first: {report.problems[0]}; the "
                         f"{report.kept + report.copied + report.downloaded} verified files are "
                         "kept, nothing unverified: fix the origin (or set "
                         f"{ENV_ORIGIN}) and rerun to fetch the rest")
    return report


def _state(path: Path, sha256: str) -> str:
    """``"ok"`` (present, right sha256), ``"missing"`` or ``"different"``."""
    if not path.is_file():
        return "missing"
    return "ok" if sha256_file(path) == sha256 else "different"


def _copy_shipped(row: Row, final: Path) -> None:
    """A derived or local row: the package's copy, checked, written atomically."""
    src = shipped_file(row)
    if not src.is_file():
        raise FetchError(f"{row.path}: the package ships no {src} ({row.how}); reinstall "
                         "neudep-utils or copy the file from ../shared")
    data = src.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != row.sha256:
        raise FetchError(f"{row.path}: the package's copy {src} has sha256 {actual}, expected "
                         f"{row.sha256}; reinstall neudep-utils")
    atomic_write_bytes(final, data, hint="point NEUDEP_HOME at")


def _convert(row: Row, png: Path, final: Path, url: str) -> str | None:
    """Re-encode a downloaded PNG, check the JPEG's sha256, move it into place."""
    tmp = png.with_suffix(".jpg")
    try:
        try:
            png_to_jpeg(png, tmp)
        except (OSError, ValueError, SyntaxError) as exc:
            return f"{row.path}: {url} is not a readable PNG ({_reason(exc)})"
        actual = sha256_file(tmp)
        if actual != row.sha256:
            note = ("" if PIL.__version__ == PILLOW_VERSION else
                    f"; Pillow {PIL.__version__} is installed, the registry's JPEGs are "
                    f"bit-identical with Pillow {PILLOW_VERSION}")
            return (f"{row.path}: checksum mismatch after png-to-jpeg-q95 of {url}: expected "
                    f"sha256 {row.sha256}, got {actual}; nothing kept{note}")
        os.replace(tmp, final)
        return None
    finally:
        png.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
