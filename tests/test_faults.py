"""Faults an adversarial user can cause, each on real files in a temporary folder (issue 11).

Cache: a chunk-size change on resume, an edited ``meta.json``. Untrusted folders: a PostScript
file named ``.JPEG``, other disguised images, a 9000 x 1 JPEG, a huge image. One bad image: a
truncated JPEG that passes ``verify()`` is skipped mid-run and recorded. CLI: every failure is
one ``error: ...`` line naming the input and the fix, with a non-zero exit (130 on Ctrl-C), and
no partial file outlives a failed write.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import copy_images
from PIL import EpsImagePlugin, Image

from neudep_utils.cache import extract, load_logits
from neudep_utils.cache.run import CHUNK_MARKER_ENV, _chunk_done
from neudep_utils.cli import main as cli
from neudep_utils.images import scan_folder

REPO = Path(__file__).resolve().parents[1]
KW = {"progress": False, "num_workers": 0, "batch_size": 8}

EPS = (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\n%%EndComments\n"
       b"newpath 10 10 moveto 90 90 lineto stroke\nshowpage\n%%EOF\n")


class Interrupted(Exception):
    pass


def _stop_at(n: int):
    def hook(ci: int) -> None:
        if ci == n:
            raise Interrupted

    return hook


def _first_class(folder: Path) -> Path:
    return sorted(p for p in folder.iterdir() if p.is_dir())[0]


def _truncate_one(folder: Path) -> str:
    """Cut the first image of the second class to 40% of its bytes; returns its relative path."""
    f = sorted(sorted(p for p in folder.iterdir() if p.is_dir())[1].iterdir())[0]
    f.write_bytes(f.read_bytes()[: int(f.stat().st_size * 0.4)])
    return f"{f.parent.name}/{f.name}"


def _one_error_line(err: str) -> str:
    lines = [x for x in err.splitlines() if x.strip()]
    assert "Traceback" not in err, err[-3000:]
    assert len(lines) == 1, f"expected one error line, got {len(lines)}:\n{err[-3000:]}"
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


# --------------------------------------------------------------------------------------------
# 1. silent wrong results
# --------------------------------------------------------------------------------------------


def test_resume_with_other_chunk_size_full(tiny_folder: Path, tmp_path: Path):
    """Chunks written with chunk_images=4 must not be reused as chunks of size 2."""
    ref = extract("lite0", tiny_folder, cache_dir=tmp_path / "ref", chunk_images=4, **KW)
    with pytest.raises(Interrupted):  # chunks 0..2 (images 0-3, 4-7, 8-9) saved, no meta.json
        extract("lite0", tiny_folder, cache_dir=tmp_path / "c", chunk_images=4,
                on_chunk=_stop_at(2), **KW)
    with warnings_ok():
        resumed = extract("lite0", tiny_folder, cache_dir=tmp_path / "c", chunk_images=2, **KW)
    np.testing.assert_allclose(resumed.logits, ref.logits, rtol=1e-5, atol=1e-4)
    assert resumed.top1 == pytest.approx(ref.top1)


def test_resume_with_other_chunk_size_moments(tiny_folder: Path, tmp_path: Path):
    """A moments run stopped after 8 images resumed with chunk_images=3 counts each image once."""
    ref = extract("lite0", tiny_folder, mode="moments", cache_dir=tmp_path / "ref", chunk_images=4,
                  **KW)
    with pytest.raises(Interrupted):
        extract("lite0", tiny_folder, mode="moments", cache_dir=tmp_path / "c", chunk_images=4,
                on_chunk=_stop_at(1), **KW)
    with warnings_ok():
        resumed = extract("lite0", tiny_folder, mode="moments", cache_dir=tmp_path / "c",
                          chunk_images=3, **KW)
    assert resumed.moments.count == ref.moments.count == 10
    for a, b in [(resumed.moments.sum_f, ref.moments.sum_f),
                 (resumed.moments.sum_ff, ref.moments.sum_ff)]:
        assert np.abs(a - b).max() <= 1e-6 * np.abs(b).max()
    assert resumed.top1 == pytest.approx(ref.top1) and resumed.top1 <= 1.0


def test_edited_meta_is_detected(tiny_folder: Path, tmp_path: Path):
    """meta.json's served numbers (top1) are covered by a checksum; an edit means a rebuild."""
    ls = extract("lite0", tiny_folder, cache_dir=tmp_path, chunk_images=4, **KW)
    meta_path = ls.path / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["top1"] = 1.0 if ls.top1 != 1.0 else 0.0
    meta_path.write_text(json.dumps(meta, indent=1, sort_keys=True))
    with pytest.warns(UserWarning, match="rebuilding"):
        again = extract("lite0", tiny_folder, cache_dir=tmp_path, chunk_images=4, **KW)
    assert again.top1 == pytest.approx(ls.top1)
    assert again.top1 == pytest.approx(float((ls.logits[:, 0].argmax(1) == ls.labels).mean()))


