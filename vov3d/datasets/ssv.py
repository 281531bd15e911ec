"""Something-Something V1 and V2: one base for the frame folders and segment sampling; the two
versions differ only in how their annotation files are parsed.

SSv2 reads JPEG frames when the frame list (``train.csv`` / ``val.csv``) is in PATH_TO_DATA_DIR,
and otherwise the original ``{PATH_PREFIX}/{id}.webm`` videos, so no frame extraction is needed.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Optional

import numpy as np

from vov3d.config import CfgNode, cfg_error

from .annotations import (
    AnnotationError,
    read_frame_list,
    read_ssv1_labels,
    read_ssv1_split,
    read_ssv2_labels,
    read_ssv2_split,
)
from .build import DATASET_REGISTRY
from .clip_dataset import ClipDataset, Source
from .decoder import decode_error
from .frames import JpegFrames, frame_folder
from .sampling import segment_indices
from .transforms import ClipTransform

logger = logging.getLogger(__name__)


# The label files each dataset reads from DATA.PATH_TO_DATA_DIR.
SSV1_LABELS = "something-something-v1-labels.csv"
SSV2_LABELS = "something-something-v2-labels.json"
JPEG_SUFFIXES = (".jpg", ".jpeg")
# The mode lines logged so far: a run builds a split more than once (the test split before
# training, to find a missing file early, and again to test), and says its mode once.
_logged_modes: set[str] = set()


def _log_mode(line: str) -> None:
    if line not in _logged_modes:
        _logged_modes.add(line)
        logger.info(line)


def _annotation_file(cfg: CfgNode, name: str) -> str:
    path = os.path.join(cfg.DATA.PATH_TO_DATA_DIR, name)
    if not os.path.isfile(path):
        raise cfg_error(cfg, "DATA.PATH_TO_DATA_DIR", f"{path} not found (see DATA.md for the layout)")
    return path


def jpeg_names(folder: str) -> list[str]:
    """The names of the JPEG files of a frame folder in name order (the order of SSv1's
    ``00001.jpg`` and of tools/extract_frames.py's names): the frames of one video, as
    tools/make_ssv1_lists.py lists them and as a folder given by its path is read."""
    return sorted(name for name in os.listdir(folder) if name.lower().endswith(JPEG_SUFFIXES))


def folder_frames(folder: str) -> list[str]:
    """The JPEG files of a frame folder (``jpeg_names``) as paths; raises VideoDecodeError when
    there are none."""
    names = jpeg_names(folder)
    if not names:
        raise decode_error(folder, f"the folder holds no JPEG frames ({', '.join(JPEG_SUFFIXES)})")
    return [os.path.join(folder, name) for name in names]


class SomethingSomething(ClipDataset):
    """Videos as JPEG frame lists (``frame_paths``) or, when that is None, as video files or
    frame folders (``paths``); ``num_frames`` segments, one frame from each."""

    reads_frame_folders = True

    def __init__(
        self,
        paths: list[str],
        labels: list[int],
        split: str,
        frame_paths: Optional[list[list[str]]] = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(paths, labels, split, **kwargs)
        if frame_paths is not None and len(frame_paths) != len(paths):
            raise ValueError(f"{len(paths)} videos but {len(frame_paths)} frame lists")
        self.frame_paths = frame_paths

    @classmethod
    def view_arguments(cls, cfg: CfgNode, split: str) -> dict[str, Any]:
        """As the original SS loader, test clips are scaled to DATA.TEST_CROP_SIZE and take crop
        ``view % NUM_SPATIAL_CROPS`` of left/centre/right: with one crop, the left (top) one."""
        kwargs = super().view_arguments(cfg, split)
        if split == "test":
            size = cfg.DATA.TEST_CROP_SIZE
            kwargs["transform"] = ClipTransform(size, (size, size), False, num_crops=3)
        return kwargs

    @staticmethod
    def split_name(split: str) -> str:
        """Validation and test both use the validation split."""
        return "train" if split == "train" else "validation"

    @classmethod
    def sources(cls, cfg: CfgNode, split: str, ids: list[str], split_file: str, videos: bool) -> dict[str, Any]:
        """``paths`` and ``frame_paths`` of the videos ``ids``: from the frame list when it exists,
        else (when ``videos``) the files ``{PATH_PREFIX}/{id}.webm``. The log names the mode."""
        frame_list = os.path.join(cfg.DATA.PATH_TO_DATA_DIR, "train.csv" if split == "train" else "val.csv")
        if os.path.isfile(frame_list):
            frames = read_frame_list(frame_list, cfg.DATA.PATH_PREFIX)
            missing = [video for video in ids if video not in frames]
            if missing:
                raise AnnotationError(
                    f"{frame_list}: no frames for {len(missing)} videos of {split_file}, e.g. {missing[:3]}"
                )
            frame_paths = [frames[video] for video in ids]
            _log_mode(f"{split} split: frames mode, the JPEG frames of the frame list {frame_list}")
            return dict(paths=[frame_folder(f) for f in frame_paths], frame_paths=frame_paths)
        if not videos:
            raise cfg_error(cfg, "DATA.PATH_TO_DATA_DIR", f"{frame_list} (the frame list) not found")
        paths = [os.path.join(cfg.DATA.PATH_PREFIX, f"{video}.webm") for video in ids]
        if not os.path.isfile(paths[0]):
            raise cfg_error(
                cfg,
                "DATA.PATH_PREFIX",
                f"neither the frame list {frame_list} nor the video {paths[0]} exists: extract frames "
                "with tools/extract_frames.py, or point DATA.PATH_PREFIX at the folder of .webm videos",
            )
        _log_mode(f"{split} split: video mode (no frame list {frame_list}), the .webm videos in {cfg.DATA.PATH_PREFIX}")
        return dict(paths=paths, frame_paths=None)

    def open_video(self, video_index: int) -> Source:
        path = self.paths[video_index]
        if self.frame_paths is not None:
            return JpegFrames(self.frame_paths[video_index], path)
        if os.path.isdir(path):  # a frame folder given by its path (predict): no frame list names its files
            return JpegFrames(folder_frames(path), path)
        return super().open_video(video_index)

    def sample_frames(
        self, video_frames: int, video_fps: Optional[float], view: Optional[int], rng: np.random.Generator
    ) -> np.ndarray:
        return segment_indices(video_frames, self.num_frames, view, self.num_temporal_views, rng)


@DATASET_REGISTRY.register("ssv2")
class SomethingSomethingV2(SomethingSomething):
    """``something-something-v2-labels.json`` and ``-{train,validation}.json``; frames or .webm."""

    @classmethod
    def split_videos(cls, cfg: CfgNode, split: str) -> dict[str, Any]:
        label_ids = read_ssv2_labels(_annotation_file(cfg, SSV2_LABELS))
        split_file = _annotation_file(cfg, f"something-something-v2-{cls.split_name(split)}.json")
        ids, labels = read_ssv2_split(split_file, label_ids)
        return dict(labels=labels, **cls.sources(cfg, split, ids, split_file, videos=True))


@DATASET_REGISTRY.register("ssv1")
class SomethingSomethingV1(SomethingSomething):
    """``something-something-v1-labels.csv`` and ``-{train,validation}.csv``; JPEG frames only."""

    @classmethod
    def split_videos(cls, cfg: CfgNode, split: str) -> dict[str, Any]:
        label_ids = read_ssv1_labels(_annotation_file(cfg, SSV1_LABELS))
        split_file = _annotation_file(cfg, f"something-something-v1-{cls.split_name(split)}.csv")
        ids, labels = read_ssv1_split(split_file, label_ids)
        return dict(labels=labels, **cls.sources(cfg, split, ids, split_file, videos=False))
