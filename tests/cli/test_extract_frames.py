"""extract_frames: SSv2 frames at 30 fps and their frame lists; a run killed half way finishes on
the next run exactly as a clean run would; wrong folders, missing files and broken videos."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.datasets.helpers import frame_numbers, make_ssv2, make_video
from tests.helpers import small_cfg
from vov3d.cli.extract_frames import main as extract_main
from vov3d.datasets import build_dataset
from vov3d.datasets.decoder import VideoDecodeError
from vov3d.datasets.frames import JpegFrames


def argv(root: Path, frames: Path, *extra: str) -> list[str]:
    return [
        "--videos",
        str(root / "videos"),
        "--annotations",
        str(root),
        "--frames",
        str(frames),
        "--jobs",
        "1",
        *extra,
    ]


def files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too) by relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_extract_ssv2_frames_at_30_fps(tmp_path: Path) -> None:
    counts = {"11": 24, "12": 18}  # 12 fps webm, as SSv2 ships
    make_ssv2(tmp_path, counts, frames=False, webm=True)
    frames = tmp_path / "frames"
    assert extract_main(argv(tmp_path, frames)) == 0
    for video_id, count in counts.items():
        files = sorted((frames / video_id).glob("*.jpg"))
        assert len(files) == count * 30 // 12 and files[0].name == f"{video_id}_000001.jpg"
        with JpegFrames([str(f) for f in files], str(frames / video_id)) as images:
            shown = [min(int(k * 12 / 30 + 0.5), count - 1) for k in range(len(files))]  # nearest at k / 30 s
            assert frame_numbers(images.get_frames(range(len(files)))) == shown
    rows = (tmp_path / "val.csv").read_text().splitlines()
    assert rows[0] == "original_vido_id video_id frame_id path labels"
    assert rows[1] == '11 0 0 11/11_000001.jpg ""' and len(rows) == 1 + 60 + 45
    ds = build_dataset(small_cfg(tmp_path, frames, "ssv2"), "train")  # frame lists found: frames mode
    assert ds.frame_paths is not None and ds[0][0].shape == (4, 32, 32, 3)


def test_extract_killed_half_way_finishes_on_the_next_run(tmp_path: Path) -> None:
    """SIGKILL while a video's frames are being written, then run again: the frames and lists are
    byte for byte those of a clean run (the old tool kept the partial folder as done)."""
    counts = {"21": 60, "22": 60}  # 150 frames each at 30 fps
    make_ssv2(tmp_path, counts, frames=False)
    for video_id, count in counts.items():
        make_video(tmp_path / "videos" / f"{video_id}.webm", count, fps=12, size=(144, 192))
    (tmp_path / "clean").mkdir()
    assert extract_main(argv(tmp_path, tmp_path / "clean_frames", "--lists", str(tmp_path / "clean"))) == 0
    (tmp_path / "killed").mkdir()
    command = argv(tmp_path, tmp_path / "frames", "--lists", str(tmp_path / "killed"))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    process = subprocess.Popen([sys.executable, "tools/extract_frames.py", *command], cwd=REPO, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    partial = tmp_path / "frames" / ".22.part"  # the second video, half written
    deadline = time.monotonic() + 120
    while len(list(partial.glob("*.jpg"))) < 10 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    process.wait()
    written = len(list(partial.glob("*.jpg")))
    assert 10 <= written < 150 and (tmp_path / "frames" / "21").is_dir() and not (tmp_path / "frames" / "22").exists()
    assert not (tmp_path / "killed" / "train.csv").exists()
    assert extract_main(command) == 0
    assert files(tmp_path / "frames") == files(tmp_path / "clean_frames")  # no .part folder is left
    assert files(tmp_path / "killed") == files(tmp_path / "clean")


def test_extract_wrong_folders_keep_the_good_lists(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    make_ssv2(tmp_path, {"11": 6, "12": 6}, frames=False, webm=True)
    assert extract_main(argv(tmp_path, tmp_path / "frames")) == 0
    good = files(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(SystemExit) as exit_info:  # a mistyped --videos
        extract_main(["--videos", str(tmp_path / "vidoes"), *argv(tmp_path, tmp_path / "frames")[2:]])
    assert exit_info.value.code == 2 and f"--videos: {tmp_path / 'vidoes'} is not a folder" in capsys.readouterr().err
    # wrong --videos and --frames: nothing to extract from and nothing extracted
    wrong = ["--videos", str(tmp_path / "elsewhere"), *argv(tmp_path, tmp_path / "new_frames")[2:]]
    with pytest.raises(SystemExit) as exit_info:
        extract_main(wrong)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"none of the 2 train videos is in --videos {tmp_path / 'elsewhere'} (as 11.webm)" in err
    assert "No list was written" in err and not (tmp_path / "new_frames").exists()
    wrong = ["--videos", str(tmp_path / "elsewhere"), *argv(tmp_path, tmp_path / "frames")[2:]]
    assert extract_main(wrong) == 0  # the frames are there: the lists are written again, the same
    assert files(tmp_path) == good


def test_extract_broken_video_stays_in_a_usable_list(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The old tool left a broken video out of the list, and the dataset then refused the list."""
    make_ssv2(tmp_path, {"11": 6, "12": 6, "13": 6}, frames=False, webm=True)
    good_video = (tmp_path / "videos" / "12.webm").read_bytes()
    (tmp_path / "videos" / "12.webm").write_bytes(b"not a video")
    assert extract_main(argv(tmp_path, tmp_path / "frames")) == 1
    out = capsys.readouterr().out
    assert "FAILED 12: " in out and "train: 1 videos have no frames (listed above, e.g. 12)" in out
    assert "TEST.SKIP_BROKEN_VIDEOS" in out and "run this command again" in out
    assert '12 1 0 12/12_000001.jpg ""' in (tmp_path / "train.csv").read_text().splitlines()
    ds = build_dataset(small_cfg(tmp_path, tmp_path / "frames", "ssv2"), "train")
    assert ds.num_videos == 3 and ds[0][0].shape == (4, 32, 32, 3)
    with pytest.raises(VideoDecodeError, match="12_000001.jpg is missing"):
        ds.open_video(1).get_frames([0])
    (tmp_path / "videos" / "12.webm").write_bytes(good_video)  # the fix the message asks for
    assert extract_main(argv(tmp_path, tmp_path / "frames")) == 0
    assert len(list((tmp_path / "frames" / "12").glob("*.jpg"))) == 15
    assert (
        build_dataset(small_cfg(tmp_path, tmp_path / "frames", "ssv2"), "val")
        .frame_paths[1][-1]
        .endswith("12/12_000015.jpg")
    )


