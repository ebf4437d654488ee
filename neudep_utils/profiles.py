"""Study profiles: which models, folders and views each profile reads, and every study constant
the notebooks use under it.

``smoke``: Lite0 (plus Lite1 for the cross-model notebook), centre views, small grids, for CI.
``default``: the full embedded study (every embedded model, one augmented view per image for fit
sets). ``full``: hub models (or any model names) on a full ImageNet-format folder given by
``$NEUDEP_IMAGENET`` (needs internet once for hub weights).

Every setting is a keyword field with its meaning in the class docstring. A notebook parameter
left at ``None`` takes the profile's value::

    prof = profiles.get_profile("default")
    ks = ks or prof.single.ks

The thresholds that decide verdicts are not here: they live with their rules in
:mod:`neudep_utils.verdicts.rules`. ``make logits PROFILE=...`` (``python -m neudep_utils logits
--profile ...``) extracts everything a profile needs (:meth:`Profile.extractions`), so notebooks
only read the cache.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field

import numpy as np

from .images.corruptions import corruption_name

__all__ = [
    "CORRUPTIONS",
    "CUE_CONFLICT_SETS",
    "EMBEDDED_MODELS",
    "NARROW_MODEL",
    "TRANSFORMER",
    "TRANSFORMER_PARTNERS",
    "CrossModelSettings",
    "Extraction",
    "Profile",
    "RedundancySettings",
    "RobustnessSettings",
    "SingleModelSettings",
    "get_profile",
    "select_targets",
]

EMBEDDED_MODELS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2",
                   "mobilenet_v1_075")
#: The models added from ../shared/models: a different CNN family (Darknet-tiny, d = 128), the
#: trained width series of int8 MobileNet v1 (d = 256, 512, 768) and one architecture under two
#: quantization recipes (MobileNet v2, QAT and PTQ).
DARKNET = "darknet_tiny"
INT8_WIDTHS = ("mobilenet_v1_025_int8", "mobilenet_v1_050_int8", "mobilenet_v1_075_int8")
RECIPE_PAIR = ("mobilenet_v2_int8_qat", "mobilenet_v2_int8_ptq")
#: The one transformer (ViT-Ti/16, d = 192; ImageNet-21k pretrained, 1k fine-tuned).
TRANSFORMER = "vit_tiny_patch16_224"
#: The CNNs paired with the transformer in both directions in notebook 02 (C2, C6b): the
#: reference CNN and the float CNN of another family.
TRANSFORMER_PARTNERS = ("efficientnet_lite0", "mobilenet_v1_075")
#: Every model of the default profile's single-model analyses (C1, C4, C5, C6a).
DEFAULT_MODELS = EMBEDDED_MODELS + (DARKNET, *INT8_WIDTHS, *RECIPE_PAIR, TRANSFORMER)
#: The one embedded float model whose feature width (768) is below the number of categories.
NARROW_MODEL = "mobilenet_v1_075"
CUE_CONFLICT_SETS = ("cue-conflict/cue-conflict", "cue-conflict/edges", "cue-conflict/silhouettes")
#: Fast corruption types spanning the four ImageNet-C families (noise, blur, weather, digital).
#: glass_blur is very slow and fog/frost break on numpy 2 in imagecorruptions 1.1.2.
CORRUPTIONS = ("gaussian_noise", "defocus_blur", "motion_blur", "brightness", "contrast",
               "jpeg_compression")


@dataclass(frozen=True, kw_only=True)
class Extraction:
    """One cache entry a profile needs: ``model`` on ``folder`` (a path, or a subset name under
    the data root) with ``views`` augmented views, labels by ``label_mode``, in ``mode``
    (``full`` or ``moments``), optionally under a named ``corruption`` of a seeded ``subset`` of
    the folder's images (:mod:`neudep_utils.images.corruptions`)."""

    model: str
    folder: str
    views: int = 0
    label_mode: str = "wnid"
    mode: str = "full"
    corruption: str | None = None
    subset: int | None = None

    def kwargs(self) -> dict:
        """Keyword arguments of :func:`neudep_utils.cache.read_entry`."""
        return {"model": self.model, "folder": self.folder, "views": self.views,
                "label_mode": self.label_mode, "mode": self.mode,
                "corruption": self.corruption, "subset": self.subset}


