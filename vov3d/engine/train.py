"""Training: ``train_one_epoch`` and the epoch loop ``train`` (precise BN, validation,
checkpoints). Read top to bottom, it is the whole recipe of a run; ``build_run`` assembles it."""

from __future__ import annotations

import functools
import logging
import math
import time
import warnings
from collections.abc import Sequence
from typing import Any, Callable, Optional

import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from vov3d.checkpoint import unwrap_model
from vov3d.config import CfgNode
from vov3d.datasets import shuffle_loader, skip_batches, train_sampler
from vov3d.datasets.mixup import MixUp
from vov3d.datasets.readable import fix_advice
from vov3d.models import aggregate_sub_batch_stats, set_sub_batch_splits
from vov3d.utils.distributed import all_reduce_sum, barrier, get_world_size, is_main_process
from vov3d.utils.logging import StatsLog
from vov3d.utils.meters import Timer, topk_correct

from .assembly import LossFn, Run, build_run
from .evaluate import validate as validate_model
from .finetune import BestCheckpoint, backbone_parameters, set_train_mode
from .preemption import Preempted, StopControl, StopSignals, installed, leave
from .run_folder import MidEpoch, save_training_checkpoint, write_class_names
from .runtime import Execution, progress
from .solver import LRSchedule, set_lr
from .substituted import SubstitutedClips
from .train_meters import TrainMeters

logger = logging.getLogger(__name__)

