"""A cache entry on disk: its files, how it is read back checked, and how it is finished.

One cache entry per :class:`CacheKey` (model name, weights checksum, manifest digest, preprocessing,
views, optional per-image corruption, shard, storage mode), in ``<cache_dir>/<model>/<key16>/``:

- ``meta.json``: the key, the sha256 of ``data.npz``, summary numbers (``top1``, ...) and the
  images skipped as unreadable; written last, so an entry without it is unfinished. Its own
  content is covered by ``meta_sha256``, so an edited summary number is detected.
- ``data.npz``: ``logits`` (images, views, classes) float32, ``features`` (images, views, d)
  float32, ``labels``, ``image_index`` (manifest positions of the stored images) and the streamed
  moments ``count``, ``sum_f``, ``sum_ff`` (float64, over every stored view).
- ``chunks/`` while extracting: one atomically written file per finished chunk of images, so an
  interrupted run resumes from its last finished chunk; ``chunks/layout.json`` records the chunk
  size, and a resume with another layout discards the chunks (with a warning) instead of reusing
  them at the wrong rows. Moments-only entries (for folders too large to hold, e.g. the 1.28M
  ImageNet train images) keep a running ``partial.npz`` instead, which records how many images
  it holds, so a resume continues exactly after them whatever its chunk size.

An image that cannot be read during the run (truncated, disguised, too large; see
:func:`neudep_utils.images.open_image`) is skipped: it is left out of the logits, the moments and
``top1``, and recorded with its path and reason in ``meta.json`` (``LogitSet.skipped``). The key
and the finished chunks stay valid.

Every write is atomic (temporary file, fsync, rename; the temporary file is removed when the write
fails). A damaged or mismatched entry (bad checksum of ``data.npz`` or ``meta.json``, truncated
zip, wrong key) is detected on load and rebuilt with a warning.
"""

from __future__ import annotations

import json
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._io import (
    atomic_save_npz,
    atomic_write_bytes,
    load_npz_checked,
    meta_checksum,
    remove_stale_temporaries,
)
from ..errors import CacheError
from ..images import Manifest
from ..moments import Moments
from .key import CacheKey

__all__ = ["LogitSet", "check_layout", "chunk_bounds", "finalize", "load_reasons", "read_cached",
           "save_reasons", "skipped_from_meta", "skipped_list", "top1_of"]


@dataclass
class LogitSet:
    """Cached logits (and features) of one model on one folder, with labels and image ids."""

    key: CacheKey
    path: Path
    logits: np.ndarray | None  # (images, views, classes) float32; None in moments mode
    features: np.ndarray | None  # (images, views, d) float32
    labels: np.ndarray  # (images,) int64 (-1 when unknown, moments mode)
    image_ids: tuple[str, ...]
    moments: Moments
    meta: dict = field(default_factory=dict)
    #: images that could not be read during extraction, excluded from every array, the moments and
    #: ``top1``: ``(relative path, reason)``
    skipped: tuple[tuple[str, str], ...] = ()

    @property
    def centre(self) -> np.ndarray:
        """Centre-view logits ``(images, classes)``."""
        if self.logits is None:
            raise CacheError("this entry holds moments only (mode='moments')")
        return self.logits[:, 0]

    @property
    def top1(self) -> float | None:
        """Centre-view top-1 accuracy over the readable images (ImageNet-labelled folders only)."""
        return self.meta.get("top1")

    def skipped_note(self, limit: int = 3) -> str:
        """One line saying which images were skipped as unreadable ('' when none)."""
        if not self.skipped:
            return ""
        shown = "; ".join(f"{p} ({why})" for p, why in self.skipped[:limit])
        more = f"; ... ({len(self.skipped) - limit} more)" if len(self.skipped) > limit else ""
        return (f"{len(self.skipped)} unreadable image(s) excluded from the logits, the moments "
                f"and top-1 (recorded in {self.path / 'meta.json'}): {shown}{more}")

    def __len__(self) -> int:
        return len(self.image_ids)



def skipped_from_meta(meta: dict) -> tuple[tuple[str, str], ...]:
    return tuple((str(p), str(why)) for p, why in meta.get("skipped_images", []))


