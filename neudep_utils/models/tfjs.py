"""Reading a TensorFlow.js "layers model" folder, verified: shared by the ports of MobileNet v1
(:mod:`.mobilenet`) and Darknet-tiny (:mod:`.darknet`).

A folder holds a Keras topology in ``model.json``, raw little-endian float32 tensors in
``groupN-shard1of1`` files (concatenated in the order of ``weightsManifest``) and a
``SHA256SUMS`` file. Every function raises :class:`~neudep_utils.errors.ModelError` naming the file
and ending with ``restore``, the fix (how to get an intact folder back):

- :func:`read_model_json`: ``model.json`` parsed (a layers model: ``modelTopology`` and
  ``weightsManifest``);
- :func:`verify_folder`: ``SHA256SUMS`` lists ``model.json`` and every shard, and every listed file
  has its checksum; returns the sha256 of ``SHA256SUMS`` (which therefore covers every file);
- :func:`read_weights`: every tensor in its declared Keras shape; each group's shard bytes must be
  exactly what the manifest declares (float32 only);
- :func:`check_layers`: the topology is a chain of exactly the expected layers and settings;
- :func:`fill_state`: every Keras tensor consumed exactly once, with its Keras shape, filling every
  parameter and BatchNorm buffer of a PyTorch module.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .. import locations
from ..errors import ModelError
from ._base import sha256_file

__all__ = ["check_layers", "default_models_dir", "fill_state", "manifest_files",
           "read_model_json", "read_sha256sums", "read_weights", "verify_folder"]


def default_models_dir() -> Path:
    """The models folder: ``$NEUDEP_MODELS_DIR``, else ``../shared/models`` beside the checkout,
    else the download of ``make data`` (:func:`neudep_utils.locations.models_dir`)."""
    return locations.models_dir()


def read_model_json(folder: Path, restore: str) -> dict:
    """``model.json`` parsed, with a clear error when missing or not a TF.js layers model."""
    path = folder / "model.json"
    if not path.is_file():
        raise ModelError(f"{path} is missing; {restore}")
    try:
        spec = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path} is not readable JSON ({exc}); {restore}") from exc
    if not isinstance(spec, dict) or "modelTopology" not in spec or "weightsManifest" not in spec:
        raise ModelError(f"{path} is not a TensorFlow.js layers model (no modelTopology or "
                         f"weightsManifest); {restore}")
    return spec


def manifest_files(spec: dict, path: Path, restore: str) -> list[str]:
    """Every shard file the manifest names, in manifest order."""
    try:
        return [p for group in spec["weightsManifest"] for p in group["paths"]]
    except (KeyError, TypeError) as exc:
        raise ModelError(f"{path}: malformed weightsManifest ({exc!r}); {restore}") from exc


def read_sha256sums(folder: Path, restore: str) -> dict[str, str]:
    """``SHA256SUMS`` as ``{file name: sha256}``."""
    path = folder / "SHA256SUMS"
    if not path.is_file():
        raise ModelError(f"{path} is missing (needed to verify the weights); {restore}")
    out: dict[str, str] = {}
    for ln, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or len(parts[0]) != 64:
            raise ModelError(f"{path}, line {ln}: expected '<sha256>  <file>', got {line!r}; "
                             f"{restore}")
        out[parts[1].strip().lstrip("*")] = parts[0].lower()
    return out


def verify_folder(folder: Path, spec: dict, restore: str, also: tuple[str, ...] = ()) -> str:
    """Check every file ``SHA256SUMS`` lists, and that it lists ``model.json``, every shard and
    the files in ``also``; returns the sha256 of ``SHA256SUMS`` itself."""
    sums = read_sha256sums(folder, restore)
    needed = ["model.json", *manifest_files(spec, folder / "model.json", restore), *also]
    unlisted = [f for f in needed if f not in sums]
    if unlisted:
        raise ModelError(f"{folder / 'SHA256SUMS'} does not list {', '.join(unlisted)}; "
                         f"{restore}")
    for name, expected in sums.items():
        f = folder / name
        if not f.is_file():
            raise ModelError(f"{f} is missing (listed in SHA256SUMS); {restore}")
        got = sha256_file(f)
        if got != expected:
            raise ModelError(f"{f}: sha256 {got} does not match SHA256SUMS ({expected}); the file "
                             f"is damaged or was changed; {restore} (if you changed the weights "
                             "on purpose, update SHA256SUMS with `sha256sum`)")
    return sha256_file(folder / "SHA256SUMS")


def read_weights(folder: Path, spec: dict, restore: str) -> dict[str, np.ndarray]:
    """Every tensor of ``weightsManifest`` as a float32 array in its declared (Keras) shape.

    Each group's shard files are concatenated and must hold exactly the declared bytes.
    """
    path = folder / "model.json"
    out: dict[str, np.ndarray] = {}
    for gi, group in enumerate(spec["weightsManifest"]):
        blobs = []
        for p in group["paths"]:
            f = folder / p
            if not f.is_file():
                raise ModelError(f"{f} is missing (weightsManifest group {gi}); {restore}")
            blobs.append(f.read_bytes())
        blob = b"".join(blobs)
        need, entries = 0, []
        for w in group["weights"]:
            if w.get("dtype", "float32") != "float32" or "quantization" in w:
                raise ModelError(f"{path}: tensor {w.get('name')!r} is {w.get('dtype')} "
                                 f"{'quantised ' if 'quantization' in w else ''}; only float32 "
                                 f"weights are supported; {restore}")
            shape = tuple(int(s) for s in w["shape"])
            n = int(np.prod(shape, dtype=np.int64)) if shape else 1
            entries.append((w["name"], shape, need, n))
            need += 4 * n
        files = ", ".join(str(folder / p) for p in group["paths"])
        if len(blob) != need:
            raise ModelError(
                f"{files}: {len(blob)} bytes, but weightsManifest group {gi} declares {need} "
                f"({', '.join(e[0] for e in entries)}); the file is truncated or does not belong "
                f"to this model.json; {restore}")
        for name, shape, off, n in entries:
            if name in out:
                raise ModelError(f"{path}: tensor {name!r} appears twice in weightsManifest; "
                                 f"{restore}")
            out[name] = np.frombuffer(blob, dtype="<f4", count=n, offset=off).reshape(shape)
    return out


def check_layers(spec: dict, expected: list[dict], path: Path, what: str, restore: str) -> None:
    """The Keras topology in ``model.json`` is a chain (each layer reads the previous one) of
    exactly the ``expected`` layers (``class_name``, ``name`` unless ``None``, and every
    ``config`` value listed; the ``InputLayer`` is skipped). ``what`` names the network."""
    try:
        layers = spec["modelTopology"]["model_config"]["config"]["layers"]
    except (KeyError, TypeError) as exc:
        raise ModelError(f"{path}: no modelTopology.model_config.config.layers ({exc!r}); "
                         f"{restore}") from exc
    names = [lay.get("name") for lay in layers]
    for prev, lay in zip(names, layers[1:], strict=False):
        try:
            inbound = lay["inbound_nodes"][0][0][0]
        except (KeyError, IndexError, TypeError):
            inbound = None
        if inbound != prev:
            raise ModelError(f"{path}: layer {lay.get('name')!r} reads {inbound!r}, expected "
                             f"{prev!r}; this is not {what}; {restore}")
    layers = [lay for lay in layers if lay.get("class_name") != "InputLayer"]
    if len(layers) != len(expected):
        raise ModelError(f"{path}: {len(layers)} layers, {what} has {len(expected)}; this is not "
                         f"{what}; {restore}")
    for got, exp in zip(layers, expected, strict=True):
        where = f"{path}: layer {got.get('name')!r}"
        if got.get("class_name") != exp["class_name"] or (exp["name"] and
                                                           got.get("name") != exp["name"]):
            raise ModelError(f"{where} is a {got.get('class_name')}, expected "
                             f"{exp['class_name']} {exp['name'] or ''}; this is not {what}; "
                             f"{restore}")
        cfg = got.get("config", {})
        for k, v in exp["config"].items():
            g = cfg.get(k)
            same = (math.isclose(g, v, rel_tol=1e-6) if isinstance(v, float)
                    and isinstance(g, float) else g == v)
            if not same:
                raise ModelError(f"{where}: {k} = {g!r}, expected {v!r}; this is not {what} as "
                                 f"built by neudep_utils; {restore}")


def fill_state(model, weights: dict[str, np.ndarray],
               wanted: dict[str, tuple[str, tuple[int, ...]]],
               convert: Callable[[str, np.ndarray], np.ndarray], source: str, what: str,
               restore: str) -> None:
    """Copy every Keras tensor of ``weights`` into ``model`` (a ``torch.nn.Module``).

    ``wanted`` maps each Keras tensor name to ``(state-dict key, Keras shape)``; ``convert(name,
    array)`` turns a Keras array into the PyTorch layout. Every tensor must be consumed exactly
    once with its Keras shape, and every parameter and BatchNorm buffer must be filled.
    """
    unknown = sorted(set(weights) - set(wanted))
    if unknown:
        raise ModelError(f"{source}: tensor(s) {', '.join(unknown)} in weightsManifest have no "
                         f"place in {what} (left over); the file does not match this network; "
                         f"{restore}")
    missing = sorted(set(wanted) - set(weights))
    if missing:
        raise ModelError(f"{source}: weightsManifest lacks {', '.join(missing)}; {restore}")
    state = {}
    for kname, (key, shape) in wanted.items():
        arr = weights[kname]
        if tuple(arr.shape) != shape:
            raise ModelError(f"{source}: tensor {kname} has shape {tuple(arr.shape)}, {what} "
                             f"expects {shape} (Keras layout); {restore}")
        state[key] = torch.from_numpy(convert(kname, arr).astype(np.float32))
    own = {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}
    if own != set(state):
        raise ModelError(f"{source}: internal error, unfilled {sorted(own - set(state))}")
    model.load_state_dict(state, strict=False)
