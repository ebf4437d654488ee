"""MobileNet v1 0.75 (d = 768 < 1000): real TF.js weights on real images, exact TF "same" padding,
every manifest tensor consumed, damaged folders named, rank of the logit layer, cache key."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import rewrite_sums  # noqa: I001 - the shared test helper (tests/conftest.py)
from PIL import Image

from neudep_utils import cache, locations, models
from neudep_utils.errors import ModelError
from neudep_utils.images import ViewDataset, scan_folder
from neudep_utils.models import canonical_name, load_model, weights_checksum
from neudep_utils.models import mobilenet as mn

SHARED = mn.default_models_dir() / mn.FOLDER_NAME


@pytest.fixture(scope="module")
def mobilenet():
    """The real MobileNet v1 0.75, loaded once."""
    return load_model("mobilenet_v1_075")


@pytest.fixture(scope="module")
def real_batch(data_root):
    """48 real validation images spread over the 1000 (one per ~21), preprocessed for MobileNet."""
    m = scan_folder(data_root / "imagenet-val")
    sub = m.subset(np.linspace(0, len(m) - 1, 48).astype(int))
    ds = ViewDataset(sub, mn.PREPROCESS)
    return torch.stack([ds[i][0] for i in range(len(sub))]), sub.labels


@pytest.fixture(scope="module")
def real_out(mobilenet, real_batch):
    x, _ = real_batch
    with torch.inference_mode():
        logits, feats = mobilenet.logits_and_features(x)
    return logits.numpy(), feats.numpy()






def edit_manifest(folder: Path, fn) -> None:
    spec = json.loads((folder / "model.json").read_text())
    fn(spec)
    (folder / "model.json").write_text(json.dumps(spec))


# --------------------------------------------------------------------------------------------
# real weights on real images
# --------------------------------------------------------------------------------------------


def test_real_weights_classify_real_images(mobilenet, real_batch, real_out):
    """48 real images: about 0.8 top-1 with the real weights, chance level with random ones."""
    x, labels = real_batch
    logits, feats = real_out
    assert logits.shape == (48, 1000) and feats.shape == (48, 768)
    acc = float((logits.argmax(1) == labels).mean())
    assert acc >= 0.6, f"MobileNet top-1 on 48 real images is {acc:.2f}; expected about 0.78"
    torch.manual_seed(0)
    rand = mn.MobileNetV1().eval()
    with torch.inference_mode():
        racc = float((rand(x).argmax(1).numpy() == labels).mean())
    assert racc <= 0.1, racc
    # the logits are the returned classifier applied to the returned features
    w = mobilenet.model.get_classifier()
    assert isinstance(w, torch.nn.Linear) and w.in_features == 768 and w.out_features == 1000
    np.testing.assert_allclose(feats @ w.weight.detach().numpy().T + w.bias.detach().numpy(),
                               logits, rtol=1e-4, atol=1e-4)


def test_metadata_and_aliases(mobilenet):
    assert canonical_name("mobilenet") == "mobilenet_v1_075"
    assert mobilenet.num_features == 768 and mobilenet.num_classes == 1000
    assert not mobilenet.model.training
    p = mobilenet.preprocess
    assert (p.input_size, p.resize_size, p.crop_pct, p.interpolation) == (224, 256, 0.875,
                                                                          "bilinear")
    # x / 127.5 - 1: 0 -> -1, 255 -> 1
    t = p.to_tensor(Image.fromarray(np.array([[[0, 255, 51]]], dtype=np.uint8)))
    np.testing.assert_allclose(t[:, 0, 0].numpy(), [-1, 1, 51 / 127.5 - 1], atol=1e-6)
    assert mobilenet.weights_sha256 == weights_checksum("mobilenet")
    assert mobilenet.weights_sha256 == hashlib.sha256((SHARED / "SHA256SUMS").read_bytes()).hexdigest()


def test_matches_timm_reference_implementation(mobilenet, real_batch, real_out):
    """timm's independent MobileNet v1 builder with TF "same" padding (its own Conv2dSame) and BN
    eps 1e-3, given the same tensors, gives the same logits on real images."""
    try:
        from timm.models.efficientnet import _gen_mobilenet_v1  # noqa: PLC0415 - timm: ~2 s
    except ImportError:  # pragma: no cover - timm moved its builder
        pytest.skip("timm.models.efficientnet._gen_mobilenet_v1 is not available in this timm")
    ref = _gen_mobilenet_v1("mobilenetv1_075", 0.75, pad_type="same", bn_eps=1e-3,
                            num_classes=1000).eval()
    ours = mobilenet.model.state_dict()
    assert [tuple(v.shape) for v in ref.state_dict().values()] == [tuple(v.shape)
                                                                   for v in ours.values()]
    ref.load_state_dict(dict(zip(ref.state_dict(), ours.values(), strict=True)))
    x, _ = real_batch
    with torch.inference_mode():
        r = ref(x[:16]).numpy()
    np.testing.assert_allclose(real_out[0][:16], r, rtol=0, atol=1e-4)


def test_symmetric_padding_would_be_wrong(mobilenet, real_batch, real_out):
    """PyTorch's symmetric padding=1 on the stride-2 convs shifts every feature map: the logits
    change, so the comparison above can tell the two apart."""
    sym = copy.deepcopy(mobilenet.model)
    for m in sym.modules():
        if isinstance(m, mn.SameConv2d) and m.tf_stride == 2:
            m.tf_stride = 1  # skip tf_same_pad ...
            m.padding = (1, 1)  # ... and pad 1 on every side instead (stride stays 2 in the conv)
    x, _ = real_batch
    with torch.inference_mode():
        s = sym(x[:16]).numpy()
    assert np.abs(s - real_out[0][:16]).max() > 0.5


@pytest.mark.parametrize("size,k,s,pads", [(224, 3, 2, (0, 1)), (225, 3, 2, (1, 1)),
                                           (7, 3, 2, (1, 1)), (8, 3, 2, (0, 1)),
                                           (14, 3, 1, (1, 1)), (14, 1, 1, (0, 0)),
                                           (224, 4, 2, (1, 1)), (5, 2, 1, (0, 1))])
def test_tf_same_pad(size, k, s, pads):
    x = torch.ones(1, 1, size, size + 1)
    y = mn.tf_same_pad(x, k, s)
    total_w = max((-(-(size + 1) // s) - 1) * s + k - (size + 1), 0)
    assert y.shape[-2] == size + sum(pads) and y.shape[-1] == size + 1 + total_w
    top, bottom = pads
    col = y[0, 0, :, total_w // 2]
    assert col[:top].sum() == 0 and (bottom == 0 or col[-bottom:].sum() == 0)
    assert col[top:len(col) - bottom].min() == 1
    # the same as timm's independent implementation
    from timm.layers.padding import pad_same  # noqa: PLC0415 - timm: ~2 s

    assert torch.equal(y, pad_same(x, [k, k], [s, s]))
    # output size is ceil(size / s), as in TensorFlow
    conv = mn.SameConv2d(1, 1, k, s)
    assert conv(x).shape[-2] == -(-size // s)


# --------------------------------------------------------------------------------------------
# the logit layer: d = 768 < n = 1000
# --------------------------------------------------------------------------------------------


def test_logit_layer_rank_and_exact_dependencies(mobilenet, real_out):
    """W (1000 x 768) has numerical rank 768 (full column rank, well conditioned); [W b] has rank
    769 < 1000 (b is not in W's column space). So the logits f = W h + b span at most 769
    dimensions, and every logit is an exact *linear* combination (no intercept) of the other 999
    on every input: each e_i has a non-zero projection c on the left null space of [W b], and
    c^T f = 0. Checked on real images to float32 precision."""
    head = mobilenet.model.get_classifier()
    W = head.weight.detach().double().numpy()
    b = head.bias.detach().double().numpy()
    assert W.shape == (1000, 768)
    s = np.linalg.svd(W, compute_uv=False)
    tol = max(W.shape) * np.finfo(np.float32).eps * s[0]
    assert int((s > tol).sum()) == 768 and s[-1] / s[0] > 1e-3
    Wb = np.c_[W, b]
    U, sb, _ = np.linalg.svd(Wb)
    assert int((sb > max(Wb.shape) * np.finfo(np.float32).eps * sb[0]).sum()) == 769
    N = U[:, 769:]  # orthonormal basis of the left null space of [W b] (1000 x 231)
    assert np.abs(N.T @ Wb).max() < 1e-10
    proj = np.linalg.norm(N, axis=1)  # |projection of e_i on it|: non-zero for every logit
    assert proj.min() > 0.1
    f = real_out[0].astype(np.float64)
    worst = 0.0
    for i in range(1000):
        c = N @ N[i]
        a = -c / c[i]
        a[i] = 0.0
        worst = max(worst, float(np.abs(f @ a - f[:, i]).max() / f[:, i].std()))
    assert worst < 1e-4, worst
    # a control: a full-width random logit layer has no such relation
    rng = np.random.default_rng(0)
    Wr = rng.standard_normal((1000, 1280))
    assert np.linalg.matrix_rank(Wr) == 1000


# --------------------------------------------------------------------------------------------
# the weights folder: every tensor consumed, damage named
# --------------------------------------------------------------------------------------------


def test_every_manifest_tensor_is_consumed(mobilenet):
    folder = SHARED
    spec = mn.read_model_json(folder)
    weights = mn.read_weights(folder, spec)
    n_manifest = sum(len(g["weights"]) for g in spec["weightsManifest"])
    wanted = mn.MobileNetV1().keras_tensors()
    assert len(weights) == n_manifest == len(wanted) == 137
    assert set(weights) == set(wanted)  # none left over, none missing
    state = mobilenet.model.state_dict()
    filled = {key for key, _ in wanted.values()}
    assert filled == {k for k in state if not k.endswith("num_batches_tracked")}
    for kname, (key, _) in wanted.items():  # each landed, converted, where it belongs
        np.testing.assert_array_equal(state[key].numpy(), mn.keras_to_torch(kname, weights[kname]))
    # conv_preds kernel [1, 1, 768, 1000] is the Linear weight transposed
    np.testing.assert_array_equal(state["classifier.weight"].numpy(),
                                  weights["conv_preds/kernel"][0, 0].T)
    # a depthwise kernel [3, 3, c, 1] -> [c, 1, 3, 3]
    assert state["features.conv_dw_13.conv.weight"].shape == (768, 1, 3, 3)
    np.testing.assert_array_equal(state["features.conv_dw_1.conv.weight"][5, 0].numpy(),
                                  weights["conv_dw_1/depthwise_kernel"][:, :, 5, 0])


def test_load_weights_rejects_leftovers_missing_and_wrong_shapes():
    weights = dict(mn.read_weights(SHARED))
    model = mn.MobileNetV1()
    with pytest.raises(ModelError, match="extra/kernel.*left over"):
        mn.load_weights(model, {**weights, "extra/kernel": np.zeros(3, np.float32)}, "src")
    short = dict(weights)
    del short["conv_pw_7_bn/moving_variance"]
    with pytest.raises(ModelError, match="lacks conv_pw_7_bn/moving_variance"):
        mn.load_weights(model, short, "src")
    bad = {**weights, "conv1/kernel": weights["conv1/kernel"].transpose(0, 1, 3, 2)}
    with pytest.raises(ModelError, match=r"conv1/kernel has shape \(3, 3, 24, 3\).*\(3, 3, 3, 24\)"):
        mn.load_weights(model, bad, "src")


def test_missing_models_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("NEUDEP_MODELS_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(ModelError, match="nowhere/mobilenet_v1_0.75_224.*NEUDEP_MODELS_DIR"):
        load_model("mobilenet")
    with pytest.raises(ModelError, match="NEUDEP_MODELS_DIR"):
        weights_checksum("mobilenet_v1_075")


def test_default_models_dir(monkeypatch):
    """The one resolution of neudep_utils.locations (its order: tests/test_origins.py)."""
    monkeypatch.delenv("NEUDEP_MODELS_DIR", raising=False)
    assert mn.default_models_dir() == locations.models_dir()
    beside = Path(mn.__file__).resolve().parents[3] / "shared" / "models"
    if beside.is_dir():  # a checkout with ../shared beside it uses it
        assert mn.default_models_dir() == beside


def _damage_cases():
    def rm(name):
        return lambda f: (f / name).unlink()

    def truncate(f):
        p = f / "group29-shard1of1"
        p.write_bytes(p.read_bytes()[:-8])
        rewrite_sums(f)

    def flip(f):
        p = f / "group37-shard1of1"
        b = bytearray(p.read_bytes())
        b[1000] ^= 0xFF
        p.write_bytes(bytes(b))

    def shape_bytes(f):  # a declared shape that the bytes cannot hold
        edit_manifest(f, lambda s: s["weightsManifest"][10]["weights"][0].update(shape=[767]))
        rewrite_sums(f)

    def shape_keras(f):  # same byte count, wrong layout for the layer
        edit_manifest(f, lambda s: s["weightsManifest"][0]["weights"][0].update(shape=[3, 3, 24, 3]))
        rewrite_sums(f)

    def extra(f):  # one tensor more than the network has
        def add(s):
            s["weightsManifest"][0]["weights"].append(
                {"name": "extra/bias", "shape": [2], "dtype": "float32"})
        edit_manifest(f, add)
        p = f / "group1-shard1of1"
        p.write_bytes(p.read_bytes() + b"\0" * 8)
        rewrite_sums(f)

    def topology(f):
        def stride(s):
            for lay in s["modelTopology"]["model_config"]["config"]["layers"]:
                if lay["name"] == "conv_dw_4":
                    lay["config"]["strides"] = [1, 1]
        edit_manifest(f, stride)
        rewrite_sums(f)

    def unlisted(f):
        p = f / "SHA256SUMS"
        p.write_text("".join(ln for ln in p.read_text().splitlines(keepends=True)
                             if "group5-" not in ln))

    return [
        ("model.json", rm("model.json"), r"model\.json is missing"),
        ("SHA256SUMS", rm("SHA256SUMS"), r"SHA256SUMS is missing"),
        ("shard missing", rm("group12-shard1of1"), r"group12-shard1of1 is missing"),
        ("shard truncated", truncate, r"group29-shard1of1: 3075992 bytes.*declares 3076000"),
        ("shard changed", flip, r"group37-shard1of1: sha256 .* does not match SHA256SUMS"),
        ("manifest shape vs bytes", shape_bytes, r"group11-shard1of1: 12288 bytes.*declares"),
        ("manifest shape vs layer", shape_keras, r"conv1/kernel has shape \(3, 3, 24, 3\)"),
        ("extra tensor", extra, r"extra/bias.*left over"),
        ("topology", topology, r"conv_dw_4.*strides = \[1, 1\], expected \[2, 2\]"),
        ("unlisted shard", unlisted, r"SHA256SUMS does not list group5-shard1of1"),
    ]


@pytest.mark.parametrize("case,damage,message", _damage_cases(), ids=[c[0] for c in _damage_cases()])
def test_damaged_folder_names_the_file(tmp_path, models_copy, monkeypatch, case, damage, message):
    root = models_copy(mn.FOLDER_NAME)
    monkeypatch.setenv("NEUDEP_MODELS_DIR", str(root))
    load_model("mobilenet")  # the intact copy loads
    damage(root / mn.FOLDER_NAME)
    with pytest.raises(ModelError, match=message) as err:
        load_model("mobilenet")
    assert str(root / mn.FOLDER_NAME) in str(err.value)  # names the file
    assert "restore the folder" in str(err.value)  # and the fix


# --------------------------------------------------------------------------------------------
# cache key
# --------------------------------------------------------------------------------------------


def test_changed_weight_file_changes_the_cache_key(tmp_path, models_copy, monkeypatch, tiny_folder):
    """A weight file changed (and SHA256SUMS updated) gives a new checksum, a new cache entry and
    new logits; the shared weights give back the old entry."""
    cdir = tmp_path / "cache"
    monkeypatch.setenv("NEUDEP_MODELS_DIR", str(mn.default_models_dir()))
    models.load_model_cached.cache_clear()
    a = cache.extract("mobilenet", tiny_folder, cache_dir=cdir, progress=False, num_workers=0)
    root = models_copy(mn.FOLDER_NAME)
    monkeypatch.setenv("NEUDEP_MODELS_DIR", str(root))
    assert weights_checksum("mobilenet") == a.key.weights_sha256  # same bytes, same key
    folder = root / mn.FOLDER_NAME
    p = folder / "group29-shard1of1"  # conv_preds: kernel then bias; add 1 to bias[0]
    raw = bytearray(p.read_bytes())
    off = 768 * 1000 * 4
    raw[off:off + 4] = (np.frombuffer(raw[off:off + 4], "<f4") + 1).astype("<f4").tobytes()
    p.write_bytes(bytes(raw))
    with pytest.raises(ModelError, match="does not match SHA256SUMS"):
        weights_checksum("mobilenet")
    rewrite_sums(folder)
    assert weights_checksum("mobilenet") != a.key.weights_sha256
    models.load_model_cached.cache_clear()
    try:
        b = cache.extract("mobilenet", tiny_folder, cache_dir=cdir, progress=False, num_workers=0)
    finally:
        models.load_model_cached.cache_clear()
    assert b.key.weights_sha256 == weights_checksum("mobilenet")
    assert b.key.digest != a.key.digest and b.path != a.path
    np.testing.assert_allclose(b.logits[:, 0, 0] - a.logits[:, 0, 0], 1, atol=1e-4)
    np.testing.assert_array_equal(b.logits[:, 0, 1:], a.logits[:, 0, 1:])


# --------------------------------------------------------------------------------------------
# all 1000 images (slow)
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_top1_on_all_of_imagenet_val(tmp_path, data_root):
    """All 1000 shared validation images through the cache's extraction path: top-1 about 0.78
    (0.778 measured; full ImageNet val gives about 0.68, these images are easier)."""

    ls = cache.extract("mobilenet_v1_075", data_root / "imagenet-val", cache_dir=tmp_path,
                       progress=False)
    assert len(ls) == 1000 and ls.features.shape == (1000, 1, 768)
    assert 0.75 <= ls.top1 <= 0.81, ls.top1
