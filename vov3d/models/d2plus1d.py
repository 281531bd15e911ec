"""The D(2+1)D unit of VoV3D (Lee et al., arXiv 2012.00317): a depthwise 3x3x3 conv factorised
into a depthwise spatial 1x3x3 conv and a depthwise temporal 3x1x1 conv.

PyTorch's depthwise 3-D convolutions are fast forward but slow backward (the paper needed a
patched PyTorch), so the pair can run in several ways from the same two weights (``b1``, ``b2``):

- ``separate``: the two ``Conv3d`` layers as written (the reference).
- ``fused``: one depthwise 3x3x3 conv whose kernel is the outer product ``b2 x b1``: 27 instead
  of 12 multiply-adds per output, one pass over memory instead of two.
- ``frames2d``: both as depthwise 2-D convs over free views of the tensor (the spatial conv over
  the frames, the temporal conv over each channel's (T, H*W) map), whose backward is well tuned.
- ``auto`` (the default): ``frames2d`` while autograd records (training), else ``separate``,
  on every device and in every precision (see ``_auto``).

All give the same outputs within float rounding and the same state dict; BENCHMARKS.md has the
measurements behind ``auto``.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .layers import SE, DepthSafeConv3d, NormFactory, Swish, depth_safe_conv3d, pad_explicitly


def _separate(b1: nn.Conv3d, b2: nn.Conv3d, x: torch.Tensor) -> torch.Tensor:
    return b2(b1(x))


def _fused(b1: nn.Conv3d, b2: nn.Conv3d, x: torch.Tensor) -> torch.Tensor:
    # (C, 1, 3, 1, 1) * (C, 1, 1, 3, 3) -> (C, 1, 3, 3, 3): zero padding commutes with the product.
    kernel = b2.weight * b1.weight
    return depth_safe_conv3d(x, kernel, b2.bias, b1.stride, (1, 1, 1), groups=kernel.shape[0])


def _depthwise3x3(images: torch.Tensor, weight: torch.Tensor, stride: int) -> torch.Tensor:
    """Depthwise 3x3 conv with zero padding 1. An image smaller than the kernel (the last stage
    of a small crop) takes a slow oneDNN backward path; padded first, the conv is a "valid" one
    and about 10x faster there, with the same result."""
    padding: tuple[int, ...] = (1, 1)
    if min(images.shape[-2:]) < 3:
        images, padding = pad_explicitly(images, padding, dims=(0, 1))
    return F.conv2d(images, weight, stride=stride, padding=padding, groups=weight.shape[0])


def _frames2d(b1: nn.Conv3d, b2: nn.Conv3d, x: torch.Tensor) -> torch.Tensor:
    n, c, t, h, w = x.shape
    stride = b1.stride[1]
    if x.is_contiguous(memory_format=torch.channels_last_3d):
        # Memory N,T,H,W,C: the frames are N*T channels-last images, no copy.
        frames = x.transpose(1, 2).reshape(n * t, c, h, w)
        y = _depthwise3x3(frames, b1.weight.squeeze(2), stride)
        y = y.reshape(n, t, c, *y.shape[-2:]).transpose(1, 2)
    else:
        # Memory N,C,T,H,W: each (channel, frame) plane is an image of a C*T-channel tensor.
        weight = b1.weight.squeeze(2).repeat_interleave(t, dim=0)
        y = _depthwise3x3(x.reshape(n, c * t, h, w), weight, stride)
        y = y.reshape(n, c, t, *y.shape[-2:])
    h, w = y.shape[-2:]
    # The temporal conv is a (3, 1) conv over the (T, H*W) map of each channel (a view).
    z = F.conv2d(y.reshape(n, c, t, h * w), b2.weight.squeeze(-1), b2.bias, padding=(1, 0), groups=c)
    return z.reshape(n, c, t, h, w)


def _auto(b1: nn.Conv3d, b2: nn.Conv3d, x: torch.Tensor) -> torch.Tensor:
    """The 2-D kernels while autograd records (their backward is the fast one), the 3-D convs
    otherwise; tracing (export) records the 3-D convs: the 2-D views bake the traced shape in.

    CPU bf16 training takes the 2-D kernels too. It used to take the 3-D ones, after NaN losses
    in bf16 CPU training with the 2-D ones (issue 15). Issue 23 found the cause elsewhere: on
    CPUs whose bf16 convs run in oneDNN, the weight gradient of a channels_last_3d 3-D conv is
    wrong when its kernel is deeper than the clip (the stem's 5x1x1 conv at 4 frames or fewer;
    X3D has no 2-D kernels and reached NaN as well), while the 2-D kernels gave right gradients
    in every check. The 3-D convs never avoided that conv (the stem's gradient stayed wrong, NaN
    only rarer) and their own 3x1x1 conv met the bug at 2 frames. With every temporal conv padded
    (``layers.depth_safe_conv3d``; with the stem padded, 0 of 12 such runs reached NaN), the
    detour has no reason left.
    """
    if torch.is_grad_enabled() and not torch.jit.is_tracing():
        return _frames2d(b1, b2, x)
    return _separate(b1, b2, x)


DEPTHWISE_IMPLS: dict[str, Callable[[nn.Conv3d, nn.Conv3d, torch.Tensor], torch.Tensor]] = {
    "auto": _auto,
    "separate": _separate,
    "fused": _fused,
    "frames2d": _frames2d,
}


class D2Plus1DUnit(nn.Module):
    """1x1x1 expand -> dw 1x3x3 (strided) -> dw 3x1x1 -> SE -> Swish -> 1x1x1 reduce, then ReLU.

    The output has ``dim_inner // 2`` channels. The unit adds its input before the ReLU only
    when the shapes allow it (``dim_in == dim_inner // 2`` and stride 1); the ReLU is always there.
    ``impl`` names how the two depthwise convs run (``DEPTHWISE_IMPLS``); the weights are the same.
    """

    def __init__(
        self,
        dim_in: int,
        dim_inner: int,
        stride: int,
        use_se: bool,
        norm: NormFactory = nn.BatchNorm3d,
        impl: str = "auto",
    ) -> None:
        super().__init__()
        dim_out = dim_inner // 2
        self.residual = dim_in == dim_out and stride == 1
        self.a = nn.Sequential(nn.Conv3d(dim_in, dim_inner, 1, bias=False), norm(dim_inner), nn.ReLU(inplace=True))
        self.b1 = nn.Conv3d(
            dim_inner,
            dim_inner,
            (1, 3, 3),
            stride=(1, stride, stride),
            padding=(0, 1, 1),
            groups=dim_inner,
            bias=False,
        )
        self.b2 = DepthSafeConv3d(dim_inner, dim_inner, (3, 1, 1), padding=(1, 0, 0), groups=dim_inner, bias=False)
        self.b_bn = norm(dim_inner)
        self.se = SE(dim_inner) if use_se else nn.Identity()
        self.b_swish = Swish()
        self.c = nn.Sequential(nn.Conv3d(dim_inner, dim_out, 1, bias=False), norm(dim_out))
        self.relu = nn.ReLU(inplace=True)
        self.impl = check_impl(impl)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.a(x)
        out = DEPTHWISE_IMPLS[self.impl](self.b1, self.b2, out)
        out = self.b_swish(self.se(self.b_bn(out)))
        out = self.c(out)
        return self.relu(out + x if self.residual else out)


def check_impl(impl: str) -> str:
    """``impl`` when it names a formulation, else a ValueError listing them."""
    if impl not in DEPTHWISE_IMPLS:
        raise ValueError(f"unknown D(2+1)D formulation {impl!r}; choose one of {', '.join(DEPTHWISE_IMPLS)}")
    return impl


def set_depthwise_impl(model: nn.Module, impl: str) -> nn.Module:
    """Run every D(2+1)D unit of ``model`` with formulation ``impl``; weights are untouched, so
    checkpoints load before or after. Returns ``model``."""
    check_impl(impl)
    for module in model.modules():
        if isinstance(module, D2Plus1DUnit):
            module.impl = impl
    return model
