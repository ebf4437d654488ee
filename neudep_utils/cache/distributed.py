"""Streamed moments under ``torchrun``: each rank streams its contiguous block of the images, the
float64 sums are all-reduced and rank 0 writes the one entry under the unsharded key (equal to a
single pass: the same numbers added in another order)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..images import Manifest
from ..moments import Moments
from .entry import LogitSet, finalize, load_reasons, top1_of
from .key import CacheKey, ExtractSpec
from .run import Extractor, extract_moments
from .shards import shard_indices

__all__ = ["extract_moments_distributed"]


def extract_moments_distributed(ex: Extractor, spec: ExtractSpec, manifest: Manifest,
                                 idx: np.ndarray, edir: Path, chunk_images: int, on_chunk, dist,
                                 key: CacheKey, extra: dict) -> LogitSet | None:
    """Under torchrun: each rank streams its contiguous block of ``idx``; the float64 sums are all-reduced and
    rank 0 writes the one entry (the unsharded key: equal to a single pass)."""
    t0 = time.perf_counter()
    part = shard_indices(len(idx), (dist.rank, dist.world_size))
    mine = idx[part]
    mom, correct, ok_mine = extract_moments(
        ex, spec, manifest, mine, edir, chunk_images, on_chunk,
        f"partial.rank{dist.rank}of{dist.world_size}.npz")
    labelled = spec.label_mode == "wnid"
    reasons = load_reasons(edir)
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
                 "top1": top1_of(int(round(counts[1])) if labelled else None, n_ok),
                 "skipped_images": [list(x) for x in skipped], "world_size": dist.world_size,
                 "backend": dist.backend,
                 "rank_shares": [{k: v for k, v in s.items() if k != "skipped"} for s in shares]}
        meta = finalize(key, edir, arrays, extra)
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

