"""Kinetics (and any folder of videos listed as ``path label`` lines), as PySlowFast lays it out."""

from __future__ import annotations

import os
from typing import Any, Optional

import numpy as np

from vov3d.config import CfgNode, cfg_error

from .annotations import read_kinetics_csv
from .build import DATASET_REGISTRY
from .clip_dataset import ClipDataset, Selection, Source
from .decoder import PtsWindow
from .sampler import ClipSpec
from .sampling import kinetics_indices, kinetics_window

SPLIT_FILES = {"train": "train.csv", "val": "val.csv", "test": "test.csv"}


@DATASET_REGISTRY.register("kinetics")
class Kinetics(ClipDataset):
    """``{PATH_TO_DATA_DIR}/{train,val,test}.csv``: one ``path label`` line per video; paths are
    joined to ``PATH_PREFIX``. Clips cover ``num_frames * sampling_rate`` frames at ``target_fps``,
    picked by timestamp as the original (see ``kinetics_window``), or by index with
    ``offset_sampling`` (see ``kinetics_indices``); test views are evenly spaced clips, the val
    split takes the middle clip."""

    def __init__(
        self,
        paths: list[str],
        labels: list[int],
        split: str,
        sampling_rate: int,
        target_fps: float,
        offset_sampling: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(paths, labels, split, **kwargs)
        self.sampling_rate = sampling_rate
        self.target_fps = target_fps
        self.offset_sampling = offset_sampling

    @classmethod
    def view_arguments(cls, cfg: CfgNode, split: str) -> dict[str, Any]:
        return dict(
            super().view_arguments(cfg, split),
            sampling_rate=cfg.DATA.SAMPLING_RATE,
            target_fps=cfg.DATA.TARGET_FPS,
            offset_sampling=cfg.DATA.USE_OFFSET_SAMPLING,
        )

    def spec_attributes(self, spec: ClipSpec, rng: np.random.Generator) -> dict[str, Any]:
        """Also the clip's frame stride, drawn uniformly from the spec's range (PySlowFast's
        random sampling rate of the long cycle) before its position."""
        low, high = spec.sampling_rate
        rate = low if low == high else int(rng.integers(low, high + 1))
        return {**super().spec_attributes(spec, rng), "sampling_rate": rate}

    def window_frames(self, fps: float) -> Optional[int]:
        """A clip's frames at ``fps``: both rules pick positions up to ``span - 1`` frames after the start."""
        if self.offset_sampling:
            span = (self.num_frames - 1) * self.sampling_rate * fps / self.target_fps + 1
        else:  # kinetics_window's clip_size, in its order of operations
            span = self.sampling_rate * self.num_frames / self.target_fps * fps
        return max(int(span), 1)

    @classmethod
    def split_videos(cls, cfg: CfgNode, split: str) -> dict[str, Any]:
        csv = os.path.join(cfg.DATA.PATH_TO_DATA_DIR, SPLIT_FILES[split])
        if not os.path.isfile(csv):
            raise cfg_error(
                cfg, "DATA.PATH_TO_DATA_DIR", f"{csv} not found; Kinetics needs train.csv, val.csv, test.csv"
            )
        paths, labels = read_kinetics_csv(
            csv, cfg.DATA.PATH_PREFIX, cfg.DATA.PATH_LABEL_SEPARATOR, cfg.MODEL.NUM_CLASSES
        )
        return dict(paths=paths, labels=labels)

    def select_frames(self, source: Source, view: Optional[int], rng: np.random.Generator) -> Selection:
        num_views = self.num_temporal_views
        if self.split == "val":  # the middle clip, reproducibly, where the original's val draws one at random:
            view, num_views = (0, 1) if self.offset_sampling else (1, 2)  # the start delta / 2 of either rule
        clip = (self.num_frames, self.sampling_rate, self.target_fps)
        if self.offset_sampling:
            return kinetics_indices(
                source.num_frames, source.fps, *clip, view=view, num_views=num_views, rng=rng, offset_sampling=True
            )
        ticks = source.pts_per_frame
        if ticks is None:  # no duration in the header: as the original, the rule over every frame from pts 0 on
            count = len(source.timestamps_from_zero())
            return PtsWindow(None, None, kinetics_indices(count, source.fps, *clip, view, num_views, rng))
        window = kinetics_window(source.num_frames, source.fps, *clip, view, num_views, rng)
        origin = source.window_origin
        return PtsWindow(origin + int(window.start * ticks), origin + int(window.end * ticks), window.positions)
