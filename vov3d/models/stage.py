"""The residual block wrapper and the stage builder that X3D and VoV3D both use.

A network differs only in the transform (``branch2``) its blocks apply: the X3D bottleneck or the
T-OSA block. The stage builder takes a factory for it, so the stage loop is written once.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable

import torch
import torch.nn as nn

from .layers import NormFactory

# (dim_in, dim_out, stride, block index in the stage) -> the block's transform. A transform
# ends with a norm layer named ``c_bn``, which zero-init-final-BN sets to zero.
TransformFactory = Callable[[int, int, int, int], nn.Module]


class ResBlock(nn.Module):
    """``out = ReLU(transform(x) + shortcut(x))``.

    The shortcut is a strided 1x1x1 conv + norm (``branch1``, ``branch1_bn``) when the width
    changes or the block strides, the identity otherwise. Strides are spatial only.
    """

    def __init__(
        self, dim_in: int, dim_out: int, stride: int, transform: nn.Module, norm: NormFactory = nn.BatchNorm3d
    ) -> None:
        super().__init__()
        self.branch1: nn.Module | None = None
        if dim_in != dim_out or stride != 1:
            self.branch1 = nn.Conv3d(dim_in, dim_out, 1, stride=(1, stride, stride), bias=False)
            self.branch1_bn = norm(dim_out)
        self.branch2 = transform
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.branch1 is None else self.branch1_bn(self.branch1(x))
        return self.relu(self.branch2(x) + shortcut)


def make_stage(
    dim_in: int,
    dim_out: int,
    depth: int,
    stride: int,
    transform: TransformFactory,
    norm: NormFactory = nn.BatchNorm3d,
) -> nn.Sequential:
    """``depth`` residual blocks; only the first one strides and changes the width.

    Blocks are named ``pathway0_res{i}``, PySlowFast's names, so published checkpoints load as is.
    """
    blocks = OrderedDict()
    for i in range(depth):
        block_in, block_stride = (dim_in, stride) if i == 0 else (dim_out, 1)
        blocks[f"pathway0_res{i}"] = ResBlock(
            block_in, dim_out, block_stride, transform(block_in, dim_out, block_stride, i), norm
        )
    return nn.Sequential(blocks)
