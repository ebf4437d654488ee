"""Shards: a folder split into ``k/N`` contiguous blocks of images, extracted by separate
processes (or machines) and merged into the unsharded entry (moments add, per-image arrays
concatenate in manifest order)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from .._io import load_npz_checked
from ..errors import CacheError
from ..images import ViewSpec, resolve_folder, scan_folder
from ..models import canonical_name, load_model_cached
from ..models.engines import default_key_label, key_label, requested_engine, resolve_device
from .entry import LogitSet, finalize, read_cached
from .key import ExtractSpec, entry_dir, make_key

__all__ = ["check_shard_count", "merge_shards", "parse_shard", "shard_indices"]


def parse_shard(spec: str | tuple[int, int] | None) -> tuple[int, int] | None:
    """``"k/N"`` -> ``(k, N)`` with ``0 <= k < N``."""
    if spec is None:
        return None
    if isinstance(spec, str):
        try:
            k, n = (int(p) for p in spec.split("/"))
        except ValueError:
            raise ValueError(f"shard must look like k/N (e.g. 0/4), got {spec!r}") from None
    else:
        k, n = spec
    if not (n >= 1 and 0 <= k < n):
        raise ValueError(f"shard k/N needs 0 <= k < N, got {k}/{n}")
    return (k, n)


def check_shard_count(n_parts: int, n_images: int, folder: object, label: str) -> None:
    """Refuse more shards (or torchrun ranks) than images: some parts would be empty.

    ``label`` names the setting in the message, e.g. ``"--shard 0/30"``.
    """
    if n_parts > n_images:
        raise ValueError(
            f"{label} on {folder}: {n_parts} parts for {n_images} images would leave some empty; "
            f"use at most {n_images} (one image or more per part)")


def shard_indices(n_images: int, shard: tuple[int, int] | None) -> np.ndarray:
    """Contiguous block of image indices of shard ``k/N``."""
    if shard is None:
        return np.arange(n_images)
    k, n = shard
    return np.arange(n_images * k // n, n_images * (k + 1) // n)



def merge_shards(model: str, folder: str | os.PathLike[str], n_shards: int,
                 views: int | ViewSpec = 0, *, seed: int = 0, label_mode: str = "wnid",
                 corruption: str | None = None, mode: str = "full", features: bool = True,
                 cache_dir: str | os.PathLike[str] | None = None, engine: str | None = None,
                 device: str | None = None) -> LogitSet:
    """Merge the cache entries of shards ``0/N .. N-1/N`` into the unsharded entry.

    The merged moments are the sums of the shards' moments; per-image arrays are concatenated in
    manifest order, and the shards' skipped images are kept. ``engine``/``device`` as given to
    :func:`extract` for the shards: all shards must come from one engine, which the merged entry
    keeps (with ``auto``, the PyTorch fallback's shards are merged when the default engine has
    none). Raises :class:`CacheError` naming the missing shards.
    """
    if int(n_shards) < 1:
        raise ValueError(f"--shards must be >= 1 (the N of the shards k/N to merge), got {n_shards}")
    if isinstance(views, int):
        views = ViewSpec(n_aug=views, seed=seed)
    folder_path = resolve_folder(folder)
    manifest = scan_folder(folder_path, label_mode=label_mode)
    check_shard_count(n_shards, len(manifest), folder_path, f"merge --shards {n_shards}")
    loaded = load_model_cached(canonical_name(model))
    base = ExtractSpec(model=canonical_name(model), folder=folder_path, views=views,
                       label_mode=label_mode, corruption=corruption, mode=mode, features=features)
    cdir = Path(cache_dir) if cache_dir else None
    device = resolve_device(device)
    labels_tried = [default_key_label(engine, device, loaded=loaded)]
    if requested_engine(engine) == "auto" and loaded.kind == "torch" and key_label("torch", device) not in labels_tried:
        labels_tried.append(key_label("torch", device))
    found = []  # (label, parts, missing) per engine label tried
    for label in labels_tried:
        parts, missing = [], []
        for k in range(n_shards):
            key = make_key(dataclasses.replace(base, shard=(k, n_shards)), manifest, loaded=loaded,
                           engine=label)
            ent = read_cached(key, entry_dir(key, cdir), manifest)
            (missing.append(f"{k}/{n_shards}") if ent is None else parts.append(ent))
        found.append((label, parts, missing))
        if not missing:
            break
    label, parts, missing = found[-1] if not found[-1][2] else found[0]
    if missing:
        raise CacheError(
            f"cannot merge: shard(s) {', '.join(missing)} of {canonical_name(model)} on "
            f"{folder_path} are not extracted with engine {labels_tried[0]!r}; run `python -m "
            f"neudep_utils extract --model {model} --data {folder_path} --shard k/{n_shards}` for "
            "each (with the same engine: NEUDEP_ENGINE)"
        )
    key = make_key(base, manifest, loaded=loaded, engine=label)
    edir = entry_dir(key, cdir)
    mom = parts[0].moments
    for p in parts[1:]:
        mom = mom + p.moments
    labels = np.concatenate([p.labels for p in parts])
    index = np.concatenate([load_npz_checked(p.path / "data.npz", p.meta.get("data_sha256"))
                            ["image_index"] for p in parts])
    skipped = tuple(x for p in parts for x in p.skipped)
    arrays = {"count": np.asarray(mom.count), "sum_f": mom.sum_f, "sum_ff": mom.sum_ff,
              "labels": labels, "image_index": index}
    if mode == "full":
        arrays["logits"] = np.concatenate([p.logits for p in parts])
        if features:
            arrays["features"] = np.concatenate([p.features for p in parts])
    tops = [(p.meta.get("top1"), len(p)) for p in parts]
    top1 = (sum(t * n for t, n in tops) / sum(n for _, n in tops)
            if all(t is not None for t, _ in tops) and sum(n for _, n in tops) else None)
    meta = finalize(key, edir, arrays, {"folder": str(folder_path), "n_images": int(len(index)),
                                         "n_requested": len(manifest),
                                         "model": base.model, "merged_from": n_shards, "top1": top1,
                                         "weights_source": loaded.weights_source, "world_size": 1,
                                         "engine": parts[0].meta.get("engine", {"name": "torch"}),
                                         "skipped_images": [list(x) for x in skipped]})
    return LogitSet(key=key, path=edir, logits=arrays.get("logits"), features=arrays.get("features"),
                    labels=labels, image_ids=tuple(manifest.relpaths[i] for i in index),
                    moments=mom, meta=meta, skipped=skipped)

