"""Read several clips of one opened video at once (AUG.NUM_SAMPLE's clips of a training item).

Clips whose frame ranges overlap are read together, so a frame they share is decoded once: frame
indices by one ``get_frames`` over the union of their indices, pts windows by one ``get_windows``
decode from the earliest window's start to the latest's end. Clips far apart are read one range
after another in the same open file, so a seek skips what lies between them rather than decoding
it. Each clip is exactly the one its selection gives when read alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import numpy as np
import torch

from .decoder import PtsWindow, PyAVVideo
from .frames import JpegFrames

Source = Union[PyAVVideo, JpegFrames]
# What a dataset asks a source for: frame indices, or (Kinetics, as the original) a pts window.
Selection = Union[np.ndarray, PtsWindow]


def read_frames(source: Source, selection: Selection) -> torch.Tensor:
    """The frames ``selection`` names in ``source`` as uint8 T x H x W x 3 RGB."""
    return source.get_window(selection) if isinstance(selection, PtsWindow) else source.get_frames(selection)


def read_clips(source: Source, selections: Sequence[Selection]) -> list[torch.Tensor]:
    """The frames of each of ``selections`` (as ``read_frames`` gives each), overlapping ones read
    together (``overlapping_groups``)."""
    clips: list[torch.Tensor] = [torch.empty(0)] * len(selections)
    for group in overlapping_groups([_span(selection) for selection in selections]):
        chosen = [selections[i] for i in group]
        if isinstance(chosen[0], PtsWindow):
            frames = source.get_windows(chosen)
        else:
            indices = [np.asarray(selection, dtype=np.int64) for selection in chosen]
            frames = torch.split(source.get_frames(np.concatenate(indices)), [len(i) for i in indices])
        for i, clip in zip(group, frames):
            clips[i] = clip
    return clips


def overlapping_groups(spans: Sequence[tuple[int, int, int]]) -> list[list[int]]:
    """The positions of ``spans`` (``(kind, low, high)``, inclusive) in groups of one kind whose
    spans chain into one overlapping range, each group sorted by ``low``."""
    groups: list[list[int]] = []
    kind, high = None, 0
    for i in sorted(range(len(spans)), key=lambda i: spans[i]):
        if spans[i][0] != kind or spans[i][1] > high:
            groups.append([])
            kind, high = spans[i][0], spans[i][2]
        groups[-1].append(i)
        high = max(high, spans[i][2])
    return groups


def _span(selection: Selection) -> tuple[int, int, int]:
    """What a selection reads: its kind (0 frame indices, 1 a pts window, 2 a window over the
    frames from pts 0 on) and its inclusive range (indices, pts, list positions)."""
    if isinstance(selection, PtsWindow) and selection.first is not None:
        return 1, selection.first, selection.last
    kind, indices = (2, selection.positions) if isinstance(selection, PtsWindow) else (0, selection)
    indices = np.asarray(indices)
    return kind, int(indices.min()), int(indices.max())
