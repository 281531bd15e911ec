"""make_ssv1_lists: the SSv1 frame lists from the frame folders and the official CSV files, read
back by the ssv1 dataset; missing folders and wrong arguments."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.datasets.helpers import frame_numbers, make_ssv1
from tests.helpers import small_cfg
from vov3d.cli.make_ssv1_lists import main as make_lists
from vov3d.cli.make_ssv1_lists import video_frames
from vov3d.datasets import build_dataset
from vov3d.datasets.ssv import folder_frames


def argv(root: Path, *extra: str) -> list[str]:
    return ["--frames", str(root / "frames"), "--annotations", str(root), *extra]


def test_lists_match_the_frame_folders(tmp_path: Path) -> None:
    make_ssv1(tmp_path, {"100218": 12, "7": 9, "42": 10})  # writes the frame lists too: the reference
    expected = {name: (tmp_path / name).read_text() for name in ("train.csv", "val.csv")}
    (tmp_path / "lists").mkdir()
    (tmp_path / "frames" / "7" / "notes.txt").write_text("not a frame")
    assert make_lists(argv(tmp_path, "--lists", str(tmp_path / "lists"))) == 0
    assert {name: (tmp_path / "lists" / name).read_text() for name in expected} == expected
    for name in expected:
        (tmp_path / name).unlink()
    assert make_lists(argv(tmp_path)) == 0  # beside the CSV files by default
    cfg = small_cfg(tmp_path, tmp_path / "frames", "ssv1")
    cfg.TEST.NUM_ENSEMBLE_VIEWS, cfg.TEST.NUM_SPATIAL_CROPS = 1, 1
    ds = build_dataset(cfg, "test")
    assert [len(paths) for paths in ds.frame_paths] == [12, 9, 10]
    assert frame_numbers(ds[1][0]) == [1, 3, 5, 7]  # the middle of 4 segments of 9 frames


def test_the_lists_name_the_frames_a_folder_read_by_its_path_gives(tmp_path: Path) -> None:
    """predict reads a frame folder in the order the frame lists name its files (test = predict)."""
    folder = tmp_path / "v"
    folder.mkdir()
    for name in ("00002.jpg", "00001.JPEG", "00003.jpeg", "notes.txt", "00010.jpg"):
        (folder / name).write_bytes(b"")
    listed = video_frames(str(tmp_path), "v")
    assert listed == ["v/00001.JPEG", "v/00002.jpg", "v/00003.jpeg", "v/00010.jpg"]
    assert folder_frames(str(folder)) == [str(tmp_path / name) for name in listed]


def test_missing_folder_stays_listed(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    make_ssv1(tmp_path, {"1": 8, "2": 8})
    for path in (tmp_path / "frames" / "2").iterdir():
        path.unlink()
    assert make_lists(argv(tmp_path)) == 1
    out = capsys.readouterr().out
    assert f"FAILED 2: no JPEG files in {tmp_path / 'frames' / '2'}" in out and "Unpack those folders" in out
    assert (tmp_path / "val.csv").read_text().splitlines()[-1] == '2 1 0 2/00001.jpg ""'
    assert build_dataset(small_cfg(tmp_path, tmp_path / "frames", "ssv1"), "train").num_videos == 2


def test_wrong_arguments_leave_the_lists_alone(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    make_ssv1(tmp_path, {"1": 8})
    good = (tmp_path / "train.csv").read_text()
    (tmp_path / "empty").mkdir()
    assert make_lists(["--frames", str(tmp_path / "empty"), "--annotations", str(tmp_path)]) == 1
    assert "train: none of the 1 videos has frames" in capsys.readouterr().out
    for extra, message in (
        (["--frames", str(tmp_path / "frame")], f"--frames: {tmp_path / 'frame'} is not a folder"),
        (["--lists", str(tmp_path / "lists")], f"--lists: {tmp_path / 'lists'} is not a folder"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            make_lists(argv(tmp_path) + extra)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    (tmp_path / "something-something-v1-train.csv").unlink()
    with pytest.raises(SystemExit) as exit_info:
        make_lists(argv(tmp_path))
    assert exit_info.value.code == 2
    assert "something-something-v1-train.csv not found" in capsys.readouterr().err
    assert (tmp_path / "train.csv").read_text() == good
