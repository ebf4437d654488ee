"""The five int8 TFLite MobileNets in LiteRT: the graph's tensors (softmax input, logit layer),
dequantized logits on their grid, the background class dropped and the class order checked,
the engine's cache key (the file's sha256, LiteRT's label), damage named."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import rewrite_sums  # noqa: I001 - the shared test helper (tests/conftest.py)

from neudep_utils import cache, models
from neudep_utils.errors import EngineError, ModelError
from neudep_utils.images import ViewDataset, scan_folder
from neudep_utils.models import engines, get_spec, load_model, registered, weights_checksum
from neudep_utils.models import tflite as tfl

SHARED = tfl.default_models_dir() / tfl.FOLDER_NAME
NAMES = tuple(tfl.MODELS)
#: lower bounds of top-1 on 40 imagenet-sample images (a wrong class order gives ~0.001)
MIN_TOP1 = {"mobilenet_v1_025_int8": 0.25, "mobilenet_v1_050_int8": 0.45,
            "mobilenet_v1_075_int8": 0.55, "mobilenet_v2_int8_qat": 0.65,
            "mobilenet_v2_int8_ptq": 0.65}


@pytest.fixture(scope="module")
def loaded():
    return {n: load_model(n) for n in NAMES}


@pytest.fixture(scope="module")
def sample(data_root):
    m = scan_folder(data_root / "imagenet-sample")
    return m.subset(np.linspace(0, len(m) - 1, 40).astype(int))


def _batch(lm, manifest):
    ds = ViewDataset(manifest, lm.preprocess)
    return torch.stack([ds[i][0] for i in range(len(manifest))])


def test_registered_names_and_provenance(loaded):
    assert set(NAMES) <= set(registered())
    assert all("int8" in n for n in NAMES)
    widths = {n: get_spec(n).width for n in NAMES}
    assert widths == {"mobilenet_v1_025_int8": 256, "mobilenet_v1_050_int8": 512,
                      "mobilenet_v1_075_int8": 768, "mobilenet_v2_int8_qat": 1280,
                      "mobilenet_v2_int8_ptq": 1280}
    for n, lm in loaded.items():
        assert lm.kind == "tflite" and lm.model is None and lm.num_classes == 1000
        assert lm.num_features == widths[n]
        assert lm.weights_sha256 == hashlib.sha256(lm.file.read_bytes()).hexdigest()
        assert lm.weights_sha256 == weights_checksum(n)
    assert len({lm.weights_sha256 for lm in loaded.values()}) == 5


@pytest.mark.parametrize("name", NAMES)
def test_graph_softmax_input_and_logit_layer(name):
    m = tfl.MODELS[name]
    g = engines.litert_graph((SHARED / m.file).read_bytes(), m.file)
    assert g.num_outputs == 1001 and g.num_features == m.width
    assert g.logit_layer == "CONV_2D" and g.ops[-1] in ("SOFTMAX", "QUANTIZE")
    assert g.input_shape == (1, m.input_size, m.input_size, 3) and g.input_dtype == "uint8"
    assert 0.01 < g.logits_quant[0] < 1  # the step of the logits
    assert g.logits_quant[0] == tfl.logit_scale(name)


@pytest.mark.parametrize("name", NAMES)
def test_real_images(loaded, sample, name):
    lm = loaded[name]
    runner = engines.make_runner(lm, None, "cpu", Path("/nonexistent"))
    assert runner.label == engines.litert_label() == engines.default_key_label(loaded=lm)
    x = _batch(lm, sample)
    logits, feats = runner(x)
    assert logits.shape == (40, 1000) and feats.shape == (40, lm.num_features)
    assert logits.dtype == feats.dtype == np.float32
    g = runner.graph
    scale, zp = g.logits_quant
    q = logits / scale + zp  # dequantized logits sit on the grid of their tensor
    assert np.abs(q - np.round(q)).max() < 1e-3
    assert 30 < np.mean([len(np.unique(r)) for r in logits]) < 256
    fs, fz = g.features_quant
    fq = feats / fs + fz
    assert np.abs(fq - np.round(fq)).max() < 1e-3
    assert feats.min() >= 0 and feats.max() <= 6.0 + fs  # pooled ReLU6 activations
    top1 = float((logits.argmax(1) == sample.labels).mean())
    assert top1 >= MIN_TOP1[name], top1
    # the logits are the softmax's input: the graph's own softmax output, background included,
    # is the softmax of them (to its 1/256 output step)
    it = runner.interpreter
    for i in range(3):
        runner(x[i:i + 1])
        full = (it.get_tensor(g.logits_index).reshape(-1).astype(np.float64) - zp) * scale
        np.testing.assert_array_equal(full[1:].astype(np.float32), logits[i])
        out = it.get_output_details()[0]
        os_, oz = out["quantization"]
        prob = (it.get_tensor(out["index"]).reshape(-1).astype(np.float64) - oz) * os_
        soft = np.exp(full - full.max())
        soft /= soft.sum()
        assert np.abs(prob - soft).max() <= 1.5 / 256


def test_results_do_not_depend_on_threads(loaded, sample, monkeypatch):
    lm = loaded["mobilenet_v2_int8_ptq"]
    x = _batch(lm, sample.subset(range(6)))
    outs = []
    for t in ("1", "2"):
        monkeypatch.setenv("NEUDEP_LITERT_THREADS", t)
        r = engines.make_runner(lm, None, "cpu", Path("/nonexistent"))
        assert r.meta["threads"] == int(t)
        outs.append(r(x))
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])
    monkeypatch.setenv("NEUDEP_LITERT_THREADS", "0")
    with pytest.raises(ValueError, match="NEUDEP_LITERT_THREADS"):
        engines.make_runner(lm, None, "cpu", Path("/nonexistent"))


def test_engine_requests(loaded, lite0):
    lm = loaded["mobilenet_v1_025_int8"]
    for bad in ("torch", "onnxruntime"):
        with pytest.raises(EngineError, match="TensorFlow Lite model, run by LiteRT only"):
            engines.make_runner(lm, bad, "cpu", Path("/nonexistent"))
        with pytest.raises(EngineError, match="LiteRT only"):
            engines.default_key_label(bad, "cpu", loaded=lm)
    assert engines.make_runner(lm, "litert", "cpu", Path("/x")).engine == "litert"
    with pytest.raises(EngineError, match="TensorFlow Lite models only"):
        engines.make_runner(lite0, "litert", "cpu", Path("/x"))






def test_cache_key_has_the_files_sha256(tmp_path, models_copy, monkeypatch, tiny_folder):
    """Extraction through the cache: the key carries the .tflite's sha256 and LiteRT's label;
    the same bytes give the same entry, other bytes (same network) a new one."""
    name = "mobilenet_v1_025_int8"
    cdir = tmp_path / "cache"
    models.load_model_cached.cache_clear()
    a = cache.extract(name, tiny_folder, cache_dir=cdir, progress=False, num_workers=0)
    f = SHARED / tfl.MODELS[name].file
    assert a.key.weights_sha256 == hashlib.sha256(f.read_bytes()).hexdigest()
    assert a.key.engine == engines.litert_label() and a.meta["engine"]["name"] == "litert"
    assert a.logits.shape == (10, 1, 1000) and a.features.shape == (10, 1, 256)
    assert cache.extract(name, tiny_folder, cache_dir=cdir, progress=False).path == a.path
    root = models_copy(tfl.FOLDER_NAME)
    folder = root / tfl.FOLDER_NAME
    p = folder / tfl.MODELS[name].file
    p.write_bytes(p.read_bytes() + b"\0" * 16)  # trailing bytes: the same flatbuffer
    monkeypatch.setenv("NEUDEP_MODELS_DIR", str(root))
    with pytest.raises(ModelError, match="does not match SHA256SUMS"):
        weights_checksum(name)
    rewrite_sums(folder)
    models.load_model_cached.cache_clear()
    try:
        b = cache.extract(name, tiny_folder, cache_dir=cdir, progress=False, num_workers=0)
    finally:
        models.load_model_cached.cache_clear()
    assert b.key.weights_sha256 != a.key.weights_sha256 and b.path != a.path
    np.testing.assert_array_equal(a.logits, b.logits)


def _swap_labels(folder: Path) -> None:
    p = folder / tfl.LABELS_FILE
    lines = p.read_text().splitlines()
    lines[1], lines[2] = lines[2], lines[1]
    p.write_text("\n".join(lines) + "\n")
    rewrite_sums(folder)


def _flip(folder: Path) -> None:
    p = folder / tfl.MODELS["mobilenet_v1_050_int8"].file
    raw = bytearray(p.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    p.write_bytes(bytes(raw))


@pytest.mark.parametrize("damage,message", [
    (_swap_labels, r"imagenet_labels\.txt: 2 of the 1000 labels.*line 2: 'goldfish"),
    (_flip, r"mobilenet_v1_0\.5_160_quant\.tflite: sha256 .* does not match SHA256SUMS"),
    (lambda f: (f / tfl.MODELS["mobilenet_v1_050_int8"].file).unlink(),
     r"mobilenet_v1_0\.5_160_quant\.tflite is missing"),
    (lambda f: (f / "SHA256SUMS").unlink(), r"SHA256SUMS is missing"),
], ids=["labels out of order", "changed file", "missing file", "no SHA256SUMS"])
def test_damaged_folder_names_the_file(tmp_path, models_copy, monkeypatch, damage, message):
    root = models_copy(tfl.FOLDER_NAME)
    monkeypatch.setenv("NEUDEP_MODELS_DIR", str(root))
    damage(root / tfl.FOLDER_NAME)
    with pytest.raises(ModelError, match=message) as err:
        load_model("mobilenet_v1_050_int8")
    assert str(root / tfl.FOLDER_NAME) in str(err.value) and "restore the folder" in str(err.value)


def test_missing_models_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("NEUDEP_MODELS_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(ModelError, match="nowhere/coral_tflite_int8.*NEUDEP_MODELS_DIR"):
        load_model("mobilenet_v2_int8_qat")


#: top-1 (centre view) on the full folders, as measured through the cache (`python -m
#: neudep_utils extract --views 1`, LiteRT 2.3.0 XNNPACK): val 0.550 0.726 0.766 0.806 0.784,
#: sample 0.449 0.683 0.806 0.894 0.896 (the folder README's 0.426 0.657 0.755 0.852 0.870 on
#: imagenet-sample used TF-Slim's crop-then-squash resize; the aspect-keeping crop scores higher)
_MEASURED = {"imagenet-val": (0.550, 0.726, 0.766, 0.806, 0.784),
             "imagenet-sample": (0.449, 0.683, 0.806, 0.894, 0.896)}
FULL_TOP1 = {(n, f): (v - 0.02, v + 0.02) for f, vals in _MEASURED.items()
             for n, v in zip(NAMES, vals, strict=True)}


@pytest.mark.slow
@pytest.mark.parametrize("folder", ["imagenet-val", "imagenet-sample"])
@pytest.mark.parametrize("name", NAMES)
def test_top1_on_full_folders(tmp_path, data_root, name, folder):
    ls = cache.extract(name, data_root / folder, cache_dir=tmp_path, progress=False)
    assert len(ls) == 1000 and ls.features.shape == (1000, 1, tfl.MODELS[name].width)
    lo, hi = FULL_TOP1[(name, folder)]
    assert lo <= ls.top1 <= hi, ls.top1


@pytest.mark.parametrize("name", NAMES)
def test_features_and_dequantized_head_rebuild_the_logits(loaded, sample, name):
    """The features really are the logit layer's input: the dequantized int8 head applied to them
    gives the logits to within a couple of their quantization steps."""
    lm = loaded[name]
    runner = engines.make_runner(lm, None, "cpu", Path("/nonexistent"))
    logits, feats = runner(_batch(lm, sample.subset(range(12))))
    W, b = lm.classifier_weights()
    assert W.shape == (1000, lm.num_features) and b.shape == (1000,)
    rebuilt = feats.astype(np.float64) @ W.T + b
    step = runner.graph.logits_quant[0]
    inside = np.abs(logits) < 0.9 * np.abs(logits).max()  # not clipped at the 8-bit range
    assert np.abs(rebuilt - logits)[inside].max() <= 2.0 * step
    assert np.corrcoef(rebuilt.ravel(), logits.ravel())[0, 1] > 0.999
