"""Headline results of a notebook, written as JSON for the book's summary pages.

Each notebook calls :func:`write_results` once at its end; the file
``<output_dir>/<notebook stem>.json`` has this shape::

    {
      "notebook": "01_single_model", "title": "...", "profile": "default",
      "claim": "C1, C6a",                     # the claims tested, comma separated
      "verdict": "partly reproduced",         # overall verdict of the notebook
      "claims": {"C1": {"verdict": "...", "summary": "one sentence",
                        "headline": "name of the headline number"}, ...},
      "numbers": {"name": {"value": 0.12, "ci": [0.10, 0.14] | null,
                           "definition": "what it measures, on which images"}, ...},
      "parameters": {...}, "runtime_s": 12.3, "created": "..."
    }
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

VERDICTS = ("reproduced", "partly reproduced", "not reproduced", "not testable here")
CLAIMS = ("C1", "C2", "C3", "C4", "C5", "C6a", "C6b", "C6c")


def number(value: float, definition: str, ci: tuple[float, float] | None = None,
           unit: str = "") -> dict[str, Any]:
    """One headline number with its definition and optional (e.g. 95% bootstrap) interval."""
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"headline number {definition!r} is not finite: {value}")
    out: dict[str, Any] = {"value": v, "definition": definition, "ci": None, "unit": unit}
    if ci is not None:
        out["ci"] = [float(ci[0]), float(ci[1])]
    return out


def claim(verdict: str, summary: str, headline: str | None = None) -> dict[str, Any]:
    """A claim's verdict, a one-sentence summary, and the key of its headline number."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
    return {"verdict": verdict, "summary": summary, "headline": headline}


def write_results(output_dir: str | os.PathLike[str], stem: str, title: str,
                  claims: dict[str, dict[str, Any]], numbers: dict[str, dict[str, Any]],
                  verdict: str, parameters: dict[str, Any] | None = None,
                  runtime_s: float | None = None, profile: str | None = None) -> Path:
    """Validate and write ``<output_dir>/<stem>.json``; returns its path."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
    for cid, c in claims.items():
        if cid not in CLAIMS:
            raise ValueError(f"unknown claim id {cid!r}; expected one of {CLAIMS}")
        if c.get("verdict") not in VERDICTS:
            raise ValueError(f"claim {cid}: verdict must be one of {VERDICTS}")
        if c.get("headline") is not None and c["headline"] not in numbers:
            raise ValueError(f"claim {cid}: headline {c['headline']!r} is not in numbers")
    out = {"notebook": stem, "title": title, "profile": profile, "claim": ", ".join(claims),
           "verdict": verdict, "claims": claims, "numbers": numbers,
           "parameters": parameters or {}, "runtime_s": runtime_s,
           "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    path = Path(output_dir) / f"{stem}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(out, indent=1, default=_jsonable))
    os.replace(tmp, path)
    return path


def _jsonable(o: Any) -> Any:
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def read_results(output_dir: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """All notebook result files in ``output_dir``, keyed by notebook stem."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(Path(output_dir).glob("*.json"))
            if not p.name.startswith(".")}
