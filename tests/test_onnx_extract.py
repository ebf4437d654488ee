"""``extract --onnx FILE``: any ImageNet-style classifier as an ONNX file through the cache, the
engine and the hostile-input handling; ``--out X.npy`` logits in image order with a sidecar.

Small graphs are written with ``onnx.helper`` (pooling + a linear head, so the expected logits
can be computed independently in NumPy); the acceptance test exports a randomly initialised
torchvision ResNet-18 with ``torch.onnx.export`` (the documented recipe) and runs 300 images.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import yaml
from conftest import copy_images
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from neudep_utils.cache import extract
from neudep_utils.cli import main
from neudep_utils.errors import EngineError, ModelError
from neudep_utils.images import scan_folder
from neudep_utils.models.onnxfile import OnnxFileRunner, load_onnx, onnx_preprocess


def tiny_onnx(path: Path, *, layout: str = "NCHW", batch: int | None = None,
              size: int | None = None, n_classes: int = 10, seed: int = 0,
              half: bool = False, two_inputs: bool = False, out_rank: int = 2,
              nan: bool = False) -> tuple[Path, np.ndarray, np.ndarray]:
    """A classifier: [avg-pool, max-pool] of the 3 channels -> linear head (W, b)."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((6, n_classes)).astype(np.float32)
    b = (rng.standard_normal(n_classes) if not nan else np.full(n_classes, np.nan)).astype(
        np.float32)
    N, S = batch if batch else "N", size if size else "S"
    shape = [N, 3, S, S] if layout == "NCHW" else [N, S, S, 3]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT16 if half else TensorProto.FLOAT,
                                      shape)
    nodes, src = [], "x"
    if half:
        nodes.append(helper.make_node("Cast", [src], ["xf"], to=TensorProto.FLOAT))
        src = "xf"
    if layout == "NHWC":
        nodes.append(helper.make_node("Transpose", [src], ["xt"], perm=[0, 3, 1, 2]))
        src = "xt"
    nodes += [helper.make_node("GlobalAveragePool", [src], ["a"]),
              helper.make_node("GlobalMaxPool", [src], ["m"]),
              helper.make_node("Concat", ["a", "m"], ["c"], axis=1),
              helper.make_node("Flatten", ["c"], ["f"], axis=1),
              helper.make_node("MatMul", ["f", "W"], ["h"]),
              helper.make_node("Add", ["h", "b"], ["logits2d"])]
    if out_rank == 3:
        nodes.append(helper.make_node("Unsqueeze", ["logits2d", "ax"], ["logits"]))
    else:
        nodes.append(helper.make_node("Identity", ["logits2d"], ["logits"]))
    inits = [numpy_helper.from_array(W, "W"), numpy_helper.from_array(b, "b"),
             numpy_helper.from_array(np.array([1], np.int64), "ax")]
    inputs = [x]
    if two_inputs:
        inputs.append(helper.make_tensor_value_info("scale", TensorProto.FLOAT, [1]))
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)
    g = helper.make_graph(nodes, "tiny", inputs, [out], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, str(path))
    return path, W, b


def expected(folder: Path, pre, W: np.ndarray, b: np.ndarray) -> tuple[list[str], np.ndarray]:
    """The tiny model's logits computed in NumPy from the images, in manifest order."""
    man = scan_folder(folder)
    rows = []
    for rel in man.relpaths:
        with Image.open(folder / rel) as im:
            x = pre.to_tensor(pre.eval_geometric(im.convert("RGB"))).numpy()
        f = np.concatenate([x.mean(axis=(1, 2)), x.max(axis=(1, 2))])
        rows.append(f @ W + b)
    return list(man.relpaths), np.asarray(rows)


@pytest.fixture
def folder(tmp_path, data_root):
    return copy_images(data_root / "imagenet-val", tmp_path / "imgs", n_classes=4, per_class=2)


