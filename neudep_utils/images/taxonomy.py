"""Semantic nearness of ImageNet-1k classes from WordNet 3.0 hypernyms (a committed copy).

ImageNet-1k wnids are WordNet 3.0 noun offsets (``n01818515`` = macaw = noun offset 01818515).
Two classes' *WordNet distance* is the length of the shortest path between them through a common
hypernym (``@``/``@i`` pointers): 0 for the same class, 2 for two children of one synset.

By default :func:`load_taxonomy` reads the hierarchy from the package's committed data file
``neudep_utils/resources/imagenet_wordnet.json``: for the 1000 classes and every ancestor synset,
its hypernym offsets and its words, derived once from WordNet 3.0's ``data.noun`` by
``scripts/derive_wordnet_hierarchy.py`` (the file records the source's sha256 and carries
Princeton's WordNet licence, which allows redistribution with its copyright notice). So every
machine, with or without WordNet installed, root or not, gets the same distances and families.

Reading a live WordNet database is an explicit option: ``load_taxonomy(source="system")`` (the
first of ``$NEUDEP_WORDNET`` and the usual system folders holding ``data.noun``, e.g. Debian's
``wordnet-base`` in ``/usr/share/wordnet``) or ``load_taxonomy(wordnet_dir=...)``. It reads only
the classes' lines and their ancestors', by byte offset (no nltk corpus download). There is no
silent fallback: a missing or damaged source raises :class:`WordNetError`. ``Taxonomy.source``
names what was used; notebooks print it.

Example::

    tax = load_taxonomy()
    tax.source                        # 'wordnet-3.0 (committed imagenet_wordnet.json, ...)'
    near = tax.near(max_distance=4)   # (1000, 1000) bool
    dogs = tax.family("dog")          # class indices under dog.n.01
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import WordNetError
from .classes import imagenet_classes

__all__ = [
    "COMMITTED",
    "FAMILY_WNIDS",
    "Taxonomy",
    "WordNetError",
    "committed_taxonomy",
    "derive_hierarchy",
    "find_wordnet",
    "load_taxonomy",
    "read_hypernyms",
    "read_synsets",
    "taxonomy_from_hypernyms",
    "wordnet_taxonomy",
]

#: The committed hierarchy (package data).
COMMITTED = Path(__file__).resolve().parents[1] / "resources" / "imagenet_wordnet.json"
#: Format tag of :data:`COMMITTED`.
COMMITTED_FORMAT = "neudep-imagenet-wordnet/1"

#: Folders searched for WordNet 3.0's ``data.noun`` (after ``$NEUDEP_WORDNET``).
WORDNET_DIRS = ("/usr/share/wordnet", "/usr/local/share/wordnet", "/usr/share/WordNet-3.0/dict",
                "/usr/local/WordNet-3.0/dict")

#: Family synsets usable with :meth:`Taxonomy.family` (WordNet 3.0 noun offsets).
FAMILY_WNIDS = {
    "dog": "n02084071",  # dog, domestic dog, Canis familiaris
    "bird": "n01503061",
    "fish": "n02512053",
    "reptile": "n01661091",
    "insect": "n02159955",
    "primate": "n02469914",
    "feline": "n02120997",
    "vehicle": "n04524313",
    "musical_instrument": "n03800933",
}

@dataclass
class Taxonomy:
    """Pairwise semantic distance between the 1000 ImageNet-1k classes (logit order).

    ``distance[i, j]``: WordNet hypernym-path length. ``groups``: a label per class, the name of
    the first :data:`FAMILY_WNIDS` family it belongs to, else ``"other"``.
    """

    source: str
    distance: np.ndarray
    wnids: tuple[str, ...]
    groups: tuple[str, ...]
    _families: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def is_wordnet(self) -> bool:
        """True when distances come from WordNet 3.0 (always, since there is no fallback)."""
        return self.source.startswith("wordnet")

    def near(self, max_distance: float = 4) -> np.ndarray:
        """(n, n) boolean: semantically near pairs (distance <= ``max_distance``, i != j)."""
        out = self.distance <= max_distance
        np.fill_diagonal(out, False)
        return out

    def family(self, name: str) -> np.ndarray:
        """Sorted class indices under a family (a key of :data:`FAMILY_WNIDS`)."""
        if name not in self._families:
            raise KeyError(f"unknown family {name!r}; known: {sorted(self._families)}")
        return self._families[name]

    @property
    def families(self) -> tuple[str, ...]:
        """Names accepted by :meth:`family`."""
        return tuple(sorted(self._families))


# --------------------------------------------------------------------------------------------
# WordNet
# --------------------------------------------------------------------------------------------


def find_wordnet(path: str | os.PathLike[str] | None = None) -> Path | None:
    """Folder holding WordNet 3.0's ``data.noun``: ``path``, ``$NEUDEP_WORDNET`` or a system
    folder (:data:`WORDNET_DIRS`); ``None`` when absent."""
    cands = [path] if path is not None else [os.environ.get("NEUDEP_WORDNET"), *WORDNET_DIRS]
    for c in cands:
        if c and (Path(c) / "data.noun").is_file():
            return Path(c)
    return None


def _offset(wnid: str) -> int:
    if len(wnid) != 9 or wnid[0] != "n" or not wnid[1:].isdigit():
        raise ValueError(f"not a WordNet noun id: {wnid!r} (expected 'n' + 8 digits)")
    return int(wnid[1:])


def read_synsets(data_noun: str | os.PathLike[str],
                 wnids: Iterable[str]) -> dict[int, tuple[tuple[str, ...], tuple[int, ...]]]:
    """Words and hypernym offsets (``@`` and instance ``@i`` pointers) of the given synsets and all
    their ancestors, read from a WordNet ``data.noun`` file by byte offset.

    Returns ``{offset: (words, hypernym offsets)}`` over the closure; raises
    :class:`WordNetError` when an offset does not start a matching line (not WordNet 3.0, or a
    damaged file).
    """
    out: dict[int, tuple[tuple[str, ...], tuple[int, ...]]] = {}
    todo = [_offset(w) for w in wnids]
    with open(data_noun, "rb") as fh:
        while todo:
            off = todo.pop()
            if off in out:
                continue
            fh.seek(off)
            line = fh.readline().decode("utf-8", "replace")
            parts = line.split()
            if (len(parts) < 4 or not parts[0].isdigit() or int(parts[0]) != off
                    or parts[2] != "n"):
                raise WordNetError(
                    f"{data_noun}: no noun synset at byte offset {off:08d}; is this WordNet 3.0's "
                    "data.noun (ImageNet wnids are WordNet 3.0 offsets)?")
            w_cnt = int(parts[3], 16)
            words = tuple(parts[4 + 2 * i] for i in range(w_cnt))
            p = 4 + 2 * w_cnt
            p_cnt = int(parts[p])
            hyp = []
            for q in range(p + 1, p + 1 + 4 * p_cnt, 4):
                sym, target, pos = parts[q], int(parts[q + 1]), parts[q + 2]
                if sym in ("@", "@i") and pos == "n":
                    hyp.append(target)
            out[off] = (words, tuple(hyp))
            todo.extend(h for h in hyp if h not in out)
    return out


def read_hypernyms(data_noun: str | os.PathLike[str], wnids: Iterable[str]) -> dict[int, tuple[int, ...]]:
    """Hypernym offsets of the given synsets and all their ancestors (see :func:`read_synsets`).

    Returns ``{offset: (hypernym offsets...)}`` over the closure.
    """
    return {o: h for o, (_, h) in read_synsets(data_noun, wnids).items()}


def _ancestor_distances(off: int, hyp: Mapping[int, tuple[int, ...]]) -> dict[int, int]:
    """Shortest number of hypernym steps from ``off`` to each ancestor (itself at 0)."""
    dist = {off: 0}
    frontier = [off]
    while frontier:
        nxt = []
        for o in frontier:
            for h in hyp.get(o, ()):
                if h not in dist:
                    dist[h] = dist[o] + 1
                    nxt.append(h)
        frontier = nxt
    return dist


def taxonomy_from_hypernyms(wnids: tuple[str, ...], hyp: Mapping[int, tuple[int, ...]],
                            source: str) -> Taxonomy:
    """Distances and families of ``wnids`` from a hypernym graph covering all their ancestors."""
    n = len(wnids)
    anc = [_ancestor_distances(_offset(w), hyp) for w in wnids]
    # invert: ancestor -> (class indices, their distances); then min over common ancestors
    members: dict[int, list[tuple[int, int]]] = {}
    for i, a in enumerate(anc):
        for o, d in a.items():
            members.setdefault(o, []).append((i, d))
    dist = np.full((n, n), np.inf)
    for lst in members.values():
        idx = np.fromiter((x[0] for x in lst), np.int64, len(lst))
        d = np.fromiter((x[1] for x in lst), np.float64, len(lst))
        block = d[:, None] + d[None, :]
        sub = dist[np.ix_(idx, idx)]
        np.minimum(sub, block, out=sub)
        dist[np.ix_(idx, idx)] = sub
    fams = {}
    groups = ["other"] * n
    for name, w in FAMILY_WNIDS.items():
        o = _offset(w)
        mem = np.array(sorted(i for i in range(n) if o in anc[i]), dtype=np.int64)
        fams[name] = mem
        for i in mem:
            if groups[i] == "other":
                groups[i] = name
    return Taxonomy(source, dist, tuple(wnids), tuple(groups), fams)


def wordnet_taxonomy(wnids: tuple[str, ...], folder: str | os.PathLike[str]) -> Taxonomy:
    """Taxonomy read from a live WordNet 3.0 ``data.noun`` in ``folder``."""
    data_noun = Path(folder) / "data.noun"
    if not data_noun.is_file():
        raise WordNetError(f"{data_noun} does not exist; point wordnet_dir (or NEUDEP_WORDNET) at "
                           "a folder holding WordNet 3.0's data.noun")
    hyp = read_hypernyms(data_noun, wnids)
    return taxonomy_from_hypernyms(tuple(wnids), hyp, f"wordnet-3.0 ({data_noun})")


# --------------------------------------------------------------------------------------------
# The committed hierarchy
# --------------------------------------------------------------------------------------------

def _licence_from_header(data_noun: Path) -> str:
    """Princeton's WordNet 3.0 licence from the header of ``data.noun`` (it must accompany
    copies)."""
    lines = []
    with open(data_noun, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.startswith("  "):
                break
            lines.append(line.strip().split(" ", 1)[1].rstrip() if " " in line.strip() else "")
    text = "\n".join(lines).strip()
    if "WordNet 3.0 Copyright" not in text:
        raise WordNetError(f"{data_noun}: no WordNet 3.0 licence header; is this WordNet 3.0?")
    return text


def derive_hierarchy(folder: str | os.PathLike[str], wnids: tuple[str, ...],
                     package: str | None = None) -> dict:
    """The content of :data:`COMMITTED`, derived from WordNet 3.0's ``data.noun`` in ``folder``.

    ``package``: how the database was obtained (e.g. ``"Debian wordnet-base 1:3.0-37"``),
    recorded as provenance.
    """
    data_noun = Path(folder) / "data.noun"
    if not data_noun.is_file():
        raise WordNetError(f"{data_noun} does not exist; install WordNet 3.0 "
                           "(`apt-get install wordnet-base`) or pass its folder")
    syn = read_synsets(data_noun, wnids)
    h = hashlib.sha256()
    with open(data_noun, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return {
        "format": COMMITTED_FORMAT,
        "description": (
            "Hypernym closure of the 1000 ImageNet-1k classes in WordNet 3.0: for each class "
            "and each of its ancestor synsets (keyed by noun id 'n' + 8-digit data.noun offset), "
            "its words and its hypernyms (@ and @i pointers). Read by "
            "neudep_utils.images.taxonomy.load_taxonomy to compute WordNet distances and families "
            "without WordNet installed."),
        "generated_by": "scripts/derive_wordnet_hierarchy.py",
        "source": {"database": "WordNet 3.0 (Princeton University)",
                   "url": "https://wordnet.princeton.edu/", "file": "data.noun",
                   "sha256": h.hexdigest(), "bytes": data_noun.stat().st_size,
                   "obtained_from": package},
        "license": _licence_from_header(data_noun),
        "classes": list(wnids),
        "synsets": {f"n{o:08d}": {"words": list(w), "hypernyms": [f"n{x:08d}" for x in hy]}
                    for o, (w, hy) in sorted(syn.items())},
    }


def read_committed(path: str | os.PathLike[str] | None = None) -> dict:
    """The committed hierarchy, checked for structure: every hypernym is itself in the file."""
    path = Path(path) if path is not None else COMMITTED
    fix = ("restore it from git (`git checkout -- neudep_utils/resources/imagenet_wordnet.json`) "
           "or regenerate it with `python scripts/derive_wordnet_hierarchy.py`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WordNetError(f"{path}: cannot read the committed WordNet hierarchy ({exc}); {fix}") from exc
    if not isinstance(data, dict) or data.get("format") != COMMITTED_FORMAT:
        raise WordNetError(f"{path}: not a {COMMITTED_FORMAT} file; {fix}")
    syn = data.get("synsets")
    if not isinstance(syn, dict) or not isinstance(data.get("classes"), list):
        raise WordNetError(f"{path}: no 'synsets'/'classes'; {fix}")
    for k, v in syn.items():
        missing = [h for h in v.get("hypernyms", ()) if h not in syn]
        if missing:
            raise WordNetError(f"{path}: synset {k}'s hypernym(s) {', '.join(missing)} are not in "
                               f"the file (the closure is broken); {fix}")
    absent = [c for c in data["classes"] if c not in syn]
    if absent:
        raise WordNetError(f"{path}: class(es) {', '.join(absent[:5])} have no synset entry; {fix}")
    return data


def committed_taxonomy(wnids: tuple[str, ...], path: str | os.PathLike[str] | None = None
                       ) -> Taxonomy:
    """Taxonomy of ``wnids`` from the committed hierarchy (:data:`COMMITTED`)."""
    path = Path(path) if path is not None else COMMITTED
    data = read_committed(path)
    syn = data["synsets"]
    absent = [w for w in wnids if w not in syn]
    if absent:
        raise WordNetError(
            f"{path} covers the 1000 ImageNet-1k classes; {len(absent)} requested wnid(s) are not "
            f"in it (e.g. {', '.join(absent[:3])}); use load_taxonomy(source='system') with "
            "WordNet 3.0 installed")
    hyp = {_offset(k): tuple(_offset(h) for h in v["hypernyms"]) for k, v in syn.items()}
    src = data["source"]
    return taxonomy_from_hypernyms(
        tuple(wnids), hyp,
        f"wordnet-3.0 (committed {path.name}, derived from data.noun sha256 {src['sha256'][:12]})")


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _load(wnids: tuple[str, ...], source: str, folder: str | None) -> Taxonomy:
    if source == "committed":
        return committed_taxonomy(wnids)
    wn = find_wordnet(folder)
    if wn is None:
        where = folder if folder is not None else ("$NEUDEP_WORDNET and " + ", ".join(WORDNET_DIRS))
        raise WordNetError(
            f"WordNet 3.0 not found (looked for data.noun in {where}); install it with "
            "`apt-get install wordnet-base`, set NEUDEP_WORDNET to a folder holding data.noun, or "
            "use the committed hierarchy (load_taxonomy() without source/wordnet_dir)")
    return wordnet_taxonomy(wnids, wn)


def load_taxonomy(wordnet_dir: str | os.PathLike[str] | None = None, *, source: str | None = None,
                  wnids: tuple[str, ...] | None = None) -> Taxonomy:
    """The WordNet 3.0 taxonomy of the ImageNet-1k classes.

    ``source="committed"`` (the default): the package's committed hierarchy, the same on every
    machine. ``source="system"``: read a live WordNet 3.0 ``data.noun`` from ``wordnet_dir``, or
    else from ``$NEUDEP_WORDNET`` or the usual system folders; giving ``wordnet_dir`` implies it.
    ``wnids`` defaults to the 1000 ImageNet-1k classes in logit order
    (:func:`neudep_utils.images.imagenet_classes`).
    """
    if source is None:
        source = "system" if wordnet_dir is not None else "committed"
    if source not in ("committed", "system"):
        raise ValueError(f"source must be 'committed' or 'system', got {source!r}")
    if source == "committed" and wordnet_dir is not None:
        raise ValueError("wordnet_dir reads a live WordNet: use source='system' (or omit source)")
    if wnids is None:
        wnids = imagenet_classes().wnids
    return _load(tuple(wnids), source, None if wordnet_dir is None else str(wordnet_dir))

