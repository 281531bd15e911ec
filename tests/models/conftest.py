"""Small configs of every registered network and size, for fast CPU tests."""

from __future__ import annotations

from typing import Any

from tests.conftest import CONFIGS
from vov3d.config import CfgNode, get_cfg

# Every size of every registered network, by the config that defines it.
SIZES = {
    "X3D-XS": "Kinetics/x3d/X3D_XS.yaml",
    "X3D-S": "Kinetics/x3d/X3D_S.yaml",
    "X3D-M": "Kinetics/x3d/X3D_M.yaml",
    "X3D-L": "Kinetics/x3d/X3D_L.yaml",
    "VoV3D-M": "Kinetics/vov3d/vov3d_M.yaml",
    "VoV3D-L": "Kinetics/vov3d/vov3d_L.yaml",
}

# A clip small enough for CPU tests; the test crop leaves a 2x2 map of positions to average.
FRAMES, TRAIN_CROP, TEST_CROP = 4, 64, 96


def model_cfg(size: str, **overrides: Any) -> CfgNode:
    """The size's config with a 4-frame 64-pixel clip; overrides are ``SECTION__KEY=value``."""
    cfg = get_cfg()
    cfg.merge_from_file(str(CONFIGS / SIZES[size]))
    cfg.DATA.NUM_FRAMES, cfg.DATA.TRAIN_CROP_SIZE, cfg.DATA.TEST_CROP_SIZE = FRAMES, TRAIN_CROP, TEST_CROP
    cfg.LOG_MODEL_INFO = False
    for name, value in overrides.items():
        *section, key = name.split("__")
        (cfg[section[0]] if section else cfg)[key] = value
    return cfg
