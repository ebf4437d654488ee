"""Extraction: a model's logits (and features) on an image folder, computed once into the cache.

:func:`extract` returns the cached entry of its :class:`~.key.CacheKey` or computes it: DataLoader
workers decode the views (an unreadable image comes back as a placeholder with the reason, and is
skipped), the engine's runner (:mod:`neudep_utils.models.engines`) computes logits and features,
and finished chunks are written atomically so that an interrupted run resumes. ``mode="moments"``
keeps only the streamed moments (for folders too large to hold); under ``torchrun`` the ranks
split the images (:mod:`.distributed`).
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .._io import file_lock, make_dirs, remove_stale_temporaries
from ..errors import CacheError, DataError
from ..images import Manifest, ViewSpec, resolve_folder, scan_folder
from ..images.views import PilFn
from ..models import LoadedModel, canonical_name, load_model_cached
from ..models.engines import make_runner, model_key_label, resolve_device
from ..moments import Moments
from .distributed import extract_moments_distributed
from .entry import LogitSet, finalize, read_cached, skipped_list, top1_of
from .key import CacheKey, ExtractSpec, default_cache_dir, entry_dir, make_key
from .run import DEFAULT_CHUNK_IMAGES, Extractor, default_workers, extract_full, extract_moments
from .shards import check_shard_count, parse_shard, shard_indices

__all__ = ["cached_entry", "extract"]


def extract(
    model: str | LoadedModel,
    folder: str | os.PathLike[str],
    views: int | ViewSpec = 0,
    *,
    seed: int = 0,
    label_mode: str = "wnid",
    corruption: str | None = None,
    pil_fn: PilFn | None = None,
    shard: str | tuple[int, int] | None = None,
    mode: str = "full",
    features: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 64,
    num_workers: int | None = None,
    device: str | None = None,
    progress: bool = True,
    chunk_images: int = DEFAULT_CHUNK_IMAGES,
    manifest: Manifest | None = None,
    on_chunk: Callable[[int], None] | None = None,
    dist=None,
    engine: str | None = None,
) -> LogitSet | None:
    """Logits (and features) of ``model`` on an image folder, from the cache or computed once.

    Parameters
    ----------
    model : str or LoadedModel
        A registered model name or alias, or a timm hub name; or a loaded model, e.g. a user's
        ONNX file (:func:`neudep_utils.models.onnxfile.load_onnx`: keyed by the file's sha256
        and its preprocessing, run by ONNX Runtime on the CPU, no features).
    folder : str or path
        An ImageNet-format folder ``<wnid>/<image>``, or a subset name under the data root.
    views : int or ViewSpec, default 0
        Seeded augmented views beyond the centre view (or a :class:`ViewSpec`); ``seed`` seeds
        them when an int is given.
    label_mode : {"wnid", "folder"}
        Labels from ImageNet wnids, or the index of the sorted class-folder name.
    corruption, pil_fn : str, callable, optional
        A named per-view PIL transform applied after the geometric transform (e.g. an ImageNet-C
        corruption); the name enters the cache key.
    shard : str or (int, int), optional
        ``"k/N"``: a contiguous block of images; :func:`~.shards.merge_shards` combines the parts.
    mode : {"full", "moments"}
        ``"moments"`` keeps only the streamed moments (count, sum f, sum f f^T) for huge folders.
    features : bool, default True
        Keep the pooled penultimate features (full mode).
    cache_dir : path, optional
        Cache root (default ``$NEUDEP_CACHE`` or ``cache/`` in the checkout).
    batch_size, num_workers, device, progress, chunk_images
        How the run is done (none of them enters the key): batch size, DataLoader workers
        (default: up to 4 cores), ``cpu``/``cuda``/``cuda:N`` (default: a GPU when present), a
        progress bar, images per resumable chunk.
    manifest : Manifest, optional
        The images to extract (default: the whole folder), e.g. a seeded subset.
    on_chunk : callable, optional
        Called with the chunk index after each chunk is saved (tests simulate interruptions).
    dist : DistContext, optional
        Under ``torchrun`` (:mod:`neudep_utils._dist`): the ranks split the images, all-reduce the
        moments and rank 0 writes the one (unsharded) entry; other ranks return ``None``.
    engine : {"auto", "onnxruntime", "torch", "litert"}, optional
        Default ``$NEUDEP_ENGINE`` or ``auto``; the engine is part of the key, and an ``auto``
        fallback from ONNX Runtime to PyTorch warns and is recorded in ``meta.json``. TensorFlow
        Lite models (the ``*_int8`` MobileNets) run in LiteRT only (``auto`` or ``litert``).

    Returns
    -------
    LogitSet or None
        The entry (``None`` on torchrun ranks other than 0). Images that cannot be read are
        skipped and recorded (``LogitSet.skipped``).
    """
    if isinstance(views, int):
        views = ViewSpec(n_aug=views, seed=seed)
    if int(chunk_images) < 1:
        raise ValueError(f"chunk_images must be >= 1, got {chunk_images}")
    if int(batch_size) < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    given = model if isinstance(model, LoadedModel) else None
    if given is not None and given.kind == "onnx":
        device = device or "cpu"  # ONNX Runtime's CPU provider runs model files
        features = features and given.num_features > 0
    if num_workers is not None and int(num_workers) < 0:
        raise ValueError(f"--workers (num_workers) must be >= 0 (0: decode in the main process), "
                         f"got {num_workers}")
    device = resolve_device(device) if dist is None else dist.device
    folder_path = resolve_folder(folder)
    if manifest is None:
        manifest = scan_folder(folder_path, label_mode=label_mode)
    spec = ExtractSpec(model=given.name if given is not None else canonical_name(model),
                       folder=folder_path, views=views,
                       label_mode=label_mode, corruption=corruption, pil_fn=pil_fn,
                       shard=parse_shard(shard), mode=mode, features=features)
    _check_split(spec, manifest, dist)
    loaded = given if given is not None else load_model_cached(spec.model)
    cache_root = Path(cache_dir) if cache_dir else default_cache_dir()
    key, edir, cached, runner, served = _resolve_entry(spec, manifest, loaded, engine, device,
                                                       cache_root, dist)
    if served:
        if dist is None or dist.rank == 0:
            remove_stale_temporaries(edir)  # of a writer killed before its rename
        return cached if dist is None or dist.rank == 0 else None
    ex = Extractor(loaded, runner, batch_size,
                   default_workers() if num_workers is None else num_workers, progress,
                   _describe(spec, dist))
    if dist is not None:  # the ranks of one launch share the work; rank 0 writes
        return _compute(spec, manifest, loaded, runner, key, edir, device, dist, ex,
                        chunk_images, on_chunk)
    # one writer per entry: a second run of the same extraction waits, then serves its result
    with file_lock(edir.with_name(edir.name + ".lock"), on_wait=_waiting(edir)):
        cached = read_cached(key, edir, manifest)
        if cached is not None:
            return cached
        return _compute(spec, manifest, loaded, runner, key, edir, device, None, ex,
                        chunk_images, on_chunk)


def _waiting(edir: Path) -> Callable[[str], None]:
    """What a run says when another process holds the entry's lock."""
    def say(holder: str) -> None:
        warnings.warn(f"another extraction ({holder}) is writing the cache entry {edir}; "
                      "waiting for it to finish, then its entry is used", UserWarning,
                      stacklevel=4)
    return say


