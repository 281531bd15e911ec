"""bf16 autocast training of VoV3D in channels_last_3d stays finite and follows fp32 (issue 15
point 8: NaN losses seen on the CPU within 8-150 iterations), with the default D(2+1)D formulation
(``auto``: the 2-D kernels while training) and with the 3-D convs. VoV3D's stem and one T-OSA
block on a fixed batch keep a few hundred steps to seconds. Losses alone pass on a CPU whose bf16
weight gradients are wrong (issue 23); test_bf16_gradients.py compares the gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from vov3d.models.stem import Stem
from vov3d.models.tosa import TOSATransform

STEPS = 200


def train_losses(dtype: torch.dtype | None, depthwise: str) -> list[float]:
    torch.manual_seed(0)
    model = nn.Sequential(  # VoV3D's stem and one T-OSA block of two units (one with SE)
        Stem(3, 8),
        TOSATransform(8, 16, 16, stride=1, num_units=2, depthwise=depthwise),
        nn.AdaptiveAvgPool3d(1),
        nn.Flatten(),
        nn.Linear(16, 4),
    ).to(memory_format=torch.channels_last_3d)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-5)
    clips = torch.randn(4, 3, 4, 12, 12).contiguous(memory_format=torch.channels_last_3d)
    labels = torch.tensor([0, 1, 2, 3])
    losses = []
    for _ in range(STEPS):
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = F.cross_entropy(model(clips).float(), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("depthwise", ["auto", "separate"])
def test_bf16_training_stays_finite_and_tracks_fp32(depthwise: str) -> None:
    fp32, bf16 = train_losses(None, depthwise), train_losses(torch.bfloat16, depthwise)
    assert all(math.isfinite(x) for x in bf16), next(i for i, x in enumerate(bf16) if not math.isfinite(x))
    # Both fit the batch: the same start, and a mean gap that is small against the loss's fall.
    assert bf16[0] == pytest.approx(fp32[0], abs=0.02)
    window = slice(STEPS // 2, None)
    assert sum(bf16[window]) / len(bf16[window]) < 0.2 * bf16[0]
    gap = sum(abs(a - b) for a, b in zip(fp32, bf16)) / STEPS
    assert gap < 0.05 * fp32[0], gap
