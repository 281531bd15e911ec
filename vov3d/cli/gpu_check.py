"""Check the GPU paths on one machine with CUDA in one command (not run by CI; about 8 minutes on
one GPU): a quick-start-sized train + multi-view test with NUM_GPUS 1 in fp32, bf16 and fp16
(GradScaler), predict on CUDA, TorchScript and ONNX export of the trained model (export loads on the
CPU; the TorchScript file then runs on CUDA), the model benchmark (X3D-M and VoV3D-M at batch 16),
and with 2 or more GPUs a 2-process NCCL run with SyncBatchNorm. Prints one table, writes JSON and
exits 1 when a check fails::

    python tools/gpu_check.py --work /tmp/gpu_check --json gpu_check.json [--dry-run]

INSTALL.md ("Checking a GPU machine") has the commands that bring the wheels to a machine without
a package registry.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from vov3d.utils.run_layout import RunFolder

REPO = Path(__file__).resolve().parents[2]  # the checkout it runs from (PYTHONPATH=$PWD)
QUICK_CFG = REPO / "configs" / "quickstart" / "vov3d_motion.yaml"
BENCH_CONFIGS = [REPO / "configs" / "Kinetics" / name for name in ("x3d/X3D_M.yaml", "vov3d/vov3d_M.yaml")]
BENCH_VARIANTS = "base,cl,bf16,cl+bf16,dw=separate,dw=fused,dw=frames2d,cl+dw=auto,cl+compile"
EPOCHS = 6
PRECISIONS = {"fp32": [], "bf16": ["TRAIN.MIXED_PRECISION", "True", "TRAIN.MIXED_PRECISION_DTYPE", "bfloat16"],
              "fp16": ["TRAIN.MIXED_PRECISION", "True", "TRAIN.MIXED_PRECISION_DTYPE", "float16"]}  # fmt: skip
Figures = Callable[[], dict[str, Any]]  # read once the command has passed; raises when a figure is wrong


@dataclass
class Check:
    """One command of the check and how to read its figures once it has run."""

    name: str
    command: list[str]
    timeout_s: int
    figures: Optional[Figures] = None
    needs: list[str] = field(default_factory=list)  # checks that must have passed first


def final_test(output_dir: Path) -> dict[str, Any]:
    """The figures of a training run: last train loss, test top-1, and that both are finite."""
    run = RunFolder(str(output_dir))
    train, test = run.read_stats("train_epoch"), run.read_stats("test_final")
    if not train or not test:
        raise ValueError(f"{run.stats_path} has no train_epoch or test_final line")
    loss = float(train[-1]["loss"])
    if not math.isfinite(loss):
        raise ValueError(f"the last training loss is {loss}")
    return {"loss": round(loss, 4), "top1": test[-1]["top1_acc"], "videos": test[-1]["num_videos"]}


def bench_figures(path: Path) -> dict[str, Any]:
    """The benchmark's cell count and its table (``_table``: kept in the JSON, not in the summary)."""
    results = json.loads(path.read_text())
    return {"cells": len(results["rows"]), "_table": results["table"]}


def plan_checks(work: Path, gpus: int, python: str = sys.executable) -> list[Check]:
    """The checks, in order, writing under ``work``; the NCCL check only with 2 or more GPUs."""
    data = work / "data"
    tool = lambda name: [python, str(REPO / "tools" / name)]  # noqa: E731
    data_opts = ["DATA.PATH_TO_DATA_DIR", str(data), "DATA.PATH_PREFIX", str(data), "DATA_LOADER.NUM_WORKERS", "4"]
    periods = ("SOLVER.MAX_EPOCH", "TRAIN.EVAL_PERIOD", "TRAIN.CHECKPOINT_PERIOD")
    schedule = [item for key in periods for item in (key, str(EPOCHS))]
    checks = [
        Check("data", [*tool("make_demo_dataset.py"), "--out", str(data), "--train-per-class", "24",
                       "--val-per-class", "4", "--test-per-class", "8"], 120),
    ]  # fmt: skip
    for precision, opts in PRECISIONS.items():
        out = work / f"train_{precision}"
        command = [*tool("run_net.py"), "--cfg", str(QUICK_CFG), *data_opts, *schedule, "NUM_GPUS", "1", *opts,
                   "TENSORBOARD.ENABLE", "False", "OUTPUT_DIR", str(out)]  # fmt: skip
        checks.append(Check(f"train+test {precision}", command, 240, lambda out=out: final_test(out), ["data"]))
    bench_json = work / "benchmark_model.json"
    checkpoint = RunFolder(str(work / "train_fp32")).checkpoint_path(EPOCHS)
    model = ["--cfg", str(QUICK_CFG), "--checkpoint", checkpoint]
    checks += [
        Check("predict cuda", [*tool("predict.py"), *model, "--device", "cuda", "--topk", "1",
                               str(data / "videos" / "test")], 120, needs=["train+test fp32"]),
        Check("export onnx", [*tool("export.py"), *model, "--format", "onnx", "--output", str(work / "model.onnx")],
              120, needs=["train+test fp32"]),
        Check("export torchscript", [*tool("export.py"), *model, "--format", "torchscript",
                                     "--output", str(work / "model.pt")], 120, needs=["train+test fp32"]),
        Check("torchscript on cuda", [python, "-c", RUN_TORCHSCRIPT, str(work / "model.pt")], 60,
              needs=["export torchscript"]),
        Check("benchmark model", [*tool("benchmark.py"), "--device", "cuda", "--json", str(bench_json), "model",
                                  "--configs", *map(str, BENCH_CONFIGS), "--variants", BENCH_VARIANTS,
                                  "--batch-size", "16", "--repeats", "5"], 300,
              lambda: bench_figures(bench_json)),
    ]  # fmt: skip
    if gpus >= 2:
        out = work / "nccl_syncbn"
        command = [*tool("run_net.py"), "--cfg", str(QUICK_CFG), *data_opts, *schedule, "NUM_GPUS", "2",
                   "BN.NORM_TYPE", "sync_batchnorm", "BN.NUM_SYNC_DEVICES", "2", "TENSORBOARD.ENABLE", "False",
                   "OUTPUT_DIR", str(out)]  # fmt: skip
        checks.append(Check("2 GPUs nccl+syncbn", command, 240, lambda out=out: final_test(out), ["data"]))
    return checks