@dataclass(frozen=True, kw_only=True)
class SingleModelSettings:
    """Notebook 01: ``ks`` (support sizes; the headline k, "a few", is the C1 rule's),
    ``n_targets`` (None: all 1000), ``n_boot`` (bootstrap replicates), ``n_folds`` and
    ``split_seed`` (the cross-fitting), ``split_seeds`` (pipeline uncertainty), the learning
    curve (``learning_sizes`` fit images, ``learning_seeds``), the width curve (``width_models``
    whose logit layer is truncated to each rank in ``widths``, at ``width_ks``, on
    ``width_targets`` targets), ``family`` (the WordNet family of the dependency graph) and
    the seeds of targets and baselines. The thresholds (near distance, the existential
    reading's share) are the rules' (:mod:`neudep_utils.verdicts.rules`)."""

    ks: tuple[int, ...]
    n_targets: int | None
    n_boot: int
    split_seeds: tuple[int, ...]
    learning_sizes: tuple[int, ...]
    learning_seeds: tuple[int, ...]
    width_models: tuple[str, ...]
    widths: tuple[int, ...]
    width_ks: tuple[int, ...] = (10, 50)
    width_targets: int | None = None
    n_folds: int = 2
    split_seed: int = 0
    family: str = "bird"
    target_seed: int = 0
    baseline_seed: int = 0


@dataclass(frozen=True, kw_only=True)
class CrossModelSettings:
    """Notebook 02: its ``models`` and ``folders`` (may differ from the profile's), ``views``,
    the ``ks`` grid, ``n_targets``, ``n_boot``, the folds, the ordered ``pairs`` (None: every
    ordered pair of ``models``), ``n_hidden`` classes hidden from A's head (seeded by
    ``hidden_seed``) and the CNN-transformer pair of the full profile."""

    models: tuple[str, ...]
    folders: tuple[str, ...]
    views: int
    ks: tuple[int, ...]
    n_targets: int | None
    n_boot: int
    pairs: tuple[tuple[str, str], ...] | None = None
    n_folds: int = 2
    split_seed: int = 0
    target_seed: int = 0
    baseline_seed: int = 0
    n_hidden: int = 100
    hidden_seed: int = 0
    cnn_transformer: tuple[str, str] = ("resnet50", "swin_tiny_patch4_window7_224")


@dataclass(frozen=True, kw_only=True)
class RedundancySettings:
    """Notebook 03: category-subset sizes ``subset_sizes`` and ``subset_seeds``, the CovLasso
    ``lam_ratios`` grid (relative to lam_max), ``n_boot`` bootstrap resamples of the fit images
    for support stability at ``boot_lam_ratio``, and ``n_boot_ci`` replicates of the intervals."""

    subset_sizes: tuple[int, ...]
    subset_seeds: tuple[int, ...]
    lam_ratios: tuple[float, ...]
    n_boot: int
    boot_lam_ratio: float = 0.2
    n_boot_ci: int = 1000
    split_seed: int = 0


@dataclass(frozen=True, kw_only=True)
class RobustnessSettings:
    """Notebook 04: the ``model`` whose head is fine-tuned on frozen features, ``seeds``, the
    shared regularizer ``strengths`` grid, optimizer ``steps``, ``lr`` and ``batch``, the
    dependencies' ``dep_lam_ratio``, the validation share ``val_frac`` that picks the strength,
    and the corrupted eval subset (``n_eval`` images of ``eval_folder`` under every
    ``corruptions`` x ``severities``)."""

    model: str
    seeds: tuple[int, ...]
    strengths: tuple[float, ...]
    steps: int
    dep_lam_ratio: float
    eval_folder: str
    n_eval: int
    corruptions: tuple[str, ...]
    severities: tuple[int, ...]
    lr: float = 3e-4
    batch: int = 256
    val_frac: float = 0.2

    def corruption_names(self) -> list[str]:
        """Cache-key names of every corruption x severity evaluated."""
        return [corruption_name(k, s) for k in self.corruptions for s in self.severities]


@dataclass(frozen=True, kw_only=True)
class Profile:
    """Models, folders and views of one study profile, and the notebooks' settings under it."""

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
        out = [Extraction(model=m, folder=f, views=self.fit_views)
               for m in self.models for f in self.folders]
        out += [Extraction(model=m, folder=f, views=self.cross.views)
                for m in self.cross.models for f in self.cross.folders]
        out += list(self.extra) + self._robustness_extractions()
        return list(dict.fromkeys(out))

    def _robustness_extractions(self) -> list[Extraction]:
        """Notebook 04: its model on the cue-conflict sets and on corrupted copies of a seeded
        subset of the held-out eval images."""
        rb = self.robustness
        cue = [Extraction(model=rb.model, folder=s, label_mode="folder")
               for s in CUE_CONFLICT_SETS]
        corr = [Extraction(model=rb.model, folder=rb.eval_folder, corruption=c, subset=rb.n_eval)
                for c in rb.corruption_names()]
        return cue + corr


def _robustness(smoke: bool, model: str = "efficientnet_lite0",
                eval_folder: str = "imagenet-val") -> RobustnessSettings:
    if smoke:
        return RobustnessSettings(model=model, seeds=(0,), strengths=(1.0,), steps=10,
                                  dep_lam_ratio=0.5, eval_folder=eval_folder, n_eval=100,
                                  corruptions=("gaussian_noise", "contrast"), severities=(3,))
    return RobustnessSettings(model=model, seeds=(0, 1, 2, 3, 4), strengths=(0.1, 1.0, 10.0),
                              steps=60, dep_lam_ratio=0.3, eval_folder=eval_folder, n_eval=300,
                              corruptions=CORRUPTIONS, severities=(1, 3, 5))


