"""The results record: what each notebook writes for the book's summary pages.

This stage sits between the verdicts and the findings: the findings fill :class:`Numbers` and
:func:`claim` records, the notebooks call :func:`write_results` once at their end, and the report
stage (:mod:`neudep_utils.report`) reads the files back; nothing here imports the findings or the
report. The file ``<output_dir>/<notebook stem>.json`` has this shape::

    {
      "notebook": "01_single_model", "title": "...", "profile": "default",
      "claim": "C1, C6a",                     # the claims tested, comma separated
      "verdict": "partly reproduced",         # overall verdict of the notebook
      "claims": {"C1": {"verdict": "...", "summary": "one sentence", "rule": "...",
                        "why": "...", "headline": "name of the headline number",
                        "reference": "name of the number it is read against" | null,
                        "second": "name of the other half's number" | null,  # a two-part rule
                        "reads": ["every number the rule reads", ...] | null,
                        "tested_on": ["efficientnet_lite0", ...], "label": "verdict-01"}, ...},
      "numbers": {"name": {"value": 0.12, "ci": [0.10, 0.14] | null, "unit": "fraction",
                           "definition": "what it measures, on which images",
                           "short": "a few words for tables" (optional)}, ...},
      "parameters": {...}, "runtime_s": 12.3, "created": "...",
      "provenance": {"cache_entries": [...]}   # the cache entries of the inputs it was handed
    }

The claims table of the book and the README reads, for each claim, ``headline`` beside
``reference`` (and, for a two-part rule, ``second`` after them), each number named by its
``short`` label (else the first clause of its definition).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .cache import LogitSet, provenance_record
from .verdicts import CLAIMS, LEVELS, Verdict, notebook_verdict


def number(value: float, definition: str, ci: tuple[float, float] | None = None,
           unit: str = "", seeds: Sequence[float] | None = None,
           short: str | None = None) -> dict[str, Any]:
    """One headline number with its definition, an optional (e.g. 95% bootstrap) interval and,
    for pipeline-level uncertainty, its values under other split seeds (``seeds``: summarised as
    min, max and standard deviation next to the values); ``short``: a few words naming it in
    the claims table (e.g. ``"kept at k = 10"``; else the definition's first clause)."""
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"headline number {definition!r} is not finite: {value}")
    out: dict[str, Any] = {"value": v, "definition": definition, "ci": None, "unit": unit}
    if short:
        out["short"] = str(short)
    if ci is not None:
        out["ci"] = [float(ci[0]), float(ci[1])]
    if seeds is not None:
        xs = [float(x) for x in seeds]
        out["seeds"] = {"values": xs, "min": min(xs), "max": max(xs),
                        "sd": float(statistics.pstdev(xs)) if len(xs) > 1 else 0.0}
    return out


def claim(verdict: Verdict, summary: str, headline: str | None = None,
          tested_on: Sequence[str] = (), label: str | None = None, *,
          deviations: Sequence[dict[str, Any]] = (), readings: dict[str, Any] | None = None,
          baseline: str | None = None, scope: str | None = None, reference: str | None = None,
          second: str | None = None, reads: Sequence[str] | None = None) -> dict[str, Any]:
    """A claim's result record.

    Parameters
    ----------
    verdict : Verdict
        The claim's :class:`~neudep_utils.verdicts.Verdict`.
    summary : str
        One or two sentences with the deciding numbers.
    headline : str, optional
        The key of its headline number in the results' ``numbers``.
    tested_on : sequence of str
        The models it was tested on.
    label : str, optional
        The label of the notebook section holding its verdict (linked from the claims page).
    deviations : sequence of dict
        Every rule change after results were seen
        (:func:`neudep_utils.verdicts.deviations.record`), old and new outcome.
    readings : dict, optional
        Further readings shown beside the verdict (e.g. C5's functional and correlational).
    baseline : str, optional
        The baseline the verdict was judged against (e.g. C6c's strongest baseline).
    scope : str, optional
        What the verdict does not cover (e.g. C2's CNN-transformer clause, untested offline).
    reference : str, optional
        The key of the number the headline is read against (e.g. the unmodified model's
        accuracy).
    second : str, optional
        The key of the other half's number, for a rule with two parts (a "partly" verdict shows
        both).
    reads : sequence of str, optional
        The keys of every number the verdict's rule reads; ``headline``, ``reference`` and
        ``second`` must be among them (checked by :func:`write_results`).

    Returns
    -------
    dict
        The record written under ``claims`` in the results file.
    """
    return {"verdict": verdict.level, "summary": summary, "rule": verdict.rule,
            "why": verdict.why, "headline": headline, "tested_on": list(tested_on),
            "label": label, "deviations": list(deviations), "readings": readings or {},
            "baseline": baseline, "scope": scope, "reference": reference, "second": second,
            "reads": list(reads) if reads is not None else None}


