"""The X3D head, shared by X3D and VoV3D: 1x1x1 conv, pooling, 1x1x1 conv, classifier."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .layers import NormFactory

# Stem and the four stages each halve height and width.
SPATIAL_STRIDE = 32


def head_pool_size(num_frames: int, crop_size: int) -> tuple[int, int, int]:
    """The pooling window: the whole final map of a training clip (time is never strided)."""
    side = math.ceil(crop_size / SPATIAL_STRIDE)
    return (num_frames, side, side)


class Head(nn.Module):
    """Classify a feature map; fully convolutional, so larger test crops work.

    The pooling window covers a training clip's final map with stride 1; a larger test clip
    leaves several positions. Training returns logits averaged over positions; evaluation
    returns class probabilities: softmax at every position, then their average. A clip smaller
    than the window is pooled over all it has instead of failing.
    """

    def __init__(
        self,
        dim_in: int,
        dim_inner: int,
        dim_out: int,
        num_classes: int,
        pool_size: tuple[int, int, int],
        dropout_rate: float = 0.0,
        bn_lin5: bool = False,
        norm: NormFactory = nn.BatchNorm3d,
    ) -> None:
        super().__init__()
        self.pool_size = pool_size
        self.conv_5 = nn.Conv3d(dim_in, dim_inner, 1, bias=False)
        self.conv_5_bn = norm(dim_inner)
        self.conv_5_relu = nn.ReLU(inplace=True)
        self.lin_5 = nn.Conv3d(dim_inner, dim_out, 1, bias=False)
        self.lin_5_bn = norm(dim_out) if bn_lin5 else nn.Identity()
        self.lin_5_relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout_rate)
        self.projection = nn.Linear(dim_out, num_classes, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_5_relu(self.conv_5_bn(self.conv_5(x)))
        kernel = [min(k, size) for k, size in zip(self.pool_size, x.shape[2:])]
        x = F.avg_pool3d(x, kernel, stride=1)
        x = self.lin_5_relu(self.lin_5_bn(self.lin_5(x)))
        x = self.projection(self.dropout(x.permute(0, 2, 3, 4, 1)))  # (N, T, H, W, classes)
        if not self.training:
            x = x.softmax(dim=-1)
        return x.mean(dim=(1, 2, 3))
