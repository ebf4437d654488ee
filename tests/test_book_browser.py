"""Open the built book in a real headless browser (Debian's chromium) and check every page.

Needs a built book (``make book PROFILE=smoke``) and chromium (``apt-get install chromium``; the
``make book-test`` target and ``.ci/run`` install it). Skipped with a reason when either is
missing, unless ``NEUDEP_REQUIRE_BROWSER=1`` (set by CI), which turns the skip into a failure.

The browser is driven through the Chrome DevTools Protocol over a pipe (``--remote-debugging-pipe``),
so no Python package beyond the standard library is needed. The book is served on 127.0.0.1 by a
local ``http.server``; every other host is made unresolvable inside the browser, so external
resources fail fast and are ignored, while a failing local resource fails the test. MathJax is
served from the book's own ``_static/mathjax/`` (no CDN): every formula must be typeset with the
network off. Screenshots of the claims page and of the introduction (formulas) are saved as
``book/_build/html/claims-screenshot.png`` and ``book/_build/html/math-screenshot.png``.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import functools
import http.server
import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urldefrag, urlparse

import pytest

from neudep_utils.report.pdf import count_pages
from neudep_utils.verdicts import CLAIMS, LEVELS

REPO = Path(__file__).resolve().parents[1]
SITE = REPO / "book" / "_build" / "html"
SCREENSHOT = SITE / "claims-screenshot.png"
MATH_SCREENSHOT = SITE / "math-screenshot.png"
REQUIRED = os.environ.get("NEUDEP_REQUIRE_BROWSER", "") not in ("", "0")

pytestmark = pytest.mark.browser


def _skip(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"{reason} (NEUDEP_REQUIRE_BROWSER is set)")
    pytest.skip(reason)


def find_chromium() -> str | None:
    """Path of a chromium binary (``$CHROMIUM`` or Debian's ``chromium``)."""
    for name in (os.environ.get("CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


# --------------------------------------------------------------------------------------------
# A minimal Chrome DevTools Protocol client over --remote-debugging-pipe
# --------------------------------------------------------------------------------------------


class CDPError(RuntimeError):
    """The browser answered a command with an error, or did not answer in time."""


class Chromium:
    """Headless chromium driven through the DevTools protocol on file descriptors 3 and 4."""

    def __init__(self, binary: str, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="neudep-chromium-")
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def wire_pipes() -> None:  # runs in the child: chromium reads fd 3, writes fd 4
            a = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        args = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                "--disable-extensions", "--mute-audio", "--hide-scrollbars",
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                f"--user-data-dir={self.profile}", "--remote-debugging-pipe", "about:blank"]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, pass_fds=(3, 4),
                                     preexec_fn=wire_pipes)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None

    # -- transport --
    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CDPError("timed out waiting for the browser")
            ready, _, _ = select.select([self._from_chrome], [], [], left)
            if ready:
                chunk = os.read(self._from_chrome, 1 << 20)
                if not chunk:
                    raise CDPError(f"the browser exited (code {self.proc.poll()})")
                self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict[str, Any] | None = None,
             session: bool = True, timeout: float | None = None) -> dict[str, Any]:
        """Send a command and return its result (events that arrive meanwhile are kept)."""
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise CDPError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_event(self, method: str, timeout: float | None = None) -> dict[str, Any]:
        """Wait for (and consume) the first event named ``method``."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            for i, ev in enumerate(self.events):
                if ev["method"] == method:
                    return self.events.pop(i)
            self.events.append(self._read_message(deadline))

    # -- page helpers --
    def open_tab(self) -> None:
        """Create a tab, attach to it and enable the domains the checks read."""
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)
        attached = self.send("Target.attachToTarget",
                             {"targetId": target["targetId"], "flatten": True}, session=False)
        self.session = attached["sessionId"]
        for domain in ("Page", "Network", "Runtime"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False})

    def load(self, url: str) -> list[dict[str, Any]]:
        """Navigate to ``url``, wait for its load event; returns the events seen meanwhile."""
        self.events.clear()
        self.send("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired")
        time.sleep(0.05)  # let trailing events (failed requests) arrive
        with contextlib.suppress(CDPError):
            self.send("Runtime.evaluate", {"expression": "1"}, timeout=5)
        events, self.events = self.events, []
        return events

    def evaluate(self, expression: str) -> Any:
        """Value of a JavaScript expression (promises awaited)."""
        res = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                             "returnByValue": True})
        if "exceptionDetails" in res:
            raise CDPError(f"script failed: {res['exceptionDetails']}")
        return res["result"].get("value")

    def screenshot(self, path: Path, max_height: int = 8000) -> None:
        """Full-page PNG screenshot of the current page."""
        metrics = self.send("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        height = int(min(max(size["height"], 900), max_height))
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": 1280, "height": height, "deviceScaleFactor": 1, "mobile": False})
        shot = self.send("Page.captureScreenshot", {"format": "png"})
        path.write_bytes(base64.b64decode(shot["data"]))
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False})

    def close(self) -> None:
        """Stop the browser and remove its profile."""
        with contextlib.suppress(Exception):
            self.send("Browser.close", session=False, timeout=5)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_chrome, self._from_chrome):
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self.profile, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# What each page reports
# --------------------------------------------------------------------------------------------

PAGE_PROBE = r"""
(async () => {
  const imgs = Array.from(document.images);
  await Promise.all(imgs.map(i => { i.loading = 'eager';
    return i.complete ? null : new Promise(r => { i.onload = r; i.onerror = r;
                                                  setTimeout(r, 10000); }); }));
  const errSel = 'div.output.error, div.output.traceback, .cell_output .traceback, ' +
                 'div.output_error, .highlight-ipythontb';
  const stderr = Array.from(document.querySelectorAll('div.output.stderr'))
                      .map(e => e.innerText.slice(0, 300));
  const body = document.body ? document.body.innerText : '';
  return {
    title: document.title,
    redirect: Array.from(document.querySelectorAll('meta[http-equiv="refresh" i]'))
                   .map(m => new URL((m.content.split(/url=/i)[1] || '').trim(),
                                     document.baseURI).href),
    main: !!document.querySelector('main, article, div.bd-article'),
    images: imgs.map(i => ({src: i.currentSrc || i.src, w: i.naturalWidth, h: i.naturalHeight})),
    errors: Array.from(document.querySelectorAll(errSel)).map(e => e.innerText.slice(0, 300)),
    traceback: body.includes('Traceback (most recent call last)'),
    stderr: stderr,
    links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
    ids: Array.from(document.querySelectorAll('[id], a[name]')).map(e => e.id || e.name),
  };
})()
"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass


