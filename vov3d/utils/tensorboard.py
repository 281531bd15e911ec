"""The TensorBoard writer of a run, and the confusion-matrix heat map, drawn with plain tensors
(matplotlib is not a dependency), labelled with Pillow's built-in font and written as PNG."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import numpy as np
import torch

from vov3d.config import CfgNode

from .distributed import is_main_process
from .run_layout import RunFolder


def make_writer(cfg: CfgNode, dataset: str) -> Optional[Any]:
    """A SummaryWriter in TENSORBOARD.LOG_DIR (default OUTPUT_DIR/runs-<dataset>) on the main
    process when TENSORBOARD.ENABLE; None otherwise."""
    if not (cfg.TENSORBOARD.ENABLE and is_main_process()):
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(cfg.TENSORBOARD.LOG_DIR or RunFolder(cfg.OUTPUT_DIR).tensorboard_dir(dataset))


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


# Up to this many classes every row is named ("index name"); beyond, rows and columns are only
# numbered at ticks (per_class.csv holds the names).
MAX_NAMED_CLASSES = 40
_MARGIN = 4


def tick_step(cell: int, min_pixels: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... classes whose ticks, ``cell`` pixels per class,
    are at least ``min_pixels`` apart."""
    step, factors, i = 1, (2, 2.5, 2), 0  # 1 -> 2 -> 5 -> 10 -> 20 -> 50 ...
    while step * cell < min_pixels:
        step, i = int(step * factors[i % 3]), i + 1
    return step


def labelled_heat_map(matrix: torch.Tensor, names: Sequence[str], min_side: int = 400) -> torch.Tensor:
    """``heat_map`` with rows (labels) named on the left and columns (predictions) numbered on
    top, as uint8 H x W x 3. Up to MAX_NAMED_CLASSES classes cells are tall enough for a name per
    row; with more (400 for Kinetics) only ticks far enough apart to read are drawn."""
    from PIL import Image, ImageDraw, ImageFont

    classes = matrix.shape[0]
    if len(names) != classes:
        raise ValueError(f"{len(names)} class names for a {classes}-class confusion matrix")
    font = ImageFont.load_default()
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def size(text: str) -> tuple[int, int]:
        left, top, right, bottom = measure.textbbox((0, 0), text, font=font)
        return right - left, bottom - top

    line = size("Ag0")[1] + 2
    named = classes <= MAX_NAMED_CLASSES
    cells = heat_map(matrix, max(min_side, classes * line) if named else min_side)
    cell = cells.shape[0] // classes
    row_step = 1 if named else tick_step(cell, line)
    col_step = tick_step(cell, size(str(classes - 1))[0] + _MARGIN)
    rows = {i: f"{i} {names[i]}" if named else str(i) for i in range(0, classes, row_step)}
    columns = range(0, classes, col_step)
    left = max(size(text)[0] for text in rows.values()) + 2 * _MARGIN
    top = line + 2 * _MARGIN
    image = Image.new("RGB", (left + cells.shape[1], top + cells.shape[0]), "white")
    image.paste(Image.fromarray(cells.numpy()), (left, top))
    draw = ImageDraw.Draw(image)
    for i, text in rows.items():
        width, height = size(text)
        draw.text((left - _MARGIN - width, top + i * cell + (cell - height) // 2), text, fill="black", font=font)
    for i in columns:
        width = size(str(i))[0]
        draw.text((left + i * cell + (cell - width) // 2, _MARGIN), str(i), fill="black", font=font)
    return torch.from_numpy(np.asarray(image).copy())


def write_png(path: str, image: torch.Tensor) -> None:
    """Write a uint8 H x W x 3 image as an 8-bit RGB PNG."""
    from PIL import Image

    if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"write_png {path}: expected a uint8 H x W x 3 image, got {image.dtype} {tuple(image.shape)}")
    Image.fromarray(image.contiguous().numpy()).save(path, format="PNG")
