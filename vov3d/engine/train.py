"""Training: ``train_one_epoch`` and the epoch loop ``train`` (resume, precise BN, validation,
checkpoints). Read top to bottom, it is the whole recipe of a run."""

from __future__ import annotations

import logging
import math
import time
import warnings
from typing import Any, Callable, Optional

import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from vov3d.checkpoint import unwrap_model
from vov3d.config import CfgNode
from vov3d.datasets import TooManyBrokenVideosError, build_dataset, build_loader, check_splits, shuffle_loader
from vov3d.datasets.class_names import cfg_class_names
from vov3d.datasets.clip_dataset import check_substituted
from vov3d.datasets.mixup import MixUp
from vov3d.utils.distributed import all_gather_tensors, all_reduce_sum, get_world_size, is_main_process
from vov3d.utils.logging import log_json_stats
from vov3d.utils.meters import Timer, WindowAverage, format_eta, memory_mib, topk_correct
from vov3d.utils.tensorboard import make_writer

from .evaluate import validate
from .finetune import BestCheckpoint, backbone_frozen, backbone_parameters, check_finetune_cfg, set_train_mode
from .run_folder import restore_rng_states, resume_or_initialise, save_training_checkpoint, write_class_names
from .runtime import (
    autocast,
    autocast_dtype,
    compile_model,
    current_device,
    distribute,
    grad_scaler,
    prepare_model,
    progress,
    to_input,
)
from .solver import LRSchedule, build_loss, build_optimizer, set_lr

