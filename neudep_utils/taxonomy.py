"""Semantic nearness of ImageNet-1k classes: WordNet 3.0 hypernyms, or a coarse fallback.

ImageNet-1k wnids are WordNet 3.0 noun offsets (``n01818515`` = macaw = noun offset 01818515).
When WordNet 3.0's database is installed (Debian/Ubuntu package ``wordnet-base``, files in
``/usr/share/wordnet``; or any folder given by ``$NEUDEP_WORDNET``), :func:`load_taxonomy` reads
the hypernym graph straight from ``data.noun`` (each synset's line starts at the byte given by
its offset, so only the 1000 classes and their ancestors are read; no nltk corpus download). Two
classes' *WordNet distance* is the length of the shortest path between them through a common
hypernym (``@``/``@i`` pointers): 0 for the same class, 2 for two children of one synset.

Without WordNet, :func:`load_taxonomy` falls back to a coarse grouping by ImageNet-1k index
ranges (fish, birds, dogs, ...; every artefact in one group), where the distance is 0 inside a
group and ``inf`` across groups. ``Taxonomy.source`` says which one is in use; notebooks must print
it.

Example::

    tax = load_taxonomy()
    tax.source                        # 'wordnet-3.0 (/usr/share/wordnet)' or 'coarse-index-ranges'
    near = tax.near(max_distance=4)   # (1000, 1000) bool
    dogs = tax.family("dog")          # class indices under dog.n.01
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .bootstrap import bootstrap_ci

if TYPE_CHECKING:
    from .dependencies import DepSet

__all__ = [
    "COARSE_GROUPS",
    "FAMILY_WNIDS",
    "Taxonomy",
    "WordNetError",
    "coarse_taxonomy",
    "find_wordnet",
    "load_taxonomy",
    "nearness_vs_chance",
    "read_hypernyms",
    "wordnet_taxonomy",
]

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

#: Coarse fallback: ImageNet-1k index ranges (inclusive) per group; every index not listed is in
#: the group "artefact or other". Groups named like a family in FAMILY_WNIDS serve
#: :meth:`Taxonomy.family` in the fallback.
COARSE_GROUPS: dict[str, tuple[tuple[int, int], ...]] = {
    "fish": ((0, 6), (389, 397)),
    "bird": ((7, 24), (80, 100), (127, 146)),
    "amphibian": ((25, 32),),
    "reptile": ((33, 68),),
    "arthropod (non-insect)": ((69, 79), (118, 126)),
    "mammal (other)": ((101, 106), (147, 150), (298, 299), (356, 364), (385, 388)),
    "invertebrate (other)": ((107, 117), (327, 329)),
    "dog": ((151, 268),),
    "wild canid": ((269, 280),),
    "feline": ((281, 293),),
    "bear": ((294, 297),),
    "insect": ((300, 326),),
    "lagomorph or rodent": ((330, 338),),
    "ungulate": ((339, 355),),
    "primate": ((365, 384),),
    "food": ((924, 967),),
    "geological formation": ((970, 980),),
    "person": ((981, 983),),
    "plant or fungus": ((984, 997),),
}
_OTHER = "artefact or other"


class WordNetError(RuntimeError):
    """WordNet's database is missing or malformed."""


@dataclass
class Taxonomy:
    """Pairwise semantic distance between the 1000 ImageNet-1k classes (logit order).

    ``distance[i, j]``: WordNet hypernym-path length (``inf`` when unrelated, only in the coarse
    fallback). ``groups``: a label per class (coarse fallback: its group; WordNet: the name of
    the first :data:`FAMILY_WNIDS` family it belongs to, else ``"other"``).
    """

    source: str
    distance: np.ndarray
    wnids: tuple[str, ...]
    groups: tuple[str, ...]
    _families: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def is_wordnet(self) -> bool:
        """True when distances come from WordNet (False: coarse fallback)."""
        return self.source.startswith("wordnet")

    def near(self, max_distance: float = 4) -> np.ndarray:
        """(n, n) boolean: semantically near pairs (distance <= ``max_distance``, i != j).

        In the coarse fallback any finite ``max_distance`` means "same group".
        """
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


def read_hypernyms(data_noun: str | os.PathLike[str], wnids: Iterable[str]) -> dict[int, tuple[int, ...]]:
    """Hypernym offsets (``@`` and instance ``@i`` pointers) of the given synsets and all their
    ancestors, read from a WordNet ``data.noun`` file by byte offset.

    Returns ``{offset: (hypernym offsets...)}`` over the closure; raises :class:`WordNetError`
    when an offset does not start a matching line (not WordNet 3.0, or a damaged file).
    """
    out: dict[int, tuple[int, ...]] = {}
    todo = [_offset(w) for w in wnids]
    with open(data_noun, "rb") as fh:
        while todo:
            off = todo.pop()
            if off in out:
                continue
            fh.seek(off)
            line = fh.readline().decode("utf-8", "replace")
            parts = line.split()
            if not parts or not parts[0].isdigit() or int(parts[0]) != off or parts[2] != "n":
                raise WordNetError(
                    f"{data_noun}: no noun synset at byte offset {off:08d}; is this WordNet 3.0's "
                    "data.noun (ImageNet wnids are WordNet 3.0 offsets)?")
            w_cnt = int(parts[3], 16)
            p = 4 + 2 * w_cnt
            p_cnt = int(parts[p])
            hyp = []
            for q in range(p + 1, p + 1 + 4 * p_cnt, 4):
                sym, target, pos = parts[q], int(parts[q + 1]), parts[q + 2]
                if sym in ("@", "@i") and pos == "n":
                    hyp.append(target)
            out[off] = tuple(hyp)
            todo.extend(h for h in hyp if h not in out)
    return out


