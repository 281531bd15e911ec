"""Fine-tuning controls: the backbone frozen for the first epochs (weights and BN statistics),
BN statistics frozen throughout, the backbone learning-rate multiplier against the schedule and
the BN weight-decay groups, and the best checkpoint by validation top-1."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from tests.helpers import Clips, tiny_cfg
from vov3d.config import ConfigError
from vov3d.engine import train
from vov3d.engine.finetune import BestCheckpoint, backbone_parameters, check_finetune_cfg, set_train_mode
from vov3d.engine.run_folder import load_test_checkpoint
from vov3d.engine.runtime import Execution
from vov3d.engine.solver import LRSchedule, build_loss, build_optimizer, set_lr
from vov3d.utils.logging import StatsLog
from vov3d.utils.run_layout import RunFolder

CPU = torch.device("cpu")


class Net(nn.Module):
    """A backbone with a BatchNorm (named ``bn``, so both BN group rules find it) and a classifier,
    named ``fc`` rather than X3D's ``head.projection``: fine-tuning asks ``get_classifier()``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 4, 1)
        self.bn = nn.BatchNorm3d(4)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.bn(self.conv(x)).mean(dim=(2, 3, 4)))

    def get_classifier(self) -> nn.Module:
        return self.fc


def cfg_with(tmp_path: Path, *opts):
    return tiny_cfg(tmp_path, "LOG_PERIOD", 100, "MODEL.CHANNELS_LAST", False, *opts)


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def train_epochs(model: nn.Module, cfg, epochs: int) -> list[dict[str, torch.Tensor]]:
    """The model's state after each of ``epochs`` epochs, one optimizer for all."""
    loader = DataLoader(Clips(), batch_size=2)
    optimizer, schedule, loss_fn = build_optimizer(model, cfg), LRSchedule.from_cfg(cfg), build_loss(cfg)
    states = [snapshot(model)]
    for epoch in range(epochs):
        train.train_one_epoch(
            model, loader, optimizer, schedule, loss_fn, epoch, cfg.SOLVER.MAX_EPOCH, Execution.from_cfg(cfg, CPU),
            StatsLog(cfg.OUTPUT_DIR, cfg.LOG_PERIOD), frozen_backbone=epoch < cfg.TRAIN.FREEZE_BACKBONE_EPOCHS,
            freeze_backbone_bn=cfg.TRAIN.FREEZE_BACKBONE_BN,
        )  # fmt: skip
        states.append(snapshot(model))
    return states


def changed(before: dict, after: dict) -> set[str]:
    return {k for k in before if k != "bn.num_batches_tracked" and not torch.equal(before[k], after[k])}