logger = logging.getLogger(__name__)

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# Unreadable training files named in a log line or error; tools/scan_dataset.py lists them all.
_MAX_LISTED = 10


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the message gives the iteration and the rate."""


def train_one_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    schedule: LRSchedule,
    loss_fn: LossFn,
    epoch: int,
    cfg: CfgNode,
    scaler: Optional[torch.amp.GradScaler] = None,
    writer: Optional[Any] = None,
) -> dict[str, Any]:
    """One pass over ``loader`` with the learning rate set every iteration.

    Loss and top-k counts are summed over all processes every iteration (one small all-reduce),
    so every rank sees the same global loss and all stop together on a NaN. So are the clips that
    stand in for unreadable videos (``meta["substituted"]``, from every loader worker): all stop
    together past DATA.MAX_BAD_VIDEO_FRACTION, and the epoch's line counts them and a warning names
    the files. Fine-tuning: in the first TRAIN.FREEZE_BACKBONE_EPOCHS epochs only the classifier
    is updated (the backbone's gradients are dropped before the step, which keeps DDP's gradient
    buckets as they are) and the backbone's BN statistics stay fixed, as they do throughout with
    TRAIN.FREEZE_BACKBONE_BN; with MIXUP.ENABLE batches are mixed and the loss takes soft targets
    (top-k errors count the clip's own label). Only the main process logs. Returns the epoch's
    ``train_epoch`` statistics.
    """
    device = next(model.parameters()).device
    dtype = autocast_dtype(cfg, device)
    iters, max_epoch = len(loader), cfg.SOLVER.MAX_EPOCH
    meters = {name: WindowAverage(cfg.LOG_PERIOD) for name in ("loss", "top1_err", "top5_err", "dt_data", "dt_net")}
    data_timer, net_timer = Timer(), Timer(synchronize=device.type == "cuda")
    lr = schedule(epoch)
    replaced: list[torch.Tensor] = []  # videos of this process's batches that another clip stood in for
    clips_seen = substituted_seen = 0
    frozen = backbone_frozen(cfg, epoch)
    frozen_params = backbone_parameters(model) if frozen else []
    mixup = MixUp.from_cfg(cfg)
    set_train_mode(model, frozen or cfg.TRAIN.FREEZE_BACKBONE_BN)
    if frozen and is_main_process():
        logger.info("epoch %d/%d trains only the classifier (TRAIN.FREEZE_BACKBONE_EPOCHS)", epoch + 1, max_epoch)
    for it, (frames, labels, _index, meta) in enumerate(progress(loader, iters, f"epoch {epoch + 1}")):
        meters["dt_data"].update(data_timer.seconds())
        net_timer.reset()
        frames, labels = to_input(frames, device, cfg.MODEL.CHANNELS_LAST), labels.to(device, non_blocking=True)
        lr = schedule(epoch + it / iters)
        set_lr(optimizer, lr)
        targets = labels
        if mixup is not None:
            frames, targets = mixup(frames, labels)
        with autocast(device, dtype):
            logits = model(frames)
            loss = loss_fn(logits, targets)
        top1, top5 = topk_correct(logits.detach(), labels)
        count = torch.tensor(float(labels.shape[0]), device=device)
        substituted = meta.get("substituted", torch.full_like(labels, -1)).to(device)
        replaced.append(substituted[substituted >= 0])
        subs = (substituted >= 0).sum().float()
        totals = torch.stack([loss.detach().float() * count, top1.sum().float(), top5.sum().float(), count, subs])
        loss_sum, correct1, correct5, total, subs_total = all_reduce_sum(totals).tolist()
        clips_seen, substituted_seen = clips_seen + int(total), substituted_seen + int(subs_total)
        if subs_total and check_substituted(substituted_seen, clips_seen, cfg.DATA.MAX_BAD_VIDEO_FRACTION, False):
            raise _too_many_substituted(substituted_seen, clips_seen, replaced, loader, cfg)
        if not math.isfinite(loss_sum):
            raise NonFiniteLossError(
                f"the training loss is {loss_sum / total} at epoch {epoch + 1}/{max_epoch}, iteration "
                f"{it + 1}/{iters}, with learning rate {lr:.6g}; lower SOLVER.BASE_LR, lengthen "
                "SOLVER.WARMUP_EPOCHS or check the input data"
            )
        optimizer.zero_grad(set_to_none=True)
        (scaler.scale(loss) if scaler is not None else loss).backward()
        for p in frozen_params:  # SGD skips parameters without a gradient: no decay, no momentum
            p.grad = None
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        meters["dt_net"].update(net_timer.seconds())
        meters["loss"].update(loss_sum / total, total)
        meters["top1_err"].update(100.0 * (1 - correct1 / total), total)
        meters["top5_err"].update(100.0 * (1 - correct5 / total), total)
        if (it + 1) % cfg.LOG_PERIOD == 0 and is_main_process():
            stats = {
                **_iteration_stats(meters, epoch, it, iters, max_epoch, lr, device),
                "substituted_clips": substituted_seen,
            }
            log_json_stats(stats, cfg.OUTPUT_DIR)
            if writer is not None:
                step = epoch * iters + it
                for key in ("loss", "lr", "top1_err", "top5_err"):
                    writer.add_scalar(f"train/{key}", stats[key], step)
        data_timer.reset()

    if check_substituted(substituted_seen, clips_seen, cfg.DATA.MAX_BAD_VIDEO_FRACTION, True):
        raise _too_many_substituted(substituted_seen, clips_seen, replaced, loader, cfg)
    stats = {
        "_type": "train_epoch",
        "epoch": f"{epoch + 1}/{max_epoch}",
        "lr": lr,
        **{name: meter.global_average for name, meter in meters.items()},
        "eta": format_eta(_iteration_time(meters, global_average=True) * (max_epoch - epoch - 1) * iters),
        "mem": memory_mib(device),
        "substituted_clips": substituted_seen,
    }
    if substituted_seen:  # every process takes part in gathering the names
        files = _replaced_files(replaced, loader)
        if is_main_process():
            logger.warning(
                "epoch %d/%d: %d of %d training clips stood in for unreadable videos (%d files: %s); "
                "list every unreadable file with tools/scan_dataset.py",
                epoch + 1,
                max_epoch,
                substituted_seen,
                clips_seen,
                len(files),
                _listed(files),
            )
    if is_main_process():
        log_json_stats(stats, cfg.OUTPUT_DIR)
    return stats


def _replaced_files(replaced: list[torch.Tensor], loader: DataLoader) -> list[str]:
    """The distinct unreadable videos of all processes' batches so far (a collective call)."""
    device = replaced[0].device if replaced else torch.device("cpu")
    local = torch.unique(torch.cat(replaced)) if replaced else torch.zeros(0, dtype=torch.long, device=device)
    videos = torch.unique(all_gather_tensors(local)).tolist()
    paths = getattr(loader.dataset, "paths", None)
    return [paths[v] if paths else f"video {v}" for v in videos]


def _listed(files: list[str]) -> str:
    more = len(files) - _MAX_LISTED
    return ", ".join(files[:_MAX_LISTED]) + (f" and {more} more" if more > 0 else "")


def _too_many_substituted(
    substituted: int, clips: int, replaced: list[torch.Tensor], loader: DataLoader, cfg: CfgNode
) -> TooManyBrokenVideosError:
    files = _replaced_files(replaced, loader)
    return TooManyBrokenVideosError(
        f"{substituted} of {clips} training clips stood in for unreadable videos ({len(files)} files: "
        f"{_listed(files)}), more than DATA.MAX_BAD_VIDEO_FRACTION = {cfg.DATA.MAX_BAD_VIDEO_FRACTION}; "
        "list every unreadable file with tools/scan_dataset.py, then fix or remove them from the annotations"
    )


def _iteration_time(meters: dict[str, WindowAverage], global_average: bool = False) -> float:
    return sum(meters[k].global_average if global_average else meters[k].window_average for k in ("dt_data", "dt_net"))


def _iteration_stats(
    meters: dict[str, WindowAverage],
    epoch: int,
    it: int,
    iters: int,
    max_epoch: int,
    lr: float,
    device: torch.device,
) -> dict[str, Any]:
    """One ``train_iter`` line: averages over the last LOG_PERIOD iterations."""
    remaining = iters - it - 1 + (max_epoch - epoch - 1) * iters
    return {
        "_type": "train_iter",
        "epoch": f"{epoch + 1}/{max_epoch}",
        "iter": f"{it + 1}/{iters}",
        "lr": lr,
        **{name: meter.window_average for name, meter in meters.items()},
        "eta": format_eta(_iteration_time(meters) * remaining),
        "mem": memory_mib(device),
    }


@torch.no_grad()
def update_precise_bn(model: nn.Module, loader: DataLoader, cfg: CfgNode) -> None:
    """Recompute BN statistics as true averages over BN.NUM_BATCHES_PRECISE training batches with
    the weights fixed (fvcore's precise BN), then average them over processes so that every
    rank evaluates and saves the same model."""
    with warnings.catch_warnings():  # fvcore's import uses APIs that torch marks deprecated
        warnings.simplefilter("ignore", FutureWarning)
        from fvcore.nn.precise_bn import get_bn_modules, update_bn_stats

    net = unwrap_model(model)
    device = next(net.parameters()).device
    num_batches = min(cfg.BN.NUM_BATCHES_PRECISE, len(loader))
    clips = (to_input(frames, device, cfg.MODEL.CHANNELS_LAST) for frames, *_ in loader)
    net.train()
    with autocast(device, autocast_dtype(cfg, device)):
        update_bn_stats(net, clips, num_batches)
    world = get_world_size()
    for bn in get_bn_modules(net):
        for stats in (bn.running_mean, bn.running_var):
            stats.copy_(all_reduce_sum(stats.clone()) / world)


def train(cfg: CfgNode) -> dict[str, Any]:
    """Train cfg.MODEL on TRAIN.DATASET for SOLVER.MAX_EPOCH epochs, resuming from OUTPUT_DIR
    when possible. Saves every TRAIN.CHECKPOINT_PERIOD epochs and then validates every
    TRAIN.EVAL_PERIOD (both after the last epoch), so an unreadable val video never costs the
    epoch. The model is built first, then every split the run reads (test too with TEST.ENABLE)
    is checked. The class names, where known, go to OUTPUT_DIR/classes.txt and into every
    checkpoint; with TRAIN.KEEP_BEST_CHECKPOINT checkpoints/best.pyth follows the best validation
    top-1. Returns the last statistics logged (``train_epoch`` and ``val_epoch``)."""
    check_finetune_cfg(cfg)
    device = current_device(cfg)
    model = prepare_model(cfg, device, train=True)  # a model the config cannot build stops before any I/O
    train_loader = build_loader(cfg, "train")
    val_loader = build_loader(cfg, "val")
    splits = {"train": train_loader.dataset, "val": val_loader.dataset}
    if cfg.TEST.ENABLE:  # a missing test.csv is found now, not after the last epoch
        splits["test"] = build_dataset(cfg, "test")
    check_splits(cfg, splits)
    class_names = cfg_class_names(cfg, "train")
    if class_names is not None and is_main_process():
        write_class_names(cfg.OUTPUT_DIR, class_names)
    optimizer = build_optimizer(model, cfg)
    schedule = LRSchedule.from_cfg(cfg)
    loss_fn = build_loss(cfg)
    scaler = grad_scaler(device, autocast_dtype(cfg, device))
    start_epoch, resumed = resume_or_initialise(cfg, model, optimizer, schedule, scaler)
    net = distribute(compile_model(model, cfg.MODEL.COMPILE), device)
    if resumed is not None:
        restore_rng_states(resumed, train_loader.dataset, cuda=cfg.NUM_GPUS > 0)
    writer = make_writer(cfg, cfg.TRAIN.DATASET)
    keep_best = cfg.TRAIN.KEEP_BEST_CHECKPOINT
    best = BestCheckpoint(cfg.OUTPUT_DIR, resumed is not None, cfg.TRUST_CHECKPOINT) if keep_best else None
    results: dict[str, Any] = {}
    if start_epoch >= cfg.SOLVER.MAX_EPOCH:
        logger.info("training already finished: %d of %d epochs done", start_epoch, cfg.SOLVER.MAX_EPOCH)
    for epoch in range(start_epoch, cfg.SOLVER.MAX_EPOCH):
        started = time.perf_counter()
        shuffle_loader(train_loader, epoch)
        results["train"] = train_one_epoch(
            net, train_loader, optimizer, schedule, loss_fn, epoch, cfg, scaler=scaler, writer=writer
        )
        done, last = epoch + 1, epoch + 1 == cfg.SOLVER.MAX_EPOCH
        evaluate_now = done % cfg.TRAIN.EVAL_PERIOD == 0 or last
        save_now = done % cfg.TRAIN.CHECKPOINT_PERIOD == 0 or last
        if cfg.BN.USE_PRECISE_STATS and (evaluate_now or save_now):
            update_precise_bn(net, train_loader, cfg)
        if save_now:
            save_training_checkpoint(
                cfg, epoch, net, optimizer, schedule, scaler, train_loader.dataset, class_names=class_names
            )
        if evaluate_now:  # after the checkpoint, so it draws no random numbers a resumed run would miss
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                results["val"] = validate(net, val_loader, epoch, cfg, writer)
            if best is not None:
                best.update(results["val"]["top1_err"], epoch, net, cfg, class_names)
        logger.info("epoch %d/%d took %.1f s", done, cfg.SOLVER.MAX_EPOCH, time.perf_counter() - started)
    if writer is not None:
        writer.close()
    return results
