"""CovLasso targets sharded over processes: ``torchrun`` ranks or the tasks of a job array.

Targets are independent given S, so each shard solves a slice of them with S memory-mapped
read-only (``np.load(path, mmap_mode="r")``: the ranks of one node share the page cache, nothing
is copied) and the slices are put back in target order. A target's numbers do not depend on the
slice it is solved in, so the result equals one process's bit for bit.

Under ``torchrun`` (gloo on CPU)::

    torchrun --standalone --nproc-per-node 2 -m neudep_utils.covlasso.sharded \\
        --cov S.npy --lam-ratio 0.03 --out result.npz

rank ``r`` of ``W`` solves targets ``r, r + W, r + 2W, ...`` (interleaved, so every rank gets a
similar mix of easy and hard targets) and rank 0 gathers and writes ``result.npz`` (a
:class:`.blocked.SparseCovLassoResult`). Without torch, e.g. as the tasks of a SLURM job array::

    python -m neudep_utils.covlasso.sharded --cov S.npy --lam-ratio 0.03 \\
        --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT --out part_$SLURM_ARRAY_TASK_ID.npz
    python -m neudep_utils.covlasso.sharded --merge part_*.npz --out result.npz
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .. import _dist
from .blocked import SparseCovLassoResult, solve_blocks


def shard_targets(n_targets: int, shard: int, n_shards: int) -> np.ndarray:
    """Positions ``shard, shard + n_shards, ...`` of ``n_targets`` targets (interleaved slice)."""
    if n_shards < 1 or not 0 <= shard < n_shards:
        raise ValueError(f"shard {shard} of {n_shards}: need 0 <= shard < n_shards")
    return np.arange(shard, n_targets, n_shards, dtype=np.int64)


def load_cov(path: str | Path) -> np.ndarray:
    """S from a ``.npy`` file, memory-mapped read-only (not read into memory)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"--cov {p}: no such file; write S with np.save (e.g. "
                                "python -m neudep_utils covariance ... --out S.npy)")
    return np.load(p, mmap_mode="r")


def solve_shard(S: np.ndarray, lam_ratio: float, shard: int, n_shards: int,
                targets: np.ndarray | None = None, **kw) -> SparseCovLassoResult:
    """The targets of one shard (see :func:`shard_targets`), solved by :func:`solve_blocks`.

    Parameters
    ----------
    S : (n, n) moment matrix (a read-only memory map is fine).
    lam_ratio : lam / lam_max for every target.
    shard, n_shards : this shard and the number of shards.
    targets : (T,) int, default all n.
    **kw : passed to :func:`solve_blocks` (``tol``, ``block``, ``psd_tol``, ...).
    """
    t = np.arange(S.shape[0], dtype=np.int64) if targets is None else np.asarray(targets,
                                                                                 np.int64)
    return solve_blocks(S, targets=t[shard_targets(t.size, shard, n_shards)],
                        lam_ratio=lam_ratio, **kw)


def merge(parts: Sequence[SparseCovLassoResult],
          targets: np.ndarray | None = None) -> SparseCovLassoResult:
    """Put shards back together in the order of ``targets`` (default: increasing target)."""
    full = SparseCovLassoResult.concatenate(list(parts))
    if np.unique(full.targets).size != full.targets.size:
        raise ValueError("the shards overlap (a target was solved twice); merge each shard once")
    want = np.sort(full.targets) if targets is None else np.asarray(targets, np.int64)
    if want.size != full.targets.size or not np.array_equal(np.sort(want),
                                                            np.sort(full.targets)):
        raise ValueError(f"the shards hold {full.targets.size} targets, expected {want.size}: "
                         "a shard is missing; merge every part file of the run")
    pos = np.argsort(full.targets, kind="stable")
    where = pos[np.searchsorted(full.targets[pos], want)]
    return full.take(where)


def solve_torchrun(S: np.ndarray, lam_ratio: float, targets: np.ndarray | None = None,
                   **kw) -> SparseCovLassoResult | None:
    """Solve under ``torchrun``: this rank's shard, gathered on rank 0 (``None`` elsewhere).

    Without a process group (a plain ``python`` process) this is one shard of one.
    """
    ctx = _dist.init_from_env("cpu")
    if ctx is None:
        return solve_shard(S, lam_ratio, 0, 1, targets, **kw)
    part = solve_shard(S, lam_ratio, ctx.rank, ctx.world_size, targets, **kw)
    got = ctx.all_gather(part)
    if ctx.rank != 0:
        return None
    t = None if targets is None else np.asarray(targets, np.int64)
    return merge(got, t)


def main(argv: list[str] | None = None) -> int:
    """Command line: see the module docstring."""
    ap = argparse.ArgumentParser(prog="python -m neudep_utils.covlasso.sharded",
                                 description="CovLasso for all targets, sharded")
    ap.add_argument("--cov", type=Path, help="S as .npy (memory-mapped read-only)")
    ap.add_argument("--lam-ratio", type=float, default=None, help="lam / lam_max, e.g. 0.03")
    ap.add_argument("--shard", default=None, help="I/N: solve shard I of N (no torch needed)")
    ap.add_argument("--merge", nargs="+", type=Path, default=None,
                    help="part files of --shard runs to put together into --out")
    ap.add_argument("--tol", type=float, default=1e-8)
    ap.add_argument("--block", type=int, default=256)
    ap.add_argument("--check-psd", action="store_true",
                    help="check S is PSD (a Cholesky of a float64 copy: slow for massive n)")
    ap.add_argument("--out", type=Path, required=True, help="result .npz")
    a = ap.parse_args(argv)
    try:
        if a.merge:
            merge([SparseCovLassoResult.from_npz(p) for p in a.merge]).to_npz(a.out)
            print(f"merged {len(a.merge)} part(s) into {a.out}")
            return 0
        if a.cov is None or a.lam_ratio is None:
            raise ValueError("give --cov S.npy and --lam-ratio (or --merge part files)")
        S = load_cov(a.cov)
        kw = dict(tol=a.tol, block=a.block, psd_tol=1e-10 if a.check_psd else None)
        if a.shard is not None:
            try:
                i, w = (int(x) for x in a.shard.split("/"))
            except ValueError:
                raise ValueError(f"--shard {a.shard!r}: expected I/N, e.g. 0/8") from None
            res = solve_shard(S, a.lam_ratio, i, w, **kw)
        else:
            res = solve_torchrun(S, a.lam_ratio, **kw)
        if res is not None:
            res.to_npz(a.out)
            print(f"wrote {a.out}: {res.targets.size} targets, max rel. gap "
                  f"{float(np.max(res.relative_gap)):.1e}")
        return 0
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        _dist.shutdown()


if __name__ == "__main__":
    sys.exit(main())
