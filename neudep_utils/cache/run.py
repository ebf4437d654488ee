"""Running a model over the views of a manifest, chunk by resumable chunk.

:class:`Extractor` batches the views through DataLoader workers (an unreadable image comes back
as a placeholder with the reason instead of ending the run) and the engine's runner.
:func:`extract_full` keeps per-image logits and features in atomically written chunks;
:func:`extract_moments` keeps only running moments in a resumable partial file.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .._io import atomic_save_npz, atomic_write_bytes, load_npz_checked
from ..errors import DataError, ModelError
from ..images import Manifest, ViewDataset
from ..images.folders import TRANSIENT_PREFIXES
from ..moments import Moments
from .entry import check_layout, chunk_bounds, load_reasons, save_reasons
from .key import CACHE_VERSION, ExtractSpec

__all__ = ["DEFAULT_CHUNK_IMAGES", "Extractor", "default_workers", "extract_full",
           "extract_moments"]

#: Images per resumable chunk.
DEFAULT_CHUNK_IMAGES = 256

#: Test hook: when set to a file path, the extraction writes the index of each chunk it has just
#: saved to that file (atomically) and then pauses until the file is removed (the test's "go
#: on"), at most ``NEUDEP_PAUSE_AFTER_CHUNK_S`` seconds (default 60), so a test can act at a known
#: point (after a finished chunk, before the next) whatever the machine's speed, and always end
#: the pause itself: a signal the process ignores (SIGINT is ignored by a process started in the
#: background of a non-interactive shell) never leaves it waiting for the bound.
CHUNK_MARKER_ENV = "NEUDEP_CHUNK_MARKER"


def _chunk_done(ci: int, on_chunk) -> None:
    """After chunk ``ci`` is saved: the caller's hook, then the :data:`CHUNK_MARKER_ENV` hook."""
    if on_chunk is not None:
        on_chunk(ci)
    marker = os.environ.get(CHUNK_MARKER_ENV)
    if marker:
        atomic_write_bytes(Path(marker), str(ci).encode())
        end = time.monotonic() + float(os.environ.get("NEUDEP_PAUSE_AFTER_CHUNK_S", "60"))
        while Path(marker).exists() and time.monotonic() < end:
            time.sleep(0.05)


def _is_read_error(reason: str) -> bool:
    """Whether an image's failure reason is an OS read error or a file changed since the scan
    (transient: not cached)."""
    return str(reason).startswith(TRANSIENT_PREFIXES)


def _read_errors_error(failed: dict[int, str], manifest: Manifest, kept: str) -> DataError:
    shown = "; ".join(f"{manifest.relpaths[i]} ({why.split(');')[0]})"
                      for i, why in sorted(failed.items())[:3])
    more = f" ... ({len(failed) - 3} more)" if len(failed) > 3 else ""
    return DataError(f"{len(failed)} image(s) of {manifest.root} could not be read as scanned: "
                     f"{shown}{more}; an OS error or a file changed during the run is not "
                     f"recorded as 'unreadable' ({kept}): check the file(s) and rerun the same "
                     "command to retry them")


