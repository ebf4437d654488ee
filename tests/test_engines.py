"""Extraction engines: ONNX Runtime against PyTorch on real images, the fallback, the cache key."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import copy_images

from neudep_utils.cache import CacheKey, extract, merge_shards
from neudep_utils.cache.key import ExtractSpec, make_key
from neudep_utils.images import ViewDataset, ViewSpec, scan_folder
from neudep_utils.models import engines, load_model

KW = {"progress": False, "num_workers": 0, "batch_size": 8}
ORT_LABEL = engines.key_label("onnxruntime", "cpu") if engines.onnxruntime_version() else None
needs_ort = pytest.mark.skipif(ORT_LABEL is None, reason="onnxruntime does not import here")


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch):
    """Every test sees the once-per-process fallback warning, and no NEUDEP_ENGINE override."""
    monkeypatch.delenv("NEUDEP_ENGINE", raising=False)
    engines._FALLBACK_WARNED.clear()


@pytest.fixture
def mixed_folder(tmp_path: Path, data_root: Path) -> Path:
    """12 real images: 6 of imagenet-val (227 x 227) and 6 original-size imagenet-sample ones."""
    dst = tmp_path / "mixed"
    copy_images(data_root / "imagenet-val", dst, n_classes=3)
    copy_images(data_root / "imagenet-sample", dst, n_classes=6, per_class=1)
    return dst


def rel(a: np.ndarray, ref: np.ndarray) -> float:
    return engines.max_rel_diff(a.reshape(-1, a.shape[-1]), ref.reshape(-1, ref.shape[-1]))


# --------------------------------------------------------------------------------------------
# equivalence on real images
# --------------------------------------------------------------------------------------------


@needs_ort
@pytest.mark.parametrize("model", ["efficientnet_lite0", "mobilenet_v1_075",
                                   pytest.param("efficientnet_lite1", marks=pytest.mark.slow),
                                   pytest.param("efficientnet_lite2", marks=pytest.mark.slow),
                                   pytest.param("vit_tiny_patch16_224", marks=pytest.mark.slow)])
def test_onnxruntime_matches_torch_on_real_images(model, mixed_folder: Path, tmp_path: Path):
    """Centre and augmented views of real images: top-1 identical, logits and features within
    1e-4 relative; the two engines' entries are separate and say which engine made them."""
    cdir = tmp_path / "cache"
    ort = extract(model, mixed_folder, views=1, cache_dir=cdir, engine="onnxruntime", **KW)
    ref = extract(model, mixed_folder, views=1, cache_dir=cdir, engine="torch", **KW)
    assert ort.logits.shape == ref.logits.shape == (12, 2, 1000)
    np.testing.assert_array_equal(ort.logits.argmax(-1), ref.logits.argmax(-1))
    assert rel(ort.logits, ref.logits) <= 1e-4
    assert rel(ort.features, ref.features) <= 1e-4
    assert ort.top1 == ref.top1
    assert ort.key.engine == ORT_LABEL and ref.key.engine == "torch"
    assert ort.path != ref.path and ort.key.digest != ref.key.digest
    assert ort.meta["engine"]["name"] == "onnxruntime" and ref.meta["engine"]["name"] == "torch"
    assert ort.meta["engine"]["onnxruntime"] == engines.onnxruntime_version()
    assert 0 < ort.meta["engine"]["probe_max_rel_diff_vs_torch"] <= engines.PROBE_RTOL
    # the engines do differ in the last bits: that is why the engine is in the key
    assert not np.array_equal(ort.logits, ref.logits)


@needs_ort
def test_onnxruntime_is_deterministic_across_batch_size_and_threads(mixed_folder: Path,
                                                                   tmp_path: Path):
    """Bitwise the same logits whatever the batch split and the number of threads."""
    loaded = load_model("efficientnet_lite0")
    ds = ViewDataset(scan_folder(mixed_folder), loaded.preprocess, ViewSpec(n_aug=1))
    x = torch.stack([ds[k][0] for k in range(len(ds))])
    two = engines.build_ort_runner(loaded, tmp_path, threads=2)
    one = engines.build_ort_runner(loaded, tmp_path, threads=1)
    full, feats = two(x)
    np.testing.assert_array_equal(one(x)[0], full)
    split = [two(x[s:s + 5]) for s in range(0, len(x), 5)]
    np.testing.assert_array_equal(np.concatenate([lg for lg, _ in split]), full)
    np.testing.assert_array_equal(np.concatenate([f for _, f in split]), feats)
    np.testing.assert_array_equal(two(x[3:4])[0], full[3:4])