# The train_iter scalars that also go to TensorBoard.
ITERATION_SCALARS = ("loss", "lr", "top1_err", "top5_err")


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the message gives the iteration and the rate."""


def train_one_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    schedule: LRSchedule,
    loss_fn: LossFn,
    epoch: int,
    max_epoch: int,
    execution: Execution,
    log: StatsLog,
    *,
    scaler: Optional[torch.amp.GradScaler] = None,
    mixup: Optional[MixUp] = None,
    frozen_backbone: bool = False,
    freeze_backbone_bn: bool = False,
    max_bad_video_fraction: float = 1.0,
    start_iter: int = 0,
    epoch_state: Optional[dict[str, Any]] = None,
    control: Optional[StopControl] = None,
    checkpoint: Optional[Callable[[MidEpoch], None]] = None,
    first_step: Optional[int] = None,
) -> dict[str, Any]:
    """Epoch ``epoch`` (from 0) of ``max_epoch``: one pass over ``loader`` with the learning rate
    set every iteration. ``first_step`` is the run's count of iterations before the epoch, the
    TensorBoard step of its first (default: ``epoch`` times this epoch's; multigrid epochs differ).

    Loss and top-k counts are summed over all processes every iteration (one small all-reduce),
    so every rank sees the same global loss and all stop together on a NaN. So are the clips that
    stand in for unreadable videos (``SubstitutedClips``): all stop together past
    ``max_bad_video_fraction`` (DATA.MAX_BAD_VIDEO_FRACTION; 1.0 never stops), and the epoch's
    line counts them. With ``frozen_backbone`` only the classifier is updated and the backbone's
    BN statistics stay fixed, as they do throughout with ``freeze_backbone_bn``; with ``mixup``
    batches are mixed and the loss takes soft targets (top-k errors count the clip's own label).
    Only the main process logs: a ``train_iter`` line every ``log.period`` iterations and the
    returned ``train_epoch`` statistics.

    A resumed epoch starts at iteration ``start_iter`` (``loader`` yields the rest of the epoch)
    with the meters and counts of ``epoch_state``. With ``control`` the same all-reduce carries the
    stop and periodic-checkpoint flags: ``checkpoint`` writes a mid-epoch checkpoint when either is
    agreed before the last iteration, and a stop then raises Preempted (at the last iteration the
    epoch ends first; ``control.stopping`` tells the caller).
    """
    device, iters = execution.device, start_iter + len(loader)
    meters = TrainMeters(log.period, epoch, max_epoch, iters, device)
    substituted = SubstitutedClips(
        max_bad_video_fraction, getattr(loader.dataset, "paths", None), fix_advice(loader.dataset)
    )
    if epoch_state is not None:
        meters.load_state_dict(epoch_state["meters"])
        substituted.load_state_dict(epoch_state["substituted"])
    data_timer, net_timer = Timer(), Timer(synchronize=device.type == "cuda")
    lr = schedule(epoch)
    frozen_params = backbone_parameters(model) if frozen_backbone else []
    set_train_mode(model, frozen_backbone or freeze_backbone_bn)
    if frozen_backbone and is_main_process():
        logger.info("epoch %d/%d trains only the classifier (TRAIN.FREEZE_BACKBONE_EPOCHS)", epoch + 1, max_epoch)
    batches = progress(loader, len(loader), f"epoch {epoch + 1}")
    for it, (frames, labels, _index, meta) in enumerate(batches, start=start_iter):
        data_seconds = data_timer.seconds()
        net_timer.reset()
        frames, labels = execution.to_input(frames), labels.to(device, non_blocking=True)
        lr = schedule(epoch + it / iters)
        set_lr(optimizer, lr)
        targets = labels
        if mixup is not None:
            frames, targets = mixup(frames, labels)
        with execution.autocast():
            logits = model(frames)
            loss = loss_fn(logits, targets)
        local_substituted = substituted.local(meta, labels.shape[0], device)
        flags = control.flags() if control is not None else (0.0, 0.0)
        loss_sum, correct1, correct5, total, substituted_total, stop_sum, checkpoint_sum = global_totals(
            loss, logits, labels, local_substituted, flags
        )
        substituted.add(total, substituted_total)
        if not math.isfinite(loss_sum):
            raise NonFiniteLossError(
                f"the training loss is {loss_sum / total} at epoch {epoch + 1}/{max_epoch}, iteration "
                f"{it + 1}/{iters}, with learning rate {lr:.6g}; lower SOLVER.BASE_LR, lengthen "
                "SOLVER.WARMUP_EPOCHS or check the input data"
            )
        optimizer_step(loss, optimizer, scaler, frozen_params)
        meters.times(data_seconds, net_timer.seconds())
        meters.update(loss_sum, correct1, correct5, total)
        if log.due(it):
            stats = {**meters.iteration_stats(it, lr), "substituted_clips": substituted.count}
            log.write(stats, ITERATION_SCALARS, step=(epoch * iters if first_step is None else first_step) + it)
        if control is not None:
            stop, save = control.decide(stop_sum, checkpoint_sum)
            if save and checkpoint is not None and it + 1 < iters:
                epoch_so_far = {"meters": meters.state_dict(), "substituted": substituted.state_dict()}
                checkpoint(MidEpoch(it + 1, iters, epoch_so_far))
                control.checkpointed()
                if stop:
                    raise Preempted(f"epoch {epoch + 1}/{max_epoch}, iteration {it + 1}/{iters}")
        data_timer.reset()

    substituted.finish()
    stats = {**meters.epoch_stats(lr), "substituted_clips": substituted.count}
    substituted.warn(epoch, max_epoch)
    log.write(stats)
    return stats


def run_epoch(
    run: Run,
    epoch: int,
    loader: Optional[DataLoader] = None,
    control: Optional[StopControl] = None,
    checkpoint: Optional[Callable[[MidEpoch], None]] = None,
) -> dict[str, Any]:
    """``train_one_epoch`` of ``run``'s parts, over ``loader`` (by default the run's train loader,
    from where a resumed run stopped when ``epoch`` is its first)."""
    own = loader is None
    resumed = own and epoch == run.start_epoch
    return train_one_epoch(
        run.net,
        run.train_loader if own else loader,
        run.optimizer,
        run.schedule,
        run.loss_fn,
        epoch,
        run.max_epoch,
        run.execution,
        run.log,
        scaler=run.scaler,
        mixup=run.mixup,
        frozen_backbone=run.backbone_frozen(epoch),
        freeze_backbone_bn=run.freeze_backbone_bn,
        max_bad_video_fraction=run.max_bad_video_fraction,
        start_iter=run.resume.iteration if resumed else 0,
        epoch_state=run.resume.epoch_state if resumed else None,
        control=control,
        checkpoint=checkpoint,
        first_step=train_sampler(run.train_loader).batches_before(epoch) if own else None,
    )


def global_totals(
    loss: torch.Tensor,
    logits: torch.Tensor,
    labels: torch.Tensor,
    substituted: torch.Tensor,
    flags: tuple[float, float] = (0.0, 0.0),
) -> list[float]:
    """The batch's summed loss, top-1 and top-5 hits, clips and substituted clips, and the
    ``flags`` (stop, checkpoint due), each summed over all processes in one all-reduce."""
    top1, top5 = topk_correct(logits.detach(), labels)
    count = torch.tensor(float(labels.shape[0]), device=loss.device)
    flag_tensor = torch.tensor(flags, device=loss.device)
    totals = torch.cat(
        [
            torch.stack([loss.detach().float() * count, top1.sum().float(), top5.sum().float(), count, substituted]),
            flag_tensor,
        ]
    )
    return all_reduce_sum(totals).tolist()


def optimizer_step(
    loss: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    scaler: Optional[torch.amp.GradScaler] = None,
    frozen: Sequence[nn.Parameter] = (),
) -> None:
    """Backward and one optimizer step (through ``scaler`` for fp16). The ``frozen`` parameters'
    gradients are dropped before the step, so SGD skips them (no decay, no momentum), while DDP's
    gradient buckets stay as they are."""
    optimizer.zero_grad(set_to_none=True)
    (scaler.scale(loss) if scaler is not None else loss).backward()
    for p in frozen:
        p.grad = None
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()


@torch.no_grad()
def update_precise_bn(model: nn.Module, loader: DataLoader, num_batches: int, execution: Execution) -> None:
    """Recompute BN statistics as true averages over ``num_batches`` training batches
    (BN.NUM_BATCHES_PRECISE) with the weights fixed (fvcore's precise BN), then average them over
    processes so that every rank evaluates and saves the same model. Sub-batch BN gets precise
    statistics per split (its ``split_bn``), then aggregated, in PySlowFast's order."""
    with warnings.catch_warnings():  # fvcore's import uses APIs that torch marks deprecated
        warnings.simplefilter("ignore", FutureWarning)
        from fvcore.nn.precise_bn import get_bn_modules, update_bn_stats

    net = unwrap_model(model)
    clips = (execution.to_input(frames) for frames, *_ in loader)
    net.train()
    with execution.autocast():
        update_bn_stats(net, clips, min(num_batches, len(loader)))
    world = get_world_size()
    for bn in get_bn_modules(net):
        for stats in (bn.running_mean, bn.running_var):
            stats.copy_(all_reduce_sum(stats.clone()) / world)
    aggregate_sub_batch_stats(net)


def train(cfg: CfgNode, signals: Optional[StopSignals] = None) -> dict[str, Any]:
    """Train cfg.MODEL on TRAIN.DATASET for SOLVER.MAX_EPOCH epochs, resuming from OUTPUT_DIR
    when possible (``build_run``), mid-epoch too. Saves every TRAIN.CHECKPOINT_PERIOD epochs and
    then validates every TRAIN.EVAL_PERIOD (both after the last epoch), so an unreadable val video
    never costs the epoch. Multigrid (MULTIGRID.LONG_CYCLE / SHORT_CYCLE): the loader gives each
    epoch's and iteration's clip shapes, each epoch sets its sub-batch BN, the schedule has
    multigrid's epoch count, and validation and checkpoints follow MULTIGRID.EVAL_FREQ. A
    mid-epoch checkpoint at most every TRAIN.CHECKPOINT_MINUTES. The class
    names, where known, go to OUTPUT_DIR/classes.txt and into every checkpoint; with
    TRAIN.KEEP_BEST_CHECKPOINT checkpoints/best.pyth follows the best validation top-1.

    One of TRAIN.STOP_SIGNALS stops the run in step (``preemption``): at the next iteration when
    it comes during an epoch or before the first one (a mid-epoch checkpoint), after precise BN and
    validation when it comes during them (an epoch-end checkpoint); rank 0 then requeues a SLURM
    job and every rank raises Preempted. ``signals`` are the handlers the caller installed (run_net
    installs them once for the whole run); without, they are installed here. Returns the last
    statistics logged (``train_epoch`` and ``val_epoch``)."""
    with installed(signals, cfg) as signals:  # from the start: a signal while the run is built is kept
        run = build_run(cfg)
        control = StopControl(signals, cfg.TRAIN.CHECKPOINT_MINUTES, is_main_process(), run.execution.device)
        try:
            return _train_epochs(cfg, run, control)
        except Preempted as stop:
            barrier()  # rank 0 has written the checkpoint before any process leaves
            raise leave(signals, stop, "checkpoint written, the same command resumes") from None
        finally:
            if run.log.writer is not None:
                run.log.writer.close()


def _train_epochs(cfg: CfgNode, run: Run, control: StopControl) -> dict[str, Any]:
    if run.class_names is not None and is_main_process():
        write_class_names(cfg.OUTPUT_DIR, run.class_names)
    keep_best = cfg.TRAIN.KEEP_BEST_CHECKPOINT
    best = BestCheckpoint(cfg.OUTPUT_DIR, run.resumed is not None, cfg.TRUST_CHECKPOINT) if keep_best else None
    results: dict[str, Any] = {}

    def save(epoch: int, position: Optional[MidEpoch] = None, validate_next: bool = False) -> None:
        aggregate_sub_batch_stats(run.net)  # sub-batch BN: the saved running statistics are the splits'
        save_training_checkpoint(
            cfg, epoch, run.net, run.optimizer, run.schedule, run.scaler, run.class_names,
            position=position, validate=validate_next, train_split=run.train_split,
        )  # fmt: skip
        control.checkpointed()

    def validate(epoch: int) -> None:
        aggregate_sub_batch_stats(run.net)  # sub-batch BN: evaluation uses the running statistics
        device = run.execution.device
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):  # draws nothing a resume misses
            results["val"] = validate_model(
                run.net, run.val_loader, epoch, run.max_epoch, run.execution, run.log, run.figures
            )
        if best is not None:
            best.update(results["val"]["top1_err"], epoch, run.net, cfg, run.class_names)

    if run.resume.validate_first:  # the run stopped before validating the epoch of its checkpoint
        validate(run.start_epoch - 1)
    if run.start_epoch >= run.max_epoch:
        logger.info("training already finished: %d of %d epochs done", run.start_epoch, run.max_epoch)
    for epoch in range(run.start_epoch, run.max_epoch):
        started = time.perf_counter()
        shuffle_loader(run.train_loader, epoch)  # under multigrid: the epoch's shapes and batch sizes
        splits = run.bn_splits(epoch)
        if splits is not None:  # the long cycle: BN statistics over MULTIGRID.BN_BASE_SIZE clips
            set_sub_batch_splits(run.net, splits)
        if epoch == run.start_epoch:
            skip_batches(run.train_loader, run.resume.iteration)
        mid_epoch = functools.partial(save, epoch - 1)  # epoch - 1: the last finished one
        results["train"] = run_epoch(run, epoch, control=control, checkpoint=mid_epoch)
        done, evaluate_now, save_now = epoch + 1, run.evaluates_after(epoch), run.saves_after(epoch)
        # The epoch's end. control.stopping here: a stop agreed at its last iteration.
        #   precise BN: when it validates or saves (not for a stop alone: the uninterrupted run has none there)
        #   checkpoint: when it saves or stops; ``validate_next`` makes a run resumed from it validate first
        #   validation: when it validates and does not stop; after the checkpoint, so a stop resumes from it
        #   a signal during precise BN or validation (``agree``): a checkpoint after them if none yet, then stop
        if cfg.BN.USE_PRECISE_STATS and (evaluate_now or save_now):
            shuffle_loader(run.precise_bn_loader, epoch)  # the train loader, or its base shapes (short cycle)
            update_precise_bn(run.net, run.precise_bn_loader, cfg.BN.NUM_BATCHES_PRECISE, run.execution)
        if save_now or control.stopping:
            save(epoch, validate_next=evaluate_now)
        if evaluate_now and not control.stopping:
            validate(epoch)
        logger.info("epoch %d/%d took %.1f s", done, run.max_epoch, time.perf_counter() - started)
        if not control.stopping and control.agree() and not save_now:
            save(epoch)
        if control.stopping:
            raise Preempted(f"after epoch {done}/{run.max_epoch}")
    return results
