"""Shared fixtures: the real data folder (found as every command finds it:
:mod:`neudep_utils.locations`) and small copies of it."""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import time
from collections.abc import Callable
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
    from neudep_utils.models import load_model  # noqa: PLC0415 - loads torch

    return load_model("efficientnet_lite0")


def rewrite_sums(folder: Path) -> None:
    """Regenerate a weights folder's ``SHA256SUMS`` over its other files (as ``sha256sum``
    would), so a test can change a file and still get past the checksum check."""
    lines = [f"{hashlib.sha256(f.read_bytes()).hexdigest()}  {f.name}"
             for f in sorted(folder.iterdir()) if f.name != "SHA256SUMS"]
    (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")


@pytest.fixture
def models_copy(tmp_path: Path) -> Callable[[str], Path]:
    """``models_copy(folder_name)``: a writable copy of the shared weights folder
    ``../shared/models/<folder_name>`` (TF.js MobileNet and Darknet, the LiteRT files) in a
    temporary models dir; returns that dir (for ``NEUDEP_MODELS_DIR``)."""
    from neudep_utils.models.tfjs import default_models_dir  # noqa: PLC0415 - loads torch

    def copy(folder_name: str) -> Path:
        root = tmp_path / "models"
        shutil.copytree(default_models_dir() / folder_name, root / folder_name)
        for f in (root / folder_name).iterdir():
            f.chmod(0o644)
        return root

    return copy


# --------------------------------------------------------------------------------------------
# per-test CPU seconds (opt-in): NEUDEP_TEST_CPU=FILE writes every test's CPU seconds (this
# process and the child processes it waited for) and wall seconds to FILE, slowest first; on a
# machine shared with other jobs, CPU seconds say what a test costs where wall seconds do not.
# --------------------------------------------------------------------------------------------

_CPU_TIMES: list[tuple[str, float, float]] = []


def _cpu_now() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    if not os.environ.get("NEUDEP_TEST_CPU"):
        yield
        return
    c0, t0 = _cpu_now(), time.perf_counter()
    yield
    row = (item.nodeid, _cpu_now() - c0, time.perf_counter() - t0)
    _CPU_TIMES.append(row)
    with open(os.environ["NEUDEP_TEST_CPU"] + ".partial", "a") as fh:  # a killed run's record
        fh.write(f"{row[1]:.1f}\t{row[2]:.1f}\t{row[0]}\n")


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("NEUDEP_TEST_CPU")
    if path and _CPU_TIMES:
        rows = sorted(_CPU_TIMES, key=lambda r: -r[1])
        Path(path).write_text("cpu_s\twall_s\ttest\n" + "".join(
            f"{c:.1f}\t{w:.1f}\t{n}\n" for n, c, w in rows))
