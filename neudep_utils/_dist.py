"""Scale-out with ``torch.distributed`` (``torchrun``, also under SLURM or Kubernetes).

``torchrun --nproc-per-node N -m neudep_utils extract --mode moments ...`` starts N processes
(ranks). Each rank streams the logit moments of its contiguous block of the folder's images; the
float64 sums (count, sum f, sum f f^T, correct predictions) are all-reduced and rank 0 writes one
cache entry under the unsharded key, equal to a single pass (the sums are the same numbers added in
another order). Backend: NCCL when the ranks run on GPUs, gloo on CPU.

The context is built from the environment ``torchrun`` sets (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``); without it (a plain ``python -m neudep_utils``)
there is no context and nothing here is used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class DistContext:
    """One rank of an initialised process group."""

    rank: int
    world_size: int
    local_rank: int
    backend: str  # "gloo" or "nccl"
    device: str  # "cpu" or "cuda:<local_rank>"

    def _tensor(self, a: np.ndarray):
        import torch

        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64)).to(self.device)

    def all_reduce_sum(self, *arrays: np.ndarray) -> list[np.ndarray]:
        """Element-wise sums over the ranks of float64 arrays (same shapes on every rank)."""
        import torch.distributed as dist

        out = []
        for a in arrays:
            t = self._tensor(a)
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
            out.append(t.cpu().numpy().astype(np.float64))
        return out

    def all_gather(self, obj: Any) -> list[Any]:
        """``obj`` of every rank, in rank order (picklable objects)."""
        import torch.distributed as dist

        got: list[Any] = [None] * self.world_size
        dist.all_gather_object(got, obj)
        return got

    def rank0_says(self, flag: bool) -> bool:
        """Rank 0's value of ``flag``, on every rank (e.g. "the entry is already cached")."""
        import torch.distributed as dist

        box = [bool(flag)]
        dist.broadcast_object_list(box, src=0)
        return bool(box[0])

    def barrier(self) -> None:
        """Wait for every rank."""
        import torch.distributed as dist

        if self.backend == "nccl":
            dist.barrier(device_ids=[self.local_rank])
        else:
            dist.barrier()


def launched_by_torchrun() -> bool:
    """Whether this process is one rank of a multi-process launch (``WORLD_SIZE`` > 1)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


def init_from_env(device: str | None = None) -> DistContext | None:
    """Join the process group ``torchrun`` describes in the environment; ``None`` when this is a
    single process. ``device``: ``cpu`` forces gloo on CPU; ``cuda`` (the default when a GPU is
    present) uses NCCL with one GPU per rank (``cuda:<LOCAL_RANK>``)."""
    if not launched_by_torchrun():
        return None
    import torch
    import torch.distributed as dist

    missing = [v for v in ("RANK", "MASTER_ADDR", "MASTER_PORT") if v not in os.environ]
    if missing:
        raise ValueError(f"WORLD_SIZE={os.environ['WORLD_SIZE']} but {', '.join(missing)} unset: "
                         "start the ranks with torchrun (e.g. torchrun --nproc-per-node N -m "
                         "neudep_utils extract ...)")
    rank = int(os.environ["RANK"])
    world = int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    want = (device or ("cuda" if torch.cuda.is_available() else "cpu")).lower()
    if want.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r}: no CUDA GPU is visible to torch; use --device "
                             "cpu (gloo)")
        if local >= torch.cuda.device_count():
            raise ValueError(f"LOCAL_RANK {local} but only {torch.cuda.device_count()} GPU(s) on "
                             "this node; use --nproc-per-node <= the number of GPUs")
        torch.cuda.set_device(local)
        backend, dev = "nccl", f"cuda:{local}"
    elif want == "cpu":
        backend, dev = "gloo", "cpu"
    else:
        raise ValueError(f"device {device!r} under torchrun: use cpu (gloo) or cuda (NCCL)")
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistContext(rank=rank, world_size=world, local_rank=local, backend=backend, device=dev)


def shutdown() -> None:
    """Leave the process group (no-op when none was joined)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