def run(argv, capsys) -> tuple[int, str, str]:
    rc = main(argv)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_out_logits_in_image_order_with_sidecar(folder, tmp_path, capsys):
    f, W, b = tiny_onnx(tmp_path / "tiny.onnx")
    out = tmp_path / "X.npy"
    rc, so, err = run(["extract", "--onnx", str(f), "--data", str(folder), "--out", str(out),
                       "--cache-dir", str(tmp_path / "c"), "--quiet", "--workers", "0",
                       "--batch-size", "3"], capsys)
    assert rc == 0, err
    X = np.load(out)
    meta = json.loads(out.with_suffix(".json").read_text())
    paths, want = expected(folder, onnx_preprocess("imagenet"), W, b)
    assert meta["images"] == paths and X.shape == (8, 10)
    np.testing.assert_allclose(X, want, rtol=1e-5, atol=1e-5)
    man = scan_folder(folder)
    assert meta["labels"] == man.labels.tolist()
    assert meta["weights_sha256"] == hashlib.sha256(f.read_bytes()).hexdigest()
    assert meta["onnx_file"] == str(f.resolve())
    assert meta["engine"].endswith("onnx file")
    assert meta["preprocess"]["mean"] == [0.485, 0.456, 0.406]


def test_cache_key_covers_file_and_preprocessing(folder, tmp_path, monkeypatch):
    c = tmp_path / "c"
    f0, W0, b0 = tiny_onnx(tmp_path / "a.onnx", seed=0)
    f1, *_ = tiny_onnx(tmp_path / "b.onnx", seed=1)
    kw = dict(cache_dir=c, progress=False, num_workers=0)
    e0 = extract(load_onnx(f0), folder, **kw)
    assert e0.key.weights_sha256 == hashlib.sha256(f0.read_bytes()).hexdigest()
    # same file and preprocessing: served from the cache, the model is not run again
    monkeypatch.setattr(OnnxFileRunner, "__call__", lambda *a: pytest.fail("model was run"))
    again = extract(load_onnx(f0), folder, **kw)
    assert again.path == e0.path
    np.testing.assert_array_equal(again.logits, e0.logits)
    monkeypatch.undo()
    other_file = extract(load_onnx(f1), folder, **kw)
    other_mean = extract(load_onnx(f0, onnx_preprocess(mean=[0.5], std=[0.25])), folder, **kw)
    other_crop = extract(load_onnx(f0, onnx_preprocess(crop_pct=1.0)), folder, **kw)
    scaled = extract(load_onnx(f0, onnx_preprocess(scale=255.0)), folder, **kw)
    dirs = {e.path for e in (e0, other_file, other_mean, other_crop, scaled)}
    assert len(dirs) == 5
    assert not np.allclose(other_mean.logits, e0.logits)
    # --scale 255: raw 0..255 pixels into the head
    _, want = expected(folder, onnx_preprocess(scale=255.0), W0, b0)
    np.testing.assert_allclose(scaled.logits[:, 0], want, rtol=1e-5, atol=1e-3)
    assert scaled.key.preprocess["std"] == [1 / 255] * 3
    assert e0.features is None and e0.key.features is False


@pytest.mark.parametrize("variant", [dict(layout="NHWC"), dict(batch=1), dict(half=True),
                                     dict(size=224), dict(out_rank=3, n_classes=7)])
def test_model_variants(folder, tmp_path, variant):
    if variant.get("out_rank") == 3:  # (N, 1, C) is not a logit matrix: refused
        f, *_ = tiny_onnx(tmp_path / "v.onnx", **variant)
        with pytest.raises(ModelError, match=r"\(batch, n_classes\)"):
            load_onnx(f)
        return
    f, W, b = tiny_onnx(tmp_path / "v.onnx", **variant)
    e = extract(load_onnx(f), folder, cache_dir=tmp_path / "c", progress=False, num_workers=0,
                batch_size=3)
    _, want = expected(folder, onnx_preprocess(), W, b)
    tol = 2e-2 if variant.get("half") else 1e-5
    np.testing.assert_allclose(e.logits[:, 0], want, rtol=tol, atol=tol)


