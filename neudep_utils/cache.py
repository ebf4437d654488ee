"""Content-addressed cache of logits, pooled penultimate features and streamed logit moments.

One cache entry per :class:`CacheKey` (model name, weights checksum, manifest digest, preprocessing,
views, optional per-image corruption, shard, storage mode), in ``<cache_dir>/<model>/<key16>/``:

- ``meta.json``: the key, the sha256 of ``data.npz`` and summary numbers; written last, so an entry
  without it is unfinished.
- ``data.npz``: ``logits`` (images, views, classes) float32, ``features`` (images, views, d)
  float32, ``labels``, ``image_index`` and the streamed moments ``count``, ``sum_f``, ``sum_ff``
  (float64, over every stored view).
- ``chunks/`` while extracting: one atomically written file per finished chunk of images, so an
  interrupted run resumes from its last finished chunk. Moments-only entries (for folders too large
  to hold, e.g. the 1.28M ImageNet train images) keep a running ``partial.npz`` instead.

Every write is atomic (temporary file, fsync, rename). A damaged or mismatched ``data.npz`` (bad
checksum, truncated zip, wrong key) is detected on load and rebuilt with a warning.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
import os
import shutil
import time
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .data import Manifest, PilFn, ViewDataset, ViewSpec, resolve_folder, scan_folder

CACHE_VERSION = 1
DEFAULT_CHUNK_IMAGES = 256


class CacheError(RuntimeError):
    """A cache entry cannot be used (e.g. shards that do not belong together)."""


def default_cache_dir() -> Path:
    """``$NEUDEP_CACHE`` if set, else ``cache/`` in the repository checkout."""
    env = os.environ.get("NEUDEP_CACHE")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[1] / "cache"


# --------------------------------------------------------------------------------------------
# Atomic file helpers
# --------------------------------------------------------------------------------------------


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def atomic_save_npz(path: Path, **arrays: np.ndarray) -> str:
    """Save arrays as an uncompressed ``.npz`` atomically; returns the file's sha256."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    data = buf.getvalue()
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def load_npz_checked(path: Path, sha256: str | None = None) -> dict[str, np.ndarray] | None:
    """Load every array of an ``.npz``; ``None`` when missing, truncated, corrupt or mismatched."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        return None
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError):
        return None


# --------------------------------------------------------------------------------------------
# Keys, moments, results
# --------------------------------------------------------------------------------------------


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

    def as_dict(self) -> dict:
        """JSON-able form."""
        d = dataclasses.asdict(self)
        d["shard"] = list(self.shard) if self.shard else None
        return d

    @property
    def digest(self) -> str:
        """sha256 of the canonical JSON of the key."""
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()


@dataclass
class Moments:
    """Streamed logit moments: count, sum of f and sum of f f^T (float64)."""

    count: int
    sum_f: np.ndarray
    sum_ff: np.ndarray

    @classmethod
    def zeros(cls, n: int) -> Moments:
        """Empty moments for ``n`` classes."""
        return cls(0, np.zeros(n), np.zeros((n, n)))

    def update(self, f: np.ndarray) -> None:
        """Add a batch of logit rows ``(B, n)``."""
        f64 = np.asarray(f, dtype=np.float64).reshape(-1, self.sum_f.shape[0])
        self.count += f64.shape[0]
        self.sum_f += f64.sum(axis=0)
        self.sum_ff += f64.T @ f64

    def __add__(self, other: Moments) -> Moments:
        return Moments(self.count + other.count, self.sum_f + other.sum_f, self.sum_ff + other.sum_ff)

    @property
    def mean(self) -> np.ndarray:
        """E[f]."""
        return self.sum_f / max(self.count, 1)

    def second_moment(self, center: bool = False) -> np.ndarray:
        """S = E[f f^T], or the centred covariance E[(f - mu)(f - mu)^T] when ``center``."""
        if self.count == 0:
            raise ValueError("no samples accumulated")
        S = self.sum_ff / self.count
        if center:
            mu = self.mean
            S = S - np.outer(mu, mu)
        return (S + S.T) / 2


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

    @property
    def centre(self) -> np.ndarray:
        """Centre-view logits ``(images, classes)``."""
        if self.logits is None:
            raise CacheError("this entry holds moments only (mode='moments')")
        return self.logits[:, 0]

    @property
    def top1(self) -> float | None:
        """Centre-view top-1 accuracy (ImageNet-labelled folders only)."""
        return self.meta.get("top1")

    def __len__(self) -> int:
        return len(self.image_ids)


# --------------------------------------------------------------------------------------------
# Extraction
# --------------------------------------------------------------------------------------------


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


def shard_indices(n_images: int, shard: tuple[int, int] | None) -> np.ndarray:
    """Contiguous block of image indices of shard ``k/N``."""
    if shard is None:
        return np.arange(n_images)
    k, n = shard
    return np.arange(n_images * k // n, n_images * (k + 1) // n)


@functools.lru_cache(maxsize=3)
def _load_model_cached(name: str):
    """Load a model once per process (extraction of several folders reuses it)."""
    from .models import load_model

    return load_model(name)


def best_device() -> str:
    """``cuda`` when a GPU is present, else ``cpu``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _default_workers() -> int:
    return max(1, min(4, (os.cpu_count() or 1)))


