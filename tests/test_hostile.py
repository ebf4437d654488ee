"""Hostile inputs of issue 20, one test per case, each on real files in a temporary folder.

The cases: a folder whose images are all unusable at scan time, or all fail to decode; a 16-bit
greyscale PNG; ``--data`` given twice; ``--out`` a folder, empty or ``/``; temporary files left
by a killed writer; an image that vanishes between scan and decode; ``psd_tol=nan``; a notebook
bool parameter; a data change under a skipped notebook; dangling symbolic links; ``covariance``
after ``extract --mode moments``; ``bench_covlasso.py --cov`` of a bad matrix. Then the minor
ones: a closed stdout pipe, ``--workers -1``, an overflowing second moment, float targets.

``scripts/check_hostile.py`` runs the same 14 cases end to end through the real CLI.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import nbformat
import numpy as np
import pytest
from PIL import Image

from neudep_utils.cache import extract
from neudep_utils.cli import main as cli
from neudep_utils.errors import DataError
from neudep_utils.images import open_image, scan_folder

REPO = Path(__file__).resolve().parents[1]
KW = {"progress": False, "num_workers": 0, "batch_size": 8}
WNID = "n01440764"  # tench, an ImageNet-1k class folder name


def _load(name: str, sub: str):
    spec = importlib.util.spec_from_file_location(name, REPO / sub / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:
    rc = cli(argv)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


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
def test_all_images_unusable_at_scan(tmp_path: Path, capsys, cmd: str):
    data = tmp_path / "D"
    (data / WNID).mkdir(parents=True)
    for name in ("a.JPEG", "b.JPEG", "c.png"):
        (data / WNID / name).write_text("this is not an image\n")
    more = ["--out", str(tmp_path / "S.npy")] if cmd == "covariance" else ["--quiet"]
    rc, _, err = _cli([cmd, "--model", "lite0", "--data", str(data), "--cache-dir",
                       str(tmp_path / "c"), *more], capsys)
    line = _one_error_line(err)
    assert rc == 2 and f"no readable images in {data}" in line, line
    assert "unexpected" not in line and "bug" not in line
    assert not (tmp_path / "c").exists() and not (tmp_path / "S.npy").exists()


def test_all_images_fail_to_decode(tiny_folder: Path, tmp_path: Path, capsys):
    """Truncated JPEGs pass the header check at scan time and fail only when decoded."""
    for f in tiny_folder.rglob("*.JPEG"):
        f.write_bytes(f.read_bytes()[:3000])
    assert len(scan_folder(tiny_folder)) == 10  # the headers are intact
    cache = tmp_path / "c"
    rc, out, err = _cli(["extract", "--model", "lite0", "--data", str(tiny_folder),
                         "--cache-dir", str(cache), "--quiet", "--workers", "0"], capsys)
    line = _one_error_line(err)
    assert rc == 2 and f"no readable images in {tiny_folder}" in line and "nothing" in line, line
    assert "images: 0" not in out
    assert not _entries(cache) and not list(cache.rglob("*.npz")), list(cache.rglob("*"))
    rc, _, err = _cli(["covariance", "--model", "lite0", "--data", str(tiny_folder),
                       "--cache-dir", str(cache), "--out", str(tmp_path / "S")], capsys)
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


def test_repeated_data_pools_both(tiny_folder: Path, tmp_path: Path, capsys):
    a, b = _split(tiny_folder, tmp_path)
    base = ["covariance", "--model", "lite0", "--cache-dir", str(tmp_path / "c")]
    rc, out, _ = _cli([*base, "--data", str(a), "--data", str(b), "--out",
                       str(tmp_path / "rep.npy")], capsys)
    assert rc == 0 and "from 10 logit vectors" in out, out
    rc, out, _ = _cli([*base, "--data", str(a), str(b), "--out", str(tmp_path / "both.npy")],
                      capsys)
    assert rc == 0
    rc, out, _ = _cli([*base, "--data", str(b), "--out", str(tmp_path / "b.npy")], capsys)
    assert rc == 0 and "from 4 logit vectors" in out
    np.testing.assert_array_equal(np.load(tmp_path / "rep.npy"), np.load(tmp_path / "both.npy"))
    assert not np.allclose(np.load(tmp_path / "rep.npy"), np.load(tmp_path / "b.npy"))
    # the same folder twice would count its images twice: refused
    rc, _, err = _cli([*base, "--data", str(a), "--data", str(a), "--out",
                       str(tmp_path / "aa.npy")], capsys)
    assert rc == 2 and "--data" in _one_error_line(err) and "once" in err
    # extract takes one folder: a second --data is an error, not silently the winner
    rc, _, err = _cli(["extract", "--model", "lite0", "--data", str(a), "--data", str(b),
                       "--cache-dir", str(tmp_path / "c")], capsys)
    line = _one_error_line(err)
    assert rc == 2 and "--data given twice" in line and str(b) in line


def test_out_is_a_folder(tiny_folder: Path, tmp_path: Path, capsys):
    results = tmp_path / "results"
    results.mkdir()
    for given in (str(results) + "/", str(results)):
        rc, _, err = _cli(["covariance", "--model", "lite0", "--data", str(tiny_folder),
                           "--cache-dir", str(tmp_path / "c"), "--out", given], capsys)
        line = _one_error_line(err)
        assert rc == 2 and line.startswith(f"error: --out {given}") and "folder" in line, line
    assert not (tmp_path / "results.npy").exists() and not list(results.iterdir())
    assert not (tmp_path / "c").exists()  # refused before any work


@pytest.mark.parametrize("given", ["", "/", ".", "  "])
def test_out_empty_or_root(tiny_folder: Path, tmp_path: Path, capsys, given: str):
    rc, _, err = _cli(["covariance", "--model", "lite0", "--data", str(tiny_folder),
                       "--cache-dir", str(tmp_path / "c"), "--out", given], capsys)
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
    from neudep_utils._io import _host

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
    from neudep_utils._io import _host

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
    from neudep_utils._io import _host, remove_stale_temporaries

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
    from neudep_utils import covlasso

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


def test_covariance_uses_cached_moments(tiny_folder: Path, tmp_path: Path, capsys):
    cache = tmp_path / "c"
    rc, _, _ = _cli(["extract", "--model", "lite0", "--data", str(tiny_folder), "--cache-dir",
                     str(cache), "--mode", "moments", "--quiet", "--workers", "0"], capsys)
    assert rc == 0
    [moments_entry] = _entries(cache)
    before = (moments_entry / "meta.json").read_bytes()
    rc, out, _ = _cli(["covariance", "--model", "lite0", "--data", str(tiny_folder),
                       "--cache-dir", str(cache), "--out", str(tmp_path / "S.npy")], capsys)
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


def test_workers_must_not_be_negative(tiny_folder: Path, tmp_path: Path, capsys):
    rc, _, err = _cli(["extract", "--model", "lite0", "--data", str(tiny_folder), "--cache-dir",
                       str(tmp_path), "--workers", "-1"], capsys)
    line = _one_error_line(err)
    assert rc == 2 and "--workers" in line and ">= 0" in line
    with pytest.raises(ValueError, match="workers"):
        extract("lite0", tiny_folder, cache_dir=tmp_path, num_workers=-2, progress=False)


def test_second_moment_overflow_raises():
    from neudep_utils.moments import second_moment

    x = np.array([[1e200, 1.0], [2.0, 3.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning either
        with pytest.raises(ValueError, match="overflow"):
            second_moment(x)
        with pytest.raises(ValueError, match="overflow"):
            second_moment(x, center=True)
        assert np.isfinite(second_moment(np.array([[1e150, 1.0], [2.0, 3.0]]))).all()


def test_fit_covlasso_k_refuses_float_targets():
    from neudep_utils.dependencies.fit import fit_covlasso_k
    from neudep_utils.dependencies.folds import Fold

    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 6))
    fold = Fold(np.cov(X.T, bias=True), X.mean(0), True, np.arange(10), None, 200)
    with pytest.raises(ValueError, match="integer"):
        fit_covlasso_k(fold, [1], targets=[1.7, 2.0])
    got = fit_covlasso_k(fold, [1], targets=[1, 2])
    assert got[1].targets.tolist() == [1, 2]
