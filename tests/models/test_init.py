"""The original initialisation on every registered model: MODEL.FC_INIT_STD for the classifier,
and RESNET.ZERO_INIT_FINAL_BN zeroing exactly the BN that closes each block's transform."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from tests.models.conftest import SIZES, model_cfg
from vov3d.config import ConfigError
from vov3d.models import build_model


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("std", [0.01, 0.3])
def test_fc_init_std_is_honoured(size: str, std: float) -> None:
    torch.manual_seed(0)
    model = build_model(model_cfg(size, MODEL__FC_INIT_STD=std, MODEL__NUM_CLASSES=100))
    projection = model.head.projection  # 100 x 2048 weights: the sample std is within 2%
    assert abs(projection.weight.std().item() / std - 1) < 0.02 and (projection.bias == 0).all()


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("zero_init", [True, False])
def test_zero_init_final_bn_is_exactly_each_blocks_last_bn(size: str, zero_init: bool) -> None:
    model = build_model(model_cfg(size, RESNET__ZERO_INIT_FINAL_BN=zero_init))
    finals = 0
    for name, m in model.named_modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            final = name.endswith("branch2.c_bn")
            finals += final
            assert (m.weight == (0.0 if final and zero_init else 1.0)).all() and (m.bias == 0).all(), name
    blocks = sum(1 for name, _ in model.named_modules() if name.count(".") == 1 and "_res" in name)
    assert finals == blocks > 0


def test_fc_init_std_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="MODEL.FC_INIT_STD"):
        build_model(model_cfg("X3D-XS", MODEL__FC_INIT_STD=0.0))
