"""Fail when a notebook carries outputs or execution counts (used by the pre-commit hook and tests)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def dirty_cells(path: Path) -> list[int]:
    """Indices of code cells with outputs or an execution count."""
    nb = json.loads(path.read_text())
    return [i for i, c in enumerate(nb.get("cells", []))
            if c.get("cell_type") == "code" and (c.get("outputs") or c.get("execution_count"))]


def main(paths: list[str]) -> int:
    """Check the given notebooks (default: notebooks/*.ipynb); returns an exit code."""
    files = [Path(p) for p in paths] or sorted(Path("notebooks").glob("*.ipynb"))
    bad = {str(p): dirty_cells(p) for p in files}
    bad = {p: c for p, c in bad.items() if c}
    for p, cells in bad.items():
        print(f"{p}: cells {cells} have outputs; strip them with `nbstripout {p}`", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
