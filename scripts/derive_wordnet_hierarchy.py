"""Derive the committed WordNet 3.0 hierarchy of the 1000 ImageNet-1k classes (run once).

Reads WordNet 3.0's ``data.noun`` (Debian: ``apt-get install wordnet-base``, files in
``/usr/share/wordnet``) and writes ``neudep_utils/resources/imagenet_wordnet.json``: every class's
and every ancestor synset's words and hypernyms, the source file's sha256, Princeton's licence
(which allows redistribution with its copyright notice) and this script's name. The output is
deterministic: rerunning it on the same ``data.noun`` gives the same bytes (a test checks this).

    python scripts/derive_wordnet_hierarchy.py [--wordnet /usr/share/wordnet] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def debian_package(folder: Path) -> str | None:
    """``"Debian wordnet-base <version>"`` when ``folder/data.noun`` belongs to that package."""
    try:
        owner = subprocess.run(["dpkg-query", "-S", str(folder / "data.noun")], capture_output=True,
                               text=True, timeout=30)
        if owner.returncode != 0 or not owner.stdout.startswith("wordnet-base:"):
            return None
        ver = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "wordnet-base"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return f"Debian wordnet-base {ver.stdout.strip()}" if ver.returncode == 0 else None


def render(data: dict) -> bytes:
    """The file's bytes: JSON with keys in the order written, ten classes and one synset per
    line (readable, diffable), trailing newline."""
    def dump(v) -> str:
        return json.dumps(v, ensure_ascii=False)

    lines = ["{"]
    for key, value in data.items():
        if key == "classes":
            rows = [", ".join(dump(c) for c in value[i:i + 10]) for i in range(0, len(value), 10)]
            lines.append(f' {dump(key)}: [\n  ' + ",\n  ".join(rows) + "\n ],")
        elif key == "synsets":
            rows = [f"  {dump(k)}: {dump(v)}" for k, v in value.items()]
            lines.append(f" {dump(key)}: {{\n" + ",\n".join(rows) + "\n },")
        else:
            nested = json.dumps(value, ensure_ascii=False, indent=1).replace("\n", "\n ")
            lines.append(f" {dump(key)}: {nested},")
    lines[-1] = lines[-1].rstrip(",")
    text = "\n".join(lines) + "\n}\n"
    if json.loads(text) != data:  # the layout must not change the content
        raise AssertionError("render() changed the data")
    return text.encode("utf-8")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns a process exit code."""
    sys.path.insert(0, str(REPO))
    from neudep_utils.errors import WordNetError
    from neudep_utils.images import imagenet_classes
    from neudep_utils.images.taxonomy import COMMITTED, derive_hierarchy, find_wordnet

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wordnet", default=None,
                    help="folder holding WordNet 3.0's data.noun (default: $NEUDEP_WORDNET or the "
                         "system folders, e.g. /usr/share/wordnet)")
    ap.add_argument("--out", default=str(COMMITTED), help=f"output file (default {COMMITTED})")
    args = ap.parse_args(argv)
    folder = find_wordnet(args.wordnet)
    if folder is None:
        print("error: WordNet 3.0's data.noun not found; install it with `apt-get install "
              "wordnet-base` or pass --wordnet FOLDER", file=sys.stderr)
        return 2
    try:
        data = derive_hierarchy(folder, imagenet_classes().wnids, package=debian_package(folder))
    except WordNetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_bytes(render(data))
    os.replace(tmp, out)
    print(f"wrote {out}: {len(data['classes'])} classes, {len(data['synsets'])} synsets, from "
          f"{folder / 'data.noun'} (sha256 {data['source']['sha256']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
