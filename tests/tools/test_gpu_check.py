"""The GPU check's logic (vov3d/cli/gpu_check.py) on the CPU: the plan, running and judging checks, the table and the
JSON. The GPU commands themselves run only on a machine with CUDA (INSTALL.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from vov3d.cli import gpu_check
from vov3d.utils.run_layout import STATS_MARKER, RunFolder


def test_the_plan_covers_each_precision_and_nccl_only_with_two_gpus(tmp_path: Path) -> None:
    one = {c.name: c for c in gpu_check.plan_checks(tmp_path, gpus=1)}
    assert list(one) == [
        "data", "train+test fp32", "train+test bf16", "train+test fp16", "predict cuda", "export onnx",
        "export torchscript", "torchscript on cuda", "benchmark model",
    ]  # fmt: skip
    assert "float16" in one["train+test fp16"].command and "NUM_GPUS" in one["train+test fp16"].command
    bench = one["benchmark model"].command
    assert bench[bench.index("--batch-size") + 1] == "16" and "cl+bf16" in bench[bench.index("--variants") + 1]
    two = [c.name for c in gpu_check.plan_checks(tmp_path, gpus=2)]
    assert two[-1] == "2 GPUs nccl+syncbn"


def write_stats(folder: Path, loss: float) -> Path:
    """json_stats.log as training writes it (json.dumps: the logger refuses a NaN loss)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [{"_type": "train_epoch", "loss": loss}, {"_type": "test_final", "top1_acc": 75.0, "num_videos": 64}]
    stats = Path(RunFolder(str(folder)).stats_path)
    stats.write_text("".join(f"[x][INFO] {STATS_MARKER}{json.dumps(s)}\n" for s in lines))
    return folder


def test_checks_pass_fail_skip_and_judge_their_figures(tmp_path: Path) -> None:
    good = write_stats(tmp_path / "good", 0.5)
    nan = write_stats(tmp_path / "nan", float("nan"))
    python = [sys.executable, "-c"]
    checks = [
        gpu_check.Check("train", [*python, "print('trained')"], 30, lambda: gpu_check.final_test(good)),
        gpu_check.Check("nan", [*python, "pass"], 30, lambda: gpu_check.final_test(nan)),
        gpu_check.Check("crash", [*python, "raise SystemExit('boom')"], 30),
        gpu_check.Check("after crash", [*python, "pass"], 30, needs=["crash"]),
    ]
    results = []
    for check in checks:
        results.append(gpu_check.run_check(check, {r["name"] for r in results if r["ok"]}, {}))
    assert [r["ok"] for r in results] == [True, False, False, False]
    assert results[0]["figures"] == {"loss": 0.5, "top1": 75.0, "videos": 64}
    assert "the last training loss is nan" in results[1]["error"]
    assert results[2]["error"] == "exit code 1" and "boom" in results[2]["tail"]
    assert results[3]["error"] == "skipped: crash failed"
    table = gpu_check.format_table(results).splitlines()
    assert table[2].startswith("| train | ok |") and "loss 0.5, top1 75.0, videos 64" in table[2]
    assert table[5] == "| after crash | FAIL | 0.0 | skipped: crash failed |"


def test_dry_run_lists_the_commands_and_without_a_gpu_nothing_runs(capsys: pytest.CaptureFixture) -> None:
    assert gpu_check.main(["--dry-run", "--gpus", "1", "--work", "/tmp/gpu_check_dry"]) == 0
    out = capsys.readouterr().out
    assert "# train+test bf16" in out and "TRAIN.MIXED_PRECISION_DTYPE bfloat16" in out
    assert gpu_check.main(["--gpus", "0"]) == 2
