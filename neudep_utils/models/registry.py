"""Model names -> loaders: the registry every architecture module adds itself to.

Each architecture module (:mod:`.efficientnet`, :mod:`.mobilenet`, ...) calls :func:`register`
for the models it builds; this module imports none of them (``neudep_utils.models`` imports them
all, so importing the package fills the registry). A name that is not registered goes to the
fallback loader, timm's hub (:mod:`.hub`).

Example::

    from neudep_utils.models import load_model, registered
    registered()                      # ('efficientnet_lite0', ..., 'mobilenet_v1_075', ...)
    lm = load_model("lite0")          # aliases resolve to the canonical name
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ModelError
from ._base import LoadedModel

__all__ = ["ARCHITECTURES", "ModelSpec", "architecture", "canonical_name", "get_spec", "label",
           "load_model", "load_model_cached", "recipe", "register", "register_fallback",
           "registered", "same_family", "short_name", "weights_checksum"]


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: how to load it and what it is.

    Parameters
    ----------
    name : str
        Canonical name (``efficientnet_lite0``), used in cache keys and results files.
    load : callable
        ``load() -> LoadedModel``.
    checksum : callable
        ``checksum() -> str``, the weights' sha256 without building the network where possible
        (it equals ``load().weights_sha256``).
    description : str
        One line: architecture, training, where the weights come from.
    family : str
        Architecture family (``efficientnet``, ``mobilenet_v1``, ...).
    width : int
        The penultimate feature width ``d`` (the logit layer's input).
    aliases : tuple of str
        Other accepted names (``lite0``).
    short : str
        Label in tables and result keys (``lite0``).
    architecture : str
        The kind of network, ``"cnn"`` or ``"transformer"`` (:data:`ARCHITECTURES`; ``""``:
        not declared). Cross-model pairs of two kinds are CNN-transformer pairs (C2).
    recipe : str
        Training data and recipe in a few words (``ImageNet-1k``, ``ImageNet-21k pretrained,
        1k fine-tuned``); pairs of one family and two recipes isolate the recipe.
    note : str
        What a table or caption must show beside the model's name (:func:`label`), e.g. a
        recipe unlike the paper's; ``""`` for none.
    """

    name: str
    load: Callable[[], LoadedModel]
    checksum: Callable[[], str]
    description: str
    family: str
    width: int
    aliases: tuple[str, ...] = ()
    short: str = ""
    architecture: str = ""
    recipe: str = ""
    note: str = ""

    def __post_init__(self) -> None:
        if self.architecture not in ("", *ARCHITECTURES):
            raise ValueError(f"model {self.name!r}: architecture must be one of "
                             f"{ARCHITECTURES} (or '' when not declared), got "
                             f"{self.architecture!r}")


#: The architecture kinds a model may declare (:attr:`ModelSpec.architecture`).
ARCHITECTURES = ("cnn", "transformer")


_REGISTRY: dict[str, ModelSpec] = {}
_ALIASES: dict[str, str] = {}
_FALLBACK: list[tuple[Callable[..., LoadedModel], Callable[[str], str]]] = []


