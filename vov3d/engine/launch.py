"""Entry of a run: prepares OUTPUT_DIR and dispatches to training and testing."""

from __future__ import annotations

import logging
import os

from vov3d.config import CfgNode, save_config
from vov3d.utils.logging import setup_logging

logger = logging.getLogger(__name__)


def run_jobs(cfg: CfgNode, init_method: str) -> int:
    """Run what the cfg enables; returns the process exit code."""
    setup_logging(cfg.OUTPUT_DIR)
    os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
    save_config(cfg, os.path.join(cfg.OUTPUT_DIR, "config.yaml"))
    missing = [job for job, on in (("training", cfg.TRAIN.ENABLE), ("testing", cfg.TEST.ENABLE)) if on]
    if missing:
        logger.error("%s is not built yet in this version of vov3d", " and ".join(missing))
        return 1
    return 0
