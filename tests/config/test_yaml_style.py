"""YAML files written as PySlowFast and the VoV3D release write them load unchanged: string values
go through ``ast.literal_eval`` before their type is checked, as yacs does."""

from __future__ import annotations

from pathlib import Path

import pytest

from vov3d.config import ConfigError, load_config

# The style of the published files: e-notation without a dot (a string in YAML 1.1), lists in
# flow style, a tuple, nested lists of an ignored legacy key, quoted numbers.
PYSLOWFAST_STYLE = """\
TRAIN:
  ENABLE: True
  DATASET: kinetics
  BATCH_SIZE: 64
  CHECKPOINT_FILE_PATH: ''
DATA:
  NUM_FRAMES: 16
  SAMPLING_RATE: 5
  TRAIN_JITTER_SCALES: (256, 320)
  MEAN: [0.45, 0.45, 0.45]
  STD: ["0.225", 0.225, 225e-3]
RESNET:
  SPATIAL_STRIDES: [[2], [2], [2], [2]]
SOLVER:
  BASE_LR: 1e-1
  WEIGHT_DECAY: 5e-5
  WARMUP_START_LR: 1e-2
  COSINE_END_LR: 1e-6
  LR_POLICY: steps_with_relative_lrs
  STEPS: [0, 94, 154]
  LRS: [1, 1e-1, 1e-2]
  MAX_EPOCH: 196
OUTPUT_DIR: 1e5
"""


def test_pyslowfast_style_file_loads_with_the_values_yacs_gives(tmp_path: Path) -> None:
    path = tmp_path / "published.yaml"
    path.write_text(PYSLOWFAST_STYLE)
    cfg = load_config([str(path)])
    assert cfg.SOLVER.WEIGHT_DECAY == 5e-5 and isinstance(cfg.SOLVER.WEIGHT_DECAY, float)
    assert (cfg.SOLVER.BASE_LR, cfg.SOLVER.WARMUP_START_LR, cfg.SOLVER.COSINE_END_LR) == (0.1, 0.01, 1e-6)
    assert cfg.SOLVER.LRS == [1, 0.1, 0.01] and cfg.SOLVER.STEPS == [0, 94, 154]
    assert cfg.DATA.TRAIN_JITTER_SCALES == [256, 320]
    assert cfg.DATA.STD == [0.225, 0.225, 0.225]
    assert cfg.TRAIN.CHECKPOINT_FILE_PATH == ""
    assert cfg.OUTPUT_DIR == "1e5"  # a string key keeps its text


def test_command_line_values_read_the_same_way() -> None:
    cfg = load_config([], ["SOLVER.WEIGHT_DECAY", "5e-5", "DATA.TRAIN_JITTER_SCALES", "(128, 160)", "OUTPUT_DIR", "42"])
    assert (cfg.SOLVER.WEIGHT_DECAY, cfg.DATA.TRAIN_JITTER_SCALES, cfg.OUTPUT_DIR) == (5e-5, [128, 160], "42")


@pytest.mark.parametrize("text", ["SOLVER:\n  WEIGHT_DECAY: five\n", "SOLVER:\n  MAX_EPOCH: 1e2\n"])
def test_a_string_that_is_no_literal_of_the_type_is_still_an_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"{path}: SOLVER\.\w+ expects a"):
        load_config([str(path)])
