"""Content-addressed cache of logits, pooled penultimate features and streamed logit moments.

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
:func:`neudep_utils.data.open_image`) is skipped: it is left out of the logits, the moments and
``top1``, and recorded with its path and reason in ``meta.json`` (``LogitSet.skipped``). The key
and the finished chunks stay valid.

Every write is atomic (temporary file, fsync, rename; the temporary file is removed when the write
fails). A damaged or mismatched entry (bad checksum of ``data.npz`` or ``meta.json``, truncated
zip, wrong key) is detected on load and rebuilt with a warning.
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

from .data import DataError, Manifest, PilFn, ViewDataset, ViewSpec, resolve_folder, scan_folder

#: 2: served metadata checksummed, unreadable images skipped and recorded, chunk layout recorded.
CACHE_VERSION = 2
DEFAULT_CHUNK_IMAGES = 256


class CacheError(RuntimeError):
    """A cache entry cannot be used (e.g. shards that do not belong together)."""


class CacheWriteError(CacheError):
    """A file could not be written (read-only folder, full disk, ...); the message names the file
    and the fix. No partial file is left behind."""


def default_cache_dir() -> Path:
    """``$NEUDEP_CACHE`` if set, else ``cache/`` in the repository checkout."""
    env = os.environ.get("NEUDEP_CACHE")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[1] / "cache"


# --------------------------------------------------------------------------------------------
# Atomic file helpers
# --------------------------------------------------------------------------------------------


def write_error(path: Path, exc: OSError, hint: str | None = None) -> CacheWriteError:
    """A :class:`CacheWriteError` for a failed write of ``path``, with a fix chosen by errno."""
    import errno

    where = hint or "point --cache-dir (or NEUDEP_CACHE) at"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = f"{where} a writable folder"
    elif exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        fix = (f"free space there or {where} a disk with room; rerunning resumes from the last "
               "finished chunk")
    elif exc.errno == errno.ENOENT:
        fix = f"create {path.parent} or {where} an existing folder"
    else:
        fix = f"check the folder or {where} another one"
    return CacheWriteError(f"cannot write {path}: {exc.strerror or exc}; {fix}")


def make_dirs(path: Path, hint: str | None = None) -> None:
    """``mkdir -p`` that fails with a :class:`CacheWriteError` naming the folder and the fix."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(path, exc, hint) from None


