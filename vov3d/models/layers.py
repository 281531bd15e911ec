"""Small layers shared by X3D and VoV3D: Swish, squeeze-excitation, width rounding, norm layers."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn

# Makes a norm layer for a number of channels (timm's habit: the norm is an argument of blocks).
NormFactory = Callable[[int], nn.Module]

# BN.NORM_TYPE -> norm layer. sync_batchnorm builds plain BatchNorm3d: the engine converts it
# with torch.nn.SyncBatchNorm.convert_sync_batchnorm once the process group exists.
NORM_LAYERS: dict[str, NormFactory] = {
    "batchnorm": nn.BatchNorm3d,
    "sync_batchnorm": nn.BatchNorm3d,
}

# Swish(x) = x * sigmoid(x) is torch's SiLU, which has a fused kernel.
Swish = nn.SiLU


def round_width(width: float, divisor: int = 8, min_width: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor``, never more than 10% below ``width``.

    X3D sizes every stage (and every SE bottleneck) with this rule, so it must match exactly.
    """
    rounded = max(min_width, int(width + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * width:
        rounded += divisor
    return int(rounded)


class SE(nn.Module):
    """Squeeze-excitation: rescale channels by a gate computed from their global average."""

    def __init__(self, channels: int, ratio: float = 0.0625) -> None:
        super().__init__()
        hidden = round_width(channels * ratio)
        self.avg_pool = nn.AdaptiveAvgPool3d(1)
        self.fc1 = nn.Conv3d(channels, hidden, 1, bias=True)
        self.fc1_act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv3d(hidden, channels, 1, bias=True)
        self.fc2_sig = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.fc2_sig(self.fc2(self.fc1_act(self.fc1(self.avg_pool(x)))))
        return x * gate
