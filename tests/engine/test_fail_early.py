"""A run fails early, once, with the way forward: every split it reads is checked before training,
and every val and test video is opened then: the unopenable ones stop the run before the first
epoch, all listed (on every process alike), or are left out with TEST.SKIP_BROKEN_VIDEOS. A val
video that opens but is damaged further in stops the run only after the epoch's checkpoint (one
line naming the file, TEST.SKIP_BROKEN_VIDEOS and tools/scan_dataset.py, even from loader
workers), and with TEST.SKIP_BROKEN_VIDEOS validation leaves the video out."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from tests.conftest import REPO
from tests.datasets.helpers import make_video
from tests.engine.conftest import COLOURS, SUBPROCESS_ENV, free_port, quick_cfg, run_net_command, write_dataset
from vov3d.config import ConfigError
from vov3d.datasets import VideoDecodeError, build_dataset, build_loader
from vov3d.datasets.readable import check_readable
from vov3d.engine.evaluate import validate
from vov3d.engine.runtime import Execution
from vov3d.engine.train import train
from vov3d.utils.logging import StatsLog
from vov3d.utils.run_layout import RunFolder

CPU = torch.device("cpu")

ONE_EPOCH = ["SOLVER.MAX_EPOCH", 1, "TRAIN.BATCH_SIZE", 2, "TEST.ENABLE", True]


@pytest.fixture(scope="module")
def broken_val(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 videos per split; val/002.mp4 is not a video."""
    root = write_dataset(
        tmp_path_factory.mktemp("broken_val"),
        {split: [(c, k) for k, c in enumerate(COLOURS)] for split in ("train", "val", "test")},
    )
    (root / "val" / "002.mp4").write_bytes(b"not a video")
    return root


def copy_without(data: Path, tmp_path: Path, name: str) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    (copy / name).unlink()
    return copy


def test_a_missing_test_split_stops_the_run_before_training(broken_val: Path, tmp_path: Path) -> None:
    data = copy_without(broken_val, tmp_path, "test.csv")
    with pytest.raises(ConfigError, match="test.csv not found"):
        train(quick_cfg(data, tmp_path / "out", *ONE_EPOCH))
    assert not os.path.exists(RunFolder(str(tmp_path / "out")).checkpoints_dir)


def test_val_videos_in_the_wrong_place_stop_the_run_before_training(broken_val: Path, tmp_path: Path) -> None:
    data = copy_without(broken_val, tmp_path, "val.csv")
    (data / "val.csv").write_text("".join(f"elsewhere/{i:03d}.mp4 {i}\n" for i in range(4)))
    with pytest.raises(ConfigError, match=r"DATA.PATH_PREFIX.*none of 4 videos sampled from the val split .*elsewhere"):
        train(quick_cfg(data, tmp_path / "out", *ONE_EPOCH))
    assert not os.path.exists(RunFolder(str(tmp_path / "out")).checkpoints_dir)


def run_to_the_end(data: Path, output_dir: Path, *opts: object) -> tuple[int, str]:
    command = run_net_command(data, output_dir, *ONE_EPOCH, "DATA_LOADER.NUM_WORKERS", 2, "TRAIN.EVAL_PERIOD", 1, *opts)
    result = subprocess.run(command, cwd=REPO, env=SUBPROCESS_ENV, capture_output=True, text=True, timeout=300)
    return result.returncode, result.stdout + result.stderr


def test_unopenable_val_and_test_videos_stop_the_run_before_training_all_listed(
    broken_val: Path, tmp_path: Path
) -> None:
    data = copy_without(broken_val, tmp_path, "test/001.mp4")
    (data / "test" / "003.mp4").write_bytes(b"")
    code, output = run_to_the_end(data, tmp_path / "out")
    assert code == 1, output[-3000:]
    assert not os.path.exists(RunFolder(str(tmp_path / "out")).checkpoints_dir)  # no epoch was trained
    (first,) = [line for line in output.splitlines() if "VideoDecodeError" in line]
    assert "3 videos cannot be opened (val 1 of 4, test 2 of 4)" in first and "TEST.SKIP_BROKEN_VIDEOS True" in first
    assert "remove their lines from the annotation files" in first
    listed = output.split(first, 1)[1].splitlines()[1:4]
    assert listed[0].strip().startswith(f"{data / 'val' / '002.mp4'}: cannot be opened as a video")
    assert listed[1].strip() == f"{data / 'test' / '001.mp4'}: file not found"
    assert listed[2].strip() == f"{data / 'test' / '003.mp4'}: file is empty (0 bytes)"
    assert "Traceback" not in output


