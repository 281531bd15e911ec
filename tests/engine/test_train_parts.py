"""The parts of a training iteration, each alone: the count of clips that stood in for
unreadable videos, the meters and their json_stats lines, the optimizer step with frozen
parameters and a loss scaler, where statistics are written, and how the model runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from vov3d.config import get_cfg
from vov3d.datasets import TooManyBrokenVideosError
from vov3d.datasets.transforms import Normalize
from vov3d.engine.runtime import Execution
from vov3d.engine.substituted import MAX_LISTED, SubstitutedClips
from vov3d.engine.train import optimizer_step
from vov3d.engine.train_meters import TrainMeters
from vov3d.utils.logging import StatsLog
from vov3d.utils.run_layout import RunFolder

CPU = torch.device("cpu")


def batch_meta(*substituted: int) -> dict:
    return {"substituted": torch.tensor(substituted)}


def test_substituted_clips_are_counted_and_named_once_per_video(vov3d_log: pytest.LogCaptureFixture) -> None:
    paths = [f"v{i}.mp4" for i in range(6)]
    counter = SubstitutedClips(max_fraction=0.5, paths=paths)
    for meta in (batch_meta(-1, 3, -1, 3), batch_meta(5, -1, -1, -1), {}):  # {}: a dataset without substitution
        local = counter.local(meta, 4, CPU)
        counter.add(4, float(local))
    assert (counter.clips, counter.count) == (12, 3)
    assert counter.files() == ["v3.mp4", "v5.mp4"]
    counter.finish()  # 3 of 12 is within half
    counter.warn(epoch=1, max_epoch=5)
    (line,) = [r.getMessage() for r in vov3d_log.records if "stood in" in r.getMessage()]
    assert line.startswith("epoch 2/5: 3 of 12 training clips stood in for unreadable videos (2 files: v3.mp4, v5.mp4)")


def test_without_substitutions_nothing_is_said(vov3d_log: pytest.LogCaptureFixture) -> None:
    counter = SubstitutedClips(max_fraction=0.0)
    counter.add(4, float(counter.local(batch_meta(-1, -1, -1, -1), 4, CPU)))
    counter.finish()
    counter.warn(0, 1)
    assert counter.count == 0 and not vov3d_log.records


def test_too_many_substitutions_stop_once_enough_clips_are_seen() -> None:
    counter = SubstitutedClips(max_fraction=0.05)
    counter.add(99, float(counter.local(batch_meta(*range(12)), 12, CPU)))  # 12 of 99: too few clips to judge
    with pytest.raises(TooManyBrokenVideosError) as error:
        counter.add(1, 0.0)  # no substitution in this batch: not judged now
        counter.add(1, float(counter.local(batch_meta(0), 1, CPU)))
    message = str(error.value)
    assert "13 of 101 training clips stood in for unreadable videos (12 files: " in message
    assert f"video {MAX_LISTED - 1}, and 2 more)" in message and "video 10" not in message
    assert "DATA.MAX_BAD_VIDEO_FRACTION = 0.05" in message


def test_at_the_end_of_the_epoch_a_short_epoch_is_judged_too() -> None:
    counter = SubstitutedClips(max_fraction=0.05)
    counter.add(10, float(counter.local(batch_meta(0, *[-1] * 9), 10, CPU)))  # 1 of 10, too few to judge yet
    with pytest.raises(TooManyBrokenVideosError, match="1 of 10 training clips"):
        counter.finish()


def test_meters_make_the_window_and_the_epoch_lines() -> None:
    meters = TrainMeters(window=2, epoch=1, max_epoch=3, iters=4, device=CPU)
    for loss_sum, correct1, data, net in [(8.0, 4, 1.0, 1.0), (4.0, 2, 1.0, 3.0), (2.0, 0, 2.0, 4.0)]:
        meters.times(data, net)
        meters.update(loss_sum, correct1, correct5=4, total=4)
    line = meters.iteration_stats(it=2, lr=0.1)
    assert line["_type"] == "train_iter" and (line["epoch"], line["iter"]) == ("2/3", "3/4")
    assert line["loss"] == pytest.approx(0.75) and line["top1_err"] == pytest.approx(75.0)  # the last 2 batches
    assert line["top5_err"] == 0.0 and (line["dt_data"], line["dt_net"]) == (1.5, 3.5)
    assert line["eta"] == "0:00:25"  # 5 iterations left (1 here, 4 next epoch) of 5 s each
    epoch = meters.epoch_stats(lr=0.1)
    assert epoch["_type"] == "train_epoch" and "iter" not in epoch
    assert epoch["loss"] == pytest.approx(14 / 12) and epoch["top1_err"] == pytest.approx(50.0)
    assert epoch["eta"] == "0:00:16"  # 4 iterations of the last epoch at the epoch's average of 4 s
    assert set(line) == set(epoch) | {"iter"}


class TwoLayers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Linear(3, 3)
        self.classifier = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.backbone(x))


@pytest.mark.parametrize("scaled", [False, True])
def test_the_step_leaves_frozen_parameters_and_their_optimizer_state_alone(scaled: bool) -> None:
    torch.manual_seed(0)
    model = TwoLayers()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=4.0) if scaled else None
    before = {k: v.clone() for k, v in model.state_dict().items()}
    frozen = list(model.backbone.parameters())
    loss = model(torch.randn(4, 3)).square().mean()
    optimizer_step(loss, optimizer, scaler, frozen)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in ("backbone.weight", "backbone.bias"))
    assert not any(torch.equal(before[k], after[k]) for k in ("classifier.weight", "classifier.bias"))
    assert all(p not in optimizer.state for p in frozen)  # no momentum buffer: SGD skipped them
    if scaled:
        assert scaler.get_scale() == 4.0  # finite gradients: the scale is kept (grows after 2000 steps)


def test_the_scaler_step_equals_the_plain_step() -> None:
    """Scaling the loss and unscaling the gradients is exact for a power-of-two scale."""
    results = []
    for scaler in (None, torch.amp.GradScaler("cpu", init_scale=1024.0)):
        torch.manual_seed(0)
        model = TwoLayers()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        optimizer_step(model(torch.randn(4, 3)).square().mean(), optimizer, scaler)
        results.append(model.classifier.weight.detach().clone())
    assert torch.allclose(results[0], results[1], rtol=0, atol=1e-7)


class Scalars:
    """A SummaryWriter stand-in that keeps what it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float, int]] = []

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.calls.append((tag, value, step))


