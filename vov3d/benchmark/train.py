"""``benchmark train``: end-to-end training speed of a config, measured in the engine's own
``train_one_epoch`` with the run assembled by ``build_run``, as ``vov3d.engine.train`` assembles
it: iterations/s, clips/s, and how much of each iteration is spent waiting for data."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from vov3d.config import load_config
from vov3d.engine.assembly import build_run
from vov3d.engine.train import run_epoch

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
        # clips per batch: the loader's batch counts videos, of AUG.NUM_SAMPLE clips each
        self.batch_size = loader.batch_size * getattr(loader.dataset, "num_samples", 1)
        self.dataset = loader.dataset
        self._batches = endless(loader)

    def take(self, count: int) -> _Take:
        return _Take(self._batches, count, self.dataset)


class _Take:
    """``count`` batches as a loader; ``dataset`` is the loader's, whose paths name unreadable videos."""

    def __init__(self, batches: Iterator, count: int, dataset: Any) -> None:
        self._batches, self._count, self.dataset = batches, count, dataset

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator:
        return (next(self._batches) for _ in range(self._count))


@dataclass(frozen=True)
class TrainSettings:
    """What ``run`` measures: ``warmup`` untimed then ``iters`` timed iterations of config
    ``cfg`` with overrides ``opts``, on ``device`` ("cpu" or "cuda") with torch ``threads`` (0:
    torch's choice)."""

    cfg: str
    opts: list[str]
    iters: int
    warmup: int
    device: str = "cpu"
    threads: int = 0


def run(settings: TrainSettings) -> dict[str, Any]:
    """The timed iterations in this process, with the run assembled as training assembles it
    (one process: no DistributedDataParallel), writing nothing but to a temporary folder."""
    if settings.threads:
        torch.set_num_threads(settings.threads)
    with tempfile.TemporaryDirectory() as output:  # the json_stats lines of train_one_epoch
        overrides = ["NUM_GPUS", int(settings.device == "cuda"), "LOG_MODEL_INFO", False, "OUTPUT_DIR", output]
        overrides += ["TENSORBOARD.ENABLE", False]
        cfg = load_config([settings.cfg], [str(v) for v in overrides] + list(settings.opts))
        training = build_run(cfg, resume=False, validation=False)
        batches = Batches(training.train_loader)
        load = load_average()
        run_epoch(training, 0, batches.take(settings.warmup))
        stats: dict[str, Any] = {}

        def timed() -> None:
            stats.update(run_epoch(training, 0, batches.take(settings.iters)))

        seconds = time_calls(timed, 1, training.execution.device)[0]
    row = {
        "config": Path(settings.cfg).stem,
        "batch_size": batches.batch_size,
        "workers": cfg.DATA_LOADER.NUM_WORKERS,
        "iters_per_s": settings.iters / seconds,
        "clips_per_s": settings.iters * batches.batch_size / seconds,
        "data_ms": 1e3 * stats["dt_data"],
        "net_ms": 1e3 * stats["dt_net"],
        "data_share": stats["dt_data"] / (stats["dt_data"] + stats["dt_net"]),
        "peak_mib": stats["mem"],
        "load": max(load or 0.0, load_average() or 0.0),
    }
    print(markdown_table([row], COLUMNS), flush=True)
    return {"settings": asdict(settings), "rows": [row], "table": markdown_table([row], COLUMNS)}
