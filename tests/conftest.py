"""Shared fixtures: the real data folder (found as every command finds it:
:mod:`neudep_utils.locations`) and small copies of it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from neudep_utils import locations

REPO = Path(__file__).resolve().parents[1]


def _data_root() -> Path:
    loc = locations.find("data")
    if loc.source == "missing":
        pytest.fail(locations.not_found("data"))
    root = loc.path
    if not (root / "imagenet-val").is_dir():
        pytest.fail(f"data folder {root} ({loc.source}) has no imagenet-val/: set NEUDEP_DATA to "
                    "the folder holding imagenet-val/, imagenet-sample/, cue-conflict/, or unset "
                    "it and run `make data`")
    return root


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The shared data folder (read-only)."""
    return _data_root()


def copy_images(src_root: Path, dst: Path, n_classes: int, per_class: int = 2) -> Path:
    """Copy the first ``n_classes`` class folders (``per_class`` images each) into ``dst``."""
    classes = [p for p in sorted(src_root.iterdir())
               if p.is_dir() and len(list(p.iterdir())) >= per_class][:n_classes]
    for c in classes:
        (dst / c.name).mkdir(parents=True, exist_ok=True)
        for f in sorted(c.iterdir())[:per_class]:
            shutil.copy(f, dst / c.name / f.name)
    return dst


@pytest.fixture
def tiny_folder(tmp_path: Path, data_root: Path) -> Path:
    """A writable ImageNet-format folder of 10 real validation images (5 classes x 2)."""
    return copy_images(data_root / "imagenet-val", tmp_path / "tiny", n_classes=5)


@pytest.fixture(scope="session")
def lite0():
    """The embedded EfficientNet-Lite0, loaded once per session."""
    from neudep_utils.models import load_model

    return load_model("efficientnet_lite0")
