"""Kinetics clips are the original loader's at every frame rate: the frames whose timestamps lie in
the clip's window, at positions in that list (tests/datasets/helpers.py: original_kinetics_clip,
the rule written out plainly over a front-to-back decode). On the real clips of
../shared/data/real-videos, on re-encodes of the 28 fps clip at 24, 25, 29.97 and 30 fps, on a
stream whose first pts is not 0 and on a VP9 WebM (no duration: the whole video is decoded)."""

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
    mean, std = torch.tensor(cfg.DATA.MEAN).view(3, 1, 1, 1), torch.tensor(cfg.DATA.STD).view(3, 1, 1, 1)
    for view in range(30):
        k, crop = divmod(view, 3)
        left = (0, (340 - 256 + 1) // 2, 340 - 256)[crop]  # 256 x 340 frames: no resize
        expected = original_kinetics_clip(real_videos / name, 16, 5, view=k, num_views=10)[:, :, left : left + 256]
        pixels = ((ds[view][0] * std + mean) * 255).round().permute(1, 2, 3, 0).to(torch.uint8).numpy()
        assert np.array_equal(pixels, expected), (name, view)


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


def write_late_start(path: Path, frames: np.ndarray, first: int) -> None:
    """An H.264 MP4 at 30 fps whose frames have pts ``first``, ``first + 1``, ... (in 1/30 s)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30, options={"preset": "veryfast", "crf": "18"})
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


def test_a_window_without_frames_names_the_file(tmp_path: Path, first_seconds: np.ndarray) -> None:
    """Frames that start after the clip's window (the original gets no frame and gives up)."""
    write_late_start(tmp_path / "later.mp4", first_seconds[:40], first=300)
    test = kinetics(tmp_path, ["later.mp4"], "test")
    with pytest.raises(VideoDecodeError, match="no frame is shown between") as error:
        clip(test, 0, 0)
    assert str(error.value).startswith(f"{tmp_path / 'later.mp4'}: ")


def test_a_vp9_webm_without_duration_is_decoded_whole(tmp_path: Path, first_seconds: np.ndarray) -> None:
    write_video(str(tmp_path / "v.webm"), first_seconds, 25, codec="libvpx-vp9", gop_size=12)
    with av.open(str(tmp_path / "v.webm")) as container:
        assert container.streams.video[0].duration is None
    assert_views_and_training_clips(tmp_path, "v.webm")


def test_an_mpeg_ts_without_frame_count(tmp_path: Path, first_seconds: np.ndarray) -> None:
    """MPEG-TS headers give a duration but no frame count (the original divides by zero), and its
    pts start late: our count (duration x fps) makes the time base."""
    write_video(str(tmp_path / "v.ts"), first_seconds, 25, gop_size=12)
    with av.open(str(tmp_path / "v.ts")) as container:
        stream = container.streams.video[0]
        assert stream.frames == 0 and stream.duration and stream.start_time > 0
    assert_views_and_training_clips(tmp_path, "v.ts")
