"""Frame-index sampling: Kinetics clips (train and every test view) and SS segments."""

from __future__ import annotations

import numpy as np
import pytest

from vov3d.datasets.sampling import kinetics_indices, segment_indices


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.mark.parametrize("fps,step", [(30, 5), (60, 10), (15, 2.5), (24, 4)])
def test_kinetics_train_clip_spacing_scales_with_fps(fps: float, step: float) -> None:
    for seed in range(20):
        idx = kinetics_indices(300, fps, 16, 5, 30, rng=rng(seed))
        assert idx.shape == (16,) and idx.dtype == np.int64
        assert set(np.diff(idx).tolist()) <= {np.floor(step), np.ceil(step)}
        assert abs(idx[-1] - idx[0] - 15 * step) <= 1
        assert idx[0] >= 0 and idx[-1] <= 299


def test_kinetics_train_start_covers_the_video_and_is_seeded() -> None:
    starts = [kinetics_indices(300, 30, 16, 5, 30, rng=rng(s))[0] for s in range(300)]
    latest = 300 - (15 * 5 + 1)  # the last index reaches frame 299 at most
    assert min(starts) <= 5 and max(starts) >= latest - 5 and max(starts) <= latest
    assert np.array_equal(
        kinetics_indices(300, 30, 16, 5, 30, rng=rng(7)), kinetics_indices(300, 30, 16, 5, 30, rng=rng(7))
    )


def test_kinetics_test_views_are_evenly_spaced() -> None:
    clips = [kinetics_indices(300, 30, 16, 5, 30, view=v, num_views=10) for v in range(10)]
    starts = [clip[0] for clip in clips]
    assert starts[0] == 0 and clips[-1][-1] == 299
    assert np.allclose(np.diff(starts), 224 / 9, atol=1)
    assert all(np.array_equal(np.diff(c), [5] * 15) for c in clips)
    middle = kinetics_indices(300, 30, 16, 5, 30, view=0, num_views=1)
    assert middle[0] == 112  # (300 - 76) / 2


def test_kinetics_short_video_clamps_at_the_end() -> None:
    idx = kinetics_indices(20, 30, 8, 8, 30, view=0, num_views=1)
    assert idx.tolist() == [0, 8, 16, 19, 19, 19, 19, 19]
    assert kinetics_indices(1, 30, 4, 8, 30, rng=rng()).tolist() == [0, 0, 0, 0]


def test_segment_train_takes_one_frame_per_segment() -> None:
    for seed in range(50):
        idx = segment_indices(48, 8, rng=rng(seed))
        assert np.all(idx // 6 == np.arange(8))
    draws = np.stack([segment_indices(48, 8, rng=rng(s)) for s in range(200)])
    assert set(np.unique(draws[:, 0]).tolist()) == set(range(6))  # every frame of a segment occurs


def test_segment_test_views_are_distinct_and_reproducible() -> None:
    views = [segment_indices(48, 8, view=v, num_views=2) for v in range(2)]
    assert views[0].tolist() == [1, 7, 13, 19, 25, 31, 37, 43]
    assert views[1].tolist() == [4, 10, 16, 22, 28, 34, 40, 46]
    assert np.array_equal(views[1], segment_indices(48, 8, view=1, num_views=2))
    assert segment_indices(48, 8, view=0, num_views=1).tolist() == [3, 9, 15, 21, 27, 33, 39, 45]
    three = [tuple(segment_indices(30, 8, view=v, num_views=3)) for v in range(3)]
    assert len(set(three)) == 3


def test_segments_of_a_short_video_repeat_frames() -> None:
    assert segment_indices(3, 8, view=0, num_views=1).tolist() == [0, 0, 0, 1, 1, 2, 2, 2]
    assert segment_indices(3, 8, rng=rng()).max() <= 2


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