# --------------------------------------------------------------------------------------------
# cache key
# --------------------------------------------------------------------------------------------


def test_engine_is_part_of_the_key(tiny_folder: Path):
    m = scan_folder(tiny_folder)
    spec = ExtractSpec("efficientnet_lite0", tiny_folder)
    kw = {"weights_sha256": "a" * 64, "preprocess": {"input_size": 224}}
    labels = ["torch", "torch-cuda", "onnxruntime 1.32.0; opset 18, torch.export exporter of "
              "torch 2.14.1, recipe 1", "onnxruntime 1.33.0; opset 18, torch.export exporter of "
              "torch 2.14.1, recipe 1", "onnxruntime 1.32.0; opset 18, torch.export exporter of "
              "torch 2.15.0, recipe 1"]
    keys = [make_key(spec, m, engine=label, **kw) for label in labels]
    assert len({k.digest for k in keys}) == len(keys)
    assert [k.as_dict().get("engine") for k in keys] == [None, *labels[1:]]
    # PyTorch on the CPU keeps the key entries had before engines existed (cache format 2)
    fields = {f.name for f in dataclasses.fields(CacheKey)} - {"engine"}
    assert set(keys[0].as_dict()) == fields
    assert set(keys[1].as_dict()) == fields | {"engine"}
    # without an engine, make_key gives the label extract uses by default here
    assert make_key(spec, m, **kw).engine == engines.default_key_label()


def test_key_labels():
    assert engines.key_label("torch", "cpu") == "torch"
    assert engines.key_label("torch", "cuda:1") == "torch-cuda"
    assert engines.key_label("torch", "mps") == "torch-mps"
    with pytest.raises(ValueError, match="unknown engine"):
        engines.key_label("tensorrt", "cpu")


@needs_ort
def test_pre_engine_entry_is_read_by_the_torch_engine(tiny_folder: Path, tmp_path: Path):
    """An entry whose meta.json key has no engine field (written before engines existed) is the
    torch engine's entry: read back, not recomputed; the default engine computes its own."""
    old = extract("lite0", tiny_folder, cache_dir=tmp_path, engine="torch", **KW)
    meta = json.loads((old.path / "meta.json").read_text())
    assert "engine" not in meta["key"]
    calls = []
    again = extract("lite0", tiny_folder, cache_dir=tmp_path, engine="torch",
                    on_chunk=calls.append, **KW)
    assert calls == [] and again.path == old.path
    new = extract("lite0", tiny_folder, cache_dir=tmp_path, on_chunk=calls.append, **KW)
    assert calls and new.path != old.path and new.key.engine == ORT_LABEL


# --------------------------------------------------------------------------------------------
# choosing an engine, and the fallback
# --------------------------------------------------------------------------------------------


def test_engine_names_are_checked(tiny_folder: Path, tmp_path: Path, monkeypatch):
    with pytest.raises(ValueError, match="'tensorrt' is not an engine"):
        extract("lite0", tiny_folder, cache_dir=tmp_path, engine="tensorrt", **KW)
    monkeypatch.setenv("NEUDEP_ENGINE", "tvm")
    with pytest.raises(ValueError, match="NEUDEP_ENGINE 'tvm' is not an engine"):
        extract("lite0", tiny_folder, cache_dir=tmp_path, **KW)
    monkeypatch.setenv("NEUDEP_ENGINE", "torch")
    assert extract("lite0", tiny_folder, cache_dir=tmp_path, **KW).key.engine == "torch"


def test_onnxruntime_needs_the_cpu():
    with pytest.raises(engines.EngineError, match="CPU only"):
        engines.resolve_engine("onnxruntime", "cuda")
    assert engines.resolve_engine("auto", "cuda") == "torch"
    assert engines.key_label(engines.resolve_engine("auto", "cuda:0"), "cuda:0") == "torch-cuda"


