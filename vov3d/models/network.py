"""The network skeleton that X3D and VoV3D share: stem, four residual stages, head.

X3D and VoV3D subclass ``VideoNet`` and differ only in widths, depths and the block transform.
Module names (``s1.pathway0_stem``, ``s2.pathway0_res0.branch2``, ``head.projection``) are the
legacy PySlowFast names, so published X3D and VoV3D checkpoints load without any renaming;
``get_classifier()`` says which module is the classifier.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Union

import torch
import torch.nn as nn

from vov3d.config import CfgNode, cfg_error

from .head import Head, head_pool_size
from .layers import NORM_LAYERS, NormFactory
from .stage import ResBlock, TransformFactory, make_stage
from .stem import Stem

Clip = Union[torch.Tensor, Sequence[torch.Tensor]]


class VideoNet(nn.Module):
    """Stem -> s2..s5 (each strides space by 2, never time) -> head.

    Input: a clip (N, 3, T, H, W), or a one-element list of it (PySlowFast's pathway list).
    Output (N, classes): logits in training mode, probabilities in evaluation mode.
    """

    def __init__(
        self,
        *,
        stem_width: int,
        stage_widths: Sequence[int],
        stage_depths: Sequence[int],
        transforms: Sequence[TransformFactory],
        head_width: int,
        num_classes: int,
        num_frames: int,
        crop_size: int,
        dim_c5: int = 2048,
        dropout_rate: float = 0.0,
        bn_lin5: bool = False,
        zero_init_final_bn: bool = False,
        fc_init_std: float = 0.01,
        norm: NormFactory = nn.BatchNorm3d,
    ) -> None:
        super().__init__()
        if not len(stage_widths) == len(stage_depths) == len(transforms) == 4:
            raise ValueError("VideoNet has four stages (s2..s5): give four widths, depths and transforms")
        self.s1 = nn.Sequential(OrderedDict(pathway0_stem=Stem(3, stem_width, norm)))
        dim_in = stem_width
        for i, (width, depth, transform) in enumerate(zip(stage_widths, stage_depths, transforms)):
            self.add_module(f"s{i + 2}", make_stage(dim_in, width, depth, 2, transform, norm))
            dim_in = width
        self.head = Head(
            dim_in,
            head_width,
            dim_c5,
            num_classes,
            pool_size=head_pool_size(num_frames, crop_size),
            dropout_rate=dropout_rate,
            bn_lin5=bn_lin5,
            norm=norm,
        )
        init_weights(self, zero_init_final_bn, fc_init_std)

    def forward(self, x: Clip) -> torch.Tensor:
        if isinstance(x, (list, tuple)):
            if len(x) != 1:
                raise ValueError(f"expected one clip (a single pathway), got a list of {len(x)}")
            x = x[0]
        for stage in (self.s1, self.s2, self.s3, self.s4, self.s5, self.head):
            x = stage(x)
        return x

    def get_classifier(self) -> nn.Linear:
        """The layer that maps features to class scores (timm's name): the part fine-tuning
        re-initialises for another class count, trains alone while the backbone is frozen and
        gives its own learning rate. Code that needs it asks here, not for a module name."""
        return self.head.projection


def init_weights(model: nn.Module, zero_init_final_bn: bool, fc_init_std: float = 0.01) -> None:
    """The original's init: MSRA fill for convs, BN 1/0, Linear N(0, ``fc_init_std``) (MODEL.FC_INIT_STD);
    optionally zero the BN closing each block's transform so every residual block starts as its shortcut."""
    for m in model.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:  # not SubBatchNorm3d's split_bn
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=fc_init_std)
            nn.init.zeros_(m.bias)
    if zero_init_final_bn:
        for m in model.modules():
            if isinstance(m, ResBlock):
                nn.init.zeros_(m.branch2.c_bn.weight)


def common_kwargs(cfg: CfgNode) -> dict[str, Any]:
    """Constructor arguments both networks read the same way: classes, clip size, head, init.
    The head is X3D's in both networks, so VoV3D reads X3D.DIM_C5 and X3D.BN_LIN5 too."""
    positive = {
        "MODEL.NUM_CLASSES": cfg.MODEL.NUM_CLASSES,
        "DATA.NUM_FRAMES": cfg.DATA.NUM_FRAMES,
        "DATA.TRAIN_CROP_SIZE": cfg.DATA.TRAIN_CROP_SIZE,
        "X3D.DIM_C5": cfg.X3D.DIM_C5,
    }
    for key, value in positive.items():
        if value < 1:
            raise cfg_error(cfg, key, "must be 1 or more")
    if cfg.MODEL.FC_INIT_STD <= 0:
        raise cfg_error(cfg, "MODEL.FC_INIT_STD", "must be positive")
    if not 0.0 <= cfg.MODEL.DROPOUT_RATE < 1.0:
        raise cfg_error(cfg, "MODEL.DROPOUT_RATE", "must be in [0, 1)")
    return {
        "num_classes": cfg.MODEL.NUM_CLASSES,
        "num_frames": cfg.DATA.NUM_FRAMES,
        "crop_size": cfg.DATA.TRAIN_CROP_SIZE,
        "dim_c5": cfg.X3D.DIM_C5,
        "bn_lin5": cfg.X3D.BN_LIN5,
        "dropout_rate": cfg.MODEL.DROPOUT_RATE,
        "zero_init_final_bn": cfg.RESNET.ZERO_INIT_FINAL_BN,
        "fc_init_std": cfg.MODEL.FC_INIT_STD,
        "norm": norm_from_cfg(cfg),
    }


def norm_from_cfg(cfg: CfgNode) -> NormFactory:
    """The norm layer BN.NORM_TYPE names; sub_batchnorm gets its BN.NUM_SPLITS here."""
    if cfg.BN.NORM_TYPE not in NORM_LAYERS:
        raise cfg_error(cfg, "BN.NORM_TYPE", f"must be one of {', '.join(NORM_LAYERS)}")
    if cfg.BN.NORM_TYPE != "sub_batchnorm":
        return NORM_LAYERS[cfg.BN.NORM_TYPE]
    if cfg.BN.NUM_SPLITS < 1:
        raise cfg_error(cfg, "BN.NUM_SPLITS", "must be 1 or more (sub-batches per process batch)")
    return functools.partial(NORM_LAYERS["sub_batchnorm"], num_splits=cfg.BN.NUM_SPLITS)