@contextlib.contextmanager
def warnings_ok():
    """Allow (but do not require) warnings, e.g. 'chunk layout differs; restarting'."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# --------------------------------------------------------------------------------------------
# 2. untrusted folders
# --------------------------------------------------------------------------------------------


def test_disguised_files_are_skipped_with_a_reason(tiny_folder: Path):
    """Only JPEG and PNG decoders are reachable, whatever the file name says."""
    c = _first_class(tiny_folder)
    (c / "postscript.JPEG").write_bytes(EPS)
    Image.new("RGB", (64, 48), (10, 200, 30)).save(c / "bitmap.JPEG", format="BMP")
    Image.new("RGB", (64, 48), (10, 200, 30)).save(c / "really_png.JPEG", format="PNG")
    with pytest.warns(UserWarning, match="skipped"):
        m = scan_folder(tiny_folder)
    reasons = dict(m.skipped)
    assert f"{c.name}/postscript.JPEG" not in m.relpaths
    assert f"{c.name}/bitmap.JPEG" not in m.relpaths
    assert "format" in reasons[f"{c.name}/postscript.JPEG"]
    assert "format" in reasons[f"{c.name}/bitmap.JPEG"]
    assert f"{c.name}/really_png.JPEG" in m.relpaths  # ImageNet has PNGs named .JPEG


def test_postscript_never_reaches_a_decoder_at_extraction(tiny_folder: Path, tmp_path: Path,
                                                          monkeypatch):
    """Even without the up-front check (verify=False, as for huge folders), the EPS plugin is
    never used: the file is skipped and recorded."""
    def boom(*a, **k):
        raise AssertionError("the EPS decoder (Ghostscript) was reached")

    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "load", boom)
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", boom, raising=False)
    c = _first_class(tiny_folder)
    (c / "postscript.JPEG").write_bytes(EPS)
    m = scan_folder(tiny_folder, verify=False)
    assert len(m) == 11
    ls = extract("lite0", tiny_folder, manifest=m, cache_dir=tmp_path, chunk_images=4, **KW)
    assert len(ls) == 10
    assert [p for p, _ in ls.skipped] == [f"{c.name}/postscript.JPEG"]
    assert "format" in dict(ls.skipped)[f"{c.name}/postscript.JPEG"]


def test_extreme_aspect_ratio_is_skipped(tiny_folder: Path, tmp_path: Path):
    """A 9000 x 1 JPEG (2.9 KB) is refused before decoding: its resize would need gigabytes."""
    c = _first_class(tiny_folder)
    Image.new("RGB", (9000, 1), (128, 64, 32)).save(c / "strip.JPEG", quality=90)
    assert (c / "strip.JPEG").stat().st_size < 10_000
    with pytest.warns(UserWarning, match="skipped"):
        m = scan_folder(tiny_folder)
    assert "aspect" in dict(m.skipped)[f"{c.name}/strip.JPEG"]
    # and mid-run, when the folder was not checked up front
    m2 = scan_folder(tiny_folder, verify=False)
    ls = extract("lite0", tiny_folder, manifest=m2, cache_dir=tmp_path, chunk_images=4, **KW)
    assert "aspect" in dict(ls.skipped)[f"{c.name}/strip.JPEG"] and len(ls) == 10


def test_pixel_cap(tiny_folder: Path):
    """An image of more pixels than the cap (a 10000 x 10000 bilevel PNG, a few KB) is skipped."""
    c = _first_class(tiny_folder)
    Image.new("1", (10_000, 10_000)).save(c / "huge.png")
    with pytest.warns(UserWarning, match="skipped"):
        m = scan_folder(tiny_folder)
    assert "pixels" in dict(m.skipped)[f"{c.name}/huge.png"]


# --------------------------------------------------------------------------------------------
# 3. one bad image
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["full", "moments"])
def test_truncated_image_is_skipped_and_recorded(tiny_folder: Path, tmp_path: Path, mode: str):
    bad = _truncate_one(tiny_folder)
    m = scan_folder(tiny_folder)  # the header is intact: verify() passes
    assert bad in m.relpaths and len(m) == 10
    ref = extract("lite0", tiny_folder, mode="full", cache_dir=tmp_path / "ref",
                  chunk_images=4, **KW)
    assert bad not in ref.image_ids and len(ref) == 9
    assert [p for p, _ in ref.skipped] == [bad]
    meta = json.loads((ref.path / "meta.json").read_text())
    assert bad in json.dumps(meta["skipped_images"])
    # the key is the folder's key (the file was not removed) and a resumed run reuses chunks
    with pytest.raises(Interrupted):
        extract("lite0", tiny_folder, mode=mode, cache_dir=tmp_path / "c", chunk_images=4,
                on_chunk=_stop_at(0), **KW)
    calls: list[int] = []
    ls = extract("lite0", tiny_folder, mode=mode, cache_dir=tmp_path / "c", chunk_images=4,
                 on_chunk=calls.append, **KW)
    assert calls == [1, 2], calls
    assert ls.moments.count == 9 and [p for p, _ in ls.skipped] == [bad]
    assert ls.top1 == pytest.approx(float((ref.logits[:, 0].argmax(1) == ref.labels).mean()))
    np.testing.assert_allclose(ls.moments.sum_f, ref.moments.sum_f, rtol=1e-5, atol=1e-3)
    # served from the cache with the same record
    again = extract("lite0", tiny_folder, mode=mode, cache_dir=tmp_path / "c", chunk_images=4,
                    on_chunk=calls.append, **KW)
    assert calls == [1, 2] and again.skipped == ls.skipped


def test_consumers_exclude_skipped_images_and_say_so(tiny_folder: Path, tmp_path: Path):
    bad = _truncate_one(tiny_folder)
    with pytest.warns(UserWarning, match=r"1 unreadable image.*excluded"):
        data = load_logits("lite0", [tiny_folder], cache_dir=tmp_path)
    assert data.n_images == 9 and not any(i.endswith(bad) for i in data.image_ids)
    assert np.isfinite(data.logits).all()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
        rc = cli(["extract", "--model", "lite0", "--data", str(tiny_folder), "--cache-dir",
                  str(tmp_path), "--quiet", "--workers", "0"])
    out = buf.getvalue()
    assert rc == 0 and bad in out and "excluded" in out, out


# --------------------------------------------------------------------------------------------
# 4. the CLI: one error line, non-zero exit, no partial file
# --------------------------------------------------------------------------------------------


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:
    rc = cli(argv)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _extract_args(folder: Path, cache: Path, *more: str) -> list[str]:
    return ["extract", "--model", "lite0", "--data", str(folder), "--cache-dir", str(cache),
            "--quiet", "--workers", "0", *more]


@pytest.mark.parametrize("mode", ["full", "moments"])
def test_cli_more_shards_than_images(tiny_folder: Path, tmp_path: Path, capsys, mode: str):
    rc, _, err = _cli(_extract_args(tiny_folder, tmp_path, "--shard", "0/30", "--mode", mode),
                      capsys)
    line = _one_error_line(err)
    assert rc == 2 and "0/30" in line and "10 images" in line and "at most 10" in line


def test_cli_merge_zero_shards(tiny_folder: Path, tmp_path: Path, capsys):
    rc, _, err = _cli(["merge", "--model", "lite0", "--data", str(tiny_folder), "--cache-dir",
                       str(tmp_path), "--shards", "0"], capsys)
    line = _one_error_line(err)
    assert rc == 2 and "--shards" in line and ">= 1" in line


def test_cli_unknown_device(tiny_folder: Path, tmp_path: Path, capsys):
    rc, _, err = _cli(_extract_args(tiny_folder, tmp_path, "--device", "tpu"), capsys)
    line = _one_error_line(err)
    assert rc == 2 and "tpu" in line and "cpu" in line


def test_cli_covariance_out_missing_folder(tiny_folder: Path, tmp_path: Path, capsys):
    out = tmp_path / "no" / "such" / "S"
    rc, _, err = _cli(["covariance", "--model", "lite0", "--data", str(tiny_folder),
                       "--cache-dir", str(tmp_path / "c"), "--out", str(out)], capsys)
    line = _one_error_line(err)
    assert rc == 2 and str(out.parent) in line and "create" in line


def test_cli_covariance_prints_the_real_path(tiny_folder: Path, tmp_path: Path, capsys):
    rc, out, _ = _cli(["covariance", "--model", "lite0", "--data", str(tiny_folder),
                       "--cache-dir", str(tmp_path / "c"), "--out", str(tmp_path / "S")], capsys)
    assert rc == 0
    written = out.split("wrote ")[1].split(":")[0]
    assert Path(written).is_file() and written == str(tmp_path / "S.npy")
    assert np.load(written).shape == (1000, 1000)
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


def test_cli_symlink_loop_in_folder(tiny_folder: Path, tmp_path: Path, capsys):
    c = _first_class(tiny_folder)
    os.symlink("loop.JPEG", c / "loop.JPEG")  # a link to itself
    os.symlink("n99", tiny_folder / "n99")  # a class-folder link to itself
    rc, out, err = _cli(_extract_args(tiny_folder, tmp_path), capsys)
    assert "Traceback" not in err
    assert rc == 0 and "top-1" in out
    assert f"{c.name}/loop.JPEG" in err and "symbolic link" in err


def test_cli_file_name_not_utf8(tiny_folder: Path, tmp_path: Path, capsys):
    c = _first_class(tiny_folder)
    src = sorted(c.iterdir())[0]
    bad = os.fsencode(c) + b"/caf\xe9.JPEG"  # latin-1 byte: not valid UTF-8
    with open(bad, "wb") as fh:
        fh.write(src.read_bytes())
    rc, out, err = _cli(_extract_args(tiny_folder, tmp_path), capsys)
    assert "Traceback" not in err
    assert rc == 0 and "top-1" in out and "UTF-8" in err and "rename" in err


def _mount_tmpfs(where: Path, opts: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)],
                       capture_output=True)
    return r.returncode == 0


@pytest.fixture
def mounts():
    done: list[Path] = []
    yield done
    for p in done:
        subprocess.run(["umount", "-l", str(p)], capture_output=True)


def test_cli_read_only_cache(tiny_folder: Path, tmp_path: Path, capsys, mounts):
    ro = tmp_path / "ro"
    if _mount_tmpfs(ro, "ro,size=1m"):
        mounts.append(ro)
    elif os.geteuid() != 0:
        ro.chmod(0o555)
    else:
        pytest.skip("cannot mount a read-only tmpfs here (no CAP_SYS_ADMIN), and root ignores "
                    "permission bits")
    rc, _, err = _cli(_extract_args(tiny_folder, ro / "cache"), capsys)
    line = _one_error_line(err)
    assert rc == 2 and str(ro) in line and ("--cache-dir" in line or "NEUDEP_CACHE" in line)


def test_cli_disk_full_leaves_no_partial_file(tiny_folder: Path, tmp_path: Path, capsys, mounts):
    """A 2 MB tmpfs: the chunks fit, data.npz (8 MB of float64 moments) does not."""
    small = tmp_path / "small"
    if not _mount_tmpfs(small, "size=2m"):
        pytest.skip("cannot mount a small tmpfs here (no CAP_SYS_ADMIN); see the RLIMIT_FSIZE "
                    "test below")
    mounts.append(small)
    rc, _, err = _cli(_extract_args(tiny_folder, small / "cache"), capsys)
    line = _one_error_line(err)
    assert rc == 2 and "space" in line and str(small) in line
    left = [p for p in small.rglob("*") if p.name.endswith(".tmp")]
    assert not left, f"partial files left behind: {left}"


@pytest.mark.slow  # ~19 CPU-s (a CLI extraction in a subprocess): CI's make test-slow
def test_cli_write_limit_leaves_no_partial_file(tiny_folder: Path, tmp_path: Path):
    """The same with a real failed write in a child process: RLIMIT_FSIZE of 1 MB (EFBIG)."""
    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

    cache = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": str(REPO), "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    r = subprocess.run([sys.executable, "-m", "neudep_utils", *_extract_args(tiny_folder, cache)],
                       capture_output=True, text=True, env=env, preexec_fn=limit, timeout=300)
    line = _one_error_line(r.stderr)
    assert r.returncode == 2 and "data.npz" in line, r.stderr[-2000:]
    left = [p for p in cache.rglob("*") if p.name.endswith(".tmp")]
    assert not left, f"partial files left behind: {left}"


def _sigint_default() -> None:
    """In the child, before Python starts: SIGINT back to its default action. A process started in
    the background of a non-interactive shell (``make test > log &``, a CI step, a tool runner)
    inherits SIGINT *ignored*, and Python installs its KeyboardInterrupt handler only when SIGINT
    is not ignored at start-up: the CLI would never see the test's SIGINT (issue 30)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_delivered(pid: int, signum: int, deadline: float) -> None:
    """Wait until the kernel no longer holds ``signum`` pending for ``pid`` (Linux ``/proc``):
    the process has taken it, so its Python handler has run before any later bytecode."""
    bit = 1 << (signum - 1)
    status = Path(f"/proc/{pid}/status")
    while time.monotonic() < deadline:
        try:
            fields = dict(x.split(":", 1) for x in status.read_text().splitlines() if ":" in x)
        except OSError:  # exited already, or no /proc
            return
        if not any(int(fields.get(k, "0").strip(), 16) & bit for k in ("ShdPnd", "SigPnd")):
            return
        time.sleep(0.05)


