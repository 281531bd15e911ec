"""How a run decides between an outside launcher, spawning and a single process."""

from __future__ import annotations

from pathlib import Path

import pytest

from vov3d.config import get_cfg
from vov3d.engine.launch import ProcessPlan, launch, plan_processes
from vov3d.utils.distributed import launcher_env


def cfg_with(**keys):
    cfg = get_cfg()
    for key, value in keys.items():
        cfg[key] = value
    cfg.freeze()
    return cfg


def test_torchrun_environment_wins_over_num_gpus() -> None:
    environ = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "MASTER_ADDR": "node0", "MASTER_PORT": "29500"}
    plan = plan_processes(cfg_with(NUM_GPUS=0), "tcp://localhost:9999", environ)
    assert plan == ProcessPlan("launcher", 1, 4, 3, 1, "gloo", "env://", "torchrun")
    plan = plan_processes(cfg_with(NUM_GPUS=8), "tcp://localhost:9999", environ)
    assert (plan.mode, plan.backend, plan.world_size) == ("launcher", "nccl", 4)


def test_slurm_tasks() -> None:
    environ = {"SLURM_PROCID": "5", "SLURM_NTASKS": "16", "SLURM_LOCALID": "1"}
    plan = plan_processes(cfg_with(NUM_GPUS=8), "tcp://node0:9999", environ)
    assert plan == ProcessPlan("launcher", 1, 16, 5, 1, "nccl", "tcp://node0:9999", "SLURM")
    # One task (sbatch, salloc): this process spawns as if started by hand.
    one_task = {"SLURM_PROCID": "0", "SLURM_NTASKS": "1", "SLURM_LOCALID": "0"}
    assert launcher_env(one_task) is None
    assert plan_processes(cfg_with(NUM_GPUS=8), "tcp://node0:9999", one_task).mode == "spawn"


def test_spawn_one_process_per_gpu_and_shard_ranks() -> None:
    plan = plan_processes(cfg_with(NUM_GPUS=8, NUM_SHARDS=2, SHARD_ID=1), "tcp://node0:9999", {})
    assert plan == ProcessPlan("spawn", 8, 16, 8, 0, "nccl", "tcp://node0:9999")


def test_single_process_on_cpu_or_one_gpu_per_shard() -> None:
    assert plan_processes(cfg_with(NUM_GPUS=0), "tcp://localhost:9999", {}) == ProcessPlan(
        "single", 1, 1, 0, 0, "gloo", "tcp://localhost:9999"
    )
    plan = plan_processes(cfg_with(NUM_GPUS=1, NUM_SHARDS=4, SHARD_ID=2), "tcp://node0:9999", {})
    assert (plan.mode, plan.world_size, plan.first_rank, plan.backend) == ("single", 4, 2, "nccl")


def test_batch_size_must_divide_over_the_actual_processes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = cfg_with(NUM_GPUS=0, OUTPUT_DIR=str(tmp_path))  # TRAIN.BATCH_SIZE 64 is no multiple of 3
    plan = ProcessPlan("launcher", 1, 3, 0, 0, "gloo", "env://", "torchrun")
    assert launch(cfg, plan) == 2
    assert "TRAIN.BATCH_SIZE = 64" in capsys.readouterr().err
