"""Files written atomically and read back checked: the one home of the package's file I/O.

Every file the package writes (cache entries, chunks, exported ONNX graphs, dependency fits,
results) goes through :func:`atomic_write_bytes`: a temporary file in the same folder, fsync,
rename. On any failure the temporary file is removed, and an ``OSError`` becomes a
:class:`WriteError` that names the file and the fix. A process killed between the write and the
rename (SIGKILL, power loss) leaves a ``.<name>.<pid>.tmp`` file behind;
:func:`remove_stale_temporaries` deletes those of processes that no longer run.

:func:`load_npz_checked` reads an ``.npz`` back and returns ``None`` (never raises) when it is
missing, truncated, damaged or does not match its recorded sha256, so callers rebuild it.
:func:`sha256_file` is the package's one checksum of a file; :func:`file_lock` serialises two
processes that would write the same thing (two ``extract`` runs of one cache entry).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import socket
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from .errors import WriteError

__all__ = ["atomic_save_npz", "atomic_write_bytes", "file_lock", "load_npz_checked",
           "make_dirs", "meta_checksum", "remove_stale_temporaries", "sha256_file", "write_error"]

#: A temporary file of another machine (same folder on a shared filesystem) is only removed once
#: it is this old: its writer's process cannot be checked from here.
FOREIGN_TMP_AGE_S = 24 * 3600


def write_error(path: Path, exc: OSError, hint: str | None = None) -> WriteError:
    """A :class:`WriteError` for a failed write of ``path``, with a fix chosen by errno."""
    where = hint or "point --cache-dir (or NEUDEP_CACHE) at"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = f"{where} a writable folder"
    elif exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        fix = (f"free space there or {where} a disk with room; rerunning resumes from the last "
               "finished chunk")
    elif exc.errno == errno.ENOENT:
        fix = f"create {path.parent} or {where} an existing folder"
    else:
        fix = f"check the folder or {where} another one"
    return WriteError(f"cannot write {path}: {exc.strerror or exc}; {fix}")


def make_dirs(path: Path, hint: str | None = None) -> None:
    """``mkdir -p`` that fails with a :class:`WriteError` naming the folder and the fix."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(path, exc, hint) from None


def atomic_write_bytes(path: Path, data: bytes, hint: str | None = None) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, fsync, rename).

    On any failure (full disk, read-only folder, Ctrl-C) the temporary file is removed; an
    ``OSError`` becomes a :class:`WriteError` naming ``path`` and the fix (``hint`` names
    the option that chooses the folder; default ``--cache-dir``).
    """
    path = Path(path)
    make_dirs(path.parent, hint)
    tmp = path.with_name(f".{path.name}.{_host()}-{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise write_error(path, exc, hint) from None
        raise


def atomic_save_npz(path: Path, **arrays: np.ndarray) -> str:
    """Save arrays as an uncompressed ``.npz`` atomically; returns the file's sha256."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    data = buf.getvalue()
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def meta_checksum(meta: dict) -> str:
    """sha256 of the canonical JSON of ``meta`` without its ``meta_sha256`` field."""
    body = {k: v for k, v in meta.items() if k != "meta_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def load_npz_checked(path: Path, sha256: str | None = None) -> dict[str, np.ndarray] | None:
    """Load every array of an ``.npz``; ``None`` when missing, truncated, corrupt or mismatched."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        return None
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError):
        return None


def sha256_file(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks.

    Parameters
    ----------
    path : str or path
        The file.

    Returns
    -------
    str
        The hex digest.
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def file_lock(path: Path, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if needed) for the ``with`` block.

    A second process asking for the same lock waits until the first releases it (or dies: the
    kernel drops a dead process's locks); ``on_wait`` is called once, with the holder's
    description, before it waits. The lock file is left in place (removing it would let a third
    process lock a new file while the second holds the old one).

    Parameters
    ----------
    path : path
        The lock file.
    on_wait : callable, optional
        Called with ``"pid N on HOST"`` (who holds the lock) when the lock is busy.
    """
    import fcntl

    path = Path(path)
    make_dirs(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                try:
                    holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "?"
                except OSError:
                    holder = "?"
                on_wait(holder)
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def _host() -> str:
    """This machine's name as it appears in temporary file names (no dots or dashes)."""
    return "".join(ch for ch in socket.gethostname() if ch.isalnum())[:32] or "host"


def _alive(pid: int, since: float | None = None) -> bool:
    """Whether process ``pid`` runs and could have written a file last modified at ``since``.

    A zombie (killed, not yet reaped) is not alive; nor, on Linux, is a process that started more
    than 2 s after ``since``: the writer died and its pid was reused.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        pass
    stat = _proc_stat(pid)
    if stat is None:
        return True  # not Linux (or /proc unreadable): trust kill(0)
    state, start = stat
    if state in ("Z", "X"):
        return False
    return not (since is not None and start is not None and start > since + 2.0)


def _proc_stat(pid: int) -> tuple[str, float | None] | None:
    """``(state, start time as a Unix time)`` of a process from ``/proc`` (Linux), else None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2:].split()  # after "pid (comm) "; comm may hold spaces
    try:
        ticks = int(fields[19])  # field 22 of stat(5): start time in clock ticks after boot
        btime = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                     if line.startswith("btime "))
        return fields[0], btime + ticks / os.sysconf("SC_CLK_TCK")
    except (IndexError, ValueError, OSError, StopIteration):
        return (fields[0] if fields else "?"), None


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files :func:`atomic_write_bytes` left in ``folder`` when its process
    was killed before the rename; returns the files removed.

    A temporary file of this machine is stale when its process no longer runs (or is a zombie, or
    its pid now belongs to a process started after the file was last written); one written by
    another machine (the name records the host) when it is older than
    :data:`FOREIGN_TMP_AGE_S`. Files of running writers are never touched.
    """
    removed: list[Path] = []
    try:
        candidates = list(Path(folder).glob(".*.tmp"))
    except OSError:
        return removed
    me, now = _host(), time.time()
    for tmp in candidates:
        tag = tmp.name[:-len(".tmp")].rsplit(".", 1)[-1]
        host, _, pid = tag.rpartition("-")
        if not pid.isdigit():
            continue
        if host == me:
            try:
                mtime = tmp.stat().st_mtime
            except OSError:
                continue
            stale = not _alive(int(pid), since=mtime)
        else:
            try:
                stale = now - tmp.stat().st_mtime > FOREIGN_TMP_AGE_S
            except OSError:
                continue
        if stale:
            try:
                tmp.unlink()
                removed.append(tmp)
            except OSError:
                pass
    return removed
