"""A run stopped inside epoch 2 and started again with the same command ends exactly as a run that
was never stopped: bit-identical final weights and the same json_stats training and validation
lines (times aside). Stopped by SIGTERM (a mid-epoch checkpoint, exit status 75) with 1 process and
2 gloo processes, 0 and 2 loader workers; killed by SIGKILL after a periodic mid-epoch checkpoint,
and without one (the epoch-1 checkpoint; the lines of the lost part are moved aside).

The data is a small motion demo (``small_motion``: no two clips alike), so the order of the
samples, every augmentation draw and the loader workers' streams all show in the weights.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.conftest import REPO
from tests.engine.conftest import QUICK_VOV3D, SUBPROCESS_ENV, final_weights, free_port
from vov3d.engine.preemption import PREEMPTED_EXIT_CODE
from vov3d.utils.run_layout import RunFolder, checkpoint_position

EPOCHS, ITERS = 2, 6  # 24 training videos in global batches of 4
TIMES = ("dt_data", "dt_net", "eta", "mem", "time_diff")


def run_net_args(data: Path, output_dir: Path, workers: int, *opts: object) -> list[str]:
    return [
        "--cfg", QUICK_VOV3D, "DATA.PATH_TO_DATA_DIR", str(data), "DATA.PATH_PREFIX", str(data),
        "OUTPUT_DIR", str(output_dir), "SOLVER.MAX_EPOCH", str(EPOCHS), "LOG_PERIOD", "1", "TEST.ENABLE", "False",
        "DATA_LOADER.NUM_WORKERS", str(workers), "TRAIN.CHECKPOINT_PERIOD", "1", *map(str, opts),
    ]  # fmt: skip


def launch(args: list[str], world: int, stop: tuple[object, ...] | None = None) -> list[int]:
    """run_net with ``args`` in ``world`` processes with torchrun's variables (one process: none),
    each sending itself ``stop`` = (signal, iteration of the run from 1, rank[, function whose
    calls count instead]) through the driver; returns the exit codes."""
    driver = (
        ["-m", "tests.engine.preempt_driver", *map(str, stop), "--"] if stop else [str(REPO / "tools" / "run_net.py")]
    )
    port = str(free_port())
    processes = []
    for rank in range(world):
        env = dict(SUBPROCESS_ENV)
        if world > 1:
            env.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world),
                       MASTER_ADDR="127.0.0.1", MASTER_PORT=port)  # fmt: skip
        command = [sys.executable, *driver, *args]
        processes.append(subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    outputs = [p.communicate(timeout=300)[0].decode(errors="replace") for p in processes]
    codes = [p.returncode for p in processes]
    print("\n".join(out[-3000:] for out in outputs))
    return codes


def logged(output_dir: Path) -> list[dict[str, Any]]:
    """The training and validation json_stats lines, without their times."""
    stats = RunFolder(str(output_dir)).read_stats()
    return [{k: v for k, v in s.items() if k not in TIMES} for s in stats if s["_type"] != "test_final"]


@pytest.fixture(scope="module")
def uninterrupted(small_motion: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """The runs that were never stopped, with 1 and 2 processes (0 workers)."""
    runs = {}
    for world in (1, 2):
        runs[world] = tmp_path_factory.mktemp(f"uninterrupted_{world}")
        assert launch(run_net_args(small_motion, runs[world], 0), world) == [0] * world
    return runs


def assert_same_run(output_dir: Path, reference: Path) -> None:
    expected, resumed = final_weights(reference, EPOCHS), final_weights(output_dir, EPOCHS)
    differing = [key for key, tensor in expected.items() if not torch.equal(resumed[key], tensor)]
    assert not differing, f"{len(differing)} of {len(expected)} tensors differ, e.g. {differing[:3]}"
    assert logged(output_dir) == logged(reference)
    assert len([s for s in logged(output_dir) if s["_type"] == "train_epoch"]) == EPOCHS


@pytest.mark.parametrize("world,workers", [(1, 0), (1, 2), (2, 0), (2, 2)])
def test_stopped_by_sigterm_inside_epoch_2_and_resumed(
    small_motion: Path, uninterrupted: dict[int, Path], tmp_path: Path, world: int, workers: int
) -> None:
    args = run_net_args(small_motion, tmp_path, workers)
    # The last rank gets the signal: every rank learns it from the loss's all-reduce.
    assert launch(args, world, ("SIGTERM", ITERS + 3, world - 1)) == [PREEMPTED_EXIT_CODE] * world
    # Sent during iteration 3, the flag goes out with iteration 4's all-reduce: a checkpoint after it.
    positions = [checkpoint_position(p) for p in RunFolder(str(tmp_path)).checkpoints()]
    assert positions == [(1, 0), (1, 4)]
    assert launch(args, world) == [0] * world
    assert "(epoch 1 and 4 iterations of epoch 2 done)" in (tmp_path / "stdout.log").read_text()
    assert_same_run(tmp_path, uninterrupted[world])
    assert [checkpoint_position(p) for p in RunFolder(str(tmp_path)).checkpoints()] == [(1, 0), (2, 0)]


def test_sigterm_to_every_process_of_the_task_workers_included(
    small_motion: Path, uninterrupted: dict[int, Path], tmp_path: Path
) -> None:
    """SLURM signals the loader workers too: they ignore it, and the run stops in step as above."""
    args = run_net_args(small_motion, tmp_path, 2)
    assert launch(args, 1, ("group:SIGTERM", ITERS + 3, 0)) == [PREEMPTED_EXIT_CODE]
    assert [checkpoint_position(p) for p in RunFolder(str(tmp_path)).checkpoints()] == [(1, 0), (1, 4)]
    assert launch(args, 1) == [0]
    assert_same_run(tmp_path, uninterrupted[1])


@pytest.mark.parametrize("periodic", [True, False], ids=["after_a_periodic_checkpoint", "after_an_epoch_checkpoint"])
def test_killed_by_sigkill_inside_epoch_2_and_resumed(
    small_motion: Path, uninterrupted: dict[int, Path], tmp_path: Path, periodic: bool
) -> None:
    minutes = 1e-6 if periodic else 0  # a mid-epoch checkpoint after every iteration, or none
    assert launch(
        run_net_args(small_motion, tmp_path, 2, "TRAIN.CHECKPOINT_MINUTES", minutes), 1, ("SIGKILL", ITERS + 4, 0)
    ) == [-9]
    newest = checkpoint_position(RunFolder(str(tmp_path)).checkpoints()[-1])
    assert newest == ((1, 3) if periodic else (1, 0))
    assert launch(run_net_args(small_motion, tmp_path, 2), 1) == [0]
    assert_same_run(tmp_path, uninterrupted[1])
    discarded = Path(RunFolder(str(tmp_path)).discarded_stats_path)
    assert discarded.is_file() != periodic  # the lost part's lines, when it wrote any past the checkpoint


def test_resumed_by_another_number_of_processes_the_epoch_goes_on(small_motion: Path, tmp_path: Path) -> None:
    """Stopped with 2 processes after 4 iterations of epoch 2, resumed with 1: the process reads
    the global batches 5 and 6 that remain (the same clips for any world size), the meters go on,
    and the log says the random generators are not restored."""
    args = run_net_args(small_motion, tmp_path, 0)
    assert launch(args, 2, ("SIGTERM", ITERS + 3, 0)) == [PREEMPTED_EXIT_CODE] * 2
    assert launch(args, 1) == [0]
    assert "not restoring them (the epoch's order of global batches is kept" in (tmp_path / "stdout.log").read_text()
    iterations = [s["iter"] for s in logged(tmp_path) if s["_type"] == "train_iter" and s["epoch"] == "2/2"]
    assert iterations == [f"{i}/{ITERS}" for i in range(1, ITERS + 1)]
    assert [s["epoch"] for s in logged(tmp_path) if s["_type"] == "train_epoch"] == ["1/2", "2/2"]


@pytest.mark.parametrize(
    "world,period", [(1, 1), (1, 2), (2, 2)], ids=["after_its_checkpoint", "off_the_period", "off_the_period_2_ranks"]
)
def test_stopped_during_validation_after_it(
    small_motion: Path, uninterrupted: dict[int, Path], tmp_path: Path, world: int, period: int
) -> None:
    """SIGUSR1 (to the last rank) during epoch 1's validation: it finishes, then the run stops
    with an epoch-end checkpoint (written before validation, or after it when the period has none
    there) and goes on from epoch 2 without validating epoch 1 again."""
    args = run_net_args(small_motion, tmp_path, 0, "TRAIN.CHECKPOINT_PERIOD", period)
    stop = ("SIGUSR1", 1, world - 1, "vov3d.engine.train.validate_model")
    assert launch(args, world, stop) == [PREEMPTED_EXIT_CODE] * world
    assert [checkpoint_position(p) for p in RunFolder(str(tmp_path)).checkpoints()] == [(1, 0)]
    assert launch(args, world) == [0] * world
    assert_same_run(tmp_path, uninterrupted[world])


def test_stopped_at_the_last_iteration_of_an_epoch(
    small_motion: Path, uninterrupted: dict[int, Path], tmp_path: Path
) -> None:
    """Agreed at epoch 1's last iteration, off the checkpoint period: the epoch ends with a
    checkpoint and no validation; the resumed run validates epoch 1 first, then goes on."""
    args = run_net_args(small_motion, tmp_path, 0, "TRAIN.CHECKPOINT_PERIOD", 2)
    assert launch(args, 1, ("SIGTERM", ITERS - 1, 0)) == [PREEMPTED_EXIT_CODE]
    assert [checkpoint_position(p) for p in RunFolder(str(tmp_path)).checkpoints()] == [(1, 0)]
    assert not RunFolder(str(tmp_path)).read_stats("val_epoch")
    assert launch(args, 1) == [0]
    assert_same_run(tmp_path, uninterrupted[1])


def test_a_sub_batch_norm_run_resumes_its_splits_statistics(small_motion: Path, tmp_path: Path) -> None:
    """BN.NORM_TYPE sub_batchnorm keeps per-split statistics outside the state dict: the training
    checkpoint carries them, so a run stopped inside epoch 2 ends with the uninterrupted run's
    running statistics too (they restarted from the aggregate before, and differed). Without
    precise BN, which would recompute them from the final weights and hide the difference."""
    opts = ("BN.NORM_TYPE", "sub_batchnorm", "BN.NUM_SPLITS", 2, "BN.USE_PRECISE_STATS", False)
    args = {name: run_net_args(small_motion, tmp_path / name, 0, *opts) for name in ("uninterrupted", "stopped")}
    assert launch(args["uninterrupted"], 1) == [0]
    assert launch(args["stopped"], 1, ("SIGTERM", ITERS + 3, 0)) == [PREEMPTED_EXIT_CODE]
    assert launch(args["stopped"], 1) == [0]
    assert_same_run(tmp_path / "stopped", tmp_path / "uninterrupted")
