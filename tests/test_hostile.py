"""Hostile inputs of issues 20 and 30, one test per case, each on real files in a temporary folder.

This file is the project's one checker of hostile inputs. A test that takes the ``run_cli``
fixture runs its command line twice: in this process (fast suite) and as ``python -m
neudep_utils`` in a subprocess (``-m slow``: the end-to-end run that ``scripts/check_hostile.py``
used to do with its own copy of the cases).

Issue 20:

The cases: a folder whose images are all unusable at scan time, or all fail to decode; a 16-bit
greyscale PNG; ``--data`` given twice; ``--out`` a folder, empty or ``/``; temporary files left
by a killed writer; an image that vanishes between scan and decode; ``psd_tol=nan``; a notebook
bool parameter; a data change under a skipped notebook; dangling symbolic links; ``covariance``
after ``extract --mode moments``; ``bench_covlasso.py --cov`` of a bad matrix. Then the minor
ones: a closed stdout pipe, ``--workers -1``, an overflowing second moment, float targets.

Issue 30 (the section at the end, ``test_i30_NN_*``, NN the case number; 17, 28 and 29 are tested
with the summary pages): ONNX files (external data, NaN rows, two outputs, integer outputs, a
1001-way head, a Softmax ending), an image replaced after the scan, a killed notebook run, ``fit
--out`` over its inputs, constant columns and unreachable k, folder labels and the ``--out``
sidecar, images outside ``<class>/<image>``, Ctrl-C in the notebook runner, two extractions or
two notebook runs at once, relative ``NEUDEP_*`` paths, bfloat16 and sparse tensors, feature names
after ``fit_moments``, pickled arrays, a huge image header, option names in messages, an unknown
profile.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from test_faults import _sigint_default, _wait_delivered
from test_onnx_extract import expected

from neudep_utils import CovLasso, covlasso
from neudep_utils._io import _host, remove_stale_temporaries
from neudep_utils.cache import extract
from neudep_utils.cli import main as cli
from neudep_utils.dependencies.fit import fit_covlasso_k
from neudep_utils.dependencies.folds import Fold
from neudep_utils.errors import DataError
from neudep_utils.images import open_image, scan_folder
from neudep_utils.models.onnxfile import load_onnx, onnx_preprocess
from neudep_utils.moments import second_moment

REPO = Path(__file__).resolve().parents[1]
KW = {"progress": False, "num_workers": 0, "batch_size": 8}
WNID = "n01440764"  # tench, an ImageNet-1k class folder name


def _load(name: str, sub: str):
    spec = importlib.util.spec_from_file_location(name, REPO / sub / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


class _CLI:
    """``python -m neudep_utils ARGV`` in this process or in a subprocess: ``(rc, out, err)``."""

    def __init__(self, how: str, capsys, monkeypatch, numba_dir: Path):
        self.how, self.capsys, self.monkeypatch, self.numba_dir = how, capsys, monkeypatch, numba_dir

    def __call__(self, argv: list[str], env: dict | None = None) -> tuple[int, str, str]:
        if self.how == "in-process":
            for k, v in (env or {}).items():
                self.monkeypatch.setenv(k, v)
            rc = cli(argv)
            cap = self.capsys.readouterr()
            return rc, cap.out, cap.err
        full = {**os.environ, "PYTHONPATH": str(REPO), "NUMBA_CACHE_DIR": str(self.numba_dir),
                **(env or {})}
        full.pop("NEUDEP_DEBUG", None)
        r = subprocess.run([sys.executable, "-m", "neudep_utils", *argv], capture_output=True,
                           text=True, env=full, timeout=1800)
        return r.returncode, r.stdout, r.stderr


@pytest.fixture(scope="session")
def _numba_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("numba")  # the CovLasso kernels compile once per session


@pytest.fixture(params=["in-process", pytest.param("subprocess", marks=pytest.mark.slow)])
def run_cli(request, capsys, monkeypatch, _numba_dir) -> _CLI:
    """The command line, in this process and (slow) as a real ``python -m neudep_utils``."""
    return _CLI(request.param, capsys, monkeypatch, _numba_dir)


def _one_error_line(err: str) -> str:
    lines = [x for x in err.replace("\r", "\n").splitlines()  # progress bars and warnings aside
             if x.strip() and not x.startswith("warning: ") and "view/s]" not in x]
    assert "Traceback" not in err, err[-3000:]
    assert len(lines) == 1, f"expected one error line, got {len(lines)}:\n{err[-3000:]}"
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def _entries(cache: Path) -> list[Path]:
    return sorted(p.parent for p in cache.rglob("meta.json"))


def _first_image(folder: Path) -> Path:
    return sorted(sorted(p for p in folder.iterdir() if p.is_dir())[0].iterdir())[0]


# --------------------------------------------------------------------------------------------
# 1-2. a folder with nothing usable
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cmd", ["extract", "covariance"])
def test_all_images_unusable_at_scan(tmp_path: Path, run_cli, cmd: str):
    data = tmp_path / "D"
    (data / WNID).mkdir(parents=True)
    for name in ("a.JPEG", "b.JPEG", "c.png"):
        (data / WNID / name).write_text("this is not an image\n")
    more = ["--out", str(tmp_path / "S.npy")] if cmd == "covariance" else ["--quiet"]
    rc, _, err = run_cli([cmd, "--model", "lite0", "--data", str(data), "--cache-dir",
                          str(tmp_path / "c"), *more])
    line = _one_error_line(err)
    assert rc == 2 and f"no readable images in {data}" in line, line
    assert "unexpected" not in line and "bug" not in line
    assert not (tmp_path / "c").exists() and not (tmp_path / "S.npy").exists()


def test_all_images_fail_to_decode(tiny_folder: Path, tmp_path: Path, run_cli):
    """Truncated JPEGs pass the header check at scan time and fail only when decoded."""
    for f in tiny_folder.rglob("*.JPEG"):
        f.write_bytes(f.read_bytes()[:3000])
    assert len(scan_folder(tiny_folder)) == 10  # the headers are intact
    cache = tmp_path / "c"
    rc, out, err = run_cli(["extract", "--model", "lite0", "--data", str(tiny_folder),
                            "--cache-dir", str(cache), "--quiet", "--workers", "0"])
    line = _one_error_line(err)
    assert rc == 2 and f"no readable images in {tiny_folder}" in line and "nothing" in line, line
    assert "images: 0" not in out
    assert not _entries(cache) and not list(cache.rglob("*.npz")), list(cache.rglob("*"))
    rc, _, err = run_cli(["covariance", "--model", "lite0", "--data", str(tiny_folder),
                          "--cache-dir", str(cache), "--out", str(tmp_path / "S")])
    assert rc == 2 and str(tiny_folder) in _one_error_line(err)
    assert not (tmp_path / "S.npy").exists() and not _entries(cache)


# --------------------------------------------------------------------------------------------
# 3. 16-bit greyscale
# --------------------------------------------------------------------------------------------


def test_16bit_grey_png_is_scaled_not_clipped(tiny_folder: Path, tmp_path: Path):
    grey = np.asarray(Image.open(_first_image(tiny_folder)).convert("L"))
    Image.fromarray(grey).save(tmp_path / "g8.png")
    Image.fromarray(grey.astype(np.uint16) * 257).save(tmp_path / "g16.png")
    with Image.open(tmp_path / "g16.png") as im:
        assert im.mode == "I;16"  # the case: PIL's convert("RGB") would clip it at 255
        assert (np.asarray(im.convert("RGB")) == 255).mean() > 0.9
    a8 = np.asarray(open_image(tmp_path / "g8.png"))
    a16 = np.asarray(open_image(tmp_path / "g16.png"))
    assert a16.dtype == np.uint8 and a16.shape == a8.shape == grey.shape + (3,)
    np.testing.assert_array_equal(a16, a8)
    # an arbitrary 16-bit ramp maps to round(v * 255 / 65535)
    ramp = np.arange(0, 65536, 7, dtype=np.uint16)[: 96 * 96].reshape(96, 96)
    Image.fromarray(ramp).save(tmp_path / "ramp.png")
    got = np.asarray(open_image(tmp_path / "ramp.png"))[..., 0].astype(int)
    assert np.abs(got - ramp.astype(float) * 255 / 65535).max() <= 0.5 + 1e-9


# --------------------------------------------------------------------------------------------
# 4-6. the command line's options
# --------------------------------------------------------------------------------------------


def _split(tiny_folder: Path, tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "A", tmp_path / "B"
    for i, c in enumerate(sorted(p for p in tiny_folder.iterdir() if p.is_dir())):
        shutil.copytree(c, (a if i < 3 else b) / c.name)
    return a, b


def test_repeated_data_pools_both(tiny_folder: Path, tmp_path: Path, run_cli):
    a, b = _split(tiny_folder, tmp_path)
    base = ["covariance", "--model", "lite0", "--cache-dir", str(tmp_path / "c")]
    rc, out, _ = run_cli([*base, "--data", str(a), "--data", str(b), "--out",
                          str(tmp_path / "rep.npy")])
    assert rc == 0 and "from 10 logit vectors" in out, out
    rc, out, _ = run_cli([*base, "--data", str(a), str(b), "--out", str(tmp_path / "both.npy")])
    assert rc == 0
    rc, out, _ = run_cli([*base, "--data", str(b), "--out", str(tmp_path / "b.npy")])
    assert rc == 0 and "from 4 logit vectors" in out
    np.testing.assert_array_equal(np.load(tmp_path / "rep.npy"), np.load(tmp_path / "both.npy"))
    assert not np.allclose(np.load(tmp_path / "rep.npy"), np.load(tmp_path / "b.npy"))
    # the same folder twice would count its images twice: refused
    rc, _, err = run_cli([*base, "--data", str(a), "--data", str(a), "--out",
                          str(tmp_path / "aa.npy")])
    assert rc == 2 and "--data" in _one_error_line(err) and "once" in err
    # extract takes one folder: a second --data is an error, not silently the winner
    rc, _, err = run_cli(["extract", "--model", "lite0", "--data", str(a), "--data", str(b),
                          "--cache-dir", str(tmp_path / "c")])
    line = _one_error_line(err)
    assert rc == 2 and "--data given twice" in line and str(b) in line


def test_out_is_a_folder(tiny_folder: Path, tmp_path: Path, run_cli):
    results = tmp_path / "results"
    results.mkdir()
    for given in (str(results) + "/", str(results)):
        rc, _, err = run_cli(["covariance", "--model", "lite0", "--data", str(tiny_folder),
                              "--cache-dir", str(tmp_path / "c"), "--out", given])
        line = _one_error_line(err)
        assert rc == 2 and line.startswith(f"error: --out {given}") and "folder" in line, line
    assert not (tmp_path / "results.npy").exists() and not list(results.iterdir())
    assert not (tmp_path / "c").exists()  # refused before any work


@pytest.mark.parametrize("given", ["", "/", ".", "  "])
def test_out_empty_or_root(tiny_folder: Path, tmp_path: Path, run_cli, given: str):
    rc, _, err = run_cli(["covariance", "--model", "lite0", "--data", str(tiny_folder),
                          "--cache-dir", str(tmp_path / "c"), "--out", given])
    line = _one_error_line(err)
    assert rc == 2 and "--out" in line and ("file name" in line or "S.npy" in line), line
    assert "PosixPath" not in line and "empty name" not in line


# --------------------------------------------------------------------------------------------
# 7. temporary files of a killed writer
# --------------------------------------------------------------------------------------------


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()  # reaped: the pid no longer runs
    return p.pid


def test_stale_temporaries_are_cleaned_on_the_next_run(tiny_folder: Path, tmp_path: Path):
    ls = extract("lite0", tiny_folder, cache_dir=tmp_path, **KW)
    host = _host()
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])  # exits, never reaped: a zombie
    for _ in range(600):  # wait for the child to exit (a bound, not a timing)
        if Path(f"/proc/{zombie.pid}/stat").read_text().split(") ")[1][0] == "Z":
            break
        time.sleep(0.05)
    stale = [ls.path / f".data.npz.{host}-{_dead_pid()}.tmp",  # writer gone
             ls.path / f".meta.json.{host}-{zombie.pid}.tmp",  # writer killed, not reaped
             ls.path / f".data.npz.{host}-{os.getpid()}.tmp"]  # pid reused by a later process
    for f in stale:
        f.write_bytes(b"\0" * 4096)
    old = time.time() - 3600  # written an hour before this (running) process started
    os.utime(stale[2], (old, old))
    live = ls.path / f".data.npz.{host}-{os.getpid()}x.tmp"  # not a temporary-file name
    live.write_bytes(b"x")
    try:
        again = extract("lite0", tiny_folder, cache_dir=tmp_path, **KW)  # served from the cache
    finally:
        zombie.wait()
    assert again.path == ls.path
    assert not any(f.exists() for f in stale), [f for f in stale if f.exists()]
    assert live.exists()


class _Killed(Exception):
    pass


def _kill_after_last_chunk(n_chunks: int):
    def hook(ci: int) -> None:
        if ci == n_chunks - 1:
            raise _Killed

    return hook


@pytest.mark.parametrize("mode", ["full", "moments"])
def test_rerun_after_a_kill_with_every_chunk_done(tiny_folder: Path, tmp_path: Path, mode: str):
    """Killed after the last chunk, before data.npz was renamed: the rerun finishes the entry
    from the chunks alone and removes the dead writer's temporary file."""
    with pytest.raises(_Killed):
        extract("lite0", tiny_folder, mode=mode, cache_dir=tmp_path, chunk_images=4,
                on_chunk=_kill_after_last_chunk(3), **KW)
    [edir] = [p for p in (tmp_path / "efficientnet_lite0").iterdir() if p.is_dir()]
    tmp = edir / f".data.npz.{_host()}-{_dead_pid()}.tmp"
    tmp.write_bytes(b"\0" * 4096)
    calls: list[int] = []
    ls = extract("lite0", tiny_folder, mode=mode, cache_dir=tmp_path, chunk_images=4,
                 on_chunk=calls.append, **KW)
    assert calls == [] and ls.moments.count == 10 and ls.path == edir  # nothing recomputed
    assert not tmp.exists() and (edir / "meta.json").is_file()


