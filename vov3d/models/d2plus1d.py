"""The D(2+1)D unit of VoV3D (Lee et al., arXiv 2012.00317): a depthwise 3x3x3 conv factorised
into a depthwise spatial 1x3x3 conv and a depthwise temporal 3x1x1 conv."""

from __future__ import annotations

import torch
import torch.nn as nn

from .layers import SE, NormFactory, Swish


class D2Plus1DUnit(nn.Module):
    """1x1x1 expand -> dw 1x3x3 (strided) -> dw 3x1x1 -> SE -> Swish -> 1x1x1 reduce, then ReLU.

    The output has ``dim_inner // 2`` channels. The unit adds its input before the ReLU only
    when the shapes allow it (``dim_in == dim_inner // 2`` and stride 1); the ReLU is always there.
    """

    def __init__(
        self, dim_in: int, dim_inner: int, stride: int, use_se: bool, norm: NormFactory = nn.BatchNorm3d
    ) -> None:
        super().__init__()
        dim_out = dim_inner // 2
        self.residual = dim_in == dim_out and stride == 1
        self.a = nn.Sequential(
            nn.Conv3d(dim_in, dim_inner, 1, bias=False), norm(dim_inner), nn.ReLU(inplace=True)
        )
        self.b1 = nn.Conv3d(
            dim_inner,
            dim_inner,
            (1, 3, 3),
            stride=(1, stride, stride),
            padding=(0, 1, 1),
            groups=dim_inner,
            bias=False,
        )
        self.b2 = nn.Conv3d(dim_inner, dim_inner, (3, 1, 1), padding=(1, 0, 0), groups=dim_inner, bias=False)
        self.b_bn = norm(dim_inner)
        self.se = SE(dim_inner) if use_se else nn.Identity()
        self.b_swish = Swish()
        self.c = nn.Sequential(nn.Conv3d(dim_inner, dim_out, 1, bias=False), norm(dim_out))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.a(x)
        out = self.b_swish(self.se(self.b_bn(self.b2(self.b1(out)))))
        out = self.c(out)
        return self.relu(out + x if self.residual else out)