def _check_split(spec: ExtractSpec, manifest: Manifest, dist) -> None:
    """Refuse shard or torchrun splits that cannot work (empty parts, torchrun in full mode)."""
    if spec.shard:
        check_shard_count(spec.shard[1], len(manifest), spec.folder,
                          f"--shard {spec.shard[0]}/{spec.shard[1]}")
    if dist is None:
        return
    if spec.mode != "moments":
        raise ValueError(f"torchrun (world size {dist.world_size}) splits the images for "
                         "--mode moments only; for per-image logits start one process per "
                         "--shard k/N and then `merge`")
    if spec.shard:
        raise ValueError("--shard and torchrun do not combine: torchrun already splits the "
                         "images across its ranks; drop --shard")
    check_shard_count(dist.world_size, len(manifest), spec.folder,
                      f"torchrun world size {dist.world_size}")


def _resolve_entry(spec: ExtractSpec, manifest: Manifest, loaded, engine: str | None,
                   device: str, cache_root: Path, dist):
    """``(key, folder, cached entry, runner, served)``: the key and folder of ``spec``'s entry,
    the entry when it is cached, the runner to compute it with (``None`` when the entry is served
    without one) and whether the entry is served from the cache (under torchrun: rank 0's).

    The engine label of the key is known before any runner exists (the runner's set-up exports
    and probes a model: seconds), so a cached entry is served without one. When the runner falls
    back to another engine (with a warning), its own entry is looked up. Under torchrun every
    rank builds its runner first (all must use one engine) and rank 0 decides "cached".
    """
    runner = None
    if dist is not None:
        runner = make_runner(loaded, engine, device, cache_root)
        labels = dist.all_gather(runner.label)
        if len(set(labels)) > 1:
            raise CacheError(f"the torchrun ranks would extract with different engines "
                             f"({sorted(set(labels))}); install the same packages on every node "
                             "or set NEUDEP_ENGINE=torch for every rank")
    label = runner.label if runner is not None else model_key_label(loaded, engine, device)
    key = make_key(spec, manifest, loaded=loaded, engine=label)
    edir = entry_dir(key, cache_root)
    cached = read_cached(key, edir, manifest)
    if dist is not None:
        return key, edir, cached, runner, dist.rank0_says(cached is not None)
    if cached is not None:
        return key, edir, cached, None, True
    runner = make_runner(loaded, engine, device, cache_root)
    if runner.label != label:  # fell back (with a warning): the fallback engine's own entry
        key = make_key(spec, manifest, loaded=loaded, engine=runner.label)
        edir = entry_dir(key, cache_root)
        cached = read_cached(key, edir, manifest)
    return key, edir, cached, runner, cached is not None


