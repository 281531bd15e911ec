"""``benchmark train`` on a tiny config: the engine's loop runs and the figures are sane."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import CONFIGS
from vov3d.benchmark import data_inputs
from vov3d.cli.args import parse_with_overrides
from vov3d.cli.benchmark import build_parser


def test_tiny_config_reports_a_data_share(tmp_path: Path) -> None:
    data_inputs.make_inputs(str(tmp_path), videos=2, seconds=1.0, size=(48, 64))
    kinetics = str(tmp_path / "kinetics")
    args = parse_with_overrides(
        build_parser(),
        [
            "--threads",
            "1",
            "train",
            "--cfg",
            str(CONFIGS / "quick/vov3d_tiny.yaml"),
            "--iters",
            "2",
            "--warmup",
            "1",
            "DATA.PATH_TO_DATA_DIR",
            kinetics,
            "DATA.PATH_PREFIX",
            kinetics,
            "TRAIN.BATCH_SIZE",
            "2",
        ],
    )
    assert args.opts[-2:] == ["TRAIN.BATCH_SIZE", "2"]
    (row,) = args.func(args)["rows"]
    assert row["iters_per_s"] > 0 and row["clips_per_s"] == pytest.approx(2 * row["iters_per_s"])
    assert row["data_ms"] > 0 and row["net_ms"] > 0
    assert 0 < row["data_share"] < 1
