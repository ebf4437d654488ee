"""Refresh the committed origins registry from ``../shared/ORIGINS.tsv``.

    python scripts/update_origins.py [--shared ../shared]

Writes ``neudep_utils/origins/registry.tsv`` (a verbatim, checked copy of ``ORIGINS.tsv``) and
copies the small ``derived`` and ``local`` files (not downloaded by ``make data``) into
``neudep_utils/origins/files/``, each checked against its sha256. ``tests/test_origins.py`` fails
when the committed copy and ``../shared`` drift apart.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from neudep_utils.origins.registry import FILES, REGISTRY, parse_registry  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=str(REPO.parent / "shared"),
                    help="the folder holding ORIGINS.tsv, data/ and models/ (default ../shared)")
    args = ap.parse_args(argv)
    shared = Path(args.shared)
    src = shared / "ORIGINS.tsv"
    if not src.is_file():
        print(f"error: {src} not found; pass --shared", file=sys.stderr)
        return 2
    text = src.read_text(encoding="utf-8")
    rows = parse_registry(text, str(src))
    shipped = [r for r in rows if not r.remote]
    for r in shipped:
        f = shared / r.path
        if hashlib.sha256(f.read_bytes()).hexdigest() != r.sha256:
            print(f"error: {f} does not match its sha256 in {src}", file=sys.stderr)
            return 2
    if FILES.exists():
        shutil.rmtree(FILES)
    for r in shipped:
        (FILES / r.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shared / r.path, FILES / r.path)
    REGISTRY.write_text(text, encoding="utf-8")
    print(f"wrote {REGISTRY.relative_to(REPO)} ({len(rows)} rows) and "
          f"{len(shipped)} files under {FILES.relative_to(REPO)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
