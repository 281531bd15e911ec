"""Run a trained model on any video files, the way the multi-view test runs it on a dataset.

Predictions go through the test split of TEST.DATASET built over the given files, so each video
gets exactly the views ``run_net``'s test would give it (Kinetics clips or Something-Something
segments, the test resize and crops), and the views are combined by the test's ViewAggregator.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

from vov3d.config import CfgNode
from vov3d.datasets import VideoDecodeError, build_dataset
from vov3d.datasets.clip_dataset import ClipDataset
from vov3d.datasets.video_files import VIDEO_SUFFIXES, is_video_file
from vov3d.engine.evaluate import ViewAggregator
from vov3d.engine.runtime import Execution


def find_videos(inputs: Sequence[str]) -> list[str]:
    """Files as given; a folder becomes the video files under it (by suffix, sorted, recursive).

    A folder with no video in it is kept as it is: a Something-Something dataset reads it as one
    video's JPEG frames, the others report it like a broken file rather than silently dropping it.
    """
    videos = []
    for path in inputs:
        if not os.path.isdir(path):
            videos.append(path)
            continue
        found = sorted(
            os.path.join(root, name) for root, folders, names in os.walk(path) for name in names if is_video_file(name)
        )
        videos.extend(found or [path])
    return videos


def view_dataset(cfg: CfgNode, paths: Sequence[str]) -> ClipDataset:
    """The test's views of ``paths``: the test split of TEST.DATASET built over these files
    (labels unknown, so 0), so that nothing of how the test makes its views is derived here.

    Broken files always raise here (TEST.SKIP_BROKEN_VIDEOS would turn them into blank views),
    so that the caller can report them.
    """
    return build_dataset(cfg, "test", paths=list(paths), labels=[0] * len(paths), skip_broken=False)


class VideoViews(Dataset):
    """Item ``i``: ``(i, all test views of video i stacked, None)``, or ``(i, None, reason)`` when
    the video cannot be read, so that a DataLoader can decode the next videos in worker processes
    and the caller still learns why one failed."""

    def __init__(self, views: ClipDataset) -> None:
        self.views = views

    def __len__(self) -> int:
        return self.views.num_videos

    def __getitem__(self, video: int) -> tuple[int, Optional[torch.Tensor], Optional[str]]:
        count, path = self.views.num_views, self.views.paths[video]
        if os.path.isdir(path) and not self.views.reads_frame_folders:
            return video, None, f"the folder holds no video files ({', '.join(VIDEO_SUFFIXES)})"
        try:
            clips = torch.stack([self.views[video * count + view][0] for view in range(count)])
        except VideoDecodeError as e:  # the message starts with the path, which the caller has
            return video, None, str(e).removeprefix(f"{path}: ")
        return video, clips, None


@dataclass
class Prediction:
    """One video's combined class scores over ``views`` views, or why it could not be read."""

    video: str
    scores: Optional[torch.Tensor] = None  # (classes,): mean probability (sum) or max over views
    views: int = 0
    error: Optional[str] = None

    def top(self, k: int) -> list[tuple[int, float]]:
        """The ``k`` best (class index, score) pairs, best first."""
        assert self.scores is not None, "a failed video has no scores"
        values, indices = self.scores.topk(min(k, self.scores.numel()))
        return list(zip(indices.tolist(), values.tolist()))


@torch.no_grad()
def predict_videos(
    model: nn.Module,
    cfg: CfgNode,
    paths: Sequence[str],
    device: torch.device,
    batch_size: Optional[int] = None,
    workers: int = 0,
) -> Iterator[Prediction]:
    """Yield one Prediction per path, in order. The views of a video run through the model in
    batches of ``batch_size`` clips (all of them at once when None) and are combined by
    DATA.ENSEMBLE_METHOD; ``workers`` processes decode the next videos meanwhile. Mixed precision
    and the memory format are the test's (``Execution`` on ``device``)."""
    dataset = view_dataset(cfg, paths)
    count = dataset.num_views
    batch = batch_size or count
    execution = Execution.from_cfg(cfg, device)
    loader = DataLoader(VideoViews(dataset), batch_size=None, num_workers=workers)
    for video, clips, error in loader:
        if clips is None:
            yield Prediction(paths[video], error=error)
            continue
        scores = score_video_views(model, clips, execution, cfg.MODEL.NUM_CLASSES, cfg.DATA.ENSEMBLE_METHOD, batch)
        yield Prediction(paths[video], scores, count)


def score_video_views(
    model: nn.Module, clips: torch.Tensor, execution: Execution, num_classes: int, method: str, batch: int
) -> torch.Tensor:
    """The class scores of one video from its stacked uint8 views (V x T x H x W x 3), run in
    batches of ``batch`` clips and combined as the test combines them (``method``: mean
    probability for sum, or max)."""
    count = len(clips)
    aggregator = ViewAggregator(1, count, num_classes, method)
    for start in range(0, count, batch):
        with execution.autocast():
            probs = model(execution.to_input(clips[start : start + batch])).float().cpu()
        items = torch.arange(start, start + len(probs))
        aggregator.update(probs, torch.zeros_like(items), torch.zeros_like(items), items)
    return aggregator.scores[0] / count if aggregator.method == "sum" else aggregator.scores[0]
