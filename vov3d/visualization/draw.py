"""Drawing with Pillow (no matplotlib): class names and probabilities over a frame, the timeline of
the top classes' probabilities, and strips of frames. Pillow's built-in font is scalable
(FreeType), so text is sized to the picture."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

# Line colours of the timeline, one per class shown (the "tab10" palette's first eight).
PALETTE = [
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40),
    (148, 103, 189), (140, 86, 75), (227, 119, 194), (127, 127, 127),
]  # fmt: skip


def font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=max(8, size))


def resize(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """uint8 H x W x 3 resized to ``height`` x ``width`` (bilinear; as it is when the size is its own)."""
    if frame.shape[:2] == (height, width):
        return frame
    return np.asarray(Image.fromarray(frame).resize((width, height), Image.BILINEAR))


def label_frame(frame: np.ndarray, lines: Sequence[tuple[str, float]], header: str = "") -> np.ndarray:
    """``frame`` (uint8 H x W x 3) with a dark band at the top holding ``header`` and one
    ``NN%  name`` line per (name, probability), each over a bar as long as its probability. The
    text is a sixteenth of the frame's height (at least 8 pixels), so it reads at any size."""
    image = Image.fromarray(frame)
    size = max(8, frame.shape[0] // 16)
    text_font, pad = font(size), max(2, size // 4)
    rows = ([header] if header else []) + [f"{100 * p:3.0f}%  {name}" for name, p in lines]
    height = len(rows) * (size + pad) + pad
    band = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(band)
    draw.rectangle((0, 0, image.width, height), fill=(0, 0, 0, 150))
    first = 1 if header else 0
    for i, (_, p) in enumerate(lines):
        top = pad + (first + i) * (size + pad)
        draw.rectangle((0, top, int(p * image.width), top + size), fill=(40, 140, 255, 150))
    for i, text in enumerate(rows):
        draw.text((pad, pad + i * (size + pad)), text, font=text_font, fill=(255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(image.convert("RGBA"), band).convert("RGB"))


def timeline(times: Sequence[float], probs: torch.Tensor, names: Sequence[str], duration: float) -> np.ndarray:
    """A chart (uint8 H x W x 3) of the probability of each of ``names`` (the columns of ``probs``,
    windows x classes shown) at the centre time of each window (``times``, seconds), with a
    legend; the time axis spans the video's ``duration``."""
    width, plot_h, left, top, bottom = 960, 300, 56, 16, 40
    line = 18
    legend_h = line * len(names) + 8
    image = Image.new("RGB", (width, top + plot_h + bottom + legend_h), "white")
    draw, small = ImageDraw.Draw(image), font(13)
    right = width - 16
    span = max(duration, 1e-6)

    def x_of(t: float) -> float:
        return left + (right - left) * t / span

    def y_of(p: float) -> float:
        return top + plot_h * (1 - p)

    for p in (0.0, 0.25, 0.5, 0.75, 1.0):
        draw.line((left, y_of(p), right, y_of(p)), fill=(225, 225, 225))
        draw.text((left - 6, y_of(p)), f"{p:.2f}", font=small, fill="black", anchor="rm")
    step = _tick_step(span)
    for k in range(int(span / step) + 1):
        draw.text((x_of(k * step), top + plot_h + 6), f"{k * step:g}", font=small, fill="black", anchor="mt")
    draw.text(((left + right) / 2, top + plot_h + 22), "time (s)", font=small, fill="black", anchor="mt")
    draw.rectangle((left, top, right, top + plot_h), outline="black")
    for c, name in enumerate(names):
        colour = PALETTE[c % len(PALETTE)]
        points = [(x_of(t), y_of(float(p))) for t, p in zip(times, probs[:, c])]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        for x, y in points:
            draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=colour)
        y = top + plot_h + bottom + 4 + c * line
        draw.rectangle((left, y + 4, left + 24, y + 8), fill=colour)
        draw.text((left + 32, y), name, font=small, fill="black")
    return np.asarray(image)


def _tick_step(span: float) -> float:
    """1, 2 or 5 times a power of ten, giving at most 12 ticks over ``span`` seconds."""
    base = 10.0 ** np.floor(np.log10(span / 12)) if span > 12 else 0.1
    for factor in (1, 2, 5, 10):
        if span / (base * factor) <= 12:
            return base * factor
    return base * 10


def strip(rows: Sequence[np.ndarray], labels: Sequence[str], cell: int = 96) -> np.ndarray:
    """Frames side by side, one row per clip (each uint8 T x H x W x 3, scaled to ``cell`` pixels
    high), with each row's label on a line above it: a Grad-CAM strip."""
    size = 14
    text_font = font(size)
    scaled = [
        [Image.fromarray(f).resize((max(1, round(cell * f.shape[1] / f.shape[0])), cell)) for f in clip]
        for clip in rows
    ]
    width = max(sum(image.width for image in clip) for clip in scaled)
    row_h = cell + size + 8
    image = Image.new("RGB", (width, row_h * len(rows)), "white")
    draw = ImageDraw.Draw(image)
    for r, (clip, label) in enumerate(zip(scaled, labels)):
        draw.text((4, r * row_h + 2), label, font=text_font, fill="black")
        x = 0
        for frame in clip:
            image.paste(frame, (x, r * row_h + size + 6))
            x += frame.width
    return np.asarray(image)
