"""The parts of a stop in step: signal handlers that only set a flag, the periodic-checkpoint clock,
SLURM's requeue with a stand-in scontrol, mid-epoch checkpoint names and json_stats trimming."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from vov3d.checkpoint import CheckpointError
from vov3d.config import ConfigError, load_config
from vov3d.config.validation import signal_numbers
from vov3d.engine.preemption import StopControl, StopSignals, forward_signals, requeue_slurm_job
from vov3d.engine.resume import resume_point, trim_stats_log
from vov3d.engine.run_folder import _refuse_another_run, _remove_older_mid_epoch
from vov3d.utils.logging import json_stats_line
from vov3d.utils.run_layout import RunFolder, checkpoint_position


def test_a_stop_signal_sets_the_flag_and_leaving_restores_the_handler() -> None:
    before = signal.getsignal(signal.SIGUSR1)
    with StopSignals(signal_numbers(["SIGUSR1", "TERM"])) as signals:
        os.kill(os.getpid(), signal.SIGUSR1)
        os.kill(os.getpid(), signal.SIGTERM)  # a second signal changes nothing
        assert signals.received == "SIGUSR1"
    assert signal.getsignal(signal.SIGUSR1) is before


@pytest.mark.parametrize("name", ["SIGKILL", "SIGNOPE", "9"])
def test_a_signal_that_cannot_be_caught_is_a_config_error_naming_the_key(name: str) -> None:
    with pytest.raises(ConfigError, match=f"TRAIN.STOP_SIGNALS.*'{name}'"):
        load_config([], ["TRAIN.STOP_SIGNALS", f"['SIGUSR1', '{name}']"])
    assert StopSignals.from_cfg(load_config([], ["TRAIN.STOP_SIGNALS", "['usr2', 'SIGINT']"])).signals == [
        signal.SIGUSR2,
        signal.SIGINT,
    ]


def test_negative_checkpoint_minutes_are_refused() -> None:
    with pytest.raises(ConfigError, match="TRAIN.CHECKPOINT_MINUTES"):
        load_config([], ["TRAIN.CHECKPOINT_MINUTES", "-1"])


def test_the_periodic_checkpoint_follows_rank_0s_clock_and_a_stop_is_kept() -> None:
    now = [0.0]
    rank0 = StopControl(StopSignals([]), 2.0, True, device=None, clock=lambda: now[0])  # type: ignore[arg-type]
    other = StopControl(StopSignals([]), 2.0, False, device=None, clock=lambda: now[0])  # type: ignore[arg-type]
    assert rank0.flags() == (0.0, 0.0)
    now[0] = 120.0
    assert rank0.flags() == (0.0, 1.0) and other.flags() == (0.0, 0.0)  # only rank 0's clock counts
    assert other.decide(0.0, 1.0) == (False, True)  # but every rank saves on the sum
    rank0.checkpointed()
    assert rank0.flags() == (0.0, 0.0)
    assert other.decide(1.0, 0.0) == (True, True) and other.decide(0.0, 0.0) == (True, True)
    never = StopControl(StopSignals([]), 0.0, True, device=None, clock=lambda: 1e9)  # type: ignore[arg-type]
    assert never.flags() == (0.0, 0.0)


def stand_in_scontrol(folder: Path, exit_code: int = 0) -> Path:
    """An ``scontrol`` that appends its arguments to folder/scontrol_calls.txt."""
    script = folder / "scontrol"
    calls = folder / "scontrol_calls.txt"
    script.write_text(f'#!/bin/sh\necho "$@" >> {calls}\necho "refused" >&2\nexit {exit_code}\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return calls


def test_requeue_calls_scontrol_with_the_job_id(tmp_path: Path) -> None:
    calls = stand_in_scontrol(tmp_path)
    env = {"SLURM_JOB_ID": "4242", "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    assert requeue_slurm_job(env) is True
    assert calls.read_text() == "requeue 4242\n"


def test_requeue_outside_slurm_or_refused(tmp_path: Path, vov3d_log: pytest.LogCaptureFixture) -> None:
    calls = stand_in_scontrol(tmp_path, exit_code=1)
    assert requeue_slurm_job({"PATH": f"{tmp_path}:{os.environ['PATH']}"}) is None  # no job
    assert requeue_slurm_job({"SLURM_JOB_ID": "7", "PATH": "/nonexistent"}) is None  # no scontrol
    assert not calls.exists()
    assert requeue_slurm_job({"SLURM_JOB_ID": "7", "PATH": str(tmp_path)}) is False
    assert "sbatch --requeue" in vov3d_log.text and "refused" in vov3d_log.text


def test_mid_epoch_checkpoints_sort_by_training_done_and_newer_ones_replace_them(tmp_path: Path) -> None:
    folder = RunFolder(str(tmp_path))
    paths = [
        folder.checkpoint_path(2, 5),
        folder.checkpoint_path(1),
        folder.checkpoint_path(2),
        folder.checkpoint_path(1, 30),
    ]
    os.makedirs(folder.checkpoints_dir)
    for path in paths + [folder.best_path]:
        Path(path).touch()
    assert [checkpoint_position(p) for p in folder.checkpoints()] == [(1, 0), (1, 30), (2, 0), (2, 5)]
    _remove_older_mid_epoch(folder, folder.checkpoint_path(2, 7))
    assert [checkpoint_position(p) for p in folder.checkpoints()] == [(1, 0), (2, 0)]  # epoch-end ones stay
    assert os.path.isfile(folder.best_path)


def stats(kind: str, epoch: str, **fields: object) -> str:
    return json_stats_line({"_type": kind, "epoch": epoch, **fields}) + "\n"


def test_lines_written_after_the_checkpoint_are_moved_aside_but_its_validation_kept(tmp_path: Path) -> None:
    folder = RunFolder(str(tmp_path))
    before = [stats("train_iter", "2/4", iter="1/2"), stats("train_epoch", "2/4")]
    after = [stats("val_epoch", "2/4", top1_err=50.0), stats("train_iter", "3/4", iter="1/2")]
    Path(folder.stats_path).write_text("".join(before + after))
    checkpoint = {"epoch": 1, "stats_lines": 2, "validate": True}
    assert trim_stats_log(str(tmp_path), checkpoint, 4) is True
    assert Path(folder.stats_path).read_text() == "".join(before + after[:1])
    assert Path(folder.discarded_stats_path).read_text() == after[1]
    # Killed during that validation: nothing logged, so the resumed run validates first.
    Path(folder.stats_path).write_text("".join(before + after[1:]))
    assert trim_stats_log(str(tmp_path), checkpoint, 4) is False
    assert Path(folder.stats_path).read_text() == "".join(before)
    # A mid-epoch checkpoint keeps no training or validation line written after it; a test's stays.
    tested = stats("test_final", "", top1_acc=50.0)
    Path(folder.stats_path).write_text("".join(before + after + [tested]))
    assert trim_stats_log(str(tmp_path), {"epoch": 1, "iteration": 1, "stats_lines": 1}, 4) is False
    assert Path(folder.stats_path).read_text() == before[0] + tested
    # A finished run's rerun moves nothing (move=False) and reads its last validation.
    Path(folder.stats_path).write_text("".join(before + after))
    assert trim_stats_log(str(tmp_path), checkpoint, 4, move=False) is True
    assert Path(folder.stats_path).read_text() == "".join(before + after)


def test_a_loader_worker_serves_on_through_stop_signals_and_ends_at_exit() -> None:
    """SLURM signals every process of a task: a worker must not die of it (torch's worker handler
    dies of a SIGTERM its parent did not send) but serve the next batch, and the process must
    still exit (multiprocessing ends the workers with SIGTERM and waits for them)."""
    script = """
