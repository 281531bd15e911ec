"""Shared helpers of the engine tests: tiny Kinetics-format datasets of flat-colour videos, quick
configs, and running ``tools/run_net.py`` in a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.conftest import CONFIGS, REPO
from tests.helpers import write_kinetics_csvs
from vov3d.config import CfgNode, load_config
from vov3d.datasets.encode import write_video
from vov3d.utils.run_layout import RunFolder

QUICK_VOV3D = str(CONFIGS / "quick" / "vov3d_tiny.yaml")
# One colour per class: a flat video looks the same after any crop, flip or resize.
COLOURS = [(200, 40, 40), (40, 200, 40), (40, 40, 200), (220, 220, 60)]
# Subprocesses use one thread each: two processes share two cores with the rest of the suite.
SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# What torchrun, torch.distributed.launch and srun set: the launch tests clear and set them.
LAUNCHER_VARS = (
    "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "SLURM_JOB_ID",
    "SLURM_PROCID", "SLURM_LOCALID", "SLURM_NTASKS", "SLURM_STEP_ID", "SLURM_STEP_NUM_TASKS", "SLURM_NODEID",
    "SLURM_JOB_NODELIST", "SLURM_STEP_NODELIST", "SLURM_STEP_TASKS_PER_NODE",
)  # fmt: skip


def write_dataset(root: Path, splits: dict[str, Sequence[tuple[tuple[int, int, int], int]]]) -> Path:
    """Kinetics-format ``root/{split}.csv`` with ``path label`` lines (paths relative to root,
    so DATA.PATH_PREFIX is root) and one 16-frame 40 x 48 flat-colour mp4 per (colour, label)."""
    for split, videos in splits.items():
        (root / split).mkdir(parents=True, exist_ok=True)
        rows = []
        for i, (colour, label) in enumerate(videos):
            frames = np.broadcast_to(np.array(colour, dtype=np.uint8), (16, 40, 48, 3)).copy()
            write_video(str(root / split / f"{i:03d}.mp4"), frames, 30)
            rows.append((f"{split}/{i:03d}.mp4", label))
        write_kinetics_csvs(root, rows, splits=[split])
    return root


@pytest.fixture(scope="session")
def colour_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A learnable set: the label is the colour. 16 train, 8 val and 4 test videos of 4 classes."""
    per_split = {"train": 4, "val": 2, "test": 1}
    return write_dataset(
        tmp_path_factory.mktemp("colour_data"),
        {split: [(COLOURS[k % 4], k % 4) for k in range(4 * n)] for split, n in per_split.items()},
    )


def quick_cfg(data: Path, output_dir: Path, *opts: Any, config: str = QUICK_VOV3D) -> CfgNode:
    """The quick VoV3D config (4 classes) on ``data``, writing to ``output_dir``, with overrides."""
    return load_config([config], [*map(str, quick_opts(data, output_dir)), *map(str, opts)])


def quick_opts(data: Path, output_dir: Path) -> list[str]:
    return [
        "DATA.PATH_TO_DATA_DIR", str(data), "DATA.PATH_PREFIX", str(data),
        "OUTPUT_DIR", str(output_dir), "MODEL.NUM_CLASSES", "4",
    ]  # fmt: skip


def run_net_command(data: Path, output_dir: Path, *opts: Any) -> list[str]:
    return [sys.executable, str(REPO / "tools" / "run_net.py"), "--cfg", QUICK_VOV3D,
            *quick_opts(data, output_dir), *map(str, opts)]  # fmt: skip


def run_net(data: Path, output_dir: Path, *opts: Any, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the CLI on the quick config to the end; fails the test with its output if it fails."""
    result = subprocess.run(
        run_net_command(data, output_dir, *opts), cwd=REPO, env=env or SUBPROCESS_ENV,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def final_weights(output_dir: Path, epochs: int) -> dict[str, torch.Tensor]:
    path = RunFolder(str(output_dir)).checkpoint_path(epochs)
    return torch.load(path, map_location="cpu", weights_only=True)["model_state"]


def tensorboard_events(folder: Path) -> tuple[dict[str, list[float]], dict[str, list[bytes]]]:
    """{tag: scalar values in step order} and {tag: encoded images} of every event file in ``folder``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars: dict[str, list[float]] = {}
    images: dict[str, list[bytes]] = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        events = EventAccumulator(str(path), size_guidance={"scalars": 0, "images": 0})
        events.Reload()
        for tag in events.Tags()["scalars"]:
            scalars.setdefault(tag, []).extend(e.value for e in sorted(events.Scalars(tag), key=lambda e: e.step))
        for tag in events.Tags()["images"]:
            images.setdefault(tag, []).extend(e.encoded_image_string for e in events.Images(tag))
    return scalars, images