# The exported TorchScript model on the GPU: one zero clip of the export shape gives finite scores.
RUN_TORCHSCRIPT = """
import sys, torch
model = torch.jit.load(sys.argv[1], map_location="cuda")
scores = model(torch.zeros(1, 3, 8, 48, 48, device="cuda"))
assert torch.isfinite(scores).all(), scores
print("scores", tuple(scores.shape))
"""


def run_check(check: Check, passed: set[str], env: dict[str, str]) -> dict[str, Any]:
    """Run one check; its result: ok, seconds, figures (or the error) and the end of its output."""
    missing = [name for name in check.needs if name not in passed]
    if missing:
        return {"name": check.name, "ok": False, "seconds": 0.0, "error": f"skipped: {', '.join(missing)} failed"}
    started = time.perf_counter()
    try:
        done = subprocess.run(check.command, cwd=REPO, env=env, capture_output=True, text=True, timeout=check.timeout_s)
        output, ok = done.stdout + done.stderr, done.returncode == 0
        error = "" if ok else f"exit code {done.returncode}"
    except subprocess.TimeoutExpired as e:
        output, ok, error = f"{e.stdout or ''}{e.stderr or ''}", False, f"over {check.timeout_s} s"
    result: dict[str, Any] = {"name": check.name, "ok": ok, "seconds": round(time.perf_counter() - started, 1)}
    if ok and check.figures:
        try:
            result["figures"] = check.figures()
        except Exception as e:  # a run that exits 0 without its figures has failed too
            result["ok"], error = False, f"{type(e).__name__}: {e}"
    if error:
        result["error"] = error
        result["tail"] = output[-3000:] if isinstance(output, str) else ""
    return result


def format_table(results: Sequence[dict[str, Any]]) -> str:
    """A Markdown table: one row per check with its status, time and figures or error."""
    rows = ["| check | status | seconds | figures |", "| --- | --- | ---: | --- |"]
    for r in results:
        shown = {k: v for k, v in r.get("figures", {}).items() if not k.startswith("_")}
        figures = ", ".join(f"{k} {v}" for k, v in shown.items()) or r.get("error", "")
        rows.append(f"| {r['name']} | {'ok' if r['ok'] else 'FAIL'} | {r['seconds']:.1f} | {figures} |")
    return "\n".join(rows)


def machine() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"torch": torch.__version__, "cuda": torch.version.cuda, "gpus": torch.cuda.device_count()}
    if info["gpus"]:
        info["gpu"] = torch.cuda.get_device_name(0)
        info["capability"] = ".".join(map(str, torch.cuda.get_device_capability(0)))
    return info


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="/tmp/gpu_check", help="folder for the data, runs and exports")
    parser.add_argument("--json", default="gpu_check.json", help="where to write the results")
    parser.add_argument("--dry-run", action="store_true", help="print the commands and run nothing (works on a CPU)")
    parser.add_argument("--gpus", type=int, default=None, help="GPUs to plan for (default: the visible ones)")
    args = parser.parse_args(argv)
    info = machine()
    gpus = info["gpus"] if args.gpus is None else args.gpus
    checks = plan_checks(Path(args.work), gpus)
    if args.dry_run:
        for check in checks:
            print(f"# {check.name}\n{subprocess.list2cmdline(check.command)}")
        return 0
    if gpus == 0:
        print("gpu_check: torch.cuda.device_count() is 0; --dry-run lists the checks", file=sys.stderr)
        return 2
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    results: list[dict[str, Any]] = []
    for check in checks:
        results.append(run_check(check, {r["name"] for r in results if r["ok"]}, env))
        print(format_table(results[-1:]).splitlines()[-1], flush=True)
    print(f"\n{info}\n{format_table(results)}")
    Path(args.json).write_text(json.dumps({"machine": info, "checks": results}, indent=1))
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
