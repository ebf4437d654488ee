"""Cache keys: everything that determines a cache entry's content, and where the entry lives.

A :class:`CacheKey` covers the model name, its weights' sha256, the manifest digest (image list,
and for folders of up to 20,000 images every file's bytes), the preprocessing, the views, the
corruption, the shard, the storage mode, whether features are kept, the cache format version and
the inference engine's label. An entry lives in ``<cache_dir>/<model>/<first 16 hex of the key's
sha256>/``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..images import Manifest
from ..images.views import PilFn, ViewSpec
from ..models import canonical_name
from ..models.engines import default_key_label

__all__ = ["CACHE_VERSION", "CacheKey", "ExtractSpec", "default_cache_dir", "entry_dir",
           "make_key"]

#: 2: served metadata checksummed, unreadable images skipped and recorded, chunk layout recorded.
CACHE_VERSION = 2


def default_cache_dir() -> Path:
    """``$NEUDEP_CACHE`` if set, else ``cache/`` in the repository checkout."""
    env = os.environ.get("NEUDEP_CACHE")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[2] / "cache"



@dataclass(frozen=True)
class CacheKey:
    """Everything that determines a cache entry's content."""

    model: str
    weights_sha256: str
    manifest_digest: str
    n_images: int
    preprocess: dict
    views: dict
    corruption: str | None = None
    shard: tuple[int, int] | None = None
    mode: str = "full"  # "full" (per-image logits and features) or "moments"
    features: bool = True
    version: int = CACHE_VERSION
    #: the inference engine's label (:func:`neudep_utils.models.engines.key_label`): ``torch`` (PyTorch
    #: on the CPU), ``torch-cuda``, ``onnxruntime <version>; <export>``
    engine: str = "torch"

    def as_dict(self) -> dict:
        """JSON-able form. ``engine`` is left out when it is ``torch`` (PyTorch on the CPU): the
        entries written before engines entered the key were computed that way and keep their key."""
        d = dataclasses.asdict(self)
        d["shard"] = list(self.shard) if self.shard else None
        if d["engine"] == "torch":
            del d["engine"]
        return d

    @property
    def digest(self) -> str:
        """sha256 of the canonical JSON of the key."""
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()



@dataclass
class ExtractSpec:
    """What to extract: a model on a folder with views, optional corruption and shard."""

    model: str
    folder: str | os.PathLike[str]
    views: ViewSpec = dataclasses.field(default_factory=ViewSpec)
    label_mode: str = "wnid"
    corruption: str | None = None
    pil_fn: PilFn | None = None
    shard: tuple[int, int] | None = None
    mode: str = "full"
    features: bool = True


def make_key(spec: ExtractSpec, manifest: Manifest, loaded=None, weights_sha256: str | None = None,
             preprocess: dict | None = None, engine: str | None = None) -> CacheKey:
    """The :class:`CacheKey` of ``spec`` on ``manifest``.

    ``engine``: the engine's key label (:func:`neudep_utils.models.engines.key_label`); ``None``: the
    label :func:`extract` uses by default on this machine (before any fallback).
    """
    if loaded is not None:
        weights_sha256 = loaded.weights_sha256
        preprocess = loaded.preprocess.describe()
    if weights_sha256 is None or preprocess is None:
        raise ValueError("make_key needs a loaded model or weights_sha256 and preprocess")
    if spec.mode not in ("full", "moments"):
        raise ValueError(f"mode must be 'full' or 'moments', got {spec.mode!r}")
    if spec.pil_fn is not None and not spec.corruption:
        raise ValueError("a pil_fn needs a corruption string naming it (it is part of the cache key)")
    return CacheKey(model=canonical_name(spec.model), weights_sha256=weights_sha256,
                    manifest_digest=manifest.digest, n_images=len(manifest),
                    preprocess=preprocess, views=spec.views.describe(), corruption=spec.corruption,
                    shard=spec.shard, mode=spec.mode, features=spec.features and spec.mode == "full",
                    engine=default_key_label() if engine is None else engine)


def entry_dir(key: CacheKey, cache_dir: Path | None = None) -> Path:
    """Folder of a cache entry."""
    return Path(cache_dir or default_cache_dir()) / key.model / key.digest[:16]