import os, signal, sys, time, torch
from torch.utils.data import DataLoader
from vov3d.datasets.worker_signals import WorkerStopSignals
loader = DataLoader(list(range(8)), batch_size=1, num_workers=1, persistent_workers=True,
                    worker_init_fn=WorkerStopSignals([signal.SIGUSR1, signal.SIGTERM]))
batches = iter(loader)
next(batches)
worker = loader._iterator._workers[0].pid
os.system(f"kill -USR1 {worker}; kill -TERM {worker}")  # from another process, as slurmstepd sends them
time.sleep(1)
print(int(next(batches)), loader._iterator._workers[0].is_alive(), flush=True)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["1", "True"]


def test_a_launcher_forwards_the_stop_signals_to_the_processes_it_spawned(tmp_path: Path) -> None:
    waits = "import signal, sys; signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1]); print(flush=True); "
    waits += "signal.sigwait([signal.SIGUSR1]); sys.exit(75)"
    child = subprocess.Popen([sys.executable, "-c", waits], stdout=subprocess.PIPE)
    child.stdout.readline()  # it waits for SIGUSR1 now
    alive = type("P", (), {"pid": child.pid, "is_alive": lambda self: child.poll() is None})()
    with forward_signals([signal.SIGUSR1], [alive]):
        os.kill(os.getpid(), signal.SIGUSR1)  # to the launcher only
        assert child.wait(timeout=30) == 75


def test_a_mid_epoch_checkpoint_of_another_split_or_epoch_length_is_refused(tmp_path: Path) -> None:
    cfg = load_config([], ["OUTPUT_DIR", str(tmp_path)])
    split = {"clips": 24, "sha1": "a1"}
    checkpoint = {"epoch": 0, "iteration": 3, "epoch_iters": 6, "train_split": split, "stats_lines": 0}
    assert resume_point(cfg, checkpoint, 6, split, cfg.SOLVER.MAX_EPOCH).iteration == 3
    named = "checkpoint_epoch_00001_iter_000003.pyth stopped at iteration 3"
    with pytest.raises(CheckpointError, match=f"{named} .* 6 iterations .*'a1'.* 6 over .*'b2'"):
        resume_point(cfg, checkpoint, 6, {"clips": 24, "sha1": "b2"}, cfg.SOLVER.MAX_EPOCH)  # a few clips replaced
    with pytest.raises(CheckpointError, match=f"{named} .* 6 iterations .* 5 over"):
        resume_point(cfg, checkpoint, 5, split, cfg.SOLVER.MAX_EPOCH)
    epoch_end = {**checkpoint, "iteration": 0}  # any epoch length and split
    assert resume_point(cfg, epoch_end, 5, {"clips": 20}, cfg.SOLVER.MAX_EPOCH).iteration == 0


@pytest.mark.parametrize("key,value", [("TRAIN.BATCH_SIZE", "32"), ("RNG_SEED", "7")])
def test_a_mid_epoch_checkpoint_needs_the_same_batch_and_seed(tmp_path: Path, key: str, value: str) -> None:
    cfg = load_config([], ["OUTPUT_DIR", str(tmp_path)])
    other = load_config([], ["OUTPUT_DIR", str(tmp_path), key, value])
    path = RunFolder(str(tmp_path)).checkpoint_path(1, 3)
    with pytest.raises(ConfigError, match=f"{key} \\(file {value}, run"):
        _refuse_another_run(cfg, path, {"cfg": other.dump(), "iteration": 3})
    _refuse_another_run(cfg, path, {"cfg": other.dump()})  # an epoch-end checkpoint: a new batch size may follow