def test_running_writers_temporaries_are_kept(tmp_path: Path):
    mine = tmp_path / f".data.npz.{_host()}-{os.getpid()}.tmp"
    mine.write_bytes(b"x")  # written now by this running process
    foreign = tmp_path / f".data.npz.otherhost-{_dead_pid()}.tmp"  # another machine, fresh
    foreign.write_bytes(b"x")
    assert remove_stale_temporaries(tmp_path) == []
    assert mine.exists() and foreign.exists()


# --------------------------------------------------------------------------------------------
# 8. an image that vanishes between scan and decode
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["full", "moments"])
def test_transient_read_error_is_not_cached(tiny_folder: Path, tmp_path: Path, mode: str):
    m = scan_folder(tiny_folder)
    gone = tiny_folder / m.relpaths[5]
    away = tmp_path / "away.JPEG"
    gone.rename(away)
    with pytest.raises(DataError, match=r"could not be read.*rerun") as info:
        extract("lite0", tiny_folder, manifest=m, mode=mode, cache_dir=tmp_path / "c",
                chunk_images=4, **KW)
    assert m.relpaths[5] in str(info.value)
    assert not _entries(tmp_path / "c")  # not cached as "unreadable"
    away.rename(gone)  # it comes back: the next run retries it
    ls = extract("lite0", tiny_folder, mode=mode, cache_dir=tmp_path / "c", chunk_images=4, **KW)
    assert ls.skipped == () and ls.moments.count == 10 and len(ls.image_ids) == 10
    assert ls.key.manifest_digest == m.digest


