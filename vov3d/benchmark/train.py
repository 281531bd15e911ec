"""``benchmark train``: end-to-end training speed of a config, measured in the engine's own
``train_one_epoch`` with the model, optimizer and loader built as ``vov3d.engine.train`` builds
them: iterations/s, clips/s, and how much of each iteration is spent waiting for data."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from vov3d.cli.args import add_overrides
from vov3d.config import load_config
from vov3d.datasets import build_loader
from vov3d.engine.runtime import autocast_dtype, compile_model, current_device, grad_scaler, prepare_model
from vov3d.engine.solver import LRSchedule, build_loss, build_optimizer
from vov3d.engine.train import train_one_epoch

from .common import endless, load_average, markdown_table, time_calls

COLUMNS = [
    ("config", "config"),
    ("batch_size", "batch"),
    ("workers", "workers"),
    ("iters_per_s", "iter/s"),
    ("clips_per_s", "clips/s"),
    ("data_ms", "data wait ms/iter"),
    ("net_ms", "net ms/iter"),
    ("data_share", "data share"),
    ("peak_mib", "peak MiB"),
    ("load", "load"),
]


class Batches:
    """The batches of a loader one after another across epochs, handed out ``take(n)`` at a time
    as loaders of length n, so that ``train_one_epoch`` runs exactly n iterations and the
    warm-up and timed runs share the loader's workers and prefetched batches."""

    def __init__(self, loader: DataLoader) -> None:
        self.batch_size = loader.batch_size
        self._batches = endless(loader)

    def take(self, count: int) -> _Take:
        return _Take(self._batches, count)


class _Take:
    def __init__(self, batches: Iterator, count: int) -> None:
        self._batches, self._count = batches, count

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator:
        return (next(self._batches) for _ in range(self._count))


def run(args: argparse.Namespace) -> dict[str, Any]:
    """``--warmup`` then ``--iters`` timed training iterations of ``--cfg`` in this process."""
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as output:  # the json_stats lines of train_one_epoch
        overrides = ["NUM_GPUS", int(args.device == "cuda"), "LOG_MODEL_INFO", False, "OUTPUT_DIR", output]
        cfg = load_config([args.cfg], [str(v) for v in overrides] + list(args.opts))
        device = current_device(cfg)
        model = prepare_model(cfg, device, train=True)
        optimizer = build_optimizer(model, cfg)
        schedule, loss_fn = LRSchedule.from_cfg(cfg), build_loss(cfg)
        scaler = grad_scaler(device, autocast_dtype(cfg, device))
        net = compile_model(model, cfg.MODEL.COMPILE)  # one process: no DistributedDataParallel
        batches = Batches(build_loader(cfg, "train"))

        def epoch(iters: int) -> dict[str, Any]:
            return train_one_epoch(net, batches.take(iters), optimizer, schedule, loss_fn, 0, cfg, scaler=scaler)

        load = load_average()
        epoch(args.warmup)
        stats: dict[str, Any] = {}
        seconds = time_calls(lambda: stats.update(epoch(args.iters)), 1, device)[0]
    row = {
        "config": Path(args.cfg).stem,
        "batch_size": batches.batch_size,
        "workers": cfg.DATA_LOADER.NUM_WORKERS,
        "iters_per_s": args.iters / seconds,
        "clips_per_s": args.iters * batches.batch_size / seconds,
        "data_ms": 1e3 * stats["dt_data"],
        "net_ms": 1e3 * stats["dt_net"],
        "data_share": stats["dt_data"] / (stats["dt_data"] + stats["dt_net"]),
        "peak_mib": stats["mem"],
        "load": max(load or 0.0, load_average() or 0.0),
    }
    print(markdown_table([row], COLUMNS), flush=True)
    settings = {key: getattr(args, key) for key in ("cfg", "opts", "iters", "warmup", "threads", "device")}
    return {"settings": settings, "rows": [row], "table": markdown_table([row], COLUMNS)}


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("train", help="end-to-end training iterations/s and the share of time waiting for data")
    p.add_argument("--cfg", required=True, help="training config")
    add_overrides(p)
    p.add_argument("--iters", type=int, default=20, help="timed iterations")
    p.add_argument("--warmup", type=int, default=3, help="untimed iterations first")
    p.set_defaults(func=run)
