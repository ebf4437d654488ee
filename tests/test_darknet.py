"""Darknet-tiny (d = 128) ported from its TensorFlow.js weights: the port against an independent
NumPy forward pass in Keras layout, the class permutation, real images, damage named."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import rewrite_sums  # noqa: I001 - the shared test helper (tests/conftest.py)
from PIL import Image

from neudep_utils import cache
from neudep_utils.errors import ModelError
from neudep_utils.images import ViewDataset, scan_folder
from neudep_utils.images.classes import imagenet_classes
from neudep_utils.models import Preprocess, get_spec, load_model, tfjs, weights_checksum
from neudep_utils.models import darknet as dk

SHARED = dk.default_models_dir() / dk.FOLDER_NAME


@pytest.fixture(scope="module")
def darknet():
    return load_model("darknet_tiny")






def _numpy_forward(weights: dict[str, np.ndarray], x_nhwc: np.ndarray) -> np.ndarray:
    """Darknet-tiny straight from the Keras tensors (NHWC, kernels [kh, kw, in, out]), with
    NumPy only: logits in Darknet's own (devkit) class order, shape (B, 1000)."""
    h = x_nhwc.astype(np.float64)
    ci = 0
    for item in dk.LAYERS:
        if item == "M":
            b, hh, ww, c = h.shape
            h = h[:, :hh // 2 * 2, :ww // 2 * 2].reshape(b, hh // 2, 2, ww // 2, 2, c).max((2, 4))
            continue
        ci += 1
        k = weights[f"conv2d_{ci}/kernel"].astype(np.float64)
        p = k.shape[0] // 2
        hp = np.pad(h, ((0, 0), (p, p), (p, p), (0, 0)))
        out = np.zeros(h.shape[:3] + (k.shape[3],))
        for dy in range(k.shape[0]):
            for dx in range(k.shape[1]):
                out += hp[:, dy:dy + h.shape[1], dx:dx + h.shape[2]] @ k[dy, dx]
        bn = {n: weights[f"batch_normalization_{ci}/{n}"].astype(np.float64)
              for n in ("gamma", "beta", "moving_mean", "moving_variance")}
        out = (out - bn["moving_mean"]) / np.sqrt(bn["moving_variance"] + 1e-3) * bn["gamma"] \
            + bn["beta"]
        h = np.where(out > 0, out, 0.1 * out)
    k = weights["conv2d_16/kernel"].astype(np.float64)[0, 0]
    return (h @ k + weights["conv2d_16/bias"]).mean(axis=(1, 2))  # 1x1 conv, then the average


def test_port_matches_an_independent_numpy_forward(darknet):
    spec = tfjs.read_model_json(SHARED, "x")
    weights = tfjs.read_weights(SHARED, spec, "x")
    x = np.random.default_rng(0).random((2, 48, 48, 3)).astype(np.float32)
    ref = _numpy_forward(weights, x)  # Darknet's class order
    with torch.inference_mode():
        ours, feats = darknet.logits_and_features(torch.from_numpy(x.transpose(0, 3, 1, 2)))
    perm = dk.class_permutation(dk.read_class_order(SHARED))
    scale = np.abs(ref).max()
    assert np.abs(ours.numpy() - ref[:, perm]).max() / scale < 1e-5
    assert feats.shape == (2, 128)
    # without the permutation the outputs are another order: the permutation is not the identity
    assert (perm != np.arange(1000)).sum() > 900
    assert np.abs(ours.numpy() - ref).max() / scale > 0.1


def test_class_permutation_maps_devkit_order_to_sorted_wnids():
    order = dk.read_class_order(SHARED)
    perm = dk.class_permutation(order)
    wnids = imagenet_classes().wnids
    assert list(wnids) == sorted(wnids)
    assert [order[j] for j in perm] == list(wnids)
    assert sorted(perm) == list(range(1000))


def test_real_images_and_interface(darknet, data_root):
    m = scan_folder(data_root / "imagenet-sample")
    sub = m.subset(np.linspace(0, len(m) - 1, 40).astype(int))
    ds = ViewDataset(sub, darknet.preprocess)
    x = torch.stack([ds[i][0] for i in range(len(sub))])
    assert x.shape == (40, 3, 224, 224) and 0 <= float(x.min()) and float(x.max()) <= 1
    with torch.inference_mode():
        logits, feats = darknet.logits_and_features(x)
        direct = darknet.model(x)
    np.testing.assert_allclose(direct.numpy(), logits.numpy(), rtol=1e-5, atol=1e-4)
    head = darknet.model.get_classifier()
    np.testing.assert_allclose(feats.numpy() @ head.weight.detach().numpy().T
                               + head.bias.detach().numpy(), logits.numpy(), rtol=1e-4, atol=1e-3)
    top1 = float((logits.argmax(1).numpy() == sub.labels).mean())
    assert top1 >= 0.4, top1  # about 0.59 expected; a wrong class order gives ~0.001
    assert darknet.num_features == 128 == get_spec("darknet_tiny").width
    assert darknet.family == "darknet" and darknet.kind == "torch"
    assert darknet.weights_sha256 == weights_checksum("darknet_tiny") == \
        hashlib.sha256((SHARED / "SHA256SUMS").read_bytes()).hexdigest()
    W, b = darknet.classifier_weights()
    np.testing.assert_array_equal(W, head.weight.detach().double().numpy())
    np.testing.assert_array_equal(b, head.bias.detach().double().numpy())
    # rank of the logit layer: d = 128 < 1000, every logit a combination of 128 directions
    assert W.shape == (1000, 128) and np.linalg.matrix_rank(W) == 128


def test_full_resize_preprocessing_keeps_the_whole_image():
    img = np.zeros((100, 300, 3), np.uint8)
    img[:, :150, 0] = 255  # left half red, right half blue
    img[:, 150:, 2] = 255
    p = dk.PREPROCESS
    out = np.asarray(p.eval_geometric(Image.fromarray(img)))
    assert out.shape == (224, 224, 3)
    assert out[:, :100, 0].min() == 255 and out[:, -100:, 2].min() == 255  # nothing cropped
    assert p.describe()["resize_mode"] == "full"
    # the default mode leaves the other models' keys as they were
    other = Preprocess(224, 0.875, "bilinear", (0.5,) * 3, (0.5,) * 3)
    assert "resize_mode" not in other.describe()
    with pytest.raises(ValueError, match="crop_pct must be 1.0"):
        Preprocess(224, 0.875, "bilinear", (0,) * 3, (1,) * 3, resize_mode="full")
    with pytest.raises(ValueError, match="resize_mode must be one of"):
        Preprocess(224, 1.0, "bilinear", (0,) * 3, (1,) * 3, resize_mode="letterbox")


def _dup_class(f: Path) -> None:
    p = f / "class_order.txt"
    lines = p.read_text().splitlines()
    lines[5] = lines[4]
    p.write_text("\n".join(lines) + "\n")
    rewrite_sums(f)


def _leaky(f: Path) -> None:
    p = f / "model.json"
    spec = json.loads(p.read_text())
    for lay in spec["modelTopology"]["model_config"]["config"]["layers"]:
        if lay["name"] == "leaky_re_lu_7":
            lay["config"]["alpha"] = 0.2
    p.write_text(json.dumps(spec))
    rewrite_sums(f)


def _truncate(f: Path) -> None:
    p = f / "group23-shard1of1"
    p.write_bytes(p.read_bytes()[:-8])


def _unlist(f: Path) -> None:
    p = f / "SHA256SUMS"
    p.write_text("".join(ln for ln in p.read_text().splitlines(keepends=True)
                         if "class_order" not in ln))


@pytest.mark.parametrize("damage,message", [
    (_dup_class, r"class_order\.txt: 1000 lines, 999 distinct"),
    (_leaky, r"leaky_re_lu_7.*alpha = 0\.2, expected 0\.1"),
    (_truncate, r"group23-shard1of1: sha256 .* does not match"),
    (_unlist, r"SHA256SUMS does not list class_order\.txt"),
    (lambda f: (f / "class_order.txt").unlink(), r"class_order\.txt is missing"),
], ids=["duplicate class", "topology", "truncated shard", "unlisted class order",
        "class order missing"])
def test_damaged_folder_names_the_file(tmp_path, models_copy, monkeypatch, damage, message):
    root = models_copy(dk.FOLDER_NAME)
    monkeypatch.setenv("NEUDEP_MODELS_DIR", str(root))
    damage(root / dk.FOLDER_NAME)
    with pytest.raises(ModelError, match=message) as err:
        load_model("darknet_tiny")
    assert str(root / dk.FOLDER_NAME) in str(err.value)
    assert "restore the folder" in str(err.value)


def test_truncated_shard_with_rewritten_sums_is_caught_by_the_manifest(tmp_path, models_copy, monkeypatch):
    root = models_copy(dk.FOLDER_NAME)
    monkeypatch.setenv("NEUDEP_MODELS_DIR", str(root))
    _truncate(root / dk.FOLDER_NAME)
    rewrite_sums(root / dk.FOLDER_NAME)
    with pytest.raises(ModelError, match=r"group23-shard1of1: 515992 bytes.*declares 516000"):
        load_model("darknet")


def test_missing_models_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("NEUDEP_MODELS_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(ModelError, match="nowhere/darknet_tiny.*NEUDEP_MODELS_DIR"):
        weights_checksum("darknet_tiny")


@pytest.mark.slow
def test_top1_on_all_of_imagenet_sample(tmp_path, data_root):
    """All 1000 images of imagenet-sample through the cache's extraction path: top-1 about 0.59
    (the folder's README: 0.593 for a plain port; published Darknet-tiny on val: 58.7%)."""
    ls = cache.extract("darknet_tiny", data_root / "imagenet-sample", cache_dir=tmp_path,
                       progress=False)
    assert len(ls) == 1000 and ls.features.shape == (1000, 1, 128)
    assert 0.56 <= ls.top1 <= 0.62, ls.top1
