"""scan_dataset: every unreadable video of a config's splits, listed once with its reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.datasets.helpers import make_video
from tests.helpers import write_kinetics_csvs
from vov3d.cli.scan_dataset import main as scan_main


def test_scan_lists_unreadable_videos(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    make_video(tmp_path / "good.mp4", 20)
    (tmp_path / "zero.mp4").write_bytes(b"")
    data = Path(make_video(tmp_path / "whole.webm", 60, gop_size=10)).read_bytes()
    (tmp_path / "cut.webm").write_bytes(data[: len(data) // 2])
    write_kinetics_csvs(tmp_path, [("good.mp4", 0), ("zero.mp4", 1), ("cut.webm", 2), ("gone.mp4", 3)])
    cfg = tmp_path / "data.yaml"
    cfg.write_text(f"DATA:\n  PATH_TO_DATA_DIR: {tmp_path}\n  PATH_PREFIX: {tmp_path}\n")
    out = tmp_path / "bad.txt"
    for extra in (["--jobs", "1"], ["--jobs", "2", "--full"]):
        assert scan_main(["--cfg", str(cfg), "--splits", "train", "test", "--output", str(out), *extra]) == 1
        lines = out.read_text().splitlines()
        assert [line.split(":")[0] for line in lines] == [
            str(tmp_path / n) for n in ("cut.webm", "gone.mp4", "zero.mp4")
        ]
        printed = capsys.readouterr().out
        assert "train: 3 of 4 videos unreadable" in printed and "test: 0 of 0" in printed
    assert scan_main(["--cfg", str(cfg), "--opts", "DATA.NUM_FRAMES", "x"]) == 2  # a config error


def test_trailing_overrides_after_the_config_files(tmp_path: Path) -> None:
    """The shared override convention: KEY VALUE right after --cfg, as for run_net."""
    make_video(tmp_path / "good.mp4", 20)
    write_kinetics_csvs(tmp_path, [("good.mp4", 0), ("gone.mp4", 1)])
    cfg = tmp_path / "empty.yaml"
    cfg.write_text("NUM_GPUS: 0\n")
    argv = ["--cfg", str(cfg), "DATA.PATH_TO_DATA_DIR", str(tmp_path), "DATA.PATH_PREFIX", str(tmp_path)]
    assert scan_main([*argv, "--splits", "train", "--jobs", "1"]) == 1  # gone.mp4 found, so the paths applied
