"""A stop signal during the multi-view test: every rank leaves at the same batch with exit status 75
after rank 0 requeues the SLURM job, nothing of the test is written, and the same command run
again tests to the end. A test-only run (TRAIN.ENABLE False) in 2 gloo processes, the signal sent
to rank 1 only: rank 0 learns it from the gather of the views."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO
from tests.engine.conftest import QUICK_VOV3D, SUBPROCESS_ENV, free_port, quick_opts
from tests.engine.test_preemption import stand_in_scontrol
from vov3d.engine.preemption import PREEMPTED_EXIT_CODE
from vov3d.utils.run_layout import RunFolder

WORLD = 2
RESULTS = "results.pyth"  # TEST.SAVE_RESULTS_PATH


def run_test_only(data: Path, output_dir: Path, bin_dir: Path, stop: tuple[str, int, int] | None = None) -> list[int]:
    """A test-only run in WORLD processes with torchrun's variables in a SLURM job whose scontrol
    is the stand-in in ``bin_dir``; with ``stop`` = (signal, gather call, rank) through the driver.
    Returns the exit codes."""
    gathers = "vov3d.engine.evaluate.all_gather_tensors"  # two a batch: the scores, then the ids
    driver = ["-m", "tests.engine.preempt_driver", *map(str, stop), gathers, "--"] if stop else ["tools/run_net.py"]
    args = [
        "--cfg", QUICK_VOV3D, *quick_opts(data, output_dir), "TRAIN.ENABLE", "False", "TEST.ALLOW_RANDOM_WEIGHTS",
        "True", "TEST.SAVE_RESULTS_PATH", RESULTS,
    ]  # fmt: skip
    port, processes = str(free_port()), []
    for rank in range(WORLD):
        env = {
            **SUBPROCESS_ENV, "RANK": str(rank), "WORLD_SIZE": str(WORLD), "LOCAL_RANK": str(rank),
            "LOCAL_WORLD_SIZE": str(WORLD), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "SLURM_JOB_ID": "31337",
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        }  # fmt: skip
        command = [sys.executable, *driver, *args]
        processes.append(subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    outputs = [p.communicate(timeout=300)[0].decode(errors="replace") for p in processes]
    print("\n".join(out[-3000:] for out in outputs))
    return [p.returncode for p in processes]


def written_outputs(output_dir: Path) -> list[Path]:
    """What a finished test writes: its json_stats line aside, these files."""
    folder = RunFolder(str(output_dir))
    paths = [folder.per_class_path, folder.confusion_matrix_path("csv"), folder.confusion_matrix_path("png")]
    return [Path(p) for p in paths] + [output_dir / RESULTS]


def test_a_stop_signal_during_scoring_leaves_at_one_batch_writes_nothing_and_a_rerun_tests(
    colour_data: Path, tmp_path: Path
) -> None:
    output_dir, bin_dir = tmp_path / "run", tmp_path / "bin"
    bin_dir.mkdir()
    calls = stand_in_scontrol(bin_dir)
    # Sent during batch 2's gathers (calls 3 and 4), the flag goes out with batch 3's views.
    assert run_test_only(colour_data, output_dir, bin_dir, ("SIGUSR1", 3, 1)) == [PREEMPTED_EXIT_CODE] * WORLD
    folder = RunFolder(str(output_dir))
    assert "stopped by another process (test batch 3/6)" in Path(folder.log_path()).read_text()  # rank 0's log
    assert calls.read_text() == "requeue 31337\n"  # rank 0 only
    assert folder.read_stats("test_final") == []
    assert [p.name for p in written_outputs(output_dir) if p.exists()] == []

    assert run_test_only(colour_data, output_dir, bin_dir) == [0] * WORLD
    (final,) = folder.read_stats("test_final")
    assert (final["num_videos"], final["num_views"]) == (4, 6)
    assert all(p.is_file() for p in written_outputs(output_dir))
    assert calls.read_text() == "requeue 31337\n"
