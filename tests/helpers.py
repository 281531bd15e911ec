"""The test factories shared across test packages: configs, Kinetics CSVs, tiny networks and a
tiny training set. Every config starts from ``default_cfg``; package-specific data (numbered
videos, flat-colour sets, model sizes) stays in that package's helpers or conftest."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable, Optional

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

from vov3d.config import CfgNode, get_cfg
from vov3d.datasets.mixup import MixUp
from vov3d.engine import train
from vov3d.engine.runtime import Execution
from vov3d.engine.solver import LRSchedule, build_loss, build_optimizer
from vov3d.models.vov3d import VoV3D
from vov3d.utils.logging import StatsLog


def default_cfg(*opts: Any, freeze: bool = False, **keys: Any) -> CfgNode:
    """The defaults with ``KEY value`` pairs merged as on a command line (checked and converted),
    then ``keys`` set as given; dotted keys (``**{"TRAIN.ENABLE": False}``) reach sub-nodes."""
    cfg = get_cfg()
    cfg.merge_from_list(list(opts))
    for key, value in keys.items():
        *parents, leaf = key.split(".")
        node = cfg
        for parent in parents:
            node = node[parent]
        node[leaf] = value
    if freeze:
        cfg.freeze()
    return cfg


def small_cfg(
    data_dir: os.PathLike, prefix: os.PathLike, dataset: str = "kinetics", *opts: Any, freeze: bool = False
) -> CfgNode:
    """A tiny data config: 4-frame clips, crops of 32, no workers; ``opts`` as in ``default_cfg``."""
    cfg = default_cfg()
    cfg.TRAIN.DATASET = cfg.TEST.DATASET = dataset
    cfg.DATA.PATH_TO_DATA_DIR, cfg.DATA.PATH_PREFIX = str(data_dir), str(prefix)
    cfg.DATA.NUM_FRAMES, cfg.DATA.SAMPLING_RATE = 4, 2
    cfg.DATA.TRAIN_JITTER_SCALES, cfg.DATA.TRAIN_CROP_SIZE, cfg.DATA.TEST_CROP_SIZE = [40, 48], 32, 40
    cfg.TEST.NUM_ENSEMBLE_VIEWS, cfg.TEST.NUM_SPATIAL_CROPS = 2, 3
    cfg.TRAIN.BATCH_SIZE = cfg.TEST.BATCH_SIZE = 2
    cfg.DATA_LOADER.NUM_WORKERS = 0
    if dataset != "kinetics":
        cfg.DATA.RANDOM_FLIP, cfg.DATA.REVERSE_INPUT_CHANNEL = False, True
    cfg.merge_from_list(list(opts))
    if freeze:
        cfg.freeze()
    return cfg


def write_kinetics_csvs(
    root: Path, rows: Sequence[tuple[str, int]], splits: Sequence[str] = ("train", "val", "test")
) -> None:
    """Kinetics-format ``root/{split}.csv``, ``path label`` per line, the same rows in each split."""
    text = "".join(f"{path} {label}\n" for path, label in rows)
    for split in splits:
        (root / f"{split}.csv").write_text(text)


def tiny_vov3d(num_classes: int = 5, dim_c5: int = 32, seed: int = 0) -> VoV3D:
    """A VoV3D-M of width 8 for 2-frame 32-pixel clips, initialised from ``seed``."""
    torch.manual_seed(seed)
    return VoV3D(depth=31, inner_ch=8, num_classes=num_classes, num_frames=2, crop_size=32, dim_c5=dim_c5)


class Clips(Dataset):
    """8 random uint8 clips as a loader's items, label = whether their mean pixel is above the
    median clip's (half of each; a linear function of the pixels: learnable by a linear model)."""

    def __init__(self) -> None:
        generator = torch.Generator().manual_seed(0)
        self.clips = torch.randint(0, 256, (8, 2, 4, 4, 3), dtype=torch.uint8, generator=generator)
        means = self.clips.flatten(1).double().mean(1)
        self.labels = (means > means.median()).long().tolist()

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int):
        return self.clips[i], self.labels[i], i, {"video_index": i}


class Tiny(nn.Module):
    """A linear model of ``Clips``, its logits times ``scale`` (NaN or inf make a bad loss)."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale
        self.linear = nn.Linear(3 * 2 * 4 * 4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1)) * self.scale


def tiny_cfg(output_dir: Path, *opts: Any) -> CfgNode:
    """A frozen config for training ``Tiny`` on ``Clips``: 4 epochs of 4 iterations of 2 clips."""
    return default_cfg("OUTPUT_DIR", str(output_dir), "LOG_PERIOD", 2, "SOLVER.MAX_EPOCH", 4, "SOLVER.BASE_LR", 0.5,
                       "SOLVER.WARMUP_EPOCHS", 0.5, *opts, freeze=True)  # fmt: skip


def run_epoch(model: nn.Module, cfg: CfgNode, epoch: int = 0, loss_fn: Optional[Callable] = None) -> dict:
    """One epoch of ``model`` on ``Clips`` through the engine's ``train_one_epoch``."""
    loader = DataLoader(Clips(), batch_size=2)
    optimizer = build_optimizer(model, cfg)
    schedule, loss_fn = LRSchedule.from_cfg(cfg), loss_fn or build_loss(cfg)
    execution, log = Execution.from_cfg(cfg, torch.device("cpu")), StatsLog(cfg.OUTPUT_DIR, cfg.LOG_PERIOD)
    return train.train_one_epoch(
        model, loader, optimizer, schedule, loss_fn, epoch, cfg.SOLVER.MAX_EPOCH, execution, log,
        mixup=MixUp.from_cfg(cfg),
    )  # fmt: skip
