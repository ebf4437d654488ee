"""Image folders, manifests and views on the real shared images."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from neudep_utils.errors import DataError
from neudep_utils.images import (
    ViewDataset,
    ViewSpec,
    data_root,
    imagenet_classes,
    resolve_folder,
    scan_folder,
)


def test_imagenet_classes_from_timm():
    c = imagenet_classes()
    assert len(c) == 1000 and len(set(c.wnids)) == 1000
    assert c.index("n01818515") == 88 and c.short_name(88) == "macaw"
    with pytest.raises(DataError, match="not an ImageNet-1k wnid"):
        c.index("n99999999")


def test_scan_shared_val(data_root: Path):
    m = scan_folder(data_root / "imagenet-val")
    assert len(m) == 1000 and len(set(m.labels)) == 622
    assert list(m.relpaths) == sorted(m.relpaths)
    c = imagenet_classes()
    for rel, lab in zip(m.relpaths[:50], m.labels[:50], strict=True):
        assert c.wnids[lab] == rel.split("/")[0]
    assert scan_folder(data_root / "imagenet-val").digest == m.digest  # deterministic


def test_scan_cue_conflict_folder_mode(data_root: Path):
    m = scan_folder(data_root / "cue-conflict" / "edges", label_mode="folder")
    assert len(m) == 160 and len(m.class_names) == 16 and m.class_names[0] == "airplane"
    with pytest.raises(DataError, match="not ImageNet-1k wnids"):
        scan_folder(data_root / "cue-conflict" / "edges")


def test_digest_changes_with_content(tiny_folder: Path):
    d0 = scan_folder(tiny_folder).digest
    f = sorted(tiny_folder.rglob("*.JPEG"))[0]
    data = bytearray(f.read_bytes())
    data[-3] ^= 0xFF  # same size, different bytes
    f.write_bytes(bytes(data))
    assert scan_folder(tiny_folder).digest != d0
    f.rename(f.with_name("renamed.JPEG"))
    assert len({d0, scan_folder(tiny_folder).digest}) == 2


def test_bad_folders(tmp_path: Path, tiny_folder: Path):
    with pytest.raises(DataError, match="does not exist"):
        scan_folder(tmp_path / "nope")
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "a.jpg").write_bytes(b"x")
    with pytest.raises(DataError, match=r"has no class subfolders; expected <wnid>/<image>"):
        scan_folder(flat)
    (tiny_folder / "not_a_wnid").mkdir()
    with pytest.raises(DataError, match="not ImageNet-1k wnids.*not_a_wnid"):
        scan_folder(tiny_folder)


def test_empty_class_and_unreadable_image_are_reported(tiny_folder: Path):
    (tiny_folder / "n01818515").mkdir()  # empty class folder
    first = sorted(tiny_folder.iterdir())[0]
    (first / "broken.JPEG").write_bytes(b"not a jpeg")
    (first / "notes.txt").write_text("hello")
    with pytest.warns(UserWarning, match="skipped 3 entries"):
        m = scan_folder(tiny_folder)
    reasons = dict(m.skipped)
    assert reasons["n01818515/"] == "empty class folder"
    assert reasons[f"{first.name}/broken.JPEG"].startswith("unreadable image")
    assert reasons[f"{first.name}/notes.txt"] == "not an image file"
    assert len(m) == 10


def test_unreadable_image_at_load_names_the_file(tiny_folder: Path, lite0):
    m = scan_folder(tiny_folder, verify=False)
    Path(m.path(0)).write_bytes(b"garbage")
    ds = ViewDataset(m, lite0.preprocess)
    with pytest.raises(DataError, match=m.relpaths[0]):
        ds[0]


def test_data_root_errors(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("NEUDEP_DATA", str(tmp_path / "missing"))
    with pytest.raises(DataError, match="set NEUDEP_DATA"):
        data_root()
    with pytest.raises(DataError, match="imagenet-val/"):
        data_root(tmp_path, require=["imagenet-val"])
    with pytest.raises(DataError, match="not found"):
        resolve_folder("no-such-subset", root=tmp_path)


def test_views_are_seeded_and_distinct(tiny_folder: Path, lite0):
    m = scan_folder(tiny_folder)
    ds = ViewDataset(m, lite0.preprocess, ViewSpec(n_aug=2, seed=3))
    assert len(ds) == 30
    x0, i0, v0 = ds[0]
    x1, _, v1 = ds[1]
    assert (i0, v0, v1) == (0, 0, 1) and tuple(x0.shape) == (3, 224, 224)
    assert not np.allclose(x0.numpy(), x1.numpy())
    again = ViewDataset(m, lite0.preprocess, ViewSpec(n_aug=2, seed=3))
    np.testing.assert_array_equal(ds[4][0].numpy(), again[4][0].numpy())
    other = ViewDataset(m, lite0.preprocess, ViewSpec(n_aug=2, seed=4))
    assert not np.allclose(ds[4][0].numpy(), other[4][0].numpy())
    np.testing.assert_array_equal(ds[3][0].numpy(), other[3][0].numpy())  # centre views agree
    shutil.rmtree(tiny_folder)
