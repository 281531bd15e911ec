"""The model registry and ``build_model``, the one place a network is made from a config."""

from __future__ import annotations

import torch.nn as nn

from vov3d.config import CfgNode
from vov3d.utils.registry import Registry

MODEL_REGISTRY = Registry("model")


def build_model(cfg: CfgNode) -> nn.Module:
    """Build ``cfg.MODEL.MODEL_NAME`` on the CPU. Registered classes map the cfg to their
    constructor arguments in a ``from_cfg`` classmethod, so blocks never see the cfg. The
    engine logs the model's size (LOG_MODEL_INFO), once per run, on the main process."""
    cls = MODEL_REGISTRY.get(cfg.MODEL.MODEL_NAME)
    return cls(**cls.from_cfg(cfg))
