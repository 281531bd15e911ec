"""VoV3D: Diverse Temporal Aggregation and Depthwise Spatiotemporal Factorization for Efficient
Video Classification (Lee, Kim, Yun, Moon; arXiv 2012.00317).

The X3D skeleton (stem, residual stages, head) with T-OSA blocks of D(2+1)D units. Sizes are
configs: VoV3D-M (DEPTH 31, INNER_CH 40) and VoV3D-L (DEPTH 70, INNER_CH 48).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch.nn as nn

from vov3d.config import CfgNode, cfg_error

from .build import MODEL_REGISTRY
from .d2plus1d import DEPTHWISE_IMPLS
from .layers import NormFactory
from .network import VideoNet, common_kwargs
from .stage import TransformFactory
from .tosa import TOSATransform

# VOV3D.DEPTH -> blocks per stage (res2..res5).
STAGE_DEPTHS = {31: (1, 2, 3, 2), 70: (1, 2, 5, 3)}
TRANS_FUNCS = ("t_osa_2plus1_transform",)


def tosa_factory(dim_inner: int, num_units: int, norm: NormFactory, depthwise: str) -> TransformFactory:
    """T-OSA blocks of one stage."""

    def make(dim_in: int, dim_out: int, stride: int, index: int) -> nn.Module:
        return TOSATransform(dim_in, dim_out, dim_inner, stride, num_units, norm, depthwise)

    return make


@MODEL_REGISTRY.register()
class VoV3D(VideoNet):
    """VoV3D; stage widths are multiples of ``inner_ch``, the stem has ``inner_ch / 2`` channels.

    ``common``: the arguments of ``VideoNet`` that both networks share (classes, clip, head).
    """

    def __init__(
        self,
        *,
        depth: int,
        inner_ch: int,
        num_conv: int = 5,
        inner_multiplier: Sequence[float] = (1, 2, 4, 8),
        out_multiplier: Sequence[float] = (0.5, 1, 2, 4),
        norm: NormFactory = nn.BatchNorm3d,
        depthwise: str = "auto",
        **common: Any,
    ) -> None:
        inners = [int(inner_ch * m) for m in inner_multiplier]
        super().__init__(
            stem_width=inner_ch // 2,
            stage_widths=[int(inner_ch * m) for m in out_multiplier],
            stage_depths=STAGE_DEPTHS[depth],
            transforms=[tosa_factory(inner, num_conv, norm, depthwise) for inner in inners],
            head_width=inners[-1],
            norm=norm,
            **common,
        )

    @classmethod
    def from_cfg(cls, cfg: CfgNode) -> dict[str, Any]:
        """Constructor arguments from the VOV3D.* keys; unusable values are ConfigErrors."""
        v = cfg.VOV3D
        if v.DEPTH not in STAGE_DEPTHS:
            raise cfg_error(cfg, "VOV3D.DEPTH", "must be 31 (VoV3D-M) or 70 (VoV3D-L)")
        if v.TRANS_FUNC not in TRANS_FUNCS:
            raise cfg_error(cfg, "VOV3D.TRANS_FUNC", f"must be {' or '.join(TRANS_FUNCS)}")
        if v.INNER_CH < 2 or v.INNER_CH % 2:
            raise cfg_error(cfg, "VOV3D.INNER_CH", "must be a positive even number (the stem has half of it)")
        if v.DEPTHWISE_IMPL not in DEPTHWISE_IMPLS:
            raise cfg_error(cfg, "VOV3D.DEPTHWISE_IMPL", f"must be one of {', '.join(DEPTHWISE_IMPLS)}")
        if v.NUM_CONV < 1:
            raise cfg_error(cfg, "VOV3D.NUM_CONV", "must be 1 or more")
        for key, need_even in (("INNER_MULTIPLIER", True), ("OUT_MULTIPLIER", False)):
            widths = [v.INNER_CH * m for m in v[key]]
            if len(widths) != 4 or any(w <= 0 or w != int(w) or (need_even and w % 2) for w in widths):
                kind = "positive even" if need_even else "positive whole"
                raise cfg_error(
                    cfg, f"VOV3D.{key}", f"needs 4 values whose products with INNER_CH are {kind} widths"
                )
        return {
            "depth": v.DEPTH,
            "inner_ch": v.INNER_CH,
            "num_conv": v.NUM_CONV,
            "inner_multiplier": tuple(v.INNER_MULTIPLIER),
            "out_multiplier": tuple(v.OUT_MULTIPLIER),
            "depthwise": v.DEPTHWISE_IMPL,
            **common_kwargs(cfg),
        }
