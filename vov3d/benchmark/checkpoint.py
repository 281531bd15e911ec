"""``benchmark checkpoint``: what stopping in step and mid-epoch checkpoints cost a run.

The stop check: every training iteration adds this process's two flags (``StopControl.flags()``:
a stop signal, a periodic checkpoint due) to the all-reduce that sums the loss (``global_totals``).
It is timed against that all-reduce without the flags, call by call in alternation, with one
process (no process group) on the run's device and with two gloo processes on the CPU.

The checkpoint: a mid-epoch checkpoint of each config's model and optimizer (after one step, so
that the momentum buffers exist), written by ``save_training_checkpoint`` as a run writes it:
atomically, with fsync, so the disk under ``folder`` decides much of the time.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

import torch
import torch.multiprocessing as mp
import torch.nn.functional as F

from vov3d.config import CfgNode, config_root, load_config
from vov3d.engine.preemption import StopControl, StopSignals
from vov3d.engine.run_folder import MidEpoch, save_training_checkpoint
from vov3d.engine.runtime import Execution, grad_scaler, prepare_model
from vov3d.engine.solver import LRSchedule, build_optimizer
from vov3d.engine.substituted import SubstitutedClips
from vov3d.engine.train import global_totals
from vov3d.engine.train_meters import TrainMeters
from vov3d.utils import distributed as du
from vov3d.utils.meters import topk_correct

from .common import load_average, markdown_table, median, time_calls

CONFIGS = config_root()
DEFAULT_CONFIGS = [str(CONFIGS / "Kinetics/vov3d/vov3d_M.yaml"), str(CONFIGS / "Kinetics/vov3d/vov3d_L.yaml")]
# The position written into the file: iteration k of an epoch this long (only the name depends on it).
EPOCH_ITERS = 1000

STOP_COLUMNS = [
    ("processes", "processes"),
    ("backend", "all-reduce"),
    ("device", "device"),
    ("batch_size", "batch"),
    ("without_us", "without flags µs"),
    ("with_us", "with flags µs"),
    ("overhead_us", "overhead µs"),
    ("calls", "calls"),
    ("load", "load"),
]
CHECKPOINT_COLUMNS = [
    ("config", "config"),
    ("params_m", "params (M)"),
    ("file_mib", "file MiB"),
    ("write_s", "write s"),
    ("mib_per_s", "MiB/s"),
    ("writes", "writes"),
    ("filesystem", "filesystem"),
    ("folder", "written in"),
    ("load", "load"),
]


@dataclass(frozen=True)
class CheckpointSettings:
    """What ``run`` measures. Stop check: ``calls`` timed calls of each kind after ``warmup``, on a
    batch of ``batch_size`` clips per process (the classes of the first config), with each number
    of ``processes`` (1: no process group; 2: gloo on the CPU). Checkpoints: ``writes`` timed
    writes after one untimed one, of each of ``configs`` with overrides ``opts``, into a temporary
    OUTPUT_DIR made in ``folder``. On ``device`` ("cpu" or "cuda") with torch ``threads`` (0:
    torch's choice)."""

    configs: list[str]
    opts: list[str]
    processes: list[int]
    calls: int
    warmup: int
    batch_size: int
    writes: int
    folder: str
    device: str = "cpu"
    threads: int = 0


def run(settings: CheckpointSettings) -> dict[str, Any]:
    """Both tables, printed as they are measured; returns their rows and the Markdown text."""
    if settings.threads:
        torch.set_num_threads(settings.threads)
    if any(n not in (1, 2) for n in settings.processes):
        raise ValueError(f"--processes: the stop check runs with 1 or 2 processes, not {settings.processes}")
    classes = run_cfg(settings.configs[0], settings.opts, settings.device, ".").MODEL.NUM_CLASSES
    stop_rows = [stop_check_row(settings, n, classes) for n in settings.processes]
    stop_table = markdown_table(stop_rows, STOP_COLUMNS)
    print(stop_table, flush=True)
    os.makedirs(settings.folder, exist_ok=True)
    print(f"\n{markdown_table([], CHECKPOINT_COLUMNS)}", flush=True)
    checkpoint_rows = []
    for path in settings.configs:
        with tempfile.TemporaryDirectory(prefix="vov3d_checkpoint_", dir=settings.folder) as output:
            checkpoint_rows.append(checkpoint_row(settings, path, output))
        print(markdown_table(checkpoint_rows[-1:], CHECKPOINT_COLUMNS).splitlines()[-1], flush=True)
    table = f"{stop_table}\n\n{markdown_table(checkpoint_rows, CHECKPOINT_COLUMNS)}"
    return {"settings": asdict(settings), "stop_check": stop_rows, "checkpoint": checkpoint_rows, "table": table}


def run_cfg(path: str, opts: list[str], device: str, output: str) -> CfgNode:
    """Config ``path`` with ``opts`` for one process on ``device``, writing into ``output``."""
    overrides = ["NUM_GPUS", int(device == "cuda"), "LOG_MODEL_INFO", False, "OUTPUT_DIR", output]
    return load_config([path], [str(v) for v in overrides + ["TENSORBOARD.ENABLE", False]] + list(opts))


# The stop check


def totals_without_flags(
    loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor, substituted: torch.Tensor
) -> list[float]:
    """The baseline: ``global_totals`` as it was before the stop flags rode on it (the batch's
    loss, top-1 and top-5 hits, clips and substituted clips in one all-reduce, nothing else)."""
    top1, top5 = topk_correct(logits.detach(), labels)
    count = torch.tensor(float(labels.shape[0]), device=loss.device)
    totals = torch.stack([loss.detach().float() * count, top1.sum().float(), top5.sum().float(), count, substituted])
    return du.all_reduce_sum(totals).tolist()


def stop_check_times(device: torch.device, batch_size: int, classes: int, calls: int, warmup: int) -> dict[str, float]:
    """Median seconds of one iteration's totals without and with the flags, timed alternately
    (so that a busy moment of the machine slows both alike); a collective call with a process
    group. The clock is read as in a run with TRAIN.CHECKPOINT_MINUTES > 0; no signal arrives."""
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(batch_size, classes, generator=generator).to(device)
    labels = torch.randint(0, classes, (batch_size,), generator=generator).to(device)
    loss = F.cross_entropy(logits, labels)
    substituted = torch.zeros((), device=device)
    control = StopControl(StopSignals([]), 30.0, du.is_main_process(), device)  # TRAIN.CHECKPOINT_MINUTES' default

    def without() -> None:
        totals_without_flags(loss, logits, labels, substituted)

    def with_flags() -> None:
        global_totals(loss, logits, labels, substituted, control.flags())

    times: dict[str, list[float]] = {"without": [], "with": []}
    for i in range(warmup + calls):
        for name, fn in (("without", without), ("with", with_flags)):
            seconds = time_calls(fn, 1, device)[0]
            if i >= warmup:
                times[name].append(seconds)
    return {name: median(values) for name, values in times.items()}


def stop_check_row(settings: CheckpointSettings, processes: int, classes: int) -> dict[str, Any]:
    load = load_average()
    if processes == 1:
        device = torch.device(settings.device)
        seconds = stop_check_times(device, settings.batch_size, classes, settings.calls, settings.warmup)
    else:
        device = torch.device("cpu")
        seconds = _in_gloo_pair(device, settings.batch_size, classes, settings.calls, settings.warmup)
    return {
        "processes": processes,
        "backend": "none" if processes == 1 else "gloo",
        "device": str(device),
        "batch_size": settings.batch_size,
        "without_us": 1e6 * seconds["without"],
        "with_us": 1e6 * seconds["with"],
        "overhead_us": 1e6 * (seconds["with"] - seconds["without"]),
        "calls": settings.calls,
        "load": max(load or 0.0, load_average() or 0.0),
    }


def _in_gloo_pair(*args: Any) -> dict[str, float]:
    """``stop_check_times(*args)`` in two new processes joined by a gloo process group: rank 0's
    result. An error in either process is raised here (``ProcessRaisedException``), with its traceback."""
    results = mp.get_context("spawn").SimpleQueue()
    mp.spawn(_gloo_rank, args=(f"tcp://127.0.0.1:{du.free_port()}", args, results), nprocs=2, join=True)
    return results.get()


def _gloo_rank(rank: int, init_method: str, args: tuple, results: Any) -> None:
    torch.set_num_threads(1)  # two processes share the machine's cores, as in a CPU run with two
    du.init_process_group("gloo", init_method, rank, 2, timeout_minutes=5)
    try:
        result = stop_check_times(*args)
    finally:
        du.destroy_process_group()
    if rank == 0:
        results.put(result)


# The checkpoint


def checkpoint_row(settings: CheckpointSettings, path: str, output: str) -> dict[str, Any]:
    """Time ``settings.writes`` mid-epoch checkpoints of config ``path`` into ``output``, each at
    the next iteration, so that each replaces the one before as a run's periodic ones do."""
    cfg = run_cfg(path, settings.opts, settings.device, output)
    execution = Execution.from_cfg(cfg)
    model = prepare_model(cfg, execution.device, train=True)
    optimizer = build_optimizer(model, cfg)
    for p in model.parameters():  # one step: SGD makes its momentum buffers
        p.grad = torch.zeros_like(p)
    optimizer.step()
    schedule, scaler = LRSchedule.from_cfg(cfg), grad_scaler(execution.device, execution.amp_dtype)
    meters = TrainMeters(cfg.LOG_PERIOD, 1, cfg.SOLVER.MAX_EPOCH, EPOCH_ITERS, execution.device)
    state = {"meters": meters.state_dict(), "substituted": SubstitutedClips(1.0).state_dict()}
    iterations = itertools.count(1)
    written: list[Optional[str]] = []  # the paths (this process is rank 0)

    def write() -> None:
        position = MidEpoch(next(iterations), EPOCH_ITERS, state)
        written.append(save_training_checkpoint(cfg, 0, model, optimizer, schedule, scaler, position=position))

    load = load_average()
    write()  # untimed: the folders are made, the file cache warms
    seconds = median(time_calls(write, settings.writes, execution.device))
    mib = os.path.getsize(str(written[-1])) / 2**20
    return {
        "config": Path(path).stem,
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "file_mib": mib,
        "write_s": seconds,
        "mib_per_s": mib / seconds,
        "writes": settings.writes,
        "filesystem": filesystem(output),
        "folder": os.path.dirname(os.path.abspath(output)),
        "load": max(load or 0.0, load_average() or 0.0),
    }


def filesystem(path: str) -> str:
    """The type and mount point of the filesystem holding ``path`` (Linux's /proc/mounts), e.g.
    ``ext4 on /``; "unknown" elsewhere. A tmpfs or a network filesystem changes the figures."""
    try:
        with open("/proc/mounts") as f:
            mounts = [line.split()[1:3] for line in f]
    except OSError:
        return "unknown"
    real = os.path.realpath(path)
    inside = [(point, kind) for point, kind in mounts if real == point or real.startswith(point.rstrip("/") + "/")]
    if not inside:
        return "unknown"
    point, kind = max(inside, key=lambda mount: len(mount[0]))
    return f"{kind} on {point}"
