"""``benchmark checkpoint`` on the tiny config: both tables come out with positive figures, the
baseline of the stop check is the loss all-reduce without the flags, and the timed checkpoints
are real mid-epoch checkpoints, each replacing the one before. No timing is asserted."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from tests.conftest import CONFIGS
from vov3d.benchmark import checkpoint
from vov3d.checkpoint import read_checkpoint
from vov3d.cli.benchmark import main, parse_args
from vov3d.engine.train import global_totals
from vov3d.utils.run_layout import RunFolder

TINY = str(CONFIGS / "quick/vov3d_tiny.yaml")


def settings(folder: Path, **changes: object) -> checkpoint.CheckpointSettings:
    base = checkpoint.CheckpointSettings([TINY], [], [1], calls=5, warmup=1, batch_size=4, writes=2, folder=str(folder))
    return dataclasses.replace(base, **changes)


def test_subcommand_prints_both_tables(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "checkpoint.json"
    folder = tmp_path / "disk"
    argv = ["--json", str(out), "--threads", "1", "checkpoint", "--configs", TINY, "--processes", "1,2"]
    argv += ["--calls", "10", "--warmup", "2", "--batch-size", "4", "--writes", "2", "--folder", str(folder)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["command"] == "checkpoint"
    assert f"cpu: {result['environment']['cpu']} (" in printed and f"torch {torch.__version__}" in printed
    for _, header in checkpoint.STOP_COLUMNS + checkpoint.CHECKPOINT_COLUMNS:
        assert f" {header} |" in result["table"]
    assert result["table"] in printed

    stop = {row["processes"]: row for row in result["stop_check"]}
    assert set(stop) == {1, 2} and stop[1]["backend"] == "none" and stop[2]["backend"] == "gloo"
    for row in stop.values():
        assert row["without_us"] > 0 and row["with_us"] > 0 and row["calls"] == 10 and row["batch_size"] == 4
        assert row["overhead_us"] == pytest.approx(row["with_us"] - row["without_us"])

    (row,) = result["checkpoint"]
    assert row["config"] == "vov3d_tiny" and row["writes"] == 2
    assert row["params_m"] > 0 and row["file_mib"] > 0 and row["write_s"] > 0
    assert row["mib_per_s"] == pytest.approx(row["file_mib"] / row["write_s"])
    assert row["folder"] == str(folder) and " on /" in row["filesystem"]
    assert list(folder.iterdir()) == []  # the temporary OUTPUT_DIR is gone


def test_timed_writes_are_mid_epoch_checkpoints_with_momentum(tmp_path: Path) -> None:
    row = checkpoint.checkpoint_row(settings(tmp_path, writes=3), TINY, str(tmp_path))
    (path,) = RunFolder(str(tmp_path)).checkpoints()  # each write replaced the one before
    assert path == RunFolder(str(tmp_path)).checkpoint_path(1, 4)  # one untimed write, then three
    saved = read_checkpoint(path)
    assert saved["iteration"] == 4 and saved["epoch_iters"] == checkpoint.EPOCH_ITERS and saved["epoch"] == 0
    assert set(saved["epoch_state"]) == {"meters", "substituted"}
    optimizer = saved["optimizer_state"]
    buffers = [state["momentum_buffer"] for state in optimizer["state"].values()]
    assert len(buffers) == sum(len(group["params"]) for group in optimizer["param_groups"])  # one per parameter
    assert row["params_m"] == pytest.approx(sum(buffer.numel() for buffer in buffers) / 1e6)
    assert row["file_mib"] == pytest.approx(Path(path).stat().st_size / 2**20)


def test_baseline_is_the_totals_without_the_flags() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 10, generator=generator)
    labels = torch.randint(0, 10, (6,), generator=generator)
    loss, substituted = torch.nn.functional.cross_entropy(logits, labels), torch.tensor(2.0)
    baseline = checkpoint.totals_without_flags(loss, logits, labels, substituted)
    assert global_totals(loss, logits, labels, substituted, (1.0, 0.0)) == baseline + [1.0, 0.0]
    assert baseline[3:] == [6.0, 2.0]


def test_overrides_may_follow_the_configs() -> None:
    args = parse_args(["checkpoint", "--cfg", TINY, TINY, "SOLVER.MOMENTUM", "0.8", "--writes", "3"])
    assert args.configs == [TINY, TINY] and args.opts == ["SOLVER.MOMENTUM", "0.8"] and args.writes == 3
    assert parse_args(["checkpoint"]).configs == checkpoint.DEFAULT_CONFIGS


def test_more_than_two_processes_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="1 or 2 processes"):
        checkpoint.run(settings(tmp_path, processes=[1, 4]))
