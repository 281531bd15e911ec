"""Entry of a run: decide how many processes to start, set each one up, then train and/or test.

Three ways a run starts (``plan_processes``):

- **launcher** (``torchrun``, or an ``srun`` step with several tasks): the processes exist
  already; rank and world size come from the environment (RANK / WORLD_SIZE / LOCAL_RANK, or
  SLURM_PROCID / SLURM_STEP_NUM_TASKS / SLURM_LOCALID). With GPUs, NUM_GPUS must equal the
  processes started per machine.
- **spawn** (NUM_GPUS > 1): one process per GPU of this machine; with NUM_SHARDS machines,
  rank = SHARD_ID * NUM_GPUS + local rank, meeting at ``--init_method`` as in PySlowFast.
- **single** (NUM_GPUS 0 or 1): this process; with NUM_SHARDS > 1 it is rank SHARD_ID.

NCCL joins GPU processes and gloo CPU ones. Only rank 0 logs and writes files.

When a process of a run dies (kill -9, an OOM kill, a lost node), the others do not wait for it:
the collective that needed it fails (at once on gloo when its connections close, after
DIST_TIMEOUT_MINUTES otherwise), each survivor names the lost rank (the processes' heartbeats, see
``vov3d.utils.heartbeat.Heartbeat``) in one line and exits with LOST_RANK_EXIT, and a launcher
with restarts (``torchrun --max-restarts N``) starts the group again, which resumes from the last
checkpoint in OUTPUT_DIR.
"""

from __future__ import annotations

import gc
import logging
import os
import random
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from vov3d.checkpoint import CheckpointError
from vov3d.config import CfgNode, ConfigError, cfg_error, save_config
from vov3d.config.validation import check_batch_sizes, planned_processes, signal_numbers
from vov3d.utils import distributed as du
from vov3d.utils.logging import setup_logging
from vov3d.utils.run_layout import RunFolder

from .preemption import PREEMPTED_EXIT_CODE, Preempted, StopSignals, forward_signals

logger = logging.getLogger(__name__)

# Exit code of a process that stopped because another process of the run was lost or stopped.
LOST_RANK_EXIT = 3
# After one spawned process exits, how long the others may take to leave by themselves (a stop:
# rank 0 may still be requeueing the job) before they are terminated.
_EXIT_GRACE_SECONDS = 120


class LaunchError(Exception):
    """The launcher's environment cannot start this run; the message says what to set."""


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
    local_world_size: Optional[int] = None  # processes the launcher started on this machine


def plan_processes(
    cfg: CfgNode, init_method: Optional[str] = None, environ: Optional[Mapping[str, str]] = None
) -> ProcessPlan:
    """Decide launcher / spawn / single from the environment and NUM_GPUS, NUM_SHARDS, SHARD_ID.
    ``init_method`` is the user's ``--init_method``; None picks a free local port (one machine),
    MASTER_ADDR (torchrun, srun) or the first node of the SLURM job."""
    env_vars = os.environ if environ is None else environ
    backend = "nccl" if cfg.NUM_GPUS > 0 else "gloo"
    env = du.launcher_env(env_vars)
    if env is not None:
        method = init_method or _launcher_rendezvous(env, env_vars)
        return ProcessPlan(
            "launcher", 1, env.world_size, env.rank, env.local_rank, backend, method, env.source, env.local_world_size
        )
    method = init_method or _local_rendezvous(cfg)
    world = planned_processes(cfg)
    if cfg.NUM_GPUS > 1:
        return ProcessPlan("spawn", cfg.NUM_GPUS, world, cfg.SHARD_ID * cfg.NUM_GPUS, 0, backend, method)
    return ProcessPlan("single", 1, world, cfg.SHARD_ID, 0, backend, method)


def _launcher_rendezvous(env: du.LauncherEnv, environ: Mapping[str, str]) -> str:
    """torchrun always sets MASTER_ADDR/PORT; srun tasks may not, and must all derive the same place."""
    if "MASTER_ADDR" in environ and "MASTER_PORT" in environ or env.source == "torchrun":
        return "env://"
    if "MASTER_ADDR" in environ:
        return f"tcp://{environ['MASTER_ADDR']}:{du.job_port(environ)}"
    try:
        return du.slurm_init_method(environ)
    except ValueError as e:
        raise LaunchError(str(e)) from None