# --------------------------------------------------------------------------------------------
# 9. psd_tol
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1e-3, "0.1"])
def test_psd_tol_must_be_a_finite_number(bad):
    S_bad = np.array([[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # eigenvalues -1, 1, 3
    with pytest.raises(ValueError, match="eigenvalue"):
        covlasso.solve(S_bad, 0.1)  # the default check catches it
    with pytest.raises(ValueError, match="psd_tol"):
        covlasso.solve(S_bad, 0.1, psd_tol=bad)
    with pytest.raises(ValueError, match="psd_tol"):
        covlasso.path(S_bad, np.array([0.5, 0.1]), [0], psd_tol=bad)


# --------------------------------------------------------------------------------------------
# 10-11. the notebook runner: bool parameters, fingerprints that see the data
# --------------------------------------------------------------------------------------------


def _probe_notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = "default"\noutput_dir = "out"\ncenter = True\n'
                                       "k = 3\nlam = 0.1\nmodels = None")
    params.metadata["tags"] = ["parameters"]
    body = nbformat.v4.new_code_cell(
        "import json, pathlib\npathlib.Path(output_dir).mkdir(parents=True, exist_ok=True)\n"
        f"pathlib.Path(output_dir, '{path.stem}.json').write_text(json.dumps("
        "{'center': center, 'type': type(center).__name__}))")
    nb.cells = [params, body]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)


def test_notebook_bool_parameter(tmp_path: Path, capsys):
    rn = _load("run_notebooks", "scripts")
    assert rn.parse_value("false") is False and rn.parse_value("FALSE") is False
    assert rn.parse_value("true") is True and rn.parse_value("False") is False
    nbdir, out = tmp_path / "nb", tmp_path / "out"
    nbdir.mkdir()
    _probe_notebook(nbdir / "01_probe.ipynb")
    args = ["--profile", "smoke", "--output-dir", str(out), "--notebook-dir", str(nbdir),
            "--executed-dir", str(tmp_path / "exec")]
    for name, value, what in [("center", "1", "bool"), ("center", "'no'", "bool"),
                              ("k", "2.5", "int"), ("lam", "big", "float"),
                              ("centre", "false", "no parameter")]:
        assert rn.main([*args, "-p", name, value]) == 2
        err = capsys.readouterr().err
        assert f"-p {name}" in err and what in err, err
        assert not (out / "01_probe.json").exists()  # refused before running anything
    assert rn.main([*args, "-p", "center", "false", "-p", "lam", "1", "-p", "models",
                    "['a']"]) == 0
    got = json.loads((out / "01_probe.json").read_text())
    assert got == {"center": False, "type": "bool"}  # not the truthy string 'false'


def test_fingerprint_sees_the_data_and_the_environment(tmp_path: Path, monkeypatch,
                                                       tiny_folder: Path):
    rn = _load("run_notebooks", "scripts")
    data = tmp_path / "data"
    shutil.copytree(tiny_folder, data / "imagenet-val")
    (data / "MANIFEST.sha256").write_text("unchanged manifest\n")
    monkeypatch.setenv("NEUDEP_DATA", str(data))
    fp0 = rn.data_fingerprint()
    assert rn.data_fingerprint() == fp0
    img = _first_image(data / "imagenet-val")
    img.write_bytes(img.read_bytes()[:-10] + b"0123456789")  # same size, new bytes, new mtime
    os.utime(img, ns=(img.stat().st_atime_ns, img.stat().st_mtime_ns + 10**9))
    fp1 = rn.data_fingerprint()
    assert fp1 != fp0  # the manifest file did not change, the image did
    (img.parent / "new.JPEG").write_bytes(img.read_bytes())
    assert rn.data_fingerprint() not in (fp0, fp1)
    for var in ("NEUDEP_MODELS_DIR", "NEUDEP_ENGINE"):
        monkeypatch.delenv(var, raising=False)
        e0 = rn.environment_fingerprint()
        monkeypatch.setenv(var, "torch" if var == "NEUDEP_ENGINE" else str(tmp_path))
        assert rn.environment_fingerprint() != e0, var


def test_data_change_under_a_skipped_notebook_reruns_it(tmp_path: Path, monkeypatch, capsys,
                                                       tiny_folder: Path):
    rn = _load("run_notebooks", "scripts")
    data = tmp_path / "data"
    shutil.copytree(tiny_folder, data / "imagenet-val")
    (data / "MANIFEST.sha256").write_text("stale manifest, never regenerated\n")
    monkeypatch.setenv("NEUDEP_DATA", str(data))
    nbdir, out = tmp_path / "nb", tmp_path / "out"
    nbdir.mkdir()
    _probe_notebook(nbdir / "01_probe.ipynb")
    args = ["--profile", "smoke", "--output-dir", str(out), "--notebook-dir", str(nbdir),
            "--executed-dir", str(tmp_path / "exec")]
    assert rn.main(args) == 0 and "running" in capsys.readouterr().out
    assert rn.main(args) == 0 and "skipped" in capsys.readouterr().out
    img = _first_image(data / "imagenet-val")
    Image.new("RGB", (64, 64), (1, 2, 3)).save(img, format="JPEG")
    assert rn.main(args) == 0
    said = capsys.readouterr().out
    assert "running" in said and "skipped" not in said, said


# --------------------------------------------------------------------------------------------
# 12. dangling symbolic links
# --------------------------------------------------------------------------------------------


def test_dangling_symlinks_are_reported(tiny_folder: Path):
    ref = scan_folder(tiny_folder)
    c = sorted(p for p in tiny_folder.iterdir() if p.is_dir())[0]
    os.symlink(tiny_folder / "missing.JPEG", c / "x.JPEG")
    os.symlink(tiny_folder / "no-such-dir", tiny_folder / "n15075141")  # not a copied class
    with pytest.warns(UserWarning, match="dangling") as rec:
        m = scan_folder(tiny_folder)
    msg = " ".join(str(w.message) for w in rec)
    assert f"{c.name}/x.JPEG" in msg and "n15075141/" in msg
    why = dict(m.skipped)
    assert "dangling symbolic link" in why[f"{c.name}/x.JPEG"]
    assert "no-such-dir" in why["n15075141/"]
    assert m.digest == ref.digest and m.relpaths == ref.relpaths  # the key is unchanged


# --------------------------------------------------------------------------------------------
# 13. covariance after moments
# --------------------------------------------------------------------------------------------


def test_covariance_uses_cached_moments(tiny_folder: Path, tmp_path: Path, run_cli):
    cache = tmp_path / "c"
    rc, _, _ = run_cli(["extract", "--model", "lite0", "--data", str(tiny_folder), "--cache-dir",
                        str(cache), "--mode", "moments", "--quiet", "--workers", "0"])
    assert rc == 0
    [moments_entry] = _entries(cache)
    before = (moments_entry / "meta.json").read_bytes()
    rc, out, _ = run_cli(["covariance", "--model", "lite0", "--data", str(tiny_folder),
                          "--cache-dir", str(cache), "--out", str(tmp_path / "S.npy")])
    assert rc == 0 and "from 10 logit vectors" in out
    assert _entries(cache) == [moments_entry]  # no full extraction
    assert (moments_entry / "meta.json").read_bytes() == before
    ls = extract("lite0", tiny_folder, mode="moments", cache_dir=cache, **KW)
    np.testing.assert_array_equal(np.load(tmp_path / "S.npy"), ls.moments.second_moment())


# --------------------------------------------------------------------------------------------
# 14. the benchmark's --cov
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("matrix, says", [
    (np.ones((5, 7)), "square"),
    (np.ones(4), "square"),
    (np.array([[1.0, np.nan], [np.nan, 1.0]]), "NaN"),
    (np.diag([1.0, 1.0, -1.0]), "negative"),
    (np.array([[1.0, 0.0], [1.0, 1.0]]), "symmetric"),
    (np.array([[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]]), "eigenvalue"),
    (None, "cannot be read"),
])
def test_bench_cov_is_validated_first(tmp_path: Path, matrix, says: str):
    path = tmp_path / "m.npy"
    if matrix is None:
        path.write_bytes(b"not a numpy file")
    else:
        np.save(path, matrix)
    env = {**os.environ, "PYTHONPATH": str(REPO), "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_covlasso.py"), "--cov",
                        str(path), "--quick", "--no-write"], capture_output=True, text=True,
                       env=env, timeout=600)
    line = _one_error_line(r.stderr)
    assert r.returncode == 2 and line.startswith(f"error: --cov {path}") and says in line, line
    assert r.stdout == ""  # nothing ran before the check