def _discard(edir: Path) -> None:
    """Remove an unfinished entry's folder (chunks, partial moments, reasons)."""
    shutil.rmtree(edir, ignore_errors=True)
    try:
        edir.parent.rmdir()  # the model's folder, when this was its only entry
    except OSError:
        pass


def cached_entry(model: str, folder: str | os.PathLike[str], views: int | ViewSpec = 0, *,
                 seed: int = 0, label_mode: str = "wnid", mode: str = "full",
                 features: bool = True, cache_dir: str | os.PathLike[str] | None = None,
                 manifest: Manifest | None = None, engine: str | None = None,
                 device: str | None = None) -> LogitSet | None:
    """The cached entry :func:`extract` would serve for these arguments, or ``None``; never
    computes anything (it scans the folder, unless ``manifest`` is given, and loads the model's
    weights for their checksum).

    Parameters are those of :func:`extract`. The entry is looked up under the engine label
    :func:`extract` would use first on this machine (``engine``/``$NEUDEP_ENGINE``, ``device``).
    """
    if isinstance(views, int):
        views = ViewSpec(n_aug=views, seed=seed)
    folder_path = resolve_folder(folder)
    if manifest is None:
        manifest = scan_folder(folder_path, label_mode=label_mode)
    spec = ExtractSpec(model=canonical_name(model), folder=folder_path, views=views,
                       label_mode=label_mode, mode=mode, features=features)
    loaded = load_model_cached(spec.model)
    key = make_key(spec, manifest, loaded=loaded,
                   engine=model_key_label(loaded, engine, resolve_device(device)))
    edir = entry_dir(key, Path(cache_dir) if cache_dir else default_cache_dir())
    return read_cached(key, edir, manifest)


