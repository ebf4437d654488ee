"""Five int8 TensorFlow Lite MobileNets (Google's Coral test data), run by LiteRT.

The files live outside the repository, in ``$NEUDEP_MODELS_DIR/coral_tflite_int8/`` (default
``../shared/models`` beside the checkout; that folder's README gives their origin and licence),
with ``imagenet_labels.txt`` and a ``SHA256SUMS`` file:

======================== ======================================= ===== ===== =====================
name                     file                                    input d     training
======================== ======================================= ===== ===== =====================
mobilenet_v1_025_int8    mobilenet_v1_0.25_128_quant.tflite      128   256   quantization-aware
mobilenet_v1_050_int8    mobilenet_v1_0.5_160_quant.tflite       160   512   quantization-aware
mobilenet_v1_075_int8    mobilenet_v1_0.75_192_quant.tflite      192   768   quantization-aware
mobilenet_v2_int8_qat    mobilenet_v2_1.0_224_quant.tflite       224   1280  quantization-aware
mobilenet_v2_int8_ptq    tf2_mobilenet_v2_1.0_224_ptq.tflite     224   1280  post-training quant.
======================== ======================================= ===== ===== =====================

The three v1 files are a trained width series (d = 256, 512, 768); the two v2 files share an
architecture but not a training recipe. Loading one (:func:`load_tflite`) checks, raising
:class:`~neudep_utils.errors.ModelError` naming the file and the fix:

1. the folder, ``SHA256SUMS``, the model file and ``imagenet_labels.txt`` exist, ``SHA256SUMS``
   lists both files and each has its checksum;
2. ``imagenet_labels.txt`` is ``background`` then the 1000 ImageNet-1k class names in the study's
   sorted-wnid order (each line equal to the study's name of that class);
3. the graph is a classifier LiteRT can run: one uint8 image input of the expected size, one
   SOFTMAX op whose per-tensor quantized input has 1001 = 1 + 1000 outputs, and a logit layer
   (CONV_2D) whose input has the expected width d
   (:func:`~neudep_utils.models.engines.litert_graph`).

The model is a :class:`~neudep_utils.models.LoadedModel` of kind ``tflite`` (no torch module; its
``file`` is the ``.tflite``, whose sha256 is the weights checksum in the cache key); its engine is
:class:`~neudep_utils.models.engines.LiteRTRunner`: logits = the dequantized SOFTMAX input with
the background output (index 0) dropped, so the 1000 logits are in the study's class order;
features = the dequantized input of the logit layer (the pooled d-vector). Both are quantized:
the logits in steps of their tensor's ``scale`` (:func:`logit_scale`), which sets a floor under
any fit of them (:func:`neudep_utils.metrics.quantization_floor`).

Preprocessing (TF-Slim evaluation): the central 87.5% crop resized (bilinear) to the input size;
the uint8 input's quantization (1/128, 128) means the raw 8-bit RGB pixels are fed as they are.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from ..errors import EngineError, ModelError
from ..images.classes import imagenet_classes
from ._base import LoadedModel, Preprocess, sha256_file
from .engines import litert_graph
from .registry import ModelSpec, register
from .tfjs import default_models_dir, read_sha256sums

__all__ = ["MODELS", "TfliteModel", "load_tflite", "logit_scale", "model_file",
           "weights_checksum"]

#: Folder name of the files inside the models directory.
FOLDER_NAME = "coral_tflite_int8"
LABELS_FILE = "imagenet_labels.txt"
NUM_CLASSES = 1000
_RESTORE = ("restore the folder (`make data` downloads and verifies it from its origin), or point "
            "NEUDEP_MODELS_DIR at a models folder holding an intact " + FOLDER_NAME + "/")


@dataclass(frozen=True)
class TfliteModel:
    """One of the int8 files: its name in the study, file, input size, feature width d,
    architecture family and training recipe."""

    name: str
    file: str
    input_size: int
    width: int
    family: str
    recipe: str
    title: str

    @property
    def preprocess(self) -> Preprocess:
        """Central 87.5% crop resized (bilinear) to the input size; pixels in [0, 1] (the engine
        feeds them as raw uint8)."""
        return Preprocess(input_size=self.input_size, crop_pct=0.875, interpolation="bilinear",
                          mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


MODELS = {m.name: m for m in (
    TfliteModel("mobilenet_v1_025_int8", "mobilenet_v1_0.25_128_quant.tflite", 128, 256,
                "mobilenet_v1", "quantization-aware training", "MobileNet v1 0.25 x 128"),
    TfliteModel("mobilenet_v1_050_int8", "mobilenet_v1_0.5_160_quant.tflite", 160, 512,
                "mobilenet_v1", "quantization-aware training", "MobileNet v1 0.5 x 160"),
    TfliteModel("mobilenet_v1_075_int8", "mobilenet_v1_0.75_192_quant.tflite", 192, 768,
                "mobilenet_v1", "quantization-aware training", "MobileNet v1 0.75 x 192"),
    TfliteModel("mobilenet_v2_int8_qat", "mobilenet_v2_1.0_224_quant.tflite", 224, 1280,
                "mobilenet_v2", "quantization-aware training", "MobileNet v2 1.0 x 224"),
    TfliteModel("mobilenet_v2_int8_ptq", "tf2_mobilenet_v2_1.0_224_ptq.tflite", 224, 1280,
                "mobilenet_v2", "post-training quantization", "MobileNet v2 1.0 x 224"),
)}


def folder_path(models_dir: str | os.PathLike[str] | None = None) -> Path:
    """The int8 models folder (``<models_dir>/coral_tflite_int8``); it must exist."""
    root = Path(models_dir).expanduser() if models_dir is not None else default_models_dir()
    folder = root / FOLDER_NAME
    if not folder.is_dir():
        raise ModelError(
            f"int8 TFLite models not found: {folder} is not a folder. Set NEUDEP_MODELS_DIR to "
            f"the folder holding {FOLDER_NAME}/ (default ../shared/models beside the checkout), or run "
            "`make data` to download it")
    return folder


def _verify(folder: Path, names: tuple[str, ...]) -> dict[str, str]:
    """sha256 of each of ``names``, checked against ``SHA256SUMS``."""
    sums = read_sha256sums(folder, _RESTORE)
    unlisted = [n for n in names if n not in sums]
    if unlisted:
        raise ModelError(f"{folder / 'SHA256SUMS'} does not list {', '.join(unlisted)}; "
                         f"{_RESTORE}")
    out = {}
    for n in names:
        f = folder / n
        if not f.is_file():
            raise ModelError(f"{f} is missing (listed in SHA256SUMS); {_RESTORE}")
        got = sha256_file(f)
        if got != sums[n]:
            raise ModelError(f"{f}: sha256 {got} does not match SHA256SUMS ({sums[n]}); the file "
                             f"is damaged or was changed; {_RESTORE}")
        out[n] = got
    return out


def model_file(name: str, models_dir: str | os.PathLike[str] | None = None) -> Path:
    """The ``.tflite`` file of a registered int8 model (not verified)."""
    return folder_path(models_dir) / MODELS[name].file


def weights_checksum(name: str, models_dir: str | os.PathLike[str] | None = None) -> str:
    """sha256 of the model's ``.tflite`` file, checked against ``SHA256SUMS`` (with the label
    file's)."""
    folder = folder_path(models_dir)
    return _verify(folder, (MODELS[name].file, LABELS_FILE))[MODELS[name].file]


