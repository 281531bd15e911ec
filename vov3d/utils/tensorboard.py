"""The TensorBoard writer of a run, and the confusion-matrix heat map, drawn with plain tensors
(matplotlib is not a dependency) and written as PNG."""

from __future__ import annotations

import os
import struct
import zlib
from typing import Any, Optional

import torch

from vov3d.config import CfgNode

from .distributed import is_main_process


def make_writer(cfg: CfgNode, dataset: str) -> Optional[Any]:
    """A SummaryWriter in TENSORBOARD.LOG_DIR (default OUTPUT_DIR/runs-<dataset>) on the main
    process when TENSORBOARD.ENABLE; None otherwise."""
    if not (cfg.TENSORBOARD.ENABLE and is_main_process()):
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(cfg.TENSORBOARD.LOG_DIR or os.path.join(cfg.OUTPUT_DIR, f"runs-{dataset}"))


def heat_map(matrix: torch.Tensor, min_side: int = 400) -> torch.Tensor:
    """Rows normalised to sum 1, white (0) to dark blue (1), as uint8 H x W x 3; each cell is a
    square of pixels so that small matrices are readable."""
    rows = matrix.double()
    rows = rows / rows.sum(dim=1, keepdim=True).clamp(min=1)
    white, blue = torch.tensor([255.0, 255.0, 255.0]), torch.tensor([8.0, 48.0, 107.0])
    image = white + rows.unsqueeze(-1).float() * (blue - white)
    cell = max(1, min_side // max(matrix.shape))
    image = image.repeat_interleave(cell, dim=0).repeat_interleave(cell, dim=1)
    return image.round().to(torch.uint8)


def write_png(path: str, image: torch.Tensor) -> None:
    """Write a uint8 H x W x 3 image as an 8-bit RGB PNG."""
    height, width, _ = image.shape
    raw = b"".join(b"\x00" + bytes(row) for row in image.contiguous().numpy().reshape(height, -1))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits, RGB
    with open(path, "wb") as f:
        f.write(
            b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
        )
