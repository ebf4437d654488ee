"""ViT-Ti/16 (d = 192, the study's transformer): timm's architecture with the verified tensor files
of ../shared/models on real images, its head and features, damaged folders named, the
architecture kinds the cross-model claim reads."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from neudep_utils import cache
from neudep_utils.errors import ModelError
from neudep_utils.images import ViewDataset, scan_folder
from neudep_utils.models import (
    architecture,
    canonical_name,
    get_spec,
    label,
    load_model,
    recipe,
    registered,
    short_name,
    vit,
    weights_checksum,
)

SHARED = vit.default_models_dir() / vit.FOLDER_NAME


@pytest.fixture(scope="module")
def vit_model():
    """The real ViT-Ti/16, loaded once."""
    return load_model("vit_tiny_patch16_224")


def copy_weights(tmp_path: Path) -> Path:
    """A writable copy of the shared weights folder; returns the models dir holding it."""
    root = tmp_path / "models"
    shutil.copytree(SHARED, root / vit.FOLDER_NAME)
    for f in (root / vit.FOLDER_NAME).iterdir():
        f.chmod(0o644)
    return root


def rewrite_sums(folder: Path) -> None:
    """Regenerate SHA256SUMS over every file (as `sha256sum *.bin` would)."""
    lines = [f"{hashlib.sha256(f.read_bytes()).hexdigest()}  {f.name}"
             for f in sorted(folder.iterdir()) if f.name != "SHA256SUMS"]
    (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")


# --------------------------------------------------------------------------------------------
# the model on real images
# --------------------------------------------------------------------------------------------


def test_real_images_head_and_features(vit_model, data_root):
    """40 real images: about 0.83 top-1; features are the head's input (logits = H W^T + b);
    random weights of the same architecture score at chance."""
    m = scan_folder(data_root / "imagenet-sample")
    sub = m.subset(np.linspace(0, len(m) - 1, 40).astype(int))
    ds = ViewDataset(sub, vit_model.preprocess)
    x = torch.stack([ds[i][0] for i in range(len(sub))])
    with torch.inference_mode():
        logits, feats = vit_model.logits_and_features(x)
        direct = vit_model.model(x)
    np.testing.assert_allclose(direct.numpy(), logits.numpy(), rtol=1e-5, atol=1e-4)
    assert logits.shape == (40, 1000) and feats.shape == (40, 192)
    W, b = vit_model.classifier_weights()
    assert W.shape == (1000, 192) and b.shape == (1000,)
    np.testing.assert_allclose(feats.double().numpy() @ W.T + b, logits.double().numpy(),
                               rtol=1e-5, atol=1e-4)
    # the feature is the class token after the final LayerNorm (the head's input)
    with torch.inference_mode():
        tokens = vit_model.model.forward_features(x)
    np.testing.assert_allclose(feats.numpy(), tokens[:, 0].numpy(), rtol=1e-6, atol=1e-6)
    top1 = float((logits.argmax(1).numpy() == sub.labels).mean())
    assert top1 >= 0.7, top1  # about 0.83 expected; a wrong normalisation gives about 0.54
    import timm  # noqa: PLC0415 - timm: ~2 s

    torch.manual_seed(0)
    rand = timm.create_model("vit_tiny_patch16_224", pretrained=False).eval()
    with torch.inference_mode():
        rtop1 = float((rand(x).argmax(1).numpy() == sub.labels).mean())
    assert rtop1 <= 0.1


def test_metadata_and_preprocessing_from_timm(vit_model):
    from timm.data import resolve_data_config  # noqa: PLC0415 - timm: ~2 s

    cfg = resolve_data_config({}, model=vit_model.model)
    p = vit_model.preprocess
    assert (p.input_size, p.crop_pct, p.interpolation) == (224, 0.9, "bicubic") == (
        cfg["input_size"][-1], cfg["crop_pct"], cfg["interpolation"])
    assert p.mean == p.std == (0.5, 0.5, 0.5) == tuple(cfg["mean"]) == tuple(cfg["std"])
    assert p.resize_size == 248
    # the preprocessing is part of the cache key
    assert p.describe() == {"input_size": 224, "resize": 248, "crop_pct": 0.9,
                            "interpolation": "bicubic", "mean": [0.5] * 3, "std": [0.5] * 3}
    assert vit_model.num_features == 192 == get_spec("vit_ti16").width
    assert vit_model.kind == "torch" and vit_model.family == "vit" and not vit_model.model.training
    assert vit_model.weights_sha256 == weights_checksum("vit_tiny_patch16_224") == \
        hashlib.sha256((SHARED / "SHA256SUMS").read_bytes()).hexdigest()
    assert "ImageNet-21k" in vit_model.weights_source


def test_names_architecture_and_recipe():
    assert "vit_tiny_patch16_224" in registered()
    assert canonical_name("vit_ti16") == "vit_tiny_patch16_224"
    assert short_name("vit_tiny_patch16_224") == "vit_ti16"
    assert architecture("vit_ti16") == "transformer"
    assert {architecture(m) for m in registered() if m != "vit_tiny_patch16_224"} == {"cnn"}
    assert recipe("vit_ti16") == "ImageNet-21k pretrained, 1k fine-tuned"
    assert label("vit_ti16") == "vit_ti16 (ImageNet-21k pretrained, 1k fine-tuned)"
    assert label("efficientnet_lite0") == "lite0"  # no note: the name alone
    # hub models are classified by the timm module that defines them (no weights loaded)
    assert architecture("swin_tiny_patch4_window7_224") == "transformer"
    assert architecture("resnet50") == "cnn"
    assert architecture("not_a_model_at_all") == ""
    with pytest.raises(ValueError, match="architecture must be one of"):
        vit.ModelSpec(name="x", load=None, checksum=None, description="", family="x", width=1,
                      architecture="mlp")


def test_every_file_maps_to_one_key():
    expected = vit.expected_tensors()
    assert len(expected) == 152
    listed = {ln.split()[1] for ln in (SHARED / "SHA256SUMS").read_text().splitlines()
              if ln.strip()}
    assert listed == set(expected)
    assert expected["blocks_3_attn_qkv_weight.bin"] == ("blocks.3.attn.qkv.weight", (576, 192))
    path = SHARED / "cls_token.bin"
    assert path.stat().st_size == 4 * 3 + 4 * 192


# --------------------------------------------------------------------------------------------
# damaged folders: each refused, naming the file and the fix
# --------------------------------------------------------------------------------------------


QKV = "blocks_0_attn_qkv_weight.bin"


def _flip_byte(f: Path) -> None:
    p = f / QKV
    data = bytearray(p.read_bytes())
    data[1000] ^= 0xFF
    p.write_bytes(bytes(data))


def _truncate(f: Path) -> None:
    p = f / QKV
    p.write_bytes(p.read_bytes()[:-8])


def _unlist(f: Path) -> None:
    p = f / "SHA256SUMS"
    p.write_text("".join(ln for ln in p.read_text().splitlines(keepends=True) if QKV not in ln))


def _extra(f: Path) -> None:
    (f / "head_weight_old.bin").write_bytes(b"\0" * 16)
    rewrite_sums(f)


def _transposed_header(f: Path) -> None:
    """Same bytes count, header (192, 576) instead of (576, 192); checksums updated."""
    p = f / QKV
    data = bytearray(p.read_bytes())
    data[:8] = np.array([192, 576], "<i4").tobytes()
    p.write_bytes(bytes(data))
    rewrite_sums(f)


def _swapped_files(f: Path) -> None:
    """Two same-size files swapped (norm1 weight <-> bias of block 0): the checksums catch it."""
    a, b = f / "blocks_0_norm1_weight.bin", f / "blocks_0_norm1_bias.bin"
    da, db = a.read_bytes(), b.read_bytes()
    a.write_bytes(db)
    b.write_bytes(da)


def _truncated_resummed(f: Path) -> None:
    _truncate(f)
    rewrite_sums(f)


def _missing_resummed(f: Path) -> None:
    (f / QKV).unlink()
    rewrite_sums(f)


@pytest.mark.parametrize("damage,message", [
    (_flip_byte, rf"{QKV}: sha256 .* does not match SHA256SUMS"),
    (_truncate, rf"{QKV}: sha256 .* does not match SHA256SUMS"),
    (_swapped_files, r"blocks_0_norm1_(weight|bias)\.bin: sha256 .* does not match"),
    (lambda f: (f / QKV).unlink(), rf"{QKV} is missing \(listed in SHA256SUMS\)"),
    (lambda f: (f / "SHA256SUMS").unlink(), r"SHA256SUMS is missing"),
    (_unlist, rf"SHA256SUMS does not list {QKV}"),
    (_missing_resummed, rf"SHA256SUMS does not list {QKV}"),
    (_extra, r"SHA256SUMS lists head_weight_old\.bin, which belong to no tensor"),
    (_transposed_header, rf"{QKV}: header says shape \(192, 576\), timm's vit_tiny_patch16_224 "
                         r"expects \(576, 192\)"),
    (_truncated_resummed, rf"{QKV}: 442368 bytes, expected 442376"),
], ids=["altered byte", "truncated", "swapped files", "missing file", "no SHA256SUMS",
        "unlisted file", "missing file, sums rewritten", "extra file", "wrong header, sums "
        "rewritten", "truncated, sums rewritten"])
def test_damaged_folder_names_the_file(tmp_path, monkeypatch, damage, message):
    root = copy_weights(tmp_path)
    monkeypatch.setenv("NEUDEP_MODELS_DIR", str(root))
    damage(root / vit.FOLDER_NAME)
    with pytest.raises(ModelError, match=message) as err:
        load_model("vit_ti16")
    assert str(root / vit.FOLDER_NAME) in str(err.value)
    assert "restore the folder" in str(err.value)


def test_intact_copy_loads_and_checksum_follows_the_sums(tmp_path, monkeypatch):
    """The checks accept an intact copy (so the failures above come from the damage)."""
    root = copy_weights(tmp_path)
    monkeypatch.setenv("NEUDEP_MODELS_DIR", str(root))
    assert weights_checksum("vit_ti16") == weights_checksum("vit_tiny_patch16_224")
    lm = load_model("vit_ti16")
    W, _ = lm.classifier_weights()
    raw = (root / vit.FOLDER_NAME / "head_weight.bin").read_bytes()
    np.testing.assert_array_equal(W, np.frombuffer(raw, "<f4", offset=8).reshape(1000, 192))


def test_header_is_checked_before_any_tensor_is_loaded(tmp_path, monkeypatch):
    """A wrong header in the last file refuses the folder before load_state_dict runs."""
    root = copy_weights(tmp_path)
    folder = root / vit.FOLDER_NAME
    last = list(vit.expected_tensors())[-1]
    p = folder / last
    data = bytearray(p.read_bytes())
    data[:4] = np.array([999], "<i4").tobytes()
    p.write_bytes(bytes(data))
    rewrite_sums(folder)
    monkeypatch.setenv("NEUDEP_MODELS_DIR", str(root))
    calls = []
    monkeypatch.setattr(torch.nn.Module, "load_state_dict",
                        lambda self, *a, **k: calls.append(1))
    with pytest.raises(ModelError, match=rf"{last}: header says shape \(999"):
        load_model("vit_ti16")
    assert calls == []


def test_missing_models_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("NEUDEP_MODELS_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(ModelError, match="nowhere/vit_tiny_patch16_224.*NEUDEP_MODELS_DIR"):
        weights_checksum("vit_ti16")


# --------------------------------------------------------------------------------------------
# the whole folders through the cache (slow): the acceptance numbers
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("folder,expected", [("imagenet-sample", 0.827), ("imagenet-val", 0.834)])
def test_top1_on_whole_folders(tmp_path, data_root, folder, expected):
    """All 1000 images through the cache's extraction path (ONNX Runtime, its probe against
    PyTorch passed): top-1 within 0.01 of the numpy forward of ../shared/models/README.md."""
    ls = cache.extract("vit_tiny_patch16_224", data_root / folder, cache_dir=tmp_path,
                       progress=False)
    assert len(ls) == 1000 and ls.features.shape == (1000, 1, 192)
    assert abs(ls.top1 - expected) <= 0.01, ls.top1
    assert ls.meta["engine"]["name"] in ("onnxruntime", "torch")
    assert "fallback" not in ls.meta["engine"], ls.meta["engine"]
