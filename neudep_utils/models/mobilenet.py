"""MobileNet v1 (width 0.75, 224 x 224) in plain PyTorch, loaded from a TensorFlow.js layers model.

The weights live outside the repository, in ``$NEUDEP_MODELS_DIR/mobilenet_v1_0.75_224/``
(default ``../shared/models`` beside the checkout; see that folder's README): a Keras 2.1.4
topology in ``model.json`` and raw little-endian float32 tensors in ``groupN-shard1of1`` files,
concatenated in the order of ``weightsManifest``, with a ``SHA256SUMS`` file.

:func:`load_mobilenet` checks, in order, and raises :class:`~neudep_utils.errors.ModelError`
naming the file and the fix on any failure:

1. the folder, ``model.json`` and ``SHA256SUMS`` exist; ``SHA256SUMS`` lists ``model.json`` and
   every shard the manifest names, and every listed file has that checksum;
2. the Keras topology is MobileNet v1 0.75 exactly as built here (every layer's class, filters,
   kernel size, strides, padding, activation, BatchNormalization epsilon, in the same order);
3. every shard file holds exactly the bytes its manifest group declares (float32 only, no
   quantisation);
4. every manifest tensor has the Keras shape of the layer it belongs to, and every tensor is
   consumed exactly once, filling every parameter and BatchNorm buffer of the network.

The network mirrors the Keras graph: ``conv1`` (3x3, stride 2) then 13 blocks of depthwise 3x3
conv + BN + ReLU6 and pointwise 1x1 conv + BN + ReLU6, global average pooling (the
``d = 768`` penultimate feature) and ``conv_preds``, a 1x1 conv with bias that is an
``nn.Linear(768, 1000)`` here. Dropout (rate 0.001, training only) and the final softmax are left
out: the model returns logits. Every convolution uses TensorFlow's "same" padding, which pads
``max((ceil(H/s) - 1) * s + k - H, 0)`` rows in total, the smaller half at the top/left: for a
stride-2 3x3 conv on an even input that is 0 rows on top and 1 at the bottom (PyTorch's symmetric
``padding=1`` would shift every stride-2 feature map by one pixel).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelError
from . import tfjs
from ._base import LoadedModel, Preprocess
from .registry import ModelSpec, register
from .tfjs import default_models_dir

#: Folder name of the weights inside the models directory.
FOLDER_NAME = "mobilenet_v1_0.75_224"
ALPHA = 0.75
#: (stride of the depthwise conv, output channels at alpha = 1) of the 13 blocks.
BLOCKS = ((1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512), (1, 512), (1, 512),
          (1, 512), (1, 512), (1, 512), (2, 1024), (1, 1024))
BN_EPS = 1e-3
NUM_CLASSES = 1000
#: RGB scaled to [-1, 1] (x / 127.5 - 1), centre crop 224 of the image resized to 256 (87.5%).
PREPROCESS = Preprocess(input_size=224, crop_pct=0.875, interpolation="bilinear",
                        mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
_RESTORE = ("restore the folder (`make data` downloads and verifies it from its origin), or point "
            "NEUDEP_MODELS_DIR at a models folder holding an intact " + FOLDER_NAME + "/")


def weights_folder(models_dir: str | os.PathLike[str] | None = None) -> Path:
    """The MobileNet weights folder (``<models_dir>/mobilenet_v1_0.75_224``); it must exist."""
    root = Path(models_dir).expanduser() if models_dir is not None else default_models_dir()
    folder = root / FOLDER_NAME
    if not folder.is_dir():
        raise ModelError(
            f"MobileNet v1 0.75 weights not found: {folder} is not a folder. Set NEUDEP_MODELS_DIR "
            f"to the folder holding {FOLDER_NAME}/ (default ../shared/models beside the checkout), or run "
            "`make data` to download it")
    return folder


# --------------------------------------------------------------------------------------------
# Network
# --------------------------------------------------------------------------------------------


def tf_same_pad(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """Pad an NCHW tensor as TensorFlow's ``padding="same"`` does (extra row/column at the
    bottom/right when the total is odd)."""
    pads = []
    for size in (x.shape[-1], x.shape[-2]):  # F.pad order: last dim first
        total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
        pads += [total // 2, total - total // 2]
    if not any(pads):
        return x
    return F.pad(x, pads)


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` (no bias) with TensorFlow "same" padding computed from the input size."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__(cin, cout, kernel, stride=stride, padding=0, groups=groups, bias=False)
        self.tf_kernel, self.tf_stride = kernel, stride
        if stride == 1 and kernel % 2 == 1:
            # an odd kernel at stride 1 pads (k - 1) / 2 on each side: symmetric, done by the conv
            self.padding = (kernel // 2, kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.tf_stride != 1 or self.tf_kernel % 2 == 0:
            x = tf_same_pad(x, self.tf_kernel, self.tf_stride)
        return super().forward(x)


class ConvBNReLU6(nn.Sequential):
    """Convolution (TF "same"), BatchNorm (eps 0.001), ReLU6."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, depthwise: bool):
        super().__init__()
        self.conv = SameConv2d(cin, cout, kernel, stride, groups=cin if depthwise else 1)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.act = nn.ReLU6(inplace=True)


