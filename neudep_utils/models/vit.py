"""ViT-Ti/16 (``vit_tiny_patch16_224``, d = 192): timm's architecture with verified weights read
one tensor per file, the study's one transformer.

The weights live outside the repository, in ``$NEUDEP_MODELS_DIR/vit_tiny_patch16_224/``
(default ``../shared/models`` beside the checkout; that folder's README gives their origin):
Google's AugReg checkpoint (**ImageNet-21k pretrained, ImageNet-1k fine-tuned** at 224 x 224), 152
files named after timm's state-dict keys with ``_`` for ``.`` (``blocks_3_attn_qkv_weight.bin`` is
``blocks.3.attn.qkv.weight``), and a ``SHA256SUMS`` file. Each file is a little-endian int32
header holding the tensor's dimensions (one int per dimension; the rank is not stored: it is the
rank of timm's tensor) followed by raw little-endian float32 data, row-major, PyTorch layout.

:func:`load_vit` builds ``timm.create_model("vit_tiny_patch16_224", pretrained=False)`` (never
the hub) and checks, raising :class:`~neudep_utils.errors.ModelError` naming the file and the fix
on any failure:

1. the folder and ``SHA256SUMS`` exist; ``SHA256SUMS`` lists exactly one file per key of timm's
   state dict (no file missing, none left over) and every listed file has its checksum;
2. every file's header equals timm's shape for its key and the file holds exactly
   ``4 * rank + 4 * prod(shape)`` bytes (checked before any tensor is loaded: a file whose
   checksum was updated after a change is still refused if it does not fit the network);
3. the state dict is loaded with ``strict=True``.

The weights checksum (part of every cache key) is the sha256 of the verified ``SHA256SUMS``,
which therefore covers every file. Preprocessing is timm's resolved data configuration for this
model (``resolve_data_config``: bicubic resize of the short side to 248, i.e. crop fraction 0.9,
centre crop 224, mean = std = 0.5). The penultimate feature is the class token after the final
LayerNorm (``forward_head(..., pre_logits=True)``, d = 192, the head's input); the head is a
``Linear(192, 1000)`` with bias, in the study's sorted-wnid class order.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import torch

from ..errors import ModelError
from ._base import LoadedModel, Preprocess, sha256_file
from .efficientnet import preprocess_from_timm
from .registry import ModelSpec, register
from .tfjs import default_models_dir, read_sha256sums

__all__ = ["FOLDER_NAME", "NAME", "RECIPE", "TIMM_NAME", "expected_tensors", "file_name", "load_vit",
           "read_tensor", "verify_folder", "weights_checksum", "weights_folder"]

#: The registered name (timm's name of the architecture).
NAME = TIMM_NAME = "vit_tiny_patch16_224"
#: Folder name of the weights inside the models directory.
FOLDER_NAME = "vit_tiny_patch16_224"
#: The training recipe, shown wherever the model is named in a table or caption.
RECIPE = "ImageNet-21k pretrained, 1k fine-tuned"
_RESTORE = ("restore the folder (`make data` downloads and verifies it from its origin), or point "
            "NEUDEP_MODELS_DIR at a models folder holding an intact " + FOLDER_NAME + "/")


def weights_folder(models_dir: str | os.PathLike[str] | None = None) -> Path:
    """The ViT weights folder (``<models_dir>/vit_tiny_patch16_224``); it must exist."""
    root = Path(models_dir).expanduser() if models_dir is not None else default_models_dir()
    folder = root / FOLDER_NAME
    if not folder.is_dir():
        raise ModelError(
            f"ViT-Ti/16 weights not found: {folder} is not a folder. Set NEUDEP_MODELS_DIR to "
            f"the folder holding {FOLDER_NAME}/ (default ../shared/models beside the checkout), or "
            "run `make data` to download it")
    return folder


def file_name(key: str) -> str:
    """The weight file of a state-dict key (``blocks.3.attn.qkv.weight`` ->
    ``blocks_3_attn_qkv_weight.bin``)."""
    return key.replace(".", "_") + ".bin"


def _build():
    """timm's ``vit_tiny_patch16_224`` with random weights (no hub access)."""
    import timm

    return timm.create_model(TIMM_NAME, pretrained=False, num_classes=1000)


@functools.lru_cache(maxsize=1)
def expected_tensors() -> dict[str, tuple[str, tuple[int, ...]]]:
    """``{file name: (key, shape)}`` of every tensor of timm's ``vit_tiny_patch16_224`` state
    dict, in its order."""
    out: dict[str, tuple[str, tuple[int, ...]]] = {}
    for key, v in _build().state_dict().items():
        name = file_name(key)
        if name in out:  # pragma: no cover - timm's keys map to distinct names
            raise ModelError(f"internal error: keys {out[name][0]} and {key} share {name}")
        out[name] = (key, tuple(int(s) for s in v.shape))
    return out


