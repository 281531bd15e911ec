"""The one spatial transform stack: short-side scale, crop, flip (in the loader, on uint8), then
channel order and normalisation (``Normalize``, on the device the network runs on).

A clip leaves the loader as the uint8 crop, T x crop x crop x 3: a quarter of the bytes of the
float clip through shared memory and to the GPU, and no float work in the loader's workers.
``resize_crop`` computes only the pixels the crop keeps where that gives the same pixels: bilinear
resizing is separable (a pass along rows, then one along columns, with uint8 in between, in
PyTorch's CPU kernels), so the second pass runs on the crop's columns alone. Cropping the input
first is not equivalent: bilinear pixels at a crop border blend with neighbours outside it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable, NamedTuple, Optional

import numpy as np
import torch
import torch.nn.functional as F

from vov3d.config import CfgNode

# resize_crop computes only the crop's region of frames resized to at least this many times the
# crop's area (measured on 16 frames, one thread: SSv1's 100x176 to 288x506 for a 224 crop, 2.35 ->
# 1.82 ms; 320x426 to 288x383, 4.4 -> 4.0 ms; but 320x426 to 256x340, 3.7 -> 5.1 ms).
REGION_AREA = 2


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


def resize_crop(clip: torch.Tensor, plan: CropPlan, crop: int) -> torch.Tensor:
    """The ``crop`` x ``crop`` window at ``plan``'s offset of the uint8 T x 3 x H x W ``clip``
    bilinearly resized to ``plan``'s size: the same pixels as resizing whole and cropping (tests
    compare them on each CPU kernel). Where the resized frame is at least REGION_AREA times the
    crop, less work: the row pass, most of the cost, runs on the input rows that the crop's rows
    read, the column pass on the crop's columns, over a frame whose other rows are blank (the rows
    it computes from them are cut away). Below that, two passes cost more than one whole resize."""
    height, width = clip.shape[-2:]
    rows, columns = slice(plan.top, plan.top + crop), slice(plan.left, plan.left + crop)
    if (plan.height, plan.width) == (height, width):
        return clip[..., rows, columns]
    if plan.height * plan.width < REGION_AREA * crop * crop:
        return F.interpolate(clip, size=(plan.height, plan.width), mode="bilinear", align_corners=False)[
            ..., rows, columns
        ]
    first, last = source_rows(plan.top, crop, height, plan.height)
    part = clip[..., first:last, :]
    if plan.width != width:
        part = F.interpolate(part, size=(last - first, plan.width), mode="bilinear", align_corners=False)
    part = part[..., columns]
    if plan.height == height:
        return part
    frame = torch.empty(part.shape[:2] + (height, crop), dtype=part.dtype, memory_format=torch.channels_last)
    frame.zero_()[..., first:last, :] = part
    return F.interpolate(frame, size=(plan.height, crop), mode="bilinear", align_corners=False)[..., rows, :]


def source_rows(top: int, crop: int, height: int, scaled_height: int) -> tuple[int, int]:
    """The rows [first, last) of a frame ``height`` rows high that bilinear resizing to
    ``scaled_height`` rows reads for rows ``top`` to ``top + crop`` of the result: each reads the
    two rows about ``(row + 0.5) * height / scaled_height - 0.5``; one more row each side covers
    rounding. Without resizing, those rows themselves."""
    if scaled_height == height:
        return top, top + crop
    scale = height / scaled_height
    first = math.floor(scale * (top + 0.5) - 0.5) - 1
    last = math.floor(scale * (top + crop - 0.5) + 1.5) + 1
    return max(first, 0), min(last, height)


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
    ``randint(0, free)``. ``augment`` (training RandAugment, AUG.ENABLE) maps the cropped uint8
    T x 3 x crop x crop clip to another, drawing from the torch generator it is given (None: torch's
    default generator). The result is uint8 RGB; ``Normalize`` makes the network's input of it.
    """

    crop_size: int
    scales: tuple[int, int]
    train: bool
    num_crops: int = 1
    flip: bool = False
    inv_uniform: bool = False
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
        """uint8 T x H x W x 3 RGB frames -> the uint8 T x crop x crop x 3 crop (contiguous);
        training draws the crop from ``rng`` and ``augment``'s ops from ``generator``."""
        return self.apply(frames, self.plan(frames.shape[1], frames.shape[2], spatial_index, rng), generator)

    def apply(self, frames: torch.Tensor, plan: CropPlan, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"frames must be uint8 T x H x W x 3, got {frames.dtype} {tuple(frames.shape)}")
        clip = resize_crop(frames.permute(0, 3, 1, 2), plan, self.crop_size)  # T x 3 x H x W, channels-last in memory
        if self.augment is not None:
            clip = self.augment(clip.flip(-1) if plan.flip else clip, generator)
            return clip.permute(0, 2, 3, 1).contiguous()
        clip = clip.permute(0, 2, 3, 1)
        return (clip.flip(2) if plan.flip else clip).contiguous()


@dataclass(frozen=True)
class Normalize:
    """The network's input of uint8 clips: float32, the RGB channels reversed when ``bgr``
    (DATA.REVERSE_INPUT_CHANNEL), then ``(x / 255 - mean) / std`` with ``mean`` and ``std`` per RGB
    channel of [0, 1] pixels (DATA.MEAN, DATA.STD). It runs where the network does (``to_input``),
    as the scale and shift of the float clip, in that order."""

    mean: tuple[float, float, float] = (0.45, 0.45, 0.45)
    std: tuple[float, float, float] = (0.225, 0.225, 0.225)
    bgr: bool = False

    @classmethod
    def from_cfg(cls, cfg: CfgNode) -> Normalize:
        return cls(tuple(cfg.DATA.MEAN), tuple(cfg.DATA.STD), cfg.DATA.REVERSE_INPUT_CHANNEL)

    def __call__(self, clips: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
        """uint8 B x T x H x W x 3 -> float32 B x 3 x T x H x W on the same device; in
        channels_last_3d when ``channels_last``, which is the uint8 layout permuted (one copy)."""
        if clips.dtype != torch.uint8 or clips.ndim != 5 or clips.shape[-1] != 3:
            raise ValueError(f"clips must be a uint8 B x T x H x W x 3 batch, got {clips.dtype} {tuple(clips.shape)}")
        clips = clips.permute(0, 4, 1, 2, 3)
        if self.bgr:
            clips = clips.flip(1)
        layout = torch.channels_last_3d if channels_last else torch.contiguous_format
        out = torch.empty(clips.shape, dtype=torch.float32, device=clips.device, memory_format=layout)
        out.copy_(clips)
        scale, shift = _scale_and_shift(tuple(self.mean), tuple(self.std), self.bgr, clips.device)
        return out.mul_(scale).add_(shift)


@functools.cache
def _scale_and_shift(
    mean: tuple[float, ...], std: tuple[float, ...], bgr: bool, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """``Normalize``'s float32 1 / (255 std) and -mean / std per channel (in BGR order when
    ``bgr``), made once per device: a copy to a GPU every batch would wait for its queued work."""
    mean_, std_ = np.asarray(mean), np.asarray(std)
    if bgr:
        mean_, std_ = mean_[::-1], std_[::-1]
    scale = torch.as_tensor(1.0 / (255.0 * std_), dtype=torch.float32).view(1, 3, 1, 1, 1)
    shift = torch.as_tensor(-mean_ / std_, dtype=torch.float32).view(1, 3, 1, 1, 1)
    return scale.to(device), shift.to(device)
