"""The preparation tools: resize videos, extract SSv2 frames with frame lists, scan a dataset."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from av.video.frame import PictureType

from tests.conftest import REPO
from tests.datasets.helpers import frame_numbers, make_ssv2, make_video, small_cfg, write_kinetics_csvs
from vov3d.datasets import build_dataset
from vov3d.datasets.decoder import PyAVVideo
from vov3d.datasets.encode import write_video
from vov3d.datasets.frames import JpegFrames
from vov3d.datasets.motion_demo import DemoSpec, render_video
from vov3d.datasets.prepare import extract_main, resize_main, scan_main


def read_all(path: Path) -> tuple[PyAVVideo, list[int]]:
    with PyAVVideo(str(path)) as video:
        return video, frame_numbers(video.get_frames(range(video.num_frames)))


def test_resize_keeps_every_frame_and_its_time(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_video(src / "a.mp4", 30, fps=25, size=(96, 128))
    make_video(src / "sub" / "b.webm", 20, fps=30, size=(128, 96))
    (src / "broken.mp4").write_text("not a video")
    assert resize_main([str(src), str(dst), "--short-side", "64", "--jobs", "1"]) == 1
    assert "FAILED" in capsys.readouterr().out and not (dst / "broken.mp4").exists()
    a, numbers = read_all(dst / "a.mp4")
    assert (a.size, a.num_frames, a.fps, numbers) == ((64, 86), 30, 25, list(range(30)))
    b, numbers = read_all(dst / "sub" / "b.mp4")
    assert (b.size, b.num_frames, numbers) == ((86, 64), 20, list(range(20)))
    before = (dst / "a.mp4").stat().st_mtime_ns
    resize_main([str(src), str(dst), "--short-side", "64", "--jobs", "2"])  # existing outputs are kept
    assert (dst / "a.mp4").stat().st_mtime_ns == before


def test_resize_puts_a_keyframe_every_interval(tmp_path: Path) -> None:
    """Short keyframe intervals let the loader seek near a clip (x264 alone: every 250 frames)."""
    make_video(tmp_path / "src" / "a.mp4", 75, fps=25, size=(48, 64), gop_size=250)
    for interval, gap in (("1", 25), ("0.4", 10)):
        dst = tmp_path / f"dst{interval}"
        argv = [str(tmp_path / "src"), str(dst), "--short-side", "48", "--keyframe-interval", interval]
        assert resize_main(argv) == 0
        with av.open(str(dst / "a.mp4")) as container:
            found = [i for i, frame in enumerate(container.decode(video=0)) if frame.key_frame]
        # x264 may add keyframes at scene cuts (our numbered frames change a lot), never fewer
        assert found[0] == 0 and all(b - a <= gap for a, b in zip(found, found[1:] + [75])), found


def frame_types(path: Path, skip_unreferenced: bool = False) -> str:
    """The picture types of the decoded frames ("IPBB..."); with ``skip_unreferenced`` the decoder
    drops the frames that no other frame refers to, as the loader does away from a clip."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_count = 1
        if skip_unreferenced:
            stream.codec_context.skip_frame = "NONREF"
        return "".join(PictureType(frame.pict_type).name for frame in container.decode(stream))


def test_resize_encodes_for_random_access(tmp_path: Path) -> None:
    """x264 chooses the frame types (a source's are not copied), a keyframe per second, and no
    frame refers to a B-frame: the loader need not decode the B-frames a clip does not show."""
    spec = DemoSpec(height=48, width=64, fps=25, min_frames=100, max_frames=100)
    frames = render_video(0, np.random.default_rng(0), spec)  # moving shapes: x264 picks P and B frames
    (tmp_path / "src").mkdir()
    write_video(str(tmp_path / "src" / "a.mp4"), frames, 25, gop_size=1)  # every frame a keyframe
    assert frame_types(tmp_path / "src" / "a.mp4") == "I" * 100
    assert resize_main([str(tmp_path / "src"), str(tmp_path / "dst"), "--short-side", "48"]) == 0
    types = frame_types(tmp_path / "dst" / "a.mp4")
    assert types.count("I") == 4 and types.count("B") > 50, types
    assert frame_types(tmp_path / "dst" / "a.mp4", skip_unreferenced=True) == types.replace("B", "")
    argv = [str(tmp_path / "src"), str(tmp_path / "x264"), "--keyframe-interval", "0", "--x264-params", ""]
    assert resize_main(argv) == 0
    types = frame_types(tmp_path / "x264" / "a.mp4")  # x264's defaults: keyframes at scene cuts only,
    referenced = frame_types(tmp_path / "x264" / "a.mp4", skip_unreferenced=True)  # B-frame pyramids
    assert types.count("I") < 4 and referenced.count("B") > 0, (types, referenced)


def test_resize_rejects_bad_settings_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Unknown x264 options would only make FFmpeg log a warning and encode without them."""
    make_video(tmp_path / "src" / "a.mp4", 5)
    for option, value, message in (
        (
            "--x264-params",
            "bframes=3:b-pyramd=none",
            "x264 rejects 'bframes=3:b-pyramd=none': Error parsing option 'b-pyramd = none'",
        ),
        ("--keyframe-interval", "-1", "must be 0 (x264's default) or more seconds, got -1.0"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            resize_main([str(tmp_path / "src"), str(tmp_path / "dst"), option, value])
        assert exit_info.value.code == 2 and not (tmp_path / "dst").exists()
        assert f"{option}: {message}" in capsys.readouterr().err


def test_resize_real_avi(real_videos: Path, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "clip.avi").symlink_to(real_videos / "ucf101_style_xvid_mp3.avi")
    assert resize_main([str(tmp_path / "src"), str(tmp_path / "dst"), "--short-side", "120", "--jobs", "1"]) == 0
    with PyAVVideo(str(tmp_path / "dst" / "clip.mp4")) as video:
        assert (video.size, video.num_frames, video.fps) == ((120, 160), 164, 25)


def test_extract_ssv2_frames_at_30_fps(tmp_path: Path) -> None:
    counts = {"11": 24, "12": 18}  # 12 fps webm, as SSv2 ships
    make_ssv2(tmp_path, counts, frames=False, webm=True)
    frames = tmp_path / "frames"
    args = ["--videos", str(tmp_path / "videos"), "--annotations", str(tmp_path), "--frames", str(frames)]
    assert extract_main(args + ["--jobs", "1"]) == 0
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
    assert ds.frame_paths is not None and ds[0][0].shape == (3, 4, 32, 32)


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


def test_every_tool_data_md_names_runs() -> None:
    scripts = sorted(set(re.findall(r"python (tools/\w+\.py)", (REPO / "DATA.md").read_text())))
    assert {"tools/resize_videos.py", "tools/extract_frames.py", "tools/scan_dataset.py"} <= set(scripts)
    for script in scripts:
        result = subprocess.run(
            [sys.executable, script, "--help"], cwd=REPO, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0 and "usage" in result.stdout, (script, result.stderr)