class _Extractor:
    """Runs a model over a :class:`ViewDataset` in batches (DataLoader workers, inference mode)."""

    def __init__(self, loaded, device: str, batch_size: int, num_workers: int, progress: bool,
                 desc: str):
        self.loaded = loaded
        self.device = device
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.progress = progress
        self.desc = desc
        import torch

        self.model = loaded.model.to(device)
        if device == "cpu":
            self.model = self.model.to(memory_format=torch.channels_last)

    def run(self, dataset: ViewDataset, n_total: int, done: int):
        """Yield ``(logits, features, image_index, view_index)`` numpy batches."""
        import torch
        from torch.utils.data import DataLoader
        from tqdm.auto import tqdm

        loader = DataLoader(dataset, batch_size=self.batch_size, shuffle=False,
                            num_workers=self.num_workers, persistent_workers=False,
                            pin_memory=self.device == "cuda",
                            prefetch_factor=4 if self.num_workers else None)
        bar = tqdm(total=n_total, initial=done, desc=self.desc, unit="view",
                   disable=not self.progress, smoothing=0.1, mininterval=1.0)
        try:
            with torch.inference_mode():
                for x, img_i, view_i in loader:
                    x = x.to(self.device, non_blocking=True)
                    if self.device == "cpu":
                        x = x.contiguous(memory_format=torch.channels_last)
                    logits, feats = self.loaded.logits_and_features(x)
                    bar.update(x.shape[0])
                    yield (logits.float().cpu().numpy(), feats.float().cpu().numpy(),
                           img_i.numpy(), view_i.numpy())
        finally:
            bar.close()


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
             preprocess: dict | None = None) -> CacheKey:
    """The :class:`CacheKey` of ``spec`` on ``manifest``."""
    from .models import canonical_name

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
                    shard=spec.shard, mode=spec.mode, features=spec.features and spec.mode == "full")


def entry_dir(key: CacheKey, cache_dir: Path | None = None) -> Path:
    """Folder of a cache entry."""
    return Path(cache_dir or default_cache_dir()) / key.model / key.digest[:16]


def _read_entry(key: CacheKey, edir: Path, manifest: Manifest) -> LogitSet | None:
    meta_path = edir / "meta.json"
    if not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError):
        warnings.warn(f"cache entry {edir}: unreadable meta.json; rebuilding", stacklevel=3)
        return None
    if meta.get("key") != key.as_dict():
        warnings.warn(f"cache entry {edir}: key mismatch; rebuilding", stacklevel=3)
        return None
    arrays = load_npz_checked(edir / "data.npz", meta.get("data_sha256"))
    if arrays is None:
        warnings.warn(f"cache entry {edir}: data.npz is missing, truncated or damaged "
                      "(checksum mismatch); rebuilding", stacklevel=3)
        return None
    idx = shard_indices(len(manifest), key.shard)
    return LogitSet(
        key=key, path=edir,
        logits=arrays.get("logits"), features=arrays.get("features"),
        labels=arrays["labels"], image_ids=tuple(manifest.relpaths[i] for i in idx),
        moments=Moments(int(arrays["count"]), arrays["sum_f"], arrays["sum_ff"]), meta=meta)


