"""The dependency atlas: every fitted category of every model, its partners with their weights
and WordNet distances, held-out R^2, target-class accuracy kept and average precision at k = 10
and 50, beside the unmodified model's.

Built from the ``atlas`` records notebook 01 writes to its results file
(:func:`neudep_utils.findings.single_summary.atlas_records`). :func:`write_atlas` writes one
small script per model (``atlas_<model>.js``, calling ``window.neudepAtlasAdd``) and one with the
1000 class names (``atlas_classes.js``), into the book's extra path ``_atlas/`` (not a static
path: jupyter-book would add every script there to every page); the bundled
``book/_static/atlas.js`` loads them
after the page has rendered (script tags work from ``file://`` too, where ``fetch`` does not),
then filters and sorts the table in the browser, offline. :func:`atlas_page` is the page.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from .._io import atomic_write_bytes
from ..images import imagenet_classes

__all__ = ["FIELDS", "atlas_page", "atlas_rows", "write_atlas"]

#: Column order of one atlas row in the per-model scripts.
FIELDS = ("class", "k", "partners", "r2", "acc_kept", "acc_original", "ap", "ap_original",
          "n_images")


def atlas_rows(results: dict[str, dict[str, Any]]) -> dict[str, list[list[Any]]]:
    """Per model (short name), the atlas rows (:data:`FIELDS` order) of every results file
    that has ``atlas`` records, sorted by class and k."""
    out: dict[str, list[list[Any]]] = {}
    for r in results.values():
        for rec in r.get("atlas") or []:
            out.setdefault(rec["model"], []).append([rec.get(f) for f in FIELDS])
    for rows in out.values():
        rows.sort(key=lambda row: (row[0], row[1]))
    return out


def _safe(model: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in model)


def write_atlas(results: dict[str, dict[str, Any]], directory: str | Path) -> list[Path]:
    """Write ``atlas_classes.js`` and one ``atlas_<model>.js`` per model into ``directory``
    (stale ``atlas_*.js`` removed); returns the files written."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    rows = atlas_rows(results)
    keep = {"atlas_classes.js"} | {f"atlas_{_safe(m)}.js" for m in rows}
    for stale in d.glob("atlas_*.js"):
        if stale.name not in keep:
            stale.unlink()
    cls = imagenet_classes()
    names = [[cls.short_name(i), cls.wnids[i]] for i in range(len(cls.wnids))]
    written = [d / "atlas_classes.js"]
    atomic_write_bytes(written[0], ("window.neudepAtlasClasses(" + json.dumps(
        names, separators=(",", ":")) + ");\n").encode())
    for m, rr in rows.items():
        p = d / f"atlas_{_safe(m)}.js"
        payload = {"model": _safe(m), "fields": list(FIELDS), "rows": rr}
        atomic_write_bytes(p, ("window.neudepAtlasAdd(" + json.dumps(
            payload, separators=(",", ":")) + ");\n").encode())
        written.append(p)
    return written


def atlas_page(results: dict[str, dict[str, Any]], profile: str, note: str = "") -> str:
    """Markdown of the atlas page (its table is filled in the browser by ``atlas.js``)."""
    rows = atlas_rows(results)
    models = list(rows)
    ks = sorted({row[1] for rr in rows.values() for row in rr})
    n_classes = {m: len({row[0] for row in rr}) for m, rr in rows.items()}
    fitted = ", ".join(f"`{_safe(m)}` ({n} categories)" for m, n in n_classes.items()) or "none"
    files = html.escape(" ".join(f"atlas_{_safe(m)}.js" for m in models), quote=True)
    esc = {m: html.escape(_safe(m), quote=True) for m in models}
    lines = [note, "(atlas)=", "# Dependency atlas", "",
             "Look up any category of any model: type a name, a WordNet id (`n01818515`) or a "
             "class index in the box; click a column header to sort. Each row is one dependency "
             "(CovLasso support refitted by least squares, cross-fitting fold 0) at k partners: "
             "its partners with their weights `w` and WordNet distance `d` (edges between "
             "the two categories in the hypernym tree), the held-out $R^2$ of the rebuilt "
             "logit, the target-class accuracy when the logit is replaced by the dependency and "
             "the average precision (AP) of the rebuilt logit for its category, each beside "
             "the unmodified model's (*orig.*).", "",
             f"Profile **{profile}**; generated at build time from notebook 01's results file. "
             f"Models fitted: {fitted}; k = {', '.join(map(str, ks)) or 'none'}. A category "
             "that this profile did not fit is listed as such. The data (one script per "
             "model) load when the search box is first used; everything works offline.", "",
             "```{raw} html",
             f'<div id="neudep-atlas" data-models="{" ".join(esc.values())}" '
             f'data-files="{files}">',
             '<div class="atlas-controls">',
             '<label>Category <input id="atlas-q" type="search" '
             'placeholder="e.g. macaw, n01818515, 88" size="28"></label>',
             '<label>Model <select id="atlas-model"><option value="">all</option>'
             + "".join(f'<option value="{esc[m]}">{esc[m]}</option>' for m in models)
             + "</select></label>",
             '<label>k <select id="atlas-k"><option value="">all</option>'
             + "".join(f'<option value="{k}">{k}</option>' for k in ks) + "</select></label>",
             '<span id="atlas-status">loading the atlas...</span></div>',
             '<div class="atlas-scroll"><table id="atlas-table" class="atlas"><thead><tr>'
             '<th data-col="model">model</th><th data-col="name">category</th>'
             '<th data-col="k">k</th><th data-col="r2">held-out R²</th>'
             '<th data-col="acc_kept">accuracy kept (orig.)</th>'
             '<th data-col="ap">AP (orig.)</th><th>partners: name (w, d)</th>'
             '</tr></thead><tbody></tbody></table></div>',
             "<noscript>The atlas needs JavaScript (it runs offline, in the page).</noscript>",
             '<p class="print-only">The atlas is interactive: open '
             "<code>book/_build/html/generated/atlas.html</code> of the HTML book.</p>",
             "</div>", "```", ""]
    if not models:
        lines += ["```{warning}", "No results file of this build has atlas records "
                  "(notebook 01 writes them).", "```", ""]
    return "\n".join(lines)