def test_cli_ctrl_c(tmp_path: Path, data_root: Path):
    """SIGINT during an extraction: one error line, exit status 130, finished chunks kept.

    The signal is sent at a known point, whatever the machine's speed: the extraction writes the
    index of each chunk it has saved to a marker file and pauses until the marker is removed (the
    NEUDEP_CHUNK_MARKER test hook), so SIGINT arrives after chunk 0 is on disk and before chunk 1
    starts. The test itself ends the pause once the signal is delivered: were SIGINT ignored, the
    run would finish (exit 0, a failure here) instead of leaving the test waiting on the pause."""
    folder = copy_images(data_root / "imagenet-val", tmp_path / "imgs", n_classes=4)
    marker = tmp_path / "chunk-done"
    env = {**os.environ, "PYTHONPATH": str(REPO), "NUMBA_CACHE_DIR": str(tmp_path / "numba"),
           "NEUDEP_CHUNK_MARKER": str(marker), "NEUDEP_PAUSE_AFTER_CHUNK_S": "600"}
    p = subprocess.Popen([sys.executable, "-m", "neudep_utils", "extract", "--model", "lite0",
                          "--data", str(folder), "--cache-dir", str(tmp_path / "cache"),
                          "--quiet", "--workers", "1", "--batch-size", "4"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                         preexec_fn=_sigint_default)
    try:
        deadline = time.monotonic() + 600  # only a bound for a hung run, never a timing
        while not marker.exists() and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), f"no chunk finished (rc {p.poll()}): {p.stderr.read()[-2000:]}"
        assert marker.read_text() == "0"
        p.send_signal(signal.SIGINT)
        _wait_delivered(p.pid, signal.SIGINT, deadline)
        marker.unlink()  # end the pause: the interrupted run exits, a run that ignored it finishes
        out, err = p.communicate(timeout=600)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode != 0, f"SIGINT did not interrupt the run (it finished): {err[-2000:]}"
    line = _one_error_line(err)
    assert p.returncode == 130, (p.returncode, err[-2000:])
    assert "interrupted" in line and "rerun" in line
    chunks = list((tmp_path / "cache").rglob("chunk_000000.npz"))
    assert len(chunks) == 1 and not list((tmp_path / "cache").rglob("meta.json"))


def test_chunk_pause_ends_when_the_marker_is_removed(tmp_path: Path, monkeypatch):
    """The NEUDEP_CHUNK_MARKER pause is ended by its test (removing the marker), not only by a
    signal or its bound: a test never waits on a pause a signal may not end."""
    marker = tmp_path / "m"
    monkeypatch.setenv(CHUNK_MARKER_ENV, str(marker))
    monkeypatch.setenv("NEUDEP_PAUSE_AFTER_CHUNK_S", "3600")
    seen: list[int] = []

    def release() -> None:
        while not marker.exists():
            time.sleep(0.01)
        seen.append(int(marker.read_text()))
        marker.unlink()

    t = threading.Thread(target=release, daemon=True)
    t.start()
    _chunk_done(3, seen.append)  # returns only once the marker is gone
    t.join()
    assert seen == [3, 3] and not marker.exists()