def test_fixed_input_size_is_adopted_or_refused(folder, tmp_path, capsys):
    f, W, b = tiny_onnx(tmp_path / "s.onnx", size=160)
    assert load_onnx(f).preprocess.input_size == 160  # no size given: the model's
    rc, _, err = run(["extract", "--onnx", str(f), "--data", str(folder), "--input-size",
                      "224", "--cache-dir", str(tmp_path / "c")], capsys)
    assert rc == 2 and "--input-size 160" in err and len(err.strip().splitlines()) == 1
    # presets: inception on a model of any size
    g, *_ = tiny_onnx(tmp_path / "d.onnx")
    p = load_onnx(g, onnx_preprocess("inception")).preprocess
    assert (p.input_size, p.interpolation, p.mean, p.std) == (299, "bicubic", (0.5,) * 3,
                                                              (0.5,) * 3)


def test_unreadable_image_is_skipped_and_listed(folder, tmp_path, capsys):
    f, W, b = tiny_onnx(tmp_path / "t.onnx")
    victim = sorted(sorted(p for p in folder.iterdir() if p.is_dir())[1].iterdir())[0]
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 3])
    rel = f"{victim.parent.name}/{victim.name}"
    out = tmp_path / "X.npy"
    rc, so, err = run(["extract", "--onnx", str(f), "--data", str(folder), "--out", str(out),
                       "--cache-dir", str(tmp_path / "c"), "--quiet", "--workers", "0"], capsys)
    assert rc == 0, err
    meta = json.loads(out.with_suffix(".json").read_text())
    assert rel not in meta["images"] and [s[0] for s in meta["skipped"]] == [rel]
    assert np.load(out).shape == (7, 10) and len(meta["labels"]) == 7
    assert "skipped" in so


def test_hostile_model_files_one_line_rc2(folder, tmp_path, capsys):
    bad = tmp_path / "junk.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 50)
    trunc, *_ = tiny_onnx(tmp_path / "trunc.onnx")
    trunc.write_bytes(trunc.read_bytes()[:60])
    two, *_ = tiny_onnx(tmp_path / "two.onnx", two_inputs=True)
    nan, *_ = tiny_onnx(tmp_path / "nan.onnx", nan=True)
    ok, *_ = tiny_onnx(tmp_path / "ok.onnx")
    base = ["--data", str(folder), "--cache-dir", str(tmp_path / "c"), "--quiet"]
    cases = {
        "missing": (["--onnx", str(tmp_path / "none.onnx")], "no such file"),
        "folder": (["--onnx", str(tmp_path)], "is a folder"),
        "junk": (["--onnx", str(bad)], "cannot load it as a model"),
        "truncated": (["--onnx", str(trunc)], "cannot load it as a model"),
        "two inputs": (["--onnx", str(two)], "2 inputs"),
        "nan": (["--onnx", str(nan)], "NaN"),
        "scale and mean": (["--onnx", str(ok), "--scale", "255", "--mean", "0.5"],
                           "either --scale or --mean"),
        "bad std": (["--onnx", str(ok), "--std", "0", "1", "1"], "std must be positive"),
        "mean count": (["--onnx", str(ok), "--mean", "0.1", "0.2"], "1 or 3"),
        "tiny size": (["--onnx", str(ok), "--input-size", "3"], "input size"),
        "shard": (["--onnx", str(ok), "--shard", "0/2"], "--shard"),
        "cuda": (["--onnx", str(ok), "--device", "cuda"], "cuda"),
        "preset on model": (["--model", "lite0", "--mean", "0.5"], "only apply to --onnx"),
        "moments out": (["--onnx", str(ok), "--mode", "moments", "--out",
                         str(tmp_path / "m.npy")], "--mode moments"),
    }
    for name, (argv, needle) in cases.items():
        rc, _, err = run(["extract", *argv, *base], capsys)
        lines = err.strip().splitlines()
        assert rc == 2, (name, err)
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, err)
        assert needle in lines[0], (name, lines[0])


