"""The logit cache: content addressing, atomic writes, damage detection, resume, shards, CLI."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from neudep_utils.cache import extract, merge_shards
from neudep_utils.cache.key import ExtractSpec, entry_dir, make_key
from neudep_utils.cache.shards import shard_indices
from neudep_utils.cli import main as cli
from neudep_utils.errors import CacheError
from neudep_utils.images import ViewSpec, scan_folder
from neudep_utils.moments import Moments

KW = {"progress": False, "num_workers": 0, "batch_size": 8, "chunk_images": 4}


class Interrupted(Exception):
    pass


def test_key_changes_with_every_input(tiny_folder: Path, tmp_path: Path):
    m = scan_folder(tiny_folder)
    pre = {"input_size": 224, "crop_pct": 0.875}
    spec = ExtractSpec("efficientnet_lite0", tiny_folder)
    base = make_key(spec, m, weights_sha256="a" * 64, preprocess=pre)
    variants = [
        make_key(dataclasses.replace(spec, model="efficientnet_lite1"), m, weights_sha256="a" * 64,
                 preprocess=pre),
        make_key(spec, m, weights_sha256="b" * 64, preprocess=pre),
        make_key(spec, m.subset(range(len(m) - 1)), weights_sha256="a" * 64, preprocess=pre),
        make_key(spec, m, weights_sha256="a" * 64, preprocess={**pre, "crop_pct": 1.0}),
        make_key(dataclasses.replace(spec, views=ViewSpec(1)), m, weights_sha256="a" * 64,
                 preprocess=pre),
        make_key(dataclasses.replace(spec, views=ViewSpec(1, seed=1)), m, weights_sha256="a" * 64,
                 preprocess=pre),
        make_key(dataclasses.replace(spec, corruption="fog-3", pil_fn=lambda im, s: im), m,
                 weights_sha256="a" * 64, preprocess=pre),
        make_key(dataclasses.replace(spec, shard=(0, 2)), m, weights_sha256="a" * 64, preprocess=pre),
        make_key(dataclasses.replace(spec, mode="moments"), m, weights_sha256="a" * 64, preprocess=pre),
    ]
    (tiny_folder / sorted(p.name for p in tiny_folder.iterdir())[0] / "x.JPEG").write_bytes(
        sorted(tiny_folder.rglob("*.JPEG"))[0].read_bytes())
    variants.append(make_key(spec, scan_folder(tiny_folder), weights_sha256="a" * 64, preprocess=pre))
    digests = [base.digest] + [v.digest for v in variants]
    assert len(set(digests)) == len(digests)
    assert make_key(spec, m, weights_sha256="a" * 64, preprocess=pre).digest == base.digest


def test_extract_caches_and_reports_top1(tiny_folder: Path, tmp_path: Path):
    calls = []
    ls = extract("lite0", tiny_folder, views=1, cache_dir=tmp_path, on_chunk=calls.append, **KW)
    assert ls.logits.shape == (10, 2, 1000) and ls.features.shape == (10, 2, 1280)
    assert ls.logits.dtype == np.float32 and calls == [0, 1, 2]
    assert ls.top1 is not None and 0.0 <= ls.top1 <= 1.0
    assert ls.moments.count == 20
    np.testing.assert_allclose(ls.moments.sum_f, ls.logits.reshape(20, -1).astype(np.float64).sum(0),
                               rtol=1e-6, atol=1e-6)
    again = extract("lite0", tiny_folder, views=1, cache_dir=tmp_path, on_chunk=calls.append, **KW)
    assert calls == [0, 1, 2], "a cached entry must not be recomputed"
    np.testing.assert_array_equal(again.logits, ls.logits)
    assert again.image_ids == ls.image_ids and not (ls.path / "chunks").exists()


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete", "meta"])
def test_damaged_entry_is_rebuilt(tiny_folder: Path, tmp_path: Path, damage: str):
    ls = extract("lite0", tiny_folder, cache_dir=tmp_path, **KW)
    data = ls.path / "data.npz"
    raw = bytearray(data.read_bytes())
    if damage == "flip":
        raw[len(raw) // 2] ^= 0x01
        data.write_bytes(bytes(raw))
    elif damage == "truncate":
        data.write_bytes(bytes(raw[: len(raw) // 3]))
    elif damage == "delete":
        data.unlink()
    else:
        meta = json.loads((ls.path / "meta.json").read_text())
        meta["key"]["model"] = "something_else"
        (ls.path / "meta.json").write_text(json.dumps(meta))
    calls = []
    with pytest.warns(UserWarning, match="rebuilding"):
        again = extract("lite0", tiny_folder, cache_dir=tmp_path, on_chunk=calls.append, **KW)
    assert calls, "a damaged entry must be recomputed"
    np.testing.assert_allclose(again.logits, ls.logits, rtol=1e-5, atol=1e-5)
    assert extract("lite0", tiny_folder, cache_dir=tmp_path, **KW).meta == again.meta


def test_resume_after_interruption(tiny_folder: Path, tmp_path: Path):
    full = extract("lite0", tiny_folder, views=1, cache_dir=tmp_path / "a", **KW)

    def stop_after_first(ci: int) -> None:
        raise Interrupted

    with pytest.raises(Interrupted):
        extract("lite0", tiny_folder, views=1, cache_dir=tmp_path / "b", on_chunk=stop_after_first,
                **KW)
    chunks = list((tmp_path / "b").rglob("chunk_*.npz"))
    assert len(chunks) == 1 and not list((tmp_path / "b").rglob("meta.json"))
    # a damaged leftover chunk is recomputed, not trusted
    (tmp_path / "b" / "junk").mkdir()
    calls: list[int] = []
    resumed = extract("lite0", tiny_folder, views=1, cache_dir=tmp_path / "b", on_chunk=calls.append,
                      **KW)
    assert calls == [1, 2], f"resume recomputed chunks {calls}; expected only the unfinished ones"
    np.testing.assert_allclose(resumed.logits, full.logits, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(resumed.features, full.features, rtol=1e-5, atol=1e-4)


def test_truncated_chunk_is_recomputed(tiny_folder: Path, tmp_path: Path):
    def stop(ci: int) -> None:
        if ci == 1:
            raise Interrupted

    with pytest.raises(Interrupted):
        extract("lite0", tiny_folder, cache_dir=tmp_path, on_chunk=stop, **KW)
    c0 = sorted(tmp_path.rglob("chunk_000000.npz"))[0]
    c0.write_bytes(c0.read_bytes()[:100])
    calls: list[int] = []
    extract("lite0", tiny_folder, cache_dir=tmp_path, on_chunk=calls.append, **KW)
    assert calls == [0, 2]


@pytest.mark.parametrize("mode", ["full", "moments"])
def test_shard_merge_equals_single_pass(tiny_folder: Path, tmp_path: Path, mode: str):
    single = extract("lite0", tiny_folder, views=1, mode=mode, cache_dir=tmp_path, **KW)
    for k in range(3):
        part = extract("lite0", tiny_folder, views=1, mode=mode, shard=f"{k}/3", cache_dir=tmp_path,
                       **KW)
        assert len(part) == len(shard_indices(10, (k, 3)))
    merged = merge_shards("lite0", tiny_folder, 3, views=1, mode=mode, cache_dir=tmp_path)
    assert merged.moments.count == single.moments.count == 20
    for a, b in [(merged.moments.sum_f, single.moments.sum_f),
                 (merged.moments.sum_ff, single.moments.sum_ff)]:
        assert np.abs(a - b).max() <= 1e-6 * np.abs(b).max()
    np.testing.assert_allclose(merged.moments.second_moment(center=True),
                               single.moments.second_moment(center=True), rtol=1e-6, atol=1e-6)
    if mode == "full":
        np.testing.assert_allclose(merged.logits, single.logits, rtol=1e-5, atol=1e-4)
    assert merged.top1 == pytest.approx(single.top1)
    # the merged entry is now what a plain extract reads
    calls: list[int] = []
    extract("lite0", tiny_folder, views=1, mode=mode, cache_dir=tmp_path, on_chunk=calls.append, **KW)
    assert calls == []


def test_merge_names_missing_shards(tiny_folder: Path, tmp_path: Path):
    extract("lite0", tiny_folder, shard="0/2", cache_dir=tmp_path, **KW)
    with pytest.raises(CacheError, match=r"shard\(s\) 1/2"):
        merge_shards("lite0", tiny_folder, 2, cache_dir=tmp_path)


def test_moments_resume(tiny_folder: Path, tmp_path: Path):
    def stop(ci: int) -> None:
        if ci == 1:
            raise Interrupted

    with pytest.raises(Interrupted):
        extract("lite0", tiny_folder, mode="moments", cache_dir=tmp_path, on_chunk=stop, **KW)
    calls: list[int] = []
    resumed = extract("lite0", tiny_folder, mode="moments", cache_dir=tmp_path,
                      on_chunk=calls.append, **KW)
    assert calls == [2]
    ref = extract("lite0", tiny_folder, cache_dir=tmp_path / "ref", **KW)
    np.testing.assert_allclose(resumed.moments.second_moment(), ref.moments.second_moment(),
                               rtol=1e-5, atol=1e-3)
    assert resumed.top1 == pytest.approx(ref.top1)


def test_moments_algebra():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(50, 6))
    a, b = Moments.zeros(6), Moments.zeros(6)
    a.update(f[:20])
    b.update(f[20:])
    s = a + b
    np.testing.assert_allclose(s.second_moment(), f.T @ f / 50)
    np.testing.assert_allclose(s.second_moment(center=True), np.cov(f.T, bias=True), atol=1e-12)


def test_corruption_needs_a_name(tiny_folder: Path, tmp_path: Path):
    with pytest.raises(ValueError, match="corruption string"):
        extract("lite0", tiny_folder, pil_fn=lambda im, s: im, cache_dir=tmp_path, **KW)


def test_cli_extract_prints_top1(tiny_folder: Path, tmp_path: Path, capsys):
    rc = cli(["extract", "--model", "efficientnet_lite0", "--data", str(tiny_folder), "--cache-dir",
              str(tmp_path), "--quiet", "--workers", "0"])
    out = capsys.readouterr().out
    assert rc == 0 and "top-1: " in out
    top1 = float(out.split("top-1: ")[1].split()[0])
    assert 0.0 <= top1 <= 1.0
    key = make_key(ExtractSpec("efficientnet_lite0", tiny_folder), scan_folder(tiny_folder),
                   weights_sha256=json.loads(next(tmp_path.rglob("meta.json")).read_text())["key"][
                       "weights_sha256"], preprocess=json.loads(
                       next(tmp_path.rglob("meta.json")).read_text())["key"]["preprocess"])
    assert entry_dir(key, tmp_path).is_dir()


def test_cli_errors(tmp_path: Path, capsys):
    flat = tmp_path / "flat"
    flat.mkdir()
    assert cli(["extract", "--model", "lite0", "--data", str(flat)]) == 2
    assert "has no class subfolders; expected <wnid>/<image>" in capsys.readouterr().err
    assert cli(["extract", "--model", "nope_net", "--data", str(flat)]) == 2
    assert cli(["extract", "--model", "lite0", "--data", str(tmp_path), "--shard", "3/2"]) == 2
