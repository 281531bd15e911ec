"""The one spatial transform stack: short-side scale, crop, flip, channel order, normalisation.

Everything stays uint8 until the last step: the clip is resized as uint8 (skipped when the size
already fits), cropped (a view), flipped, and only the crop is converted to float and normalised.
The crop follows the resize because cropping first is not equivalent: bilinear pixels at a crop
border blend with neighbours outside it. Resizing 16 uint8 frames of 320p takes a few
milliseconds, little beside decoding them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple, Optional

import numpy as np
import torch
import torch.nn.functional as F


class CropPlan(NamedTuple):
    """Where one clip's pixels come from: the scaled (height, width), the crop's top-left, a flip."""

    height: int
    width: int
    top: int
    left: int
    flip: bool


def short_side_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(height, width) with the shorter side equal to ``short_side`` and the aspect ratio kept; the
    long side is rounded down, as the original's ``floor(long / short * size)``, which also keeps
    a frame whose short side already fits as it is."""
    if min(height, width) == short_side:
        return height, width
    if height <= width:
        return short_side, int(math.floor(width / height * short_side))
    return int(math.floor(height / width * short_side)), short_side


def crop_offset(free: int, position: int) -> int:
    """Offset of a crop with ``free`` pixels to spare: position 0 / 1 / 2 is the start, the centre
    (rounded up, as the original's ``ceil(free / 2)``) and the end."""
    return (0, -(-free // 2), free)[position]


@dataclass(frozen=True)
class ClipTransform:
    """Training: short side drawn from ``scales`` (uniform, or uniform in 1/size with
    ``inv_uniform``), a random ``crop_size`` crop, a horizontal flip with probability 1/2 when
    ``flip``. Evaluation (``train=False``): short side ``scales[0]``; with ``num_crops`` 3,
    spatial index 0/1/2 is the left/centre/right crop (top/centre/bottom for portrait videos),
    with 1 the centre crop. Sizes and offsets round as the original's (``short_side_size``,
    ``crop_offset``); the random crop never starts at the last offset, as the original's
    ``randint(0, free)``. ``mean`` and ``std`` are per RGB channel of [0, 1] pixels; ``bgr``
    reverses the channel order of the output. ``augment`` (training RandAugment, AUG.ENABLE) maps
    the cropped uint8 T x 3 x crop x crop clip to another before it is normalised, drawing from the
    torch generator it is given (None: torch's default generator).
    """

    crop_size: int
    scales: tuple[int, int]
    train: bool
    num_crops: int = 1
    flip: bool = False
    inv_uniform: bool = False
    mean: tuple[float, float, float] = (0.45, 0.45, 0.45)
    std: tuple[float, float, float] = (0.225, 0.225, 0.225)
    bgr: bool = False
    augment: Optional[Callable[[torch.Tensor, Optional[torch.Generator]], torch.Tensor]] = None

    def __post_init__(self) -> None:
        if not 0 < self.scales[0] <= self.scales[1]:
            raise ValueError(f"scales must be [min, max] with 0 < min <= max, got {list(self.scales)}")
        if self.crop_size > self.scales[0]:
            raise ValueError(f"crop size {self.crop_size} is larger than the short side {self.scales[0]}")
        if self.num_crops not in (1, 3):
            raise ValueError(f"num_crops must be 1 or 3, got {self.num_crops}")

    def plan(
        self, height: int, width: int, spatial_index: int = 0, rng: Optional[np.random.Generator] = None
    ) -> CropPlan:
        """The crop for a clip of ``height`` x ``width`` frames; training draws from ``rng``."""
        crop = self.crop_size
        if not self.train:
            scaled_h, scaled_w = short_side_size(height, width, self.scales[0])
            top, left = crop_offset(scaled_h - crop, 1), crop_offset(scaled_w - crop, 1)
            if self.num_crops == 3:
                if not 0 <= spatial_index < 3:
                    raise ValueError(f"spatial_index must be 0, 1 or 2, got {spatial_index}")
                if scaled_w >= scaled_h:
                    left = crop_offset(scaled_w - crop, spatial_index)
                else:
                    top = crop_offset(scaled_h - crop, spatial_index)
            return CropPlan(scaled_h, scaled_w, top, left, False)
        if rng is None:
            raise ValueError("a training transform needs an rng")
        low, high = self.scales
        if self.inv_uniform:
            short = int(round(1.0 / rng.uniform(1.0 / high, 1.0 / low)))
        else:
            short = int(round(rng.uniform(low, high)))
        scaled_h, scaled_w = short_side_size(height, width, short)
        top = int(rng.integers(0, scaled_h - crop)) if scaled_h > crop else 0
        left = int(rng.integers(0, scaled_w - crop)) if scaled_w > crop else 0
        flip = bool(self.flip and rng.random() < 0.5)
        return CropPlan(scaled_h, scaled_w, top, left, flip)

    def __call__(
        self,
        frames: torch.Tensor,
        spatial_index: int = 0,
        rng: Optional[np.random.Generator] = None,
        generator: Optional[torch.Generator] = None,
    ) -> torch.Tensor:
        """uint8 T x H x W x 3 RGB frames -> normalised float32 3 x T x crop x crop; training draws
        the crop from ``rng`` and ``augment``'s ops from ``generator``."""
        return self.apply(frames, self.plan(frames.shape[1], frames.shape[2], spatial_index, rng), generator)

    def apply(self, frames: torch.Tensor, plan: CropPlan, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"frames must be uint8 T x H x W x 3, got {frames.dtype} {tuple(frames.shape)}")
        clip = frames.permute(0, 3, 1, 2)  # T x 3 x H x W, channels-last in memory
        if clip.shape[-2:] != (plan.height, plan.width):
            clip = F.interpolate(clip, size=(plan.height, plan.width), mode="bilinear", align_corners=False)
        clip = clip[..., plan.top : plan.top + self.crop_size, plan.left : plan.left + self.crop_size]
        if plan.flip:
            clip = clip.flip(-1)
        if self.augment is not None:
            clip = self.augment(clip, generator)
        mean, std = np.asarray(self.mean), np.asarray(self.std)
        if self.bgr:
            clip, mean, std = clip.flip(1), mean[::-1], std[::-1]
        out = torch.empty((3,) + (clip.shape[0],) + clip.shape[2:], dtype=torch.float32)
        out.copy_(clip.transpose(0, 1))
        scale = torch.as_tensor(1.0 / (255.0 * std), dtype=torch.float32).view(3, 1, 1, 1)
        shift = torch.as_tensor(-mean / std, dtype=torch.float32).view(3, 1, 1, 1)
        return out.mul_(scale).add_(shift)
