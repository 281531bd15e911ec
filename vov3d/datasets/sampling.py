"""Which frames of a video make a clip: pure index arithmetic, no decoding.

Kinetics (X3D): ``num_frames`` frames ``sampling_rate`` apart at ``target_fps``; the stride is
rescaled by the video's own frame rate. Something-Something (TSN-style segments): the video is cut
into ``num_frames`` equal segments and one frame is taken from each.

``view=None`` draws a random clip from ``rng`` (training); ``view=k`` of ``num_views`` gives the
k-th deterministic clip (testing). Indices are clamped to ``[0, video_frames - 1]``.
"""

from __future__ import annotations

from typing import Optional

import numpy as np


def _clamped(positions: np.ndarray, video_frames: int) -> np.ndarray:
    return np.clip(np.floor(positions).astype(np.int64), 0, video_frames - 1)


def _check(video_frames: int, num_views: int, view: Optional[int], rng: Optional[np.random.Generator]) -> None:
    if video_frames < 1:
        raise ValueError(f"a video needs at least one frame, got {video_frames}")
    if view is None and rng is None:
        raise ValueError("a random clip (view=None) needs an rng")
    if view is not None and not 0 <= view < num_views:
        raise ValueError(f"view must be in [0, {num_views}), got {view}")


def kinetics_indices(
    video_frames: int,
    video_fps: float,
    num_frames: int,
    sampling_rate: int,
    target_fps: float,
    view: Optional[int] = None,
    num_views: int = 1,
    rng: Optional[np.random.Generator] = None,
) -> np.ndarray:
    """A clip of ``num_frames`` frames, stride ``sampling_rate * video_fps / target_fps``.

    Training starts uniformly over the video; test view k of K starts at ``k / (K - 1)`` of the
    possible range (the middle when K is 1). Short videos repeat their last frame.
    """
    _check(video_frames, num_views, view, rng)
    step = sampling_rate * video_fps / target_fps
    latest_start = max(video_frames - ((num_frames - 1) * step + 1), 0.0)
    if view is None:
        start = rng.uniform(0.0, latest_start)
    elif num_views == 1:
        start = latest_start / 2
    else:
        start = latest_start * view / (num_views - 1)
    return _clamped(start + step * np.arange(num_frames), video_frames)


def segment_indices(
    video_frames: int,
    num_frames: int,
    view: Optional[int] = None,
    num_views: int = 1,
    rng: Optional[np.random.Generator] = None,
) -> np.ndarray:
    """One frame from each of ``num_frames`` equal segments.

    Training takes a uniformly random frame of each segment. Test view k of K takes the frame at
    ``(k + 0.5) / K`` of every segment, so views are different clips (when segments hold at least
    K frames) and the same every time.
    """
    _check(video_frames, num_views, view, rng)
    segment = video_frames / num_frames
    offsets = rng.random(num_frames) if view is None else np.full(num_frames, (view + 0.5) / num_views)
    return _clamped((np.arange(num_frames) + offsets) * segment, video_frames)