def _finalize(key: CacheKey, edir: Path, arrays: dict[str, np.ndarray], extra: dict) -> dict:
    sha = atomic_save_npz(edir / "data.npz", **arrays)
    meta = {"key": key.as_dict(), "data_sha256": sha, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            **extra}
    atomic_write_bytes(edir / "meta.json", json.dumps(meta, indent=1, sort_keys=True).encode())
    return meta


def extract(
    model: str,
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
) -> LogitSet:
    """Logits (and features) of ``model`` on an image folder, from the cache or computed once.

    ``views``: number of seeded augmented views beyond the centre view (or a :class:`ViewSpec`).
    ``corruption`` + ``pil_fn``: a named per-view PIL transform applied after the geometric
    transform (e.g. an ImageNet-C corruption); the name enters the cache key. ``shard``: ``"k/N"``
    extracts a contiguous block of images; :func:`merge_shards` combines the N parts.
    ``mode="moments"`` keeps only the streamed moments (count, sum f, sum f f^T) for huge folders.
    ``on_chunk(i)`` is called after each chunk is saved (used by tests to simulate interruptions).
    """
    from .models import canonical_name

    if isinstance(views, int):
        views = ViewSpec(n_aug=views, seed=seed)
    folder_path = resolve_folder(folder)
    if manifest is None:
        manifest = scan_folder(folder_path, label_mode=label_mode)
    spec = ExtractSpec(model=canonical_name(model), folder=folder_path, views=views,
                       label_mode=label_mode, corruption=corruption, pil_fn=pil_fn,
                       shard=parse_shard(shard), mode=mode, features=features)
    loaded = _load_model_cached(spec.model)
    key = make_key(spec, manifest, loaded=loaded)
    edir = entry_dir(key, Path(cache_dir) if cache_dir else None)
    cached = _read_entry(key, edir, manifest)
    if cached is not None:
        return cached
    edir.mkdir(parents=True, exist_ok=True)
    device = device or best_device()
    workers = _default_workers() if num_workers is None else num_workers
    desc = f"{spec.model} {folder_path.name}" + (f" [{corruption}]" if corruption else "")
    if spec.shard:
        desc += f" shard {spec.shard[0]}/{spec.shard[1]}"
    ex = _Extractor(loaded, device, batch_size, workers, progress, desc)
    idx = shard_indices(len(manifest), spec.shard)
    labels = manifest.labels[idx]
    if mode == "moments":
        mom, correct = _extract_moments(ex, spec, manifest, idx, edir, chunk_images, on_chunk)
        arrays = {"count": np.asarray(mom.count), "sum_f": mom.sum_f, "sum_ff": mom.sum_ff,
                  "labels": labels, "image_index": idx}
    else:
        logits, feats = _extract_full(ex, spec, manifest, idx, edir, chunk_images, on_chunk)
        mom = Moments.zeros(logits.shape[-1])
        for s in range(0, logits.shape[0], 1024):
            mom.update(logits[s:s + 1024].reshape(-1, logits.shape[-1]))
        correct = int((logits[:, 0].argmax(-1) == labels).sum()) if label_mode == "wnid" else None
        arrays = {"logits": logits, "labels": labels, "image_index": idx, "count": np.asarray(mom.count),
                  "sum_f": mom.sum_f, "sum_ff": mom.sum_ff}
        if feats is not None:
            arrays["features"] = feats
    extra = {"folder": str(folder_path), "n_images": int(len(idx)), "model": spec.model,
             "weights_source": loaded.weights_source, "device": device,
             "top1": (correct / len(idx)) if correct is not None and len(idx) else None}
    meta = _finalize(key, edir, arrays, extra)
    shutil.rmtree(edir / "chunks", ignore_errors=True)
    (edir / "partial.npz").unlink(missing_ok=True)
    return LogitSet(key=key, path=edir, logits=arrays.get("logits"), features=arrays.get("features"),
                    labels=labels, image_ids=tuple(manifest.relpaths[i] for i in idx),
                    moments=mom, meta=meta)