def register(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to the registry (its name and aliases must be new); returns it."""
    for n in (spec.name, *spec.aliases):
        if n in _REGISTRY or n in _ALIASES:
            raise ValueError(f"model name {n!r} is registered twice")
    _REGISTRY[spec.name] = spec
    for a in spec.aliases:
        _ALIASES[a] = spec.name
    return spec


def register_fallback(load: Callable[..., LoadedModel], checksum: Callable[[str], str]) -> None:
    """Set the loader of names that are not registered (timm's hub): ``load(name,
    hub_timeout=...)`` and ``checksum(name)``."""
    _FALLBACK[:] = [(load, checksum)]


def registered() -> tuple[str, ...]:
    """Canonical names of every registered model, in registration order."""
    return tuple(_REGISTRY)


def canonical_name(name: str) -> str:
    """Resolve aliases (``lite0`` -> ``efficientnet_lite0``); other names are returned as given."""
    return _ALIASES.get(name, name)


def get_spec(name: str) -> ModelSpec | None:
    """The :class:`ModelSpec` of a registered name or alias, else ``None`` (a hub model)."""
    return _REGISTRY.get(canonical_name(name))


def load_model(name: str, hub_timeout: float = 3.0) -> LoadedModel:
    """Load a classifier in eval mode with its preprocessing.

    Parameters
    ----------
    name : str
        A registered model or alias (:func:`registered`), or any timm model name with
        pretrained weights (needs the Hugging Face hub once, or its local cache).
    hub_timeout : float, default 3.0
        Seconds allowed to reach the hub before a hub model fails with
        :class:`~neudep_utils.errors.HubUnavailableError`.

    Returns
    -------
    LoadedModel
        The model in eval mode, its preprocessing, weights checksum and source.

    Raises
    ------
    ModelError
        Unknown name, or weights that are missing or do not match the architecture.
    """
    spec = get_spec(name)
    if spec is not None:
        return spec.load()
    if not _FALLBACK:
        raise ModelError(f"unknown model {name!r}; registered: {', '.join(_REGISTRY)}")
    return _FALLBACK[0][0](canonical_name(name), hub_timeout=hub_timeout)


@functools.lru_cache(maxsize=3)
def load_model_cached(name: str) -> LoadedModel:
    """:func:`load_model`, once per process and canonical name (extraction of several folders
    reuses the model)."""
    return load_model(name)


def weights_checksum(name: str) -> str:
    """The ``weights_sha256`` :func:`load_model` reports, cheaply where possible (registered
    models hash their weight files without building the network; hub models are loaded)."""
    spec = get_spec(name)
    if spec is not None:
        return spec.checksum()
    if not _FALLBACK:
        raise ModelError(f"unknown model {name!r}; registered: {', '.join(_REGISTRY)}")
    return _FALLBACK[0][1](canonical_name(name))


def short_name(model: str) -> str:
    """A model's short label in tables and keys (``efficientnet_lite0`` -> ``lite0``)."""
    spec = get_spec(model)
    if spec is not None and spec.short:
        return spec.short
    return canonical_name(model).replace("efficientnet_", "")


def _family(model: str) -> str:
    spec = get_spec(model)
    if spec is not None:
        return spec.family
    m = canonical_name(model)
    if m.startswith(("efficientnet", "tf_efficientnet")):
        return "efficientnet"
    return m.split("_")[0].rstrip("0123456789")


def same_family(a: str, b: str) -> bool:
    """Whether two models share an architecture family (registered: their ``family``; hub
    models: the name up to the first underscore, digits stripped, e.g. ``resnet``)."""
    return _family(a) == _family(b)


#: timm modules whose models are transformers: how a hub model (not registered, so without a
#: declared :attr:`ModelSpec.architecture`) is classified, from the module timm registered it in.
TIMM_TRANSFORMER_MODULES = frozenset({
    "vision_transformer", "vision_transformer_hybrid", "vision_transformer_relpos",
    "vision_transformer_sam", "swin_transformer", "swin_transformer_v2",
    "swin_transformer_v2_cr", "deit", "beit", "eva", "cait", "xcit", "pvt_v2", "twins",
    "crossvit", "tnt", "levit", "mvitv2", "hiera", "vitamin", "volo"})
#: timm modules whose models are CNNs (hub models of the full profile and the paper's families).
TIMM_CNN_MODULES = frozenset({
    "resnet", "resnetv2", "efficientnet", "mobilenetv3", "mobilenetv4", "regnet", "convnext",
    "densenet", "vgg", "inception_v3", "inception_v4", "dla", "ghostnet", "rexnet", "dpn",
    "senet", "xception", "darknet", "cspnet", "res2net", "resnest", "mnasnet", "hrnet"})


def architecture(model: str) -> str:
    """A model's architecture kind, ``"cnn"`` or ``"transformer"`` (``""`` when unknown).

    Registered models: their declared :attr:`ModelSpec.architecture`. Hub models: the timm
    module that registers the name (:data:`TIMM_TRANSFORMER_MODULES`, :data:`TIMM_CNN_MODULES`),
    without loading any weights.
    """
    spec = get_spec(model)
    if spec is not None:
        return spec.architecture
    try:
        from timm.models import get_arch_name, model_entrypoint

        module = model_entrypoint(get_arch_name(canonical_name(model))).__module__
    except Exception:  # noqa: BLE001 - timm missing, or not a timm name: unknown
        return ""
    module = module.rsplit(".", 1)[-1]
    if module in TIMM_TRANSFORMER_MODULES:
        return "transformer"
    return "cnn" if module in TIMM_CNN_MODULES else ""


def recipe(model: str) -> str:
    """A registered model's training recipe (:attr:`ModelSpec.recipe`; ``""`` for hub models)."""
    spec = get_spec(model)
    return spec.recipe if spec is not None else ""


def label(model: str) -> str:
    """A model's name for tables and captions: :func:`short_name`, followed by its
    :attr:`ModelSpec.note` in parentheses where it has one (``vit_ti16 (ImageNet-21k
    pretrained, 1k fine-tuned)``)."""
    spec = get_spec(model)
    note = spec.note if spec is not None else ""
    return f"{short_name(model)} ({note})" if note else short_name(model)
