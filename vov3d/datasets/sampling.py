"""Which frames of a video make a clip: pure index arithmetic, no decoding.

Both rules are those of the original VoV3D code (PySlowFast, December 2020), so published
checkpoints are tested on the clips they were scored on:

- Kinetics (X3D): a clip spans ``clip_size = sampling_rate * num_frames / target_fps * fps``
  frames of the video, and ``num_frames`` indices are spread evenly over that span
  (``torch.linspace``, truncated), so the stride is ``(clip_size - 1) / (num_frames - 1)``.
  With ``offset_sampling`` (PySlowFast's later DATA.USE_OFFSET_SAMPLING) the stride is exactly
  ``sampling_rate * fps / target_fps`` and test views spread from the start to the end.
- Something-Something (TSN-style segments): ``(L - 1) / num_frames`` segments, one frame of each.

``view=None`` draws a random clip from ``rng`` (training); ``view=k`` of ``num_views`` gives the
k-th deterministic clip (testing). Indices are clamped to ``[0, video_frames - 1]``.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch


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
    offset_sampling: bool = False,
) -> np.ndarray:
    """A clip of ``num_frames`` frames covering ``sampling_rate * num_frames`` frames at ``target_fps``.

    The original rule: with ``delta = max(video_frames - clip_size, 0)``, training starts at
    ``uniform(0, delta)`` and test view k of K at ``delta * k / K`` (so K = 1 starts at 0 and the
    last of 10 views at 0.9 delta). Short videos repeat their last frame.
    """
    _check(video_frames, num_views, view, rng)
    if offset_sampling:
        return _offset_indices(video_frames, video_fps, num_frames, sampling_rate, target_fps, view, num_views, rng)
    clip_size = sampling_rate * num_frames / target_fps * video_fps
    delta = max(video_frames - clip_size, 0.0)
    start = rng.uniform(0.0, delta) if view is None else delta * view / num_views
    # torch.linspace in float32, as the original, so indices agree even where a position is an integer.
    positions = torch.linspace(start, start + clip_size - 1, num_frames)
    return torch.clamp(positions, 0, video_frames - 1).long().numpy()


def _offset_indices(
    video_frames: int,
    video_fps: float,
    num_frames: int,
    sampling_rate: int,
    target_fps: float,
    view: Optional[int],
    num_views: int,
    rng: Optional[np.random.Generator],
) -> np.ndarray:
    """Stride exactly ``sampling_rate * video_fps / target_fps``; training starts uniformly over the
    video; test view k of K starts at ``k / (K - 1)`` of the possible range (the middle when K is 1),
    so the views reach the end of the video."""
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
    """One frame from each of ``num_frames`` segments.

    As the original: with ``seg = (L - 1) / num_frames``, segment i spans
    ``[round(seg * i), round(seg * (i + 1))]`` (both ends, NumPy's half-to-even rounding); training
    takes a uniformly random frame of each span, a single test view ``(start + end) // 2``.
    With K > 1 test views (where the original draws random frames, not reproducibly), view k takes
    the frame at ``(k + 0.5) / K`` of each of ``L / num_frames`` equal segments: distinct clips
    (when segments hold at least K frames), the same every time.
    """
    _check(video_frames, num_views, view, rng)
    if view is not None and num_views > 1:
        segment = video_frames / num_frames
        return _clamped((np.arange(num_frames) + (view + 0.5) / num_views) * segment, video_frames)
    bounds = np.round((video_frames - 1) / num_frames * np.arange(num_frames + 1)).astype(np.int64)
    starts, ends = bounds[:-1], bounds[1:]
    if view is None:
        return rng.integers(starts, ends + 1)
    return (starts + ends) // 2