def _chunk_bounds(n: int, chunk: int) -> list[tuple[int, int]]:
    return [(s, min(s + chunk, n)) for s in range(0, n, chunk)]


def _extract_full(ex: _Extractor, spec: ExtractSpec, manifest: Manifest, idx: np.ndarray,
                  edir: Path, chunk_images: int, on_chunk) -> tuple[np.ndarray, np.ndarray | None]:
    nv = spec.views.n_views
    cdir = edir / "chunks"
    cdir.mkdir(exist_ok=True)
    bounds = _chunk_bounds(len(idx), chunk_images)
    parts: dict[int, dict[str, np.ndarray]] = {}
    for ci, (s, e) in enumerate(bounds):
        arr = load_npz_checked(cdir / f"chunk_{ci:06d}.npz")
        if arr is not None and arr["logits"].shape[:2] == (e - s, nv):
            parts[ci] = arr
    todo = [ci for ci in range(len(bounds)) if ci not in parts]
    done_views = sum((e - s) * nv for ci, (s, e) in enumerate(bounds) if ci in parts)
    if todo:
        todo_pos = np.concatenate([np.arange(*bounds[ci]) for ci in todo])
        ds = ViewDataset(manifest, ex.loaded.preprocess, spec.views, spec.pil_fn,
                         indices=idx[todo_pos])
        pos_of = {int(g): p for p, g in enumerate(idx)}
        chunk_of = {ci: (s, e) for ci, (s, e) in enumerate(bounds)}
        buf_l: dict[int, np.ndarray] = {}
        buf_f: dict[int, np.ndarray] = {}
        filled: dict[int, int] = {ci: 0 for ci in todo}
        for logits, feats, img_i, view_i in ex.run(ds, len(idx) * nv, done_views):
            for r in range(len(img_i)):
                p = pos_of[int(img_i[r])]
                ci = p // chunk_images
                s, e = chunk_of[ci]
                if ci not in buf_l:
                    buf_l[ci] = np.zeros((e - s, nv, logits.shape[1]), np.float32)
                    buf_f[ci] = np.zeros((e - s, nv, feats.shape[1]), np.float32)
                buf_l[ci][p - s, view_i[r]] = logits[r]
                buf_f[ci][p - s, view_i[r]] = feats[r]
                filled[ci] += 1
                if filled[ci] == (e - s) * nv:
                    chunk = {"logits": buf_l.pop(ci)}
                    f = buf_f.pop(ci)
                    if spec.features:
                        chunk["features"] = f
                    atomic_save_npz(cdir / f"chunk_{ci:06d}.npz", **chunk)
                    parts[ci] = chunk
                    if on_chunk is not None:
                        on_chunk(ci)
    logits = np.concatenate([parts[ci]["logits"] for ci in range(len(bounds))])
    feats = (np.concatenate([parts[ci]["features"] for ci in range(len(bounds))])
             if spec.features else None)
    return logits, feats