def write_results(output_dir: str | os.PathLike[str], stem: str, title: str,
                  claims: dict[str, dict[str, Any]], numbers: dict[str, dict[str, Any]],
                  parameters: dict[str, Any] | None = None, runtime_s: float | None = None,
                  profile: str | None = None, extra: dict[str, Any] | None = None,
                  inputs: Iterable[Any] = ()) -> Path:
    """Validate and write ``<output_dir>/<stem>.json``; returns its path.

    The notebook's overall verdict is :func:`neudep_utils.verdicts.notebook_verdict` of its
    claims. ``inputs``: the logits the numbers come from (:class:`~neudep_utils.cache.LogitData`
    or :class:`~neudep_utils.cache.LogitSet`); their cache entries are recorded under
    ``provenance`` (each once). ``extra``: further top-level entries (e.g. a curve as a list of
    records), which may not shadow the standard keys.
    """
    for cid, c in claims.items():
        if cid not in CLAIMS:
            raise ValueError(f"unknown claim id {cid!r}; expected one of {tuple(CLAIMS)}")
        if c.get("verdict") not in LEVELS:
            raise ValueError(f"claim {cid}: verdict must be one of {LEVELS}")
        for field in ("headline", "reference", "second"):
            if c.get(field) is not None and c[field] not in numbers:
                raise ValueError(f"claim {cid}: {field} {c[field]!r} is not in numbers")
        reads = c.get("reads")
        if reads is not None:
            missing = [k for k in reads if k not in numbers]
            if missing:
                raise ValueError(f"claim {cid}: the rule reads {missing[:5]} that are not in "
                                 "numbers")
            for field in ("headline", "second"):
                if c.get(field) is not None and c[field] not in reads:
                    raise ValueError(f"claim {cid}: {field} {c[field]!r} is not a number its "
                                     "rule reads")
    out = {"notebook": stem, "title": title, "profile": profile, "claim": ", ".join(claims),
           "verdict": notebook_verdict(c["verdict"] for c in claims.values()), "claims": claims,
           "numbers": numbers, "parameters": parameters or {}, "runtime_s": runtime_s,
           "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
           "provenance": {"cache_entries": _entries(inputs)}}
    for key, value in (extra or {}).items():
        if key in out:
            raise ValueError(f"extra key {key!r} would overwrite a standard result key")
        out[key] = value
    path = Path(output_dir) / f"{stem}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(out, indent=1, default=_jsonable))
    os.replace(tmp, path)
    return path


def _entries(inputs: Iterable[Any]) -> list[dict]:
    """The provenance records of ``inputs``, each cache entry once, in first-seen order."""
    seen: dict[str, dict] = {}
    for x in inputs:
        recs = [provenance_record(x)] if isinstance(x, LogitSet) else list(x.provenance)
        for r in recs:
            seen.setdefault(r["key_digest"], r)
    return list(seen.values())


def _jsonable(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def fmt_ci(value: float, ci: tuple[float, float] | None, scale: float = 100,
           digits: int = 1) -> str:
    """``value [lo, hi]`` scaled (default: fractions as percentages), e.g. ``12.3 [10.1, 14.0]``."""
    f = f"{{:.{digits}f}}"
    if ci is None:
        return f.format(value * scale)
    return f"{f.format(value * scale)} [{f.format(ci[0] * scale)}, {f.format(ci[1] * scale)}]"


def deviations_markdown(devs: Sequence[dict[str, Any]]) -> str:
    """The deviations of a claim (:func:`neudep_utils.verdicts.deviations.record`) as a short
    Markdown list: what changed and when, and the old rule's outcome on today's data."""
    if not devs:
        return ("*Deviations:* none; the rule is the one first written down with the notebook "
                "(2026-11-26).")
    lines = ["*Deviations (rule changes after results were seen):*"]
    for d in devs:
        same = "same verdict" if not d["changed_verdict"] else "**the verdict changed**"
        lines.append(f"- {d['name']} ({d['when']}): {d['what']} Old rule on today's data: "
                     f"*{d['old_outcome']}*; current rule: *{d['new_outcome']}* ({same}).")
    return "\n".join(lines)


def verdict_markdown(verdict: Verdict, summary: str = "") -> str:
    """A verdict for the page: level, what decided it, the one-sentence summary and the rule."""
    out = f"**{verdict.claim}: {verdict.level}.** {verdict.why[:1].upper()}{verdict.why[1:]}."
    if summary:
        out += f" {summary}"
    return out + f"\n\n*Rule:* {verdict.rule}"


class Numbers(dict):
    """The ``numbers`` of a results file, filled one headline number at a time.

    Example::

        nums = Numbers()
        nums.add("lite0_acc_base", 0.86, "top-1 of the unmodified model", unit="fraction")
        write_results(..., numbers=nums)
    """

    def add(self, key: str, value: float, definition: str, **kw: Any) -> None:
        """Add one number (:func:`number`); a key may be added only once."""
        if key in self:
            raise ValueError(f"headline number {key!r} added twice")
        self[key] = number(value, definition, **kw)
