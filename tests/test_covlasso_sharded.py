"""Massive-n and sharded CovLasso: block-wise sparse solves (float32, memory-mapped S) and targets
split over ``torchrun`` ranks / job-array shards give the single-process numbers bit for bit."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from neudep_utils import covlasso as cl
from neudep_utils.covlasso.blocked import SparseCovLassoResult, solve_blocks
from neudep_utils.covlasso.sharded import main as sharded_main
from neudep_utils.covlasso.sharded import merge, shard_targets, solve_shard

REPO = Path(__file__).resolve().parents[1]


def logit_like(n: int, d: int, seed: int = 0) -> np.ndarray:
    """S = W C W^T + b b^T: rank d + 1 < n when d < n (logits of a linear head on d features),
    with clustered class embeddings (rank-deficient, strongly correlated siblings)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(n // 6, 1), d))
    W = centres[rng.integers(0, centres.shape[0], n)] + 0.5 * rng.standard_normal((n, d))
    C = np.exp(-np.arange(d) / (d / 4.0))
    b = rng.standard_normal(n)
    S = (W * C) @ W.T + np.outer(b, b)
    return 0.5 * (S + S.T)


@pytest.fixture(scope="module")
def S():
    return logit_like(90, 40)


@pytest.mark.parametrize("ratio", [0.3, 0.03])
def test_blocks_equal_dense_solve_bitwise(S, ratio):
    lm = cl.lam_max(S)
    dense = cl.solve(S, ratio * lm, warn=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sp = solve_blocks(S, lam_ratio=ratio, block=7)  # blocks not dividing n
    assert np.array_equal(sp.to_dense().coef, dense.coef)
    for a in ("objective", "gap", "n_iter", "converged", "lam_max"):
        assert np.array_equal(getattr(sp, a), getattr(dense, a)), a
    assert np.array_equal(sp.support_size, dense.support_size)
    assert sp.support_size.max() > 1  # not a trivial all-zero problem
    assert np.all(sp.relative_gap <= 1e-8)


def test_blocks_take_float32_and_readonly_memmap_without_copy(S, tmp_path):
    # a rank-deficient S rounded to float32 is indefinite (the check refuses it), so the float32
    # matrix gets a noise floor, as a real logit second moment has
    with pytest.raises(ValueError, match="not positive semidefinite"):
        solve_blocks(S.astype(np.float32), lam_ratio=0.1)
    S32 = (S + 1e-3 * np.mean(np.diag(S)) * np.eye(S.shape[0])).astype(np.float32)
    S32 = 0.5 * (S32 + S32.T)
    p = tmp_path / "S32.npy"
    np.save(p, S32)
    mm = np.load(p, mmap_mode="r")
    assert not mm.flags.writeable
    targets = np.array([5, 0, 77, 31])
    got = solve_blocks(mm, targets=targets, lam_ratio=0.03, block=3)
    # the problem solved is the float32 matrix itself, certified in float64 arithmetic
    S64 = np.asarray(mm, dtype=np.float64)
    ref = cl.solve(S64, 0.03 * cl.lam_max(S64, targets), targets, warn=False)
    dense = got.to_dense()
    gap = cl.duality_gap(S64, dense.coef, targets, dense.lam)
    obj = cl.objective(S64, dense.coef, targets, dense.lam)
    assert np.all(gap <= 1e-8 * obj)
    assert np.all(np.abs(dense.objective - ref.objective) <= 2e-8 * ref.objective)
    assert np.array_equal(got.targets, targets)


def test_shards_merge_to_one_process_bitwise(S, tmp_path):
    whole = solve_blocks(S, lam_ratio=0.1)
    parts = [solve_shard(S, 0.1, r, 3) for r in (2, 0, 1)]  # any order
    merged = merge(parts)
    for a in ("targets", "indptr", "indices", "data", "objective", "gap", "n_iter"):
        assert np.array_equal(getattr(merged, a), getattr(whole, a)), a
    assert sorted(np.concatenate([shard_targets(90, r, 3) for r in range(3)])) == list(range(90))
    with pytest.raises(ValueError, match="missing"):
        merge(parts[:2], np.arange(90))
    with pytest.raises(ValueError, match="overlap"):
        merge([parts[0], parts[0]])
    # the job-array command line: shards as files, then a merge
    np.save(tmp_path / "S.npy", S)
    files = []
    for r in range(2):
        f = tmp_path / f"part{r}.npz"
        assert sharded_main(["--cov", str(tmp_path / "S.npy"), "--lam-ratio", "0.1",
                             "--shard", f"{r}/2", "--out", str(f)]) == 0
        files.append(str(f))
    assert sharded_main(["--merge", *files, "--out", str(tmp_path / "all.npz")]) == 0
    back = SparseCovLassoResult.from_npz(tmp_path / "all.npz")
    assert np.array_equal(back.to_dense().coef, whole.to_dense().coef)
    assert sharded_main(["--cov", str(tmp_path / "nope.npy"), "--lam-ratio", "0.1",
                         "--out", str(tmp_path / "x.npz")]) == 2
    assert sharded_main(["--cov", str(tmp_path / "S.npy"), "--lam-ratio", "0.1",
                         "--shard", "3", "--out", str(tmp_path / "x.npz")]) == 2


def test_torchrun_two_ranks_equal_one_process(S, tmp_path):
    pytest.importorskip("torch")
    np.save(tmp_path / "S.npy", S)
    out = tmp_path / "res.npz"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
           "NUMBA_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "neudep_utils.covlasso.sharded", "--cov", str(tmp_path / "S.npy"),
           "--lam-ratio", "0.03", "--out", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert r.stdout.count("wrote ") == 1, "only rank 0 writes"
    got = SparseCovLassoResult.from_npz(out)
    single = cl.solve(S, 0.03 * cl.lam_max(S), warn=False)
    assert np.array_equal(got.targets, np.arange(90))
    diff = np.abs(got.to_dense().coef - single.coef).max()
    assert diff == 0.0, diff  # bitwise (the issue asks <= 1e-10)
    assert np.array_equal(got.gap, single.gap)
