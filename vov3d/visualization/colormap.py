"""Colour maps for heat maps (matplotlib's names, without matplotlib) and their overlay on frames."""

from __future__ import annotations

import torch

# viridis and inferno sampled at 9 evenly spaced points (matplotlib's maps, to within a level or
# two) and interpolated linearly between them; jet and gray are formulas.
_ANCHORS = {
    "viridis": [
        (68, 1, 84), (71, 44, 122), (59, 81, 139), (44, 113, 142), (33, 144, 141),
        (39, 173, 129), (92, 200, 99), (170, 220, 50), (253, 231, 37),
    ],
    "inferno": [
        (0, 0, 4), (31, 12, 72), (85, 15, 109), (136, 34, 106), (186, 54, 85),
        (227, 89, 51), (249, 140, 10), (249, 201, 50), (252, 255, 164),
    ],
}  # fmt: skip
COLORMAPS = ("viridis", "jet", "inferno", "gray")


def colorize(heat: torch.Tensor, name: str = "viridis") -> torch.Tensor:
    """Values in [0, 1] (any shape, clamped) as uint8 RGB colours of map ``name`` (shape + (3,))."""
    x = heat.float().clamp(0, 1)
    if name in _ANCHORS:
        anchors = torch.tensor(_ANCHORS[name], dtype=torch.float32)
        position = x * (len(anchors) - 1)
        low = position.floor().long().clamp(max=len(anchors) - 2)
        weight = (position - low).unsqueeze(-1)
        rgb = anchors[low] * (1 - weight) + anchors[low + 1] * weight
    elif name == "jet":  # blue -> cyan -> yellow -> red
        rgb = 255 * torch.stack([(1.5 - (4 * x - c).abs()).clamp(0, 1) for c in (3, 2, 1)], dim=-1)
    elif name == "gray":
        rgb = 255 * x.unsqueeze(-1).expand(*x.shape, 3)
    else:
        raise ValueError(f"unknown colour map {name!r}; choose one of {', '.join(COLORMAPS)}")
    return rgb.round().to(torch.uint8)


def overlay(frames: torch.Tensor, heat: torch.Tensor, name: str = "viridis", alpha: float = 0.5) -> torch.Tensor:
    """uint8 T x H x W x 3 frames blended with ``heat`` (T x H x W in [0, 1]) in colour map
    ``name``: ``alpha`` of the heat's colour over the frame."""
    if heat.shape != frames.shape[:3]:
        raise ValueError(f"heat {tuple(heat.shape)} does not match frames {tuple(frames.shape)}")
    mixed = (1 - alpha) * frames.float() + alpha * colorize(heat, name).float()
    return mixed.round().to(torch.uint8)
