"""The training loop: the loss goes down, a NaN stops the run with the iteration and the rate,
statistics and logs have the documented form, mixed precision runs on the CPU."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from tests.engine.conftest import final_weights, quick_cfg
from tests.helpers import Tiny, run_epoch, tiny_cfg
from vov3d.engine import assembly, launch, train
from vov3d.engine.solver import LRSchedule
from vov3d.models import SubBatchNorm3d
from vov3d.utils.logging import setup_logging
from vov3d.utils.run_layout import RunFolder


def test_nan_loss_stops_with_iteration_and_learning_rate(tmp_path: Path) -> None:
    cfg = tiny_cfg(tmp_path)
    with pytest.raises(train.NonFiniteLossError) as error:
        run_epoch(Tiny(scale=math.nan), cfg, epoch=1)
    message = str(error.value)
    assert "the training loss is nan at epoch 2/4, iteration 1/4, with learning rate" in message
    assert f"{LRSchedule.from_cfg(cfg)(1.0):.6g}" in message


def test_infinite_loss_stops_too(tmp_path: Path) -> None:
    with pytest.raises(train.NonFiniteLossError, match="loss is inf at epoch 1/4, iteration 1/4"):
        run_epoch(Tiny(), tiny_cfg(tmp_path), loss_fn=lambda logits, labels: (logits.sum() ** 2 + 1) * math.inf)


def test_epoch_statistics_and_json_lines(tmp_path: Path) -> None:
    setup_logging(str(tmp_path))
    stats = run_epoch(Tiny(), tiny_cfg(tmp_path))
    assert stats["_type"] == "train_epoch" and stats["epoch"] == "1/4"
    assert set(stats) == {"_type", "epoch", "lr", "loss", "top1_err", "top5_err", "dt_data", "dt_net", "eta", "mem",
                          "substituted_clips"}  # fmt: skip
    assert stats["top5_err"] == 0.0 and 0 <= stats["top1_err"] <= 100
    iterations = RunFolder(str(tmp_path)).read_stats("train_iter")
    assert [s["iter"] for s in iterations] == ["2/4", "4/4"]
    assert set(iterations[0]) == set(stats) | {"iter"}
    assert iterations[0]["lr"] < iterations[1]["lr"]  # inside the warm-up, rising every iteration


def output_dtypes(layer: nn.Module) -> set:
    """The dtypes ``layer`` computes in, recorded by a forward hook (autocast changes them)."""
    seen: set = set()
    layer.register_forward_hook(lambda module, inputs, output: seen.add(output.dtype))
    return seen


@pytest.mark.parametrize("mixed, dtype", [(True, torch.bfloat16), (False, torch.float32)])
def test_bf16_mixed_precision_on_the_cpu(tmp_path: Path, mixed: bool, dtype: torch.dtype) -> None:
    model = Tiny()
    dtypes = output_dtypes(model.linear)
    stats = run_epoch(model, tiny_cfg(tmp_path, "TRAIN.MIXED_PRECISION", mixed))
    assert math.isfinite(stats["loss"])
    assert dtypes == {dtype} and model.linear.weight.dtype == torch.float32  # weights stay fp32


def test_loss_goes_down_on_a_learnable_set(colour_data: Path, tmp_path: Path) -> None:
    cfg = quick_cfg(
        colour_data, tmp_path, "SOLVER.MAX_EPOCH", 8, "TRAIN.EVAL_PERIOD", 8, "TRAIN.CHECKPOINT_PERIOD", 8,
        "LOG_PERIOD", 100, "TEST.ENABLE", False,
    )  # fmt: skip
    assert launch.run_jobs(cfg, "tcp://localhost:9999") == 0
    run = RunFolder(str(tmp_path))
    losses = [s["loss"] for s in run.read_stats("train_epoch")]
    assert len(losses) == 8
    # Batches of 4 make the epoch losses noisy (seeds 0-3 end at 0.23-0.63 of the start): a quarter
    # down is learning, not luck; an untrained network stays near the start.
    assert sum(losses[-2:]) < 0.75 * sum(losses[:2]), losses
    assert run.read_stats("val_epoch")[-1]["top1_err"] < 75  # better than chance
    assert os.path.isfile(run.checkpoint_path(8))


def test_nan_loss_exits_nonzero_with_the_message(
    colour_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(assembly, "build_loss", lambda cfg: lambda logits, labels: logits.sum() * math.nan)
    cfg = quick_cfg(colour_data, tmp_path, "TEST.ENABLE", False)
    assert launch.run_jobs(cfg, "tcp://localhost:9999") == 1
    assert "NonFiniteLossError: the training loss is nan at epoch 1/3, iteration 1/4" in capsys.readouterr().err


class TinyConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm3d(4)
        self.linear = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.bn(self.conv(x)).mean(dim=(2, 3, 4)))


def test_channels_last_3d_with_mixed_precision(tmp_path: Path) -> None:
    # A moderate learning rate and a fixed initialisation: bf16 at 0.5 can diverge on random clips.
    cfg = tiny_cfg(tmp_path, "MODEL.CHANNELS_LAST", True, "TRAIN.MIXED_PRECISION", True, "SOLVER.BASE_LR", 0.05)
    torch.manual_seed(0)
    model = TinyConv().to(memory_format=torch.channels_last_3d)
    dtypes = output_dtypes(model.conv)
    stats = run_epoch(model, cfg)
    assert math.isfinite(stats["loss"]) and dtypes == {torch.bfloat16}
    assert model.conv.weight.is_contiguous(memory_format=torch.channels_last_3d)


def test_a_sub_batch_norm_run_evaluates_and_saves_its_splits_aggregated_statistics(
    colour_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Training moves only the splits' statistics. Without precise BN, validation (epoch 1, no
    checkpoint before it) must see their aggregate, not the initial zeros and ones, and the epoch 2
    checkpoint (written before validating) the aggregate of the end of epoch 2, as validated."""
    validated: list[dict[str, torch.Tensor]] = []

    def validate_model(model: nn.Module, *args, **kwargs):
        assert any(isinstance(m, SubBatchNorm3d) for m in model.modules())
        validated.append({n: t.clone() for n, t in model.state_dict().items() if n.endswith(("_mean", "_var"))})
        return original(model, *args, **kwargs)

    original = train.validate_model
    monkeypatch.setattr(train, "validate_model", validate_model)
    opts = ("BN.NORM_TYPE", "sub_batchnorm", "BN.NUM_SPLITS", 2, "BN.USE_PRECISE_STATS", False,
            "SOLVER.MAX_EPOCH", 2, "TRAIN.CHECKPOINT_PERIOD", 2)  # fmt: skip
    train.train(quick_cfg(colour_data, tmp_path, *opts))
    first, second = validated
    for name, stats in first.items():
        assert not torch.all(stats == (0.0 if name.endswith("mean") else 1.0)), name
    saved = final_weights(tmp_path, 2)
    for name, stats in second.items():
        assert torch.equal(saved[name], stats) and not torch.equal(stats, first[name]), name
