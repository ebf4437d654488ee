"""A local mirror in GitHub's raw-content layout, for tests and for a lab that has ``../shared``.

:class:`Mirror` is an HTTP server on 127.0.0.1 (in this process, one thread per request) that
answers ``GET /{repository}/{commit}/{path}`` from a table of files, and can misbehave on purpose:
serve altered bytes (``corrupt``), drop the connection after a number of answers (``fail_after``),
cut a body short once (``truncate_once``) or hold answers until released (``gate``). It records
every request. From the shell it serves the ``copy`` rows of a ``../shared`` folder::

    python -m neudep_utils.origins.mirror --shared ../shared --port 8765
    NEUDEP_ORIGIN_URL=http://127.0.0.1:8765 NEUDEP_HOME=/tmp/neudep make data

The ``png-to-jpeg-q95`` rows cannot be served this way: ``../shared`` holds only their JPEGs,
and re-encoding a JPEG to PNG does not give back the origin's PNG (the sha256 of the converted
file would not match). Their origin files answer 404 unless ``pngs`` gives a folder of them.
"""

from __future__ import annotations

import argparse
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

from .registry import Row, load_registry

__all__ = ["Mirror", "mirror_table"]


def mirror_table(rows: list[Row], shared: Path, pngs: Path | None = None) -> dict[str, Path]:
    """``{"{repository}/{commit}/{source}": local file}`` for the rows a ``../shared``-layout
    folder can serve: every ``copy`` row, and the ``png-to-jpeg-q95`` rows whose origin PNG is in
    ``pngs`` (laid out as ``pngs/{repository}/{commit}/{source}``).

    Parameters
    ----------
    rows : list of Row
        Registry rows.
    shared : Path
        A folder laid out as ``../shared`` (``data/...``, ``models/...``).
    pngs : Path, optional
        A folder of origin PNGs in the raw-content layout.

    Returns
    -------
    dict
        URL path (unquoted, no leading slash) -> file.
    """
    table: dict[str, Path] = {}
    for r in rows:
        key = f"{r.repository}/{r.commit}/{r.source}"
        if r.method == "copy":
            table[key] = shared / r.path
        elif r.method == "png-to-jpeg-q95" and pngs is not None and (pngs / key).is_file():
            table[key] = pngs / key
    return table


class Mirror:
    """An HTTP server on 127.0.0.1 serving ``files`` (URL path -> ``Path`` or ``bytes``).

    Parameters
    ----------
    files : dict
        URL path without the leading slash (``owner/repo/commit/dir/file.png``) -> its content,
        a ``Path`` or ``bytes``.
    port : int
        0 for any free port.

    Attributes
    ----------
    requests : list of str
        Every requested path, in arrival order.
    corrupt : set of str
        Paths answered with their bytes altered (last byte flipped).
    fail_after : int or None
        After this many answered requests, drop every connection without an answer.
    truncate_once : set of str
        Paths whose next answer announces the full length but sends half, then closes.
    gate : threading.Event or None
        When an Event, every request after the first ``gate_after`` waits until it is set
        (``reached`` is set when the first one waits).
    """

    def __init__(self, files: dict[str, Path | bytes], port: int = 0):
        self.files = dict(files)
        self.requests: list[str] = []
        self.corrupt: set[str] = set()
        self.truncate_once: set[str] = set()
        self.fail_after: int | None = None
        self.gate: threading.Event | None = None
        self.gate_after = 0
        self.answered = 0
        self.reached = threading.Event()  # set when a request waits at the gate
        self._lock = threading.Lock()
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                mirror._serve(self)

            def log_message(self, *args):  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (the value of ``NEUDEP_ORIGIN_URL``)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> Mirror:
        """Serve in a daemon thread; returns self."""
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (releases a held gate)."""
        if self.gate is not None:
            self.gate.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Mirror:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        path = unquote(h.path.split("?", 1)[0]).lstrip("/")
        with self._lock:
            self.requests.append(path)
            n = self.answered
            self.answered += 1
            dead = self.fail_after is not None and n >= self.fail_after
            truncate = path in self.truncate_once
            self.truncate_once.discard(path)
        if self.gate is not None and n >= self.gate_after:
            self.reached.set()
            self.gate.wait(timeout=600)
        if dead:
            h.close_connection = True
            h.connection.close()  # no answer at all: the client sees a dropped connection
            return
        src = self.files.get(path)
        if src is None:
            h.send_error(404, "Not Found")
            return
        data = src if isinstance(src, bytes) else Path(src).read_bytes()
        if path in self.corrupt:
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        h.send_response(200)
        h.send_header("Content-Type", "application/octet-stream")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if truncate:
            h.wfile.write(data[: len(data) // 2])
            h.close_connection = True
            return
        h.wfile.write(data)


def main(argv: list[str] | None = None) -> int:
    """Serve the ``copy`` rows of a ``../shared`` folder until Ctrl-C (see the module)."""
    ap = argparse.ArgumentParser(prog="python -m neudep_utils.origins.mirror",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--shared", required=True, help="a folder laid out as ../shared")
    ap.add_argument("--pngs", default=None, help="origin PNGs in <repository>/<commit>/<path>")
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--corrupt", nargs="*", default=(), metavar="PATH",
                    help="registry paths (data/... or models/...) to serve altered")
    args = ap.parse_args(argv)
    rows = load_registry()
    table = mirror_table(rows, Path(args.shared), Path(args.pngs) if args.pngs else None)
    m = Mirror(table, port=args.port)
    by_path = {r.path: f"{r.repository}/{r.commit}/{r.source}" for r in rows}
    for p in args.corrupt:
        if p not in by_path:
            print(f"error: --corrupt {p}: not a registry path", file=sys.stderr)
            return 2
        m.corrupt.add(by_path[p])
    print(f"serving {len(table)} of {len(rows)} registry files at {m.url}", flush=True)
    try:
        m.start()
        m._thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        m.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
