"""Real videos from ../shared/data/real-videos (see its SOURCES.md): metadata, clips that match a
plain front-to-back decode (by index, and by the original Kinetics loader's pts window), and
correct colours for full-range and 10-bit video."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from tests.datasets.helpers import original_kinetics_clip, reference_frames
from tests.helpers import small_cfg, write_kinetics_csvs
from vov3d.datasets import build_dataset
from vov3d.datasets.clip_dataset import read_frames
from vov3d.datasets.decoder import PyAVVideo
from vov3d.datasets.sampling import kinetics_indices, segment_indices

# file: (height, width), fps, frame count, as SOURCES.md states them
REAL = {
    "kinetics400_arm_wrestling_340x256_28fps.mp4": ((256, 340), 28, 280),
    "kinetics_style_340x256_30fps.mp4": ((256, 340), 30, 300),
    "ucf101_style_xvid_mp3.avi": ((240, 320), 25, 164),
    "vfr_1080p_h264.mp4": ((1080, 1920), 28.05, 72),
    "two_video_streams_h264.mp4": ((180, 320), 25, 325),  # the first video stream
    "hevc_10bit.mp4": ((200, 200), 30, 30),
    "av1.mkv": ((360, 640), 25, 125),  # no frame count in the container: from the duration
    "h264_full_range_720p.mp4": ((720, 1280), 30, 30),
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_video_clips_match_a_full_decode(real_videos: Path, name: str) -> None:
    size, fps, count = REAL[name]
    path = real_videos / name
    with PyAVVideo(str(path)) as video:
        assert (video.size, video.num_frames) == (size, count)
        assert video.fps == pytest.approx(fps, rel=1e-3)
    times, frames = reference_frames(path)
    assert len(frames) == count and np.all(np.diff(times) > 0)  # AVI packed B-frames re-timed

    def expected(index: int) -> np.ndarray:  # the frame on screen at index / fps
        shown = np.nonzero(times <= (index + 0.5) / video.fps)[0]
        return frames[shown[-1] if len(shown) else 0]

    rng = np.random.default_rng(0)
    clips = [kinetics_indices(count, video.fps, 8, 4, 30, rng=rng) for _ in range(2)]
    clips += [kinetics_indices(count, video.fps, 8, 4, 30, view=v, num_views=3) for v in range(3)]
    clips += [segment_indices(count, 8, view=v, num_views=2) for v in range(2)]
    clips.append(np.arange(count - 8, count))  # the last frames: a seek near the end
    for indices in clips:
        with PyAVVideo(str(path)) as video:
            clip = video.get_frames(indices).numpy()
        assert clip.shape == (8, *size, 3)
        assert all(np.array_equal(clip[k], expected(i)) for k, i in enumerate(indices)), (name, indices)


# The Kinetics clips are tested in test_original_views.py. The AVI's packed B-frames carry pts out
# of display order; the original sorts its frames by them, we show them in display order (dts).
WINDOWED = sorted(set(REAL) - {"ucf101_style_xvid_mp3.avi"} - set(n for n in REAL if n.startswith("kinetics")))


@pytest.mark.parametrize("name", WINDOWED)
def test_real_video_kinetics_clips_are_the_originals(real_videos: Path, tmp_path: Path, name: str) -> None:
    """3 test views and a training clip of 8 x 4 frames: variable frame rate, HEVC, AV1 in MKV (no
    duration: decoded whole), a second video stream, full-range H.264."""
    write_kinetics_csvs(tmp_path, [(name, 0)])
    cfg = small_cfg(tmp_path, real_videos)
    cfg.DATA.NUM_FRAMES, cfg.DATA.SAMPLING_RATE, cfg.TEST.NUM_ENSEMBLE_VIEWS = 8, 4, 3
    test, train = build_dataset(cfg, "test"), build_dataset(cfg, "train")
    path = real_videos / name
    for ds, view, seed in [(test, 0, None), (test, 1, None), (test, 2, None), (train, None, 0)]:
        rng = None if seed is None else np.random.default_rng(seed)
        with ds.open_video(0) as source:
            ours = read_frames(source, ds.select_frames(source, view, rng)).numpy()
        rng = None if seed is None else np.random.default_rng(seed)
        assert np.array_equal(ours, original_kinetics_clip(path, 8, 4, view, 3, rng)), (name, view)


def _planes(frame: av.VideoFrame, dtype: str) -> list[np.ndarray]:
    """Y, U, V planes, chroma upsampled to full size by repetition."""
    out = []
    for plane, scale in zip(frame.planes, (1, 2, 2)):
        item = np.dtype(dtype).itemsize
        rows = np.frombuffer(bytes(plane), dtype).reshape(plane.height, plane.line_size // item)
        out.append(rows[:, : plane.width].repeat(scale, 0).repeat(scale, 1)[: frame.height, : frame.width])
    return [p.astype(np.float64) for p in out]


def _to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray, kr: float, kb: float) -> np.ndarray:
    """Normalised Y in [0, 1] and U, V in [-0.5, 0.5] -> RGB in [0, 255]."""
    r = y + 2 * (1 - kr) * v
    b = y + 2 * (1 - kb) * u
    g = (y - kr * r - kb * b) / (1 - kr - kb)
    return np.clip(np.stack([r, g, b], -1) * 255, 0, 255)


def _first_frames(path: Path) -> tuple[av.VideoFrame, np.ndarray]:
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        with PyAVVideo(str(path)) as video:
            return frame, video.get_frames([0])[0].numpy().astype(np.float64)


def test_full_range_h264_is_decoded_as_full_range(real_videos: Path) -> None:
    frame, rgb = _first_frames(real_videos / "h264_full_range_720p.mp4")
    assert frame.format.name == "yuvj420p"
    y, u, v = _planes(frame, "u1")
    full = _to_rgb(y / 255, (u - 128) / 255, (v - 128) / 255, 0.2126, 0.0722)  # BT.709 full range
    limited = _to_rgb((y - 16) / 219, (u - 128) / 224, (v - 128) / 224, 0.2126, 0.0722)
    assert np.median(np.abs(rgb - full)) < 2 and np.median(np.abs(rgb - limited)) > 5


def test_10bit_hevc_is_converted_from_10_bits(real_videos: Path) -> None:
    frame, rgb = _first_frames(real_videos / "hevc_10bit.mp4")
    assert frame.format.name == "yuv420p10le"
    y, u, v = _planes(frame, "<u2")
    expected = _to_rgb((y - 64) / 876, (u - 512) / 896, (v - 512) / 896, 0.299, 0.114)  # BT.601 limited
    assert np.median(np.abs(rgb - expected)) < 2  # the median ignores chroma edges
    assert rgb.std() > 40  # colour bars, not a flat or garbled image
