"""X3D: Expanding Architectures for Efficient Video Recognition (Feichtenhofer, CVPR 2020).

Sizes XS/S/M/L are configs (configs/Kinetics/x3d/): XS, S and M are one network fed different
clips; L is deeper.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn

from vov3d.config import CfgNode, cfg_error

from .build import MODEL_REGISTRY
from .layers import SE, DepthSafeConv3d, NormFactory, Swish, round_width
from .network import VideoNet, common_kwargs
from .stage import TransformFactory

# Blocks per stage (res2..res5) before DEPTH_FACTOR scales them.
BASE_DEPTHS = (1, 2, 5, 3)


class X3DBottleneck(nn.Module):
    """1x1x1 expand -> depthwise 3x3x3 (strided) -> SE -> Swish -> 1x1x1 project (``branch2``)."""

    def __init__(
        self,
        dim_in: int,
        dim_out: int,
        dim_inner: int,
        stride: int,
        use_se: bool,
        channelwise: bool = True,
        norm: NormFactory = nn.BatchNorm3d,
    ) -> None:
        super().__init__()
        self.a = nn.Conv3d(dim_in, dim_inner, 1, bias=False)
        self.a_bn = norm(dim_inner)
        self.a_relu = nn.ReLU(inplace=True)
        self.b = DepthSafeConv3d(
            dim_inner,
            dim_inner,
            3,
            stride=(1, stride, stride),
            padding=1,
            groups=dim_inner if channelwise else 1,
            bias=False,
        )
        self.b_bn = norm(dim_inner)
        self.se = SE(dim_inner) if use_se else nn.Identity()
        self.b_relu = Swish()
        self.c = nn.Conv3d(dim_inner, dim_out, 1, bias=False)
        self.c_bn = norm(dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.a_relu(self.a_bn(self.a(x)))
        x = self.b_relu(self.se(self.b_bn(self.b(x))))
        return self.c_bn(self.c(x))


def bottleneck_factory(dim_inner: int, channelwise: bool, norm: NormFactory) -> TransformFactory:
    """X3D bottlenecks of one stage; SE on every other block (0, 2, 4, ...)."""

    def make(dim_in: int, dim_out: int, stride: int, index: int) -> nn.Module:
        return X3DBottleneck(dim_in, dim_out, dim_inner, stride, index % 2 == 0, channelwise, norm)

    return make


@MODEL_REGISTRY.register()
class X3D(VideoNet):
    """X3D; widths and depths follow from the expansion factors as in the paper.

    ``common``: the arguments of ``VideoNet`` that both networks share (classes, clip, head).
    """

    def __init__(
        self,
        *,
        width_factor: float,
        depth_factor: float,
        bottleneck_factor: float,
        dim_c1: int = 12,
        scale_res2: bool = False,
        channelwise_3x3x3: bool = True,
        norm: NormFactory = nn.BatchNorm3d,
        **common: Any,
    ) -> None:
        base = round_width(dim_c1 * 2) if scale_res2 else dim_c1
        bases = [base]
        for _ in range(3):
            bases.append(round_width(bases[-1] * 2))
        widths = [round_width(b * width_factor) for b in bases]
        inners = [int(bottleneck_factor * w) for w in widths]
        super().__init__(
            stem_width=round_width(dim_c1 * width_factor),
            stage_widths=widths,
            stage_depths=[math.ceil(depth_factor * d) for d in BASE_DEPTHS],
            transforms=[bottleneck_factory(inner, channelwise_3x3x3, norm) for inner in inners],
            head_width=inners[-1],
            norm=norm,
            **common,
        )

    @classmethod
    def from_cfg(cls, cfg: CfgNode) -> dict[str, Any]:
        """Constructor arguments from the X3D.* keys; unusable values are ConfigErrors."""
        for key in ("X3D.WIDTH_FACTOR", "X3D.DEPTH_FACTOR", "X3D.BOTTLENECK_FACTOR", "X3D.DIM_C1"):
            if cfg.X3D[key.split(".")[1]] <= 0:
                raise cfg_error(cfg, key, "must be positive")
        return {
            "width_factor": cfg.X3D.WIDTH_FACTOR,
            "depth_factor": cfg.X3D.DEPTH_FACTOR,
            "bottleneck_factor": cfg.X3D.BOTTLENECK_FACTOR,
            "dim_c1": cfg.X3D.DIM_C1,
            "scale_res2": cfg.X3D.SCALE_RES2,
            "channelwise_3x3x3": cfg.X3D.CHANNELWISE_3x3x3,
            **common_kwargs(cfg),
        }
