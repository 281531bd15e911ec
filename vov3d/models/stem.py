"""The stem shared by X3D and VoV3D: a spatial 1x3x3 conv, then a depthwise temporal 5x1x1 conv."""

from __future__ import annotations

import torch
import torch.nn as nn

from .layers import DepthSafeConv3d, NormFactory


class Stem(nn.Module):
    """Halves height and width, keeps time; the attribute names are the legacy checkpoint names."""

    def __init__(self, dim_in: int, dim_out: int, norm: NormFactory = nn.BatchNorm3d) -> None:
        super().__init__()
        self.conv_xy = nn.Conv3d(dim_in, dim_out, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), bias=False)
        self.conv = DepthSafeConv3d(dim_out, dim_out, (5, 1, 1), padding=(2, 0, 0), groups=dim_out, bias=False)
        self.bn = norm(dim_out)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(self.conv_xy(x))))
