"""The book as one PDF, offline: Sphinx's single-page HTML build printed by headless chromium.

``make pdf`` runs ``jupyter-book build book --builder singlehtml`` and then::

    python -m neudep_utils.report.pdf --html book/_build/singlehtml/index.html \\
        --out book/_build/pdf/neudep.pdf

Chromium gets a time budget to run the page's scripts (MathJax typesets the formulas, from the
book's own ``_static/mathjax/``) before printing; the print style sheet
(``book/_static/neudep.css``) keeps tables and figures whole, hides the navigation and the
all-numbers appendix (left to the HTML) and shows the title page.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

__all__ = ["count_pages", "find_chromium", "main", "print_pdf"]


def find_chromium(explicit: str | None = None) -> str | None:
    """Path of a chromium binary (``explicit``, ``$CHROMIUM`` or Debian's ``chromium``)."""
    for name in (explicit or "", os.environ.get("CHROMIUM", ""), "chromium",
                 "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def count_pages(pdf: str | Path) -> int:
    """Number of pages of a PDF: ``pypdf`` when installed, else the ``/Type /Page`` objects
    (also inside compressed object streams)."""
    data = Path(pdf).read_bytes()
    try:
        import pypdf
    except ImportError:
        pass
    else:
        return len(pypdf.PdfReader(str(pdf)).pages)
    pattern = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")
    n = len(pattern.findall(data))
    for m in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            n += len(pattern.findall(zlib.decompress(m.group(1))))
        except zlib.error:
            continue
    return n


def print_pdf(html: str | Path, out: str | Path, chromium: str | None = None,
              budget_ms: int = 60000, timeout_s: float = 600) -> int:
    """Print ``html`` to ``out`` with headless chromium; returns the page count.

    Raises
    ------
    FileNotFoundError
        When ``html`` or chromium is missing (the message names the fix).
    RuntimeError
        When chromium fails or writes no PDF.
    """
    html = Path(html).resolve()
    if not html.is_file():
        raise FileNotFoundError(f"{html} does not exist; build it first with "
                                "`jupyter-book build book --builder singlehtml`")
    exe = find_chromium(chromium)
    if exe is None:
        raise FileNotFoundError("chromium not found; install it (`sudo make system-deps` or "
                                "`apt-get install chromium`) or set CHROMIUM")
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="neudep-pdf-") as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               f"--user-data-dir={profile}", "--no-first-run", "--allow-file-access-from-files",
               "--no-pdf-header-footer", f"--virtual-time-budget={budget_ms}",
               "--run-all-compositor-stages-before-draw", f"--print-to-pdf={tmp}",
               html.as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0 or not tmp.is_file() or tmp.stat().st_size == 0:
        raise RuntimeError(f"chromium could not print {html} (exit {proc.returncode}): "
                           + (proc.stderr.strip().splitlines() or ["no output"])[-1])
    os.replace(tmp, out)
    return count_pages(out)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for a missing input)."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--html", default="book/_build/singlehtml/index.html")
    ap.add_argument("--out", default="book/_build/pdf/neudep.pdf")
    ap.add_argument("--chromium", default=None)
    args = ap.parse_args(argv)
    try:
        pages = print_pdf(args.html, args.out, args.chromium)
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"pdf: {Path(args.out).resolve()} ({pages} pages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
