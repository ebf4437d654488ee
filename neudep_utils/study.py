"""Study profiles: which models, folders and views each profile reads, and every per-profile default
of the notebooks.

``smoke``: Lite0 (plus Lite1 for the cross-model notebook), centre views, small grids, for CI.
``default``: the full embedded study (three EfficientNet-Lite models, one augmented view per image
for fit sets). ``full``: hub models (or any model names) on a full ImageNet-format folder given by
``$NEUDEP_IMAGENET`` (needs internet once for hub weights).

A notebook parameter left at ``None`` takes the profile's default::

    prof = study.get_profile("default")
    ks = ks or prof.single.ks

``make logits PROFILE=...`` (``python -m neudep_utils logits --profile ...``) extracts everything a
profile needs (:meth:`Profile.extractions`), so notebooks only read the cache.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "CUE_CONFLICT_SETS",
    "EMBEDDED_MODELS",
    "MACAW_WNID",
    "NARROW_MODEL",
    "CrossModelSettings",
    "Extraction",
    "Profile",
    "RedundancySettings",
    "RobustnessSettings",
    "SingleModelSettings",
    "get_profile",
    "same_family",
    "select_targets",
    "short_name",
]

EMBEDDED_MODELS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2",
                   "mobilenet_v1_075")
#: The one embedded model whose feature width (768) is below the number of categories.
NARROW_MODEL = "mobilenet_v1_075"
CUE_CONFLICT_SETS = ("cue-conflict/cue-conflict", "cue-conflict/edges", "cue-conflict/silhouettes")
#: The paper's example target.
MACAW_WNID = "n01818515"


@dataclass(frozen=True)
class Extraction:
    """One cache entry a profile needs."""

    model: str
    folder: str  # a path, or a subset name under the data root
    views: int = 0
    label_mode: str = "wnid"
    mode: str = "full"
    corruption: str | None = None  # e.g. "imagecorruptions:gaussian_noise:3" (robustness.py)
    subset: int | None = None  # a seeded subset of this many images (robustness.subset_indices)

    def kwargs(self) -> dict:
        """Keyword arguments for :func:`neudep_utils.cache.extract`."""
        out = {"model": self.model, "folder": self.folder, "views": self.views,
               "label_mode": self.label_mode, "mode": self.mode}
        if self.corruption is not None or self.subset is not None:
            from .robustness import extraction_kwargs

            out.update(extraction_kwargs(self.folder, self.label_mode, self.corruption,
                                         self.subset))
        return out


@dataclass(frozen=True)
class SingleModelSettings:
    """Notebook 01 defaults: support-size grid, targets, bootstrap size, split seeds (pipeline
    uncertainty), the learning curve (fit-set sizes, seeds) and the width curve (models, ranks,
    support sizes, targets)."""

    ks: tuple[int, ...]
    n_targets: int | None  # None: all 1000
    n_boot: int
    split_seeds: tuple[int, ...]
    learning_sizes: tuple[int, ...]
    learning_seeds: tuple[int, ...]
    width_models: tuple[str, ...]
    widths: tuple[int, ...]
    width_ks: tuple[int, ...] = (10, 50)
    width_targets: int | None = None  # None: all 1000


@dataclass(frozen=True)
class CrossModelSettings:
    """Notebook 02 defaults: its models and folders (may differ from the profile's), the grid."""

    models: tuple[str, ...]
    folders: tuple[str, ...]
    views: int
    ks: tuple[int, ...]
    n_targets: int | None
    n_boot: int


@dataclass(frozen=True)
class RedundancySettings:
    """Notebook 03 defaults: the category-subset sizes and seeds, the CovLasso lam grid, and the
    bootstrap resamples of the support-stability check."""

    subset_sizes: tuple[int, ...]
    subset_seeds: tuple[int, ...]
    lam_ratios: tuple[float, ...]
    n_boot: int


@dataclass(frozen=True)
class RobustnessSettings:
    """Notebook 04 defaults: fine-tuning seeds, strength grid and steps, the corrupted eval subset."""

    model: str
    seeds: tuple[int, ...]
    strengths: tuple[float, ...]
    steps: int
    dep_lam_ratio: float
    eval_folder: str
    n_eval: int
    corruptions: tuple[str, ...]
    severities: tuple[int, ...]

    def corruption_names(self) -> list[str]:
        """Cache-key names of every corruption x severity evaluated."""
        from .robustness import corruption_name

        return [corruption_name(k, s) for k in self.corruptions for s in self.severities]


@dataclass(frozen=True)
class Profile:
    """Models, folders and views of one study profile, and the notebooks' defaults under it."""

    name: str
    models: tuple[str, ...]
    folders: tuple[str, ...]
    fit_views: int
    single: SingleModelSettings
    cross: CrossModelSettings
    redundancy: RedundancySettings
    robustness: RobustnessSettings
    extra: tuple[Extraction, ...] = field(default=())

    def extractions(self) -> list[Extraction]:
        """Every cache entry the notebooks of this profile read (each listed once)."""
        out = [Extraction(m, f, self.fit_views) for m in self.models for f in self.folders]
        out += [Extraction(m, f, self.cross.views) for m in self.cross.models
                for f in self.cross.folders]
        out += list(self.extra) + self._robustness_extractions()
        return list(dict.fromkeys(out))

    def _robustness_extractions(self) -> list[Extraction]:
        """Notebook 04: its model on the cue-conflict sets and on corrupted copies of a seeded
        subset of the held-out eval images (see :mod:`neudep_utils.robustness`)."""
        rb = self.robustness
        cue = [Extraction(rb.model, s, 0, label_mode="folder") for s in CUE_CONFLICT_SETS]
        corr = [Extraction(rb.model, rb.eval_folder, 0, corruption=c, subset=rb.n_eval)
                for c in rb.corruption_names()]
        return cue + corr


#: Fast corruption types spanning the four ImageNet-C families (noise, blur, weather, digital).
#: glass_blur is very slow and fog/frost break on numpy 2 in imagecorruptions 1.1.2.
CORRUPTIONS = ("gaussian_noise", "defocus_blur", "motion_blur", "brightness", "contrast",
               "jpeg_compression")


def _robustness(smoke: bool, model: str = "efficientnet_lite0",
                eval_folder: str = "imagenet-val") -> RobustnessSettings:
    if smoke:
        return RobustnessSettings(model, (0,), (1.0,), 10, 0.5, eval_folder, 100,
                                  ("gaussian_noise", "contrast"), (3,))
    return RobustnessSettings(model, (0, 1, 2, 3, 4), (0.1, 1.0, 10.0), 60, 0.3,
                              eval_folder, 300, CORRUPTIONS, (1, 3, 5))


def get_profile(name: str) -> Profile:
    """The named profile (``smoke``, ``default`` or ``full``)."""
    folders = ("imagenet-val", "imagenet-sample")
    if name == "smoke":
        return Profile(
            "smoke", ("efficientnet_lite0",), folders, 0,
            single=SingleModelSettings((1, 3, 10), 300, 200, (0, 1), (250, 500), (0,),
                                       ("efficientnet_lite0",), (64, 256), (10,), 200),
            cross=CrossModelSettings(("efficientnet_lite0", "efficientnet_lite1"),
                                     ("imagenet-val",), 0, (1, 3, 10), 300, 200),
            redundancy=RedundancySettings((10, 100, 1000), (0,),
                                          tuple(np.geomspace(0.5, 0.1, 3)), 2),
            robustness=_robustness(True))
    if name == "default":
        return Profile(
            "default", EMBEDDED_MODELS, folders, 1,
            single=SingleModelSettings((1, 2, 3, 5, 10, 20, 50, 100), None, 1000,
                                       (0, 1, 2, 3, 4), (125, 250, 500, 1000, 1800),
                                       (0, 1, 2), ("efficientnet_lite0", NARROW_MODEL),
                                       (64, 128, 256, 384, 512, 768)),
            cross=CrossModelSettings(EMBEDDED_MODELS, folders, 1, (1, 3, 10, 30), None, 1000),
            redundancy=RedundancySettings((10, 30, 100, 300, 1000), (0, 1, 2),
                                          tuple(np.geomspace(0.7, 0.03, 10)), 10),
            robustness=_robustness(False))
    if name == "full":
        root = os.environ.get("NEUDEP_IMAGENET")
        if not root:
            raise ValueError("profile 'full' needs NEUDEP_IMAGENET=/path/to/imagenet (a folder "
                             "with train/ and val/ in <wnid>/<image> layout)")
        models = tuple(os.environ.get("NEUDEP_MODELS", "resnet50,swin_tiny_patch4_window7_224")
                       .split(","))
        val = os.path.join(root, "val")
        return Profile(
            "full", models, (val,), 0,
            single=SingleModelSettings((1, 2, 3, 5, 10, 20, 50, 100), None, 1000,
                                       (0, 1, 2, 3, 4), (), (), models[:1],
                                       (64, 128, 256, 384, 512, 768)),
            cross=CrossModelSettings(models, (val,), 0, (1, 3, 10, 30), None, 1000),
            redundancy=RedundancySettings((10, 30, 100, 300, 1000), (0, 1, 2),
                                          tuple(np.geomspace(0.7, 0.03, 10)), 10),
            robustness=_robustness(False, models[0], val),
            extra=tuple(Extraction(m, os.path.join(root, "train"), 0, mode="moments")
                        for m in models))
    raise ValueError(f"unknown profile {name!r}; expected 'smoke', 'default' or 'full'")


def same_family(a: str, b: str) -> bool:
    """Whether two models share an architecture family (both EfficientNet, or equal names up
    to the variant digit)."""
    def family(m: str) -> str:
        return "efficientnet" if m.startswith(("efficientnet", "tf_efficientnet")) else \
            m.rstrip("0123456789_")
    return family(a) == family(b)


def short_name(model: str) -> str:
    """A model's short label in tables and keys (``efficientnet_lite0`` -> ``lite0``)."""
    return model.replace("efficientnet_", "")


def select_targets(n_targets: int | None, seed: int = 0, must: np.ndarray | None = None,
                   n_classes: int = 1000) -> np.ndarray:
    """Sorted target classes: all ``n_classes`` when ``n_targets`` is None (or >= n_classes), else
    the classes in ``must`` plus a seeded random draw of the others up to ``n_targets``."""
    if n_targets is None or n_targets >= n_classes:
        return np.arange(n_classes)
    must = np.unique(np.asarray([] if must is None else must, np.int64))
    rng = np.random.default_rng(seed)
    rest = rng.permutation(np.setdiff1d(np.arange(n_classes), must))
    return np.sort(np.concatenate([must, rest[:max(n_targets - must.size, 0)]]))