def _smoke() -> Profile:
    return Profile(
        name="smoke", models=("efficientnet_lite0",), folders=("imagenet-val", "imagenet-sample"),
        fit_views=0,
        single=SingleModelSettings(ks=(1, 3, 10), n_targets=300, n_boot=200, split_seeds=(0, 1),
                                   learning_sizes=(250, 500), learning_seeds=(0,),
                                   width_models=("efficientnet_lite0",), widths=(64, 256),
                                   width_ks=(10,), width_targets=200),
        cross=CrossModelSettings(models=("efficientnet_lite0", "efficientnet_lite1"),
                                 folders=("imagenet-val",), views=0, ks=(1, 3, 10), n_targets=300,
                                 n_boot=200),
        redundancy=RedundancySettings(subset_sizes=(10, 100, 1000), subset_seeds=(0,),
                                      lam_ratios=tuple(np.geomspace(0.5, 0.1, 3)), n_boot=2),
        robustness=_robustness(True))


def _default() -> Profile:
    return Profile(
        name="default", models=DEFAULT_MODELS, folders=("imagenet-val", "imagenet-sample"),
        fit_views=1,
        single=SingleModelSettings(ks=(1, 2, 3, 5, 10, 20, 50, 100, 300), n_targets=None,
                                   n_boot=1000, split_seeds=(0, 1, 2, 3, 4),
                                   learning_sizes=(125, 250, 500, 1000, 1800),
                                   learning_seeds=(0, 1, 2),
                                   width_models=("efficientnet_lite0", NARROW_MODEL,
                                                 TRANSFORMER),
                                   widths=(64, 128, 256, 384, 512, 768)),
        cross=CrossModelSettings(models=EMBEDDED_MODELS + RECIPE_PAIR + (TRANSFORMER,),
                                 folders=("imagenet-val", "imagenet-sample"), views=1,
                                 ks=(1, 3, 10, 30), n_targets=None, n_boot=1000,
                                 pairs=(*itertools.permutations(EMBEDDED_MODELS, 2),
                                        RECIPE_PAIR, RECIPE_PAIR[::-1],
                                        *((TRANSFORMER, m) for m in TRANSFORMER_PARTNERS),
                                        *((m, TRANSFORMER) for m in TRANSFORMER_PARTNERS))),
        redundancy=RedundancySettings(subset_sizes=(10, 30, 100, 300, 1000),
                                      subset_seeds=(0, 1, 2),
                                      lam_ratios=tuple(np.geomspace(0.7, 0.03, 10)), n_boot=10),
        robustness=_robustness(False))


def _full() -> Profile:
    root = os.environ.get("NEUDEP_IMAGENET")
    if not root:
        raise ValueError("profile 'full' needs NEUDEP_IMAGENET=/path/to/imagenet (a folder "
                         "with train/ and val/ in <wnid>/<image> layout)")
    models = tuple(os.environ.get("NEUDEP_MODELS", "resnet50,swin_tiny_patch4_window7_224")
                   .split(","))
    val = os.path.join(root, "val")
    return Profile(
        name="full", models=models, folders=(val,), fit_views=0,
        single=SingleModelSettings(ks=(1, 2, 3, 5, 10, 20, 50, 100), n_targets=None, n_boot=1000,
                                   split_seeds=(0, 1, 2, 3, 4), learning_sizes=(),
                                   learning_seeds=(), width_models=models[:1],
                                   widths=(64, 128, 256, 384, 512, 768)),
        cross=CrossModelSettings(models=models, folders=(val,), views=0, ks=(1, 3, 10, 30),
                                 n_targets=None, n_boot=1000),
        redundancy=RedundancySettings(subset_sizes=(10, 30, 100, 300, 1000),
                                      subset_seeds=(0, 1, 2),
                                      lam_ratios=tuple(np.geomspace(0.7, 0.03, 10)), n_boot=10),
        robustness=_robustness(False, models[0], val),
        extra=tuple(Extraction(model=m, folder=os.path.join(root, "train"), mode="moments")
                    for m in models))


_PROFILES = {"smoke": _smoke, "default": _default, "full": _full}


def get_profile(name: str) -> Profile:
    """The named profile (``smoke``, ``default`` or ``full``).

    Raises
    ------
    ValueError
        Unknown name, or ``full`` without ``$NEUDEP_IMAGENET``.
    """
    if name not in _PROFILES:
        raise ValueError(f"unknown profile {name!r}; expected one of {', '.join(_PROFILES)}")
    return _PROFILES[name]()


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