def _ancestor_distances(off: int, hyp: dict[int, tuple[int, ...]]) -> dict[int, int]:
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


def wordnet_taxonomy(wnids: tuple[str, ...], folder: str | os.PathLike[str]) -> Taxonomy:
    """Taxonomy from WordNet 3.0's ``data.noun`` in ``folder`` (see the module docstring)."""
    data_noun = Path(folder) / "data.noun"
    hyp = read_hypernyms(data_noun, wnids)
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
    return Taxonomy(f"wordnet-3.0 ({folder})", dist, tuple(wnids), tuple(groups), fams)


# --------------------------------------------------------------------------------------------
# coarse fallback
# --------------------------------------------------------------------------------------------


def coarse_groups(n: int = 1000) -> tuple[str, ...]:
    """Group label per ImageNet-1k index from :data:`COARSE_GROUPS`."""
    lab = [_OTHER] * n
    for g, ranges in COARSE_GROUPS.items():
        for lo, hi in ranges:
            for i in range(lo, min(hi, n - 1) + 1):
                lab[i] = g
    return tuple(lab)


def coarse_taxonomy(wnids: tuple[str, ...]) -> Taxonomy:
    """Fallback taxonomy: distance 0 within a :data:`COARSE_GROUPS` group, ``inf`` across."""
    groups = coarse_groups(len(wnids))
    g = np.array(groups)
    dist = np.where(g[:, None] == g[None, :], 0.0, np.inf)
    fams = {name: np.flatnonzero(g == name) for name in set(groups)}
    return Taxonomy("coarse-index-ranges (WordNet 3.0 not installed)", dist, tuple(wnids),
                    groups, fams)


@lru_cache(maxsize=4)
def _load(wnids: tuple[str, ...], folder: str | None, allow_fallback: bool) -> Taxonomy:
    wn = find_wordnet(folder)
    if wn is not None:
        return wordnet_taxonomy(wnids, wn)
    if not allow_fallback:
        raise WordNetError(
            "WordNet 3.0 not found (looked for data.noun in $NEUDEP_WORDNET and "
            f"{', '.join(WORDNET_DIRS)}); install it with `apt-get install wordnet-base` or set "
            "NEUDEP_WORDNET to a folder holding data.noun")
    return coarse_taxonomy(wnids)


def load_taxonomy(wordnet_dir: str | os.PathLike[str] | None = None, *,
                  allow_fallback: bool = True, wnids: tuple[str, ...] | None = None) -> Taxonomy:
    """The taxonomy of the ImageNet-1k classes (WordNet when installed, else the coarse fallback).

    ``wnids`` defaults to the 1000 ImageNet-1k classes in logit order
    (:func:`neudep_utils.data.imagenet_classes`).
    """
    if wnids is None:
        from .data import imagenet_classes

        wnids = imagenet_classes().wnids
    return _load(tuple(wnids), None if wordnet_dir is None else str(wordnet_dir), allow_fallback)


def nearness_vs_chance(deps: Sequence[DepSet], near: np.ndarray, candidates: np.ndarray | None = None,
                       offset: int = 0, n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """How often partners are semantically near their target, against random partners.

    ``near`` (n, n) boolean over classes; partner column ``c`` is class ``c - offset`` (cross-model:
    offset = n). Observed: fraction of (target, partner) pairs that are near, pooled over the
    DepSets (e.g. the folds). Chance: the expected fraction for uniformly random partners among
    each target's allowed candidates at the same k (exact expectation, not a simulation).
    Intervals: bootstrap over targets (95% percentile). Returns observed, chance, ratio and CIs.
    """
    n = near.shape[0]
    obs_hits, exp_hits, npairs = [], [], []
    for d in deps:
        t = d.targets
        ok = (d.cols >= 0) & (d.coef != 0)
        cls = np.where(ok, d.cols - offset, 0)
        valid = ok & (cls >= 0) & (cls < n)
        hits = (near[t[:, None], cls] & valid).sum(1)
        if candidates is None:
            allowed = np.ones((t.size, n), bool)
        else:
            c = np.asarray(candidates, dtype=bool)
            c = np.broadcast_to(c, (t.size, c.shape[-1])) if c.ndim == 1 else c
            allowed = c[:, offset:offset + n].copy()
        if offset == 0:
            allowed[np.arange(t.size), t] = False  # a target is never its own partner
        p = (near[t] & allowed).sum(1) / np.maximum(allowed.sum(1), 1)
        kk = valid.sum(1)
        obs_hits.append(hits)
        exp_hits.append(p * kk)
        npairs.append(kk)
    o, e, k = (np.concatenate(x).astype(float) for x in (obs_hits, exp_hits, npairs))

    def rate(W, x):
        return (W @ x) / np.maximum(W @ k, 1e-12)

    obs, chance = float(o.sum() / k.sum()), float(e.sum() / k.sum())
    ci_o = bootstrap_ci(lambda W: rate(W, o), o.size, n_boot, seed)
    ci_c = bootstrap_ci(lambda W: rate(W, e), o.size, n_boot, seed)
    ci_r = bootstrap_ci(lambda W: (W @ o) / np.maximum(W @ e, 1e-12), o.size, n_boot, seed)
    return {"observed": obs, "observed_ci": ci_o, "chance": chance, "chance_ci": ci_c,
            "ratio": obs / chance if chance > 0 else float("nan"), "ratio_ci": ci_r,
            "n_pairs": int(k.sum())}
