"""Small layers shared by X3D and VoV3D: Swish, squeeze-excitation, width rounding, norm layers,
and the 3-D convolution that never runs a kernel deeper than its input's frames."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .sub_batch_norm import SubBatchNorm3d

# Makes a norm layer for a number of channels (timm's habit: the norm is an argument of blocks).
NormFactory = Callable[[int], nn.Module]

# BN.NORM_TYPE -> norm layer. sync_batchnorm builds plain BatchNorm3d: the engine converts it
# with torch.nn.SyncBatchNorm.convert_sync_batchnorm once the process group exists.
# sub_batchnorm also takes num_splits (BN.NUM_SPLITS).
NORM_LAYERS: dict[str, Callable[..., nn.Module]] = {
    "batchnorm": nn.BatchNorm3d,
    "sync_batchnorm": nn.BatchNorm3d,
    "sub_batchnorm": SubBatchNorm3d,
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


def pad_explicitly(
    x: torch.Tensor, padding: Sequence[int], dims: Sequence[int]
) -> tuple[torch.Tensor, tuple[int, ...]]:
    """``x`` zero-padded by ``padding[d]`` on both sides of each conv dim ``d`` in ``dims`` (0 is
    the first dim after the channels), and the padding left for the conv to do.

    A conv whose kernel is larger than its input along a dim is computed the same, but faster or
    more exactly, as a conv with no padding there on an explicitly padded input. The padded copy
    keeps the memory format (channels_last stays channels_last).
    """
    pad: list[int] = []
    for d in reversed(range(len(padding))):  # F.pad lists the last dim first
        pad += [padding[d]] * 2 if d in dims else [0, 0]
    left = tuple(0 if d in dims else p for d, p in enumerate(padding))
    return F.pad(x, pad), left


def depth_safe_conv3d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: Sequence[int] = (1, 1, 1),
    padding: Sequence[int] = (0, 0, 0),
    dilation: Sequence[int] = (1, 1, 1),
    groups: int = 1,
) -> torch.Tensor:
    """``F.conv3d`` with zero padding, but a kernel deeper (in time) than the input's frames runs
    on the input padded in time explicitly, so that the kernel always fits its input.

    oneDNN's bf16 weight gradient of a channels_last_3d conv is wrong when the kernel depth
    exceeds the input depth (PyTorch 2.14.1, oneDNN 3.12.0 on CPUs with AVX512-BF16: the stem's
    5x1x1 conv at 4 frames or fewer, NaN losses in 1 of 4 to 3 of 16 quick runs; issue 23). The
    result is the same; clips at least as deep as the kernel take the one conv call as before.
    """
    if x.shape[2] < dilation[0] * (weight.shape[2] - 1) + 1:
        x, padding = pad_explicitly(x, padding, dims=(0,))
    return F.conv3d(x, weight, bias, stride, padding, dilation, groups)


class DepthSafeConv3d(nn.Conv3d):
    """``nn.Conv3d`` (same arguments, parameters and state dict) that runs ``depth_safe_conv3d``:
    every conv with a temporal kernel is one, so no clip length meets the oneDNN bug."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.padding_mode != "zeros" or isinstance(self.padding, str):
            raise ValueError("DepthSafeConv3d pads with zeros by a number of frames and pixels per side")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return depth_safe_conv3d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
