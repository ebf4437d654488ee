"""Logits of one model (or two stacked models) on a set of images, read from the cache.

:func:`load_logits` concatenates the cached logits of a model over several image folders into a
:class:`LogitData` (images x views x columns); :func:`stack_models` puts two models' logits of the
same images side by side (``f = [f^A; f^B]``, the cross-model setting). Nothing here extracts
anything the cache does not already hold or would not extract on the first call.

Conventions: view 0 is the centre view (the only view ever evaluated); the classifier whose
accuracy is judged is the first ``n_classes`` columns.

Provenance: every :class:`LogitData` carries the records of the cache entries it was built from
(:attr:`LogitData.provenance`, one :func:`provenance_record` each), and
:func:`neudep_utils.report.write_results` writes those of the inputs a notebook hands it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..images import resolve_folder
from ..images.corruptions import corruption_fn, subset_manifest
from .entry import LogitSet
from .extract import extract

__all__ = ["LogitData", "load_logits", "provenance_record", "read_entry", "stack_models"]


def read_entry(model: str, folder: str | os.PathLike[str], views: int = 0, *,
               corruption: str | None = None, subset: int | None = None,
               label_mode: str = "wnid", **kw) -> LogitSet:
    """The cache entry of ``model`` on ``folder`` (extracted once if missing).

    Parameters
    ----------
    model, folder, views, label_mode
        As for :func:`~.extract.extract`.
    corruption : str, optional
        A corruption name (:func:`neudep_utils.images.corruptions.corruption_name`), applied to
        every view; resolved to its seeded transform here.
    subset : int, optional
        Only a seeded subset of this many images of the folder
        (:func:`neudep_utils.images.corruptions.subset_manifest`).
    **kw
        Further keyword arguments of :func:`~.extract.extract` (``cache_dir``, ``progress``...).

    Returns
    -------
    LogitSet
        The entry; :func:`provenance_record` describes it.
    """
    if subset is not None:
        kw["manifest"] = subset_manifest(folder, subset, label_mode=label_mode)[0]
    if corruption is not None:
        kw.update(corruption=corruption, pil_fn=corruption_fn(corruption))
    return extract(model, folder, views, label_mode=label_mode, **kw)


def provenance_record(ls: LogitSet) -> dict:
    """What a results file records of a cache entry it used: model, folder, views, mode,
    corruption, image count, key and manifest digests, weights sha256, entry folder, data sha256,
    top-1, skipped images and the engine's cache-key label."""
    key = ls.key
    return {
        "model": key.model, "folder": str(ls.meta.get("folder", "")),
        "views": key.views.get("n_aug", 0) + 1, "mode": key.mode, "corruption": key.corruption,
        "n_images": int(ls.meta.get("n_images", len(ls))), "key_digest": key.digest,
        "manifest_digest": key.manifest_digest, "weights_sha256": key.weights_sha256,
        "entry": f"{ls.path.parent.name}/{ls.path.name}", "data_sha256": ls.meta.get("data_sha256"),
        "top1": ls.meta.get("top1"), "skipped": len(ls.skipped), "engine": key.engine}


@dataclass
class LogitData:
    """Per-image logits of one model (or two stacked models) on a set of images.

    ``logits``: (N images, V views, C columns) float32, view 0 the centre (evaluation) view.
    ``labels``: (N,) ImageNet-1k class index. ``image_ids``: ``"<folder>/<wnid>/<file>"``.
    ``n_classes``: the classifier's number of classes (the first ``n_classes`` columns);
    ``blocks``: model name -> column slice (one block per model). ``features``: (N, V, d)
    penultimate features of a single model when loaded with ``features=True``, else ``None``.
    """

    logits: np.ndarray
    labels: np.ndarray
    image_ids: tuple[str, ...]
    blocks: dict[str, slice]
    n_classes: int = 1000
    features: np.ndarray | None = None
    #: the cache entries these logits come from (:func:`provenance_record` of each)
    provenance: tuple[dict, ...] = ()

    @property
    def n_images(self) -> int:
        """N."""
        return self.logits.shape[0]

    @property
    def n_views(self) -> int:
        """V (1 + augmented views)."""
        return self.logits.shape[1]

    @property
    def models(self) -> tuple[str, ...]:
        """Model names in column order."""
        return tuple(self.blocks)

    def centre_view(self, idx: np.ndarray | None = None, block: str | None = None) -> np.ndarray:
        """Centre-view logits (N or len(idx), columns of ``block`` or all)."""
        x = self.logits[:, 0] if idx is None else self.logits[idx, 0]
        return x if block is None else x[:, self.blocks[block]]

    def top1(self, block: str | None = None, idx: np.ndarray | None = None) -> float:
        """Centre-view top-1 accuracy of a model block (default: the first)."""
        b = block or self.models[0]
        lab = self.labels if idx is None else self.labels[idx]
        return float((self.centre_view(idx, b).argmax(1) == lab).mean())


def load_logits(model: str, folders: Sequence[str | os.PathLike[str]], views: int = 0, *,
                features: bool = False, cache_dir: str | os.PathLike[str] | None = None,
                progress: bool = False, seed: int = 0) -> LogitData:
    """Cached logits of ``model`` on the concatenation of ``folders`` (extracted once if missing).

    ``views``: augmented views per image beyond the centre view (the cache entry's ``views``).
    ``features``: also load the penultimate features.
    """
    parts, feats, labels, ids, prov = [], [], [], [], []
    for f in folders:
        ls = read_entry(model, f, views, seed=seed, cache_dir=cache_dir, progress=progress)
        if ls.logits is None:
            raise ValueError(f"{model} on {f}: the cache entry holds moments only")
        if features and ls.features is None:
            raise ValueError(f"{model} on {f}: the cache entry holds no features")
        if ls.skipped:  # unreadable images are not in the entry's arrays
            warnings.warn(f"{model} on {f}: {ls.skipped_note()}", stacklevel=2)
        parts.append(ls.logits)
        feats.append(ls.features)
        labels.append(ls.labels)
        prov.append(provenance_record(ls))
        tag = resolve_folder(f).name
        ids.extend(f"{tag}/{r}" for r in ls.image_ids)
    L = np.concatenate(parts)
    return LogitData(L, np.concatenate(labels), tuple(ids), {model: slice(0, L.shape[2])},
                     L.shape[2], np.concatenate(feats) if features else None, tuple(prov))


def stack_models(a: LogitData, b: LogitData) -> LogitData:
    """Side-by-side logits ``[f^A; f^B]`` of the same images (same ids, labels and views).

    The classifier of the stack is A (``n_classes`` = A's). Augmented views are stacked view by
    view: the cache seeds view ``v`` of image ``i`` identically for every model, so the crops
    coincide (up to each model's input resolution).
    """
    if a.image_ids != b.image_ids:
        raise ValueError("stack_models needs the same images in the same order")
    if not np.array_equal(a.labels, b.labels):
        raise ValueError("stack_models: labels differ")
    v = min(a.n_views, b.n_views)
    if set(a.blocks) & set(b.blocks):
        raise ValueError(f"models overlap: {set(a.blocks) & set(b.blocks)}")
    off = a.logits.shape[2]
    blocks = dict(a.blocks)
    blocks.update({m: slice(s.start + off, s.stop + off) for m, s in b.blocks.items()})
    L = np.concatenate([a.logits[:, :v], b.logits[:, :v]], axis=2)
    return LogitData(L, a.labels, a.image_ids, blocks, a.n_classes,
                     provenance=a.provenance + b.provenance)
