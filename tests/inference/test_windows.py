"""The demo's sliding windows: which frames each window holds, which window labels each frame,
and a window as a video of its own giving the test's clip of it."""

from __future__ import annotations

import weakref

import numpy as np
import pytest
import torch

from tests.conftest import CONFIGS
from vov3d.config import load_config
from vov3d.datasets import build_dataset
from vov3d.datasets.sampling import kinetics_indices, segment_indices
from vov3d.inference.windows import FrameSpan, Span, slide


def numbered(count: int) -> list[np.ndarray]:
    """Frames whose every pixel is the frame's index, so a clip says which frames it holds."""
    return [np.full((2, 2, 3), i, dtype=np.uint8) for i in range(count)]


def run(count: int, length: int, stride: int) -> tuple[dict[int, list[int]], list[tuple[int, int]]]:
    """Each window's frame indices (by its span index) and, per frame, (frame index, window index)."""
    seen: dict[int, list[int]] = {}

    def score(span: Span, clip: torch.Tensor) -> Span:
        assert span.index not in seen, "a window was scored twice"
        seen[span.index] = clip[:, 0, 0, 0].tolist()
        assert seen[span.index] == list(range(span.start, span.start + span.length))
        return span

    labels = [(item.index, item.window.index) for item in slide(numbered(count), length, stride, score)]
    for index, window in labels:
        assert index in seen[window], f"frame {index} labelled by window {window}, which does not hold it"
    return seen, labels


@pytest.mark.parametrize("count", [1, 5, 10, 11, 12, 13, 30, 31])
@pytest.mark.parametrize("length, stride", [(10, 10), (10, 5), (10, 3), (10, 1), (1, 1)])
def test_every_frame_once_in_order_labelled_by_a_window_that_holds_it(count: int, length: int, stride: int) -> None:
    windows, labels = run(count, length, stride)
    assert [index for index, _ in labels] == list(range(count))
    starts = [frames[0] for _, frames in sorted(windows.items())]
    full = [s for s in starts if s + length <= count]
    if count < length:  # one window of the whole stream
        assert list(windows.values()) == [list(range(count))]
        return
    assert full[: (count - length) // stride + 1] == list(range(0, count - length + 1, stride))
    assert all(len(frames) == length for frames in windows.values())
    assert max(w for _, w in labels) == len(windows) - 1, "a window no frame uses"
    last = max(windows)
    assert windows[last][-1] == count - 1, "the last frames are not covered by a window ending at the end"


def test_frames_are_labelled_by_the_latest_window_starting_at_or_before_them() -> None:
    _, labels = run(23, 10, 4)
    # windows start at 0, 4, 8, 12 (ending at 9, 13, 17, 21); frame 22 needs a last window 13..22,
    # which labels the frames after the stride of the last whole window
    assert dict(labels) == {t: t // 4 for t in range(16)} | {t: 4 for t in range(16, 23)}


class Tracked(np.ndarray):
    """A frame that can be watched with a weak reference, to count the frames still held."""


def test_only_the_frames_still_needed_are_held() -> None:
    refs: list[weakref.ref] = []
    most = 0

    def frames():
        for frame in numbered(200):
            tracked = frame.view(Tracked)
            refs.append(weakref.ref(tracked))
            yield tracked

    for item in slide(frames(), 16, 4, lambda span, clip: span):
        del item
        most = max(most, sum(ref() is not None for ref in refs))
    assert 16 <= most <= 16 + 4 + 1, f"{most} frames held at once for windows of 16 every 4"


@pytest.mark.parametrize("stride", [0, 11])
def test_a_stride_outside_one_to_the_window_is_refused(stride: int) -> None:
    with pytest.raises(ValueError, match="stride must be 1 to 10"):
        list(slide(numbered(20), 10, stride, lambda span, clip: span))


def kinetics_cfg(*opts: str):
    return load_config([str(CONFIGS / "quickstart" / "vov3d_motion.yaml")], ["LOG_MODEL_INFO", "False", *opts])


@pytest.mark.parametrize("offset", [False, True])
@pytest.mark.parametrize("fps", [30.0, 25.0, 29.97, 60.0])
def test_a_kinetics_window_is_the_test_clip_of_a_video_of_the_windows_frames(offset: bool, fps: float) -> None:
    """The window spans exactly what one test clip spans, and the dataset's clip of it is the
    clip its sampling rule gives a video of those frames: every frame position within the window."""
    cfg = kinetics_cfg("DATA.USE_OFFSET_SAMPLING", str(offset))
    dataset = build_dataset(cfg, "test", paths=["window"], labels=[0], num_temporal_views=1)
    length = dataset.window_frames(fps)
    frames = torch.from_numpy(np.stack(numbered(length)))
    clip = dataset.read_view(FrameSpan(frames, fps, "window"), 0)[:, 0, 0, 0].tolist()
    rule = kinetics_indices(length, fps, 8, 3, 30.0, view=0, num_views=1, offset_sampling=offset)
    assert clip == rule.tolist()
    assert clip[0] == 0 and clip[-1] == length - 1, "the window is not the clip's span"
    span = 8 * 3 * fps / 30 if not offset else 7 * 3 * fps / 30 + 1  # 8 frames, every 3rd at 30 fps
    assert length == int(span)


def test_a_something_something_window_is_segmented_as_a_video() -> None:
    cfg = load_config([str(CONFIGS / "quick" / "vov3d_tiny.yaml")], ["LOG_MODEL_INFO", "False", "TEST.DATASET", "ssv2"])
    dataset = build_dataset(cfg, "test", paths=["window"], labels=[0], num_temporal_views=1)
    assert dataset.window_frames(12.0) is None
    frames = torch.from_numpy(np.stack(numbered(48)))
    clip = dataset.read_view(FrameSpan(frames, 12.0, "window"), 0)[:, 0, 0, 0].tolist()
    assert clip == segment_indices(48, cfg.DATA.NUM_FRAMES, 0, 1).tolist()
