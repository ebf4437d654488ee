"""ImageNet-C style corruptions and seeded eval subsets, as named inputs of the logit cache.

- Corruptions from the PyPI package ``imagecorruptions`` as named, seeded ``pil_fn(img, seed)``
  hooks for :func:`neudep_utils.cache.extract` (the name, e.g.
  ``"imagecorruptions:gaussian_noise:3"``, is part of the cache key).
- Eval subsets: a seeded subset of a folder's manifest (:func:`subset_indices`), built identically
  by ``make logits`` and by the notebooks (both through :func:`neudep_utils.cache.read_entry`).
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
import types
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .folders import Manifest, resolve_folder, scan_folder

__all__ = ["CORRUPTION_PREFIX", "Corruption", "corruption_fn", "corruption_name",
           "parse_corruption", "subset_indices", "subset_manifest"]

CORRUPTION_PREFIX = "imagecorruptions"


# --------------------------------------------------------------------------------------------
# Corruptions
# --------------------------------------------------------------------------------------------


def _ensure_pkg_resources() -> None:
    """``imagecorruptions`` 1.1.2 imports ``pkg_resources.resource_filename`` (only for its frost
    images); setuptools >= 81 no longer ships ``pkg_resources``. Provide that one function."""
    try:
        import pkg_resources  # noqa: F401
        return
    except ImportError:
        pass
    mod = types.ModuleType("pkg_resources")

    def resource_filename(package: str, path: str) -> str:
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            raise ImportError(f"package {package!r} not found")
        return os.path.join(os.path.dirname(spec.origin), path)

    mod.resource_filename = resource_filename  # type: ignore[attr-defined]
    sys.modules["pkg_resources"] = mod


def corruption_name(kind: str, severity: int) -> str:
    """Cache-key name of a corruption, e.g. ``"imagecorruptions:gaussian_noise:3"``."""
    return f"{CORRUPTION_PREFIX}:{kind}:{int(severity)}"


def parse_corruption(name: str) -> tuple[str, int]:
    """``"imagecorruptions:gaussian_noise:3"`` -> ``("gaussian_noise", 3)``."""
    m = re.fullmatch(rf"{CORRUPTION_PREFIX}:([a-z_]+):([1-5])", name)
    if m is None:
        raise ValueError(f"unknown corruption {name!r}; expected "
                         f"'{CORRUPTION_PREFIX}:<type>:<severity 1..5>'")
    return m.group(1), int(m.group(2))


@dataclass(frozen=True)
class Corruption:
    """A picklable, seeded ``pil_fn(img, seed)``: an ``imagecorruptions`` corruption of a view.

    numpy's global generator (which ``imagecorruptions`` uses) is seeded from the per-view seed
    right before corrupting, so the result does not depend on worker scheduling.
    """

    kind: str
    severity: int

    @property
    def name(self) -> str:
        """The cache-key name."""
        return corruption_name(self.kind, self.severity)

    def __call__(self, img, seed: int):
        _ensure_pkg_resources()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from imagecorruptions import corrupt

            np.random.seed(int(seed) & 0x7FFF_FFFF)  # noqa: NPY002 (the library uses it)
            arr = corrupt(np.asarray(img.convert("RGB"), dtype=np.uint8),
                          corruption_name=self.kind, severity=self.severity)
        return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).resize(img.size)


def corruption_fn(name: str) -> Corruption:
    """Registry: the ``pil_fn`` of a corruption name (see :func:`corruption_name`)."""
    kind, severity = parse_corruption(name)
    _ensure_pkg_resources()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from imagecorruptions import get_corruption_names

        known = get_corruption_names("all")
    if kind not in known:
        raise ValueError(f"unknown corruption type {kind!r}; imagecorruptions knows {known}")
    return Corruption(kind, severity)


EVAL_SUBSET_SEED = 0


def subset_indices(n_total: int, n: int, seed: int = EVAL_SUBSET_SEED) -> np.ndarray:
    """A seeded subset of ``n`` of ``n_total`` images (sorted manifest positions); at most half
    of the images, so that the rest of the folder can be fitted (the full profile evaluates on
    the user's only folder)."""
    if n_total < 2:
        raise ValueError(f"an eval subset needs a folder of at least 2 images, got {n_total}")
    n = min(n, n_total // 2)
    return np.sort(np.random.default_rng(seed).choice(n_total, size=n, replace=False))


def subset_manifest(folder: str, n: int | None, seed: int = EVAL_SUBSET_SEED,
                    label_mode: str = "wnid") -> tuple[Manifest, np.ndarray]:
    """The manifest of ``folder`` restricted to :func:`subset_indices` (all images if ``n`` is
    None), and the positions kept."""

    man = scan_folder(resolve_folder(folder), label_mode=label_mode)
    if n is None:
        return man, np.arange(len(man))
    idx = subset_indices(len(man), n, seed)
    return man.subset(idx), idx

