"""The TensorBoard writer of a run, the confusion-matrix heat map, drawn with plain tensors
(matplotlib is not a dependency), labelled with Pillow's built-in font and written as PNG, and
clips as animated GIFs (``SummaryWriter.add_video`` needs moviepy, which is not a dependency)."""

from __future__ import annotations

import io
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


def heat_map(matrix: torch.Tensor, min_side: int = 400, totals: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Rows divided by ``totals`` (default: their own sums, so each sums to 1), white (0) to dark
    blue (1), as uint8 H x W x 3; each cell is a square of pixels so that small matrices are readable."""
    rows = matrix.double()
    totals = rows.sum(dim=1) if totals is None else totals.double()
    rows = rows / totals.view(-1, 1).clamp(min=1)
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


def labelled_heat_map(
    matrix: torch.Tensor,
    names: Sequence[str],
    min_side: int = 400,
    indices: Optional[Sequence[int]] = None,
    totals: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """``heat_map`` with rows (labels) named on the left and columns (predictions) numbered on
    top, as uint8 H x W x 3. Up to MAX_NAMED_CLASSES classes cells are tall enough for a name per
    row; with more (400 for Kinetics) only ticks far enough apart to read are drawn.

    A sub-matrix of a larger confusion matrix gives ``indices``, the classes of its rows and
    columns, which are numbered with them and always named row by row, and ``totals``, its rows'
    sums in the whole matrix, so that predictions of classes outside it still count."""
    from PIL import Image, ImageDraw, ImageFont

    classes = matrix.shape[0]
    if len(names) != classes:
        raise ValueError(f"{len(names)} class names for a {classes}-class confusion matrix")
    numbers = list(range(classes)) if indices is None else list(indices)
    if len(numbers) != classes:
        raise ValueError(f"{len(numbers)} class indices for a {classes}-class confusion matrix")
    font = ImageFont.load_default()
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def size(text: str) -> tuple[int, int]:
        left, top, right, bottom = measure.textbbox((0, 0), text, font=font)
        return right - left, bottom - top

    line = size("Ag0")[1] + 2
    named = classes <= MAX_NAMED_CLASSES or indices is not None
    cells = heat_map(matrix, max(min_side, classes * line) if named else min_side, totals)
    cell = cells.shape[0] // classes
    row_step = 1 if named else tick_step(cell, line)
    col_step = tick_step(cell, max(size(str(n))[0] for n in numbers) + _MARGIN)
    rows = {i: f"{numbers[i]} {names[i]}" if named else str(i) for i in range(0, classes, row_step)}
    columns = {i: str(numbers[i]) for i in range(0, classes, col_step)}
    left = max(size(text)[0] for text in rows.values()) + 2 * _MARGIN
    top = line + 2 * _MARGIN
    image = Image.new("RGB", (left + cells.shape[1], top + cells.shape[0]), "white")
    image.paste(Image.fromarray(cells.numpy()), (left, top))
    draw = ImageDraw.Draw(image)
    for i, text in rows.items():
        width, height = size(text)
        draw.text((left - _MARGIN - width, top + i * cell + (cell - height) // 2), text, fill="black", font=font)
    for i, text in columns.items():
        width = size(text)[0]
        draw.text((left + i * cell + (cell - width) // 2, _MARGIN), text, fill="black", font=font)
    return torch.from_numpy(np.asarray(image).copy())


def write_png(path: str, image: torch.Tensor) -> None:
    """Write a uint8 H x W x 3 image as an 8-bit RGB PNG."""
    from PIL import Image

    if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"write_png {path}: expected a uint8 H x W x 3 image, got {image.dtype} {tuple(image.shape)}")
    Image.fromarray(image.contiguous().numpy()).save(path, format="PNG")


def encode_gif(frames: torch.Tensor, fps: float) -> bytes:
    """uint8 T x H x W x 3 frames as an animated GIF that loops, ``fps`` frames a second (Pillow
    merges equal consecutive frames into one shown for as long)."""
    from PIL import Image

    if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[3] != 3:
        raise ValueError(f"encode_gif: expected uint8 T x H x W x 3 frames, got {frames.dtype} {tuple(frames.shape)}")
    images = [Image.fromarray(frame) for frame in frames.contiguous().numpy()]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
    return buffer.getvalue()


def add_gif(writer: Any, tag: str, frames: torch.Tensor, fps: float, step: int = 0) -> None:
    """``frames`` (uint8 T x H x W x 3) as an image summary holding an animated GIF, which
    TensorBoard's image dashboard plays: what ``add_video`` writes, without moviepy."""
    from tensorboard.compat.proto.summary_pb2 import Summary

    _, height, width, channels = frames.shape
    image = Summary.Image(height=height, width=width, colorspace=channels, encoded_image_string=encode_gif(frames, fps))
    # as SummaryWriter.add_image and add_video write theirs
    writer._get_file_writer().add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), step)
