"""Tests for neudep_utils.taxonomy: the data.noun reader on a synthetic file, distances, fallback."""

from __future__ import annotations

import numpy as np
import pytest

from neudep_utils import taxonomy as tx


def write_data_noun(path, synsets):
    """A minimal WordNet ``data.noun``: each synset line starts at the byte given by its offset.

    ``synsets``: list of (name, [hypernym names]); offsets are assigned in order after a licence
    header, as in the real file (the offset of a line is its byte position).
    """
    header = "  1 This is a synthetic WordNet data file for tests.\n  2 second header line\n"
    # fixed-width lines so offsets are known before writing
    width = 120
    offs = {name: len(header) + i * width for i, (name, _) in enumerate(synsets)}
    lines = []
    for name, hyps in synsets:
        ptrs = " ".join(f"@ {offs[h]:08d} n 0000" for h in hyps)
        body = f"{offs[name]:08d} 05 n 01 {name} 0 {len(hyps):03d} {ptrs} | gloss"
        assert len(body) < width - 1
        lines.append(body.ljust(width - 1) + "\n")
    path.write_text(header + "".join(lines))
    return {k: f"n{v:08d}" for k, v in offs.items()}


TREE = [("entity", []), ("animal", ["entity"]), ("bird", ["animal"]), ("parrot", ["bird"]),
        ("macaw", ["parrot"]), ("cockatoo", ["parrot"]), ("ostrich", ["bird"]),
        ("dog", ["animal"]), ("terrier", ["dog"]), ("artefact", ["entity"]), ("car", ["artefact"])]


@pytest.fixture
def wn_dir(tmp_path):
    wnids = write_data_noun(tmp_path / "data.noun", TREE)
    return tmp_path, wnids


def test_read_hypernyms_closure(wn_dir):
    folder, w = wn_dir
    hyp = tx.read_hypernyms(folder / "data.noun", [w["macaw"]])
    off = {k: int(v[1:]) for k, v in w.items()}
    assert hyp[off["macaw"]] == (off["parrot"],)
    assert set(hyp) == {off[k] for k in ("macaw", "parrot", "bird", "animal", "entity")}
    assert hyp[off["entity"]] == ()


def test_wordnet_distances(wn_dir):
    folder, w = wn_dir
    names = ("macaw", "cockatoo", "ostrich", "terrier", "car")
    tax = tx.wordnet_taxonomy(tuple(w[n] for n in names), folder)
    D = tax.distance
    assert np.allclose(np.diag(D), 0)
    assert D[0, 1] == 2  # siblings under parrot
    assert D[0, 2] == 3  # macaw -> parrot -> bird <- ostrich
    assert D[0, 3] == 5  # macaw..animal (3) + terrier..animal (2)
    assert D[0, 4] == 6  # through entity: 4 + 2
    assert np.array_equal(D, D.T)
    near = tax.near(3)
    assert near[0, 1] and near[0, 2] and not near[0, 3] and not near[0, 0]
    assert tax.is_wordnet


def test_bad_offset_raises(tmp_path, wn_dir):
    folder, _ = wn_dir
    with pytest.raises(tx.WordNetError, match="no noun synset"):
        tx.read_hypernyms(folder / "data.noun", ["n00000007"])
    with pytest.raises(ValueError, match="noun id"):
        tx.read_hypernyms(folder / "data.noun", ["x123"])


def test_find_wordnet_env(monkeypatch, wn_dir):
    folder, _ = wn_dir
    monkeypatch.setenv("NEUDEP_WORDNET", str(folder))
    assert tx.find_wordnet() == folder
    assert tx.find_wordnet(folder / "nothing") is None


def test_coarse_fallback_groups():
    wnids = tuple(f"n{i:08d}" for i in range(1000))
    tax = tx.coarse_taxonomy(wnids)
    assert not tax.is_wordnet
    assert np.array_equal(tax.family("dog"), np.arange(151, 269))
    birds = tax.family("bird")
    assert 88 in birds and 7 in birds and 130 in birds and 151 not in birds
    near = tax.near()
    assert near[151, 268] and not near[151, 88] and not near[5, 5]
    # every index has exactly one group
    assert len(tax.groups) == 1000


def test_load_taxonomy_fallback_and_strict(monkeypatch, tmp_path):
    monkeypatch.setenv("NEUDEP_WORDNET", str(tmp_path))  # no data.noun there
    monkeypatch.setattr(tx, "WORDNET_DIRS", ())
    tx._load.cache_clear()
    wnids = tuple(f"n{i:08d}" for i in range(1000))
    tax = tx.load_taxonomy(wnids=wnids)
    assert tax.source.startswith("coarse")
    with pytest.raises(tx.WordNetError, match="wordnet-base"):
        tx.load_taxonomy(wnids=wnids, allow_fallback=False)
    tx._load.cache_clear()


@pytest.mark.skipif(tx.find_wordnet() is None, reason="WordNet 3.0 not installed (wordnet-base)")
def test_real_wordnet_imagenet():
    tx._load.cache_clear()
    tax = tx.load_taxonomy()
    assert tax.is_wordnet
    assert np.array_equal(tax.family("dog"), np.arange(151, 269))
    assert len(tax.family("bird")) == 59
    macaw, grey = 88, 87  # macaw, African grey
    assert tax.distance[macaw, grey] == 2
    # WordNet families agree with the coarse fallback where both define them
    coarse = tx.coarse_taxonomy(tax.wnids)
    for fam in ("dog", "bird", "fish", "reptile", "insect", "primate", "feline"):
        assert np.array_equal(tax.family(fam), coarse.family(fam)), fam