# --------------------------------------------------------------------------------------------
# minor: closed stdout, --workers -1, an overflowing moment, float targets
# --------------------------------------------------------------------------------------------


class _ClosedPipe:
    def write(self, s: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    def fileno(self) -> int:
        raise ValueError("no file descriptor")


def test_closed_stdout_pipe(tiny_folder: Path, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    rc = cli(["extract", "--model", "lite0", "--data", str(tiny_folder), "--cache-dir",
              str(tmp_path), "--quiet", "--workers", "0"])
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert rc == 141 and "Broken pipe" not in err and "error" not in err, err


def test_closed_stdout_pipe_in_a_shell(tiny_folder: Path, tmp_path: Path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "NUMBA_CACHE_DIR": str(tmp_path / "numba"),
           "NEUDEP_ENGINE": "torch"}  # no ONNX export in this fresh cache: the engine is not tested
    cmd = [sys.executable, "-m", "neudep_utils", "extract", "--model", "lite0", "--data",
           str(tiny_folder), "--cache-dir", str(tmp_path / "c"), "--quiet", "--workers", "0"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0  # cached now: the second run prints at once
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    p.stdout.close()  # the reader is gone before anything is written
    err = p.stderr.read().decode()
    p.wait(timeout=900)
    assert p.returncode == 141 and err == "", err


def test_workers_must_not_be_negative(tiny_folder: Path, tmp_path: Path, run_cli):
    rc, _, err = run_cli(["extract", "--model", "lite0", "--data", str(tiny_folder), "--cache-dir",
                          str(tmp_path), "--workers", "-1"])
    line = _one_error_line(err)
    assert rc == 2 and "--workers" in line and ">= 0" in line
    with pytest.raises(ValueError, match="workers"):
        extract("lite0", tiny_folder, cache_dir=tmp_path, num_workers=-2, progress=False)


def test_second_moment_overflow_raises():
    x = np.array([[1e200, 1.0], [2.0, 3.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning either
        with pytest.raises(ValueError, match="overflow"):
            second_moment(x)
        with pytest.raises(ValueError, match="overflow"):
            second_moment(x, center=True)
        assert np.isfinite(second_moment(np.array([[1e150, 1.0], [2.0, 3.0]]))).all()


def test_fit_covlasso_k_refuses_float_targets():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 6))
    fold = Fold(np.cov(X.T, bias=True), X.mean(0), True, np.arange(10), None, 200)
    with pytest.raises(ValueError, match="integer"):
        fit_covlasso_k(fold, [1], targets=[1.7, 2.0])
    got = fit_covlasso_k(fold, [1], targets=[1, 2])
    assert got[1].targets.tolist() == [1, 2]


# ============================================================================================
# Issue 30: 26 more hostile inputs (17, 28 and 29 are the summary pages'), test_i30_NN_* = case NN
# ============================================================================================


def _onnx(path: Path, *, n_classes: int = 10, seed: int = 0, tail: str | None = None,
          external: bool = False) -> tuple[Path, np.ndarray, np.ndarray]:
    """A small ONNX classifier ([avg-pool, max-pool] of the 3 channels -> linear head W, b, as in
    test_onnx_extract) ending in ``tail``: None (the logits), ``"softmax"``, ``"logsoftmax"``,
    ``"features"`` (a second output before the logits), ``"topk"`` (int64 indices),
    ``"nan_on_dark"`` (NaN when a channel's mean is below -1.5, e.g. a black image); its tensors
    in ``<name>.data`` when ``external``."""
    import onnx  # noqa: PLC0415 - one test
    from onnx import TensorProto, helper, numpy_helper  # noqa: PLC0415 - one test

    rng = np.random.default_rng(seed)
    W = rng.standard_normal((6, n_classes)).astype(np.float32)
    b = rng.standard_normal(n_classes).astype(np.float32)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "S", "S"])
    node = helper.make_node
    nodes = [node("GlobalAveragePool", ["x"], ["a"]), node("GlobalMaxPool", ["x"], ["m"]),
             node("Concat", ["a", "m"], ["c"], axis=1), node("Flatten", ["c"], ["f"], axis=1),
             node("MatMul", ["f", "W"], ["h"]), node("Add", ["h", "b"], ["z"])]
    inits = [numpy_helper.from_array(W, "W"), numpy_helper.from_array(b, "b")]
    outs = [("logits", TensorProto.FLOAT)]
    if tail is None:
        nodes.append(node("Identity", ["z"], ["logits"]))
    elif tail in ("softmax", "logsoftmax"):
        nodes.append(node("Softmax" if tail == "softmax" else "LogSoftmax", ["z"], ["logits"],
                          axis=1))
    elif tail == "features":
        nodes += [node("Identity", ["f"], ["features"]), node("Identity", ["z"], ["logits"])]
        outs = [("features", TensorProto.FLOAT), ("logits", TensorProto.FLOAT)]
    elif tail == "topk":
        nodes.append(node("TopK", ["z", "K"], ["top", "logits"], axis=1))
        inits.append(numpy_helper.from_array(np.array([5], np.int64), "K"))
        outs = [("logits", TensorProto.INT64)]
    elif tail == "nan_on_dark":
        nodes += [node("Add", ["a", "c15"], ["a15"]), node("Sqrt", ["a15"], ["r"]),
                  node("Flatten", ["r"], ["rf"], axis=1),
                  node("ReduceSum", ["rf", "ax1"], ["rs"], keepdims=1),
                  node("Mul", ["rs", "zero"], ["nan0"]), node("Add", ["z", "nan0"], ["logits"])]
        inits += [numpy_helper.from_array(np.array([1.5], np.float32), "c15"),
                  numpy_helper.from_array(np.array([1], np.int64), "ax1"),
                  numpy_helper.from_array(np.array([0.0], np.float32), "zero")]
    else:
        raise ValueError(tail)
    g = helper.make_graph(nodes, "hostile", [x],
                          [helper.make_tensor_value_info(n, t, None) for n, t in outs],
                          initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    if external:
        path.with_name(path.name + ".data").unlink(missing_ok=True)  # onnx appends to it
        onnx.save_model(m, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=path.name + ".data", size_threshold=0)
    else:
        onnx.save(m, str(path))
    return path, W, b


def _onnx_args(model: Path, folder: Path, cache: Path, *more: str) -> list[str]:
    return ["extract", "--onnx", str(model), "--data", str(folder), "--cache-dir", str(cache),
            "--quiet", "--workers", "0", *more]


def _warnings(err: str) -> list[str]:
    return [x for x in err.splitlines() if x.startswith("warning: ")]


def _first_class(folder: Path) -> Path:
    return sorted(p for p in folder.iterdir() if p.is_dir())[0]


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_i30_01_onnx_external_data_enters_the_key(tiny_folder: Path, tmp_path: Path, run_cli):
    """New weights in ``model.onnx.data`` beside a byte-identical ``model.onnx`` are new logits,
    not the old entry; a missing ``.data`` file is named."""
    cache = tmp_path / "c"
    f, _, _ = _onnx(tmp_path / "m.onnx", seed=0, external=True)
    graph = f.read_bytes()
    rc, _, err = run_cli(_onnx_args(f, tiny_folder, cache, "--out", str(tmp_path / "X0.npy")))
    assert rc == 0, err
    f, W1, b1 = _onnx(tmp_path / "m.onnx", seed=1, external=True)
    assert f.read_bytes() == graph  # only the external data changed
    rc, _, err = run_cli(_onnx_args(f, tiny_folder, cache, "--out", str(tmp_path / "X1.npy")))
    assert rc == 0, err
    _, want = expected(tiny_folder, onnx_preprocess(), W1, b1)
    X0, X1 = np.load(tmp_path / "X0.npy"), np.load(tmp_path / "X1.npy")
    np.testing.assert_allclose(X1, want, rtol=1e-4, atol=1e-4)
    assert not np.allclose(X0, X1) and len(_entries(cache)) == 2
    (tmp_path / "m.onnx.data").unlink()
    rc, _, err = run_cli(_onnx_args(f, tiny_folder, cache))
    line = _one_error_line(err)
    assert rc == 2 and "m.onnx.data" in line and "does not exist" in line, line


@pytest.mark.parametrize("how", ["another size", "same size, other bytes"])
def test_i30_02_image_replaced_after_the_scan(tiny_folder: Path, tmp_path: Path, how: str):
    """An image replaced between the scan and the decode is refused (transient: rerun), never
    cached under the key of its old bytes; the rerun scans and keys the new file."""
    model = load_onnx(_onnx(tmp_path / "m.onnx")[0])
    m = scan_folder(tiny_folder)
    victim, donor = tiny_folder / m.relpaths[3], tiny_folder / m.relpaths[7]
    if how == "another size":
        assert victim.stat().st_size != donor.stat().st_size
        victim.write_bytes(donor.read_bytes())
    else:
        data = bytearray(victim.read_bytes())
        data[len(data) // 2] ^= 0xFF
        victim.write_bytes(bytes(data))
    cache = tmp_path / "c"
    with pytest.raises(DataError, match="changed since the folder was scanned") as info:
        extract(model, tiny_folder, manifest=m, cache_dir=cache, **KW)
    assert m.relpaths[3] in str(info.value) and "rerun" in str(info.value)
    assert not _entries(cache)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a damaged JPEG may be skipped with a warning
        ls = extract(model, tiny_folder, cache_dir=cache, **KW)
    assert ls.key.manifest_digest == scan_folder(tiny_folder).digest != m.digest


def _param_notebook(path: Path, params: str, body: str) -> None:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell('profile = "default"\noutput_dir = "out"\n' + params)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell(
        "import json, os, pathlib, time\npathlib.Path(output_dir).mkdir(parents=True, "
        "exist_ok=True)\n" + body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)


def _runner_args(tmp_path: Path, nbdir: Path, out: Path, *more: str) -> list[str]:
    return ["--profile", "smoke", "--output-dir", str(out), "--notebook-dir", str(nbdir),
            "--executed-dir", str(tmp_path / "exec"), "--quiet", *more]


def _write_result(key: str) -> str:
    return (f"pathlib.Path(output_dir, '01_probe.json').write_text(json.dumps({key}))\n")


class _Killed(BaseException):
    """A SIGKILL of the runner: nothing after it runs (but ``finally`` blocks)."""


def test_i30_03_killed_notebook_run_is_rerun(tmp_path: Path, monkeypatch, capsys):
    """A ``-p seed 1`` run killed after its notebook wrote results: the next plain run reruns
    the notebook (it was marked running), it does not keep the seed-1 result as unchanged."""
    rn = _load("run_notebooks", "scripts")
    nbdir, out = tmp_path / "nb", tmp_path / "out"
    nbdir.mkdir()
    _param_notebook(nbdir / "01_probe.ipynb", "seed = 0", _write_result("{'seed': seed}"))
    args = _runner_args(tmp_path, nbdir, out)
    assert rn.main(args) == 0

    def killed(nb, executed, parameters, timeout, progress=True):
        Path(parameters["output_dir"], "01_probe.json").write_text(
            json.dumps({"seed": parameters["seed"]}))
        shutil.copyfile(nb, executed)  # papermill writes the executed copy as it goes
        raise _Killed

    real = rn.run_one
    monkeypatch.setattr(rn, "run_one", killed)
    with pytest.raises(_Killed):
        rn.main([*args, "-p", "seed", "1"])
    monkeypatch.setattr(rn, "run_one", real)
    capsys.readouterr()
    assert rn.main(args) == 0
    said = capsys.readouterr().out
    assert "running" in said and "skipped" not in said, said
    assert json.loads((out / "01_probe.json").read_text()) == {"seed": 0}


def test_i30_04_fit_out_never_overwrites_an_input(tmp_path: Path, run_cli):
    """``fit --out X.csv`` would write its sidecar over ``extract --out``'s ``X.json``;
    ``--out X.npy`` over the logits read: both refused, the inputs untouched."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 6))
    np.save(tmp_path / "X.npy", X)
    (tmp_path / "X.json").write_text(json.dumps({"logits": "X.npy", "labels": [0] * 60,
                                                 "label_mode": "wnid", "images": []}))
    before = {p: p.read_bytes() for p in (tmp_path / "X.npy", tmp_path / "X.json")}
    fit = ["fit", "--logits", str(tmp_path / "X.npy"), "--k", "2", "--targets", "0"]
    for out, more in (("X.csv", []), ("X.npy", []), ("L.csv", ["--labels", "L.json"])):
        if more:
            shutil.copy(tmp_path / "X.json", tmp_path / "L.json")
            before[tmp_path / "L.json"] = (tmp_path / "L.json").read_bytes()
            more = ["--labels", str(tmp_path / "L.json")]
        rc, _, err = run_cli([*fit, *more, "--out", str(tmp_path / out)])
        line = _one_error_line(err)
        assert rc == 2 and f"--out {tmp_path / out}" in line and "choose another" in line, line
    assert {p: p.read_bytes() for p in before} == before
    for _ in range(2):  # its own sidecar is rewritten
        rc, _, err = run_cli([*fit, "--out", str(tmp_path / "deps.csv")])
        assert rc == 0, err


def test_i30_05_onnx_nan_rows_are_refused(tiny_folder: Path, tmp_path: Path, run_cli):
    """A model returning NaN for one image (a black one): one error line naming it, nothing
    cached or exported (the argmax of a NaN row would have counted as class 0)."""
    c = _first_class(tiny_folder)
    Image.new("RGB", (64, 64)).save(c / "0_black.JPEG")
    f, *_ = _onnx(tmp_path / "nan.onnx", tail="nan_on_dark")
    out = tmp_path / "X.npy"
    rc, _, err = run_cli(_onnx_args(f, tiny_folder, tmp_path / "c", "--out", str(out)))
    line = _one_error_line(err)
    assert rc == 2 and "NaN" in line and f"{c.name}/0_black.JPEG" in line, line
    assert not _entries(tmp_path / "c") and not out.exists()


def test_i30_06_onnx_two_outputs_are_refused(tiny_folder: Path, tmp_path: Path, run_cli):
    f, *_ = _onnx(tmp_path / "two.onnx", tail="features")
    rc, _, err = run_cli(_onnx_args(f, tiny_folder, tmp_path / "c"))
    line = _one_error_line(err)
    assert rc == 2 and "2 outputs" in line and "'features'" in line and "logits" in line, line
    assert not _entries(tmp_path / "c")


def test_i30_07_onnx_integer_outputs_are_refused(tiny_folder: Path, tmp_path: Path, run_cli):
    f, *_ = _onnx(tmp_path / "topk.onnx", tail="topk")
    rc, _, err = run_cli(_onnx_args(f, tiny_folder, tmp_path / "c"))
    line = _one_error_line(err)
    assert rc == 2 and "int64" in line and "not float logits" in line, line


def test_i30_08_onnx_1001_way_drops_the_background(tiny_folder: Path, tmp_path: Path, run_cli):
    """A 1001-way head (background first): the first output is dropped, with a warning line, so
    that logit j is ImageNet class j and top-1 compares like with like."""
    f, W, b = _onnx(tmp_path / "m1001.onnx", n_classes=1001)
    out = tmp_path / "X.npy"
    rc, stdout, err = run_cli(_onnx_args(f, tiny_folder, tmp_path / "c", "--out", str(out)))
    assert rc == 0, err
    assert any("1001 outputs" in w and "dropped" in w for w in _warnings(err)), err
    _, want = expected(tiny_folder, onnx_preprocess(), W, b)
    np.testing.assert_allclose(np.load(out), want[:, 1:], rtol=1e-4, atol=1e-4)
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["top1"] == pytest.approx(np.mean(want[:, 1:].argmax(1) == meta["labels"]))
    assert "background" in meta["engine"] and "top-1:" in stdout


@pytest.mark.parametrize("tail", ["softmax", "logsoftmax"])
def test_i30_09_onnx_softmax_ending_is_refused(tiny_folder: Path, tmp_path: Path, run_cli,
                                               tail: str):
    f, *_ = _onnx(tmp_path / f"{tail}.onnx", tail=tail)
    rc, _, err = run_cli(_onnx_args(f, tiny_folder, tmp_path / "c"))
    line = _one_error_line(err)
    assert rc == 2 and "Softmax" in line and "not logits" in line, line


def test_i30_10_fit_constant_column_gets_no_partners(tmp_path: Path, run_cli):
    """A constant logit column as a target has nothing to explain: no partners (it got noise
    partners of |coef| ~ 1e-16), said in a warning; the other targets are unchanged."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 12))
    X[:, 0] = X[:, 1] + X[:, 2] + 0.1 * rng.standard_normal(300)
    X[:, 5] = 3.0
    np.save(tmp_path / "X.npy", X)
    out = tmp_path / "deps.csv"
    rc, _, err = run_cli(["fit", "--logits", str(tmp_path / "X.npy"), "--k", "7", "--targets",
                          "5", "0", "--out", str(out)])
    assert rc == 0, err
    rows = _rows(out)
    assert not [r for r in rows if r["target"] == "5"], rows
    assert {"1", "2"} <= {r["partner"] for r in rows if r["target"] == "0"}
    assert "5" not in {r["partner"] for r in rows}
    assert any("constant" in w and "[5]" in w for w in _warnings(err)), err
    per = {p["target"]: p for p in json.loads(out.with_suffix(".json").read_text())["targets"]}
    assert per[5]["k"] == 0 and per[0]["k"] == 7


def test_i30_11_fit_unreachable_k_warns(tmp_path: Path, run_cli):
    """Logits of rank 4 allow at most 4 partners: ``--k 9`` says so instead of silently
    returning the most-shrunk solution."""
    rng = np.random.default_rng(1)
    Z = rng.standard_normal((300, 4))
    np.save(tmp_path / "X.npy", np.hstack([Z, Z @ rng.standard_normal((4, 8))]))
    out = tmp_path / "deps.csv"
    rc, _, err = run_cli(["fit", "--logits", str(tmp_path / "X.npy"), "--k", "9", "--targets",
                          "0", "--out", str(out)])
    assert rc == 0, err
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["targets"][0]["k"] < 9 and meta["k"] == 9
    assert any("k=9 was not reached" in w and "target 0" in w for w in _warnings(err)), err


def _named_classes(src: Path, dst: Path) -> Path:
    """Two non-ImageNet class folders (cats, dogs) holding real images."""
    for name, c in zip(("cats", "dogs"), sorted(p for p in src.iterdir() if p.is_dir()),
                       strict=False):
        shutil.copytree(c, dst / name)
    return dst


def test_i30_12_folder_labels_get_no_imagenet_top1(tiny_folder: Path, tmp_path: Path, run_cli):
    """``--label-mode folder``: labels are folder indices, not ImageNet classes: no top-1 from
    ``extract`` nor from ``fit --labels`` of its sidecar."""
    data = _named_classes(tiny_folder, tmp_path / "pets")
    f, *_ = _onnx(tmp_path / "m.onnx")
    out = tmp_path / "X.npy"
    rc, stdout, err = run_cli(_onnx_args(f, data, tmp_path / "c", "--label-mode", "folder",
                                         "--out", str(out)))
    assert rc == 0 and "top-1" not in stdout, (stdout, err)
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["top1"] is None and side["label_mode"] == "folder" and set(side["labels"]) == {0, 1}
    deps = tmp_path / "deps.csv"
    rc, _, err = run_cli(["fit", "--logits", str(out), "--labels", str(out.with_suffix(".json")),
                          "--k", "2", "--targets", "0", "--out", str(deps)])
    assert rc == 0, err
    assert json.loads(deps.with_suffix(".json").read_text())["top1"] is None


def test_i30_13_out_sidecar_names_the_folder_read(tiny_folder: Path, tmp_path: Path, run_cli):
    """Two folders holding the same images share one (content-addressed) entry; each one's
    ``--out`` sidecar names the folder that command read, and its label mode."""
    other = tmp_path / "copy"
    shutil.copytree(tiny_folder, other)
    f, *_ = _onnx(tmp_path / "m.onnx")
    paths = []
    for folder, name in ((tiny_folder, "X"), (other, "Y")):
        rc, stdout, err = run_cli(_onnx_args(f, folder, tmp_path / "c", "--out",
                                             str(tmp_path / f"{name}.npy")))
        assert rc == 0, err
        paths.append(stdout.split("cache: ")[1].split("\n")[0])
        side = json.loads((tmp_path / f"{name}.json").read_text())
        assert side["folder"] == str(folder.resolve()) and side["label_mode"] == "wnid", side
    assert paths[0] == paths[1]  # one entry served to both


def test_i30_14_images_in_class_subfolders_are_reported(tiny_folder: Path, tmp_path: Path,
                                                        run_cli):
    c = _first_class(tiny_folder)
    (c / "sub" / "deeper").mkdir(parents=True)
    shutil.copy(_first_image(tiny_folder), c / "sub" / "a.JPEG")
    shutil.copy(_first_image(tiny_folder), c / "sub" / "deeper" / "b.JPEG")
    f, *_ = _onnx(tmp_path / "m.onnx")
    rc, stdout, err = run_cli(_onnx_args(f, tiny_folder, tmp_path / "c"))
    assert rc == 0 and "images: 10 " in stdout, (stdout, err)
    said = " ".join(_warnings(err))
    assert f"{c.name}/sub/" in said and "2 image(s) are not read" in said, err


def test_i30_15_images_beside_class_folders_are_reported(tiny_folder: Path, tmp_path: Path,
                                                         run_cli):
    shutil.copy(_first_image(tiny_folder), tiny_folder / "loose.JPEG")
    (tiny_folder / "README.txt").write_text("not an image: not reported\n")
    f, *_ = _onnx(tmp_path / "m.onnx")
    rc, stdout, err = run_cli(_onnx_args(f, tiny_folder, tmp_path / "c"))
    assert rc == 0 and "images: 10 " in stdout, (stdout, err)
    said = " ".join(_warnings(err))
    assert "loose.JPEG" in said and "beside the class folders" in said, err
    assert "README" not in said


def test_i30_16_notebook_runner_ctrl_c(tmp_path: Path):
    """SIGINT to ``run_notebooks.py`` while a cell runs: exit 130 and one error line (were a
    traceback of the runner and one of its kernel). The cell waits on a marker the test
    removes once the signal is delivered, so a lost signal ends in a finished run, not a hang."""
    nbdir, marker = tmp_path / "nb", tmp_path / "cell-running"
    nbdir.mkdir()
    _param_notebook(nbdir / "01_probe.ipynb", 'marker = ""',
                    "pathlib.Path(marker).write_text('x')\nwhile pathlib.Path(marker).exists():\n"
                    "    time.sleep(0.05)\n" + _write_result("{'done': True}"))
    env = {**os.environ, "PYTHONPATH": str(REPO), "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    p = subprocess.Popen([sys.executable, str(REPO / "scripts" / "run_notebooks.py"),
                          *_runner_args(tmp_path, nbdir, tmp_path / "out", "-p", "marker",
                                        str(marker))],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                         preexec_fn=_sigint_default)
    try:
        deadline = time.monotonic() + 900  # a bound for a hung run, not a timing
        while not marker.exists() and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), f"the cell never ran (rc {p.poll()}): {p.stderr.read()[-2000:]}"
        p.send_signal(signal.SIGINT)
        _wait_delivered(p.pid, signal.SIGINT, deadline)
        marker.unlink()
        out, err = p.communicate(timeout=900)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 130, (p.returncode, out, err[-3000:])
    line = _one_error_line(err)
    assert "interrupted" in line and "rerun" in line


def test_i30_18_two_extractions_of_one_entry(tiny_folder: Path, tmp_path: Path):
    """A second ``extract`` of an entry another process is writing waits for it (one warning
    line) and serves its result, instead of dying when the first removes its chunk folder."""
    f, *_ = _onnx(tmp_path / "m.onnx")
    marker = tmp_path / "chunk-done"
    cmd = [sys.executable, "-m", "neudep_utils", *_onnx_args(f, tiny_folder, tmp_path / "c")]
    env = {**os.environ, "PYTHONPATH": str(REPO), "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**env, "NEUDEP_CHUNK_MARKER": str(marker),
                                  "NEUDEP_PAUSE_AFTER_CHUNK_S": "900"})
    second = None
    try:
        deadline = time.monotonic() + 900  # a bound for a hung run, not a timing
        while not marker.exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), f"rc {first.poll()}: {first.stderr.read()[-2000:]}"
        second = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=env)
        said = []
        for line in second.stderr:  # until it says it waits, or ends
            said.append(line)
            if "another extraction" in line:
                break
        marker.unlink()  # the first run goes on and finishes the entry
        out1, err1 = first.communicate(timeout=900)
        out2, err2 = second.communicate(timeout=900)
    finally:
        for p in (first, second):
            if p is not None and p.poll() is None:
                p.kill()
                p.communicate()
    assert any("another extraction" in x and "waiting" in x for x in said), "".join(said) + err2
    assert first.returncode == 0 and second.returncode == 0, (err1[-2000:], err2[-2000:])
    assert out1.split("\n")[0] == out2.split("\n")[0]  # "cache: <the one entry>"
    assert len(_entries(tmp_path / "c")) == 1


