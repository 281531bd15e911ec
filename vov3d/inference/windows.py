"""A window of the model's clip slid over a stream of frames (the demo): which frames each window
holds, which window labels each frame, and the window as a video of its own for the dataset.

Windows start every ``stride`` frames and hold ``length``; frame ``t`` is labelled by window
``t // stride``, the latest that starts at or before it. Where the stream ends inside a window, a
last window ends at the last frame and labels the frames that no whole window labelled; a stream
shorter than one window is one window. Only the frames of the windows still to come are held.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Callable, Generic, Optional, TypeVar

import numpy as np
import torch

from vov3d.datasets.decoder import PtsWindow

W = TypeVar("W")


class FrameSpan:
    """Decoded frames (uint8 N x H x W x 3) as a video of their own, with what a dataset asks of
    a source to make its test clip (``ClipDataset.read_view``): frame count, rate, frames by index,
    and Kinetics' rule for a video without a duration (positions in the list of every frame)."""

    pts_per_frame = None  # no duration: Kinetics picks from the list of all frames
    window_origin = 0

    def __init__(self, frames: torch.Tensor, fps: float, path: str) -> None:
        self.frames, self.fps, self.path = frames, fps, path
        self.num_frames = len(frames)

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.frames.shape[1:3])

    def timestamps_from_zero(self) -> np.ndarray:
        return np.arange(self.num_frames)

    def get_frames(self, indices: np.ndarray) -> torch.Tensor:
        picked = np.clip(np.asarray(indices, dtype=np.int64), 0, self.num_frames - 1)
        return self.frames[torch.from_numpy(picked)]

    def get_window(self, window: PtsWindow) -> torch.Tensor:
        if window.first is not None:
            raise ValueError("a frame span has no timestamps: expected a window over all its frames")
        return self.get_frames(window.positions)


@dataclass(frozen=True)
class Span:
    """Window ``index``: ``length`` frames from frame ``start``."""

    index: int
    start: int
    length: int


@dataclass
class Labelled(Generic[W]):
    """A frame of the stream, its index, and the result of the window that labels it."""

    index: int
    frame: np.ndarray
    window: W


def slide(
    frames: Iterable[np.ndarray],
    length: int,
    stride: int,
    score: Callable[[Span, torch.Tensor], W],
) -> Iterator[Labelled[W]]:
    """Every frame of ``frames`` (uint8 H x W x 3 arrays), in order, with ``score(span, clip)`` of
    the window that labels it (``clip``: the window's frames, N x H x W x 3). Each window is
    scored once, as soon as its last frame has arrived."""
    if not 1 <= stride <= length:
        raise ValueError(f"the stride must be 1 to {length} frames (the window), got {stride}")
    held: list[np.ndarray] = []  # frames from index ``first`` on
    first = emitted = 0
    count = 0
    last: Optional[tuple[Span, W]] = None

    def window(start: int, size: int, index: int) -> tuple[Span, W]:
        span = Span(index, start, size)
        clip = torch.from_numpy(np.stack(held[start - first : start - first + size]))
        return span, score(span, clip)

    for frame in frames:
        held.append(frame)
        count += 1
        start = (last[0].index + 1) * stride if last else 0
        if count == start + length:
            last = window(start, length, last[0].index + 1 if last else 0)
            while emitted < start + stride:
                yield Labelled(emitted, held[emitted - first], last[1])
                emitted += 1
            keep = min(emitted, count - length)  # the next window's frames, or a last one's
            del held[: keep - first]
            first = keep
    if count == 0:
        return
    if last is None:
        last = window(0, count, 0)
    elif emitted < count and last[0].start + length < count:
        last = window(count - length, length, last[0].index + 1)
    while emitted < count:
        yield Labelled(emitted, held[emitted - first], last[1])
        emitted += 1