def test_extract_checks_lists_and_annotations_first(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    make_ssv2(tmp_path, {"11": 6}, frames=False, webm=True)
    with pytest.raises(SystemExit) as exit_info:
        extract_main(argv(tmp_path, tmp_path / "frames", "--lists", str(tmp_path / "lists")))
    assert exit_info.value.code == 2 and f"--lists: {tmp_path / 'lists'} is not a folder" in capsys.readouterr().err
    (tmp_path / "something-something-v2-validation.json").write_text('[\n{"id": "11", "template": "x"}\n,,]')
    with pytest.raises(SystemExit) as exit_info:
        extract_main(argv(tmp_path, tmp_path / "frames"))
    assert exit_info.value.code == 2
    assert "extract_frames.py: " + str(
        tmp_path
    ) + "/something-something-v2-validation.json:2: template 'x' of video 11 is not in the labels file" in (
        capsys.readouterr().err
    )
    for name in ("something-something-v2-validation.json", "something-something-v2-labels.json"):
        (tmp_path / name).unlink()
    with pytest.raises(SystemExit) as exit_info:
        extract_main(argv(tmp_path, tmp_path / "frames"))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"--annotations {tmp_path}: something-something-v2-labels.json, something-something-v2-validation" in err
    assert "Traceback" not in err and not (tmp_path / "frames").exists()  # nothing was extracted
