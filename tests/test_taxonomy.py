"""Tests for neudep_utils.images.taxonomy: the data.noun reader on a synthetic file, distances, and the
committed WordNet 3.0 hierarchy (the same on every machine, with or without WordNet installed)."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from neudep_utils.errors import WordNetError
from neudep_utils.images import imagenet_classes
from neudep_utils.images import taxonomy as tx

REPO = Path(__file__).resolve().parents[1]
HAVE_WORDNET = tx.find_wordnet() is not None
needs_wordnet = pytest.mark.skipif(not HAVE_WORDNET,
                                   reason="WordNet 3.0 not installed (apt-get install wordnet-base)")
#: ImageNet-1k index ranges (inclusive) of WordNet families, known independently of WordNet.
FAMILY_RANGES = {"dog": ((151, 268),), "bird": ((7, 24), (80, 100), (127, 146)),
                 "fish": ((0, 6), (389, 397)), "reptile": ((33, 68),), "insect": ((300, 326),),
                 "primate": ((365, 384),), "feline": ((281, 293),)}


@pytest.fixture
def no_wordnet(monkeypatch, tmp_path):
    """A machine without WordNet: no data.noun anywhere, and any attempt to read one fails."""
    monkeypatch.setenv("NEUDEP_WORDNET", str(tmp_path))  # no data.noun there
    monkeypatch.setattr(tx, "WORDNET_DIRS", ())

    def refuse(*args, **kwargs):
        raise AssertionError("a live WordNet database was read")

    monkeypatch.setattr(tx, "read_synsets", refuse)
    tx._load.cache_clear()
    yield
    tx._load.cache_clear()


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
    with pytest.raises(WordNetError, match="no noun synset"):
        tx.read_hypernyms(folder / "data.noun", ["n00000007"])
    with pytest.raises(ValueError, match="noun id"):
        tx.read_hypernyms(folder / "data.noun", ["x123"])


def test_find_wordnet_env(monkeypatch, wn_dir):
    folder, _ = wn_dir
    monkeypatch.setenv("NEUDEP_WORDNET", str(folder))
    assert tx.find_wordnet() == folder
    assert tx.find_wordnet(folder / "nothing") is None


def imagenet_wnids() -> tuple[str, ...]:
    return imagenet_classes().wnids


def check_imagenet_facts(tax) -> None:
    """Facts about the 1000 classes that do not come from the committed file."""
    assert tax.is_wordnet and tax.distance.shape == (1000, 1000)
    assert np.array_equal(tax.family("dog"), np.arange(151, 269))
    assert len(tax.family("bird")) == 59
    for fam, ranges in FAMILY_RANGES.items():
        want = np.concatenate([np.arange(lo, hi + 1) for lo, hi in ranges])
        assert np.array_equal(tax.family(fam), np.sort(want)), fam
    macaw, grey = 88, 87  # macaw, African grey: both children of parrot
    assert tax.distance[macaw, grey] == 2
    assert tax.distance[macaw, 151] > 4  # macaw vs Chihuahua
    assert np.array_equal(tax.distance, tax.distance.T) and np.all(np.diag(tax.distance) == 0)
    assert np.isfinite(tax.distance).all()  # every noun descends from entity


def test_default_is_the_committed_file():
    tx._load.cache_clear()
    tax = tx.load_taxonomy()
    assert tax.source.startswith("wordnet-3.0 (committed imagenet_wordnet.json")
    check_imagenet_facts(tax)


def test_load_taxonomy_without_wordnet_installed(no_wordnet):
    """With no WordNet database on the machine (and reading one forbidden), the default taxonomy
    still loads, from the committed file, and equals the one derived from WordNet (computed here
    before WordNet is hidden, when it is installed)."""
    wnids = imagenet_wnids()
    tax = tx.load_taxonomy()
    assert tax.source.startswith("wordnet-3.0 (committed")
    check_imagenet_facts(tax)
    with pytest.raises(WordNetError, match="wordnet-base"):
        tx.load_taxonomy(source="system")
    with pytest.raises(WordNetError, match="not found"):
        tx.load_taxonomy("/nonexistent/wordnet")
    assert len(tax.wnids) == len(wnids)


@needs_wordnet
def test_same_result_with_and_without_wordnet(monkeypatch, tmp_path):
    """Notebook 01's inputs (distance matrix, groups, families) are identical whether WordNet is
    installed or not."""
    tx._load.cache_clear()
    live = tx.load_taxonomy(source="system")
    assert live.source.startswith("wordnet-3.0 (/") and live.source.endswith("data.noun)")
    monkeypatch.setenv("NEUDEP_WORDNET", str(tmp_path))
    monkeypatch.setattr(tx, "WORDNET_DIRS", ())
    monkeypatch.setattr(tx, "read_synsets", lambda *a, **k: pytest.fail("WordNet was read"))
    tx._load.cache_clear()
    try:
        committed = tx.load_taxonomy()
    finally:
        tx._load.cache_clear()
    assert np.array_equal(committed.distance, live.distance)
    assert committed.groups == live.groups and committed.wnids == live.wnids
    assert committed.families == live.families
    for fam in live.families:
        assert np.array_equal(committed.family(fam), live.family(fam)), fam
    assert committed.source != live.source  # says which was used


@needs_wordnet
def test_script_reproduces_the_committed_file(tmp_path):
    """scripts/derive_wordnet_hierarchy.py, rerun on the installed WordNet, writes the committed
    file (bytes equal when the database came from the same package)."""
    out = tmp_path / "h.json"
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "derive_wordnet_hierarchy.py"),
                        "--out", str(out)], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr
    new, old = json.loads(out.read_text()), json.loads(tx.COMMITTED.read_text())
    same_origin = new["source"].pop("obtained_from") == old["source"].pop("obtained_from")
    assert new == old
    if same_origin:
        assert out.read_bytes() == tx.COMMITTED.read_bytes()


def test_committed_file_provenance():
    data = tx.read_committed()
    assert data["format"] == tx.COMMITTED_FORMAT
    assert tuple(data["classes"]) == imagenet_wnids()  # logit order
    assert "WordNet 3.0 Copyright 2006 by Princeton University" in data["license"]
    assert "Permission to use, copy, modify and distribute" in data["license"]
    assert "PROVIDED \"AS IS\"" in data["license"]
    src = data["source"]
    assert src["database"].startswith("WordNet 3.0") and src["file"] == "data.noun"
    assert len(src["sha256"]) == 64 and int(src["sha256"], 16) >= 0
    assert (REPO / data["generated_by"]).is_file()
    assert len(data["synsets"]) > 1000
    assert data["synsets"]["n01818515"]["words"] == ["macaw"]
    assert data["synsets"]["n00001740"] == {"words": ["entity"], "hypernyms": []}


def test_committed_file_is_package_data():
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())
    globs = cfg["tool"]["setuptools"]["package-data"]["neudep_utils"]
    pkg = REPO / "neudep_utils"
    assert any(tx.COMMITTED in pkg.glob(g) for g in globs)


def test_damaged_committed_file(tmp_path):
    data = json.loads(tx.COMMITTED.read_text())
    wnids = tuple(data["classes"])
    broken = json.loads(json.dumps(data))
    del broken["synsets"]["n01816887"]  # parrot: macaw's and the grey's hypernym
    bad = tmp_path / "broken.json"
    bad.write_text(json.dumps(broken))
    with pytest.raises(WordNetError, match=r"broken\.json.*n01816887.*git checkout"):
        tx.committed_taxonomy(wnids, bad)
    bad.write_text(tx.COMMITTED.read_text()[:5000])
    with pytest.raises(WordNetError, match="cannot read.*derive_wordnet_hierarchy"):
        tx.committed_taxonomy(wnids, bad)
    with pytest.raises(WordNetError, match="not in it.*source='system'"):
        tx.committed_taxonomy(("n00000007",), tx.COMMITTED)


def test_load_taxonomy_arguments():
    with pytest.raises(ValueError, match="source must be"):
        tx.load_taxonomy(source="coarse")
    with pytest.raises(ValueError, match="source='system'"):
        tx.load_taxonomy("/usr/share/wordnet", source="committed")


def test_explicit_wordnet_dir(wn_dir):
    """A live WordNet folder is read only when asked for (here a synthetic one)."""
    folder, w = wn_dir
    tx._load.cache_clear()
    tax = tx.load_taxonomy(folder, wnids=(w["macaw"], w["cockatoo"], w["car"]))
    assert tax.source == f"wordnet-3.0 ({folder / 'data.noun'})"
    assert tax.distance[0, 1] == 2 and tax.distance[0, 2] == 6
    tx._load.cache_clear()
