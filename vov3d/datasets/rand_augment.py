"""RandAugment of training clips (Cubuk et al., 2020) from PySlowFast's AUG.AA_TYPE string,
run by torchvision's ``RandAugment`` ops, which apply the same op to every frame of a
T x C x H x W uint8 clip so that motion is not broken by per-frame changes. The ops are drawn from
a torch generator the caller passes (the training item's own, see sampler.py)."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Optional

import torch

from vov3d.config import CfgNode, cfg_error

# timm's and PySlowFast's magnitude scale: 0 .. 10.
MAX_MAGNITUDE = 10
_TOKEN = re.compile(r"^(m|n|mstd|inc)(\d+(?:\.\d+)?)$")
INTERPOLATIONS = ("bilinear", "nearest")  # torchvision's InterpolationMode values for tensors


@dataclass(frozen=True)
class ClipRandAugment:
    """``num_ops`` random ops at ``magnitude`` (0 .. 10); with ``magnitude_std`` each clip's
    magnitude is drawn from a normal around it (clipped to 0 .. 10), once for all its ops;
    ``interpolation`` (bilinear or nearest) resamples the geometric ops."""

    magnitude: float
    num_ops: int
    magnitude_std: float = 0.0
    interpolation: str = "bilinear"

    @classmethod
    def from_cfg(cls, cfg: CfgNode) -> ClipRandAugment:
        if cfg.AUG.INTERPOLATION not in INTERPOLATIONS:
            raise cfg_error(cfg, "AUG.INTERPOLATION", f"must be one of {', '.join(INTERPOLATIONS)}")
        try:
            policy = cls.parse(cfg.AUG.AA_TYPE)
        except ValueError as e:
            raise cfg_error(cfg, "AUG.AA_TYPE", str(e)) from None
        return dataclasses.replace(policy, interpolation=cfg.AUG.INTERPOLATION)

    @classmethod
    def parse(cls, spec: str) -> ClipRandAugment:
        """``rand-m7-n4-mstd0.5-inc1``: magnitude 7, 4 ops, magnitude std 0.5, increasing ops."""
        parts = spec.split("-")
        if parts[0] != "rand":
            raise ValueError(f"{spec!r} is not a RandAugment policy; expected e.g. rand-m7-n4-mstd0.5-inc1")
        values = {"m": 9.0, "n": 2.0, "mstd": 0.0, "inc": 1.0}
        for part in parts[1:]:
            match = _TOKEN.match(part)
            if match is None:
                raise ValueError(f"{spec!r}: unknown part {part!r}; use m<0..10>, n<ops>, mstd<std> and inc1")
            values[match.group(1)] = float(match.group(2))
        if values["inc"] != 1:
            raise ValueError(f"{spec!r}: only inc1 is supported (torchvision's ops grow stronger with the magnitude)")
        if not 0 <= values["m"] <= MAX_MAGNITUDE or values["n"] < 1 or values["n"] != int(values["n"]):
            raise ValueError(f"{spec!r}: m must be in 0 .. {MAX_MAGNITUDE} and n a whole number of ops >= 1")
        return cls(values["m"], int(values["n"]), values["mstd"])

    def __call__(self, clip: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """uint8 T x C x H x W -> the same ops on every frame, drawn from ``generator`` (None:
        torch's default generator, whose draws are then those of torchvision's own forward)."""
        from torchvision.transforms import InterpolationMode, v2  # seconds to import: only when used

        magnitude = self.magnitude
        if self.magnitude_std > 0:
            magnitude = float(
                torch.normal(magnitude, self.magnitude_std, (), generator=generator).clamp(0, MAX_MAGNITUDE)
            )
        policy = v2.RandAugment(
            num_ops=self.num_ops,
            magnitude=round(magnitude),
            num_magnitude_bins=MAX_MAGNITUDE + 1,
            interpolation=InterpolationMode(self.interpolation),
        )
        # torchvision's RandAugment takes no generator, so the op and its sign are drawn here, in
        # its order (tests/datasets/test_rand_augment.py compares), and torchvision applies the op
        # through its private _AUGMENTATION_SPACE and _apply_image_or_video_transform (as of
        # torchvision 0.29; setup.py's range is what that test guards).
        space = policy._AUGMENTATION_SPACE
        names = list(space)
        height, width = clip.shape[-2:]
        for _ in range(self.num_ops):
            name = names[int(torch.randint(len(names), (), generator=generator))]
            levels_of, signed = space[name]
            levels = levels_of(policy.num_magnitude_bins, height, width)
            level = 0.0 if levels is None else float(levels[policy.magnitude])
            if levels is not None and signed and torch.rand((), generator=generator) <= 0.5:
                level = -level
            clip = policy._apply_image_or_video_transform(
                clip, name, level, interpolation=policy.interpolation, fill=policy._fill
            )
        return clip