def _local_rendezvous(cfg: CfgNode) -> str:
    """A free port here when every process runs on this machine; several machines must be told."""
    if cfg.NUM_SHARDS > 1:
        raise cfg_error(
            cfg,
            "NUM_SHARDS",
            "a run over several machines needs --init_method tcp://<machine of shard 0>:<free port>, "
            "the same on every machine",
        )
    return f"tcp://127.0.0.1:{du.free_port()}"


def run_jobs(cfg: CfgNode, init_method: Optional[str] = None) -> int:
    """Run what the cfg enables (TRAIN.ENABLE, TEST.ENABLE, then the TensorBoard visualisation pass);
    returns the process exit code."""
    try:
        plan = plan_processes(cfg, init_method)
    except ConfigError as e:
        print(f"run_net: config error: {e}", file=sys.stderr)
        return 2
    except LaunchError as e:
        print(f"run_net: launch error: {e}", file=sys.stderr)
        return 2
    return launch(cfg, plan)


def check_plan(cfg: CfgNode, plan: ProcessPlan, visible_gpus: int) -> Optional[str]:
    """What makes ``plan`` unable to run as the cfg asks (None when it can), checked once
    before any process starts: batch sizes over the processes, and NUM_GPUS against the
    processes the launcher started and the GPUs this machine shows."""
    if cfg.DIST_TIMEOUT_MINUTES <= 0:
        return str(cfg_error(cfg, "DIST_TIMEOUT_MINUTES", "must be more than 0 minutes"))
    counted = f"the processes {plan.source} started" if plan.mode == "launcher" else "NUM_GPUS * NUM_SHARDS"
    try:
        check_batch_sizes(cfg, plan.world_size, counted)
    except ConfigError as e:
        return str(e)
    if cfg.NUM_GPUS == 0:
        return None
    local = plan.local_world_size
    if plan.mode == "launcher" and local is not None and local != cfg.NUM_GPUS:
        return str(
            cfg_error(
                cfg,
                "NUM_GPUS",
                f"{plan.source} started {local} process(es) on this machine: set NUM_GPUS {local}, or start "
                f"{cfg.NUM_GPUS} per machine (torchrun --nproc_per_node {cfg.NUM_GPUS}, "
                f"srun --ntasks-per-node {cfg.NUM_GPUS})",
            )
        )
    needed = plan.procs_here if plan.mode == "spawn" else 1
    if visible_gpus < needed:
        return str(
            cfg_error(
                cfg,
                "NUM_GPUS",
                f"this machine shows {visible_gpus} GPU(s) (torch.cuda.device_count()); set NUM_GPUS to at most "
                f"{visible_gpus}, or NUM_GPUS 0 to run on the CPU",
            )
        )
    return None


def _visible_gpus(cfg: CfgNode) -> int:
    """GPUs this machine shows; 0 for CPU runs, which must not initialise CUDA."""
    return torch.cuda.device_count() if cfg.NUM_GPUS > 0 else 0