def read_cached(key: CacheKey, edir: Path, manifest: Manifest) -> LogitSet | None:
    """The entry of ``key`` in ``edir`` if it is complete and intact; ``None`` (with a warning
    when something was there but damaged or mismatched) otherwise."""
    meta_path = edir / "meta.json"
    if not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        warnings.warn(f"cache entry {edir}: unreadable meta.json; rebuilding", stacklevel=3)
        return None
    if not isinstance(meta, dict) or meta.get("key") != key.as_dict():
        warnings.warn(f"cache entry {edir}: key mismatch; rebuilding", stacklevel=3)
        return None
    if meta.get("meta_sha256") != meta_checksum(meta):
        warnings.warn(f"cache entry {edir}: meta.json was edited or damaged (checksum mismatch); "
                      "rebuilding", stacklevel=3)
        return None
    arrays = load_npz_checked(edir / "data.npz", meta.get("data_sha256"))
    if arrays is None:
        warnings.warn(f"cache entry {edir}: data.npz is missing, truncated or damaged "
                      "(checksum mismatch); rebuilding", stacklevel=3)
        return None
    index = arrays["image_index"]
    return LogitSet(
        key=key, path=edir,
        logits=arrays.get("logits"), features=arrays.get("features"),
        labels=arrays["labels"], image_ids=tuple(manifest.relpaths[int(i)] for i in index),
        moments=Moments(int(arrays["count"]), arrays["sum_f"], arrays["sum_ff"]), meta=meta,
        skipped=skipped_from_meta(meta))


def finalize(key: CacheKey, edir: Path, arrays: dict[str, np.ndarray], extra: dict) -> dict:
    """Write ``data.npz``, then ``meta.json`` (which makes the entry valid); returns the meta.

    Temporary files that writers killed before their rename left in ``edir`` are removed first
    (:func:`neudep_utils._io.remove_stale_temporaries`)."""
    remove_stale_temporaries(edir)
    sha = atomic_save_npz(edir / "data.npz", **arrays)
    meta = {"key": key.as_dict(), "data_sha256": sha, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            **extra}
    meta["meta_sha256"] = meta_checksum(meta)
    atomic_write_bytes(edir / "meta.json", json.dumps(meta, indent=1, sort_keys=True).encode())
    return meta


def top1_of(correct: int | None, n_ok: int) -> float | None:
    return (correct / n_ok) if correct is not None and n_ok else None



def skipped_list(manifest: Manifest, idx: np.ndarray, ok: np.ndarray,
                  edir: Path) -> tuple[tuple[str, str], ...]:
    reasons = load_reasons(edir)
    return tuple((manifest.relpaths[int(idx[p])], reasons.get(int(idx[p]), "unreadable image"))
                 for p in np.flatnonzero(~ok))


# The reasons images were skipped, by manifest index, kept beside the chunks of a running
# extraction (``skipped.json``) so that a resumed run still knows them.
def load_reasons(edir: Path) -> dict[int, str]:
    try:
        raw = json.loads((edir / "skipped.json").read_text())
        return {int(k): str(v) for k, v in raw.items()}
    except (OSError, ValueError, AttributeError):
        return {}


def save_reasons(edir: Path, new: dict[int, str]) -> None:
    if not new:
        return
    reasons = load_reasons(edir)
    reasons.update(new)
    atomic_write_bytes(edir / "skipped.json",
                       json.dumps({str(k): v for k, v in sorted(reasons.items())}).encode())


def chunk_bounds(n: int, chunk: int) -> list[tuple[int, int]]:
    return [(s, min(s + chunk, n)) for s in range(0, n, chunk)]


def check_layout(cdir: Path, layout: dict) -> None:
    """Discard finished chunks written with another layout (chunk size, images, views)."""
    lpath = cdir / "layout.json"
    if cdir.exists():
        try:
            old = json.loads(lpath.read_text())
        except (OSError, ValueError):
            old = None
        if old != layout:
            n_old = len(list(cdir.glob("chunk_*.npz")))
            if n_old:
                warnings.warn(
                    f"{cdir}: {n_old} finished chunk(s) were written with layout {old}, this run "
                    f"uses {layout}; discarding them and restarting this entry", stacklevel=3)
            shutil.rmtree(cdir, ignore_errors=True)
    if not lpath.exists():
        atomic_write_bytes(lpath, json.dumps(layout, sort_keys=True).encode())
