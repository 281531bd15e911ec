"""Which frames of a video make a clip: pure arithmetic, no decoding.

Both rules are those of the original VoV3D code (PySlowFast, December 2020), so published
checkpoints are tested on the clips they were scored on:

- Kinetics (X3D): a clip spans ``clip_size = sampling_rate * num_frames / target_fps * fps``
  frames of the video, from ``start`` to ``end = start + clip_size - 1``. The original picks by
  timestamp: the frames shown in that window and the next one after it (``kinetics_window``),
  then ``num_frames`` positions spread evenly over the list (``torch.linspace``, truncated), so
  the stride is about ``(clip_size - 1) / (num_frames - 1)``. A video without a duration in its
  header is decoded whole and the positions are spread from ``start`` to ``end`` over all its
  frames from pts 0 on (``kinetics_indices``). With ``offset_sampling`` (PySlowFast's later DATA.USE_OFFSET_SAMPLING)
  the stride is exactly ``sampling_rate * fps / target_fps`` and test views spread from the
  start to the end.
- Something-Something (TSN-style segments): ``(L - 1) / num_frames`` segments, one frame of each.

``view=None`` draws a random clip from ``rng`` (training); ``view=k`` of ``num_views`` gives the
k-th deterministic clip (testing). Indices are clamped to ``[0, video_frames - 1]``.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

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


class FrameWindow(NamedTuple):
    """A Kinetics clip by timestamp: the frames shown from frame time ``start`` to ``end`` (frame
    units; times the stream's pts per frame, truncated, they bound the pts window) and the next
    frame after it, sorted by time, at list ``positions`` (clamped to the list by the reader)."""

    start: float
    end: float
    positions: np.ndarray


def _clip_start(delta: float, view: Optional[int], num_views: int, rng: Optional[np.random.Generator]) -> float:
    """The original's start: uniform in ``[0, delta]`` for training, ``delta * k / K`` for view k of K."""
    return rng.uniform(0.0, delta) if view is None else delta * view / num_views


def kinetics_window(
    video_frames: int,
    video_fps: float,
    num_frames: int,
    sampling_rate: int,
    target_fps: float,
    view: Optional[int] = None,
    num_views: int = 1,
    rng: Optional[np.random.Generator] = None,
) -> FrameWindow:
    """The original's clip of a video with a duration in its header (``video_frames`` from the header).

    With ``delta = max(video_frames - clip_size, 0)``, training starts at ``uniform(0, delta)`` and
    test view k of K at ``delta * k / K`` (so K = 1 starts at 0 and the last of 10 views at 0.9
    delta); the window ends ``clip_size - 1`` frames later. Positions are
    ``linspace(0, clip_size - 1, num_frames)`` in float32, truncated, in the list of the window's
    frames and the next one: the last position may take that next frame, and a list that holds
    fewer frames (the end of a video) repeats its last frame.
    """
    _check(video_frames, num_views, view, rng)
    clip_size = sampling_rate * num_frames / target_fps * video_fps
    start = _clip_start(max(video_frames - clip_size, 0.0), view, num_views, rng)
    # The original spreads the positions with its second formula for the clip size (same value,
    # other rounding order); torch.linspace in float32, as there.
    positions = torch.linspace(0, num_frames * sampling_rate * video_fps / target_fps - 1, num_frames)
    return FrameWindow(start, start + clip_size - 1, torch.clamp(positions, min=0).long().numpy())


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
    """Frame indices of a clip of ``num_frames`` frames covering ``sampling_rate * num_frames``
    frames at ``target_fps``, the start drawn as in ``kinetics_window``.

    The original's rule for a video without a duration, decoded whole (``video_frames``: the frames
    from pts 0 on): ``linspace(start, start + clip_size - 1, num_frames)``, truncated and clamped to the
    last frame. With ``offset_sampling``, DATA.USE_OFFSET_SAMPLING's rule (``_offset_indices``).
    """
    _check(video_frames, num_views, view, rng)
    if offset_sampling:
        return _offset_indices(video_frames, video_fps, num_frames, sampling_rate, target_fps, view, num_views, rng)
    clip_size = num_frames * sampling_rate * video_fps / target_fps  # the original's order for this rule
    start = _clip_start(max(video_frames - clip_size, 0.0), view, num_views, rng)
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
