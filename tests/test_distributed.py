"""Scale-out with torch.distributed: ``torchrun --nproc-per-node 2 -m neudep_utils extract
--mode moments`` on CPU (gloo) splits the images across the ranks, all-reduces the float64 sums
and writes one cache entry equal to a single pass."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neudep_utils.cache import extract

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # ~40 CPU-s (torchrun, two ranks importing torch): CI's make test-slow
def test_torchrun_two_cpu_processes(tiny_folder: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
           "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "neudep_utils", "extract", "--model", "lite0", "--data", str(tiny_folder),
           "--mode", "moments", "--cache-dir", str(cache), "--quiet", "--workers", "0",
           "--batch-size", "4"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = r.stdout
    assert re.search(r"world size: 2 \(gloo", out), out
    shares = re.findall(r"rank (\d+): (\d+) images", out)
    assert sorted(shares) == [("0", "5"), ("1", "5")], out
    assert out.count("top-1: ") == 1, "only rank 0 reports"
    metas = list(cache.rglob("meta.json"))
    assert len(metas) == 1, metas  # one entry, no per-rank entries
    assert not list(cache.rglob("*.tmp")) and not list(cache.rglob("partial*.npz"))
    single = extract("lite0", tiny_folder, mode="moments", cache_dir=tmp_path / "single",
                     progress=False, num_workers=0)
    dist = extract("lite0", tiny_folder, mode="moments", cache_dir=cache, progress=False,
                   num_workers=0, on_chunk=lambda ci: (_ for _ in ()).throw(AssertionError))
    assert dist.path.parent.parent == cache  # served from the torchrun entry, not recomputed
    assert dist.moments.count == single.moments.count == 10
    for a, b in [(dist.moments.sum_f, single.moments.sum_f),
                 (dist.moments.sum_ff, single.moments.sum_ff)]:
        assert np.abs(a - b).max() <= 1e-6 * np.abs(b).max()
    assert dist.top1 == single.top1
    assert dist.meta["world_size"] == 2