def default_workers() -> int:
    """DataLoader workers by default: the cores, at most 4."""
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
        try:
            x, img_i, view_i = self.ds[k]
            return x, img_i, view_i, ""
        except DataError as exc:
            nv = self.ds.views.n_views
            reason = getattr(exc, "reason", None) or str(exc)
            return torch.zeros(self.shape), int(self.ds.indices[k // nv]), k % nv, reason


class Extractor:
    """Runs a model over a :class:`ViewDataset` in batches: DataLoader workers decode, the
    engine's runner (:mod:`neudep_utils.models.engines`) computes logits and features."""

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
                errs = np.asarray(errs, dtype=object)
                self._check_finite(logits, img_i.numpy(), errs, dataset)
                bar.update(x.shape[0])
                yield logits, feats, img_i.numpy(), view_i.numpy(), errs
        finally:
            bar.close()

    def _check_finite(self, logits: np.ndarray, img_i: np.ndarray, errs: np.ndarray,
                      dataset: ViewDataset) -> None:
        """Refuse NaN or inf logits of a readable image: a model fault, never cached (nor
        counted in top-1: the argmax of a NaN row is 0)."""
        bad = ~np.isfinite(logits).all(axis=1) & (errs == "")
        if not bad.any():
            return
        names = sorted({dataset.manifest.relpaths[int(i)] for i in img_i[bad]})
        model = self.loaded.file if self.loaded.file is not None else self.loaded.name
        raise ModelError(f"{model} returned NaN or inf logits for {len(names)} image(s) "
                         f"({', '.join(names[:3])}{' ...' if len(names) > 3 else ''}); nothing "
                         "was cached for them: check the model (a log or division of 0, a "
                         "float16 overflow) or its preprocessing (--preset, --mean/--std)")



def extract_full(ex: Extractor, spec: ExtractSpec, manifest: Manifest, idx: np.ndarray,
                  edir: Path, chunk_images: int, on_chunk
                  ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, dict[int, str]]:
    """Per-image logits (and features) of the readable images, their mask over ``idx`` and the
    reasons of the unreadable ones (by manifest index)."""
    nv = spec.views.n_views
    cdir = edir / "chunks"
    check_layout(cdir, {"chunk_images": int(chunk_images), "n_images": int(len(idx)),
                         "n_views": nv, "features": bool(spec.features),
                         "first": int(idx[0]), "version": CACHE_VERSION})
    bounds = chunk_bounds(len(idx), chunk_images)
    parts: dict[int, dict[str, np.ndarray]] = {}
    for ci, (s, e) in enumerate(bounds):
        arr = load_npz_checked(cdir / f"chunk_{ci:06d}.npz")
        if (arr is not None and arr["logits"].shape[:2] == (e - s, nv)
                and arr.get("ok") is not None and arr["ok"].shape == (e - s,)
                and int(arr.get("start", -1)) == s and (not spec.features or "features" in arr)):
            parts[ci] = arr
    todo = [ci for ci in range(len(bounds)) if ci not in parts]
    done_views = sum((e - s) * nv for ci, (s, e) in enumerate(bounds) if ci in parts)
    read_errors: dict[int, str] = {}  # OS read errors (their chunks are not saved)
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
                    errs_ci = buf_err.pop(ci)
                    failed = {i: why for i, why in errs_ci.items() if _is_read_error(why)}
                    if failed:  # not saved: the next run retries this chunk
                        read_errors.update(failed)
                        del buf_l[ci], buf_f[ci], buf_ok[ci]
                        continue
                    save_reasons(edir, errs_ci)
                    chunk = {"logits": buf_l.pop(ci), "ok": buf_ok.pop(ci),
                             "start": np.asarray(s), "stop": np.asarray(e)}
                    f = buf_f.pop(ci)
                    if spec.features:
                        chunk["features"] = f
                    atomic_save_npz(cdir / f"chunk_{ci:06d}.npz", **chunk)
                    parts[ci] = chunk
                    _chunk_done(ci, on_chunk)
    if read_errors:
        raise _read_errors_error(read_errors, manifest, "the other finished chunks are kept")
    ok = np.concatenate([parts[ci]["ok"] for ci in range(len(bounds))]).astype(bool)
    logits = np.concatenate([parts[ci]["logits"] for ci in range(len(bounds))])[ok]
    feats = (np.concatenate([parts[ci]["features"] for ci in range(len(bounds))])[ok]
             if spec.features else None)
    return logits, feats, ok, load_reasons(edir)


def extract_moments(ex: Extractor, spec: ExtractSpec, manifest: Manifest, idx: np.ndarray,
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
        failed = {i: why for i, why in reasons.items() if _is_read_error(why)}
        if failed:  # not saved: the next run resumes before this chunk and retries it
            raise _read_errors_error(failed, manifest, f"the moments of the first {s} images are "
                                                       "kept")
        if mom is None:
            mom = Moments.zeros(buf.shape[-1])
        good = buf[chunk_ok]
        mom.update(good.reshape(-1, good.shape[-1]))
        if labelled:
            correct += int((good[:, 0].argmax(-1) == manifest.labels[idx[s:e][chunk_ok]]).sum())
        ok[s:e] = chunk_ok
        save_reasons(edir, reasons)
        atomic_save_npz(edir / partial_name, count=np.asarray(mom.count), sum_f=mom.sum_f,
                        sum_ff=mom.sum_ff, done_images=np.asarray(e), correct=np.asarray(correct),
                        n_images=np.asarray(n), n_views=np.asarray(nv), first=np.asarray(first),
                        chunk_images=np.asarray(chunk_images),
                        skip_pos=np.flatnonzero(~ok[:e]).astype(np.int64))
        _chunk_done(s // chunk_images, on_chunk)
    if mom is None and ex.loaded.kind != "torch":  # empty block of a model file
        mom = Moments.zeros(int(ex.loaded.num_classes))
    if mom is None:  # nothing to do (empty block): the model's number of classes
        size = ex.loaded.preprocess.input_size
        out = ex.runner(torch.zeros(1, 3, size, size))[0]  # any engine, any model kind
        mom = Moments.zeros(out.shape[-1])
    return mom, (correct if labelled else None), ok
