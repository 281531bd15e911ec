"""Mixup (Zhang et al., 2018) and CutMix (Yun et al., 2019) of a training batch of clips, with
PySlowFast's MIXUP.* keys: each clip is mixed with the clip at the mirrored batch position, the
same box for every frame, and the targets become soft labels. Draws use torch's global generator,
whose state checkpoints store, so a resumed run mixes as an uninterrupted one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from vov3d.config import CfgNode, cfg_error


def smoothed_one_hot(labels: torch.Tensor, num_classes: int, smoothing: float) -> torch.Tensor:
    """``1 - smoothing`` on the label, ``smoothing`` spread evenly over all classes."""
    target = torch.full((labels.shape[0], num_classes), smoothing / num_classes, device=labels.device)
    return target.scatter_(1, labels.view(-1, 1), 1 - smoothing + smoothing / num_classes)


@dataclass(frozen=True)
class MixUp:
    num_classes: int
    alpha: float = 0.8
    cutmix_alpha: float = 1.0
    prob: float = 1.0
    switch_prob: float = 0.5
    label_smoothing: float = 0.1

    @classmethod
    def from_cfg(cls, cfg: CfgNode) -> Optional[MixUp]:
        """The MIXUP section's mixer, or None without MIXUP.ENABLE."""
        m = cfg.MIXUP
        if not m.ENABLE:
            return None
        for key in ("ALPHA", "CUTMIX_ALPHA"):
            if m[key] < 0:
                raise cfg_error(cfg, f"MIXUP.{key}", "must be 0 (off) or more")
        if m.ALPHA == 0 and m.CUTMIX_ALPHA == 0:
            raise cfg_error(cfg, "MIXUP.ALPHA", "and MIXUP.CUTMIX_ALPHA are both 0: nothing to mix")
        for key in ("PROB", "SWITCH_PROB"):
            if not 0 <= m[key] <= 1:
                raise cfg_error(cfg, f"MIXUP.{key}", "must be a probability in [0, 1]")
        if not 0 <= m.LABEL_SMOOTH_VALUE < 1:
            raise cfg_error(cfg, "MIXUP.LABEL_SMOOTH_VALUE", "must be in [0, 1)")
        if cfg.MODEL.LABEL_SMOOTHING:
            raise cfg_error(
                cfg, "MODEL.LABEL_SMOOTHING", "is not applied to mixed targets; set MIXUP.LABEL_SMOOTH_VALUE instead"
            )
        return cls(cfg.MODEL.NUM_CLASSES, m.ALPHA, m.CUTMIX_ALPHA, m.PROB, m.SWITCH_PROB, m.LABEL_SMOOTH_VALUE)

    def __call__(self, clips: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Clips (B, C, T, H, W) and integer labels -> mixed clips and (B, classes) soft targets."""
        target = smoothed_one_hot(labels, self.num_classes, self.label_smoothing)
        if float(torch.rand(())) >= self.prob:
            return clips, target
        cutmix = self.cutmix_alpha > 0 and (self.alpha == 0 or float(torch.rand(())) < self.switch_prob)
        alpha = self.cutmix_alpha if cutmix else self.alpha
        lam = float(torch.distributions.Beta(alpha, alpha).sample())
        other = clips.flip(0)
        if cutmix:
            clips, lam = _paste_box(clips, other, lam)
        else:
            clips = clips * lam + other * (1 - lam)
        return clips, target * lam + target.flip(0) * (1 - lam)


def _paste_box(clips: torch.Tensor, other: torch.Tensor, lam: float) -> tuple[torch.Tensor, float]:
    """Paste a box of about ``1 - lam`` of the frame area from ``other`` into every frame; the
    returned weight is the share of the frame left to ``clips`` after clipping the box to it."""
    height, width = clips.shape[-2:]
    cut = (1 - lam) ** 0.5
    box_h, box_w = int(height * cut), int(width * cut)
    cy, cx = int(torch.randint(height, ())), int(torch.randint(width, ()))
    top, bottom = max(cy - box_h // 2, 0), min(cy + box_h // 2, height)
    left, right = max(cx - box_w // 2, 0), min(cx + box_w // 2, width)
    clips = clips.clone()
    clips[..., top:bottom, left:right] = other[..., top:bottom, left:right]
    return clips, 1 - (bottom - top) * (right - left) / (height * width)