def _connection_notebook(path: Path) -> None:
    _param_notebook(path, "", "from ipykernel.connect import get_connection_info\n"
                              "info = json.loads(get_connection_info())\n"
                    + _write_result("{'ip': info['ip'], 'transport': info['transport']}"))


def test_i30_19_each_run_has_its_own_kernel_sockets(tmp_path: Path):
    """The kernels' IPC sockets are in a private temporary folder per runner process, not
    ``kernel-ipc-1..5`` in the notebooks' folder, where two runs started together collide."""
    nbdir = tmp_path / "nb"
    nbdir.mkdir()
    _connection_notebook(nbdir / "01_probe.ipynb")
    ips = []
    for run in ("a", "b"):  # two runner processes: the module loaded afresh
        rn = _load("run_notebooks", "scripts")
        assert rn.main(_runner_args(tmp_path, nbdir, tmp_path / run)) == 0
        got = json.loads((tmp_path / run / "01_probe.json").read_text())
        assert got["transport"] == "ipc"
        ips.append(Path(got["ip"]))
    for ip in ips:
        assert ip.is_absolute() and nbdir not in ip.parents and ip.parent.name.startswith(
            "neudep-ipc-"), ip
    assert ips[0].parent != ips[1].parent


@pytest.mark.slow  # two runners started together, each with its kernel
def test_i30_19_two_runs_started_together(tmp_path: Path):
    nbdir = tmp_path / "nb"
    nbdir.mkdir()
    _connection_notebook(nbdir / "01_probe.ipynb")
    env = {**os.environ, "PYTHONPATH": str(REPO), "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    procs = [subprocess.Popen([sys.executable, str(REPO / "scripts" / "run_notebooks.py"),
                               *_runner_args(tmp_path, nbdir, tmp_path / run, "--force")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                              cwd=nbdir)
             for run in ("a", "b")]
    results = [p.communicate(timeout=1800) for p in procs]
    for p, (_out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err[-3000:]
    ips = {json.loads((tmp_path / run / "01_probe.json").read_text())["ip"] for run in "ab"}
    assert len(ips) == 2


def test_i30_20_relative_data_and_cache_paths(tmp_path: Path, monkeypatch):
    """``NEUDEP_DATA=rel/data`` (the project's own hint is relative) means relative to where the
    runner was started, not to ``notebooks/`` where the kernel runs."""
    rn = _load("run_notebooks", "scripts")
    work = tmp_path / "work"
    for sub in ("rel/data", "rel/cache"):
        (work / sub).mkdir(parents=True)
    monkeypatch.chdir(work)
    monkeypatch.setenv("NEUDEP_DATA", "rel/data")
    monkeypatch.setenv("NEUDEP_CACHE", "rel/cache")
    nbdir = tmp_path / "nb"
    nbdir.mkdir()
    _param_notebook(nbdir / "01_probe.ipynb", "", _write_result(
        "{v: [os.environ[v], os.path.isdir(os.environ[v])] for v in "
        "('NEUDEP_DATA', 'NEUDEP_CACHE')}"))
    assert rn.main(_runner_args(tmp_path, nbdir, tmp_path / "out")) == 0
    got = json.loads((tmp_path / "out" / "01_probe.json").read_text())
    assert got == {"NEUDEP_DATA": [str(work / "rel/data"), True],
                   "NEUDEP_CACHE": [str(work / "rel/cache"), True]}, got


def _fit_tensor(tmp_path: Path, run_cli, tensor) -> tuple[list[dict], list[dict]]:
    """Fit a ``.pt`` file and the same numbers as float32 ``.npy``: both partner lists."""
    torch.save(tensor, tmp_path / "X.pt")
    dense = tensor.to_dense() if tensor.layout != torch.strided else tensor
    if dense.dtype in (torch.bfloat16, torch.float16):
        dense = dense.to(torch.float32)  # exact
    np.save(tmp_path / "X.npy", dense.numpy())
    got = []
    for name in ("X.pt", "X.npy"):
        rc, _, err = run_cli(["fit", "--logits", str(tmp_path / name), "--k", "2", "--targets",
                              "0", "--out", str(tmp_path / f"{name}.csv")])
        assert rc == 0, err
        got.append(_rows(tmp_path / f"{name}.csv"))
    return got[0], got[1]


def _planted(n: int = 400, c: int = 8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, c))
    X[:, 0] = 2 * X[:, 1] - X[:, 2] + 0.05 * rng.standard_normal(n)
    return X


