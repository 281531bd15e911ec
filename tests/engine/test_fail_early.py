"""A run fails early, once, with the way forward: every split it reads is checked before training,
an unreadable val video stops it only after the epoch's checkpoint (one line naming the file,
TEST.SKIP_BROKEN_VIDEOS and tools/scan_dataset.py, even from loader workers), and with
TEST.SKIP_BROKEN_VIDEOS validation leaves the video out."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from tests.conftest import REPO
from tests.engine.conftest import COLOURS, SUBPROCESS_ENV, quick_cfg, run_net_command, write_dataset
from vov3d.config import ConfigError
from vov3d.datasets import build_loader
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


def test_a_broken_val_video_stops_after_the_checkpoint_with_one_clean_line(broken_val: Path, tmp_path: Path) -> None:
    command = run_net_command(broken_val, tmp_path, *ONE_EPOCH, "DATA_LOADER.NUM_WORKERS", 2, "TRAIN.EVAL_PERIOD", 1)
    result = subprocess.run(command, cwd=REPO, env=SUBPROCESS_ENV, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    run = RunFolder(str(tmp_path))
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
