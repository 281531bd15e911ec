"""Run a trained model on any video files, the way the multi-view test runs it on a dataset.

Predictions go through the test split of TEST.DATASET built over the given files, so each video
gets exactly the views ``run_net``'s test would give it (Kinetics clips or Something-Something
segments, the test resize and crops), and the views are combined by the test's ViewAggregator.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

from vov3d.checkpoint import CLASSIFIER, CheckpointError, load_checkpoint
from vov3d.config import CfgNode
from vov3d.datasets import DATASET_REGISTRY, VideoDecodeError
from vov3d.datasets.clip_dataset import ClipDataset
from vov3d.datasets.kinetics import Kinetics
from vov3d.engine.evaluate import ViewAggregator
from vov3d.engine.runtime import autocast, autocast_dtype, for_inference, prepare_model, to_input

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".ogv")


class DeviceError(ValueError):
    """The device asked for does not exist here."""


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--cfg`` and ``--checkpoint``, the two arguments every tool that loads a trained model takes."""
    parser.add_argument("--cfg", required=True, metavar="FILE", help="the YAML config the model was trained with")
    parser.add_argument(
        "--checkpoint",
        required=True,
        metavar="FILE",
        help="weights: a vov3d checkpoint or a published PySlowFast (.pyth) / VoV3D (.pth) one",
    )


def resolve_device(name: str) -> torch.device:
    """``auto`` is the GPU when there is one, else the CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"device {name!r} is not one of auto, cpu, cuda, cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {name} asked for, but torch sees no CUDA GPU; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise DeviceError(f"device {name!r} is not one of auto, cpu, cuda, cuda:N")
    return device


def load_trained_model(cfg: CfgNode, checkpoint: str, device: torch.device) -> nn.Module:
    """The network of ``cfg`` with the weights of ``checkpoint`` (ours, PySlowFast's or VoV3D's),
    in eval mode on ``device`` (BN folded when TEST.FOLD_BN).

    Unlike fine-tuning, inference needs the trained classifier: a checkpoint with another class
    count is an error here instead of a re-initialised classifier giving random answers.
    """
    model = prepare_model(cfg, device, train=False)
    state = load_checkpoint(checkpoint, model)["model_state"]
    rows = [v.shape[0] for k, v in state.items() if k.endswith(CLASSIFIER + "weight")]
    if rows and rows[0] != cfg.MODEL.NUM_CLASSES:
        raise CheckpointError(
            f"checkpoint {checkpoint} classifies {rows[0]} classes but MODEL.NUM_CLASSES is "
            f"{cfg.MODEL.NUM_CLASSES}: pass MODEL.NUM_CLASSES {rows[0]} (or use the config it was trained with)"
        )
    return for_inference(model, cfg)


def find_videos(inputs: Sequence[str]) -> list[str]:
    """Files as given; a folder becomes the video files under it (by suffix, sorted, recursive).

    A folder with no video in it is kept as it is, so that it is reported like a broken file
    rather than silently dropped.
    """
    videos = []
    for path in inputs:
        if not os.path.isdir(path):
            videos.append(path)
            continue
        found = sorted(
            os.path.join(root, name)
            for root, folders, names in os.walk(path)
            for name in names
            if name.lower().endswith(VIDEO_SUFFIXES) and not name.startswith(".")
        )
        videos.extend(found or [path])
    return videos


def view_dataset(cfg: CfgNode, paths: Sequence[str]) -> ClipDataset:
    """The test split of TEST.DATASET over ``paths`` (labels unknown, so 0).

    Broken files always raise here (TEST.SKIP_BROKEN_VIDEOS would turn them into blank views),
    so that the caller can report them.
    """
    cls = DATASET_REGISTRY.get(cfg.TEST.DATASET)
    kwargs = dict(ClipDataset.from_cfg(cfg, "test"), skip_broken=False)
    if issubclass(cls, Kinetics):
        kwargs.update(sampling_rate=cfg.DATA.SAMPLING_RATE, target_fps=cfg.DATA.TARGET_FPS)
    return cls(paths=list(paths), labels=[0] * len(paths), **kwargs)


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
        if os.path.isdir(path):
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
    DATA.ENSEMBLE_METHOD; ``workers`` processes decode the next videos meanwhile."""
    dataset = view_dataset(cfg, paths)
    count = dataset.num_views
    batch = batch_size or count
    dtype = autocast_dtype(cfg, device)
    loader = DataLoader(VideoViews(dataset), batch_size=None, num_workers=workers)
    for video, clips, error in loader:
        if clips is None:
            yield Prediction(paths[video], error=error)
            continue
        aggregator = ViewAggregator(1, count, cfg.MODEL.NUM_CLASSES, cfg.DATA.ENSEMBLE_METHOD)
        for start in range(0, count, batch):
            with autocast(device, dtype):
                probs = model(to_input(clips[start : start + batch], device, cfg)).float().cpu()
            items = torch.arange(start, start + len(probs))
            aggregator.update(probs, torch.zeros_like(items), torch.zeros_like(items), items)
        views = int(aggregator.views[0])
        scores = aggregator.scores[0] / views if aggregator.method == "sum" else aggregator.scores[0]
        yield Prediction(paths[video], scores, views)
