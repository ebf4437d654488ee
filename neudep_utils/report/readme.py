"""The study's findings at a glance, written by the build from the notebooks' results files.

:func:`summarize` condenses ``<output_dir>/NN_*.json`` into one small, JSON-safe summary (each
claim's verdict, headline number, its reference and a two-part rule's second number, with units
and intervals, models;
the scope; the accuracy-kept curves of C1 and C2). :func:`answer` is the paragraph the landing
page and the README open with, :func:`verdict_table` the claims table; :func:`readme_block`
(both, the figure and the models) is what :mod:`.pages` commits to
``book/_static/readme_verdicts.md`` and :func:`splice` places in ``README.md`` between
:data:`START` and :data:`END`; ``tests/test_readme.py`` checks that the committed block is the
one :func:`readme_block` makes from the committed ``book/_static/default_summary.json``.

Example::

    from neudep_utils.report import readme
    summary = readme.summarize(readme.load_results("outputs/default"), "default")
    text = readme.splice(Path("README.md").read_text(), readme.readme_block(summary))
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ResultsError
from ..profiles import get_profile
from ..verdicts import CLAIMS

__all__ = ["END", "START", "answer", "curve_methods", "deciding_text", "fmt", "format_number",
           "label_of", "load_results", "model_kind", "pair_text", "pct", "readme_block", "scope",
           "short", "splice", "summarize", "value_text", "verdict_table"]

#: Markers around the build-written block of ``README.md``.
START = "<!-- verdicts:start (written by make book: neudep_utils.report.pages; do not edit) -->"
END = "<!-- verdicts:end -->"

#: The methods of the C1/C2 curves the summary keeps: the dependency and its random reference.
curve_methods = ("CovLasso support + LS", "random + LS")


def fmt(value: float | None) -> str:
    """A number with 3 significant digits (integers as integers); ``None`` as ``n/a``."""
    if value is None:
        return "n/a"
    v = float(value)
    if not math.isfinite(v):
        return str(v)
    if v == int(v) and abs(v) < 1e6:
        return str(int(v))
    if abs(v) >= 1000:
        return f"{v:.0f}"
    return f"{v:.3g}"


def format_number(num: dict[str, Any] | None) -> str:
    """``value unit [lo, hi]`` for a number dict of :func:`neudep_utils.record.number`;
    fractions are shown as percentages rounded as in the claims table (:func:`pct`)."""
    if not num:
        return "n/a"
    is_pct = num.get("unit") == "fraction"

    def f(v: float) -> str:
        return pct(v) if is_pct else fmt(v)

    unit = f" {num['unit']}" if num.get("unit") and not is_pct else ""
    out = f"{f(num.get('value'))}{unit}"
    ci = num.get("ci")
    if ci:
        out += f" [{f(ci[0])}, {f(ci[1])}]"
    seeds = num.get("seeds")
    if seeds:
        out += f"; {len(seeds['values'])} split seeds: {f(seeds['min'])} to {f(seeds['max'])}"
    return out


def short(model: str) -> str:
    """``efficientnet_lite0`` -> ``lite0``, ``mobilenet_v1_075`` -> ``mobilenet``."""
    from ..models import short_name  # noqa: PLC0415 - the models package loads torch

    return short_name(model)


def load_results(output_dir: str | Path) -> dict[str, dict[str, Any]]:
    """The notebooks' results files ``<output_dir>/NN_*.json`` keyed by stem.

    Raises
    ------
    ResultsError
        When a file is not valid JSON (e.g. truncated by a killed run) or not a results record
        (no ``claims`` mapping); the message names the file and the notebook to rerun.
    """
    out = {}
    for p in sorted(Path(output_dir).glob("[0-9][0-9]_*.json")):
        fix = (f"rerun its notebook (`python scripts/run_notebooks.py --only {p.stem[:2]} "
               "--force` with your profile) or delete the file")
        try:
            data = json.loads(p.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ResultsError(f"results file {p} cannot be read ({exc}); it is damaged or "
                               f"truncated: {fix}") from None
        if not isinstance(data, dict) or not isinstance(data.get("claims"), dict):
            raise ResultsError(f"{p} is not a notebook results file (no 'claims' mapping); "
                               f"{fix}")
        out[p.stem] = data
    return out


def _num(results_file: dict[str, Any], key: str | None) -> dict[str, Any] | None:
    """Number ``key`` of a results file with its name, JSON-safe; ``None`` when absent."""
    num = results_file.get("numbers", {}).get(key) if key else None
    if not num:
        return None
    out = {"name": key, "value": num["value"], "ci": num.get("ci"),
           "unit": num.get("unit", ""), "definition": num.get("definition", "")}
    for extra in ("seeds", "short"):
        if num.get(extra):
            out[extra] = num[extra]
    return out


def scope(results: dict[str, dict[str, Any]], profile: str) -> dict[str, Any]:
    """What the results cover: the profile's models (with their kind: CNN or transformer) and
    the labelled images the notebooks read (per folder of the profile, from the results'
    provenance), with images per class."""
    from ..models import registry  # noqa: PLC0415 - the models package loads torch

    try:
        prof = get_profile(profile)
    except (KeyError, ValueError):
        prof = None
    tested = list(dict.fromkeys(m for r in results.values() for c in r["claims"].values()
                                for m in c.get("tested_on", [])))
    models = tested or (list(prof.models) if prof else [])
    folders = set(prof.folders) if prof else set()
    images: dict[str, int] = {}
    for r in results.values():
        for e in r.get("provenance", {}).get("cache_entries", []):
            name = Path(str(e.get("folder", ""))).name
            if e.get("corruption") or (folders and name not in folders):
                continue
            images[name] = max(images.get(name, 0), int(e.get("n_images") or 0))
    n_images = sum(images.values())
    return {"models": [short(m) for m in models],
            "kinds": [model_kind(m, registry) for m in models],
            "folders": images, "n_images": n_images, "n_classes": 1000,
            "per_class": n_images / 1000 if n_images else None}


def model_kind(name: str, registry: Any = None) -> str:
    """``"transformer"`` or ``"CNN"``: the model registry's architecture kind of ``name``
    (:func:`neudep_utils.models.registry.architecture`; hub names from timm's module), ``"model"``
    when it is not known."""
    if registry is None:
        from ..models import registry  # noqa: PLC0415 - the models package loads torch
    kind = registry.architecture(name)
    return {"cnn": "CNN", "transformer": "transformer"}.get(kind, "model")


def summarize(results: dict[str, dict[str, Any]], profile: str) -> dict[str, Any]:
    """The summary of one profile's results: per claim (in :data:`CLAIMS` order) its verdict,
    headline number, its reference and, for a two-part rule, its second number, models and
    notebook; the
    scope (models, images); the C1 and C2 accuracy-kept curves; the sha256 of each results file
    it was derived from.

    Parameters
    ----------
    results : dict
        :func:`load_results`' output.
    profile : str
        The profile the results come from (recorded; the table says so).

    Returns
    -------
    dict
        JSON-safe: ``{"profile", "claims": [...], "scope": {...}, "curves": {"C1": [...],
        "C2": [...]}, "sources": {stem: sha256}}``.
    """
    claims = []
    for cid, cdef in CLAIMS.items():
        found = [(stem, r, r["claims"][cid]) for stem, r in results.items()
                 if cid in r["claims"]]
        if not found:
            claims.append({"cid": cid, "name": cdef.name, "verdict": None, "headline": None,
                           "tested_on": [], "notebook": None})
        for stem, r, c in found:
            claims.append({
                "cid": cid, "name": cdef.name, "verdict": c.get("verdict"),
                "notebook": stem, "label": c.get("label"),
                "tested_on": [short(m) for m in c.get("tested_on", [])],
                "headline": _num(r, c.get("headline")),
                "reference": _num(r, c.get("reference")), "second": _num(r, c.get("second"))})
    curves: dict[str, list[dict[str, Any]]] = {"C1": [], "C2": []}
    for r in results.values():
        rows = r.get("curves") or []
        for row in rows:
            if row.get("method") not in curve_methods:
                continue
            if "model" in row:
                curves["C1"].append({k: row.get(k) for k in (
                    "model", "method", "k_requested", "k", "acc_replaced", "acc_base")})
            elif row.get("config") == "without same":
                curves["C2"].append({"model": row["pair"], **{k: row.get(k) for k in (
                    "method", "k_requested", "k", "acc_replaced", "acc_base")}})
    sources = {stem: hashlib.sha256(json.dumps(r, sort_keys=True).encode()).hexdigest()
               for stem, r in results.items()}
    return {"profile": profile, "claims": claims, "scope": scope(results, profile),
            "curves": curves, "sources": sources}


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def label_of(num: dict[str, Any]) -> str:
    """The words naming a number in the claims table: its ``short`` label, else its
    definition's first clause (up to ``"; "``), without the explanation after a second colon
    when that clause is long (``"model, method: what: how it is measured"`` ->
    ``"model, method: what"``); words are never cut."""
    if num.get("short"):
        return " ".join(str(num["short"]).split())
    text = " ".join(str(num.get("definition", "")).split())
    first, depth = text, 0
    for i, ch in enumerate(text):  # the first "; " outside parentheses ends the clause
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == ";" and depth == 0 and text[i + 1:i + 2] == " ":
            first = text[:i]
            break
    parts = first.split(": ")
    if len(first) > 80 and len(parts) > 2:
        first = ": ".join(parts[:2])
    return first.rstrip(":. ")


def pct(v: float) -> str:
    """A fraction as a percentage rounded to 0.1 (``0.0123`` -> ``1.2%``; whole numbers without
    a decimal: ``0.75`` -> ``75%``); below 0.1% two significant digits (``0.00042`` ->
    ``0.042%``), so a small non-zero value never reads as 0."""
    p = 100 * float(v)
    if p == round(p):
        return f"{p:.0f}%"
    if abs(p) < 0.1:
        return f"{p:.2g}%"
    return f"{p:.1f}%"


def value_text(num: dict[str, Any], bold: bool = False) -> str:
    """Value, unit and interval of a number (no split seeds), the value optionally bold;
    fractions as percentages rounded to 0.1 (:func:`pct`), other numbers to 3 significant
    digits (:func:`fmt`)."""
    is_pct = num.get("unit") == "fraction"

    def f(v: float) -> str:
        return pct(v) if is_pct else fmt(v)

    unit = f" {num['unit']}" if num.get("unit") and not is_pct else ""
    val = f"{f(num['value'])}{unit}"
    out = f"**{val}**" if bold else val
    if num.get("ci"):
        lo, hi = num["ci"]
        out += f" [{f(lo)}, {f(hi)}]"
    return out


def whose(num: dict[str, Any], models: Sequence[str] = ()) -> str:
    """The model (``lite0``) or ordered pair (``lite0 from lite1``) a number's key starts with,
    among ``models`` (short names); ``""`` for a number of no single model."""
    name = str(num.get("name", ""))

    def lead(text: str) -> str:
        hits = [m for m in models if text == m or text.startswith(m + "_")]
        return max(hits, key=len) if hits else ""

    a = lead(name)
    if not a:
        return ""
    rest = name[len(a) + 1:]
    b = lead(rest[len("from_"):]) if rest.startswith("from_") else ""
    return f"{a} from {b}" if b else a


def _labelled(num: dict[str, Any], models: Sequence[str]) -> str:
    """The number's label, after its model's name unless the label already names it."""
    label, who = label_of(num), whose(num, models)
    return f"{who}: {label}" if who and who.split(" from ")[0] not in label else label


def pair_text(head: dict[str, Any] | None, ref: dict[str, Any] | None,
              models: Sequence[str] = ()) -> str:
    """``model: label: value [interval] vs label: value``: a deciding number beside its
    reference, named by its model when ``models`` (short names) holds it."""
    if not head:
        return "n/a"
    out = f"{_labelled(head, models)}: {value_text(head, bold=True)}"
    if ref:
        out += f" vs {label_of(ref)}: {value_text(ref)}"
    return out


def deciding_text(c: dict[str, Any]) -> str:
    """The claims-table cell of one claim: its headline beside its reference, then, for a rule
    with two parts, the second part's number after a line break; each named by its model."""
    models = [str(m) for m in c.get("tested_on") or ()]
    out = pair_text(c.get("headline"), c.get("reference"), models)
    if c.get("second"):
        out += (f" <br> {_labelled(c['second'], models)}: "
                f"{value_text(c['second'], bold=True)}")
    return out


def _md_link(target: str) -> Any:
    return lambda text: f"[{text}]({target})"


def answer(summary: dict[str, Any], models_link: Any = None) -> str:
    """The one-paragraph answer the landing page and the README open with: the verdicts
    counted, the first claim's deciding number beside its reference, and the scope (models,
    images per class); every number from ``summary``. ``models_link(text)``: the Markdown
    link to the model list (default: ``[text](#models)``)."""
    models_link = models_link or _md_link("#models")
    by_level: dict[str, list[str]] = {}
    for c in summary["claims"]:
        if c.get("verdict"):
            by_level.setdefault(c["verdict"], []).append(c["cid"])
    n_claims = len({c["cid"] for c in summary["claims"]})
    words = {"reproduced": "reproduces", "partly reproduced": "partly reproduces",
             "not reproduced": "does not reproduce", "not testable here": "cannot test"}
    parts = [f"**{words[lv]} {len(ids)}** ({', '.join(ids)})"
             for lv, ids in sorted(by_level.items(), key=lambda kv: list(words).index(kv[0]))]
    counts = (", ".join(parts[:-1]) + " and " + parts[-1]) if len(parts) > 1 else "".join(parts)
    out = [f"Of the paper's {n_claims} claims, this study {counts or 'has no verdict yet'}."]
    first = next((c for c in summary["claims"] if c.get("verdict") and c.get("headline")),
                 None)
    if first:
        out.append(f"The paper's first claim, {first['cid']} ({first['name']}), is "
                   f"**{first['verdict']}**: {deciding_text(first).replace(' <br> ', '; ')}.")
    sc = summary.get("scope") or {}
    if sc.get("models"):
        kinds = {k: sc["kinds"].count(k) for k in dict.fromkeys(sc.get("kinds", []))}
        kind_text = " and ".join(f"{n} {k}{'s' if n > 1 else ''}" for k, n in kinds.items())
        n_models = len(sc["models"])
        imgs = (f" on {sc['n_images']:,} labelled ImageNet images (about "
                f"{sc['per_class']:.2g} per class)" if sc.get("n_images") else "")
        link = models_link(f"{n_models} small ImageNet-1k classifier{'s' if n_models > 1 else ''}")
        out.append(f"Scope: {link} ({kind_text}){imgs}, with "
                   "the paper's protocol reconstructed (its full text and code were not "
                   f"available); profile **{summary['profile']}**.")
    return " ".join(out) + "\n"


def verdict_table(summary: dict[str, Any], evidence: Any = None,
                  models_link: Any = None) -> str:
    """The Markdown claims table of a :func:`summarize` summary: claim, verdict, the deciding
    number beside its reference (and a two-part rule's second number), the number of models
    and the evidence.

    ``evidence``: ``evidence(claim) -> Markdown link`` (default: the notebook in the
    repository, ``notebooks/<stem>.ipynb``); ``models_link(text)``: the link of the model
    count to the model list (default: ``[text](#models)``)."""
    models_link = models_link or _md_link("#models")
    def repo_link(c: dict[str, Any]) -> str:
        return f"[notebook {c['notebook'][:2]}](notebooks/{c['notebook']}.ipynb)"

    evidence = evidence or repo_link
    lines = ["| claim | verdict | the deciding number, beside its reference | models | "
             "evidence |", "| --- | --- | --- | --- | --- |"]
    for c in summary["claims"]:
        name = f"{c['cid']} {_cell(c['name'])}"
        verdict = f"**{c['verdict']}**" if c.get("verdict") else "*no result*"
        n = len(c.get("tested_on") or [])
        models = models_link(str(n)) if n else "n/a"
        ev = evidence(c) if c.get("notebook") else "no notebook reported it"
        lines.append(f"| {name} | {verdict} | {deciding_text(c)} | {models} | {ev} |")
    return "\n".join(lines) + "\n"


def readme_block(summary: dict[str, Any]) -> str:
    """The build-written block of ``README.md``: the answer, the claims table, the summary
    figure and the models list."""
    models = ", ".join(f"`{m}`" for m in (summary.get("scope") or {}).get("models", []))
    return "\n".join([
        answer(summary), verdict_table(summary),
        "![The paper's expectation against the measurements: target-class accuracy kept "
        "against the number of partners k for C1 (within a model) and C2 (across models), "
        "with random partners and the unmodified model as references, then every claim's "
        "verdict](book/_static/summary.png)", "",
        "#### Models", "",
        f"{models or 'none'} (details: [environment](book/environment.md)). Every number "
        "above is written by `make book` (`python -m neudep_utils.report.pages`) from the "
        "notebooks' results files of the default profile, summarised in "
        "[`book/_static/default_summary.json`](book/_static/default_summary.json).", ""])


def splice(readme: str, block: str) -> str:
    """``readme`` with the text between :data:`START` and :data:`END` replaced by ``block``.

    Raises
    ------
    ValueError
        When the markers are missing or out of order (name the fix: add both on their own
        lines)."""
    i, j = readme.find(START), readme.find(END)
    if i < 0 or j < 0 or j < i:
        raise ValueError(f"README has no {START!r} ... {END!r} block; add both markers on their "
                         "own lines where the verdict table goes")
    return readme[: i + len(START)] + "\n" + block.rstrip("\n") + "\n" + readme[j:]