@pytest.fixture(scope="module")
def site() -> Path:
    """The built HTML book (skipped when it has not been built)."""
    if not (SITE / "index.html").is_file():
        _skip(f"no built book at {SITE}: run `make book PROFILE=smoke` first")
    return SITE


@pytest.fixture(scope="module")
def server(site: Path):
    """Base URL of a local HTTP server for the built book."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    """A headless chromium with one tab open."""
    binary = find_chromium()
    if binary is None:
        _skip("chromium not found: `apt-get install -y chromium` (done by `make book-test`)")
    b = Chromium(binary)
    try:
        b.open_tab()
        yield b
    finally:
        b.close()


def book_pages(site: Path) -> list[str]:
    """Relative paths of the book's HTML pages (not the theme's static files)."""
    skip = {"_static", "_sources", "_images", "_panels_static", "jupyter_execute"}
    return sorted(str(p.relative_to(site)) for p in site.rglob("*.html")
                  if not skip.intersection(p.relative_to(site).parts))


@pytest.fixture(scope="module")
def visited(site: Path, server: str, browser: Chromium) -> dict[str, dict[str, Any]]:
    """Every page loaded once: its probe results, failed local requests and script errors."""
    out = {}
    for rel in book_pages(site):
        url = f"{server}/{rel}"
        events = browser.load(url)
        urls = {e["params"]["requestId"]: e["params"]["request"]["url"] for e in events
                if e["method"] == "Network.requestWillBeSent"}
        status = [e["params"]["response"]["status"] for e in events
                  if e["method"] == "Network.responseReceived"
                  and e["params"]["response"]["url"].split("#")[0] == url]
        failed = [(urls.get(e["params"]["requestId"], "?"), e["params"].get("errorText"))
                  for e in events if e["method"] == "Network.loadingFailed"]
        bad_status = [(e["params"]["response"]["url"], e["params"]["response"]["status"])
                      for e in events if e["method"] == "Network.responseReceived"
                      and e["params"]["response"]["status"] >= 400]
        exceptions = [e["params"]["exceptionDetails"].get("exception", {}).get("description")
                      or e["params"]["exceptionDetails"].get("text")
                      for e in events if e["method"] == "Runtime.exceptionThrown"]
        probe = browser.evaluate(PAGE_PROBE)
        out[rel] = {"url": url, "status": status, "failed": failed, "bad_status": bad_status,
                    "exceptions": exceptions, **probe}
    return out


def _local(url: str, server: str) -> bool:
    return url.startswith(server + "/") or url == server


def test_every_page_loads(site: Path, server: str, visited: dict[str, dict[str, Any]]) -> None:
    """Each page answers 200, has a title and main content, and every local resource loads."""
    pages = book_pages(site)
    assert {"index.html", "intro.html", "generated/claims.html",
            "generated/reproducibility.html", "references.html"} <= set(pages), pages
    assert any(p.startswith("executed/") for p in pages), "no executed notebook page in the book"
    problems = []
    for rel, v in visited.items():
        if v["status"] and v["status"][-1] != 200:
            problems.append(f"{rel}: HTTP {v['status']}")
        is_redirect = 'http-equiv="refresh"' in (site / rel).read_text(errors="replace").lower()
        if not is_redirect and (not v["title"] or not v["main"]):
            # (a redirect stub such as index.html may be probed before or after it redirects)
            problems.append(f"{rel}: no title or main content")
        # (the browser's own request for /favicon.ico is not a resource of the book)
        local_fail = [f for f in v["failed"] + v["bad_status"]
                      if _local(f[0], server) and not f[0].endswith("/favicon.ico")]
        if local_fail:
            problems.append(f"{rel}: local resources failed: {local_fail}")
        if v["exceptions"]:
            problems.append(f"{rel}: script errors: {v['exceptions'][:3]}")
    assert not problems, "\n".join(problems)


def test_every_figure_loads(visited: dict[str, dict[str, Any]], server: str) -> None:
    """Every <img> of every page is decoded (naturalWidth > 0); notebooks have figures."""
    broken = [f"{rel}: {img['src']}" for rel, v in visited.items() for img in v["images"]
              if _local(img["src"], server) and not img["w"] > 0]
    assert not broken, "images that did not load:\n" + "\n".join(broken)
    n_fig = sum(1 for rel, v in visited.items() if rel.startswith("executed/")
                for img in v["images"] if _local(img["src"], server))
    assert n_fig > 0, "the executed notebooks render no figure"


def test_no_error_output(visited: dict[str, dict[str, Any]]) -> None:
    """No page renders a cell error or traceback; stderr outputs are reported as warnings."""
    bad = {rel: v["errors"][:2] or ["Traceback in page text"] for rel, v in visited.items()
           if v["errors"] or v["traceback"]}
    assert not bad, f"error output rendered: {json.dumps(bad, indent=1)[:3000]}"
    for rel, v in visited.items():
        for text in v["stderr"]:
            warnings.warn(f"{rel} renders stderr output: {text[:200]!r}", stacklevel=1)


def test_internal_links_resolve(site: Path, server: str,
                                visited: dict[str, dict[str, Any]]) -> None:
    """Every link to the book itself points to an existing file, and its #anchor exists."""
    ids = {v["url"]: set(v["ids"]) for v in visited.values()}
    broken = []
    for rel, v in visited.items():
        for href in v["links"] + v["redirect"]:
            if not _local(href, server):
                continue
            target, frag = urldefrag(href)
            path = unquote(urlparse(target).path).lstrip("/")
            file = site / path
            if file.is_dir() or path == "":
                file = file / "index.html"
                target = target.rstrip("/") + "/index.html"
            if not file.is_file():
                broken.append(f"{rel}: {href} (no file {file.relative_to(site)})")
                continue
            if frag and file.suffix == ".html" and target in ids:
                if unquote(frag) not in ids[target]:
                    broken.append(f"{rel}: {href} (no anchor #{frag})")
    assert not broken, "broken internal links:\n" + "\n".join(sorted(set(broken))[:50])