def _width(c: int, alpha: float) -> int:
    return int(c * alpha)


class MobileNetV1(nn.Module):
    """MobileNet v1 with a width multiplier, returning logits (no softmax).

    The timm-like interface used by :mod:`neudep_utils.cache`: :meth:`forward_features` (the last
    feature map), :meth:`forward_head` (``pre_logits=True``: the pooled ``num_features`` vector),
    :meth:`get_classifier` (an ``nn.Linear(num_features, num_classes)`` with bias).
    """

    def __init__(self, alpha: float = ALPHA, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.alpha = alpha
        c = _width(32, alpha)
        layers: dict[str, nn.Module] = {"conv1": ConvBNReLU6(3, c, 3, 2, depthwise=False)}
        for i, (stride, base) in enumerate(BLOCKS, start=1):
            cout = _width(base, alpha)
            layers[f"conv_dw_{i}"] = ConvBNReLU6(c, c, 3, stride, depthwise=True)
            layers[f"conv_pw_{i}"] = ConvBNReLU6(c, cout, 1, 1, depthwise=False)
            c = cout
        self.features = nn.Sequential()
        for name, mod in layers.items():
            self.features.add_module(name, mod)
        self.num_features = c
        self.num_classes = num_classes
        self.classifier = nn.Linear(c, num_classes, bias=True)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Last feature map ``(B, num_features, H/32, W/32)``."""
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Global average pooling, then (unless ``pre_logits``) the classifier."""
        x = x.mean(dim=(2, 3))
        return x if pre_logits else self.classifier(x)

    def get_classifier(self) -> nn.Linear:
        """The logit layer (Keras ``conv_preds``)."""
        return self.classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def keras_layers(self) -> list[dict]:
        """The Keras layers this network corresponds to, in graph order, with the configuration
        fields :func:`check_topology` compares (``class_name``, ``name`` and config values)."""
        out: list[dict] = []
        for name, blk in self.features.named_children():
            conv: SameConv2d = blk.conv
            dw = conv.groups > 1
            cfg = {"kernel_size": [conv.tf_kernel] * 2, "strides": [conv.tf_stride] * 2,
                   "padding": "same", "use_bias": False, "activation": "linear",
                   "dilation_rate": [1, 1]}
            if dw:
                cfg["depth_multiplier"] = 1
            else:
                cfg["filters"] = conv.out_channels
            out.append({"class_name": "DepthwiseConv2D" if dw else "Conv2D", "name": name,
                        "config": cfg})
            out.append({"class_name": "BatchNormalization", "name": f"{name}_bn",
                        "config": {"epsilon": BN_EPS, "center": True, "scale": True, "axis": -1}})
            out.append({"class_name": "Activation", "name": f"{name}_relu",
                        "config": {"activation": "relu6"}})
        out.append({"class_name": "GlobalAveragePooling2D", "name": None, "config": {}})
        out.append({"class_name": "Reshape", "name": None,
                    "config": {"target_shape": [1, 1, self.num_features]}})
        out.append({"class_name": "Dropout", "name": None, "config": {}})
        out.append({"class_name": "Conv2D", "name": "conv_preds",
                    "config": {"filters": self.num_classes, "kernel_size": [1, 1],
                               "strides": [1, 1], "use_bias": True, "activation": "linear"}})
        out.append({"class_name": "Activation", "name": None, "config": {"activation": "softmax"}})
        out.append({"class_name": "Reshape", "name": None,
                    "config": {"target_shape": [self.num_classes]}})
        return out

    def keras_tensors(self) -> dict[str, tuple[str, tuple[int, ...]]]:
        """Keras tensor name -> (state-dict key, Keras shape) for every parameter and BN buffer."""
        out: dict[str, tuple[str, tuple[int, ...]]] = {}
        for name, blk in self.features.named_children():
            conv: SameConv2d = blk.conv
            k = conv.tf_kernel
            p = f"features.{name}"
            if conv.groups > 1:
                out[f"{name}/depthwise_kernel"] = (f"{p}.conv.weight", (k, k, conv.in_channels, 1))
            else:
                out[f"{name}/kernel"] = (f"{p}.conv.weight",
                                         (k, k, conv.in_channels, conv.out_channels))
            c = conv.out_channels
            for kname, tname in (("gamma", "weight"), ("beta", "bias"),
                                 ("moving_mean", "running_mean"),
                                 ("moving_variance", "running_var")):
                out[f"{name}_bn/{kname}"] = (f"{p}.bn.{tname}", (c,))
        out["conv_preds/kernel"] = ("classifier.weight", (1, 1, self.num_features, self.num_classes))
        out["conv_preds/bias"] = ("classifier.bias", (self.num_classes,))
        return out


def keras_to_torch(keras_name: str, arr: np.ndarray) -> np.ndarray:
    """A Keras tensor in this network's PyTorch layout.

    Conv kernels ``[kh, kw, in, out]`` -> ``[out, in, kh, kw]``; depthwise kernels
    ``[kh, kw, in, 1]`` -> ``[in, 1, kh, kw]``; the 1x1 ``conv_preds`` kernel
    ``[1, 1, 768, 1000]`` -> the ``Linear`` weight ``[1000, 768]``; vectors unchanged.
    """
    if keras_name == "conv_preds/kernel":
        return np.ascontiguousarray(arr.reshape(arr.shape[2], arr.shape[3]).T)
    if keras_name.endswith("/depthwise_kernel"):
        return np.ascontiguousarray(arr.transpose(2, 3, 0, 1))
    if keras_name.endswith("/kernel"):
        return np.ascontiguousarray(arr.transpose(3, 2, 0, 1))
    return arr


# --------------------------------------------------------------------------------------------
# Reading the TensorFlow.js folder (the shared reader, :mod:`.tfjs`, with this model's fix)
# --------------------------------------------------------------------------------------------


def read_model_json(folder: Path) -> dict:
    """``model.json`` parsed, with a clear error when missing or not a TF.js layers model."""
    return tfjs.read_model_json(folder, _RESTORE)


def read_sha256sums(folder: Path) -> dict[str, str]:
    """``SHA256SUMS`` as ``{file name: sha256}``."""
    return tfjs.read_sha256sums(folder, _RESTORE)


def verify_folder(folder: Path, spec: dict | None = None) -> str:
    """Check every file ``SHA256SUMS`` lists, and that it lists ``model.json`` and every shard;
    returns the sha256 of ``SHA256SUMS`` itself, which therefore covers every weight file."""
    spec = read_model_json(folder) if spec is None else spec
    return tfjs.verify_folder(folder, spec, _RESTORE)


def read_weights(folder: Path, spec: dict | None = None) -> dict[str, np.ndarray]:
    """Every tensor of ``weightsManifest`` as a float32 array in its declared (Keras) shape.

    Each group's shard files are concatenated and must hold exactly the declared bytes.
    """
    spec = read_model_json(folder) if spec is None else spec
    return tfjs.read_weights(folder, spec, _RESTORE)


def check_topology(spec: dict, model: MobileNetV1, path: Path) -> None:
    """The Keras topology in ``model.json`` is exactly the network :class:`MobileNetV1` builds."""
    tfjs.check_layers(spec, model.keras_layers(), path, f"{FOLDER_NAME} (MobileNet v1 "
                      f"{model.alpha})", _RESTORE)


def load_weights(model: MobileNetV1, weights: dict[str, np.ndarray], source: str) -> None:
    """Copy every Keras tensor into ``model``; each must be consumed exactly once with its Keras
    shape, and every parameter and BatchNorm buffer must be filled."""
    tfjs.fill_state(model, weights, model.keras_tensors(), keras_to_torch, source,
                    f"MobileNet v1 {model.alpha}", _RESTORE)


def load_mobilenet(models_dir: str | os.PathLike[str] | None = None) -> tuple[MobileNetV1, str, Path]:
    """Verified MobileNet v1 0.75 in eval mode, the weights checksum and the folder used.

    The checksum is the sha256 of the verified ``SHA256SUMS`` (see :func:`verify_folder`).
    """
    folder = weights_folder(models_dir)
    spec = read_model_json(folder)
    checksum = verify_folder(folder, spec)
    model = MobileNetV1()
    check_topology(spec, model, folder / "model.json")
    load_weights(model, read_weights(folder, spec), str(folder / "model.json"))
    model.eval()
    return model, checksum, folder


def weights_checksum(models_dir: str | os.PathLike[str] | None = None) -> str:
    """sha256 of the verified ``SHA256SUMS`` (every weight file is checked against it)."""
    return verify_folder(weights_folder(models_dir))



def _load() -> LoadedModel:
    model, checksum, folder = load_mobilenet()
    return LoadedModel(name=NAME, timm_name="MobileNet v1 0.75 x 224 (neudep_utils.models.mobilenet)",
                       model=model, preprocess=PREPROCESS, weights_sha256=checksum,
                       weights_source=f"TensorFlow.js layers model {folder} (sha256 of its "
                                      "verified SHA256SUMS)",
                       num_classes=model.num_classes, num_features=model.num_features,
                       family="mobilenet_v1")


#: The registered name.
NAME = "mobilenet_v1_075"
register(ModelSpec(
    name=NAME, load=_load, checksum=weights_checksum,
    description="MobileNet v1 0.75 x 224, float32 (ImageNet-1k; TensorFlow.js weights in "
                "$NEUDEP_MODELS_DIR/" + FOLDER_NAME + ")",
    family="mobilenet_v1", width=768, aliases=("mobilenet", "mobilenet_v1_0.75"),
    short="mobilenet_v1_075", architecture="cnn", recipe="ImageNet-1k (Keras Applications)"))
