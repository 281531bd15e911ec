"""Rank and world size (valid with or without a process group), process-group set-up, the
launcher's environment (torchrun, SLURM) and the few collectives the engine needs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Optional

import torch
import torch.distributed as dist

# Long enough for rank 0 to write a checkpoint or run precise BN while the others wait.
_TIMEOUT = timedelta(minutes=30)


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def get_rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def is_main_process() -> bool:
    """Only the main process logs to the console and writes checkpoints."""
    return get_rank() == 0


@dataclass(frozen=True)
class LauncherEnv:
    """Ranks given by an outside launcher; ``source`` names it for the log."""

    rank: int
    world_size: int
    local_rank: int
    source: str


def launcher_env(environ: Optional[dict[str, str]] = None) -> Optional[LauncherEnv]:
    """The ranks set by ``torchrun`` (RANK, WORLD_SIZE, LOCAL_RANK) or by ``srun`` (SLURM_PROCID,
    SLURM_NTASKS, SLURM_LOCALID), or None when this process was started by hand.

    A SLURM allocation with a single task is treated as started by hand, so that
    ``python tools/run_net.py NUM_GPUS 8`` inside ``salloc`` or ``sbatch`` still spawns 8 processes.
    """
    env = os.environ if environ is None else environ
    if "RANK" in env and "WORLD_SIZE" in env:
        return LauncherEnv(int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0)), "torchrun")
    if int(env.get("SLURM_NTASKS", "1")) > 1 and "SLURM_PROCID" in env:
        return LauncherEnv(
            int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"]), int(env.get("SLURM_LOCALID", 0)), "SLURM"
        )
    return None


def init_process_group(backend: str, init_method: str, rank: int, world_size: int) -> None:
    """Join the job's process group (``env://`` reads MASTER_ADDR and MASTER_PORT)."""
    dist.init_process_group(
        backend=backend, init_method=init_method, rank=rank, world_size=world_size, timeout=_TIMEOUT
    )


def destroy_process_group() -> None:
    if is_distributed():
        dist.destroy_process_group()


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over all processes, in place; returned for chaining."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_gather_tensors(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate every process's ``tensor`` along dim 0, in rank order; the first dimension may
    differ between processes."""
    if not is_distributed():
        return tensor
    world = get_world_size()
    size = torch.tensor([tensor.shape[0]], device=tensor.device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    longest = int(max(s.item() for s in sizes))
    padded = tensor.new_zeros((longest, *tensor.shape[1:]))
    padded[: tensor.shape[0]] = tensor
    gathered = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(gathered, padded)
    return torch.cat([g[: int(s.item())] for g, s in zip(gathered, sizes)])


def all_gather_objects(obj: Any) -> list[Any]:
    """Every process's picklable ``obj``, in rank order."""
    if not is_distributed():
        return [obj]
    objects: list[Any] = [None] * get_world_size()
    dist.all_gather_object(objects, obj)
    return objects


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every process."""
    if not is_distributed():
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=src)
    return holder[0]


def consecutive_groups(group_size: int) -> Optional[dist.ProcessGroup]:
    """This process's group among consecutive blocks of ``group_size`` ranks; every process must
    call it, as each block's group is created collectively."""
    world, rank = get_world_size(), get_rank()
    mine = None
    for start in range(0, world, group_size):
        group = dist.new_group(list(range(start, start + group_size)))
        if start <= rank < start + group_size:
            mine = group
    return mine
