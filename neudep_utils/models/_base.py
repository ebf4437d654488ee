"""What every model of the study is once loaded: a :class:`LoadedModel` with its :class:`Preprocess`.

A loaded model is either a PyTorch module (``kind="torch"``: the embedded EfficientNet-Lite models,
MobileNet v1, Darknet, timm hub models), run by ONNX Runtime after a one-off export or by PyTorch
itself, or a model file run by its own runtime (``kind="onnx"``: a user's ONNX classifier in ONNX
Runtime; ``kind="tflite"``: an int8 TensorFlow Lite model in LiteRT). The engines
(:mod:`.engines`) turn either into logits and penultimate features.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._io import sha256_file  # the package's one checksum of a file (re-exported)
from .litert import litert_head

__all__ = ["KINDS", "LoadedModel", "Preprocess", "sha256_file"]

#: How a loaded model is run: a PyTorch module, or a model file in its own runtime.
KINDS = ("torch", "onnx", "tflite")
#: How :meth:`Preprocess.eval_geometric` resizes.
RESIZE_MODES = ("shorter", "full")


@dataclass(frozen=True)
class Preprocess:
    """A model's preprocessing, split into a geometric PIL stage and a tensor stage.

    ``resize_mode``: ``"shorter"`` (the shorter side resized to ``input_size / crop_pct``, then a
    centre crop of ``input_size``) or ``"full"`` (the whole image resized to ``input_size`` x
    ``input_size``, aspect ratio not kept; ``crop_pct`` must be 1, e.g. Darknet).
    """

    input_size: int
    crop_pct: float
    interpolation: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize_mode: str = "shorter"

    def __post_init__(self) -> None:
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode must be one of {RESIZE_MODES}, got {self.resize_mode!r}")
        if self.resize_mode == "full" and self.crop_pct != 1.0:
            raise ValueError(f"resize_mode 'full' resizes the whole image (no crop): crop_pct must "
                             f"be 1.0, got {self.crop_pct}")

    def _interp(self):
        from torchvision.transforms import InterpolationMode

        return {"bicubic": InterpolationMode.BICUBIC, "bilinear": InterpolationMode.BILINEAR,
                "nearest": InterpolationMode.NEAREST}[self.interpolation]

    @property
    def resize_size(self) -> int:
        """Shorter-side size before the centre crop."""
        return int(self.input_size / self.crop_pct)

    def eval_geometric(self, img):
        """Resize the shorter side to ``input_size / crop_pct`` then centre-crop ``input_size``
        (``resize_mode="full"``: resize the whole image to ``input_size`` x ``input_size``)."""
        from torchvision import transforms as T

        if self.resize_mode == "full":
            return T.Resize((self.input_size, self.input_size), interpolation=self._interp())(img)
        return T.Compose([T.Resize(self.resize_size, interpolation=self._interp()),
                          T.CenterCrop(self.input_size)])(img)

    def aug_geometric(self, views):
        """Random resized crop (+ flip) at ``input_size`` for a :class:`~neudep_utils.images.ViewSpec`."""
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
        """JSON-able description (part of the cache key; ``resize_mode`` only when it is not the
        default ``shorter``, so that the keys of the other models stay as they were)."""
        d = {"input_size": self.input_size, "resize": self.resize_size,
             "crop_pct": self.crop_pct, "interpolation": self.interpolation,
             "mean": list(self.mean), "std": list(self.std)}
        if self.resize_mode != "shorter":
            d["resize_mode"] = self.resize_mode
        return d


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

    #: ``torch`` (``model`` is an ``nn.Module``), ``onnx`` or ``tflite`` (``file`` is the model
    #: file, run by its own runtime; ``model`` is ``None``)
    kind: str = "torch"
    file: Path | None = None
    #: architecture family (e.g. ``efficientnet``, ``mobilenet_v1``): cross-model pairs of one
    #: family share a design, not weights
    family: str = ""
    #: leading outputs of a model file dropped by its runner (1: the background class of a
    #: 1001-way ONNX model); ``num_classes`` counts the outputs kept
    dropped_outputs: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"model kind must be one of {KINDS}, got {self.kind!r}")
        if (self.kind == "torch") != (self.model is not None) or \
                (self.kind != "torch") != (self.file is not None):
            raise ValueError(f"a {self.kind!r} model needs "
                             + ("a torch module" if self.kind == "torch" else "a model file"))

    def logits_and_features(self, x):
        """Logits ``(B, num_classes)`` and pooled penultimate features ``(B, num_features)``
        of a PyTorch model (``kind == "torch"``)."""
        feats = self.model.forward_head(self.model.forward_features(x), pre_logits=True)
        return self.model.get_classifier()(feats), feats

    def classifier_weights(self):
        """The logit layer as float64 ``(W, b)``, ``W`` of shape ``(num_classes,
        num_features)``: ``logits = features @ W.T + b`` (exactly for a PyTorch model; for a
        TFLite model the dequantized int8 weights, up to the rounding of the logits)."""
        if self.kind == "torch":
            head = self.model.get_classifier()
            return (head.weight.detach().cpu().double().numpy(),
                    head.bias.detach().cpu().double().numpy())
        if self.kind == "tflite":
            W, b = litert_head(Path(self.file).read_bytes(), str(self.file))
            drop = W.shape[0] - self.num_classes
            return np.ascontiguousarray(W[drop:]), b[drop:].copy()
        raise NotImplementedError(f"classifier_weights of a {self.kind!r} model")
