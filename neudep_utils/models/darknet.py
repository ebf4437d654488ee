"""Darknet-tiny (ImageNet-1k, d = 128) in plain PyTorch, loaded from a TensorFlow.js layers model.

The weights live outside the repository, in ``$NEUDEP_MODELS_DIR/darknet_tiny/`` (default
``../shared/models`` beside the checkout; see that folder's README): a Keras 2.1.6 topology in
``model.json``, raw little-endian float32 tensors in 31 ``groupN-shard1of1`` files, the class order
of the output channels in ``class_order.txt`` and a ``SHA256SUMS`` file covering all of them. The
folder is read and checked by the shared TF.js reader (:mod:`.tfjs`), as for MobileNet v1:

1. ``SHA256SUMS`` lists ``model.json``, every shard and ``class_order.txt``, and every listed file
   has that checksum;
2. the Keras topology is Darknet-tiny exactly as built here (every layer's class, name, filters,
   kernel size, strides, padding, activation, LeakyReLU slope, BatchNorm epsilon, in order);
3. every shard holds exactly the bytes its manifest group declares (float32 only);
4. every manifest tensor has the Keras shape of its layer and is consumed exactly once;
5. ``class_order.txt`` holds the 1000 ImageNet-1k wnids, each once.

Any failure raises :class:`~neudep_utils.errors.ModelError` naming the file and the fix.

The network (J. Redmon's Darknet reference family): 15 blocks of convolution (3x3 or 1x1, no
bias) + BatchNorm (eps 0.001) + LeakyReLU(0.1), four 2x2 stride-2 max poolings, then a 1x1
convolution 128 -> 1000 with bias and global average pooling (no softmax). A 1x1 convolution
commutes with the average, so the logits are ``Linear(128, 1000)`` of the pooled ``d = 128``
feature (``forward_head(pre_logits=True)``), as for the other models. Darknet's output channel
``j`` is the class on line ``j + 1`` of ``class_order.txt`` (the ILSVRC devkit order); the rows of
the logit layer are permuted when loading so that the model returns the study's sorted-wnid order.

Preprocessing (as measured, README of the folder): RGB in [0, 1], bilinear resize of the whole
image to 224 x 224 (no crop, aspect ratio not kept). Every convolution uses TensorFlow "same"
padding, symmetric for these odd kernels at stride 1; the max poolings are TensorFlow "same" too
(``ceil_mode``: a pooling window past an odd edge sees only the pixels inside).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import ModelError
from ..images.classes import imagenet_classes
from . import tfjs
from ._base import LoadedModel, Preprocess
from .registry import ModelSpec, register
from .tfjs import default_models_dir

__all__ = ["DarknetTiny", "class_permutation", "load_darknet", "read_class_order",
           "weights_checksum", "weights_folder"]

#: Folder name of the weights inside the models directory.
FOLDER_NAME = "darknet_tiny"
CLASS_ORDER_FILE = "class_order.txt"
#: The layers up to the logit layer: ``(filters, kernel)`` convolution blocks and ``"M"`` poolings.
LAYERS = ((16, 3), "M", (32, 3), "M", (16, 1), (128, 3), (16, 1), (128, 3), "M", (32, 1),
          (256, 3), (32, 1), (256, 3), "M", (64, 1), (512, 3), (64, 1), (512, 3), (128, 1))
BN_EPS = 1e-3
#: LeakyReLU slope as stored in float32 by Keras (0.1).
LEAKY_SLOPE = float(np.float32(0.1))
NUM_CLASSES = 1000
INPUT_SIZE = 224
#: RGB in [0, 1]; the whole image resized to 224 x 224 (no crop).
PREPROCESS = Preprocess(input_size=INPUT_SIZE, crop_pct=1.0, interpolation="bilinear",
                        mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), resize_mode="full")
_RESTORE = ("restore the folder (`make data` downloads and verifies it from its origin), or point "
            "NEUDEP_MODELS_DIR at a models folder holding an intact " + FOLDER_NAME + "/")
_WHAT = f"{FOLDER_NAME} (Darknet-tiny)"


def weights_folder(models_dir: str | os.PathLike[str] | None = None) -> Path:
    """The Darknet-tiny weights folder (``<models_dir>/darknet_tiny``); it must exist."""
    root = Path(models_dir).expanduser() if models_dir is not None else default_models_dir()
    folder = root / FOLDER_NAME
    if not folder.is_dir():
        raise ModelError(
            f"Darknet-tiny weights not found: {folder} is not a folder. Set NEUDEP_MODELS_DIR "
            f"to the folder holding {FOLDER_NAME}/ (default ../shared/models beside the checkout), or run "
            "`make data` to download it")
    return folder


# --------------------------------------------------------------------------------------------
# Network
# --------------------------------------------------------------------------------------------


class ConvBNLeaky(nn.Sequential):
    """Convolution (no bias, TF "same" = symmetric padding for an odd kernel at stride 1),
    BatchNorm (eps 0.001), LeakyReLU(0.1)."""

    def __init__(self, cin: int, cout: int, kernel: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=1, padding=kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.act = nn.LeakyReLU(LEAKY_SLOPE, inplace=True)


class DarknetTiny(nn.Module):
    """Darknet-tiny returning logits (no softmax), with the timm-like interface of the cache:
    :meth:`forward_features`, :meth:`forward_head` (``pre_logits=True``: the pooled 128-vector),
    :meth:`get_classifier` (``nn.Linear(128, 1000)``, rows in the study's class order once
    loaded by :func:`load_darknet`)."""

    def __init__(self, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.features = nn.Sequential()
        c, ci, pi = 3, 0, 0
        for item in LAYERS:
            if item == "M":
                pi += 1
                self.features.add_module(f"pool{pi}", nn.MaxPool2d(2, 2, ceil_mode=True))
            else:
                ci += 1
                cout, k = item
                self.features.add_module(f"conv{ci}", ConvBNLeaky(c, cout, k))
                c = cout
        self.num_features = c
        self.num_classes = num_classes
        self.classifier = nn.Linear(c, num_classes, bias=True)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Last feature map ``(B, 128, H/16, W/16)``."""
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Global average pooling, then (unless ``pre_logits``) the logit layer."""
        x = x.mean(dim=(2, 3))
        return x if pre_logits else self.classifier(x)

    def get_classifier(self) -> nn.Linear:
        """The logit layer (Keras ``conv2d_16``, a 1x1 convolution with bias)."""
        return self.classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def _blocks(self):
        """``(conv index, block)`` of every convolution block, in order."""
        return [(int(n[4:]), m) for n, m in self.features.named_children() if n.startswith("conv")]

    def keras_layers(self) -> list[dict]:
        """The Keras layers of this network in graph order, with the configuration values
        :func:`.tfjs.check_layers` compares."""
        out: list[dict] = []
        pool_i = 0
        for name, mod in self.features.named_children():
            if isinstance(mod, nn.MaxPool2d):
                pool_i += 1
                out.append({"class_name": "MaxPooling2D", "name": f"max_pooling2d_{pool_i}",
                            "config": {"pool_size": [2, 2], "strides": [2, 2],
                                       "padding": "same", "data_format": "channels_last"}})
                continue
            i = int(name[4:])
            k = mod.conv.kernel_size[0]
            out.append({"class_name": "Conv2D", "name": f"conv2d_{i}",
                        "config": {"filters": mod.conv.out_channels, "kernel_size": [k, k],
                                   "strides": [1, 1], "padding": "same", "use_bias": False,
                                   "activation": "linear", "dilation_rate": [1, 1],
                                   "data_format": "channels_last"}})
            out.append({"class_name": "BatchNormalization", "name": f"batch_normalization_{i}",
                        "config": {"epsilon": BN_EPS, "center": True, "scale": True, "axis": -1}})
            out.append({"class_name": "LeakyReLU", "name": f"leaky_re_lu_{i}",
                        "config": {"alpha": LEAKY_SLOPE}})
        n = len(self._blocks()) + 1
        out.append({"class_name": "Conv2D", "name": f"conv2d_{n}",
                    "config": {"filters": self.num_classes, "kernel_size": [1, 1],
                               "strides": [1, 1], "padding": "same", "use_bias": True,
                               "activation": "linear", "dilation_rate": [1, 1]}})
        out.append({"class_name": "GlobalAveragePooling2D", "name": None,
                    "config": {"data_format": "channels_last"}})
        return out

    def keras_tensors(self) -> dict[str, tuple[str, tuple[int, ...]]]:
        """Keras tensor name -> (state-dict key, Keras shape) for every parameter and BN buffer."""
        out: dict[str, tuple[str, tuple[int, ...]]] = {}
        for i, blk in self._blocks():
            conv = blk.conv
            k = conv.kernel_size[0]
            p = f"features.conv{i}"
            out[f"conv2d_{i}/kernel"] = (f"{p}.conv.weight",
                                         (k, k, conv.in_channels, conv.out_channels))
            for kname, tname in (("gamma", "weight"), ("beta", "bias"),
                                 ("moving_mean", "running_mean"),
                                 ("moving_variance", "running_var")):
                out[f"batch_normalization_{i}/{kname}"] = (f"{p}.bn.{tname}",
                                                           (conv.out_channels,))
        n = len(self._blocks()) + 1
        out[f"conv2d_{n}/kernel"] = ("classifier.weight",
                                     (1, 1, self.num_features, self.num_classes))
        out[f"conv2d_{n}/bias"] = ("classifier.bias", (self.num_classes,))
        return out


def keras_to_torch(keras_name: str, arr: np.ndarray) -> np.ndarray:
    """A Keras tensor in PyTorch layout: conv kernels ``[kh, kw, in, out]`` -> ``[out, in, kh,
    kw]``, the 1x1 logit kernel ``[1, 1, 128, 1000]`` -> the ``Linear`` weight ``[1000, 128]``
    (still in Darknet's class order), vectors unchanged."""
    if keras_name.endswith("/kernel") and arr.shape[:2] == (1, 1) and arr.shape[3] == NUM_CLASSES:
        return np.ascontiguousarray(arr.reshape(arr.shape[2], arr.shape[3]).T)
    if keras_name.endswith("/kernel"):
        return np.ascontiguousarray(arr.transpose(3, 2, 0, 1))
    return arr


# --------------------------------------------------------------------------------------------
# Class order
# --------------------------------------------------------------------------------------------


def read_class_order(folder: Path) -> list[str]:
    """The wnid of every output channel (``class_order.txt``, one wnid a line): 1000 distinct
    ImageNet-1k wnids."""
    path = folder / CLASS_ORDER_FILE
    if not path.is_file():
        raise ModelError(f"{path} is missing (the class of each output channel); {_RESTORE}")
    wnids = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    known = set(imagenet_classes().wnids)
    if len(wnids) != NUM_CLASSES or len(set(wnids)) != NUM_CLASSES or set(wnids) != known:
        bad = sorted(set(wnids) - known)[:3]
        raise ModelError(f"{path}: {len(wnids)} lines, {len(set(wnids))} distinct, "
                         f"{len(set(wnids) & known)} of the 1000 ImageNet-1k wnids"
                         f"{' (not ImageNet-1k: ' + ', '.join(bad) + ')' if bad else ''}; expected "
                         f"each of the 1000 wnids once; {_RESTORE}")
    return wnids


def class_permutation(order: list[str]) -> np.ndarray:
    """``perm`` with ``perm[i]`` = the output channel of the study's class ``i`` (sorted wnids):
    ``logits_study = logits_darknet[..., perm]``."""
    pos = {w: j for j, w in enumerate(order)}
    return np.array([pos[w] for w in imagenet_classes().wnids], dtype=np.int64)


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def load_darknet(models_dir: str | os.PathLike[str] | None = None
                 ) -> tuple[DarknetTiny, str, Path]:
    """Verified Darknet-tiny in eval mode (logits in the study's sorted-wnid order), the weights
    checksum (sha256 of the verified ``SHA256SUMS``) and the folder used."""
    folder = weights_folder(models_dir)
    spec = tfjs.read_model_json(folder, _RESTORE)
    checksum = tfjs.verify_folder(folder, spec, _RESTORE, also=(CLASS_ORDER_FILE,))
    model = DarknetTiny()
    tfjs.check_layers(spec, model.keras_layers(), folder / "model.json", _WHAT, _RESTORE)
    tfjs.fill_state(model, tfjs.read_weights(folder, spec, _RESTORE), model.keras_tensors(),
                    keras_to_torch, str(folder / "model.json"), "Darknet-tiny", _RESTORE)
    perm = torch.from_numpy(class_permutation(read_class_order(folder)))
    with torch.no_grad():
        model.classifier.weight.copy_(model.classifier.weight[perm].clone())
        model.classifier.bias.copy_(model.classifier.bias[perm].clone())
    model.eval()
    return model, checksum, folder


def weights_checksum(models_dir: str | os.PathLike[str] | None = None) -> str:
    """sha256 of the verified ``SHA256SUMS`` (every weight file and the class order are checked
    against it)."""
    folder = weights_folder(models_dir)
    return tfjs.verify_folder(folder, tfjs.read_model_json(folder, _RESTORE), _RESTORE,
                              also=(CLASS_ORDER_FILE,))


def _load() -> LoadedModel:
    model, checksum, folder = load_darknet()
    return LoadedModel(name=NAME, timm_name="Darknet-tiny x 224 (neudep_utils.models.darknet)",
                       model=model, preprocess=PREPROCESS, weights_sha256=checksum,
                       weights_source=f"TensorFlow.js layers model {folder} (sha256 of its "
                                      "verified SHA256SUMS; classes permuted from "
                                      f"{CLASS_ORDER_FILE} to sorted wnids)",
                       num_classes=model.num_classes, num_features=model.num_features,
                       family="darknet")


#: The registered name.
NAME = "darknet_tiny"
register(ModelSpec(
    name=NAME, load=_load, checksum=weights_checksum,
    description="Darknet-tiny x 224, float32 (ImageNet-1k, d = 128; TensorFlow.js weights in "
                "$NEUDEP_MODELS_DIR/" + FOLDER_NAME + ", devkit class order permuted)",
    family="darknet", width=128, aliases=("darknet",), short="darknet_tiny", architecture="cnn",
    recipe="ImageNet-1k (Darknet reference)"))
