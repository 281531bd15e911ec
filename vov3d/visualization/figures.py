"""Charts for TensorBoard drawn with Pillow (matplotlib is not a dependency), as uint8 H x W x 3
tensors, in Pillow's scalable default font (Pillow 10.1 or newer)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import numpy as np
import torch

from .draw import font as draw_font

FONT_SIZE = 14
BAR_COLOUR = (66, 113, 178)
HIGHLIGHT_COLOUR = (56, 150, 80)
_MARGIN = 6


def bar_chart(
    values: Sequence[int], labels: Sequence[str], title: str, highlight: Optional[int] = None, length: int = 320
) -> torch.Tensor:
    """One horizontal bar per value, ``length`` pixels for the largest, its label on the left and
    its value at its end, under ``title``; bar ``highlight`` (an index into ``values``) in green.
    Horizontal, so that long class names stay readable."""
    from PIL import Image, ImageDraw

    if len(values) != len(labels):
        raise ValueError(f"{len(values)} values but {len(labels)} labels")
    font = draw_font(FONT_SIZE)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def width(text: str) -> int:
        left, _, right, _ = measure.textbbox((0, 0), text, font=font)
        return right - left

    line = FONT_SIZE + _MARGIN
    left = max((width(label) for label in labels), default=0) + 2 * _MARGIN
    top = line + 2 * _MARGIN
    most = max(max(values, default=0), 1)
    chart_width = left + length + max((width(str(v)) for v in values), default=0) + 2 * _MARGIN
    size = (max(chart_width, width(title) + 2 * _MARGIN), top + len(values) * line + _MARGIN)
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    draw.text((_MARGIN, _MARGIN), title, fill="black", font=font)
    for i, (value, label) in enumerate(zip(values, labels)):
        y = top + i * line
        end = left + round(length * value / most)
        if end > left:
            colour = HIGHLIGHT_COLOUR if i == highlight else BAR_COLOUR
            draw.rectangle((left, y + 2, end - 1, y + line - 3), fill=colour)
        draw.text((left - _MARGIN - width(label), y + 2), label, fill="black", font=font)
        draw.text((end + _MARGIN, y + 2), str(value), fill="black", font=font)
    return torch.from_numpy(np.asarray(image).copy())
