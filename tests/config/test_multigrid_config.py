"""MULTIGRID.*: PySlowFast's keys load, the long cycle refuses SyncBatchNorm when training starts,
and wrong values name the key."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.config.test_config import ALL_CONFIGS
from tests.conftest import CONFIGS
from vov3d.config import ConfigError, get_cfg, load_config
from vov3d.engine.assembly import build_run
from vov3d.engine.multigrid import MultigridSettings, rescaled_solver

# PySlowFast's defaults.py section as a file would spell it, derived keys included.
PYSLOWFAST_SECTION = """\
MULTIGRID:
  EPOCH_FACTOR: 1.5
  SHORT_CYCLE: {short}
  SHORT_CYCLE_FACTORS: [0.5, 0.7071067811865476]
  LONG_CYCLE: {long}
  LONG_CYCLE_FACTORS: [[0.25, 0.7071067811865476], [0.5, 0.7071067811865476], [0.5, 1], [1, 1]]
  BN_BASE_SIZE: 8
  EVAL_FREQ: 3
  LONG_CYCLE_SAMPLING_RATE: 0
  DEFAULT_B: 0
  DEFAULT_T: 0
  DEFAULT_S: 0
"""


def test_defaults_are_pyslowfasts_and_off() -> None:
    m = load_config([]).MULTIGRID
    assert (m.LONG_CYCLE, m.SHORT_CYCLE) == (False, False)
    assert m.LONG_CYCLE_FACTORS == [[0.25, 0.7071067811865476], [0.5, 0.7071067811865476], [0.5, 1], [1, 1]]
    assert m.SHORT_CYCLE_FACTORS == [0.5, 0.7071067811865476]
    assert (m.EPOCH_FACTOR, m.BN_BASE_SIZE, m.EVAL_FREQ) == (1.5, 8, 3)


@pytest.mark.parametrize("path", ALL_CONFIGS, ids=lambda p: str(Path(p).relative_to(CONFIGS)))
def test_no_config_file_changes_multigrid(path: str) -> None:
    assert load_config([path]).MULTIGRID == get_cfg().MULTIGRID


def test_a_pyslowfast_section_with_multigrid_off_loads(tmp_path: Path, vov3d_log: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "pyslowfast.yaml"
    path.write_text(PYSLOWFAST_SECTION.format(long=False, short=False) + "SOLVER:\n  MAX_EPOCH: 12\n")
    with vov3d_log.at_level(logging.WARNING):
        cfg = load_config([str(path)])
    assert cfg.SOLVER.MAX_EPOCH == 12 and cfg.MULTIGRID.LONG_CYCLE is False
    assert cfg.MULTIGRID.LONG_CYCLE_FACTORS[0] == [0.25, 0.7071067811865476]
    ignored = sorted(
        r.getMessage().split("ignoring ")[1].split(":")[0] for r in vov3d_log.records if "ignoring" in r.getMessage()
    )
    assert ignored == [
        "MULTIGRID.DEFAULT_B",
        "MULTIGRID.DEFAULT_S",
        "MULTIGRID.DEFAULT_T",
        "MULTIGRID.LONG_CYCLE_SAMPLING_RATE",
    ]


@pytest.mark.parametrize("long, short", [(True, False), (True, True), (False, True)])
def test_a_pyslowfast_multigrid_section_loads_with_its_schedule(tmp_path: Path, long: bool, short: bool) -> None:
    """PySlowFast's multigrid recipe (both on) among them, with its SlowFast 8x8 solver steps."""
    path = tmp_path / "multigrid.yaml"
    solver = "SOLVER:\n  STEPS: [0, 94, 154, 196]\n  LRS: [1, 0.1, 0.01, 0.001]\n  MAX_EPOCH: 239\n"
    path.write_text(PYSLOWFAST_SECTION.format(long=long, short=short) + solver)
    settings = MultigridSettings.from_cfg(load_config([str(path)]))
    assert (settings.long_cycle, settings.short_cycle) == (long, short)
    assert rescaled_solver(settings).max_epoch == 358  # 239 x 1.5 = 358.5: rounded half to even, or cut


def test_the_long_cycle_refuses_sync_batchnorm_when_training_starts() -> None:
    cfg = load_config([], ["MULTIGRID.LONG_CYCLE", "True", "SOLVER.STEPS", "[0, 10]", "BN.NORM_TYPE", "sync_batchnorm"])
    with pytest.raises(ConfigError, match=r"^BN.NORM_TYPE = 'sync_batchnorm'.*cannot follow MULTIGRID.LONG_CYCLE"):
        build_run(cfg)


@pytest.mark.parametrize(
    "key, value, words",
    [
        ("MULTIGRID.LONG_CYCLE_FACTORS", "[]", "non-empty list"),
        ("MULTIGRID.LONG_CYCLE_FACTORS", "[[0.5]]", "[frames, crop]"),
        ("MULTIGRID.LONG_CYCLE_FACTORS", "[[0.25, 0.7], [0, 1]]", "(0, 1]"),
        ("MULTIGRID.LONG_CYCLE_FACTORS", "[[0.5, 1.5]]", "(0, 1]"),
        ("MULTIGRID.LONG_CYCLE_FACTORS", "[[0.5, True]]", "(0, 1]"),
        ("MULTIGRID.SHORT_CYCLE_FACTORS", "[0.5]", "two crop factors"),
        ("MULTIGRID.SHORT_CYCLE_FACTORS", "[0.5, -0.7]", "two crop factors"),
        ("MULTIGRID.EPOCH_FACTOR", "0", "more than 0"),
        ("MULTIGRID.EPOCH_FACTOR", "-1.5", "more than 0"),
        ("MULTIGRID.BN_BASE_SIZE", "0", "1 clip or more"),
        ("MULTIGRID.EVAL_FREQ", "0", "1 validation per long-cycle shape or more"),
    ],
)
def test_wrong_values_name_the_key(key: str, value: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config([], [key, value])
    message = str(err.value)
    assert message.startswith(f"{key} = ") and "(set in the command line)" in message and words in message