def atomic_write_bytes(path: Path, data: bytes, hint: str | None = None) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, fsync, rename).

    On any failure (full disk, read-only folder, Ctrl-C) the temporary file is removed; an
    ``OSError`` becomes a :class:`CacheWriteError` naming ``path`` and the fix (``hint`` names
    the option that chooses the folder; default ``--cache-dir``).
    """
    path = Path(path)
    make_dirs(path.parent, hint)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise write_error(path, exc, hint) from None
        raise


def atomic_save_npz(path: Path, **arrays: np.ndarray) -> str:
    """Save arrays as an uncompressed ``.npz`` atomically; returns the file's sha256."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    data = buf.getvalue()
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def meta_checksum(meta: dict) -> str:
    """sha256 of the canonical JSON of ``meta`` without its ``meta_sha256`` field."""
    body = {k: v for k, v in meta.items() if k != "meta_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


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
    #: the inference engine's label (:func:`neudep_utils.engines.key_label`): ``torch`` (PyTorch
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


@functools.lru_cache(maxsize=3)
def _load_model_cached(name: str):
    """Load a model once per process (extraction of several folders reuses it)."""
    from .models import load_model

    return load_model(name)


def best_device() -> str:
    """``cuda`` when a GPU is present, else ``cpu``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_device(device: str | None) -> str:
    """Check a device name (``cpu``, ``cuda``, ``cuda:N``, ``mps``); ``None`` -> :func:`best_device`.

    Raises ``ValueError`` naming the device and what to use instead.
    """
    import torch

    if device is None:
        return best_device()
    d = str(device).strip().lower()
    if d == "cpu":
        return d
    if d == "cuda" or d.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r}: no CUDA GPU is visible to torch "
                             "(torch.cuda.is_available() is False); use --device cpu")
        if d.startswith("cuda:"):
            try:
                k = int(d.split(":", 1)[1])
            except ValueError:
                raise ValueError(f"device {device!r}: expected cuda:N with an integer N") from None
            if not 0 <= k < torch.cuda.device_count():
                raise ValueError(f"device {device!r}: only {torch.cuda.device_count()} GPU(s) "
                                 f"(cuda:0..cuda:{torch.cuda.device_count() - 1})")
        return d
    if d == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError("device 'mps' is not available here; use --device cpu")
        return d
    raise ValueError(f"unknown device {device!r}; use cpu, cuda or cuda:N (default: cuda when a "
                     "GPU is present, else cpu)")


def _default_workers() -> int:
    return max(1, min(4, (os.cpu_count() or 1)))


class _SafeViews:
    """A :class:`ViewDataset` whose unreadable images come back as zero tensors with the reason,
    instead of an exception that would end the whole run: ``(x, image, view, error or '')``."""

    def __init__(self, ds: ViewDataset, input_size: int):
        self.ds = ds
        self.shape = (3, int(input_size), int(input_size))

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, k: int):
        import torch

        try:
            x, img_i, view_i = self.ds[k]
            return x, img_i, view_i, ""
        except DataError as exc:
            nv = self.ds.views.n_views
            reason = getattr(exc, "reason", None) or str(exc)
            return torch.zeros(self.shape), int(self.ds.indices[k // nv]), k % nv, reason


class _Extractor:
    """Runs a model over a :class:`ViewDataset` in batches: DataLoader workers decode, the
    engine's runner (:mod:`neudep_utils.engines`) computes logits and features."""

    def __init__(self, loaded, runner, batch_size: int, num_workers: int, progress: bool,
                 desc: str):
        self.loaded = loaded
        self.runner = runner
        self.device = runner.device
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.progress = progress
        self.desc = desc

    def run(self, dataset: ViewDataset, n_total: int, done: int):
        """Yield ``(logits, features, image_index, view_index, errors)`` numpy batches; ``errors``
        holds '' or the reason an image could not be read (its row is then meaningless)."""
        from torch.utils.data import DataLoader
        from tqdm.auto import tqdm

        safe = _SafeViews(dataset, self.loaded.preprocess.input_size)
        loader = DataLoader(safe, batch_size=self.batch_size, shuffle=False,
                            num_workers=self.num_workers, persistent_workers=False,
                            pin_memory=self.device.startswith("cuda"),
                            prefetch_factor=4 if self.num_workers else None)
        bar = tqdm(total=n_total, initial=done, desc=self.desc, unit="view",
                   disable=not self.progress, smoothing=0.1, mininterval=1.0)
        try:
            for x, img_i, view_i, errs in loader:
                logits, feats = self.runner(x)
                bar.update(x.shape[0])
                yield (logits, feats, img_i.numpy(), view_i.numpy(),
                       np.asarray(errs, dtype=object))
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
             preprocess: dict | None = None, engine: str | None = None) -> CacheKey:
    """The :class:`CacheKey` of ``spec`` on ``manifest``.

    ``engine``: the engine's key label (:func:`neudep_utils.engines.key_label`); ``None``: the
    label :func:`extract` uses by default on this machine (before any fallback).
    """
    from .engines import default_key_label
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
                    shard=spec.shard, mode=spec.mode, features=spec.features and spec.mode == "full",
                    engine=default_key_label() if engine is None else engine)


def entry_dir(key: CacheKey, cache_dir: Path | None = None) -> Path:
    """Folder of a cache entry."""
    return Path(cache_dir or default_cache_dir()) / key.model / key.digest[:16]


def _skipped_from_meta(meta: dict) -> tuple[tuple[str, str], ...]:
    return tuple((str(p), str(why)) for p, why in meta.get("skipped_images", []))


def _read_entry(key: CacheKey, edir: Path, manifest: Manifest) -> LogitSet | None:
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
        skipped=_skipped_from_meta(meta))


