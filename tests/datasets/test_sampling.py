"""Sampling against the original VoV3D code's formulas, recomputed here by plain arithmetic:
Kinetics windows and positions (train and every test view), its index rule for videos decoded
whole, DATA.USE_OFFSET_SAMPLING's rule, and Something-Something segments."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from vov3d.datasets.sampling import kinetics_indices, kinetics_window, segment_indices

# (video frames n, fps, NUM_FRAMES, SAMPLING_RATE): 30, 28 and 60 fps; n below, at and above the
# clip size (80 frames for 16 x 5 at 30 fps, 74.67 at 28); single-frame videos and clips.
KINETICS_CASES = [
    (n, fps, frames, rate)
    for n, fps, (frames, rate) in itertools.product(
        (1, 7, 50, 74, 75, 79, 80, 81, 120, 300, 1001),
        (30, 28, 60, 29.97),
        ((16, 5), (13, 6), (8, 8), (4, 12), (1, 2)),
    )
]


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def original_positions(n: int, fps: float, frames: int, rate: int, start: float) -> list[float]:
    """torch.linspace(start, start + clip_size - 1, frames) of the original, before truncation."""
    clip_size = rate * frames / 30 * fps
    if frames == 1:
        return [start]
    return [start + i * (clip_size - 1) / (frames - 1) for i in range(frames)]


def assert_original(indices: np.ndarray, n: int, positions: list[float]) -> None:
    """Indices are the positions truncated and clamped to [0, n - 1]. Where a position lies within
    float32 rounding of an integer (the original computes in float32) either neighbour is right."""
    assert indices.dtype == np.int64 and len(indices) == len(positions)
    for index, position in zip(indices.tolist(), positions):
        allowed = {min(max(math.floor(position + d), 0), n - 1) for d in (-1e-4, 0.0, 1e-4)}
        assert index in allowed, (indices.tolist(), positions)


@pytest.mark.parametrize("n,fps,frames,rate", KINETICS_CASES)
@pytest.mark.parametrize("num_views", [1, 3, 10])
def test_kinetics_test_views_follow_the_original(n: int, fps: float, frames: int, rate: int, num_views: int) -> None:
    clip_size = rate * frames / 30 * fps
    delta = max(n - clip_size, 0)
    for k in range(num_views):
        indices = kinetics_indices(n, fps, frames, rate, 30, view=k, num_views=num_views)
        assert_original(indices, n, original_positions(n, fps, frames, rate, delta * k / num_views))


@pytest.mark.parametrize("n,fps,frames,rate", KINETICS_CASES[::3])
def test_kinetics_train_clips_follow_the_original(n: int, fps: float, frames: int, rate: int) -> None:
    delta = max(n - rate * frames / 30 * fps, 0)
    for seed in range(5):
        start = rng(seed).uniform(0.0, delta)  # the dataset's rng draws the start and nothing else
        indices = kinetics_indices(n, fps, frames, rate, 30, rng=rng(seed))
        assert_original(indices, n, original_positions(n, fps, frames, rate, start))


@pytest.mark.parametrize("n,fps,frames,rate", KINETICS_CASES[::2])
@pytest.mark.parametrize("num_views", [1, 10])
def test_kinetics_windows_follow_the_original(n: int, fps: float, frames: int, rate: int, num_views: int) -> None:
    """Window [s, s + clip_size - 1] from s = delta * k / K; positions linspace(0, clip_size - 1),
    truncated (within float32 rounding of an integer either neighbour is right)."""
    clip_size = rate * frames / 30 * fps
    positions = original_positions(n, fps, frames, rate, 0.0)
    for k in range(num_views):
        window = kinetics_window(n, fps, frames, rate, 30, view=k, num_views=num_views)
        start = max(n - clip_size, 0) * k / num_views
        assert window.start == pytest.approx(start) and window.end == pytest.approx(start + clip_size - 1)
        assert window.positions.dtype == np.int64 and len(window.positions) == frames
        for got, position in zip(window.positions.tolist(), positions):
            assert got in {max(math.floor(position + d), 0) for d in (-1e-4, 0.0, 1e-4)}, (window, positions)


def test_kinetics_window_train_start_is_the_index_rules_draw() -> None:
    """One uniform draw from the dataset's rng, as for indices (and the original's random.uniform)."""
    for seed in range(5):
        window = kinetics_window(300, 28, 16, 5, 30, rng=rng(seed))
        assert window.start == rng(seed).uniform(0, 300 - 16 * 5 / 30 * 28)
    assert kinetics_window(300, 28, 16, 5, 30, view=0).positions.tolist() == [
        math.floor(i * (16 * 5 / 30 * 28 - 1) / 15) for i in range(16)
    ]


def test_kinetics_worked_examples() -> None:
    """The numbers of the issue: 16 x 5 at 30 fps spans 80 frames with stride 79 / 15."""
    assert kinetics_indices(300, 30, 16, 5, 30, view=0, num_views=1).tolist() == [
        math.floor(i * 79 / 15) for i in range(16)
    ]
    last = kinetics_indices(300, 30, 16, 5, 30, view=9, num_views=10)
    assert last[0] == math.floor(0.9 * 220) and last[-1] == math.floor(0.9 * 220 + 79) < 299
    assert kinetics_indices(300, 28, 16, 5, 30, view=0, num_views=1)[-1] == math.floor(16 * 5 / 30 * 28 - 1)
    short = kinetics_indices(40, 30, 16, 5, 30, view=5, num_views=10)  # delta 0: every view starts at 0
    assert (
        short[0] == 0
        and short[-1] == 39
        and np.array_equal(short, kinetics_indices(40, 30, 16, 5, 30, view=0, num_views=10))
    )


def test_kinetics_train_start_covers_the_free_range_and_is_seeded() -> None:
    starts = [kinetics_indices(300, 30, 16, 5, 30, rng=rng(s))[0] for s in range(300)]
    assert min(starts) <= 3 and 215 <= max(starts) <= 220  # delta = 300 - 80
    assert np.array_equal(
        kinetics_indices(300, 30, 16, 5, 30, rng=rng(7)), kinetics_indices(300, 30, 16, 5, 30, rng=rng(7))
    )


# DATA.USE_OFFSET_SAMPLING True: stride exactly SAMPLING_RATE * fps / 30, views from start to end.
def offset(*args, **kwargs) -> np.ndarray:
    return kinetics_indices(*args, offset_sampling=True, **kwargs)


@pytest.mark.parametrize("fps,step", [(30, 5), (60, 10), (15, 2.5), (24, 4)])
def test_offset_train_clip_spacing_scales_with_fps(fps: float, step: float) -> None:
    for seed in range(20):
        idx = offset(300, fps, 16, 5, 30, rng=rng(seed))
        assert set(np.diff(idx).tolist()) <= {np.floor(step), np.ceil(step)}
        assert abs(idx[-1] - idx[0] - 15 * step) <= 1 and idx[0] >= 0 and idx[-1] <= 299


def test_offset_test_views_reach_the_end() -> None:
    clips = [offset(300, 30, 16, 5, 30, view=v, num_views=10) for v in range(10)]
    starts = [clip[0] for clip in clips]
    assert starts[0] == 0 and clips[-1][-1] == 299
    assert np.allclose(np.diff(starts), 224 / 9, atol=1)
    assert all(np.array_equal(np.diff(c), [5] * 15) for c in clips)
    assert offset(300, 30, 16, 5, 30, view=0, num_views=1)[0] == 112  # (300 - 76) / 2
    assert offset(20, 30, 8, 8, 30, view=0, num_views=1).tolist() == [0, 8, 16, 19, 19, 19, 19, 19]


def original_spans(length: int, frames: int) -> list[tuple[int, int]]:
    seg = (length - 1) / frames
    return [(int(np.round(seg * i)), int(np.round(seg * (i + 1)))) for i in range(frames)]


@pytest.mark.parametrize(
    "length,frames", list(itertools.product((1, 2, 3, 8, 17, 33, 48, 49, 50, 121), (1, 4, 8, 16, 32)))
)
def test_segments_follow_the_original(length: int, frames: int) -> None:
    spans = original_spans(length, frames)
    assert segment_indices(length, frames, view=0, num_views=1).tolist() == [(a + b) // 2 for a, b in spans]
    draws = np.stack([segment_indices(length, frames, rng=rng(s)) for s in range(60)])
    for i, (a, b) in enumerate(spans):
        assert a <= draws[:, i].min() and draws[:, i].max() <= b  # both ends included
        if b - a <= 2:
            assert set(draws[:, i].tolist()) == set(range(a, b + 1))


def test_segment_spans_round_half_to_even() -> None:
    # L = 9, T = 16: seg = 0.5, so round(0.5) = 0, round(1.5) = 2, round(2.5) = 2 (not 3).
    assert original_spans(9, 16)[:6] == [(0, 0), (0, 1), (1, 2), (2, 2), (2, 2), (2, 3)]
    assert segment_indices(9, 16, view=0, num_views=1).tolist()[:6] == [0, 0, 1, 2, 2, 2]


def test_segment_multi_views_are_distinct_and_reproducible() -> None:
    """The one deliberate difference: K > 1 views are fixed clips, where the original draws randomly."""
    views = [segment_indices(48, 8, view=v, num_views=2) for v in range(2)]
    assert views[0].tolist() == [1, 7, 13, 19, 25, 31, 37, 43]
    assert views[1].tolist() == [4, 10, 16, 22, 28, 34, 40, 46]
    assert np.array_equal(views[1], segment_indices(48, 8, view=1, num_views=2))
    assert len({tuple(segment_indices(30, 8, view=v, num_views=3)) for v in range(3)}) == 3


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(view=None), "needs an rng"),
        (dict(view=2, num_views=2), "view must be in"),
        (dict(view=0, video_frames=0), "at least one frame"),
    ],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    args = dict(video_frames=10, num_frames=4)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        segment_indices(**args)
