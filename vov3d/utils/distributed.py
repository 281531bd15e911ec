"""Rank and world size (valid with or without a process group), process-group set-up, the
launcher's environment (torchrun, SLURM), the few collectives the engine needs, and each process's
heartbeat, which names the peer that was lost when a collective fails."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Optional

import torch
import torch.distributed as dist

from .heartbeat import Heartbeat, RollCall

_heartbeat: Optional[Heartbeat] = None


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
    """Ranks given by an outside launcher; ``source`` names it for the log. ``local_world_size``
    is the number of processes the launcher started on this machine (None when it does not say)."""

    rank: int
    world_size: int
    local_rank: int
    source: str
    local_world_size: Optional[int] = None


def launcher_env(environ: Optional[Mapping[str, str]] = None) -> Optional[LauncherEnv]:
    """The ranks set by ``torchrun`` (RANK, WORLD_SIZE, LOCAL_RANK) or by ``srun`` (SLURM_PROCID,
    SLURM_STEP_NUM_TASKS, SLURM_LOCALID), or None when this process was started by hand.

    SLURM's variables count only inside an ``srun`` step (SLURM_STEP_ID and SLURM_STEP_NUM_TASKS
    set): an ``sbatch`` script has SLURM_NTASKS of the whole allocation but is one process. A step
    with a single task is treated as started by hand, so that ``srun -n 1 python tools/run_net.py
    NUM_GPUS 8`` still spawns 8 processes.
    """
    env = os.environ if environ is None else environ
    if "RANK" in env and "WORLD_SIZE" in env:
        local = int(env["LOCAL_WORLD_SIZE"]) if "LOCAL_WORLD_SIZE" in env else None
        return LauncherEnv(int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0)), "torchrun", local)
    if "SLURM_STEP_ID" in env and int(env.get("SLURM_STEP_NUM_TASKS", "1")) > 1 and "SLURM_PROCID" in env:
        per_node = env.get("SLURM_STEP_TASKS_PER_NODE")
        local = tasks_on_node(per_node, int(env.get("SLURM_NODEID", 0))) if per_node else None
        return LauncherEnv(
            int(env["SLURM_PROCID"]), int(env["SLURM_STEP_NUM_TASKS"]), int(env.get("SLURM_LOCALID", 0)), "SLURM", local
        )
    return None


def tasks_on_node(tasks_per_node: str, node: int) -> int:
    """Tasks on node ``node`` from SLURM's compressed count, e.g. ``"8(x2),4"`` -> 8, 8, 4."""
    counts: list[int] = []
    for item in tasks_per_node.split(","):
        match = re.fullmatch(r"(\d+)(?:\(x(\d+)\))?", item.strip())
        if match is None:
            raise ValueError(f"cannot read the SLURM task count {tasks_per_node!r}")
        counts += [int(match[1])] * int(match[2] or 1)
    return counts[min(node, len(counts) - 1)]


def expand_nodelist(nodelist: str) -> list[str]:
    """Host names of SLURM's compressed node list (as ``scontrol show hostnames`` prints them):
    ``a[01-03,07]`` -> a01 a02 a03 a07; ``b1,c2`` -> b1 c2; ``gpu-[1-2]-[a,b]`` -> gpu-1-a ..."""
    hosts: list[str] = []
    for item in re.findall(r"(?:[^,\[]|\[[^\]]*\])+", nodelist):
        parts = re.split(r"\[([^\]]*)\]", item)  # text, bracket, text, bracket, ..., text
        names = [""]
        for i, part in enumerate(parts):
            choices = _bracket_choices(part, nodelist) if i % 2 else [part]
            names = [name + choice for name in names for choice in choices]
        hosts += names
    return hosts


def _bracket_choices(bracket: str, nodelist: str) -> list[str]:
    """``01-03,07`` -> 01 02 03 07: ranges keep the width of their first bound."""
    choices = []
    for piece in bracket.split(","):
        low, sep, high = piece.partition("-")
        if not sep:
            choices.append(low)
        elif low.isdigit() and high.isdigit():
            choices += [str(k).zfill(len(low)) for k in range(int(low), int(high) + 1)]
        else:
            raise ValueError(f"cannot read the range {piece!r} of the SLURM node list {nodelist!r}")
    return choices


def slurm_init_method(environ: Mapping[str, str]) -> str:
    """Where the tasks of an ``srun`` step meet when neither MASTER_ADDR nor ``--init_method`` says:
    the first host of the step's node list, at a port derived from the job id (every task
    computes the same one). Raises ValueError when SLURM gives no node list."""
    nodelist = environ.get("SLURM_STEP_NODELIST") or environ.get("SLURM_JOB_NODELIST")
    if not nodelist:
        raise ValueError(
            "SLURM did not give SLURM_JOB_NODELIST: export MASTER_ADDR (the first node) and MASTER_PORT, "
            "or pass --init_method tcp://<first node>:<port>"
        )
    return f"tcp://{expand_nodelist(nodelist)[0]}:{job_port(environ)}"


def job_port(environ: Mapping[str, str]) -> int:
    """A port in [15000, 35000) that all tasks of a SLURM job agree on (from SLURM_JOB_ID)."""
    return 15000 + int(environ.get("SLURM_JOB_ID", "0")) % 20000


def free_port() -> int:
    """A TCP port free on this machine now, for runs whose processes all start here."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def init_process_group(backend: str, init_method: str, rank: int, world_size: int, timeout_minutes: float) -> None:
    """Join the job's process group (``env://`` reads MASTER_ADDR and MASTER_PORT); a collective
    that waits ``timeout_minutes`` (DIST_TIMEOUT_MINUTES) for a peer fails. This process's
    ``Heartbeat`` starts beating in the store where the group met."""
    global _heartbeat
    timeout = timedelta(minutes=timeout_minutes)
    store, rank, world_size = next(dist.rendezvous(init_method, rank, world_size, timeout=timeout))
    store.set_timeout(timeout)
    # What init_process_group(init_method=...) does, keeping the store for the heartbeat.
    dist.init_process_group(
        backend=backend,
        store=dist.PrefixStore("default_pg", _this_attempt(store)),
        rank=rank,
        world_size=world_size,
        timeout=timeout,
    )
    # Its own connection: the heartbeat never waits behind the group's requests.
    _heartbeat = Heartbeat(_this_attempt(store.clone()), rank, world_size)


def _this_attempt(store: dist.Store) -> dist.Store:
    """``store`` seen under a prefix of its own for each start of the group by torchrun. Its agent
    keeps one store across ``--max-restarts`` (unless TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1), so the
    keys of the attempt before would meet the restarted processes: gloo then dials the dead
    processes' addresses ("Gloo connectFullMesh failed ... Connection refused", torch 2.14)."""
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return store
    return dist.PrefixStore(f"attempt{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", store)


def destroy_process_group() -> None:
    """Leave the group; the heartbeat stops first and says this process left on its own."""
    global _heartbeat
    if _heartbeat is not None:
        _heartbeat.stop()
        _heartbeat = None
    if is_distributed():
        dist.destroy_process_group()


def roll_call() -> Optional[RollCall]:
    """Which peers are lost, after a collective failed (``Heartbeat.roll_call``); None without peers."""
    return _heartbeat.roll_call() if _heartbeat is not None and _heartbeat.world_size > 1 else None


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
