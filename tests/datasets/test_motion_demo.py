"""The motion demo dataset: pairs of classes are time reversals, every crop sees a large motion,
files and CSVs are complete."""

import ctypes
import glob
import os
from pathlib import Path

import av
import numpy as np
import pytest

from vov3d.datasets.encode import BIT_EXACT_YUV, write_video
from vov3d.datasets.motion_demo import CLASSES, DemoSpec, make_motion_dataset, render_video, shape_path


def test_pairs_are_time_reversals() -> None:
    spec = DemoSpec()
    for first in range(0, len(CLASSES), 2):
        forward = render_video(first, np.random.default_rng(5), spec)
        backward = render_video(first + 1, np.random.default_rng(5), spec)
        assert np.array_equal(backward, forward[::-1])
        assert forward.shape[1:] == (spec.height, spec.width, 3) and forward.dtype == np.uint8
        assert spec.min_frames <= len(forward) <= spec.max_frames


def test_frames_move() -> None:
    video = render_video(0, np.random.default_rng(1), DemoSpec()).astype(np.float32)
    assert np.abs(video[0] - video[-1]).mean() > 2.0


def test_every_test_crop_sees_the_shape_centre() -> None:
    # The quick start tests 3 crops of the short side along the long one: all three see the
    # middle (w - 2 * (w - h)) columns, and the shape's centre never leaves them.
    spec = DemoSpec()
    margin = spec.width - spec.height
    for seed, motion in np.ndindex(20, 4):
        path = shape_path(motion, spec.max_frames, np.random.default_rng(seed), spec)
        assert margin <= path.cx.min() and path.cx.max() <= spec.width - margin
        assert 0.2 * spec.height <= path.cy.min() and path.cy.max() <= 0.8 * spec.height


def test_each_motion_is_large() -> None:
    spec, t = DemoSpec(), 28
    for seed in range(20):
        moves = [shape_path(motion, t, np.random.default_rng(seed), spec) for motion in range(4)]
        assert np.ptp(moves[0].cx) >= 0.3 * spec.width and np.ptp(moves[1].cy) >= 0.3 * spec.height
        assert np.ptp(moves[2].angle) >= np.pi  # more than half a turn
        assert moves[3].scale[-1] / moves[3].scale[0] >= 1.99  # a twofold growth
        # Never under 70% of the base size (a fifth of the short side or more): the turn of a shape
        # a few pixels long was what a trained network still confused.
        assert all(move.scale.min() >= 0.7 for move in moves)


def test_one_frame_does_not_tell_the_motion() -> None:
    # One random frame of each of many videos: place, angle and size spread alike for every motion.
    spec, t, rng = DemoSpec(), 28, np.random.default_rng(0)
    pooled = []
    for motion in range(4):
        paths = [shape_path(motion, t, rng, spec) for _ in range(2000)]
        frames = rng.integers(0, t, len(paths))
        pooled.append(
            [(p.cx[i], p.cy[i], np.cos(p.angle[i]), np.sin(p.angle[i]), p.scale[i]) for p, i in zip(paths, frames)]
        )
    pooled = np.array(pooled)  # motion, video, quantity
    for stat in (np.mean, np.std):
        values = stat(pooled, axis=1)
        assert np.all(np.ptp(values, axis=0) < [1.0, 1.0, 0.05, 0.05, 0.03]), values


def test_writes_videos_and_csvs(tmp_path: Path) -> None:
    spec = DemoSpec(train_per_class=1, val_per_class=1, test_per_class=1, min_frames=8, max_frames=10)
    make_motion_dataset(str(tmp_path), spec, seed=3, processes=2)
    make_motion_dataset(str(tmp_path / "one"), spec, seed=3, processes=1)
    made = sorted(p.relative_to(tmp_path) for p in tmp_path.glob("videos/*/*.mp4"))
    assert len(made) == 3 * len(CLASSES)
    for rel in made:  # each video has its own generator: the same set from any number of processes
        assert (tmp_path / rel).read_bytes() == (tmp_path / "one" / rel).read_bytes(), rel
    assert (tmp_path / "classes.txt").read_text().splitlines() == CLASSES
    for split in ("train", "val", "test"):
        lines = (tmp_path / f"{split}.csv").read_text().splitlines()
        assert len(lines) == len(CLASSES)
        for line in lines:
            path, label = line.split(" ")
            assert (tmp_path / path).stat().st_size > 0 and 0 <= int(label) < len(CLASSES)


def test_videos_do_not_follow_the_cpu(tmp_path: Path) -> None:
    # FFmpeg's SIMD switched off, as on a CPU without it: the colour conversion rounded otherwise.
    # (x264 runs its C code whatever the CPU; the process count is checked above.)
    if not BIT_EXACT_YUV:
        pytest.skip(f"needs PyAV >= 18 for swscale's bit-exact conversion flags (PyAV {av.__version__} here)")
    found = glob.glob(os.path.join(os.path.dirname(av.__file__), os.pardir, "av.libs", "libavutil*.so*"))
    if not found:
        pytest.skip("PyAV's own libavutil is not in its wheel's av.libs")
    force_cpu_flags = ctypes.CDLL(found[0]).av_force_cpu_flags
    frames = render_video(4, np.random.default_rng(0), DemoSpec())
    write_video(str(tmp_path / "simd.mp4"), frames, 30)
    force_cpu_flags(0)
    try:
        write_video(str(tmp_path / "plain.mp4"), frames, 30)
    finally:
        force_cpu_flags(-1)  # detect the CPU's flags again
    assert (tmp_path / "simd.mp4").read_bytes() == (tmp_path / "plain.mp4").read_bytes()
