"""The model registry and ``build_model``, the one place a network is made from a config."""

from __future__ import annotations

import torch.nn as nn

from vov3d.config import CfgNode, cfg_error
from vov3d.utils.registry import Registry

MODEL_REGISTRY = Registry("model")


def build_model(cfg: CfgNode) -> nn.Module:
    """Build ``cfg.MODEL.MODEL_NAME`` on the CPU. Registered classes map the cfg to their
    constructor arguments in a ``from_cfg`` classmethod, so blocks never see the cfg. The
    engine logs the model's size (LOG_MODEL_INFO), once per run, on the main process."""
    if cfg.MODEL.MODEL_NAME not in MODEL_REGISTRY:
        raise cfg_error(cfg, "MODEL.MODEL_NAME", f"not a registered model; registered: {', '.join(MODEL_REGISTRY)}")
    arch = cfg.MODEL.ARCH.lower()
    if arch in {name.lower() for name in MODEL_REGISTRY} and arch != cfg.MODEL.MODEL_NAME.lower():
        raise cfg_error(cfg, "MODEL.ARCH", f"names another network than MODEL.MODEL_NAME {cfg.MODEL.MODEL_NAME}")
    cls = MODEL_REGISTRY.get(cfg.MODEL.MODEL_NAME)
    return cls(**cls.from_cfg(cfg))  # from_cfg raises ConfigError for values the network does not support
