"""``benchmark keyframes``: what tools/resize_videos.py's keyframe interval costs and saves, to
choose its default. For each interval, real footage re-encoded by the tool's own ``resize_video``
(its x264 options, a short side of 320, as ``benchmark data`` writes it), and a row of the files'
size and of the Kinetics config's training clips read in this process on one core: clips/s,
ms, packets and frames decoded per clip. A first row does the same for the footage as downloaded.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any, Optional

import torch

from vov3d.datasets import build_dataset
from vov3d.datasets.prepare import RANDOM_ACCESS_X264

from .common import markdown_table
from .data import Timing, dataset_cfg, in_process, report, train_items
from .data_inputs import make_inputs

COLUMNS = [
    ("keyframes", "keyframes"),
    ("megabytes", "MB"),
    ("clips_per_s_per_core", "clips/s/core"),
    ("ms_per_clip", "ms/clip"),
    ("packets_per_clip", "packets/clip"),
    ("frames_per_clip", "frames/clip"),
    ("load", "load"),
]


@dataclass(frozen=True)
class KeyframeSettings(Timing):
    """What ``run`` measures: the real videos (``sources``), the keyframe intervals in seconds, the
    folder the encodings are written to (and read from on a rerun), the Kinetics config and its
    overrides, the videos its CSVs list (the sources in turn) and the clips per timed repeat."""

    sources: list[str]
    seconds: list[float]
    folder: str
    cfg: str
    opts: list[str]
    videos: int
    clips: int


def encodings(seconds: list[float]) -> list[tuple[str, str, Optional[tuple[float, str]]]]:
    """(row label, folder name, ``make_inputs``'s encoding): the sources as downloaded, then the
    tool's encoding with each keyframe interval."""
    tool = [(f"every {s:g} s", f"every_{s:g}s", (s, RANDOM_ACCESS_X264)) for s in seconds]
    return [("as downloaded", "downloaded", None), *tool]


def megabytes(folder: str) -> float:
    """The size of the files in ``folder``, in MB (10^6 bytes)."""
    return sum(entry.stat().st_size for entry in os.scandir(folder) if entry.is_file()) / 1e6


def run(settings: KeyframeSettings) -> dict[str, Any]:
    """A row per encoding (see ``encodings``), written into ``settings.folder`` unless there."""
    torch.set_num_threads(1)  # a loader worker's setting: the figures are per core
    print(markdown_table([], COLUMNS), flush=True)
    rows: list[dict[str, Any]] = []
    for label, name, encoding in encodings(settings.seconds):
        inputs = os.path.join(settings.folder, name)
        make_inputs(inputs, settings.videos, encoding=encoding, sources=settings.sources)
        folder = os.path.join(inputs, "kinetics")
        cfg = dataset_cfg(settings.cfg, settings.opts, folder, folder)
        train = build_dataset(cfg, "train")
        measured = in_process(train, train_items(train, settings.clips), cfg.RNG_SEED, settings)
        row = {"keyframes": label, "megabytes": megabytes(os.path.join(folder, "videos")), **measured}
        report(rows, row, COLUMNS)
    return {"settings": asdict(settings), "rows": rows, "table": markdown_table(rows, COLUMNS)}
