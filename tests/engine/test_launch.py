"""How a run decides between an outside launcher, spawning and a single process, where its
processes meet, and what it refuses before starting any. Environments are given as dicts, or
set with monkeypatch after clearing the launcher variables, so the tests also pass under srun."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch

from tests.engine.conftest import LAUNCHER_VARS
from tests.helpers import default_cfg
from vov3d.config import ConfigError
from vov3d.config.validation import planned_processes
from vov3d.engine import launch as launch_module
from vov3d.engine.launch import LaunchError, ProcessPlan, check_plan, device_index, launch, plan_processes, run_jobs
from vov3d.utils.distributed import launcher_env
from vov3d.utils.run_layout import RunFolder


def cfg_with(**keys):
    return default_cfg(freeze=True, **keys)


def srun_task(rank: int, **extra: str) -> dict[str, str]:
    """The variables srun sets for task ``rank`` of a 2-task step on nodes a01 and a02."""
    return {
        "SLURM_JOB_ID": "123456", "SLURM_PROCID": str(rank), "SLURM_LOCALID": "0", "SLURM_NODEID": str(rank),
        "SLURM_NTASKS": "2", "SLURM_STEP_ID": "0", "SLURM_STEP_NUM_TASKS": "2",
        "SLURM_STEP_TASKS_PER_NODE": "1(x2)", "SLURM_JOB_NODELIST": "a[01-02]", **extra,
    }  # fmt: skip


def test_torchrun_environment_wins_over_num_gpus() -> None:
    environ = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "MASTER_ADDR": "node0", "MASTER_PORT": "29500"}
    plan = plan_processes(cfg_with(NUM_GPUS=0), None, environ)
    assert plan == ProcessPlan("launcher", 1, 4, 3, 1, "gloo", "env://", "torchrun")
    plan = plan_processes(cfg_with(NUM_GPUS=8), None, {**environ, "LOCAL_WORLD_SIZE": "2"})
    assert (plan.mode, plan.backend, plan.world_size, plan.local_world_size) == ("launcher", "nccl", 4, 2)


@pytest.mark.parametrize("master", [{}, {"MASTER_ADDR": "a01", "MASTER_PORT": "29500"}, {"MASTER_ADDR": "a01"}])
def test_srun_tasks_meet_at_the_first_node(master: dict[str, str]) -> None:
    plans = [plan_processes(cfg_with(NUM_GPUS=1), None, srun_task(rank, **master)) for rank in (0, 1)]
    assert [(p.mode, p.world_size, p.first_rank, p.local_world_size, p.source) for p in plans] == [
        ("launcher", 2, 0, 1, "SLURM"),
        ("launcher", 2, 1, 1, "SLURM"),
    ]
    expected = {0: "tcp://a01:18456", 1: "tcp://a01:18456", 2: "env://"}[len(master)]  # 15000 + 123456 % 20000
    assert {p.init_method for p in plans} == {expected}
    given = plan_processes(cfg_with(NUM_GPUS=1), "tcp://head:1234", srun_task(1, **master))
    assert given.init_method == "tcp://head:1234"  # --init_method wins


def test_srun_without_a_node_list_or_master_addr_says_what_to_set() -> None:
    environ = srun_task(0)
    del environ["SLURM_JOB_NODELIST"]
    with pytest.raises(LaunchError, match="MASTER_ADDR"):
        plan_processes(cfg_with(NUM_GPUS=1), None, environ)


def test_sbatch_script_without_srun_runs_as_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    for var in LAUNCHER_VARS:
        monkeypatch.delenv(var, raising=False)
    for var, value in {"SLURM_JOB_ID": "7", "SLURM_NTASKS": "8", "SLURM_PROCID": "0", "SLURM_LOCALID": "0"}.items():
        monkeypatch.setenv(var, value)
    assert launcher_env() is None
    cfg = cfg_with(NUM_GPUS=0, OUTPUT_DIR=str(tmp_path), **{"TRAIN.BATCH_SIZE": 6})  # 6 is no multiple of 8
    plan = plan_processes(cfg)
    assert (plan.mode, plan.world_size, plan.first_rank) == ("single", 1, 0)
    cfg = cfg_with(
        NUM_GPUS=0, OUTPUT_DIR=str(tmp_path), **{"TRAIN.BATCH_SIZE": 6, "TRAIN.ENABLE": False, "TEST.ENABLE": False}
    )
    assert run_jobs(cfg) == 0  # returns at once: no peers to wait for
    assert "1 process(es) (single, CPU); this is rank 0" in Path(RunFolder(str(tmp_path)).log_path()).read_text()


def test_a_single_task_srun_step_spawns_as_if_started_by_hand() -> None:
    one_task = {**srun_task(0), "SLURM_NTASKS": "1", "SLURM_STEP_NUM_TASKS": "1"}
    assert launcher_env(one_task) is None
    assert plan_processes(cfg_with(NUM_GPUS=8), None, one_task).mode == "spawn"


def test_spawn_one_process_per_gpu_and_shard_ranks() -> None:
    plan = plan_processes(cfg_with(NUM_GPUS=8, NUM_SHARDS=2, SHARD_ID=1), "tcp://node0:9999", {})
    assert plan == ProcessPlan("spawn", 8, 16, 8, 0, "nccl", "tcp://node0:9999")


def test_one_machine_gets_a_free_port_and_several_machines_must_name_one() -> None:
    plan = plan_processes(cfg_with(NUM_GPUS=0), None, {})
    assert plan == ProcessPlan("single", 1, 1, 0, 0, "gloo", plan.init_method)
    host, port = plan.init_method.removeprefix("tcp://").split(":")
    with socket.socket() as s:
        s.bind((host, int(port)))  # free: no clash with another run's fixed 9999
    with pytest.raises(ConfigError, match="--init_method"):
        plan_processes(cfg_with(NUM_GPUS=1, NUM_SHARDS=4, SHARD_ID=2), None, {})
    plan = plan_processes(cfg_with(NUM_GPUS=1, NUM_SHARDS=4, SHARD_ID=2), "tcp://node0:9999", {})
    assert (plan.mode, plan.world_size, plan.first_rank, plan.backend) == ("single", 4, 2, "nccl")


def test_batch_size_must_divide_over_the_actual_processes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = cfg_with(NUM_GPUS=0, OUTPUT_DIR=str(tmp_path))  # TRAIN.BATCH_SIZE 64 is no multiple of 3
    plan = ProcessPlan("launcher", 1, 3, 0, 0, "gloo", "env://", "torchrun")
    assert launch(cfg, plan) == 2
    assert "TRAIN.BATCH_SIZE = 64" in capsys.readouterr().err


def test_one_count_of_processes_before_they_start() -> None:
    """Without a launcher the plan has the processes the cfg's batch sizes were checked against at
    load time; with one, the launcher's count is checked, and the error says whose it is."""
    for keys in ({"NUM_GPUS": 0}, {"NUM_GPUS": 1, "NUM_SHARDS": 2}, {"NUM_GPUS": 4, "NUM_SHARDS": 2}):
        cfg = cfg_with(**keys)
        assert plan_processes(cfg, "tcp://node0:9999", {}).world_size == planned_processes(cfg), keys
    plan = ProcessPlan("launcher", 1, 6, 0, 0, "gloo", "env://", "torchrun")
    error = check_plan(cfg_with(NUM_GPUS=0, **{"TRAIN.BATCH_SIZE": 12, "TEST.BATCH_SIZE": 8}), plan, visible_gpus=0)
    assert "TEST.BATCH_SIZE = 8" in error and "multiple of the processes torchrun started = 6" in error
    assert check_plan(cfg_with(NUM_GPUS=0, **{"TRAIN.BATCH_SIZE": 12, "TEST.BATCH_SIZE": 6}), plan, 0) is None


