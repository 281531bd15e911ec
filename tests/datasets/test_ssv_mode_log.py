"""Something-Something V2 reads JPEG frames (frames mode) or the .webm videos (video mode): the log
says which, once per split, however often a run builds the split (the test split is built before
training, to find a missing file early, and again to test)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.datasets.helpers import make_ssv2
from tests.helpers import small_cfg
from vov3d.datasets import build_dataset


@pytest.mark.parametrize("mode", ["frames", "video"])
def test_each_split_logs_its_mode_once(mode: str, tmp_path: Path, vov3d_log: pytest.LogCaptureFixture) -> None:
    make_ssv2(tmp_path, {"1001": 8, "1002": 8}, frames=mode == "frames", webm=mode == "video")
    cfg = small_cfg(tmp_path, tmp_path / ("frames" if mode == "frames" else "videos"), "ssv2")
    for split in ("train", "val", "test", "test"):  # as a training run with TEST.ENABLE builds them
        build_dataset(cfg, split)
    lines = [r.getMessage() for r in vov3d_log.records if " split: " in r.getMessage()]
    assert [line.split(" split: ")[0] for line in lines] == ["train", "val", "test"], lines
    source = "the JPEG frames of the frame list" if mode == "frames" else f"the .webm videos in {tmp_path / 'videos'}"
    assert all(f"split: {mode} mode" in line and source in line for line in lines), lines