def test_claims_page_screenshot(site: Path, server: str, browser: Chromium,
                                visited: dict[str, dict[str, Any]]) -> None:
    """The claims page lists claims with verdicts; a screenshot is saved beside the book."""
    v = visited["generated/claims.html"]
    browser.load(v["url"])
    text = browser.evaluate("document.querySelector('main, article').innerText")
    for cid in ("C1", "C2", "C3", "C4", "C5", "C6a", "C6b", "C6c"):
        assert cid in text, f"claim {cid} missing from the claims page"
    browser.screenshot(SCREENSHOT)
    data = SCREENSHOT.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, "screenshot is not a PNG"


MATH_PROBE = r"""
(async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  const math = Array.from(document.querySelectorAll('.math'));
  return {
    n_math: math.length,
    n_typeset: document.querySelectorAll('mjx-container').length,
    raw: math.filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.slice(0, 80)),
    scripts: Array.from(document.scripts).map(s => s.src).filter(s => /mathjax/i.test(s)),
  };
})()
"""


def test_formulas_are_typeset_offline(site: Path, server: str, browser: Chromium,
                                      visited: dict[str, dict[str, Any]]) -> None:
    """Every page with math loads MathJax from the book itself and typesets every formula
    (``mjx-container`` elements) while every host but 127.0.0.1 is unresolvable."""
    pages = [rel for rel in visited
             if 'class="math' in (site / rel).read_text(errors="replace")]
    assert "intro.html" in pages, "the introduction has formulas but no math markup"
    problems = []
    for rel in pages:
        browser.load(visited[rel]["url"])
        r = browser.evaluate(MATH_PROBE)
        if not r["scripts"]:
            problems.append(f"{rel}: no MathJax script on the page")
        elif not all(_local(u, server) for u in r["scripts"]):
            problems.append(f"{rel}: MathJax is not served by the book: {r['scripts']}")
        if r["n_typeset"] == 0 or r["raw"]:
            problems.append(f"{rel}: {len(r['raw'])} of {r['n_math']} formulas not typeset, "
                            f"e.g. {r['raw'][:2]}")
    assert not problems, "\n".join(problems)
    browser.load(visited["intro.html"]["url"])
    browser.evaluate(MATH_PROBE)
    browser.screenshot(MATH_SCREENSHOT)
    assert MATH_SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _atlas_models(site: Path) -> list[str]:
    html = (site / "generated" / "atlas.html").read_text()
    m = re.search(r'id="neudep-atlas" data-models="([^"]*)"', html)
    assert m, "the atlas page has no #neudep-atlas element"
    return m.group(1).split()


