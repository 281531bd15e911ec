"""A one-epoch smoke run of a paper config is accepted with one warning line, as the original
accepts it (the schedule stays in warm-up); a warm-up that cannot work is still an error."""

from __future__ import annotations

import logging

import pytest

from tests.conftest import CONFIGS
from vov3d.config import ConfigError, load_config
from vov3d.engine.solver import LRSchedule

PAPER = str(CONFIGS / "Kinetics" / "vov3d" / "vov3d_M.yaml")


def _warnings(log: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in log.records if r.levelno == logging.WARNING and "WARMUP" in r.getMessage()]


def test_one_epoch_of_a_paper_config_warns_once_and_stays_in_warm_up(vov3d_log: pytest.LogCaptureFixture) -> None:
    cfg = load_config([PAPER], ["SOLVER.MAX_EPOCH", "1"])
    (line,) = _warnings(vov3d_log)
    assert "\n" not in line
    assert "SOLVER.WARMUP_EPOCHS = 35.0 (set in " in line and "Base-VoV3D-Kinetics.yaml" in line
    assert "SOLVER.MAX_EPOCH = 1 (set in the command line)" in line
    schedule = LRSchedule.from_cfg(cfg)
    rates = [schedule(epoch / 10) for epoch in range(11)]
    steps = [b - a for a, b in zip(rates, rates[1:])]
    assert rates[0] == cfg.SOLVER.WARMUP_START_LR
    assert steps[0] != 0 and steps == pytest.approx([steps[0]] * 10), "linear all run long: still warming up"


def test_a_shortened_quick_start_says_its_rate_never_reaches_base_lr(vov3d_log: pytest.LogCaptureFixture) -> None:
    load_config([str(CONFIGS / "quickstart" / "vov3d_motion.yaml")], ["SOLVER.MAX_EPOCH", "2"])
    (line,) = _warnings(vov3d_log)
    assert "never reaches SOLVER.BASE_LR" in line


def test_the_paper_schedule_itself_does_not_warn(vov3d_log: pytest.LogCaptureFixture) -> None:
    load_config([PAPER])
    assert not _warnings(vov3d_log)


def test_a_negative_warm_up_is_still_an_error() -> None:
    cfg = load_config([PAPER], ["SOLVER.WARMUP_EPOCHS", "-1.0"])
    with pytest.raises(
        ConfigError, match=r"SOLVER.WARMUP_EPOCHS = -1.0 \(set in the command line\): must be 0 or more"
    ):
        LRSchedule.from_cfg(cfg)
