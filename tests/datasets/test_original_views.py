"""Kinetics clips are the original loader's at every frame rate: the frames whose timestamps lie in
the clip's window and the next one, at positions in that list (tests/datasets/helpers.py:
original_kinetics_clip, the rule written out plainly over a front-to-back decode). On the real
clips of ../shared/data/real-videos, on re-encodes of the 28 fps clip at 24, 25, 29.97 and 30 fps,
on streams whose first pts is not 0 and on VP9 WebMs (no duration: the whole video is decoded)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from tests.datasets.helpers import original_kinetics_clip
from tests.helpers import small_cfg, write_kinetics_csvs
from vov3d.datasets import VideoDecodeError, build_dataset
from vov3d.datasets.clip_dataset import read_frames
from vov3d.datasets.decoder import PtsWindow, PyAVVideo
from vov3d.datasets.encode import write_video

KINETICS_28FPS = "kinetics400_arm_wrestling_340x256_28fps.mp4"
KINETICS_CLIPS = [KINETICS_28FPS, "kinetics_style_340x256_30fps.mp4"]


@pytest.mark.parametrize("name", KINETICS_CLIPS)
def test_every_test_view_is_the_originals(real_videos: Path, tmp_path: Path, name: str) -> None:
    """The paper's protocol: 10 x 3 views of 16 x 5 frames, 256 crops of the 340 x 256 frames."""
    write_kinetics_csvs(tmp_path, [(name, 0)])
    cfg = small_cfg(tmp_path, real_videos)
    cfg.DATA.NUM_FRAMES, cfg.DATA.SAMPLING_RATE = 16, 5
    cfg.DATA.TRAIN_JITTER_SCALES, cfg.DATA.TRAIN_CROP_SIZE, cfg.DATA.TEST_CROP_SIZE = [256, 320], 224, 256
    cfg.TEST.NUM_ENSEMBLE_VIEWS, cfg.TEST.NUM_SPATIAL_CROPS = 10, 3
    ds = build_dataset(cfg, "test")
    for view in range(30):
        k, crop = divmod(view, 3)
        left = (0, (340 - 256 + 1) // 2, 340 - 256)[crop]  # 256 x 340 frames: no resize
        expected = original_kinetics_clip(real_videos / name, 16, 5, view=k, num_views=10)[:, :, left : left + 256]
        pixels = ds[view][0].numpy()
        assert np.array_equal(pixels, expected), (name, view)


def test_a_28fps_view_ends_on_the_frame_after_its_window(real_videos: Path, tmp_path: Path) -> None:
    """The original also keeps the first frame it decodes past the window (it stops reading only
    after storing one such frame); on the 28 fps clip, view 2 of 10 (16 x 5) takes it last."""
    (tmp_path / KINETICS_28FPS).symlink_to(real_videos / KINETICS_28FPS)
    test = kinetics(tmp_path, [KINETICS_28FPS], "test")
    with test.open_video(0) as source:
        window = test.select_frames(source, 2, None)
        frames = read_frames(source, window).numpy()
    in_window = []
    with av.open(str(real_videos / KINETICS_28FPS)) as container:
        for frame in container.decode(video=0):
            if frame.pts > window.last:
                break
            if frame.pts >= window.first:
                in_window.append(frame.to_ndarray(format="rgb24"))
    assert window.positions[-1] == len(in_window)  # one past the window's frames
    assert np.array_equal(frames[-1], frame.to_ndarray(format="rgb24"))  # the frame with pts > window.last
    assert not np.array_equal(frames[-1], in_window[-1])  # the window's last, which the list without it gives


def kinetics(root: Path, names: list[str], split: str, frames: int = 16, rate: int = 5):
    """The Kinetics dataset of ``split`` over ``root/names``."""
    write_kinetics_csvs(root, [(name, 0) for name in names])
    cfg = small_cfg(root, root)
    cfg.DATA.NUM_FRAMES, cfg.DATA.SAMPLING_RATE, cfg.TEST.NUM_ENSEMBLE_VIEWS = frames, rate, 10
    return build_dataset(cfg, split)


def clip(ds, video: int, view: int | None, rng: np.random.Generator | None = None) -> np.ndarray:
    """The frames the dataset decodes for one clip (before its crops), as uint8 T x H x W x 3."""
    with ds.open_video(video) as source:
        return read_frames(source, ds.select_frames(source, view, rng)).numpy()


def assert_views_and_training_clips(root: Path, name: str, frames: int = 16, rate: int = 5) -> None:
    path = root / name
    test = kinetics(root, [name], "test", frames, rate)
    for k in range(10):
        assert np.array_equal(clip(test, 0, k), original_kinetics_clip(path, frames, rate, k, 10)), (name, k)
    val = kinetics(root, [name], "val", frames, rate)  # the middle clip: view 1 of 2
    assert np.array_equal(clip(val, 0, 0), original_kinetics_clip(path, frames, rate, 1, 2)), name
    train = kinetics(root, [name], "train", frames, rate)
    for seed in range(3):
        drawn = clip(train, 0, None, np.random.default_rng(seed))
        expected = original_kinetics_clip(path, frames, rate, rng=np.random.default_rng(seed))
        assert np.array_equal(drawn, expected), (name, seed)


@pytest.fixture(scope="module")
def first_seconds(real_videos: Path) -> np.ndarray:
    """The first 3 s of the real 28 fps clip, 64 x 48 (every third column and fifth row)."""
    with av.open(str(real_videos / KINETICS_28FPS)) as container:
        frames = [f.to_ndarray(format="rgb24") for _, f in zip(range(84), container.decode(video=0))]
    return np.ascontiguousarray(np.stack(frames)[:, 8:248:5, 10:330:5])


@pytest.mark.parametrize("fps", [24, 25, 30000 / 1001, 30], ids=["24", "25", "29.97", "30"])
def test_reencoded_clips_at_other_frame_rates(tmp_path: Path, first_seconds: np.ndarray, fps: float) -> None:
    write_video(str(tmp_path / "v.mp4"), first_seconds, fps, gop_size=12)
    assert_views_and_training_clips(tmp_path, "v.mp4")


def test_the_28fps_clip_itself_for_training(real_videos: Path, tmp_path: Path) -> None:
    (tmp_path / KINETICS_28FPS).symlink_to(real_videos / KINETICS_28FPS)
    assert_views_and_training_clips(tmp_path, KINETICS_28FPS, frames=8, rate=8)


CODEC_OPTIONS = {
    "libx264": {"preset": "veryfast", "crf": "18"},
    "libvpx-vp9": {"deadline": "realtime", "cpu-used": "8"},
}


def write_late_start(path: Path, frames: np.ndarray, first: int, codec: str = "libx264") -> None:
    """A video at 30 fps whose frames have pts ``first``, ``first + 1``, ... (in 1/30 s; the muxer
    may keep other units, but keeps negative pts)."""
    with av.open(str(path), "w", options={"avoid_negative_ts": "disabled"}) as container:
        stream = container.add_stream(codec, rate=30, options=CODEC_OPTIONS[codec])
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.codec_context.time_base = Fraction(1, 30)
        for i, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts = first + i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def test_a_stream_whose_first_pts_is_not_0(tmp_path: Path, first_seconds: np.ndarray) -> None:
    """The window is in raw pts, as the original's: a late start shifts every clip."""
    write_late_start(tmp_path / "late.mp4", first_seconds, first=7)
    with av.open(str(tmp_path / "late.mp4")) as container:
        assert container.streams.video[0].start_time > 0
    assert_views_and_training_clips(tmp_path, "late.mp4")


def test_frames_that_start_after_the_window(tmp_path: Path, first_seconds: np.ndarray) -> None:
    """The window holds no frame: the original keeps the first one after it, at every position. A
    window with no frame in it or after it (a truncated file) is an error that names the file."""
    write_late_start(tmp_path / "later.mp4", first_seconds[:40], first=300)
    test = kinetics(tmp_path, ["later.mp4"], "test")
    with test.open_video(0) as source:
        assert source.decoded_timestamps()[0] > test.select_frames(source, 0, None).last
    ours = clip(test, 0, 0)
    assert np.array_equal(ours, original_kinetics_clip(tmp_path / "later.mp4", 16, 5, 0, 10))
    with av.open(str(tmp_path / "later.mp4")) as container:
        first = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert all(np.array_equal(frame, first) for frame in ours)
    with PyAVVideo(str(tmp_path / "later.mp4")) as video, pytest.raises(VideoDecodeError) as error:
        video.get_window(PtsWindow(10**6, 10**6 + 100, np.array([0])))
    assert str(error.value).startswith(f"{tmp_path / 'later.mp4'}: no frame is shown from ")


def test_a_webm_without_duration_keeps_no_frame_before_pts_0(tmp_path: Path, first_seconds: np.ndarray) -> None:
    """The original decodes such a video from pts 0: frames with a negative pts are not in its list."""
    write_late_start(tmp_path / "v.webm", first_seconds[:60], first=-9, codec="libvpx-vp9")
    with av.open(str(tmp_path / "v.webm")) as container:
        assert container.streams.video[0].duration is None
        assert [frame.pts < 0 for frame in container.decode(video=0)] == [True] * 9 + [False] * 51
    test = kinetics(tmp_path, ["v.webm"], "test", frames=8, rate=2)
    with test.open_video(0) as source:
        assert len(source.timestamps_from_zero()) == 51
    assert_views_and_training_clips(tmp_path, "v.webm", frames=8, rate=2)


def test_a_vp9_webm_without_duration_is_decoded_whole(tmp_path: Path, first_seconds: np.ndarray) -> None:
    write_video(str(tmp_path / "v.webm"), first_seconds, 25, codec="libvpx-vp9", gop_size=12)
    with av.open(str(tmp_path / "v.webm")) as container:
        assert container.streams.video[0].duration is None
    assert_views_and_training_clips(tmp_path, "v.webm")


def test_an_mpeg_ts_without_frame_count(tmp_path: Path, first_seconds: np.ndarray) -> None:
    """MPEG-TS headers give a duration but no frame count (the original divides by zero), and its
    pts start late: our count (duration x fps) makes the time base and the windows count from the
    first pts, so the first view starts at the first frame."""
    write_video(str(tmp_path / "v.ts"), first_seconds, 25, gop_size=12)
    with av.open(str(tmp_path / "v.ts")) as container:
        stream = container.streams.video[0]
        assert stream.frames == 0 and stream.duration and stream.start_time > 0
    assert_views_and_training_clips(tmp_path, "v.ts")
    every = [frame.to_ndarray(format="rgb24") for frame in av.open(str(tmp_path / "v.ts")).decode(video=0)]
    first_view = clip(kinetics(tmp_path, ["v.ts"], "test"), 0, 0)
    spread = torch.linspace(0, 5 * 16 / 30 * 25 - 1, 16).long().tolist()  # 16 x 5 at 30 fps from 25 fps
    assert all(np.array_equal(ours, every[i]) for ours, i in zip(first_view, spread))


def test_a_webm_with_a_longer_audio_track_is_read_whole(tmp_path: Path, first_seconds: np.ndarray) -> None:
    """Without a stream duration the frame count comes from the container's, which a longer audio
    track makes longer: the video is not taken for truncated, and its clips are the original's."""
    path = str(tmp_path / "v.webm")
    with av.open(path, "w") as container:
        video = container.add_stream("libvpx-vp9", rate=25)
        video.width, video.height, video.pix_fmt = first_seconds.shape[2], first_seconds.shape[1], "yuv420p"
        audio = container.add_stream("libopus", rate=48000)
        for array in first_seconds[:50]:
            container.mux(video.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(video.encode())
        samples = np.zeros((1, 960 * 150), dtype=np.float32)  # 3 s of silence, the video 2 s
        frame = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
        frame.rate = 48000
        for chunk in audio.encode(frame):
            container.mux(chunk)
        container.mux(audio.encode())
    with av.open(path) as container:
        assert container.streams.video[0].duration is None and container.duration / av.time_base > 2.5
    assert_views_and_training_clips(tmp_path, "v.webm", frames=8, rate=2)