def test_fallback_when_onnxruntime_is_missing(tiny_folder: Path, tmp_path: Path, monkeypatch):
    """auto: a warning, the torch entry (the very one an explicit torch run reads), the reason in
    meta.json; explicit onnxruntime: an error naming the fix."""
    monkeypatch.setattr(engines, "onnxruntime_version", lambda: None)
    with pytest.warns(UserWarning, match="ONNX Runtime engine unavailable .*does not import"):
        ls = extract("lite0", tiny_folder, cache_dir=tmp_path, **KW)
    assert ls.key.engine == "torch"
    assert ls.meta["engine"]["name"] == "torch"
    assert "does not import" in ls.meta["engine"]["fallback"]["reason"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        explicit = extract("lite0", tiny_folder, cache_dir=tmp_path, engine="torch", **KW)
    assert explicit.path == ls.path
    with pytest.raises(engines.EngineError, match="does not import; install it"):
        extract("lite0", tiny_folder, cache_dir=tmp_path, engine="onnxruntime", **KW)


@needs_ort
def test_fallback_when_the_export_fails(tiny_folder: Path, tmp_path: Path, monkeypatch):
    def broken(loaded):
        raise RuntimeError("unsupported operator aten::frobnicate")

    monkeypatch.setattr(engines, "export_onnx", broken)
    monkeypatch.setattr(engines, "_ORT_RUNNERS", {})
    with pytest.warns(UserWarning, match="aten::frobnicate"):
        ls = extract("lite0", tiny_folder, cache_dir=tmp_path, **KW)
    assert ls.key.engine == "torch" and "frobnicate" in ls.meta["engine"]["fallback"]["reason"]
    # the fallback's entry is found again (after the same failed attempt), not recomputed
    calls = []
    again = extract("lite0", tiny_folder, cache_dir=tmp_path, on_chunk=calls.append, **KW)
    assert again.path == ls.path and calls == []
    with pytest.raises(engines.EngineError, match="ONNX export of efficientnet_lite0 failed"):
        extract("lite0", tiny_folder, cache_dir=tmp_path / "other", engine="onnxruntime", **KW)


@needs_ort
def test_probe_rejects_a_disagreeing_session(tmp_path: Path, monkeypatch):
    """A cached .onnx file that does not compute the loaded model (its checksum file intact, the
    weights changed under the same name) is caught by the probe; so is any disagreement above
    the tolerance."""
    loaded = load_model("efficientnet_lite0")
    engines.build_ort_runner(loaded, tmp_path)  # exported and kept
    with torch.no_grad():
        loaded.model.get_classifier().bias[7] += 5.0  # same weights_sha256, other model
    with pytest.raises(engines.EngineError, match="disagrees with PyTorch"):
        engines.build_ort_runner(loaded, tmp_path)
    monkeypatch.setattr(engines, "PROBE_RTOL", 0.0)
    with pytest.raises(engines.EngineError, match="disagrees with PyTorch"):
        engines.build_ort_runner(load_model("efficientnet_lite0"), tmp_path)


@pytest.mark.slow  # ~27 CPU-s (a fresh ONNX export): CI's make test-slow
@needs_ort
def test_damaged_onnx_file_is_exported_again(tmp_path: Path):
    loaded = load_model("efficientnet_lite0")
    first = engines.build_ort_runner(loaded, tmp_path)
    path = engines.onnx_path(loaded, tmp_path)
    assert path.is_file() and first.meta["onnx_file"] == path.name
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.warns(UserWarning, match="damaged; exporting again"):
        again = engines.build_ort_runner(loaded, tmp_path)
    assert again.meta["onnx_sha256"] == first.meta["onnx_sha256"]  # the export is deterministic
    assert engines._read_checked(path) is not None


@needs_ort
def test_sharded_extraction_merges_under_its_engine(tiny_folder: Path, tmp_path: Path):
    for k in range(2):
        extract("lite0", tiny_folder, shard=f"{k}/2", cache_dir=tmp_path, **KW)
    merged = merge_shards("lite0", tiny_folder, 2, cache_dir=tmp_path)
    assert merged.key.engine == ORT_LABEL
    assert extract("lite0", tiny_folder, cache_dir=tmp_path, **KW).path == merged.path
    whole = extract("lite0", tiny_folder, cache_dir=tmp_path / "whole", **KW)
    np.testing.assert_array_equal(merged.logits, whole.logits)  # batch-independent: bitwise
    np.testing.assert_array_equal(merged.features, whole.features)
    with pytest.raises(Exception, match="not extracted with engine 'torch'"):
        merge_shards("lite0", tiny_folder, 2, cache_dir=tmp_path, engine="torch")
