"""Sphinx extension: drop duplicate ``<script>`` entries from every HTML page.

sphinx-thebe 0.3.1 (pulled in by jupyter-book 1.x) registers its inline configuration script
(``const THEBE_JS_URL = ...``) twice under Sphinx 7, so each page throws "SyntaxError: Identifier
'THEBE_JS_URL' has already been declared" in the browser (found by tests/test_book_browser.py).

The list is filtered in place: ``context["script_files"]`` is the builder's own list, to which
handlers running later (``sphinx.ext.mathjax`` adds the MathJax script there) still append.
Replacing it with a new list silently dropped MathJax from every page (issue 11).
"""

from __future__ import annotations

from typing import Any


def _key(js: Any) -> tuple:
    attrs = getattr(js, "attributes", {}) or {}
    filename = str(getattr(js, "filename", js) or "")  # inline scripts: None or ""
    return (filename, tuple(sorted((k, str(v)) for k, v in attrs.items())))


def dedupe(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """Keep the first of identical script entries of a page."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple] = set()
    kept = []
    for js in scripts:
        k = _key(js)
        if k not in seen:
            seen.add(k)
            kept.append(js)
    scripts[:] = kept


def setup(app: Any) -> dict[str, Any]:
    """Register the page hook (early: a handler returning a template stops later ones)."""
    app.connect("html-page-context", dedupe, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
