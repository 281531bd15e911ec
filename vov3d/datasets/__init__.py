"""Datasets: Kinetics (video files), Something-Something V1 / V2 (frame folders or webm)."""

from . import folder, kinetics, ssv  # noqa: F401  (registers the datasets)
from .annotations import AnnotationError
from .build import (
    DATASET_REGISTRY,
    build_dataset,
    build_loader,
    check_splits,
    shuffle_loader,
    skip_batches,
    train_sampler,
)
from .clip_dataset import TooManyBrokenVideosError
from .decoder import VideoDecodeError

__all__ = [
    "DATASET_REGISTRY",
    "AnnotationError",
    "TooManyBrokenVideosError",
    "VideoDecodeError",
    "build_dataset",
    "build_loader",
    "check_splits",
    "shuffle_loader",
    "skip_batches",
    "train_sampler",
]
