"""tools/slurm/*.sbatch as SLURM runs them: by bash, with the job's SLURM variables set by hand, a
stand-in ``srun`` that starts the step's tasks on this machine and a stand-in ``scontrol`` that
records its arguments.

The one-node script trains a tiny run in 2 CPU tasks. SIGUSR1 sent to the tasks inside epoch 2
(what ``#SBATCH --signal=USR1@120`` does before the time limit) stops it with a mid-epoch
checkpoint, one ``scontrol requeue`` and exit status 75; the script run again (the requeued job)
resumes and finishes the run. Both scripts, left at their defaults, ask srun for the paper's run.
"""

from __future__ import annotations

import os
import random
import shlex
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.engine.conftest import QUICK_VOV3D, SUBPROCESS_ENV
from tests.engine.test_preemption import stand_in_scontrol
from vov3d.cli import run_net
from vov3d.engine.preemption import PREEMPTED_EXIT_CODE
from vov3d.utils.distributed import job_port
from vov3d.utils.run_layout import RunFolder, checkpoint_position, parse_stats

SCRIPTS = REPO / "tools" / "slurm"
EPOCHS, ITERS = 2, 12  # 24 training videos in global batches of 2: one clip per task and iteration
TASKS = 2

# Starts SLURM_NTASKS tasks of "$@" here with the variables srun gives each task, writes their
# process ids to task_pids beside itself and exits with the highest task status, as srun does.
SRUN = """#!/bin/bash
tasks=$SLURM_NTASKS
pids=()
for ((rank = 0; rank < tasks; rank++)); do
  SLURM_STEP_ID=0 SLURM_PROCID=$rank SLURM_LOCALID=$rank SLURM_NODEID=0 SLURM_STEP_NUM_TASKS=$tasks \\
    SLURM_STEP_TASKS_PER_NODE=$tasks SLURM_STEP_NODELIST=$SLURM_JOB_NODELIST "$@" &
  pids+=($!)
done
echo "${pids[@]}" > "$(dirname "$0")/task_pids"
status=0
for pid in "${pids[@]}"; do
  wait "$pid"
  code=$?
  ((code > status)) && status=$code
done
exit $status
"""
# Records its command line, one word a line, and the cpus per task it was given, then starts nothing.
RECORDING_SRUN = """#!/bin/bash
printf '%s\\n' "$@" > "$(dirname "$0")/srun_args"
echo "$SRUN_CPUS_PER_TASK" > "$(dirname "$0")/srun_cpus"
"""


def install(folder: Path, name: str, text: str) -> None:
    path = folder / name
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def free_job_id() -> str:
    """A job id whose rendezvous port (``job_port``) is free here now."""
    for job in random.sample(range(1000, 100000), 100):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", job_port({"SLURM_JOB_ID": str(job)})))
            except OSError:
                continue
            return str(job)
    raise RuntimeError("no free rendezvous port")


def job_environ(bin_dir: Path, job: str, nodes: int, **variables: str) -> dict[str, str]:
    """What sbatch gives the script of a job of ``nodes`` nodes and TASKS tasks per node, with the
    stand-ins and this interpreter first on PATH."""
    path = os.pathsep.join([str(bin_dir), os.path.dirname(sys.executable), os.environ["PATH"]])
    return {
        **SUBPROCESS_ENV, "PATH": path, "SLURM_JOB_ID": job, "SLURM_JOB_NAME": "vov3d_L_k400",
        "SLURM_JOB_NODELIST": "localhost", "SLURM_NNODES": str(nodes), "SLURM_JOB_NUM_NODES": str(nodes),
        "SLURM_NTASKS": str(TASKS * nodes), "SLURM_NTASKS_PER_NODE": str(TASKS), "SLURM_CPUS_PER_TASK": "1",
        "SLURM_SUBMIT_DIR": str(REPO), **variables,
    }  # fmt: skip


def start_job(script: str, env: dict[str, str], log: Path, *overrides: str) -> subprocess.Popen:
    """``bash script overrides`` in the repository's folder, its output appended to ``log``
    (``--open-mode=append``)."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            ["bash", str(SCRIPTS / script), *overrides], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
        )


def wait_for_epoch_2(job: subprocess.Popen, folder: RunFolder, log: Path, timeout: float = 120.0) -> None:
    """Until the run has logged an iteration of epoch 2 (json_stats lines may be cut short)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and job.poll() is None:
        if os.path.isfile(folder.stats_path):
            with open(folder.stats_path, encoding="utf-8") as f:
                entries = [parse_stats(line) or {} for line in f]
            if any(e.get("_type") == "train_iter" and e.get("epoch") == f"2/{EPOCHS}" for e in entries):
                return
        time.sleep(0.05)
    pytest.fail(f"the run did not reach epoch 2 (exit status {job.poll()}):\n{log.read_text()[-3000:]}")


def signal_tasks(bin_dir: Path, number: int) -> None:
    """Send ``number`` to the tasks the stand-in srun started (those still running)."""
    for pid in (bin_dir / "task_pids").read_text().split():
        try:
            os.kill(int(pid), number)
        except ProcessLookupError:
            pass


