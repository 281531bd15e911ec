"""Training clips that stand in for unreadable videos are summed over loader workers and
processes: the epoch's line counts them, a warning names the files, and every process stops
together past DATA.MAX_BAD_VIDEO_FRACTION."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from tests.datasets.helpers import make_video
from tests.engine.conftest import free_port
from tests.helpers import small_cfg, write_kinetics_csvs
from vov3d.config import CfgNode
from vov3d.datasets import TooManyBrokenVideosError, build_loader
from vov3d.datasets.clip_dataset import check_substituted
from vov3d.engine.runtime import Execution
from vov3d.engine.solver import LRSchedule, build_loss, build_optimizer
from vov3d.engine.train import train_one_epoch
from vov3d.utils.logging import StatsLog

CPU = torch.device("cpu")

BROKEN = ("missing.mp4", "text.mp4")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 videos, 2 of them unreadable: one missing, one not a video."""
    root = tmp_path_factory.mktemp("substituted")
    for i in range(6):
        make_video(root / f"{i}.mp4", 12)
    (root / "text.mp4").write_text("not a video\n")
    write_kinetics_csvs(root, [(f"{i}.mp4", i) for i in range(6)] + [(name, 6) for name in BROKEN])
    return root


def epoch_cfg(root: Path, output: Path, max_fraction: float, workers: int = 2) -> CfgNode:
    return small_cfg(root, root, "kinetics", "OUTPUT_DIR", str(output), "LOG_PERIOD", 1, "MODEL.NUM_CLASSES", 7,
                     "TRAIN.BATCH_SIZE", 4, "DATA_LOADER.NUM_WORKERS", workers,
                     "DATA.MAX_BAD_VIDEO_FRACTION", max_fraction, freeze=True)  # fmt: skip


def one_epoch(cfg: CfgNode) -> dict:
    """One epoch of a linear model over the train split (every video once)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 32 * 32, 7))
    loader = build_loader(cfg, "train")
    optimizer = build_optimizer(model, cfg)
    schedule, log = LRSchedule.from_cfg(cfg), StatsLog(cfg.OUTPUT_DIR, cfg.LOG_PERIOD)
    return train_one_epoch(
        model, loader, optimizer, schedule, build_loss(cfg), 0, cfg.SOLVER.MAX_EPOCH, Execution.from_cfg(cfg, CPU), log,
        max_bad_video_fraction=cfg.DATA.MAX_BAD_VIDEO_FRACTION,
    )  # fmt: skip


def broken_paths(root: Path) -> list[str]:
    return [str(root / name) for name in BROKEN]


def test_two_workers_sum_their_substitutions(root: Path, tmp_path: Path, vov3d_log: pytest.LogCaptureFixture) -> None:
    stats = one_epoch(epoch_cfg(root, tmp_path, 0.5))
    assert stats["substituted_clips"] == 2
    summary = [r.getMessage() for r in vov3d_log.records if "stood in for unreadable videos" in r.getMessage()]
    assert len(summary) == 1 and "2 of 8 training clips" in summary[0] and "2 files" in summary[0]
    assert all(path in summary[0] for path in broken_paths(root)) and "tools/scan_dataset.py" in summary[0]


def test_past_the_fraction_the_epoch_stops_naming_the_files(root: Path, tmp_path: Path) -> None:
    with pytest.raises(
        TooManyBrokenVideosError, match=r"2 of 8 training clips .*DATA.MAX_BAD_VIDEO_FRACTION = 0.1"
    ) as e:
        one_epoch(epoch_cfg(root, tmp_path, 0.1))
    assert all(path in str(e.value) for path in broken_paths(root))
    assert str(e.value).endswith("then fix them, or remove their lines from the annotation files")


def rank_worker(rank: int, port: int, root: Path, output: Path) -> None:
    from vov3d.utils import distributed as du

    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("vov3d").addHandler(handler)
    torch.set_num_threads(1)
    du.init_process_group("gloo", f"tcp://127.0.0.1:{port}", rank, 2, timeout_minutes=5)
    try:
        result = {"substituted": one_epoch(epoch_cfg(root, output, 0.5, workers=0))["substituted_clips"]}
        try:
            one_epoch(epoch_cfg(root, output, 0.1, workers=0))
        except TooManyBrokenVideosError as error:
            result["error"] = str(error)
        result["log"] = records
        torch.save(result, output / f"{rank}.pt")
    finally:
        du.destroy_process_group()


def test_two_processes_sum_their_substitutions(root: Path, tmp_path: Path) -> None:
    """Each process (no workers: the test above has them) reads 4 of the 8 videos, so the unreadable ones may both
    fall to one process or one to each: the totals and the names are those of the whole split."""
    torch.multiprocessing.spawn(rank_worker, args=(free_port(), root, tmp_path), nprocs=2)
    results = [torch.load(tmp_path / f"{rank}.pt", weights_only=True) for rank in range(2)]
    for rank, result in enumerate(results):
        assert result["substituted"] == 2, rank
        assert "2 of 8 training clips" in result["error"], rank  # every process stops, none hangs
        assert all(path in result["error"] for path in broken_paths(root)), rank
    summary = [m for m in results[0]["log"] if "stood in for unreadable videos" in m]
    assert len(summary) == 1 and all(path in summary[0] for path in broken_paths(root))
    assert not [m for m in results[1]["log"] if "stood in for unreadable videos" in m]  # only rank 0 logs it


def test_the_fraction_is_judged_after_enough_clips_or_at_the_end_of_the_epoch() -> None:
    assert not check_substituted(6, 99, 0.05, epoch_done=False)  # too few clips to judge yet
    assert check_substituted(6, 100, 0.05, epoch_done=False)
    assert not check_substituted(5, 100, 0.05, epoch_done=False)  # exactly the share is allowed
    assert check_substituted(1, 10, 0.05, epoch_done=True)
