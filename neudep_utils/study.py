"""Study profiles: which models, folders and views each profile of the notebooks reads.

``smoke``: Lite0, centre views, for CI (plus Lite1 on imagenet-val for notebook 02).
``default``: the full embedded study (three EfficientNet-Lite models, one augmented view per image
for fit sets). ``full``: hub models on a full ImageNet-format folder given by ``$NEUDEP_IMAGENET``
(needs internet once for the weights).

``make logits PROFILE=...`` (``python -m neudep_utils logits --profile ...``) extracts everything a
profile needs, so notebooks only read the cache.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

EMBEDDED_MODELS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")


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
class Profile:
    """Models, folders and views of one study profile."""

    name: str
    models: tuple[str, ...]
    folders: tuple[str, ...]
    fit_views: int
    extra: tuple[Extraction, ...] = field(default=())

    def extractions(self) -> list[Extraction]:
        """Every cache entry the notebooks of this profile read."""
        out = [Extraction(m, f, self.fit_views) for m in self.models for f in self.folders]
        return out + list(self.extra)


CUE_CONFLICT_SETS = ("cue-conflict/cue-conflict", "cue-conflict/edges", "cue-conflict/silhouettes")


def _robustness_extractions(profile: str) -> tuple[Extraction, ...]:
    """Notebook 04: Lite0 on the cue-conflict sets and on corrupted copies of a seeded subset of
    the held-out eval images (see :mod:`neudep_utils.robustness`)."""
    from .robustness import EVAL_FOLDER, N_EVAL, corruption_grid

    cue = tuple(Extraction("efficientnet_lite0", s, 0, label_mode="folder")
                for s in CUE_CONFLICT_SETS)
    corr = tuple(Extraction("efficientnet_lite0", EVAL_FOLDER, 0, corruption=c,
                            subset=N_EVAL[profile]) for c in corruption_grid(profile))
    return cue + corr


def get_profile(name: str) -> Profile:
    """The named profile (``smoke``, ``default`` or ``full``)."""
    if name == "smoke":
        # notebook 02 (cross-model) needs a second model: Lite1 on imagenet-val, centre views
        return Profile("smoke", ("efficientnet_lite0",), ("imagenet-val", "imagenet-sample"), 0,
                       (Extraction("efficientnet_lite1", "imagenet-val", 0),)
                       + _robustness_extractions("smoke"))
    if name == "default":
        return Profile("default", EMBEDDED_MODELS, ("imagenet-val", "imagenet-sample"), 1,
                       _robustness_extractions("default"))
    if name == "full":
        root = os.environ.get("NEUDEP_IMAGENET")
        if not root:
            raise ValueError("profile 'full' needs NEUDEP_IMAGENET=/path/to/imagenet (a folder "
                             "with train/ and val/ in <wnid>/<image> layout)")
        models = tuple(os.environ.get("NEUDEP_MODELS", "resnet50,swin_tiny_patch4_window7_224")
                       .split(","))
        # notebook 03 reads every model on the shared folders (its `folders` parameter), and
        # notebook 04 runs on the embedded Lite0 and the shared images in every profile
        # (robustness.N_EVAL): their entries at this profile's fit views are listed too
        shared = tuple(Extraction(m, f, 0) for m in dict.fromkeys(models + ("efficientnet_lite0",))
                       for f in ("imagenet-val", "imagenet-sample"))
        return Profile("full", models, (os.path.join(root, "val"),), 0,
                       tuple(Extraction(m, os.path.join(root, "train"), 0, mode="moments")
                             for m in models) + shared + _robustness_extractions("full"))
    raise ValueError(f"unknown profile {name!r}; expected 'smoke', 'default' or 'full'")