def test_atlas_finds_macaw_for_every_model(site: Path, server: str, browser: Chromium) -> None:
    """The atlas loads its data offline, and searching 'macaw' gives a row for every model
    (a dependency, or the note that this profile did not fit it); sorting works."""
    models = _atlas_models(site)
    assert models, "the atlas has no model"
    browser.load(f"{server}/generated/atlas.html")  # lazy: no data before the box is used
    assert browser.evaluate("document.querySelectorAll('script[src*=\"atlas_\"]').length") == 0
    browser.load(f"{server}/generated/atlas.html?q=macaw")
    status = ""
    for _ in range(100):
        status = browser.evaluate("document.getElementById('atlas-status').textContent")
        if "dependencies" in status:
            break
        time.sleep(0.1)
    assert "dependencies" in status, f"the atlas did not load: {status!r}"
    rows = browser.evaluate(
        "Array.from(document.querySelectorAll('#atlas-table tbody tr')).map(r => "
        "Array.from(r.cells).map(c => c.innerText))")
    found = {r[0] for r in rows if "macaw" in r[1]}
    assert found == set(models), f"'macaw' found for {sorted(found)}, models {models}"
    fitted = [r for r in rows if len(r) == 7]
    assert all("(" in r[4] and "(" in r[5] for r in fitted)  # kept and AP beside the original
    browser.evaluate("document.querySelector('th[data-col=\"r2\"]').click(); 1")
    r2 = browser.evaluate(
        "Array.from(document.querySelectorAll('#atlas-table tbody tr')).filter(r => "
        "r.cells.length == 7).map(r => parseFloat(r.cells[3].innerText))")
    r2 = [x for x in r2 if x == x]
    assert r2 == sorted(r2, reverse=True), "sorting by R^2 did not order the rows"