def end_job(job: subprocess.Popen, bin_dir: Path) -> None:
    """A job still running when its test fails: its tasks and the script are killed."""
    if job.poll() is None:
        if (bin_dir / "task_pids").is_file():
            signal_tasks(bin_dir, signal.SIGKILL)
        job.kill()
        job.wait()


def test_the_one_node_script_stops_on_sigusr1_requeues_and_its_rerun_finishes(
    small_motion: Path, tmp_path: Path
) -> None:
    bin_dir, output = tmp_path / "bin", tmp_path / "run"
    bin_dir.mkdir()
    install(bin_dir, "srun", SRUN)
    calls = stand_in_scontrol(bin_dir)
    job = free_job_id()
    env = job_environ(
        bin_dir, job, 1, CONFIG=QUICK_VOV3D, DATA=str(small_motion), VIDEOS=str(small_motion), OUTPUT_DIR=str(output),
        GPUS_PER_NODE="0",
    )  # fmt: skip
    overrides = ["SOLVER.MAX_EPOCH", str(EPOCHS), "TRAIN.BATCH_SIZE", "2", "LOG_PERIOD", "1", "TEST.ENABLE", "False"]
    log, folder = tmp_path / "vov3d_L_k400.out", RunFolder(str(output))

    first = start_job("train_1node.sbatch", env, log, *overrides)
    try:
        wait_for_epoch_2(first, folder, log)
        signal_tasks(bin_dir, signal.SIGUSR1)  # SLURM signals every task of the step
        assert first.wait(timeout=120) == PREEMPTED_EXIT_CODE, log.read_text()[-3000:]
    finally:
        end_job(first, bin_dir)
    assert calls.read_text() == f"requeue {job}\n"
    positions = [checkpoint_position(p) for p in folder.checkpoints()]
    assert len(positions) == 2 and positions[0] == (1, 0), positions
    done, iteration = positions[1]
    assert done == 1 and 0 < iteration < ITERS, positions  # a mid-epoch checkpoint in epoch 2

    (bin_dir / "task_pids").unlink()  # the stopped job's
    second = start_job("train_1node.sbatch", {**env, "SLURM_RESTART_COUNT": "1"}, log, *overrides)
    try:
        assert second.wait(timeout=180) == 0, log.read_text()[-3000:]
    finally:
        end_job(second, bin_dir)
    resumed = f"(epoch 1 and {iteration} iterations of epoch 2 done)"
    assert resumed in Path(folder.log_path()).read_text()
    assert [checkpoint_position(p) for p in folder.checkpoints()] == [(1, 0), (EPOCHS, 0)]
    assert [s["epoch"] for s in folder.read_stats("train_epoch")] == [f"{e}/{EPOCHS}" for e in range(1, EPOCHS + 1)]
    assert calls.read_text() == f"requeue {job}\n"  # once, by rank 0 of the stopped job


@pytest.mark.parametrize("script,nodes", [("train_1node.sbatch", 1), ("train_multinode.sbatch", 3)])
def test_left_at_its_defaults_a_script_asks_srun_for_the_papers_run(tmp_path: Path, script: str, nodes: int) -> None:
    text = (SCRIPTS / script).read_text()
    directives = [shlex.split(line)[1] for line in text.splitlines() if line.startswith("#SBATCH")]
    assert {"--signal=USR1@120", "--requeue", "--open-mode=append", "--ntasks-per-node=8"} <= set(directives)
    install(tmp_path, "srun", RECORDING_SRUN)
    env = {**job_environ(tmp_path, "4242", nodes), "SLURM_CPUS_PER_TASK": "10"}
    subprocess.run(["bash", str(SCRIPTS / script)], cwd=REPO, env=env, check=True, timeout=30)
    argv = (tmp_path / "srun_args").read_text().splitlines()
    assert argv[:2] == ["python", "tools/run_net.py"]
    cfg = run_net.setup_cfg(run_net.parse_args(argv[2:]))
    assert cfg.MODEL.ARCH == "vov3d" and (cfg.VOV3D.DEPTH, cfg.MODEL.NUM_CLASSES) == (70, 400)  # VoV3D-L, K400
    assert (cfg.NUM_GPUS, cfg.NUM_SHARDS, cfg.TRAIN.BATCH_SIZE, cfg.TEST.BATCH_SIZE) == (
        8,
        nodes,
        64 * nodes,
        64 * nodes,
    )
    assert (cfg.DATA.PATH_TO_DATA_DIR, cfg.DATA.PATH_PREFIX) == ("/data/kinetics", "/data/kinetics/videos")
    assert cfg.OUTPUT_DIR == "output/Kinetics/vov3d/vov3d_L" + ("" if nodes == 1 else f"_{nodes}nodes")
    assert cfg.TRAIN.AUTO_RESUME and "SIGUSR1" in cfg.TRAIN.STOP_SIGNALS
    assert (tmp_path / "srun_cpus").read_text() == "10\n"
