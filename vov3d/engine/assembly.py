"""The one place a training run is assembled from the cfg (as detectron2's ``build_*``): model,
optimizer, schedule, loss, scaler, mixup, loaders, TensorBoard writer, and the resumed state.
``train`` and ``benchmark train`` use it; the loops take its parts and never see the cfg."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from vov3d.config import CfgNode
from vov3d.config.validation import check_multigrid_training
from vov3d.datasets import build_dataset, build_loader, check_splits, shuffle_loader
from vov3d.datasets.class_names import cfg_class_names
from vov3d.datasets.mixup import MixUp
from vov3d.datasets.readable import check_readable
from vov3d.models import convert_sub_batch_norm
from vov3d.utils.distributed import get_world_size, is_main_process
from vov3d.utils.logging import StatsLog
from vov3d.utils.tensorboard import make_writer

from .class_figures import ClassFigures
from .finetune import check_finetune_cfg
from .multigrid import (
    MultigridPlan,
    MultigridSettings,
    check_fits,
    describe,
    epoch_bn_plan,
    is_eval_epoch,
    rescaled_solver,
)
from .resume import ResumePoint, resume_point, split_identity
from .run_folder import restore_rng_states, resume_or_initialise
from .runtime import Execution, compile_model, distribute, grad_scaler, prepare_model
from .solver import LRSchedule, build_loss, build_optimizer

logger = logging.getLogger(__name__)
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Run:
    """A training run's parts, each built once from the cfg."""

    execution: Execution  # device, autocast dtype, memory format
    model: nn.Module  # the network as built: checkpoints save and load its weights
    net: nn.Module  # what trains: ``model`` compiled (MODEL.COMPILE) and, with several processes, in DDP
    optimizer: torch.optim.Optimizer
    schedule: LRSchedule
    loss_fn: LossFn
    scaler: Optional[torch.amp.GradScaler]  # fp16 only
    mixup: Optional[MixUp]  # MIXUP.ENABLE
    train_loader: DataLoader
    precise_bn_loader: DataLoader  # the train loader; with the short cycle, one of the long cycle's shapes only
    val_loader: Optional[DataLoader]
    log: StatsLog  # json_stats lines in OUTPUT_DIR every LOG_PERIOD iterations, TensorBoard
    class_names: Optional[list[str]]
    figures: ClassFigures  # TENSORBOARD's per-class figures of every validation
    max_epoch: int
    start_epoch: int  # the first epoch to train: 0, or where the resumed run stopped
    resumed: Optional[dict[str, Any]]  # the checkpoint the run resumed from
    resume: ResumePoint  # where in start_epoch the run goes on
    train_split: dict[str, Any]  # split_identity of the train split, stored in checkpoints
    freeze_backbone_epochs: int  # TRAIN.FREEZE_BACKBONE_EPOCHS: epochs that train only the classifier
    freeze_backbone_bn: bool  # TRAIN.FREEZE_BACKBONE_BN
    max_bad_video_fraction: float  # DATA.MAX_BAD_VIDEO_FRACTION
    multigrid: MultigridSettings  # MULTIGRID.*: the shapes, BN and evaluation epochs (both cycles off: none)
    eval_period: int  # TRAIN.EVAL_PERIOD
    checkpoint_period: int  # TRAIN.CHECKPOINT_PERIOD

    def backbone_frozen(self, epoch: int) -> bool:
        return epoch < self.freeze_backbone_epochs

    def evaluates_after(self, epoch: int) -> bool:
        """Whether ``epoch`` is followed by validation: every EVAL_PERIOD epochs and after the
        last; under the long cycle MULTIGRID.EVAL_FREQ times per shape."""
        return is_eval_epoch(self.multigrid, epoch, self.eval_period)

    def saves_after(self, epoch: int) -> bool:
        """Whether a checkpoint follows ``epoch`` (as ``evaluates_after``, with CHECKPOINT_PERIOD)."""
        return is_eval_epoch(self.multigrid, epoch, self.checkpoint_period)

    def bn_splits(self, epoch: int) -> Optional[int]:
        """The sub-batches per process of ``epoch``'s BatchNorm under the long cycle (1 where
        PySlowFast would synchronise BN over processes: here each keeps its own), else None."""
        plan = epoch_bn_plan(self.multigrid, epoch, get_world_size())
        return None if plan is None else plan.num_splits