TABLE_PROBE = r"""
(() => Array.from(document.querySelectorAll('article.bd-article table')).filter(t => {
  const box = t.closest('.cell_output, .output') || t;
  return t.scrollWidth > t.clientWidth + 1 || box.scrollWidth > box.clientWidth + 1;
}).map(t => ({width: t.scrollWidth, column: t.clientWidth,
             head: (t.tHead ? t.tHead.innerText : t.innerText).replace(/\s+/g, ' ').slice(0, 120)}))
)()
"""


def test_tables_show_every_column_at_1400px(site: Path, server: str, browser: Chromium,
                                            visited: dict[str, dict[str, Any]]) -> None:
    """At 1400 px, every table of the landing, claims and reproducibility pages and of the
    notebooks shows all its columns without scrolling sideways (the columns the prose names)."""
    pages = [rel for rel in visited if rel.startswith("executed/") or rel in (
        "intro.html", "generated/claims.html", "generated/reproducibility.html")]
    browser.send("Emulation.setDeviceMetricsOverride",
                 {"width": 1400, "height": 900, "deviceScaleFactor": 1, "mobile": False})
    wide = {}
    try:
        for rel in pages:
            browser.load(visited[rel]["url"])
            browser.send("Emulation.setDeviceMetricsOverride",
                         {"width": 1400, "height": 900, "deviceScaleFactor": 1,
                          "mobile": False})
            found = browser.evaluate(TABLE_PROBE)
            if found:
                wide[rel] = found
    finally:
        browser.send("Emulation.setDeviceMetricsOverride",
                     {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False})
    assert not wide, "tables wider than the column at 1400 px:\n" + json.dumps(wide, indent=1)


PDF = REPO / "book" / "_build" / "pdf" / "neudep.pdf"


def _pdf_or_skip() -> Path:
    if not PDF.is_file():
        _skip(f"no {PDF}: run `make book PROFILE=smoke && make pdf PROFILE=smoke`")
    return PDF


def test_pdf_has_the_book() -> None:
    """`make pdf` (after `make book`) gives a PDF of at least 20 pages."""
    pdf = _pdf_or_skip()
    pages = count_pages(pdf)
    assert pages >= 20, f"{pdf} has {pages} pages"


def pdf_pages_text(pdf: Path) -> list[str]:
    """The text of each page (poppler's ``pdftotext``, reading order)."""
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], capture_output=True,
                         text=True, check=True, timeout=300).stdout
    return out.split("\f")[:-1] if out.endswith("\f") else out.split("\f")


def pdf_image_pages(pdf: Path) -> set[int]:
    """1-based numbers of the pages that draw an image (poppler's ``pdfimages -list``)."""
    out = subprocess.run(["pdfimages", "-list", str(pdf)], capture_output=True, text=True,
                         check=True, timeout=300).stdout
    return {int(line.split()[0]) for line in out.splitlines()[2:] if line.split()}


def blank_pages(texts: list[str], image_pages: set[int]) -> list[int]:
    """1-based numbers of the pages with neither text nor an image."""
    return [i + 1 for i, t in enumerate(texts) if not t.strip() and i + 1 not in image_pages]