def _extract_moments(ex: _Extractor, spec: ExtractSpec, manifest: Manifest, idx: np.ndarray,
                     edir: Path, chunk_images: int, on_chunk) -> tuple[Moments, int | None]:
    nv = spec.views.n_views
    partial = load_npz_checked(edir / "partial.npz")
    labelled = spec.label_mode == "wnid"
    if partial is not None:
        mom = Moments(int(partial["count"]), partial["sum_f"], partial["sum_ff"])
        done_images, correct = int(partial["done_images"]), int(partial["correct"])
    else:
        mom, done_images, correct = None, 0, 0
    bounds = _chunk_bounds(len(idx), chunk_images)
    for ci, (s, e) in enumerate(bounds):
        if e <= done_images:
            continue
        ds = ViewDataset(manifest, ex.loaded.preprocess, spec.views, spec.pil_fn, indices=idx[s:e])
        for logits, _, img_i, view_i in ex.run(ds, len(idx) * nv, s * nv):
            if mom is None:
                mom = Moments.zeros(logits.shape[1])
            mom.update(logits)
            centre = view_i == 0
            if labelled:
                correct += int((logits[centre].argmax(-1) == manifest.labels[img_i[centre]]).sum())
        atomic_save_npz(edir / "partial.npz", count=np.asarray(mom.count), sum_f=mom.sum_f,
                        sum_ff=mom.sum_ff, done_images=np.asarray(e), correct=np.asarray(correct))
        if on_chunk is not None:
            on_chunk(ci)
    return mom, (correct if labelled else None)


# --------------------------------------------------------------------------------------------
# Shards
# --------------------------------------------------------------------------------------------


def merge_shards(model: str, folder: str | os.PathLike[str], n_shards: int,
                 views: int | ViewSpec = 0, *, seed: int = 0, label_mode: str = "wnid",
                 corruption: str | None = None, mode: str = "full", features: bool = True,
                 cache_dir: str | os.PathLike[str] | None = None) -> LogitSet:
    """Merge the cache entries of shards ``0/N .. N-1/N`` into the unsharded entry.

    The merged moments are the sums of the shards' moments; per-image arrays are concatenated in
    manifest order. Raises :class:`CacheError` naming the missing shards.
    """
    from .models import canonical_name

    if isinstance(views, int):
        views = ViewSpec(n_aug=views, seed=seed)
    folder_path = resolve_folder(folder)
    manifest = scan_folder(folder_path, label_mode=label_mode)
    loaded = _load_model_cached(canonical_name(model))
    base = ExtractSpec(model=canonical_name(model), folder=folder_path, views=views,
                       label_mode=label_mode, corruption=corruption, mode=mode, features=features)
    cdir = Path(cache_dir) if cache_dir else None
    parts, missing = [], []
    for k in range(n_shards):
        key = make_key(dataclasses.replace(base, shard=(k, n_shards)), manifest, loaded=loaded)
        ent = _read_entry(key, entry_dir(key, cdir), manifest)
        (missing.append(f"{k}/{n_shards}") if ent is None else parts.append(ent))
    if missing:
        raise CacheError(
            f"cannot merge: shard(s) {', '.join(missing)} of {canonical_name(model)} on "
            f"{folder_path} are not extracted; run `python -m neudep_utils extract --model {model} "
            f"--data {folder_path} --shard k/{n_shards}` for each"
        )
    key = make_key(base, manifest, loaded=loaded)
    edir = entry_dir(key, cdir)
    mom = parts[0].moments
    for p in parts[1:]:
        mom = mom + p.moments
    labels = np.concatenate([p.labels for p in parts])
    arrays = {"count": np.asarray(mom.count), "sum_f": mom.sum_f, "sum_ff": mom.sum_ff,
              "labels": labels, "image_index": np.arange(len(manifest))}
    if mode == "full":
        arrays["logits"] = np.concatenate([p.logits for p in parts])
        if features:
            arrays["features"] = np.concatenate([p.features for p in parts])
    tops = [(p.meta.get("top1"), len(p)) for p in parts]
    top1 = (sum(t * n for t, n in tops) / sum(n for _, n in tops)
            if all(t is not None for t, _ in tops) else None)
    meta = _finalize(key, edir, arrays, {"folder": str(folder_path), "n_images": len(manifest),
                                         "model": base.model, "merged_from": n_shards, "top1": top1,
                                         "weights_source": loaded.weights_source})
    return LogitSet(key=key, path=edir, logits=arrays.get("logits"), features=arrays.get("features"),
                    labels=labels, image_ids=manifest.relpaths, moments=mom, meta=meta)
