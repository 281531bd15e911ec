"""MULTIGRID.*: PySlowFast's keys load, asking for multigrid training stops when training starts
(the training loop does not use it yet, issue 27), and wrong values name the key."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.config.test_config import ALL_CONFIGS
from tests.conftest import CONFIGS
from vov3d.config import ConfigError, get_cfg, load_config
from vov3d.engine.assembly import build_run

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


@pytest.mark.parametrize(
    "key, long, short",
    [
        ("MULTIGRID.LONG_CYCLE", True, False),
        ("MULTIGRID.LONG_CYCLE", True, True),
        ("MULTIGRID.SHORT_CYCLE", False, True),
    ],
)
def test_asking_for_multigrid_stops_training_when_it_starts(tmp_path: Path, key: str, long: bool, short: bool) -> None:
    """PySlowFast's multigrid recipe (both on) among them: no silent training at the fixed shape.
    The file loads (testing, predict and export read it), and ``build_run`` stops first thing."""
    path = tmp_path / "multigrid.yaml"
    path.write_text(PYSLOWFAST_SECTION.format(long=long, short=short))
    cfg = load_config([str(path)])
    with pytest.raises(ConfigError) as err:
        build_run(cfg)
    message = str(err.value)
    assert message.startswith(f"{key} = True (set in {path})")
    assert "not wired into the training loop yet (issue 27)" in message


def test_asking_for_the_short_cycle_on_the_command_line_stops_too() -> None:
    with pytest.raises(ConfigError, match=r"^MULTIGRID.SHORT_CYCLE = True \(set in the command line\).*issue 27"):
        build_run(load_config([], ["MULTIGRID.SHORT_CYCLE", "True"]))


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