def broken_words(text: str, words: set[str]) -> list[str]:
    """Words of ``words`` split across lines in ``text`` (not at a hyphen of their own): a line
    ending in a piece that is no word, the next line starting with the rest (``repr`` /
    ``oduced``), or with a middle piece on a line of its own (``repr`` / ``oduc`` / ``ed``)."""
    lines = [ln.split() for ln in text.splitlines() if ln.split()]
    lower = {w.lower() for w in words}
    out = []
    for a, b in zip(lines, lines[1:], strict=False):
        head, tail = a[-1].lower(), b[0].lower()
        if head.endswith("-") or head in lower or tail in lower:
            continue
        joined = head + tail
        if joined in lower:
            out.append(f"{a[-1]} / {b[0]}")
        elif len(b) == 1 and any(w.startswith(joined) for w in lower):
            out.append(f"{a[-1]} / {b[0]} / ...")
    return out


def claims_table_text(texts: list[str]) -> str:
    """The text of the pages that hold the claims tables (the landing page's and the claims
    page's), from the table's first row to its last claim's row."""
    return "\n".join(t for t in texts if "the deciding number" in t)


def test_broken_words_and_blank_pages_are_detected() -> None:
    """The PDF checks can fail: a word cut over lines and a page without text or image."""
    words = {"reproduced", "partly", "single-model", "dependency"}
    assert broken_words("C1 single-\nmodel\nnot repr\noduced\n", words) == ["repr / oduced"]
    assert broken_words("not\nreproduced\npartly reproduced\nsingle-\nmodel", words) == []
    assert broken_words("not repr\noduc\ned\n", words) == ["repr / oduc / ..."]
    assert broken_words("par\ntly reproduced\n", words) == ["par / tly"]
    assert blank_pages(["text", " \n", "", "x"], image_pages={3}) == [2]


def test_pdf_has_no_blank_page_and_no_broken_word_in_the_claims_table() -> None:
    """The PDF of the book (``make pdf``): no page is blank (no text and no image), and no word
    of the claims tables (claim names, verdicts) is split across lines."""
    pdf = _pdf_or_skip()
    if not (shutil.which("pdftotext") and shutil.which("pdfimages")):
        _skip("pdftotext / pdfimages not found: `apt-get install -y poppler-utils` "
              "(done by `make system-deps`)")
    texts = pdf_pages_text(pdf)
    blank = blank_pages(texts, pdf_image_pages(pdf))
    assert not blank, f"{len(blank)} blank page(s) of {len(texts)}: {blank}"
    table = claims_table_text(texts)
    assert table, "no page of the PDF holds the claims table"
    words = {w for c in CLAIMS.values() for w in c.name.split()}
    words |= {w for lv in LEVELS for w in lv.split()} | {"reproduced", "verdict", "claim"}
    broken = broken_words(table, words)
    assert not broken, f"words broken across lines in the claims table: {broken}"
    for c in CLAIMS.values():  # every claim's row, its name whole
        assert all(w in table for w in c.name.split()), f"{c.cid} {c.name} not in the table"


def test_notebook_figures_carry_captions(visited: dict[str, dict[str, Any]], site: Path) -> None:
    """At least 80% of the notebook pages' figures are numbered, captioned figures with alt
    text (myst-nb cell metadata ``mystnb.figure`` / ``mystnb.image``, or ``{glue:figure}``)."""
    total = captioned = 0
    for rel in visited:
        if not rel.startswith("executed/"):
            continue
        html = (site / rel).read_text()
        article = html.split('<article class="bd-article">', 1)[-1].split("</article>", 1)[0]
        total += len(re.findall(r"<img\b", article))
        for fig in re.findall(r"<figure\b.*?</figure>", article, re.S):
            if ("caption-number" in fig and re.search(r'<img[^>]*\balt="[^"]+"', fig)):
                captioned += len(re.findall(r"<img\b", fig))
    assert total, "no figure on any notebook page"
    assert captioned >= 0.8 * total, (
        f"{captioned} of {total} notebook figures carry a numbered caption with alt text")