def test_stats_log_writes_the_line_and_the_chosen_scalars(tmp_path: Path) -> None:
    writer = Scalars()
    log = StatsLog(str(tmp_path), period=3, writer=writer)
    assert [it for it in range(7) if log.due(it)] == [2, 5]
    log.write({"_type": "val_epoch", "epoch": "1/2", "top1_err": 12.5, "top5_err": 0.0, "mem": 3}, ("top1_err",), 1)
    log.write({"_type": "train_epoch", "loss": 0.5})
    assert [s["_type"] for s in RunFolder(str(tmp_path)).read_stats()] == ["val_epoch", "train_epoch"]
    assert writer.calls == [("val/top1_err", 12.5, 1)]


def test_execution_is_resolved_from_the_cfg_once() -> None:
    cfg = get_cfg()
    cfg.merge_from_list(["TRAIN.MIXED_PRECISION", True, "MODEL.CHANNELS_LAST", True, "DATA.MEAN", [0.5, 0.4, 0.3]])
    execution = Execution.from_cfg(cfg, CPU)
    assert execution == Execution(CPU, torch.bfloat16, True, Normalize((0.5, 0.4, 0.3), (0.225,) * 3, False))
    batch = torch.randint(0, 256, (2, 4, 5, 5, 3), dtype=torch.uint8)
    clips = execution.to_input(batch)  # the loader's uint8 B x T x H x W x 3
    assert clips.shape == (2, 3, 4, 5, 5) and clips.dtype == torch.float32
    assert clips.is_contiguous(memory_format=torch.channels_last_3d)
    assert torch.equal(clips, execution.normalize(batch))
    with execution.autocast():
        assert torch.nn.functional.linear(torch.randn(2, 3), torch.randn(4, 3)).dtype == torch.bfloat16
    with Execution(CPU).autocast():
        assert torch.nn.functional.linear(torch.randn(2, 3), torch.randn(4, 3)).dtype == torch.float32
    assert Execution(CPU).to_input(batch).is_contiguous()
    with pytest.raises(ValueError, match="uint8"):
        execution.to_input(torch.randn(2, 3, 4, 5, 5))


def test_logging_only_from_the_main_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import vov3d.utils.logging as logging_module

    monkeypatch.setattr(logging_module, "is_main_process", lambda: False)
    writer = Scalars()
    StatsLog(str(tmp_path), writer=writer).write({"_type": "train_iter", "loss": 1.0}, ("loss",), 0)
    assert not os.path.exists(RunFolder(str(tmp_path)).stats_path) and not writer.calls