def _finalize(key: CacheKey, edir: Path, arrays: dict[str, np.ndarray], extra: dict) -> dict:
    sha = atomic_save_npz(edir / "data.npz", **arrays)
    meta = {"key": key.as_dict(), "data_sha256": sha, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            **extra}
    meta["meta_sha256"] = meta_checksum(meta)
    atomic_write_bytes(edir / "meta.json", json.dumps(meta, indent=1, sort_keys=True).encode())
    return meta


def _top1(correct: int | None, n_ok: int) -> float | None:
    return (correct / n_ok) if correct is not None and n_ok else None


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
    dist=None,
    engine: str | None = None,
) -> LogitSet | None:
    """Logits (and features) of ``model`` on an image folder, from the cache or computed once.

    ``views``: number of seeded augmented views beyond the centre view (or a :class:`ViewSpec`).
    ``corruption`` + ``pil_fn``: a named per-view PIL transform applied after the geometric
    transform (e.g. an ImageNet-C corruption); the name enters the cache key. ``shard``: ``"k/N"``
    extracts a contiguous block of images; :func:`merge_shards` combines the N parts.
    ``mode="moments"`` keeps only the streamed moments (count, sum f, sum f f^T) for huge folders.
    ``dist``: a :class:`neudep_utils._dist.DistContext` (``torchrun``): the ranks split the
    images, all-reduce the moments and rank 0 writes the one (unsharded) entry; ranks other than 0
    return ``None``. Images that cannot be read are skipped and recorded (``LogitSet.skipped``).
    ``on_chunk(i)`` is called after each chunk is saved (used by tests to simulate interruptions).
    ``engine``: ``auto`` (default, or ``$NEUDEP_ENGINE``), ``onnxruntime`` or ``torch``
    (:mod:`neudep_utils.engines`); the engine is part of the key, and an ``auto`` fallback from
    ONNX Runtime to PyTorch warns and is recorded in ``meta.json`` (``engine``).
    """
    from .engines import default_key_label, make_runner
    from .models import canonical_name

    if isinstance(views, int):
        views = ViewSpec(n_aug=views, seed=seed)
    if int(chunk_images) < 1:
        raise ValueError(f"chunk_images must be >= 1, got {chunk_images}")
    if int(batch_size) < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    device = resolve_device(device) if dist is None else dist.device
    folder_path = resolve_folder(folder)
    if manifest is None:
        manifest = scan_folder(folder_path, label_mode=label_mode)
    spec = ExtractSpec(model=canonical_name(model), folder=folder_path, views=views,
                       label_mode=label_mode, corruption=corruption, pil_fn=pil_fn,
                       shard=parse_shard(shard), mode=mode, features=features)
    if spec.shard:
        check_shard_count(spec.shard[1], len(manifest), folder_path,
                          f"--shard {spec.shard[0]}/{spec.shard[1]}")
    if dist is not None:
        if spec.mode != "moments":
            raise ValueError(f"torchrun (world size {dist.world_size}) splits the images for "
                             "--mode moments only; for per-image logits start one process per "
                             "--shard k/N and then `merge`")
        if spec.shard:
            raise ValueError("--shard and torchrun do not combine: torchrun already splits the "
                             "images across its ranks; drop --shard")
        check_shard_count(dist.world_size, len(manifest), folder_path,
                          f"torchrun world size {dist.world_size}")
    loaded = _load_model_cached(spec.model)
    cache_root = Path(cache_dir) if cache_dir else default_cache_dir()
    runner = None
    if dist is not None:  # every rank builds its runner first: all must use one engine
        runner = make_runner(loaded, engine, device, cache_root)
        labels = dist.all_gather(runner.label)
        if len(set(labels)) > 1:
            raise CacheError(f"the torchrun ranks would extract with different engines "
                             f"({sorted(set(labels))}); install the same packages on every node "
                             "or set NEUDEP_ENGINE=torch for every rank")
    label = runner.label if runner is not None else default_key_label(engine, device)
    key = make_key(spec, manifest, loaded=loaded, engine=label)
    edir = entry_dir(key, cache_root)
    cached = _read_entry(key, edir, manifest)
    if dist is not None:
        cached_everywhere = dist.rank0_says(cached is not None)
        if cached_everywhere:
            return cached if dist.rank == 0 else None
    elif cached is not None:
        return cached
    if runner is None:
        runner = make_runner(loaded, engine, device, cache_root)
        if runner.label != label:  # fell back (with a warning): the fallback engine's own entry
            key = make_key(spec, manifest, loaded=loaded, engine=runner.label)
            edir = entry_dir(key, cache_root)
            cached = _read_entry(key, edir, manifest)
            if cached is not None:
                return cached
    make_dirs(edir)
    workers = _default_workers() if num_workers is None else num_workers
    desc = f"{spec.model} {folder_path.name}" + (f" [{corruption}]" if corruption else "")
    if spec.shard:
        desc += f" shard {spec.shard[0]}/{spec.shard[1]}"
    if dist is not None:
        desc += f" rank {dist.rank}/{dist.world_size}"
    ex = _Extractor(loaded, runner, batch_size, workers, progress, desc)
    idx = shard_indices(len(manifest), spec.shard)
    labelled = label_mode == "wnid"
    extra: dict = {"folder": str(folder_path), "model": spec.model,
                   "weights_source": loaded.weights_source, "device": device, "world_size": 1,
                   "n_requested": int(len(idx)), "engine": runner.meta}
    if mode == "moments" and dist is not None:
        return _extract_moments_distributed(ex, spec, manifest, idx, edir, chunk_images, on_chunk,
                                            dist, key, extra)
    if mode == "moments":
        mom, correct, ok = _extract_moments(ex, spec, manifest, idx, edir, chunk_images, on_chunk,
                                            "partial.npz")
        arrays = {"count": np.asarray(mom.count), "sum_f": mom.sum_f, "sum_ff": mom.sum_ff,
                  "labels": manifest.labels[idx][ok], "image_index": idx[ok]}
    else:
        logits, feats, ok, reasons = _extract_full(ex, spec, manifest, idx, edir, chunk_images,
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
    skipped = _skipped_list(manifest, idx, ok, edir)
    n_ok = int(ok.sum())
    extra.update({"n_images": n_ok, "top1": _top1(correct, n_ok),
                  "skipped_images": [list(x) for x in skipped]})
    meta = _finalize(key, edir, arrays, extra)
    shutil.rmtree(edir / "chunks", ignore_errors=True)
    (edir / "partial.npz").unlink(missing_ok=True)
    (edir / "skipped.json").unlink(missing_ok=True)
    return LogitSet(key=key, path=edir, logits=arrays.get("logits"), features=arrays.get("features"),
                    labels=arrays["labels"],
                    image_ids=tuple(manifest.relpaths[i] for i in arrays["image_index"]),
                    moments=mom, meta=meta, skipped=skipped)


def _skipped_list(manifest: Manifest, idx: np.ndarray, ok: np.ndarray,
                  edir: Path) -> tuple[tuple[str, str], ...]:
    reasons = _load_reasons(edir)
    return tuple((manifest.relpaths[int(idx[p])], reasons.get(int(idx[p]), "unreadable image"))
                 for p in np.flatnonzero(~ok))


# The reasons images were skipped, by manifest index, kept beside the chunks of a running
# extraction (``skipped.json``) so that a resumed run still knows them.
def _load_reasons(edir: Path) -> dict[int, str]:
    try:
        raw = json.loads((edir / "skipped.json").read_text())
        return {int(k): str(v) for k, v in raw.items()}
    except (OSError, ValueError, AttributeError):
        return {}


def _save_reasons(edir: Path, new: dict[int, str]) -> None:
    if not new:
        return
    reasons = _load_reasons(edir)
    reasons.update(new)
    atomic_write_bytes(edir / "skipped.json",
                       json.dumps({str(k): v for k, v in sorted(reasons.items())}).encode())


def _chunk_bounds(n: int, chunk: int) -> list[tuple[int, int]]:
    return [(s, min(s + chunk, n)) for s in range(0, n, chunk)]


def _check_layout(cdir: Path, layout: dict) -> None:
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


def _extract_full(ex: _Extractor, spec: ExtractSpec, manifest: Manifest, idx: np.ndarray,
                  edir: Path, chunk_images: int, on_chunk
                  ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, dict[int, str]]:
    """Per-image logits (and features) of the readable images, their mask over ``idx`` and the
    reasons of the unreadable ones (by manifest index)."""
    nv = spec.views.n_views
    cdir = edir / "chunks"
    _check_layout(cdir, {"chunk_images": int(chunk_images), "n_images": int(len(idx)),
                         "n_views": nv, "features": bool(spec.features),
                         "first": int(idx[0]), "version": CACHE_VERSION})
    bounds = _chunk_bounds(len(idx), chunk_images)
    parts: dict[int, dict[str, np.ndarray]] = {}
    for ci, (s, e) in enumerate(bounds):
        arr = load_npz_checked(cdir / f"chunk_{ci:06d}.npz")
        if (arr is not None and arr["logits"].shape[:2] == (e - s, nv)
                and arr.get("ok") is not None and arr["ok"].shape == (e - s,)
                and int(arr.get("start", -1)) == s and (not spec.features or "features" in arr)):
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
        buf_ok: dict[int, np.ndarray] = {}
        buf_err: dict[int, dict[int, str]] = {}
        filled: dict[int, int] = {ci: 0 for ci in todo}
        for logits, feats, img_i, view_i, errs in ex.run(ds, len(idx) * nv, done_views):
            for r in range(len(img_i)):
                p = pos_of[int(img_i[r])]
                ci = p // chunk_images
                s, e = chunk_of[ci]
                if ci not in buf_l:
                    buf_l[ci] = np.zeros((e - s, nv, logits.shape[1]), np.float32)
                    buf_f[ci] = np.zeros((e - s, nv, feats.shape[1]), np.float32)
                    buf_ok[ci] = np.ones(e - s, dtype=bool)
                    buf_err[ci] = {}
                buf_l[ci][p - s, view_i[r]] = logits[r]
                buf_f[ci][p - s, view_i[r]] = feats[r]
                if errs[r]:
                    buf_ok[ci][p - s] = False
                    buf_err[ci].setdefault(int(img_i[r]), str(errs[r]))
                filled[ci] += 1
                if filled[ci] == (e - s) * nv:
                    _save_reasons(edir, buf_err.pop(ci))
                    chunk = {"logits": buf_l.pop(ci), "ok": buf_ok.pop(ci),
                             "start": np.asarray(s), "stop": np.asarray(e)}
                    f = buf_f.pop(ci)
                    if spec.features:
                        chunk["features"] = f
                    atomic_save_npz(cdir / f"chunk_{ci:06d}.npz", **chunk)
                    parts[ci] = chunk
                    if on_chunk is not None:
                        on_chunk(ci)
    ok = np.concatenate([parts[ci]["ok"] for ci in range(len(bounds))]).astype(bool)
    logits = np.concatenate([parts[ci]["logits"] for ci in range(len(bounds))])[ok]
    feats = (np.concatenate([parts[ci]["features"] for ci in range(len(bounds))])[ok]
             if spec.features else None)
    return logits, feats, ok, _load_reasons(edir)


def _extract_moments(ex: _Extractor, spec: ExtractSpec, manifest: Manifest, idx: np.ndarray,
                     edir: Path, chunk_images: int, on_chunk, partial_name: str
                     ) -> tuple[Moments, int | None, np.ndarray]:
    """Streamed moments of the readable images of ``idx`` (with a resumable ``partial_name``);
    returns the moments, the number of correct centre-view predictions and the readable mask.

    The partial file records how many images it holds (and its image count, views and first
    image), so a resume continues exactly after them, whatever its chunk size; a partial of
    another layout is discarded with a warning.
    """
    nv = spec.views.n_views
    labelled = spec.label_mode == "wnid"
    n = len(idx)
    first = int(idx[0]) if n else 0
    ok = np.ones(n, dtype=bool)
    partial = load_npz_checked(edir / partial_name)
    if partial is not None and not (int(partial.get("n_images", -1)) == n
                                    and int(partial.get("n_views", -1)) == nv
                                    and int(partial.get("first", -1)) == first
                                    and "skip_pos" in partial):
        warnings.warn(f"{edir / partial_name}: written for another layout; restarting this entry",
                      stacklevel=3)
        partial = None
    if partial is not None:
        mom = Moments(int(partial["count"]), partial["sum_f"], partial["sum_ff"])
        done, correct = int(partial["done_images"]), int(partial["correct"])
        ok[partial["skip_pos"].astype(np.int64)] = False
    else:
        mom, done, correct = None, 0, 0
    for s in range(done, n, chunk_images):
        e = min(s + chunk_images, n)
        ds = ViewDataset(manifest, ex.loaded.preprocess, spec.views, spec.pil_fn, indices=idx[s:e])
        buf: np.ndarray | None = None
        chunk_ok = np.ones(e - s, dtype=bool)
        reasons: dict[int, str] = {}
        for logits, _, img_i, view_i, errs in ex.run(ds, n * nv, s * nv):
            if buf is None:
                buf = np.zeros((e - s, nv, logits.shape[1]), np.float32)
            pos = np.searchsorted(idx[s:e], img_i)  # idx is a sorted block of the manifest
            buf[pos, view_i] = logits
            for r in np.flatnonzero(errs != ""):
                chunk_ok[pos[r]] = False
                reasons.setdefault(int(img_i[r]), str(errs[r]))
        if mom is None:
            mom = Moments.zeros(buf.shape[-1])
        good = buf[chunk_ok]
        mom.update(good.reshape(-1, good.shape[-1]))
        if labelled:
            correct += int((good[:, 0].argmax(-1) == manifest.labels[idx[s:e][chunk_ok]]).sum())
        ok[s:e] = chunk_ok
        _save_reasons(edir, reasons)
        atomic_save_npz(edir / partial_name, count=np.asarray(mom.count), sum_f=mom.sum_f,
                        sum_ff=mom.sum_ff, done_images=np.asarray(e), correct=np.asarray(correct),
                        n_images=np.asarray(n), n_views=np.asarray(nv), first=np.asarray(first),
                        chunk_images=np.asarray(chunk_images),
                        skip_pos=np.flatnonzero(~ok[:e]).astype(np.int64))
        if on_chunk is not None:
            on_chunk(s // chunk_images)
    if mom is None:  # nothing to do (empty block): the model's number of classes
        import torch

        with torch.inference_mode():
            size = ex.loaded.preprocess.input_size
            out = ex.loaded.logits_and_features(torch.zeros(1, 3, size, size).to(ex.device))[0]
        mom = Moments.zeros(out.shape[-1])
    return mom, (correct if labelled else None), ok


def _extract_moments_distributed(ex: _Extractor, spec: ExtractSpec, manifest: Manifest,
                                 idx: np.ndarray, edir: Path, chunk_images: int, on_chunk, dist,
                                 key: CacheKey, extra: dict) -> LogitSet | None:
    """Each rank streams its contiguous block of ``idx``; the float64 sums are all-reduced and
    rank 0 writes the one entry (the unsharded key: equal to a single pass)."""
    t0 = time.perf_counter()
    part = shard_indices(len(idx), (dist.rank, dist.world_size))
    mine = idx[part]
    mom, correct, ok_mine = _extract_moments(
        ex, spec, manifest, mine, edir, chunk_images, on_chunk,
        f"partial.rank{dist.rank}of{dist.world_size}.npz")
    labelled = spec.label_mode == "wnid"
    reasons = _load_reasons(edir)
    mine_skipped = [(int(g), reasons.get(int(g), "unreadable image")) for g in mine[~ok_mine]]
    sum_f, sum_ff, counts = dist.all_reduce_sum(
        mom.sum_f, mom.sum_ff, np.array([mom.count, correct or 0, int(ok_mine.sum())], np.float64))
    shares = dist.all_gather({"rank": dist.rank, "images": int(len(mine)),
                              "first": int(mine[0]), "last": int(mine[-1]),
                              "readable": int(ok_mine.sum()),
                              "seconds": round(time.perf_counter() - t0, 2),
                              "skipped": mine_skipped})
    result = None
    if dist.rank == 0:
        skipped_idx = sorted((g, why) for s in shares for g, why in s["skipped"])
        bad = {g for g, _ in skipped_idx}
        ok = np.array([int(g) not in bad for g in idx], dtype=bool)
        total = Moments(int(round(counts[0])), sum_f, sum_ff)
        n_ok = int(round(counts[2]))
        skipped = tuple((manifest.relpaths[g], why) for g, why in skipped_idx)
        arrays = {"count": np.asarray(total.count), "sum_f": total.sum_f, "sum_ff": total.sum_ff,
                  "labels": manifest.labels[idx][ok], "image_index": idx[ok]}
        extra = {**extra, "n_images": n_ok,
                 "top1": _top1(int(round(counts[1])) if labelled else None, n_ok),
                 "skipped_images": [list(x) for x in skipped], "world_size": dist.world_size,
                 "backend": dist.backend,
                 "rank_shares": [{k: v for k, v in s.items() if k != "skipped"} for s in shares]}
        meta = _finalize(key, edir, arrays, extra)
        result = LogitSet(key=key, path=edir, logits=None, features=None, labels=arrays["labels"],
                          image_ids=tuple(manifest.relpaths[i] for i in arrays["image_index"]),
                          moments=total, meta=meta, skipped=skipped)
    dist.barrier()  # the entry is written before any rank drops its partial sums
    (edir / f"partial.rank{dist.rank}of{dist.world_size}.npz").unlink(missing_ok=True)
    dist.barrier()
    if dist.rank == 0:  # also partial sums left by launches of another world size
        for leftover in [*edir.glob("partial.rank*of*.npz"), edir / "skipped.json"]:
            leftover.unlink(missing_ok=True)
    return result


# --------------------------------------------------------------------------------------------
# Shards
# --------------------------------------------------------------------------------------------


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
    from .engines import default_key_label, key_label, requested_engine
    from .models import canonical_name

    if int(n_shards) < 1:
        raise ValueError(f"--shards must be >= 1 (the N of the shards k/N to merge), got {n_shards}")
    if isinstance(views, int):
        views = ViewSpec(n_aug=views, seed=seed)
    folder_path = resolve_folder(folder)
    manifest = scan_folder(folder_path, label_mode=label_mode)
    check_shard_count(n_shards, len(manifest), folder_path, f"merge --shards {n_shards}")
    loaded = _load_model_cached(canonical_name(model))
    base = ExtractSpec(model=canonical_name(model), folder=folder_path, views=views,
                       label_mode=label_mode, corruption=corruption, mode=mode, features=features)
    cdir = Path(cache_dir) if cache_dir else None
    device = resolve_device(device)
    labels_tried = [default_key_label(engine, device)]
    if requested_engine(engine) == "auto" and key_label("torch", device) not in labels_tried:
        labels_tried.append(key_label("torch", device))
    found = []  # (label, parts, missing) per engine label tried
    for label in labels_tried:
        parts, missing = [], []
        for k in range(n_shards):
            key = make_key(dataclasses.replace(base, shard=(k, n_shards)), manifest, loaded=loaded,
                           engine=label)
            ent = _read_entry(key, entry_dir(key, cdir), manifest)
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
    meta = _finalize(key, edir, arrays, {"folder": str(folder_path), "n_images": int(len(index)),
                                         "n_requested": len(manifest),
                                         "model": base.model, "merged_from": n_shards, "top1": top1,
                                         "weights_source": loaded.weights_source, "world_size": 1,
                                         "engine": parts[0].meta.get("engine", {"name": "torch"}),
                                         "skipped_images": [list(x) for x in skipped]})
    return LogitSet(key=key, path=edir, logits=arrays.get("logits"), features=arrays.get("features"),
                    labels=labels, image_ids=tuple(manifest.relpaths[i] for i in index),
                    moments=mom, meta=meta, skipped=skipped)
