"""The ``full`` profile (a user's own ImageNet folder, any timm models) end to end.

An ImageNet-layout folder (``train/<wnid>/...`` from ``imagenet-sample``, ``val/<wnid>/...`` from
``imagenet-val``, symbolic links to the shared images) stands in for a user's ImageNet, with the
embedded models standing in for hub models (``NEUDEP_MODELS=efficientnet_lite0,efficientnet_lite1``).
The slow test streams the train moments (``make logits PROFILE=full``), executes every notebook
with papermill and builds the book, all in a copy of the repository in a temporary folder (so the
checkout's own book is untouched). ``NEUDEP_FULL_CLASSES`` (default 30) sets the number of
classes: CI runs it at that smoke size.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from neudep_utils.images import scan_folder
from neudep_utils.profiles import get_profile

REPO = Path(__file__).resolve().parents[1]
MODELS = "efficientnet_lite0,efficientnet_lite1"

# Notebook parameters at smoke size (the profile, its data and its models stay those of `full`).
SMOKE_PARAMS = {
    "01": {"n_targets": 100, "n_boot": 100, "ks": [1, 3, 10], "split_seeds": [0]},
    "02": {"n_targets": 100, "n_boot": 100, "ks": [1, 3, 10], "split_seeds": [0]},
    "03": {"subset_sizes": [10, 100, 1000], "subset_seeds": [0], "n_boot": 20,
           "n_boot_supports": 2, "lam_ratios": [0.5, 0.35, 0.2], "split_seeds": [0]},
    "04": {"seeds": [0], "strengths": [1.0], "steps": 10},
}


def build_imagenet_layout(data_root: Path, dst: Path, n_classes: int) -> Path:
    """``dst/train/<wnid>/`` (imagenet-sample) and ``dst/val/<wnid>/`` (imagenet-val) for the
    first ``n_classes`` wnids of imagenet-val, as symbolic links to the shared images."""
    val_src, train_src = data_root / "imagenet-val", data_root / "imagenet-sample"
    wnids = sorted(d.name for d in val_src.iterdir() if d.is_dir())[:n_classes]
    for split, src in (("train", train_src), ("val", val_src)):
        for w in wnids:
            (dst / split / w).mkdir(parents=True, exist_ok=True)
            for f in sorted((src / w).iterdir()):
                os.symlink(f, dst / split / w / f.name)
    return dst


def test_profile_settings_cover_every_notebook(monkeypatch, tmp_path: Path):
    """Every profile has settings for every notebook (notebook 04 failed with KeyError 'full'),
    and `make logits PROFILE=full` lists the entries the notebooks read."""
    monkeypatch.setenv("NEUDEP_IMAGENET", str(tmp_path))
    monkeypatch.setenv("NEUDEP_MODELS", MODELS)
    for p in ("smoke", "default", "full"):
        prof = get_profile(p)
        assert prof.robustness.n_eval > 0 and prof.robustness.corruption_names()
        assert prof.single.ks and prof.cross.models and prof.redundancy.subset_sizes
    full = get_profile("full")
    ex = full.extractions()
    assert {(e.model, e.folder, e.mode) for e in ex if e.folder.endswith("train")} == {
        (m, str(tmp_path / "train"), "moments") for m in MODELS.split(",")}
    assert full.robustness.eval_folder == str(tmp_path / "val")
    assert any(e.corruption for e in ex) and any(e.label_mode == "folder" for e in ex)
    with pytest.raises(ValueError, match="unknown profile"):
        get_profile("nope")


@pytest.mark.slow
@pytest.mark.timeout(3600)  # every notebook and the book; each step has its own 3000 s limit
def test_full_profile_end_to_end(tmp_path: Path, data_root: Path):
    n_classes = int(os.environ.get("NEUDEP_FULL_CLASSES", "30"))
    imagenet = build_imagenet_layout(data_root, tmp_path / "imagenet", n_classes)
    repo = tmp_path / "repo"
    for part in ("neudep_utils", "notebooks", "scripts", "book", "benchmarks/results"):
        shutil.copytree(REPO / part, repo / part, ignore=shutil.ignore_patterns(
            "_build", "executed", "generated", "__pycache__", ".ipynb_checkpoints"))
    cache = Path(os.environ.get("NEUDEP_CACHE") or tmp_path / "cache")
    out = tmp_path / "outputs"
    env = {**os.environ, "PYTHONPATH": str(repo), "NEUDEP_IMAGENET": str(imagenet),
           "NEUDEP_MODELS": MODELS, "NEUDEP_CACHE": str(cache), "NEUDEP_DATA": str(data_root),
           "HF_HUB_OFFLINE": "1"}

    def run(*args: str, timeout: int = 3000) -> str:
        r = subprocess.run([sys.executable, *args], cwd=repo, env=env, capture_output=True,
                           text=True, timeout=timeout)
        assert r.returncode == 0, f"{args} failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
        return r.stdout

    # 1. every cache entry of the profile, train moments streamed
    log = run("-m", "neudep_utils", "logits", "--profile", "full", "--quiet")
    assert log.count("(views=1, moments)") == 2, log
    train_manifest = scan_folder(imagenet / "train")  # entries are keyed by content, not path
    n_train = len(train_manifest)
    metas = [json.loads(p.read_text()) for p in cache.glob("*/*/meta.json")]
    train = [m for m in metas if m["key"]["mode"] == "moments"
             and m["key"]["manifest_digest"] == train_manifest.digest]
    assert sorted(m["key"]["model"] for m in train) == sorted(MODELS.split(","))
    assert all(m["n_images"] == n_train and m["top1"] is not None for m in train)
    # 2. every notebook executed (smoke-size parameters, profile full)
    for nb, params in SMOKE_PARAMS.items():
        args = ["scripts/run_notebooks.py", "--profile", "full", "--output-dir", str(out),
                "--only", nb]
        for k, v in params.items():
            args += ["-p", k, repr(v)]
        run(*args)
    results = {p.stem: json.loads(p.read_text()) for p in out.glob("[0-9][0-9]_*.json")}
    assert sorted(results) == ["01_single_model", "02_cross_model", "03_sparsity_redundancy",
                               "04_robustness"]
    assert all(r["profile"] == "full" for r in results.values())
    # 3. the book
    run("scripts/book_pages.py", "--profile", "full", "--output-dir", str(out))
    jb = Path(sys.executable).parent / "jupyter-book"
    r = subprocess.run([str(jb), "build", "book", "--builder", "html", "-W", "-n",
                        "--keep-going"], cwd=repo, env=env, capture_output=True, text=True,
                       timeout=3000)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    html = repo / "book" / "_build" / "html"
    for page in ("intro.html", "generated/claims.html", "generated/reproducibility.html",
                 *(f"executed/{s}.html" for s in results)):
        assert (html / page).is_file(), page
    assert "_static/mathjax/tex-chtml.js" in (html / "intro.html").read_text()
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file()