def _describe(spec: ExtractSpec, dist) -> str:
    """The progress bar's label."""
    desc = f"{spec.model} {Path(spec.folder).name}" + (f" [{spec.corruption}]"
                                                       if spec.corruption else "")
    if spec.shard:
        desc += f" shard {spec.shard[0]}/{spec.shard[1]}"
    if dist is not None:
        desc += f" rank {dist.rank}/{dist.world_size}"
    return desc


def _compute(spec: ExtractSpec, manifest: Manifest, loaded, runner, key: CacheKey, edir: Path,
             device: str, dist, ex: Extractor, chunk_images: int, on_chunk) -> LogitSet | None:
    """Compute the entry of ``key`` (resuming finished chunks) and write it."""
    make_dirs(edir)
    for d in (edir, edir / "chunks"):
        remove_stale_temporaries(d)
    idx = shard_indices(len(manifest), spec.shard)
    labelled = spec.label_mode == "wnid"
    extra: dict = {"folder": str(spec.folder), "model": spec.model,
                   "weights_source": loaded.weights_source, "device": device, "world_size": 1,
                   "n_requested": int(len(idx)), "engine": runner.meta}
    if spec.mode == "moments" and dist is not None:
        return extract_moments_distributed(ex, spec, manifest, idx, edir, chunk_images, on_chunk,
                                           dist, key, extra)
    if spec.mode == "moments":
        mom, correct, ok = extract_moments(ex, spec, manifest, idx, edir, chunk_images, on_chunk,
                                           "partial.npz")
        arrays = {"count": np.asarray(mom.count), "sum_f": mom.sum_f, "sum_ff": mom.sum_ff,
                  "labels": manifest.labels[idx][ok], "image_index": idx[ok]}
    else:
        logits, feats, ok, _ = extract_full(ex, spec, manifest, idx, edir, chunk_images,
                                             on_chunk)
        mom = Moments.zeros(logits.shape[-1])
        for s in range(0, logits.shape[0], 1024):
            mom.update(logits[s:s + 1024].reshape(-1, logits.shape[-1]))
        labels = manifest.labels[idx][ok]
        correct = int((logits[:, 0].argmax(-1) == labels).sum()) if labelled else None
        arrays = {"logits": logits, "labels": labels, "image_index": idx[ok],
                  "count": np.asarray(mom.count), "sum_f": mom.sum_f, "sum_ff": mom.sum_ff}
        if feats is not None:
            arrays["features"] = feats
    skipped = skipped_list(manifest, idx, ok, edir)
    n_ok = int(ok.sum())
    if n_ok == 0 and len(idx):
        _discard(edir)
        part = f" (shard {spec.shard[0]}/{spec.shard[1]})" if spec.shard else ""
        shown = "; ".join(f"{p} ({why})" for p, why in skipped[:3])
        raise DataError(f"no readable images in {spec.folder}{part}: all {len(idx)} image(s) "
                        f"failed to decode ({shown}{' ...' if len(skipped) > 3 else ''}); nothing "
                        "was cached: replace the files or choose another --data folder")
    extra.update({"n_images": n_ok, "top1": top1_of(correct, n_ok),
                  "skipped_images": [list(x) for x in skipped]})
    meta = finalize(key, edir, arrays, extra)
    shutil.rmtree(edir / "chunks", ignore_errors=True)
    (edir / "partial.npz").unlink(missing_ok=True)
    (edir / "skipped.json").unlink(missing_ok=True)
    return LogitSet(key=key, path=edir, logits=arrays.get("logits"),
                    features=arrays.get("features"), labels=arrays["labels"],
                    image_ids=tuple(manifest.relpaths[i] for i in arrays["image_index"]),
                    moments=mom, meta=meta, skipped=skipped)
