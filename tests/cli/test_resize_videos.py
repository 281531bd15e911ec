"""resize_videos: every frame and its time kept, encoded for random access, small videos kept at
their size, wrong folders and settings refused before any work."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from av.video.frame import PictureType

from tests.datasets.helpers import frame_numbers, make_video
from vov3d.cli.resize_videos import main as resize_main
from vov3d.datasets.decoder import PyAVVideo
from vov3d.datasets.encode import write_video
from vov3d.datasets.motion_demo import DemoSpec, render_video


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


def test_resize_keeps_small_videos_at_their_size(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Enlarging adds no detail; the tool says which videos kept their size, --upscale enlarges."""
    make_video(tmp_path / "src" / "small.mp4", 6, size=(48, 64))
    make_video(tmp_path / "src" / "large.mp4", 6, size=(96, 128))
    assert resize_main([str(tmp_path / "src"), str(tmp_path / "dst"), "--short-side", "64", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "1 videos are smaller than --short-side 64 and keep their size (--upscale enlarges them)" in out
    assert str(tmp_path / "src" / "small.mp4") in out
    sizes = {name: read_all(tmp_path / "dst" / name)[0].size for name in ("small.mp4", "large.mp4")}
    assert sizes == {"small.mp4": (48, 64), "large.mp4": (64, 86)}
    argv = [str(tmp_path / "src"), str(tmp_path / "up"), "--short-side", "64", "--upscale", "--jobs", "1"]
    assert resize_main(argv) == 0 and "smaller" not in capsys.readouterr().out
    video, numbers = read_all(tmp_path / "up" / "small.mp4")
    assert (video.size, numbers) == ((64, 86), list(range(6)))


def test_resize_refuses_a_wrong_source_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A mistyped or empty source is an error (exit 2), not "resized 0 of 0"."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no video here")
    for src, message in (
        (tmp_path / "raww", f"src: {tmp_path / 'raww'} is not a folder"),
        (tmp_path / "empty", f"src: {tmp_path / 'empty'} holds no video files (.mp4, "),
    ):
        with pytest.raises(SystemExit) as exit_info:
            resize_main([str(src), str(tmp_path / "dst")])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "dst").exists()


def test_resize_shows_progress(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for name in ("a.mp4", "b.MOV", ".hidden.mp4"):  # suffixes in any case; hidden files are no videos
        make_video(tmp_path / "src" / name, 3)
    assert resize_main([str(tmp_path / "src"), str(tmp_path / "dst"), "--short-side", "48", "--jobs", "1"]) == 0
    captured = capsys.readouterr()
    assert "2/2" in captured.err and "video" in captured.err  # tqdm's bar
    assert "resized 2 of 2 videos" in captured.out
    assert sorted(p.name for p in (tmp_path / "dst").iterdir()) == ["a.mp4", "b.mp4"]
    assert resize_main([str(tmp_path / "src"), str(tmp_path / "dst"), "--jobs", "1"]) == 0
    assert f"resized 0 of 0 videos into {tmp_path / 'dst'}, 2 already there" in capsys.readouterr().out