def check_labels(folder: Path) -> None:
    """``imagenet_labels.txt`` is ``background`` then the study's 1000 class names, in order."""
    path = folder / LABELS_FILE
    lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    names = [n.strip() for n in imagenet_classes().names]
    if len(lines) != NUM_CLASSES + 1 or lines[0] != "background":
        raise ModelError(f"{path}: {len(lines)} labels (first {lines[:1]}), expected 'background' "
                         f"then {NUM_CLASSES} classes; {_RESTORE}")
    bad = [i for i, (a, b) in enumerate(zip(lines[1:], names, strict=True)) if a != b]
    if bad:
        i = bad[0]
        raise ModelError(f"{path}: {len(bad)} of the 1000 labels are not the study's class of "
                         f"that index (line {i + 2}: {lines[i + 1]!r}, expected {names[i]!r}); "
                         f"the outputs would need a class permutation; {_RESTORE}")


def load_tflite(name: str, models_dir: str | os.PathLike[str] | None = None) -> LoadedModel:
    """A verified int8 model as a :class:`LoadedModel` of kind ``tflite``."""
    m = MODELS[name]
    folder = folder_path(models_dir)
    sha = _verify(folder, (m.file, LABELS_FILE))[m.file]
    check_labels(folder)
    path = folder / m.file
    try:
        graph = litert_graph(path.read_bytes(), str(path))
    except ImportError as exc:
        raise ModelError(f"{name} needs LiteRT: the ai-edge-litert package does not import "
                         f"({exc}); install it (`pip install -e .` pins it)") from exc
    except (EngineError, ValueError, RuntimeError) as exc:
        raise ModelError(f"{path}: not a TFLite classifier LiteRT can run ({exc}); "
                         f"{_RESTORE}") from exc
    size = m.input_size
    if graph.input_shape != (1, size, size, 3) or graph.input_dtype != "uint8":
        raise ModelError(f"{path}: input {graph.input_dtype} {graph.input_shape}, {name} expects "
                         f"uint8 (1, {size}, {size}, 3); {_RESTORE}")
    if graph.num_outputs != NUM_CLASSES + 1:
        raise ModelError(f"{path}: {graph.num_outputs} outputs, expected {NUM_CLASSES + 1} "
                         f"(background + 1000); {_RESTORE}")
    if graph.num_features != m.width:
        raise ModelError(f"{path}: the logit layer's input has width {graph.num_features}, "
                         f"{name} has d = {m.width}; {_RESTORE}")
    return LoadedModel(name=name, timm_name=f"{m.title} int8 TFLite ({m.file}, LiteRT)",
                       model=None, kind="tflite", file=path, preprocess=m.preprocess,
                       weights_sha256=sha,
                       weights_source=f"TensorFlow Lite flatbuffer {path} (sha256 of the file, "
                                      f"checked against SHA256SUMS); {m.recipe}",
                       num_classes=NUM_CLASSES, num_features=m.width, family=m.family)


def logit_scale(name: str, models_dir: str | os.PathLike[str] | None = None) -> float:
    """The quantization step of a model's logits: the scale of its SOFTMAX input tensor."""
    path = model_file(name, models_dir)
    weights_checksum(name, models_dir)
    return litert_graph(path.read_bytes(), str(path)).logits_quant[0]


for _m in MODELS.values():
    register(ModelSpec(
        name=_m.name, load=partial(load_tflite, _m.name),
        checksum=partial(weights_checksum, _m.name),
        description=f"{_m.title}, int8 TensorFlow Lite ({_m.recipe}; Coral test data, "
                    f"$NEUDEP_MODELS_DIR/{FOLDER_NAME}/{_m.file}; run by LiteRT)",
        family=_m.family, width=_m.width, short=_m.name, architecture="cnn",
        recipe=f"ImageNet-1k, int8 {_m.recipe}"))
