"""Networks: X3D and VoV3D, registered by name in MODEL_REGISTRY."""

from . import vov3d, x3d  # noqa: F401  (registers the networks)
from .build import MODEL_REGISTRY, build_model
from .sub_batch_norm import (
    SubBatchNorm3d,
    aggregate_sub_batch_stats,
    convert_sub_batch_norm,
    load_split_statistics,
    set_sub_batch_splits,
    split_statistics,
)

__all__ = [
    "MODEL_REGISTRY",
    "SubBatchNorm3d",
    "aggregate_sub_batch_stats",
    "convert_sub_batch_norm",
    "set_sub_batch_splits",
    "build_model",
    "load_split_statistics",
    "split_statistics",
]
