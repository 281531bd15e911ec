"""The Temporal One-Shot Aggregation (T-OSA) block of VoV3D (Lee et al., arXiv 2012.00317).

A chain of D(2+1)D units whose temporal receptive fields grow along the chain; concatenating
all their outputs at once gives the block short- and long-range temporal features together.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .d2plus1d import D2Plus1DUnit
from .layers import NormFactory


class TOSATransform(nn.Module):
    """``num_units`` chained D(2+1)D units (``layers``), concatenated and aggregated (``c``, ``c_bn``).

    Unit 0 takes the block input (and the stride); unit j > 0 takes unit j-1's output. The
    concatenation holds every unit output, plus the block input when the block does not stride
    (a strided block's input has another resolution): ``num_units * dim_inner / 2 (+ dim_in)``.
    ``depthwise``: how the units run their depthwise convs (see ``d2plus1d.DEPTHWISE_IMPLS``).
    """

    def __init__(
        self,
        dim_in: int,
        dim_out: int,
        dim_inner: int,
        stride: int,
        num_units: int,
        norm: NormFactory = nn.BatchNorm3d,
        depthwise: str = "auto",
    ) -> None:
        super().__init__()
        unit_out = dim_inner // 2
        self.concat_input = stride == 1
        self.layers = nn.ModuleList(
            D2Plus1DUnit(
                dim_in if j == 0 else unit_out, dim_inner, stride if j == 0 else 1, j % 2 == 0, norm, depthwise
            )
            for j in range(num_units)
        )
        dim_concat = num_units * unit_out + (dim_in if self.concat_input else 0)
        self.c = nn.Conv3d(dim_concat, dim_out, 1, bias=False)
        self.c_bn = norm(dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x] if self.concat_input else []
        for unit in self.layers:
            x = unit(x)
            features.append(x)
        return self.c_bn(self.c(torch.cat(features, dim=1)))
