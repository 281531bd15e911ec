"""Learning-rate schedules, the optimizer's parameter groups and options, and the losses."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from tests.conftest import CONFIGS
from tests.helpers import default_cfg
from vov3d.config import ConfigError, get_cfg, load_config
from vov3d.engine.solver import LRSchedule, build_loss, build_optimizer, parameter_groups, set_lr


def solver_cfg(**solver):
    return default_cfg(freeze=True, **{f"SOLVER.{key}": value for key, value in solver.items()})


def test_cosine_values() -> None:
    schedule = LRSchedule.from_cfg(solver_cfg(BASE_LR=0.4, COSINE_END_LR=0.0, MAX_EPOCH=10, WARMUP_EPOCHS=0.0))
    assert schedule(0) == pytest.approx(0.4)
    assert schedule(5) == pytest.approx(0.2)
    assert schedule(2.5) == pytest.approx(0.2 * (1 + math.cos(math.pi / 4)))
    assert schedule(10) == pytest.approx(0.0)


def test_cosine_ends_at_cosine_end_lr() -> None:
    schedule = LRSchedule.from_cfg(solver_cfg(BASE_LR=1.0, COSINE_END_LR=0.1, MAX_EPOCH=4))
    assert schedule(4) == pytest.approx(0.1)
    assert schedule(2) == pytest.approx(0.55)


def test_steps_with_relative_lrs_as_in_the_finetune_configs() -> None:
    cfg = load_config([str(CONFIGS / "SSv1/vov3d/finetune/vov3d_M_F32_finetune.yaml")], ["LOG_MODEL_INFO", "False"])
    schedule = LRSchedule.from_cfg(cfg)  # BASE_LR 0.05, STEPS [0, 35, 45], warm-up 0.19 from 1e-4
    assert schedule(0.19) == pytest.approx(0.05)
    assert schedule(34.99) == pytest.approx(0.05)
    assert schedule(35) == pytest.approx(0.005)
    assert schedule(44.5) == pytest.approx(0.005)
    assert schedule(45) == pytest.approx(0.0005)
    assert schedule(49.9) == pytest.approx(0.0005)


def test_fractional_warmup_is_linear_to_the_policy_value() -> None:
    schedule = LRSchedule.from_cfg(
        solver_cfg(BASE_LR=1.0, MAX_EPOCH=10, WARMUP_EPOCHS=0.5, WARMUP_START_LR=0.1, COSINE_END_LR=0.0)
    )
    end = 0.5 * (1 + math.cos(math.pi * 0.5 / 10))  # the cosine value where the warm-up ends
    assert schedule(0) == pytest.approx(0.1)
    assert schedule(0.25) == pytest.approx(0.1 + (end - 0.1) / 2)
    assert schedule(0.5) == pytest.approx(end)
    # Per-iteration: 4 iterations per epoch give 4 distinct rates inside the first epoch.
    assert len({schedule(i / 4) for i in range(4)}) == 4


def test_base_lr_scales_with_num_shards() -> None:
    cfg = get_cfg()
    cfg.NUM_SHARDS = 4
    cfg.SOLVER.BASE_LR, cfg.SOLVER.WARMUP_START_LR, cfg.SOLVER.BASE_LR_SCALE_NUM_SHARDS = 0.1, 0.01, True
    schedule = LRSchedule.from_cfg(cfg)
    assert (schedule.base_lr, schedule.warmup_start_lr) == pytest.approx((0.4, 0.04))


def test_bad_schedules_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="SOLVER.LR_POLICY"):
        LRSchedule.from_cfg(solver_cfg(LR_POLICY="linear"))
    with pytest.raises(ConfigError, match="SOLVER.STEPS"):
        LRSchedule.from_cfg(solver_cfg(LR_POLICY="steps_with_relative_lrs", STEPS=[5, 10], LRS=[1, 0.1]))
    with pytest.raises(ConfigError, match="SOLVER.LRS"):
        LRSchedule.from_cfg(solver_cfg(LR_POLICY="steps_with_relative_lrs", STEPS=[0, 10], LRS=[1]))


class OddNames(nn.Module):
    """BN layers whose names do not say "bn", and a conv whose name does."""

    def __init__(self) -> None:
        super().__init__()
        self.bn_conv = nn.Conv3d(3, 4, 1)
        self.a = nn.BatchNorm3d(4)
        self.b = nn.SyncBatchNorm(4)
        self.head = nn.Linear(4, 2)


def test_bn_group_by_module_type() -> None:
    model = OddNames()
    groups = parameter_groups(model, weight_decay=1e-4, bn_weight_decay=0.0, bn_rule="type")
    other, bn = groups
    assert {id(p) for p in bn["params"]} == {id(p) for m in (model.a, model.b) for p in m.parameters()}
    assert {id(p) for p in other["params"]} == {id(p) for m in (model.bn_conv, model.head) for p in m.parameters()}
    assert (other["weight_decay"], bn["weight_decay"]) == (1e-4, 0.0)


def test_bn_group_by_name_is_the_default() -> None:
    """The original rule: a parameter is "BN" when its name contains bn, whatever its layer."""
    model = OddNames()
    other, bn = parameter_groups(model, weight_decay=1e-4, bn_weight_decay=0.0)
    assert {id(p) for p in bn["params"]} == {id(p) for p in model.bn_conv.parameters()}
    assert {id(p) for p in other["params"]} == {id(p) for m in (model.a, model.b, model.head) for p in m.parameters()}


def test_sgd_options_from_cfg() -> None:
    cfg = get_cfg()
    cfg.SOLVER.MOMENTUM, cfg.SOLVER.NESTEROV, cfg.SOLVER.DAMPENING = 0.8, False, 0.1
    cfg.SOLVER.WEIGHT_DECAY, cfg.BN.WEIGHT_DECAY, cfg.BN.WEIGHT_DECAY_GROUPS = 5e-5, 1e-6, "type"
    optimizer = build_optimizer(OddNames(), cfg)
    assert isinstance(optimizer, torch.optim.SGD)
    assert [g["weight_decay"] for g in optimizer.param_groups] == [5e-5, 1e-6]
    assert optimizer.defaults["momentum"] == 0.8 and optimizer.defaults["dampening"] == 0.1
    assert not optimizer.defaults["nesterov"]
    set_lr(optimizer, 0.3)
    assert [g["lr"] for g in optimizer.param_groups] == [0.3, 0.3]


def test_nesterov_with_dampening_is_a_config_error() -> None:
    cfg = get_cfg()
    cfg.SOLVER.NESTEROV, cfg.SOLVER.DAMPENING = True, 0.5
    with pytest.raises(ConfigError, match="SOLVER.NESTEROV"):
        build_optimizer(OddNames(), cfg)


def test_losses() -> None:
    logits, labels = torch.randn(6, 5), torch.tensor([0, 1, 2, 3, 4, 0])
    cfg = get_cfg()
    assert torch.allclose(build_loss(cfg)(logits, labels), F.cross_entropy(logits, labels))
    cfg.MODEL.LOSS_FUNC, cfg.MODEL.LABEL_SMOOTHING = "soft_cross_entropy", 0.1
    expected = F.cross_entropy(logits, labels, label_smoothing=0.1)
    assert torch.allclose(build_loss(cfg)(logits, labels), expected)
    cfg.MODEL.LOSS_FUNC = "cross_entropy"
    with pytest.raises(ConfigError, match="MODEL.LABEL_SMOOTHING"):
        build_loss(cfg)
    cfg.MODEL.LOSS_FUNC = "focal"
    with pytest.raises(ConfigError, match="MODEL.LOSS_FUNC"):
        build_loss(cfg)