def test_a_test_only_run_lists_unopenable_test_videos_before_scoring(broken_val: Path, tmp_path: Path) -> None:
    data = copy_without(broken_val, tmp_path, "test/001.mp4")
    (data / "test" / "003.mp4").write_bytes(b"")
    opts = ["TRAIN.ENABLE", False, "TEST.ENABLE", True, "TEST.ALLOW_RANDOM_WEIGHTS", True]
    command = run_net_command(data, tmp_path / "out", *opts)
    result = subprocess.run(command, cwd=REPO, env=SUBPROCESS_ENV, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    (first,) = [line for line in output.splitlines() if "VideoDecodeError" in line]
    assert "2 videos cannot be opened (test 2 of 4)" in first
    listed = [line.strip() for line in output.split(first, 1)[1].splitlines()[1:3]]
    assert listed == [
        f"{data / 'test' / '001.mp4'}: file not found",
        f"{data / 'test' / '003.mp4'}: file is empty (0 bytes)",
    ]
    assert not os.path.exists(RunFolder(str(tmp_path / "out")).per_class_path)  # nothing was scored


def test_the_folder_dataset_says_to_delete_the_file(tmp_path: Path) -> None:
    for split in ("train", "val", "test"):
        make_video(tmp_path / split / "red" / "a.mp4", 16)
    (tmp_path / "val" / "red" / "b.mp4").write_text("not a video")
    folder = ["TRAIN.DATASET", "folder", "TEST.DATASET", "folder", "MODEL.NUM_CLASSES", 1]
    splits = {split: build_dataset(quick_cfg(tmp_path, tmp_path / "out", *folder), split) for split in ("val", "test")}
    with pytest.raises(VideoDecodeError, match=r"1 video cannot be opened \(val 1 of 2\).*delete them from their"):
        check_readable(splits, skip_broken=False)


def test_with_skip_broken_videos_the_list_is_a_warning(broken_val: Path, vov3d_log: pytest.LogCaptureFixture) -> None:
    cfg = quick_cfg(broken_val, broken_val / "out")
    check_readable({split: build_dataset(cfg, split) for split in ("val", "test")}, skip_broken=True)
    (warning,) = [r.getMessage() for r in vov3d_log.records if r.levelname == "WARNING"]
    assert "1 video cannot be opened (val 1 of 4)" in warning and str(broken_val / "val" / "002.mp4") in warning


def check_worker(rank: int, port: int, data: Path, results: Path) -> None:
    from vov3d.utils import distributed as du

    du.init_process_group("gloo", f"tcp://127.0.0.1:{port}", rank, 2, timeout_minutes=5)
    try:
        cfg = quick_cfg(data, data / "out")
        try:
            check_readable({split: build_dataset(cfg, split) for split in ("val", "test")}, skip_broken=False)
            outcome = "went on"
        except VideoDecodeError as e:
            outcome = str(e)
        (results / f"{rank}.txt").write_text(outcome)
    finally:
        du.destroy_process_group()


def test_two_processes_share_the_opening_and_decide_alike(broken_val: Path, tmp_path: Path) -> None:
    """Each process opens half of the files: rank 1, which does not open val/002.mp4, stops on it too."""
    torch.multiprocessing.spawn(check_worker, args=(free_port(), broken_val, tmp_path), nprocs=2)
    outcomes = [(tmp_path / f"{rank}.txt").read_text() for rank in range(2)]
    assert outcomes[0] == outcomes[1] and "1 video cannot be opened (val 1 of 4)" in outcomes[0]


def test_a_damaged_val_video_stops_after_the_checkpoint_with_one_clean_line(broken_val: Path, tmp_path: Path) -> None:
    """A video that opens, and fails in the frames of the val clip, is found only by reading them."""
    data = copy_without(broken_val, tmp_path, "val/002.mp4")
    whole = Path(make_video(tmp_path / "whole.webm", 60, gop_size=10)).read_bytes()
    (data / "val" / "002.mp4").write_bytes(whole[: len(whole) // 3])  # opens; the middle clip is cut off
    code, output = run_to_the_end(data, tmp_path / "out")
    assert code == 1, output[-3000:]
    run = RunFolder(str(tmp_path / "out"))
    assert os.path.isfile(run.checkpoint_path(1))
    lines = [line for line in output.splitlines() if "val/002.mp4" in line]
    assert len(lines) == 1, output[-3000:]
    assert "VideoDecodeError" in lines[0] and "TEST.SKIP_BROKEN_VIDEOS" in lines[0] and "scan_dataset.py" in lines[0]
    assert "Traceback" not in output and "DataLoader worker" not in output
    assert lines[0] in Path(run.log_path()).read_text()  # the log file keeps it too


class Uniform(nn.Module):
    """Equal probabilities for 4 classes: every clip is right at top-5 and wrong or right at top-1."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0], 4), 0.25)


def test_validation_leaves_skipped_videos_out(broken_val: Path, tmp_path: Path) -> None:
    cfg = quick_cfg(broken_val, tmp_path, "TEST.SKIP_BROKEN_VIDEOS", True, "TRAIN.BATCH_SIZE", 2)
    execution, log = Execution.from_cfg(cfg, CPU), StatsLog(cfg.OUTPUT_DIR)
    stats = validate(Uniform(), build_loader(cfg, "val"), 0, cfg.SOLVER.MAX_EPOCH, execution, log)
    assert (stats["num_clips"], stats["skipped_clips"]) == (3, 1)
