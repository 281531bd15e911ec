"""Fine-tuning controls: which parameters are the backbone (everything but the classifier
``head.projection``), freezing its weights for the first epochs and its BN statistics, and the
best checkpoint by validation top-1 (``checkpoints/best.pyth``)."""

from __future__ import annotations

import logging
import os
from typing import Any, Optional

import torch.nn as nn

from vov3d.checkpoint import CLASSIFIER, CheckpointError, read_checkpoint, save_checkpoint, unwrap_model
from vov3d.config import CfgNode, cfg_error
from vov3d.utils.distributed import is_main_process

logger = logging.getLogger(__name__)

BEST_NAME = "best.pyth"


def is_classifier(name: str) -> bool:
    """Whether the parameter or module ``name`` (of the unwrapped model) belongs to the classifier."""
    return name.startswith(CLASSIFIER) or name == CLASSIFIER.rstrip(".")


def backbone_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [p for name, p in unwrap_model(model).named_parameters() if not is_classifier(name)]


def check_finetune_cfg(cfg: CfgNode) -> None:
    """Checks made when training starts: precise BN would recompute the statistics freezing keeps,
    and testing the best checkpoint after training needs training to keep it."""
    if cfg.TRAIN.FREEZE_BACKBONE_EPOCHS < 0:
        raise cfg_error(cfg, "TRAIN.FREEZE_BACKBONE_EPOCHS", "must be 0 (off) or more")
    if cfg.SOLVER.BACKBONE_LR_MULT < 0:
        raise cfg_error(cfg, "SOLVER.BACKBONE_LR_MULT", "must be 0 or more")
    if cfg.TEST.ENABLE and cfg.TEST.USE_BEST_CHECKPOINT and not cfg.TRAIN.KEEP_BEST_CHECKPOINT:
        raise cfg_error(
            cfg,
            "TEST.USE_BEST_CHECKPOINT",
            "tests checkpoints/best.pyth, which training writes only with TRAIN.KEEP_BEST_CHECKPOINT True",
        )
    frozen = cfg.TRAIN.FREEZE_BACKBONE_EPOCHS > 0 or cfg.TRAIN.FREEZE_BACKBONE_BN
    if frozen and cfg.BN.USE_PRECISE_STATS:
        raise cfg_error(
            cfg,
            "BN.USE_PRECISE_STATS",
            "recomputes the BN statistics that TRAIN.FREEZE_BACKBONE_EPOCHS / TRAIN.FREEZE_BACKBONE_BN keep "
            "fixed; set BN.USE_PRECISE_STATS False to freeze the backbone",
        )


def backbone_frozen(cfg: CfgNode, epoch: int) -> bool:
    return epoch < cfg.TRAIN.FREEZE_BACKBONE_EPOCHS


def set_train_mode(model: nn.Module, freeze_backbone_bn: bool) -> None:
    """``model.train()``, with the backbone's BatchNorm layers in eval mode when
    ``freeze_backbone_bn``, so their running statistics stay as loaded."""
    model.train()
    if not freeze_backbone_bn:
        return
    for name, module in unwrap_model(model).named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and not is_classifier(name):
            module.eval()


def best_checkpoint_path(output_dir: str) -> str:
    return os.path.join(output_dir, "checkpoints", BEST_NAME)


class BestCheckpoint:
    """Writes ``checkpoints/best.pyth`` (atomically, from the main process) whenever the
    validation top-1 error is lower than every earlier one of the run. The file stores its error
    as ``val_top1_err``, so a ``resumed`` run goes on from it; a fresh run replaces it."""

    def __init__(self, output_dir: str, resumed: bool, trust: bool = False) -> None:
        self.path = best_checkpoint_path(output_dir)
        self.top1_err = float("inf")
        if resumed and os.path.isfile(self.path):
            try:
                self.top1_err = float(read_checkpoint(self.path, trust).get("val_top1_err", float("inf")))
            except CheckpointError as e:
                logger.warning("the best checkpoint so far is unreadable and will be replaced: %s", e)

    def update(
        self, top1_err: float, epoch: int, model: nn.Module, cfg: CfgNode, class_names: Optional[list[str]] = None
    ) -> Optional[str]:
        """Save ``model`` (with ``class_names`` when known) if ``top1_err`` is the best so far;
        returns the path when written."""
        if not top1_err < self.top1_err:
            return None
        self.top1_err = top1_err
        if not is_main_process():
            return None
        extra: dict[str, Any] = {} if class_names is None else {"class_names": list(class_names)}
        save_checkpoint(self.path, model, epoch=epoch, cfg=cfg, val_top1_err=top1_err, **extra)
        logger.info("saved %s (validation top-1 error %.2f%%, epoch %d)", self.path, top1_err, epoch + 1)
        return self.path