BACKBONE = {"conv.weight", "conv.bias", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"}
CLASSIFIER = {"fc.weight", "fc.bias"}


def test_the_backbone_is_frozen_for_the_first_epochs_then_trained(tmp_path: Path) -> None:
    torch.manual_seed(0)
    start, frozen, thawed = train_epochs(Net(), cfg_with(tmp_path, "TRAIN.FREEZE_BACKBONE_EPOCHS", 1), 2)
    assert changed(start, frozen) == CLASSIFIER  # weights and BN statistics of the backbone kept
    assert changed(frozen, thawed) == BACKBONE | CLASSIFIER


def test_frozen_bn_statistics_stay_while_the_weights_train(tmp_path: Path) -> None:
    torch.manual_seed(0)
    start, after = train_epochs(Net(), cfg_with(tmp_path, "TRAIN.FREEZE_BACKBONE_BN", True), 1)
    assert changed(start, after) == BACKBONE - {"bn.running_mean", "bn.running_var"} | CLASSIFIER


def test_by_default_everything_trains(tmp_path: Path) -> None:
    torch.manual_seed(0)
    start, after = train_epochs(Net(), cfg_with(tmp_path), 1)
    assert changed(start, after) == BACKBONE | CLASSIFIER


def test_settings_that_cannot_work_are_refused_when_training_starts(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="BN.USE_PRECISE_STATS"):
        check_finetune_cfg(cfg_with(tmp_path, "TRAIN.FREEZE_BACKBONE_BN", True, "BN.USE_PRECISE_STATS", True))
    with pytest.raises(ConfigError, match="SOLVER.BACKBONE_LR_MULT"):
        check_finetune_cfg(cfg_with(tmp_path, "SOLVER.BACKBONE_LR_MULT", -1.0))
    with pytest.raises(ConfigError, match="TRAIN.KEEP_BEST_CHECKPOINT True"):
        check_finetune_cfg(cfg_with(tmp_path, "TEST.USE_BEST_CHECKPOINT", True))
    check_finetune_cfg(cfg_with(tmp_path, "TEST.USE_BEST_CHECKPOINT", True, "TRAIN.KEEP_BEST_CHECKPOINT", True))


@pytest.mark.parametrize("rule", ["name", "type"])
def test_backbone_lr_multiplier_keeps_its_ratio_and_the_bn_weight_decay(tmp_path: Path, rule: str) -> None:
    cfg = cfg_with(tmp_path, "SOLVER.BACKBONE_LR_MULT", 0.1, "BN.WEIGHT_DECAY_GROUPS", rule, "BN.WEIGHT_DECAY", 0.0)
    model = Net()
    optimizer = build_optimizer(model, cfg)
    names = {id(p): n for n, p in model.named_parameters()}
    groups = {
        tuple(sorted(names[id(p)] for p in g["params"])): (g["weight_decay"], g["lr_mult"])
        for g in optimizer.param_groups
    }
    assert groups == {
        ("conv.bias", "conv.weight"): (cfg.SOLVER.WEIGHT_DECAY, 0.1),
        ("fc.bias", "fc.weight"): (cfg.SOLVER.WEIGHT_DECAY, 1.0),
        ("bn.bias", "bn.weight"): (0.0, 0.1),
    }
    schedule = LRSchedule.from_cfg(cfg)
    for epoch in (0.0, 0.25, 1.0, 3.5):  # warm-up and cosine
        set_lr(optimizer, schedule(epoch))
        for group in optimizer.param_groups:
            assert group["lr"] == pytest.approx(schedule(epoch) * group["lr_mult"])


def test_without_a_multiplier_the_groups_are_the_original_two(tmp_path: Path) -> None:
    optimizer = build_optimizer(Net(), cfg_with(tmp_path))
    assert [len(g["params"]) for g in optimizer.param_groups] == [4, 2]
    model = Net()
    assert [id(p) for p in backbone_parameters(model)] == [
        id(p) for m in (model.conv, model.bn) for p in m.parameters()
    ]


def test_a_network_that_does_not_name_its_classifier_cannot_be_fine_tuned(tmp_path: Path) -> None:
    unnamed = nn.Sequential(nn.Conv3d(3, 4, 1), nn.BatchNorm3d(4))
    for fine_tune in (
        lambda: backbone_parameters(unnamed),
        lambda: set_train_mode(unnamed, freeze_backbone_bn=True),
        lambda: build_optimizer(unnamed, cfg_with(tmp_path, "SOLVER.BACKBONE_LR_MULT", 0.1)),
    ):
        with pytest.raises(TypeError, match="Sequential has no get_classifier"):
            fine_tune()
    build_optimizer(unnamed, cfg_with(tmp_path))  # without fine-tuning options it needs none


def test_best_checkpoint_follows_the_lowest_error_across_a_resume(tmp_path: Path) -> None:
    cfg, model = cfg_with(tmp_path), Net()
    best = BestCheckpoint(str(tmp_path), resumed=False)
    assert best.update(50.0, 0, model, cfg, class_names=["a", "b"]) == RunFolder(str(tmp_path)).best_path
    with torch.no_grad():
        model.conv.weight.add_(1.0)
    assert best.update(60.0, 1, model, cfg) is None  # worse: the file keeps epoch 0's weights
    saved = torch.load(RunFolder(str(tmp_path)).best_path, weights_only=True)
    assert saved["epoch"] == 0 and saved["val_top1_err"] == 50.0 and saved["class_names"] == ["a", "b"]
    assert not torch.equal(saved["model_state"]["conv.weight"], model.conv.weight)
    resumed = BestCheckpoint(str(tmp_path), resumed=True)
    assert resumed.top1_err == 50.0 and resumed.update(55.0, 2, model, cfg) is None
    assert resumed.update(40.0, 3, model, cfg) is not None
    fresh = BestCheckpoint(str(tmp_path), resumed=False)  # a new run in the same folder starts over
    assert fresh.update(45.0, 0, model, cfg) is not None


def test_use_best_checkpoint_tests_best_pyth(tmp_path: Path) -> None:
    cfg = cfg_with(tmp_path, "TEST.USE_BEST_CHECKPOINT", True)
    with pytest.raises(Exception, match="TRAIN.KEEP_BEST_CHECKPOINT"):
        load_test_checkpoint(cfg, Net())
    trained = Net()
    BestCheckpoint(str(tmp_path), resumed=False).update(10.0, 0, trained, cfg)
    model = Net()
    assert load_test_checkpoint(cfg, model)[0] == RunFolder(str(tmp_path)).best_path
    assert torch.equal(model.conv.weight, trained.conv.weight)
    both = cfg_with(tmp_path, "TEST.USE_BEST_CHECKPOINT", True, "TEST.CHECKPOINT_FILE_PATH", "x.pyth")
    with pytest.raises(ConfigError, match="TEST.CHECKPOINT_FILE_PATH"):
        load_test_checkpoint(both, Net())
