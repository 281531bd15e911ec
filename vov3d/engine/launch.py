"""Entry of a run: decide how many processes to start, set each one up, then train and/or test.

Three ways a run starts (``plan_processes``):

- **launcher** (``torchrun``, or ``srun`` with several tasks): the processes exist already;
  rank and world size come from the environment (RANK / WORLD_SIZE / LOCAL_RANK, or
  SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID). NUM_GPUS only says GPU (> 0) or CPU (0).
- **spawn** (NUM_GPUS > 1): one process per GPU of this machine; with NUM_SHARDS machines,
  rank = SHARD_ID * NUM_GPUS + local rank, meeting at ``--init_method`` as in PySlowFast.
- **single** (NUM_GPUS 0 or 1): this process; with NUM_SHARDS > 1 it is rank SHARD_ID.

NCCL joins GPU processes and gloo CPU ones. Only rank 0 logs and writes files.
"""

from __future__ import annotations

import logging
import os
import random
import sys
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from vov3d.checkpoint import CheckpointError
from vov3d.config import CfgNode, ConfigError, cfg_error, save_config
from vov3d.utils import distributed as du
from vov3d.utils.logging import setup_logging

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProcessPlan:
    """How the processes of a run are started and find each other."""

    mode: str  # "launcher", "spawn" or "single"
    procs_here: int  # processes this call runs (spawned or itself)
    world_size: int
    first_rank: int  # rank of this call's first process
    first_device: int  # GPU index of this call's first process (NUM_GPUS > 0)
    backend: str
    init_method: str
    source: str = ""  # who started the processes, for the log


def plan_processes(cfg: CfgNode, init_method: str, environ: Optional[dict[str, str]] = None) -> ProcessPlan:
    """Decide launcher / spawn / single from the environment and NUM_GPUS, NUM_SHARDS, SHARD_ID."""
    env_vars = os.environ if environ is None else environ
    backend = "nccl" if cfg.NUM_GPUS > 0 else "gloo"
    env = du.launcher_env(env_vars)
    if env is not None:
        method = "env://" if "MASTER_ADDR" in env_vars else init_method
        return ProcessPlan("launcher", 1, env.world_size, env.rank, env.local_rank, backend, method, env.source)
    if cfg.NUM_GPUS > 1:
        return ProcessPlan(
            "spawn",
            cfg.NUM_GPUS,
            cfg.NUM_GPUS * cfg.NUM_SHARDS,
            cfg.SHARD_ID * cfg.NUM_GPUS,
            0,
            backend,
            init_method,
        )
    return ProcessPlan("single", 1, cfg.NUM_SHARDS, cfg.SHARD_ID, 0, backend, init_method)


def run_jobs(cfg: CfgNode, init_method: str) -> int:
    """Run what the cfg enables (TRAIN.ENABLE, TEST.ENABLE); returns the process exit code."""
    return launch(cfg, plan_processes(cfg, init_method))


def launch(cfg: CfgNode, plan: ProcessPlan) -> int:
    """Start ``plan``'s processes here and wait for them; returns the exit code."""
    for key in ("TRAIN.BATCH_SIZE", "TEST.BATCH_SIZE"):
        if cfg[key.split(".")[0]].BATCH_SIZE % plan.world_size:
            error = cfg_error(
                cfg,
                key,
                f"the global batch size must be a multiple of the {plan.world_size} processes of this run",
            )
            print(f"run_net: config error: {error}", file=sys.stderr)
            return 2
    if plan.mode != "spawn":
        return run_process(0, cfg, plan)
    import torch.multiprocessing as mp

    try:
        mp.spawn(_spawned, args=(cfg, plan), nprocs=plan.procs_here, join=True)
    except mp.ProcessExitedException as e:
        return e.exit_code or 1
    except mp.ProcessRaisedException as e:
        print(e, file=sys.stderr)
        return 1
    return 0


def _spawned(index: int, cfg: CfgNode, plan: ProcessPlan) -> None:
    code = run_process(index, cfg, plan)
    if code:
        sys.exit(code)


def run_process(index: int, cfg: CfgNode, plan: ProcessPlan) -> int:
    """Process ``index`` of this call: device, process group, logging, seeds, then the jobs."""
    from vov3d.datasets import AnnotationError, TooManyBrokenVideosError, VideoDecodeError

    from .evaluate import test
    from .train import NonFiniteLossError, train

    rank = plan.first_rank + index
    user_errors = (
        ConfigError,
        CheckpointError,
        NonFiniteLossError,
        AnnotationError,
        VideoDecodeError,
        TooManyBrokenVideosError,
    )
    try:
        _select_device(cfg, plan.first_device + index)
        if plan.world_size > 1 or plan.mode == "launcher":
            du.init_process_group(plan.backend, plan.init_method, rank, plan.world_size)
        setup_logging(cfg.OUTPUT_DIR, rank, all_ranks=cfg.LOG_ALL_RANKS)
        if rank == 0:
            os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
            save_config(cfg, os.path.join(cfg.OUTPUT_DIR, "config.yaml"))
        logger.info(
            "%d process(es) (%s%s, %s); this is rank %d",
            plan.world_size,
            plan.mode,
            f" by {plan.source}" if plan.source else "",
            "GPU" if cfg.NUM_GPUS > 0 else "CPU",
            rank,
        )
        _seed_everything(cfg.RNG_SEED + rank)
        if cfg.TRAIN.ENABLE:
            train(cfg)
        if cfg.TEST.ENABLE:
            test(cfg)
        return 0
    except user_errors as e:
        _report(rank, e)
        return 1
    finally:
        du.destroy_process_group()


def _report(rank: int, error: Exception) -> None:
    """The error once on the console (stderr), and in this rank's log file (not the console again)."""
    line = f"run_net (rank {rank}): {type(error).__name__}: {error}"
    print(line, file=sys.stderr)
    record = logger.makeRecord(logger.name, logging.ERROR, __file__, 0, line, None, None)
    for handler in logging.getLogger("vov3d").handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def _select_device(cfg: CfgNode, gpu: int) -> None:
    if cfg.NUM_GPUS == 0:
        return
    available = torch.cuda.device_count()
    if gpu >= available:
        raise cfg_error(
            cfg,
            "NUM_GPUS",
            f"a process of this machine needs GPU {gpu}, but {available} are visible; use NUM_GPUS 0 to run on the CPU",
        )
    torch.cuda.set_device(gpu)


def _seed_everything(seed: int) -> None:
    """Each process gets RNG_SEED + rank, so augmentations differ between processes."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
