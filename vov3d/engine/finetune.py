"""Fine-tuning controls: which parameters are the backbone (everything but the classifier, which
the network names with ``get_classifier()``), freezing its weights for the first epochs and its
BN statistics, and the best checkpoint by validation top-1 (``checkpoints/best.pyth``)."""

from __future__ import annotations

import logging
import os
from typing import Any, Optional

import torch.nn as nn

from vov3d.checkpoint import CheckpointError, find_classifier, read_checkpoint, save_checkpoint, unwrap_model
from vov3d.config import CfgNode, cfg_error
from vov3d.utils.distributed import is_main_process
from vov3d.utils.run_layout import RunFolder

logger = logging.getLogger(__name__)


def classifier_of(model: nn.Module) -> nn.Module:
    """The classifier of the network inside ``model``; an error for a network that does not say
    which module it is (``get_classifier()``), since the backbone would then be everything."""
    found = find_classifier(model)
    if found is None:
        raise TypeError(
            f"{type(unwrap_model(model)).__name__} has no get_classifier(): cannot tell its classifier from "
            "its backbone (fine-tuning, SOLVER.BACKBONE_LR_MULT)"
        )
    return found[1]


def backbone_parameters(model: nn.Module) -> list[nn.Parameter]:
    head = {id(p) for p in classifier_of(model).parameters()}
    return [p for p in unwrap_model(model).parameters() if id(p) not in head]


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


def set_train_mode(model: nn.Module, freeze_backbone_bn: bool) -> None:
    """``model.train()``, with the backbone's BatchNorm layers in eval mode when
    ``freeze_backbone_bn``, so their running statistics stay as loaded."""
    model.train()
    if not freeze_backbone_bn:
        return
    head = set(classifier_of(model).modules())
    for module in unwrap_model(model).modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module not in head:
            module.eval()


class BestCheckpoint:
    """Writes ``checkpoints/best.pyth`` (atomically, from the main process) whenever the
    validation top-1 error is lower than every earlier one of the run. The file stores its error
    as ``val_top1_err``, so a ``resumed`` run goes on from it; a fresh run replaces it."""

    def __init__(self, output_dir: str, resumed: bool, trust: bool = False) -> None:
        self.path = RunFolder(output_dir).best_path
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