def test_i30_21_bfloat16_tensor(tmp_path: Path, run_cli):
    pt, npy = _fit_tensor(tmp_path, run_cli, torch.from_numpy(_planted()).to(torch.bfloat16))
    assert pt == npy and {r["partner"] for r in pt} == {"1", "2"}


def test_i30_22_sparse_tensor(tmp_path: Path, run_cli):
    X = _planted()
    X[np.abs(X) < 0.5] = 0.0
    X[:, 0] = 2 * X[:, 1] - X[:, 2]
    pt, npy = _fit_tensor(tmp_path, run_cli, torch.from_numpy(X).to_sparse())
    assert pt == npy and {r["partner"] for r in pt} == {"1", "2"}


def test_i30_23_fit_moments_forgets_the_dataframe_columns():
    """``fit(DataFrame)`` then ``fit_moments(S)``: the new fit has no column names, so
    ``predict`` takes any valid input, without the old fit's names."""
    X = _planted()
    est = CovLasso(k=2, targets=[0]).fit(pd.DataFrame(X, columns=list("abcdefgh")))
    est.fit_moments(np.cov(X.T, bias=True), X.mean(0), len(X))
    assert not hasattr(est, "feature_names_in_")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nor a "fitted with feature names" warning
        a = est.predict(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn's note: names given, none fitted
        b = est.predict(pd.DataFrame(X, columns=[f"class_{i}" for i in range(8)]))
    np.testing.assert_array_equal(a, b)


def test_i30_24_pickled_object_array(tmp_path: Path, run_cli):
    np.save(tmp_path / "obj.npy", _planted().astype(object), allow_pickle=True)
    rc, _, err = run_cli(["fit", "--logits", str(tmp_path / "obj.npy"), "--out",
                          str(tmp_path / "d.csv")])
    line = _one_error_line(err)
    assert rc == 2 and "pickled" in line and "numeric" in line and "complete" not in line, line


def _huge_header_jpeg(src: Path, dst: Path, side: int = 30000) -> None:
    """A real JPEG whose frame header says ``side`` x ``side`` pixels."""
    b = bytearray(src.read_bytes())
    i = 2
    while b[i + 1] not in (0xC0, 0xC1, 0xC2):  # the start-of-frame marker
        i += 2 + int.from_bytes(b[i + 2:i + 4], "big")
    b[i + 5:i + 9] = side.to_bytes(2, "big") * 2
    dst.write_bytes(bytes(b))


def test_i30_25_huge_image_header_gets_the_size_cap_message(tiny_folder: Path, tmp_path: Path,
                                                             run_cli):
    """A 30000 x 30000 header (PIL's own DecompressionBombError) gets the project's size-cap
    reason: the size, the cap and the fix."""
    c = _first_class(tiny_folder)
    _huge_header_jpeg(_first_image(tiny_folder), c / "huge.JPEG")
    f, *_ = _onnx(tmp_path / "m.onnx")
    rc, stdout, err = run_cli(_onnx_args(f, tiny_folder, tmp_path / "c"))
    assert rc == 0 and "images: 10 " in stdout, (stdout, err)
    said = " ".join(_warnings(err))
    assert "30000 x 30000" in said and "MAX_PIXELS" in said and "downscale" in said, err
    assert "DecompressionBomb" not in err
    with pytest.raises(DataError, match=r"30000 x 30000 .*MAX_PIXELS"):  # when decoded unchecked
        open_image(c / "huge.JPEG")


def test_i30_26_messages_name_the_options(tiny_folder: Path, tmp_path: Path, run_cli):
    """Errors name what was typed (``--views``, ``--label-mode``), not API parameters."""
    for cmd in (["extract"], ["covariance", "--out", str(tmp_path / "S.npy")]):
        rc, _, err = run_cli([*cmd, "--model", "lite0", "--data", str(tiny_folder), "--views",
                              "-1", "--cache-dir", str(tmp_path / "c")])
        line = _one_error_line(err)
        assert rc == 2 and "--views" in line and "n_aug" not in line, line
    data = _named_classes(tiny_folder, tmp_path / "pets")
    rc, _, err = run_cli(["extract", "--model", "lite0", "--data", str(data), "--cache-dir",
                          str(tmp_path / "c")])
    line = _one_error_line(err)
    assert rc == 2 and "--label-mode folder" in line, line


def test_i30_27_unknown_profile_is_refused_before_any_kernel(tmp_path: Path, monkeypatch,
                                                             capsys):
    rn = _load("run_notebooks", "scripts")

    def boom(*a, **k):
        raise AssertionError("a kernel was checked or started")

    monkeypatch.setattr(rn, "check_kernel", boom)
    monkeypatch.setattr(rn, "run_one", boom)
    nbdir = tmp_path / "nb"
    nbdir.mkdir()
    _probe_notebook(nbdir / "01_probe.ipynb")
    args = _runner_args(tmp_path, nbdir, tmp_path / "out")
    args[args.index("smoke")] = "nosuch"
    assert rn.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --profile nosuch") and "smoke" in err[0]