def launch(cfg: CfgNode, plan: ProcessPlan) -> int:
    """Start ``plan``'s processes here and wait for them; returns the exit code."""
    error = check_plan(cfg, plan, _visible_gpus(cfg))
    if error:
        print(f"run_net: config error: {error}", file=sys.stderr)
        return 2
    if plan.mode != "spawn":
        return run_process(0, cfg, plan)
    import torch.multiprocessing as mp

    context = mp.start_processes(_spawned, args=(cfg, plan), nprocs=plan.procs_here, join=False, start_method="spawn")
    try:
        with forward_signals(signal_numbers(cfg.TRAIN.STOP_SIGNALS), context.processes):
            while not context.join(grace_period=_EXIT_GRACE_SECONDS):
                pass
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
    from .visualize import check_visualize_cfg, visualize, visualizes

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
        with StopSignals.from_cfg(cfg) as signals:  # kept from the start until training or the test acts on it
            _select_device(cfg, device_index(plan, index, _visible_gpus(cfg)))
            if plan.world_size > 1 or plan.mode == "launcher":
                du.init_process_group(plan.backend, plan.init_method, rank, plan.world_size, cfg.DIST_TIMEOUT_MINUTES)
            setup_logging(cfg.OUTPUT_DIR, rank, all_ranks=cfg.LOG_ALL_RANKS)
            if rank == 0:
                os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
                save_config(cfg, RunFolder(cfg.OUTPUT_DIR).config_path)
            logger.info(
                "%d process(es) (%s%s, %s); this is rank %d",
                plan.world_size,
                plan.mode,
                f" by {plan.source}" if plan.source else "",
                "GPU" if cfg.NUM_GPUS > 0 else "CPU",
                rank,
            )
            _seed_everything(cfg.RNG_SEED + rank)
            if visualizes(cfg):
                check_visualize_cfg(cfg)  # now, not after training
            result = None
            if cfg.TRAIN.ENABLE:
                train(cfg, signals)
            if cfg.TEST.ENABLE:
                result = test(cfg, signals)
            if visualizes(cfg):
                visualize(cfg, result, signals)  # ends the collectives itself: the others leave first
            else:
                du.barrier()  # no rank tears its connections down while another still uses them
        return 0
    except Preempted as stop:
        if rank == 0:
            print(f"run_net: {stop} (exit status {PREEMPTED_EXIT_CODE})", file=sys.stderr)
        return PREEMPTED_EXIT_CODE
    except user_errors as e:
        _report(rank, f"{type(e).__name__}: {e}")
        return 1
    except RuntimeError as e:  # gloo's failed collective (DistBackendError), or a bug
        what = _peer_failure(e)
        if what is None:
            raise
        _report(rank, f"{what}; stopping (exit code {LOST_RANK_EXIT}) for a launcher with restarts to resume", e)
        return LOST_RANK_EXIT
    finally:
        # What the run left (a DDP reducer holding gloo work) is freed while the group and the
        # interpreter are alive: gloo work finalised at interpreter exit can abort the process
        # (SIGABRT, "terminate called without an active exception"; seen once in CI after a
        # 2-shard CPU run that had finished its work).
        gc.collect()
        du.destroy_process_group()


def _peer_failure(error: RuntimeError) -> Optional[str]:
    """What became of the peers when ``error`` stopped this process (``du.roll_call``, a few
    seconds); None when there is no group or every peer still answers, so the error is this rank's own."""
    roll = du.roll_call()
    return roll.describe() if roll is not None else None


def _report(rank: int, what: str, cause: Optional[Exception] = None) -> None:
    """What stopped this rank once on the console (stderr), and in this rank's log file (not the
    console again) with the ``cause`` that revealed it."""
    line = f"run_net (rank {rank}): {what}"
    print(line, file=sys.stderr)
    lines = [line] if cause is None else [line, f"caused by {type(cause).__name__}: {cause}"]
    for text in lines:
        record = logger.makeRecord(logger.name, logging.ERROR, __file__, 0, text, None, None)
        for handler in logging.getLogger("vov3d").handlers:
            if isinstance(handler, logging.FileHandler):
                handler.handle(record)


def device_index(plan: ProcessPlan, index: int, visible_gpus: int) -> int:
    """The GPU of process ``index``: a launcher's task that sees a single GPU (``srun
    --gpus-per-task 1``, one CUDA_VISIBLE_DEVICES per task) uses it whatever its local rank."""
    if plan.mode == "launcher" and visible_gpus == 1:
        return 0
    return plan.first_device + index


def _select_device(cfg: CfgNode, gpu: int) -> None:
    """This process's GPU, and cuDNN's autotuner (CUDNN_BENCHMARK) for it."""
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
    torch.backends.cudnn.benchmark = cfg.CUDNN_BENCHMARK


def _seed_everything(seed: int) -> None:
    """Each process gets RNG_SEED + rank, so augmentations differ between processes."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