def test_torch_engine_refused(folder, tmp_path, monkeypatch):
    f, *_ = tiny_onnx(tmp_path / "e.onnx")
    monkeypatch.setenv("NEUDEP_ENGINE", "torch")
    with pytest.raises(EngineError, match="ONNX Runtime, not PyTorch"):
        extract(load_onnx(f), folder, cache_dir=tmp_path / "c", progress=False, num_workers=0)


# --------------------------------------------------------------------------------------------
# acceptance: a randomly initialised torchvision ResNet-18 exported to ONNX, 300 images


@pytest.fixture(scope="module")
def resnet18_onnx(tmp_path_factory):
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    path = tmp_path_factory.mktemp("r18") / "resnet18.onnx"
    x = torch.zeros(1, 3, 224, 224)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), input_names=["x"], output_names=["logits"],
                          opset_version=18, external_data=False,
                          dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},))
    return path, model


@pytest.mark.slow  # ~40 s export + ~70 s for 300 images on 2 busy cores
def test_acceptance_resnet18_onnx_300_images(resnet18_onnx, data_root, tmp_path, capsys):
    path, model = resnet18_onnx
    folder = copy_images(data_root / "imagenet-val", tmp_path / "img300", n_classes=300,
                         per_class=1)
    out = tmp_path / "X.npy"
    rc, so, err = run(["extract", "--onnx", str(path), "--data", str(folder), "--out", str(out),
                       "--cache-dir", str(tmp_path / "c"), "--quiet"], capsys)
    assert rc == 0, err
    X = np.load(out)
    assert X.shape == (300, 1000) and np.all(np.isfinite(X))
    meta = json.loads(out.with_suffix(".json").read_text())
    assert len(meta["images"]) == 300 and len(meta["labels"]) == 300
    # rows are the images in the sidecar's order: the first and last rows equal PyTorch's own
    # forward pass of those images
    pre = onnx_preprocess("imagenet")
    with torch.inference_mode():
        for i in (0, 299):
            with Image.open(folder / meta["images"][i]) as im:
                x = pre.to_tensor(pre.eval_geometric(im.convert("RGB")))[None]
            ref = model(x).numpy()[0]
            assert np.abs(X[i] - ref).max() <= 1e-4 * np.abs(ref).max()


# --------------------------------------------------------------------------------------------
# the book page "Apply it to your own model"

PAGE = Path(__file__).resolve().parents[1] / "book" / "own_model.md"


def test_book_page_is_in_the_toc_and_executed_by_the_build():
    toc = yaml.safe_load(PAGE.with_name("_toc.yml").read_text())
    files = [c.get("file") for part in toc["parts"] for c in part["chapters"]]
    assert "own_model" in files
    front = yaml.safe_load(PAGE.read_text().split("---")[1])
    assert front["mystnb"]["execution_mode"] == "force"  # the book's default is "off"
    text = PAGE.read_text()
    assert "torch.onnx.export" in text and '"extract", "--onnx"' in text and '["fit",' in text


@pytest.mark.slow  # ~2 min: exports a ResNet-18 and extracts 64 images
def test_book_page_runs(tmp_path):
    from myst_nb.core.read import read_myst_markdown_notebook  # noqa: PLC0415 - slow test
    from nbclient import NotebookClient  # noqa: PLC0415 - slow test

    nb = read_myst_markdown_notebook(PAGE.read_text())
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={
        "metadata": {"path": str(tmp_path)}}).execute()
    out = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                  for o in c.get("outputs", []) if o.get("output_type") == "stream")
    assert "logits (64, 1000) finite: True" in out
    assert "same logits: True" in out
    assert "recovered 10 of 10 planted dependencies" in out
