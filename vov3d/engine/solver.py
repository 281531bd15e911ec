"""The learning-rate schedule (per iteration, with linear warm-up), the SGD optimizer with BN
parameters in their own group (BN.WEIGHT_DECAY_GROUPS), and the loss (a batch mean, as the
original's ``reduction="mean"``)."""

from __future__ import annotations

import bisect
import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from vov3d.checkpoint import unwrap_model
from vov3d.config import CfgNode, cfg_error

from .finetune import classifier_of
from .multigrid import RescaledSolver

LR_POLICIES = ("cosine", "steps_with_relative_lrs")
LOSSES = ("cross_entropy", "soft_cross_entropy")


@dataclass(frozen=True)
class LRSchedule:
    """Learning rate as a function of the fractional epoch ``epoch + iteration / iterations``.

    Values are PySlowFast's: cosine from ``base_lr`` to ``end_lr`` over ``max_epoch``, or
    ``base_lr * lrs[i]`` from epoch ``steps[i]``; during the first ``warmup_epochs`` the rate
    rises linearly from ``warmup_start_lr`` to the policy's value at the end of the warm-up.
    """

    policy: str
    base_lr: float
    end_lr: float
    steps: tuple[float, ...]
    lrs: tuple[float, ...]
    max_epoch: int
    warmup_epochs: float
    warmup_start_lr: float

    @classmethod
    def from_cfg(cls, cfg: CfgNode) -> LRSchedule:
        """The SOLVER schedule; with BASE_LR_SCALE_NUM_SHARDS every rate is multiplied by NUM_SHARDS
        (linear scaling), computed here because the cfg is frozen."""
        s = cfg.SOLVER
        if s.LR_POLICY not in LR_POLICIES:
            raise cfg_error(cfg, "SOLVER.LR_POLICY", f"must be one of {', '.join(LR_POLICIES)}")
        if s.LR_POLICY == "steps_with_relative_lrs":
            if not s.STEPS or s.STEPS[0] != 0 or list(s.STEPS) != sorted(s.STEPS):
                raise cfg_error(cfg, "SOLVER.STEPS", "must be increasing start epochs beginning with 0")
            if len(s.LRS) < len(s.STEPS):
                raise cfg_error(cfg, "SOLVER.LRS", f"needs a rate for each of the {len(s.STEPS)} STEPS")
        if s.MAX_EPOCH < 1:
            raise cfg_error(cfg, "SOLVER.MAX_EPOCH", "must be 1 or more")
        if s.WARMUP_EPOCHS < 0:  # longer than the run is allowed: config validation warns
            raise cfg_error(cfg, "SOLVER.WARMUP_EPOCHS", "must be 0 or more")
        scale = cfg.NUM_SHARDS if s.BASE_LR_SCALE_NUM_SHARDS else 1
        return cls(
            policy=s.LR_POLICY,
            base_lr=s.BASE_LR * scale,
            end_lr=s.COSINE_END_LR * scale,
            steps=tuple(s.STEPS),
            lrs=tuple(s.LRS),
            max_epoch=s.MAX_EPOCH,
            warmup_epochs=s.WARMUP_EPOCHS,
            warmup_start_lr=s.WARMUP_START_LR * scale,
        )

    def rescaled(self, solver: RescaledSolver) -> LRSchedule:
        """This schedule with multigrid's steps, relative rates (where it has them) and epoch count."""
        return replace(self, steps=solver.steps, lrs=solver.lrs or self.lrs, max_epoch=solver.max_epoch)

    def __call__(self, epoch: float) -> float:
        if epoch < self.warmup_epochs:
            end = self._policy(self.warmup_epochs)
            return self.warmup_start_lr + (end - self.warmup_start_lr) * epoch / self.warmup_epochs
        return self._policy(epoch)

    def _policy(self, epoch: float) -> float:
        if self.policy == "cosine":
            return self.end_lr + (self.base_lr - self.end_lr) * (math.cos(math.pi * epoch / self.max_epoch) + 1) / 2
        return self.base_lr * self.lrs[bisect.bisect_right(self.steps, epoch) - 1]

    def state_dict(self) -> dict[str, Any]:
        """Stored in checkpoints, so a resumed run can say when its schedule differs."""
        return asdict(self)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """``lr`` times each group's ``lr_mult`` (SOLVER.BACKBONE_LR_MULT for the backbone groups)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_mult", 1.0)


BN_GROUP_RULES = ("name", "type")


def _is_bn_parameter(model: nn.Module, rule: str) -> dict[int, bool]:
    """Parameter id -> whether ``rule`` puts it in the BN group. ``name``: its name contains
    "bn" (the original code; BatchNorms named otherwise, as VoV3D's ``a.1`` / ``c.1``, are not
    BN parameters). ``type``: it belongs to a BatchNorm layer, SyncBatchNorm included."""
    if rule == "name":
        return {id(p): "bn" in name for name, p in model.named_parameters()}
    if rule != "type":
        raise ValueError(f"BN weight decay groups are by name or type, got {rule!r}")
    return {
        id(p): isinstance(module, nn.modules.batchnorm._BatchNorm)
        for module in model.modules()
        for p in module.parameters(recurse=False)
    }


def parameter_groups(
    model: nn.Module,
    weight_decay: float,
    bn_weight_decay: float,
    bn_rule: str = "name",
    backbone_lr_mult: float = 1.0,
) -> list[dict[str, Any]]:
    """The trainable parameters in groups: the BN ones (chosen by ``bn_rule``, see
    BN.WEIGHT_DECAY_GROUPS) with ``bn_weight_decay``, all others with ``weight_decay``. With a
    ``backbone_lr_mult`` other than 1 each is split again into backbone and classifier (the
    network's ``get_classifier()``); a group's ``lr_mult`` is the factor ``set_lr`` applies to the
    schedule."""
    net = unwrap_model(model)
    is_bn = _is_bn_parameter(net, bn_rule)
    trainable = [p for p in net.parameters() if p.requires_grad]
    split = backbone_lr_mult != 1.0
    head = {id(p) for p in classifier_of(net).parameters()} if split else set()
    groups = []
    for bn, decay in ((False, weight_decay), (True, bn_weight_decay)):
        for classifier in (False, True) if split else (None,):
            params = [p for p in trainable if is_bn[id(p)] == bn and classifier in (None, id(p) in head)]
            mult = backbone_lr_mult if classifier is False else 1.0
            groups.append({"params": params, "weight_decay": decay, "lr_mult": mult})
    return [g for g in groups if g["params"]]


def build_optimizer(model: nn.Module, cfg: CfgNode) -> torch.optim.Optimizer:
    """SGD with SOLVER's momentum, dampening and Nesterov options; the rate is set per iteration."""
    s = cfg.SOLVER
    if s.OPTIMIZING_METHOD != "sgd":
        raise cfg_error(cfg, "SOLVER.OPTIMIZING_METHOD", "only sgd is supported")
    if s.NESTEROV and (s.MOMENTUM <= 0 or s.DAMPENING != 0):
        raise cfg_error(cfg, "SOLVER.NESTEROV", "Nesterov momentum needs SOLVER.MOMENTUM > 0 and DAMPENING 0")
    if cfg.BN.WEIGHT_DECAY_GROUPS not in BN_GROUP_RULES:
        raise cfg_error(cfg, "BN.WEIGHT_DECAY_GROUPS", f"must be one of {', '.join(BN_GROUP_RULES)}")
    return torch.optim.SGD(
        parameter_groups(model, s.WEIGHT_DECAY, cfg.BN.WEIGHT_DECAY, cfg.BN.WEIGHT_DECAY_GROUPS, s.BACKBONE_LR_MULT),
        lr=s.BASE_LR,
        momentum=s.MOMENTUM,
        dampening=s.DAMPENING,
        nesterov=s.NESTEROV,
    )


def soft_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Cross entropy against soft targets: ``1 - smoothing`` on the label, ``smoothing`` spread
    evenly over all classes; (B, classes) ``labels`` (mixed targets, MIXUP) are the targets themselves."""
    if labels.ndim == 2:
        target = labels.float()
    else:
        classes = logits.shape[1]
        target = torch.full_like(logits, smoothing / classes, dtype=torch.float32)
        target.scatter_(1, labels.view(-1, 1), 1 - smoothing + smoothing / classes)
    return -(target * F.log_softmax(logits.float(), dim=1)).sum(dim=1).mean()


def build_loss(cfg: CfgNode) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """MODEL.LOSS_FUNC as ``loss(logits, labels)``, averaged over the batch; ``labels`` are class
    indices, or (B, classes) soft targets (MIXUP) for either loss."""
    name, smoothing = cfg.MODEL.LOSS_FUNC, cfg.MODEL.LABEL_SMOOTHING
    if name not in LOSSES:
        raise cfg_error(cfg, "MODEL.LOSS_FUNC", f"must be one of {', '.join(LOSSES)}")
    if not 0 <= smoothing < 1:
        raise cfg_error(cfg, "MODEL.LABEL_SMOOTHING", "must be in [0, 1)")
    if name == "cross_entropy":
        if smoothing:
            raise cfg_error(
                cfg,
                "MODEL.LABEL_SMOOTHING",
                "applies to MODEL.LOSS_FUNC soft_cross_entropy, not cross_entropy",
            )
        return lambda logits, labels: F.cross_entropy(logits.float(), labels)
    return lambda logits, labels: soft_cross_entropy(logits, labels, smoothing)
