"""Process-group set-up for ``torchrun`` and the few collectives the trainer needs.

``torchrun --nproc_per_node N -m mictnet.cli train ...`` (or ``--nnodes``/``--rdzv-*`` for several
machines) sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; without them the run is one process.
The backend is NCCL on CUDA and gloo on CPU.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import torch
import torch.distributed as dist

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_dist_info() -> DistInfo:
    """What ``torchrun`` says about this process (one process when not launched by it)."""
    try:
        return DistInfo(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                        int(os.environ.get("LOCAL_RANK", 0)))
    except ValueError as err:
        raise RuntimeError(f"malformed torchrun environment: {err}") from None


def resolve_device(spec: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> this process's GPU when CUDA is available, else the CPU."""
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(spec)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {spec!r} requested but CUDA is not available")
        if device.index is None:
            device = torch.device("cuda", local_rank)
    return device


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group when launched by ``torchrun`` (no-op for one process)."""
    info = env_dist_info()
    if info.enabled and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
    return info


def cleanup_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def releases_process_group(command: Callable[P, R]) -> Callable[P, R]:
    """A command that leaves no process group behind, however it ends."""
    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        finally:
            cleanup_distributed()
    return run


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """In-place sum over all processes (identity for one process)."""
    if dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_gather_objects(obj: Any) -> list[Any]:
    """Every process's ``obj``, in rank order (``[obj]`` for one process)."""
    if not dist.is_initialized():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_buffers(model: torch.nn.Module) -> None:
    """Copy the main process's buffers (BatchNorm statistics) to every process."""
    if dist.is_initialized():
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()