def verify_folder(folder: Path, expected: list[str]) -> str:
    """``SHA256SUMS`` lists exactly the ``expected`` files and each has its checksum; returns
    the sha256 of ``SHA256SUMS`` itself (which therefore covers every weight file)."""
    sums = read_sha256sums(folder, _RESTORE)
    sums_path = folder / "SHA256SUMS"
    unlisted = [f for f in expected if f not in sums]
    if unlisted:
        more = f" and {len(unlisted) - 3} more" if len(unlisted) > 3 else ""
        raise ModelError(f"{sums_path} does not list {', '.join(unlisted[:3])}{more} (one file "
                         f"per tensor of timm's {TIMM_NAME}); {_RESTORE}")
    extra = sorted(set(sums) - set(expected))
    if extra:
        raise ModelError(f"{sums_path} lists {', '.join(extra[:3])}, which belong to no tensor "
                         f"of timm's {TIMM_NAME}; this is not the {FOLDER_NAME} folder; "
                         f"{_RESTORE}")
    for name in expected:
        f = folder / name
        if not f.is_file():
            raise ModelError(f"{f} is missing (listed in SHA256SUMS); {_RESTORE}")
        got = sha256_file(f)
        if got != sums[name]:
            raise ModelError(f"{f}: sha256 {got} does not match SHA256SUMS ({sums[name]}); the "
                             f"file is damaged or was changed; {_RESTORE} (if you changed the "
                             "weights on purpose, update SHA256SUMS with `sha256sum`)")
    return sha256_file(sums_path)


def read_tensor(path: Path, key: str, shape: tuple[int, ...]) -> np.ndarray:
    """One weight file as a float32 array of ``shape``, after checking its header (the
    dimensions, ``len(shape)`` little-endian int32) against ``shape`` and its size against
    ``4 * rank + 4 * prod(shape)`` bytes."""
    if not path.is_file():
        raise ModelError(f"{path} is missing (the tensor {key}); {_RESTORE}")
    data = path.read_bytes()
    rank = len(shape)
    want = 4 * rank + 4 * int(np.prod(shape, dtype=np.int64))
    if len(data) < 4 * rank:
        raise ModelError(f"{path}: {len(data)} bytes, too short for the {rank}-int header of "
                         f"{key} {shape}; the file is truncated; {_RESTORE}")
    header = tuple(int(v) for v in np.frombuffer(data, dtype="<i4", count=rank))
    if header != shape:
        raise ModelError(f"{path}: header says shape {header}, timm's {TIMM_NAME} expects "
                         f"{shape} for {key}; the file does not belong to this network; "
                         f"{_RESTORE}")
    if len(data) != want:
        raise ModelError(f"{path}: {len(data)} bytes, expected {want} (header + float32 "
                         f"{shape} of {key}); the file is truncated or padded; {_RESTORE}")
    return np.frombuffer(data, dtype="<f4", offset=4 * rank).reshape(shape)


def load_vit(models_dir: str | os.PathLike[str] | None = None):
    """Verified ViT-Ti/16 in eval mode, the weights checksum and the folder used.

    Returns
    -------
    (torch.nn.Module, str, Path)
        timm's ``VisionTransformer`` with the folder's weights, the sha256 of the verified
        ``SHA256SUMS``, the folder.
    """
    folder = weights_folder(models_dir)
    model = _build()
    expected = expected_tensors()
    checksum = verify_folder(folder, list(expected))
    arrays = {key: read_tensor(folder / name, key, shape)
              for name, (key, shape) in expected.items()}  # every header before any load
    state = {key: torch.from_numpy(arr.copy()) for key, arr in arrays.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # pragma: no cover - the checks above make the keys match
        raise ModelError(f"{folder}: strict load into timm's {TIMM_NAME} failed ({exc}); "
                         f"{_RESTORE}") from exc
    model.eval()
    return model, checksum, folder


def weights_checksum(models_dir: str | os.PathLike[str] | None = None) -> str:
    """sha256 of the verified ``SHA256SUMS`` (every weight file is checked against it)."""
    return verify_folder(weights_folder(models_dir), list(expected_tensors()))


def preprocess_of(model) -> Preprocess:
    """timm's resolved evaluation preprocessing of the model (``resolve_data_config``:
    bicubic, crop fraction 0.9, mean = std = 0.5 for this checkpoint)."""
    return preprocess_from_timm(model)


def _load() -> LoadedModel:
    model, checksum, folder = load_vit()
    return LoadedModel(name=NAME, timm_name=TIMM_NAME, model=model,
                       preprocess=preprocess_of(model), weights_sha256=checksum,
                       weights_source=f"one float32 tensor per file in {folder} (sha256 of its "
                                      f"verified SHA256SUMS); Google AugReg, {RECIPE}",
                       num_classes=model.num_classes, num_features=model.num_features,
                       family="vit")


register(ModelSpec(
    name=NAME, load=_load, checksum=weights_checksum,
    description="ViT-Ti/16 x 224, float32 (Google AugReg: ImageNet-21k pretrained, ImageNet-1k "
                "fine-tuned; d = 192; timm vit_tiny_patch16_224 with the weights in "
                "$NEUDEP_MODELS_DIR/" + FOLDER_NAME + ")",
    family="vit", width=192, aliases=("vit_ti16", "vit_tiny"), short="vit_ti16",
    architecture="transformer", recipe=RECIPE, note=RECIPE))
