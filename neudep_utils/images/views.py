"""Views of an image: view 0 is the model's evaluation view (resize + centre crop); views ``1..K``
are seeded augmented views (random resized crop + horizontal flip), used only to enlarge *fit*
sets. :class:`ViewDataset` serves every (image, view) of a manifest as a tensor.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .folders import Manifest, open_image

__all__ = ["PilFn", "ViewDataset", "ViewSpec", "view_seed"]


@dataclass(frozen=True)
class ViewSpec:
    """View 0 is the evaluation (centre-crop) view; ``n_aug`` seeded augmented views follow."""

    n_aug: int = 0
    seed: int = 0
    scale: tuple[float, float] = (0.25, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip: bool = True

    def __post_init__(self) -> None:
        if self.n_aug < 0:
            raise ValueError(f"the number of augmented views (--views; views or n_aug in Python) "
                             f"must be >= 0, got {self.n_aug}")

    @property
    def n_views(self) -> int:
        """Total number of views per image (centre view included)."""
        return 1 + self.n_aug

    def describe(self) -> dict:
        """JSON-able description (part of the cache key)."""
        if self.n_aug == 0:
            return {"n_aug": 0}
        return {"n_aug": self.n_aug, "seed": self.seed, "scale": list(self.scale),
                "ratio": list(self.ratio), "hflip": self.hflip,
                "kind": "RandomResizedCrop+HorizontalFlip"}


def view_seed(base_seed: int, image_index: int, view_index: int) -> int:
    """Deterministic per-(image, view) seed, independent of worker scheduling."""
    h = hashlib.blake2b(f"{base_seed}:{image_index}:{view_index}".encode(), digest_size=8)
    return int.from_bytes(h.digest(), "little") & 0x7FFF_FFFF


PilFn = Callable[["object", int], "object"]


class ViewDataset:
    """Torch-style dataset of ``(tensor, image_index, view_index)`` for every (image, view).

    ``preprocess`` is a :class:`neudep_utils.models.Preprocess`. ``pil_fn(img, seed)`` (optional)
    is applied to each view after its geometric transform and before normalisation, e.g. an
    ImageNet-C corruption of the 224x224 centre crop.
    """

    def __init__(self, manifest: Manifest, preprocess, views: ViewSpec = ViewSpec(),
                 pil_fn: PilFn | None = None, indices: Sequence[int] | None = None):
        self.manifest = manifest
        self.preprocess = preprocess
        self.views = views
        self.pil_fn = pil_fn
        self.indices = np.arange(len(manifest)) if indices is None else np.asarray(indices)

    def __len__(self) -> int:
        return len(self.indices) * self.views.n_views

    def __getitem__(self, k: int):
        import torch

        img_i = int(self.indices[k // self.views.n_views])
        view_i = k % self.views.n_views
        path = self.manifest.path(img_i)
        img = open_image(path, self.manifest.read(img_i))  # the bytes the scan saw, or an error
        seed = view_seed(self.views.seed, img_i, view_i)
        if view_i == 0:
            img = self.preprocess.eval_geometric(img)
        else:
            torch.manual_seed(seed)
            img = self.preprocess.aug_geometric(self.views)(img)
        if self.pil_fn is not None:
            img = self.pil_fn(img, seed)
        return self.preprocess.to_tensor(img), img_i, view_i