def build_run(cfg: CfgNode, resume: bool = True, validation: bool = True) -> Run:
    """Assemble the training run the cfg describes, in this order: the model first (a model the
    config cannot build stops before any I/O), then the loaders, a check that the videos of
    every split the run reads exist (test too with TEST.ENABLE) and that every val and test video
    opens (``check_readable``), then optimizer, schedule, loss and scaler. With ``resume`` the run
    continues from OUTPUT_DIR or starts from TRAIN.CHECKPOINT_FILE_PATH (``resume_or_initialise``),
    and a resumed run's random generators are restored last, so it draws what an uninterrupted run
    would. Without ``validation`` (benchmarks) only the train split is read."""
    check_finetune_cfg(cfg)
    check_multigrid_training(cfg)
    multigrid = MultigridSettings.from_cfg(cfg)
    varies = multigrid.long_cycle or multigrid.short_cycle
    execution = Execution.from_cfg(cfg)
    model = prepare_model(cfg, execution.device, train=True)
    if multigrid.long_cycle:  # before the optimizer: the loop sets each shape's sub-batches
        model = convert_sub_batch_norm(model)
    train_loader = build_loader(cfg, "train", MultigridPlan(multigrid) if varies else None)
    precise_bn_loader = train_loader
    if multigrid.short_cycle and cfg.BN.USE_PRECISE_STATS:  # PySlowFast's precise BN skips the short cycle
        precise_bn_loader = build_loader(cfg, "train", MultigridPlan(multigrid, short_cycle=False))
    if varies:
        check_fits(cfg, multigrid, len(train_loader.dataset) * cfg.AUG.NUM_SAMPLE)
        if is_main_process():
            logger.info("multigrid training:\n  %s", "\n  ".join(describe(multigrid, get_world_size())))
    val_loader = build_loader(cfg, "val") if validation else None
    splits = {"train": train_loader.dataset}
    if val_loader is not None:
        splits["val"] = val_loader.dataset
        if cfg.TEST.ENABLE:  # a missing test.csv is found now, not after the last epoch
            splits["test"] = build_dataset(cfg, "test")
    check_splits(cfg, splits)
    evaluated = {split: dataset for split, dataset in splits.items() if split != "train"}
    check_readable(evaluated, cfg.TEST.SKIP_BROKEN_VIDEOS)  # else the run would stop on them after training
    class_names, mixup = cfg_class_names(cfg, "train"), MixUp.from_cfg(cfg)
    figures = ClassFigures.from_cfg(cfg, class_names)
    optimizer = build_optimizer(model, cfg)
    schedule = LRSchedule.from_cfg(cfg)
    if varies:
        schedule = schedule.rescaled(rescaled_solver(multigrid))
    loss_fn = build_loss(cfg)
    scaler = grad_scaler(execution.device, execution.amp_dtype)
    start_epoch, resumed = resume_or_initialise(cfg, model, optimizer, schedule, scaler) if resume else (0, None)
    net = distribute(compile_model(model, cfg.MODEL.COMPILE), execution.device)
    point, train_split = ResumePoint(), split_identity(train_loader.dataset)
    if resumed is not None:
        shuffle_loader(train_loader, start_epoch)  # multigrid epochs differ in length
        point = resume_point(cfg, resumed, len(train_loader), train_split, schedule.max_epoch)
        restore_rng_states(resumed, cuda=cfg.NUM_GPUS > 0)
    return Run(
        execution=execution,
        model=model,
        net=net,
        optimizer=optimizer,
        schedule=schedule,
        loss_fn=loss_fn,
        scaler=scaler,
        mixup=mixup,
        train_loader=train_loader,
        precise_bn_loader=precise_bn_loader,
        val_loader=val_loader,
        log=StatsLog(cfg.OUTPUT_DIR, cfg.LOG_PERIOD, make_writer(cfg, cfg.TRAIN.DATASET)),
        class_names=class_names,
        figures=figures,
        max_epoch=schedule.max_epoch,
        start_epoch=start_epoch,
        resumed=resumed,
        resume=point,
        train_split=train_split,
        freeze_backbone_epochs=cfg.TRAIN.FREEZE_BACKBONE_EPOCHS,
        freeze_backbone_bn=cfg.TRAIN.FREEZE_BACKBONE_BN,
        max_bad_video_fraction=cfg.DATA.MAX_BAD_VIDEO_FRACTION,
        multigrid=multigrid,
        eval_period=cfg.TRAIN.EVAL_PERIOD,
        checkpoint_period=cfg.TRAIN.CHECKPOINT_PERIOD,
    )
