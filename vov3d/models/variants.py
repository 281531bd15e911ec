"""Execution variants of a built network: other memory layouts, kernels and precisions that
compute the same function with the same weights, so that any of them can run any checkpoint.

A variant is written as ``base`` (none: the plain NCDHW eager model, the PySlowFast way) or
options joined by ``+``: ``cl`` (channels_last_3d), ``fold`` (BN folded into convolutions,
inference only), ``compile`` (torch.compile), ``bf16`` (bf16 autocast) and ``dw=IMPL`` (the
D(2+1)D formulation, VoV3D only; see ``d2plus1d.DEPTHWISE_IMPLS``). The benchmark times them;
tests/models/test_variants.py checks each against the baseline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.nn as nn

from .d2plus1d import D2Plus1DUnit, check_impl, set_depthwise_impl
from .fuse import fold_bn

# Option token -> Variant field, in the order names are written.
FLAGS = {"cl": "channels_last", "fold": "fold_bn", "compile": "compile", "bf16": "bf16"}
BASELINE = "base"


@dataclass(frozen=True)
class Variant:
    """How a model runs; every variant computes the baseline's function with the same weights."""

    channels_last: bool = False
    fold_bn: bool = False
    compile: bool = False
    bf16: bool = False
    depthwise: Optional[str] = None

    @classmethod
    def parse(cls, text: str) -> Variant:
        """``base``, or options joined by ``+``, e.g. ``cl+fold+dw=fused``."""
        if text == BASELINE:
            return cls()
        fields: dict[str, Any] = {}
        for token in text.split("+"):
            key, _, value = token.partition("=")
            if key == "dw":
                fields["depthwise"] = check_impl(value)
            elif key in FLAGS and not value:
                fields[FLAGS[key]] = True
            else:
                options = ", ".join([BASELINE, *FLAGS, "dw=IMPL"])
                raise ValueError(f"unknown variant option {token!r} in {text!r}; options: {options}")
        return cls(**fields)

    @property
    def name(self) -> str:
        tokens = [flag for flag, field in FLAGS.items() if getattr(self, field)]
        tokens += [f"dw={self.depthwise}"] if self.depthwise else []
        return "+".join(tokens) or BASELINE

    def skip_reason(self, model: nn.Module, train: bool) -> Optional[str]:
        """Why this variant does not apply to ``model`` (None when it does)."""
        if train and self.fold_bn:
            return "BN folding is for inference only"
        if self.depthwise and not any(isinstance(m, D2Plus1DUnit) for m in model.modules()):
            return "the model has no D(2+1)D units"
        return None

    def prepare(self, model: nn.Module, train: bool) -> nn.Module:
        """Apply the variant to a built model on its device (load checkpoints before). The
        baseline runs VoV3D's D(2+1)D units as written (``separate``), not the ``auto`` default."""
        model.train(train)
        if any(isinstance(m, D2Plus1DUnit) for m in model.modules()):
            set_depthwise_impl(model, self.depthwise or "separate")
        if self.fold_bn:
            fold_bn(model)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last_3d)
        return torch.compile(model) if self.compile else model

    def input(self, clip: torch.Tensor) -> torch.Tensor:
        """``clip`` in the memory format the variant's model expects."""
        return clip.contiguous(memory_format=torch.channels_last_3d) if self.channels_last else clip

    def autocast(self, device: torch.device) -> torch.autocast:
        """The precision context of the variant's forward pass."""
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.bf16)
