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
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import ClassVar

import numpy as np

from ._params import NotebookSettings, param
from .images import MACAW_WNID, imagenet_classes
from .images.corruptions import corruption_name
from .images.taxonomy import load_taxonomy
from .verdicts import rules

__all__ = [
    "CORRUPTIONS",
    "CUE_CONFLICT_SETS",
    "EMBEDDED_MODELS",
    "NARROW_MODEL",
    "TRANSFORMER",
    "TRANSFORMER_PARTNERS",
    "CrossModelSettings",
    "Extraction",
    "NOTEBOOK_SETTINGS",
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


def _reading_ks(ks: tuple[int, ...], k_headline: int) -> tuple[int, ...]:
    """The readings' support sizes: the usual four where fitted, and always the headline k."""
    return tuple(sorted({k for k in (10, 50, 100, 300) if k in ks} | {k_headline}))


def _union_k(ks: tuple[int, ...], k: int) -> tuple[int, ...]:
    return tuple(sorted({int(x) for x in ks} | {int(k)}))


_MOMENT = {True: "centred covariance + intercept", False: "second moment E[ff^T], no intercept"}


@dataclass(frozen=True, kw_only=True)
class SingleModelSettings(NotebookSettings):
    """Notebook 01 (C1, C6a): every parameter of the notebook, one field each (name, type,
    profile's value, doc). The rules the notebook states and applies are built from these
    values (:attr:`c1_rule`, :attr:`c6a_rule`)."""

    NOTEBOOK: ClassVar[str] = "01_single_model"

    profile: str = param("smoke (CI), default (the embedded study) or full (ImageNet, hub)")
    models: tuple[str, ...] = param("the models whose logits are studied")
    folders: tuple[str, ...] = param("image folders (names under the data root, or paths)")
    fit_views: int = param("augmented views per image added to the fit rows (0: centre only)")
    fit_source: str = param('"crossfit" (folds of the folders) or "moments" (full profile)',
                            "crossfit")
    n_folds: int = param("image-level folds of the cross-fitting", 2)
    split_seed: int = param("seed of the folds", 0)
    center: bool = param("True: centred covariance + intercept; False: second moment",
                         True)
    ks: tuple[int, ...] = param("support sizes k fitted (the headline k is added)")
    k_headline: int = param('"a few" partners: the k the C1 verdict rests on', rules.C1.k_headline)
    n_targets: int | None = param("number of targets (all 1000 if unset; fewer: seeded, "
                                  "keeps macaw)", None)
    target_seed: int = param("seed of the target draw", 0)
    baseline_seed: int = param("seed of the random-partner baseline", 0)
    n_boot: int = param("bootstrap replicates of the intervals")
    near_distance: int = param("WordNet distance counted as semantically near (C6a)",
                               rules.C6A.near_distance)
    family: str = param("WordNet family of the dependency graph", "bird")
    split_seeds: tuple[int, ...] = param("image-level split seeds of the pipeline-level spread")
    learning_sizes: tuple[int, ...] = param("learning curve: numbers of fit images")
    learning_seeds: tuple[int, ...] = param("learning curve: seeds")
    width_models: tuple[str, ...] = param("width curve: models whose logit layer is truncated")
    widths: tuple[int, ...] = param("width curve: ranks d' of the truncated logit layer")
    width_ks: tuple[int, ...] = param("width curve: support sizes", (10, 50))
    width_targets: int | None = param("width curve: number of targets (None: all 1000)", None)

    def normalize(self) -> dict:
        """The headline k joins the k grid; width models outside ``models`` are dropped."""
        return {"ks": _union_k(self.ks, self.k_headline),
                "width_models": tuple(m for m in self.width_models if m in self.models)}

    @property
    def c1_rule(self) -> rules.C1Rule:
        """The C1 rule at this run's headline k."""
        return replace(rules.C1, k_headline=self.k_headline)

    @property
    def c6a_rule(self) -> rules.C6aRule:
        """The C6a rule at this run's near distance."""
        return replace(rules.C6A, near_distance=self.near_distance)

    @property
    def reading_ks(self) -> tuple[int, ...]:
        """The support sizes of the secondary readings (10, 50, 100, 300 where fitted, and k_headline)."""
        return _reading_ks(self.ks, self.k_headline)

    @property
    def moment(self) -> str:
        """Which moment matrix the dependencies are fitted on, for titles."""
        return _MOMENT[self.center]

    @property
    def macaw(self) -> int:
        """The paper's example target's class index."""
        return imagenet_classes().index(MACAW_WNID)

    @cached_property
    def targets(self) -> np.ndarray:
        """The target categories (sorted): all, or a seeded draw keeping macaw and the
        family."""
        fam = load_taxonomy().family(self.family)
        return select_targets(self.n_targets, self.target_seed, np.union1d([self.macaw], fam))

    @cached_property
    def short(self) -> dict[str, str]:
        """Each model's short label."""
        return _short_names(self.models)


@dataclass(frozen=True, kw_only=True)
class CrossModelSettings(NotebookSettings):
    """Notebook 02 (C2, C6b): every parameter of the notebook, one field each. The C2 rule is
    built from them (:attr:`c2_rule`)."""

    NOTEBOOK: ClassVar[str] = "02_cross_model"

    profile: str = param("smoke (CI), default (the embedded study) or full (ImageNet, hub)")
    models: tuple[str, ...] = param("the models paired (may differ from notebook 01's)")
    folders: tuple[str, ...] = param("image folders")
    views: int = param("augmented views per image added to the fit rows")
    pairs: tuple[tuple[str, str], ...] | None = param(
        "ordered pairs (A, B): A's logit from B's (unset: all pairs)", None)
    n_folds: int = param("image-level folds (those of notebook 01)", 2)
    split_seed: int = param("seed of the folds", 0)
    split_seeds: tuple[int, ...] = param("split seeds of the pipeline-level spread")
    center: bool = param("True: centred covariance + intercept; False: second moment", True)
    ks: tuple[int, ...] = param("support sizes k (the headline k is added)")
    k_headline: int = param('"a few" partners: the k the C2 verdict rests on', rules.C2.k_headline)
    n_targets: int | None = param("number of targets (all 1000 if unset)", None)
    target_seed: int = param("seed of the target draw", 0)
    baseline_seed: int = param("seed of the random-partner baseline", 0)
    n_hidden: int = param("classes hidden from A's head (C6b)", 100)
    hidden_seed: int = param("seed of the hidden classes", 0)
    n_boot: int = param("bootstrap replicates of the intervals")
    cnn_transformer: tuple[str, str] = param(
        "the CNN-transformer pair the full profile runs with hub access",
        ("resnet50", "swin_tiny_patch4_window7_224"))

    def normalize(self) -> dict:
        """The headline k joins the k grid; ``pairs`` is every ordered pair of the models when
        None, and keeps only pairs of the models."""
        pairs = self.pairs or tuple(itertools.permutations(self.models, 2))
        return {"ks": _union_k(self.ks, self.k_headline),
                "pairs": tuple((a, b) for a, b in pairs
                               if a in self.models and b in self.models)}

    @property
    def c2_rule(self) -> rules.C2Rule:
        """The C2 rule at this run's headline k."""
        return replace(rules.C2, k_headline=self.k_headline)

    @property
    def ks_same(self) -> tuple[int, ...]:
        """The ks fitted with B's own category allowed (up to the headline k)."""
        return tuple(k for k in self.ks if k <= self.k_headline)

    @property
    def reading_ks(self) -> tuple[int, ...]:
        """The support sizes of the secondary readings (10, 50, 100, 300 where fitted, and k_headline)."""
        return _reading_ks(self.ks, self.k_headline)

    @property
    def moment(self) -> str:
        """The moment matrix, for titles."""
        return _MOMENT[self.center]

    @property
    def macaw(self) -> int:
        """The paper's example target's class index."""
        return imagenet_classes().index(MACAW_WNID)

    @cached_property
    def targets(self) -> np.ndarray:
        """The target categories (sorted; a seeded draw keeps macaw)."""
        return select_targets(self.n_targets, self.target_seed, np.array([self.macaw]))

    @cached_property
    def short(self) -> dict[str, str]:
        """Each model's short label."""
        return _short_names(self.models)

    def label(self, a: str, b: str) -> str:
        """``lite0_from_lite1``: the pair's key in the results file."""
        return f"{self.short[a]}_from_{self.short[b]}"


@dataclass(frozen=True, kw_only=True)
class RedundancySettings(NotebookSettings):
    """Notebook 03 (C3, C4, C5): every parameter of the notebook, one field each. The C4 and
    C5 rules are built from them (:attr:`c4_rule`, :attr:`c5_rule`)."""

    NOTEBOOK: ClassVar[str] = "03_sparsity_redundancy"

    profile: str = param("smoke (CI), default (the embedded study) or full (ImageNet, hub)")
    models: tuple[str, ...] = param("the models")
    folders: tuple[str, ...] = param("image folders")
    fit_views: int = param("augmented views per image added to the fit rows")
    split_seed: int = param("seed of the 2-fold split", 0)
    split_seeds: tuple[int, ...] = param("split seeds of the pipeline-level spread (first "
                                         "model)")
    subset_sizes: tuple[int, ...] = param("numbers of categories K (min and max: C4's rule)")
    subset_seeds: tuple[int, ...] = param("seeds of the category subsets")
    lam_ratios: tuple[float, ...] = param("the CovLasso path's lam / lam_max grid")
    fidelity_threshold: float = param('held-out 1 - R^2 that counts as "a dependency" (C4)',
                                      rules.C4.threshold)
    sparse_k: int = param('C5: "a few" partners (median support)', rules.C5.sparse_k)
    boot_lam_ratio: float = param("lam / lam_max of the support-stability bootstrap", 0.2)
    n_boot_supports: int = param("bootstrap resamples of the fit images (support stability)")
    n_boot: int = param("bootstrap replicates of the intervals", 1000)
    null_seed: int = param("seed of C4's null covariance", 0)

    @property
    def c4_rule(self) -> rules.C4Rule:
        """The C4 rule with this run's subset sizes and fidelity threshold."""
        return replace(rules.C4, k_small=min(self.subset_sizes), k_full=max(self.subset_sizes),
                       threshold=self.fidelity_threshold)

    @property
    def c5_rule(self) -> rules.C5Rule:
        """The C5 rule with this run's sparse k and fidelity threshold."""
        return replace(rules.C5, sparse_k=self.sparse_k, threshold=self.fidelity_threshold)

    @property
    def macaw(self) -> int:
        """The paper's example target's class index."""
        return imagenet_classes().index(MACAW_WNID)

    @cached_property
    def short(self) -> dict[str, str]:
        """Each model's short label."""
        return _short_names(self.models)


@dataclass(frozen=True, kw_only=True)
class RobustnessSettings(NotebookSettings):
    """Notebook 04 (C6c): every parameter of the notebook, one field each. The C6c rule is
    built from them (:attr:`c6c_rule`)."""

    NOTEBOOK: ClassVar[str] = "04_robustness"

    profile: str = param("smoke (CI), default (the embedded study) or full (ImageNet, hub)")
    model: str = param("the model whose classifier head is fine-tuned on frozen features")
    folders: tuple[str, ...] = param("image folders of the fit images")
    fit_views: int = param("augmented views per fit image")
    seeds: tuple[int, ...] = param("training seeds")
    strengths: tuple[float, ...] = param("the regularizer strength grid (shared)")
    steps: int = param("optimizer steps")
    lr: float = param("learning rate", 3e-4)
    batch: int = param("minibatch size", 256)
    dep_lam_ratio: float = param("lam / lam_max of the dependencies the regularizers use")
    val_frac: float = param("share of the fit images that picks the strength", 0.2)
    extend_grid: int = param("times the grid is extended tenfold when its largest strength "
                             "wins", 2)
    clean_drop_tolerance: float = param("C6c: largest clean top-1 cost accepted",
                                        rules.C6C.clean_drop_tolerance)
    eval_folder: str = param("folder of the held-out eval images")
    n_eval: int = param("eval images (a seeded subset) under every corruption")
    corruptions: tuple[str, ...] = param("ImageNet-C corruption types")
    severities: tuple[int, ...] = param("corruption severities")

    @property
    def c6c_rule(self) -> rules.C6cRule:
        """The C6c rule at this run's clean-drop tolerance."""
        return replace(rules.C6C, clean_drop_tolerance=self.clean_drop_tolerance)

    def corruption_names(self) -> list[str]:
        """Cache-key names of every corruption x severity evaluated."""
        return [corruption_name(k, s) for k in self.corruptions for s in self.severities]


#: Each notebook's settings class, by notebook stem.
NOTEBOOK_SETTINGS: dict[str, type[NotebookSettings]] = {
    c.NOTEBOOK: c for c in (SingleModelSettings, CrossModelSettings, RedundancySettings,
                            RobustnessSettings)}


def _short_names(models: tuple[str, ...]) -> dict[str, str]:
    # the model registry imports torch: loaded only when a notebook asks for labels
    from .models import short_name  # noqa: PLC0415 - heavy (torch)

    return {m: short_name(m) for m in models}


@dataclass(frozen=True, kw_only=True)
class Profile:
    """Models, folders and views of one study profile, and each notebook's settings under it
    (the per-profile values of every notebook parameter)."""

    name: str
    models: tuple[str, ...]
    folders: tuple[str, ...]
    fit_views: int
    single: SingleModelSettings
    cross: CrossModelSettings
    redundancy: RedundancySettings
    robustness: RobustnessSettings
    extra: tuple[Extraction, ...] = field(default=())

    def notebook(self, stem: str) -> NotebookSettings:
        """The settings of notebook ``stem`` (``"01_single_model"``, ...) under this profile."""
        by_stem = {s.NOTEBOOK: s for s in (self.single, self.cross, self.redundancy,
                                            self.robustness)}
        if stem not in by_stem:
            raise KeyError(f"no notebook {stem!r}; known: {', '.join(by_stem)}")
        return by_stem[stem]

    def extractions(self) -> list[Extraction]:
        """Every cache entry the notebooks of this profile read (each listed once)."""
        out = [Extraction(model=m, folder=f, views=self.fit_views)
               for m in self.models for f in self.folders]
        out += [Extraction(model=m, folder=f, views=self.cross.views)
                for m in self.cross.models for f in self.cross.folders]
        out += list(self.extra) + self._robustness_extractions()
        return list(dict.fromkeys(out))

    def _robustness_extractions(self) -> list[Extraction]:
        """Notebook 04: its model's fit images, the cue-conflict sets and corrupted copies of a
        seeded subset of the held-out eval images."""
        rb = self.robustness
        fit = [Extraction(model=rb.model, folder=f, views=rb.fit_views) for f in rb.folders]
        cue = [Extraction(model=rb.model, folder=s, label_mode="folder")
               for s in CUE_CONFLICT_SETS]
        corr = [Extraction(model=rb.model, folder=rb.eval_folder, corruption=c, subset=rb.n_eval)
                for c in rb.corruption_names()]
        return fit + cue + corr


def _robustness(name: str, smoke: bool, folders: tuple[str, ...], fit_views: int,
                model: str = "efficientnet_lite0",
                eval_folder: str = "imagenet-val") -> RobustnessSettings:
    common = {"profile": name, "model": model, "folders": folders, "fit_views": fit_views,
              "eval_folder": eval_folder}
    if smoke:
        return RobustnessSettings(**common, seeds=(0,), strengths=(1.0,), steps=10,
                                  dep_lam_ratio=0.5, n_eval=100,
                                  corruptions=("gaussian_noise", "contrast"), severities=(3,))
    return RobustnessSettings(**common, seeds=(0, 1, 2, 3, 4), strengths=(0.1, 1.0, 10.0),
                              steps=60, dep_lam_ratio=0.3, n_eval=300,
                              corruptions=CORRUPTIONS, severities=(1, 3, 5))


def _smoke() -> Profile:
    name, models, folders, views = ("smoke", ("efficientnet_lite0",),
                                    ("imagenet-val", "imagenet-sample"), 0)
    return Profile(
        name=name, models=models, folders=folders, fit_views=views,
        single=SingleModelSettings(profile=name, models=models, folders=folders,
                                   fit_views=views, ks=(1, 3, 10), n_targets=300, n_boot=200,
                                   split_seeds=(0, 1), learning_sizes=(250, 500),
                                   learning_seeds=(0,), width_models=("efficientnet_lite0",),
                                   widths=(64, 256), width_ks=(10,), width_targets=200),
        cross=CrossModelSettings(profile=name,
                                 models=("efficientnet_lite0", "efficientnet_lite1"),
                                 folders=("imagenet-val",), views=0, split_seeds=(0, 1),
                                 ks=(1, 3, 10), n_targets=300, n_boot=200),
        redundancy=RedundancySettings(profile=name, models=models, folders=folders,
                                      fit_views=views, split_seeds=(0, 1),
                                      subset_sizes=(10, 100, 1000), subset_seeds=(0,),
                                      lam_ratios=tuple(float(x) for x in
                                                       np.geomspace(0.5, 0.1, 3)),
                                      n_boot_supports=2),
        robustness=_robustness(name, True, folders, views))


def _default() -> Profile:
    name, folders, views = "default", ("imagenet-val", "imagenet-sample"), 1
    split_seeds = (0, 1, 2, 3, 4)
    return Profile(
        name=name, models=DEFAULT_MODELS, folders=folders, fit_views=views,
        single=SingleModelSettings(profile=name, models=DEFAULT_MODELS, folders=folders,
                                   fit_views=views, ks=(1, 2, 3, 5, 10, 20, 50, 100, 300),
                                   n_boot=1000, split_seeds=split_seeds,
                                   learning_sizes=(125, 250, 500, 1000, 1800),
                                   learning_seeds=(0, 1, 2),
                                   width_models=("efficientnet_lite0", NARROW_MODEL,
                                                 TRANSFORMER),
                                   widths=(64, 128, 256, 384, 512, 768)),
        cross=CrossModelSettings(profile=name, models=EMBEDDED_MODELS + RECIPE_PAIR + (TRANSFORMER,),
                                 folders=folders, views=views, split_seeds=split_seeds,
                                 ks=(1, 3, 10, 30), n_boot=1000,
                                 pairs=(*itertools.permutations(EMBEDDED_MODELS, 2),
                                        RECIPE_PAIR, RECIPE_PAIR[::-1],
                                        *((TRANSFORMER, m) for m in TRANSFORMER_PARTNERS),
                                        *((m, TRANSFORMER) for m in TRANSFORMER_PARTNERS))),
        redundancy=RedundancySettings(profile=name, models=DEFAULT_MODELS, folders=folders,
                                      fit_views=views, split_seeds=split_seeds,
                                      subset_sizes=(10, 30, 100, 300, 1000),
                                      subset_seeds=(0, 1, 2),
                                      lam_ratios=tuple(float(x) for x in
                                                       np.geomspace(0.7, 0.03, 10)),
                                      n_boot_supports=10),
        robustness=_robustness(name, False, folders, views))


def _full() -> Profile:
    root = os.environ.get("NEUDEP_IMAGENET")
    if not root:
        raise ValueError("profile 'full' needs NEUDEP_IMAGENET=/path/to/imagenet (a folder "
                         "with train/ and val/ in <wnid>/<image> layout)")
    name = "full"
    models = tuple(os.environ.get("NEUDEP_MODELS", "resnet50,swin_tiny_patch4_window7_224")
                   .split(","))
    val = os.path.join(root, "val")
    folders, split_seeds = (val,), (0, 1, 2, 3, 4)
    return Profile(
        name=name, models=models, folders=folders, fit_views=0,
        single=SingleModelSettings(profile=name, models=models, folders=folders, fit_views=0,
                                   fit_source="moments", ks=(1, 2, 3, 5, 10, 20, 50, 100),
                                   n_boot=1000, split_seeds=split_seeds, learning_sizes=(),
                                   learning_seeds=(), width_models=models[:1],
                                   widths=(64, 128, 256, 384, 512, 768)),
        cross=CrossModelSettings(profile=name, models=models, folders=folders, views=0,
                                 split_seeds=split_seeds, ks=(1, 3, 10, 30), n_boot=1000),
        redundancy=RedundancySettings(profile=name, models=models, folders=folders,
                                      fit_views=0, split_seeds=split_seeds,
                                      subset_sizes=(10, 30, 100, 300, 1000),
                                      subset_seeds=(0, 1, 2),
                                      lam_ratios=tuple(float(x) for x in
                                                       np.geomspace(0.7, 0.03, 10)),
                                      n_boot_supports=10),
        robustness=_robustness(name, False, folders, 0, models[0], val),
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