def test_num_gpus_must_match_the_processes_the_launcher_started() -> None:
    plan = ProcessPlan("launcher", 1, 1, 0, 0, "nccl", "env://", "torchrun", local_world_size=1)
    error = check_plan(cfg_with(NUM_GPUS=8), plan, visible_gpus=8)
    assert "NUM_GPUS = 8" in error and "torchrun started 1 process(es)" in error and "--nproc_per_node 8" in error
    assert check_plan(cfg_with(NUM_GPUS=1), plan, visible_gpus=8) is None
    assert check_plan(cfg_with(NUM_GPUS=0, **{"TRAIN.BATCH_SIZE": 1}), plan, visible_gpus=0) is None


def test_more_gpus_than_visible_stops_once_before_spawning(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(launch_module, "run_process", lambda *args: pytest.fail("no process may start"))
    cfg = cfg_with(NUM_GPUS=8)
    assert launch(cfg, plan_processes(cfg, None, {})) == 2
    err = capsys.readouterr().err
    assert err.count("shows 0 GPU(s)") == 1 and "NUM_GPUS 0 to run on the CPU" in err


def test_a_task_that_sees_one_gpu_uses_it_whatever_its_local_rank() -> None:
    plan = ProcessPlan("launcher", 1, 16, 13, 5, "nccl", "env://", "SLURM", 8)
    assert device_index(plan, 0, visible_gpus=1) == 0  # srun --gpus-per-task 1
    assert device_index(plan, 0, visible_gpus=8) == 5
    assert device_index(ProcessPlan("spawn", 8, 8, 0, 0, "nccl", "tcp://h:1"), 3, visible_gpus=8) == 3


def test_cudnn_benchmark_follows_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_device", lambda gpu: None)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    launch_module._select_device(cfg_with(NUM_GPUS=1), 0)
    assert torch.backends.cudnn.benchmark is True  # the default
    launch_module._select_device(cfg_with(NUM_GPUS=1, CUDNN_BENCHMARK=False), 0)
    assert torch.backends.cudnn.benchmark is False
