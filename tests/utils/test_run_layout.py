"""The run folder's layout: checkpoint names and listing, and json_stats.log read back as the
logger writes it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch.nn as nn

from vov3d.checkpoint import save_checkpoint
from vov3d.utils.logging import log_json_stats
from vov3d.utils.run_layout import RunFolder


def test_checkpoint_names_and_listing(tmp_path: Path) -> None:
    run = RunFolder(str(tmp_path))
    assert run.checkpoint_path(12) == str(tmp_path / "checkpoints" / "checkpoint_epoch_00012.pyth")
    assert run.checkpoints() == []  # no folder yet
    for epochs in (10, 2, 100000):
        save_checkpoint(run.checkpoint_path(epochs), nn.Linear(2, 2), epoch=epochs - 1)
    save_checkpoint(run.best_path, nn.Linear(2, 2))
    Path(run.checkpoints_dir, ".checkpoint_epoch_00011.pyth.abc.tmp").write_bytes(b"half")
    names = [Path(p).name for p in run.checkpoints()]
    assert names == ["checkpoint_epoch_00002.pyth", "checkpoint_epoch_00010.pyth", "checkpoint_epoch_100000.pyth"]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir() if not p.name.startswith(".")) == [
        "best.pyth",
        *names,
    ]


def test_the_files_beside_the_checkpoints(tmp_path: Path) -> None:
    """The names earlier runs, the docs and PySlowFast's tools know."""
    run = RunFolder(str(tmp_path))
    assert [Path(path).relative_to(tmp_path).as_posix() for path in (
        run.class_names_path, run.config_path, run.log_path(), run.log_path(rank=3), run.stats_path,
        run.per_class_path, run.confusion_matrix_path("png"), run.tensorboard_dir("ssv2"), run.best_path,
    )] == [
        "classes.txt", "config.yaml", "stdout.log", "stdout_rank3.log", "json_stats.log",
        "per_class.csv", "confusion_matrix.png", "runs-ssv2", "checkpoints/best.pyth",
    ]  # fmt: skip


def test_stats_are_read_back_as_logged(tmp_path: Path) -> None:
    run = RunFolder(str(tmp_path))
    assert run.read_stats() == []  # nothing logged yet
    logged = [
        {"_type": "train_epoch", "epoch": "1/2", "loss": 0.123456789},
        {"_type": "val_epoch", "epoch": "1/2", "top1_err": 50.0},
        {"_type": "train_epoch", "epoch": "2/2", "loss": 0.5},
    ]
    for stats in logged:
        log_json_stats(stats, run.root)
    assert [s["_type"] for s in run.read_stats()] == ["train_epoch", "val_epoch", "train_epoch"]
    first, second = run.read_stats("train_epoch")
    assert first == {"_type": "train_epoch", "epoch": "1/2", "loss": 0.123457}  # rounded by the logger
    assert second == {"_type": "train_epoch", "epoch": "2/2", "loss": 0.5}
    assert run.read_stats("test_final") == []


@pytest.mark.parametrize("bad", ["traceback", 'json_stats: {"_type": "val_ep'])
def test_a_line_that_is_not_a_statistic_names_the_file_and_line(bad: str, tmp_path: Path) -> None:
    run = RunFolder(str(tmp_path))
    log_json_stats({"_type": "train_epoch", "loss": 1.0}, run.root)
    with open(run.stats_path, "a") as f:  # a blank line, a log line (its prefix is skipped), then ``bad``
        f.write(f'\n[12/06 10:00:00][INFO] vov3d.stats: json_stats: {{"_type": "val_epoch"}}\n{bad}\n')
    with pytest.raises(
        ValueError, match=re.escape(f"{run.stats_path}:4: not a statistic (json_stats: {{...}}): {bad!r}")
    ):
        run.read_stats()
    with open(run.stats_path, "w") as f:
        f.write('[12/06 10:00:00][INFO] vov3d.stats: json_stats: {"_type": "val_epoch"}\n')
    assert run.read_stats() == [{"_type": "val_epoch"}]
